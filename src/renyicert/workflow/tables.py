"""The text tables and JSON summaries the command line prints: certified accuracy, sequential runs, predictions, attacks.

Each function returns text (or a JSON-ready dict); printing is the caller's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..certificate import ABSTAIN
from ..radii import RECORD_BOUNDS
from .summary import SequentialSummary, certified_accuracy, radius_grid, summarize_certified

__all__ = [
    "fixed_n_summary",
    "fixed_n_table",
    "predictions_summary",
    "predictions_table",
    "records_report_table",
    "robustness_table",
    "sequential_json",
    "sequential_table",
]


def _fixed_n_numbers(records: list[dict[str, Any]]) -> tuple[list[float], list[str], dict[str, Any], dict[str, Any]]:
    """``(radii, bounds, summaries, accuracy)``: certified accuracy per bound at a grid of radii, and each bound's summary."""
    grid = radius_grid(records)
    bounds = [b for b in RECORD_BOUNDS if records and records[0].get(f"radius_{b}") is not None]
    summaries = {b: summarize_certified(records, b) for b in bounds}
    accuracy = {b: [float(a) for a in certified_accuracy(records, grid, b)] for b in bounds}
    return grid, bounds, summaries, accuracy


def fixed_n_summary(records: list[dict[str, Any]], what: dict[str, Any], path: str | None) -> dict[str, Any]:
    """Fixed-n records as one JSON object: ``what`` (the run), certified accuracy per bound, ACR, abstention."""
    grid, bounds, summaries, accuracy = _fixed_n_numbers(records)
    return {
        **what,
        "inputs": len(records),
        "records": path,
        "radii": grid,
        "certified_accuracy": accuracy,
        "acr": {b: s.average_certified_radius for b, s in summaries.items()},
        "clean_accuracy": summaries[bounds[0]].clean_accuracy if bounds else 0.0,
        "abstention_rate": summaries[bounds[0]].abstention_rate if bounds else 0.0,
    }


def fixed_n_table(records: list[dict[str, Any]], what: dict[str, Any], path: str | None) -> str:
    """Certified accuracy per bound at a grid of radii, with ACR and the abstention rate, as a text table."""
    grid, bounds, summaries, accuracy = _fixed_n_numbers(records)
    lines = [
        f"certified accuracy of {len(records)} inputs ({what['mechanism']}, scale {what['scale']:g}, {what['norm']} "
        f"radii, n = {what['n']}, alpha = {what['alpha']:g}, {what['mode']} mode)",
        f"{'bound':<10}" + "".join(f"{f'r={r:g}':>10}" for r in grid) + f"{'ACR':>10}",
    ]
    for bound in bounds:
        cells = "".join(f"{a:>10.1%}" for a in accuracy[bound])
        lines.append(f"{bound:<10}{cells}{summaries[bound].average_certified_radius:>10.4f}")
    if bounds:
        lines.append(
            f"abstained on {summaries[bounds[0]].abstention_rate:.1%} of the inputs; ACR: average certified radius "
            "(0 where wrong or abstained)"
        )
    if path:
        lines.append(f"records: {path}")
    return "\n".join(lines)


def sequential_json(summary: SequentialSummary) -> dict[str, Any]:
    """A sequential run's summary as JSON-ready fields."""
    return {
        "inputs": summary.inputs,
        "radii": list(summary.radii),
        "certified_accuracy": list(summary.certified_accuracy),
        "undecided": list(summary.undecided),
        "forward_passes": summary.forward_passes,
    }


def sequential_table(summary: SequentialSummary, what: str, budget: Any, n0: Any) -> str:
    """The table of a sequential run: certified accuracy and undecided inputs per radius, and the copies spent."""
    spent = f"mean forward passes per input: {summary.forward_passes:,.0f}"
    if isinstance(budget, int) and isinstance(n0, int) and summary.forward_passes > 0:
        spent += (
            f" (fixed n = {budget:,} spends {budget + n0:,} with n0 = {n0}: "
            f"{(budget + n0) / summary.forward_passes:.1f}x as many)"
        )
    return "\n".join(
        [
            f"certified accuracy of {summary.inputs} inputs at the given radii, decided sequentially ({what})",
            f"{'radius':<12}" + "".join(f"{r:>10g}" for r in summary.radii),
            f"{'certified':<12}" + "".join(f"{a:>10.1%}" for a in summary.certified_accuracy),
            f"{'undecided':<12}" + "".join(f"{u:>10d}" for u in summary.undecided),
            spent,
        ]
    )


def records_report_table(rows: list[dict[str, Any]], grid: list[float], norm: str | None, mode: str) -> str:
    """``report``'s table: one row per records file and bound, certified accuracy at ``grid``, ACR and abstention."""
    lines = [
        f"certified accuracy ({norm or 'norm not recorded: give --norm'} radii, {mode} mode); ACR = average certified "
        "radius, 0 where wrong or abstained",
        f"{'records':<28}{'bound':<9}" + "".join(f"{f'r={r:g}':>9}" for r in grid) + f"{'ACR':>9}{'abstain':>9}",
    ]
    for row in rows:
        cells = "".join(f"{a:>9.1%}" for a in row["certified_accuracy"])
        lines.append(
            f"{Path(row['records']).stem:<28}{row['bound']:<9}{cells}{row['acr']:>9.4f}{row['abstention_rate']:>9.1%}"
        )
    return "\n".join(lines)


def predictions_summary(predictions: list[int], labels: list[int], n: int, alpha: float) -> dict[str, Any]:
    """``predict``'s answers as one JSON object: accuracy, abstention rate, the predictions and the labels."""
    correct = sum(p == y for p, y in zip(predictions, labels))
    abstained = sum(p == ABSTAIN for p in predictions)
    return {
        "inputs": len(labels),
        "n": n,
        "alpha": alpha,
        "accuracy": correct / len(labels),
        "abstention_rate": abstained / len(labels),
        "predictions": predictions,
        "labels": labels,
    }


def predictions_table(predictions: list[int], labels: list[int], n: int, alpha: float) -> str:
    """``predict``'s answers: one line per input, then the accuracy and the abstention rate."""
    summary = predictions_summary(predictions, labels, n, alpha)
    lines = [f"{'index':>7}{'label':>7}{'prediction':>12}"]
    for index, (label, prediction) in enumerate(zip(labels, predictions)):
        lines.append(f"{index:>7}{label:>7}{'abstain' if prediction == ABSTAIN else prediction:>12}")
    lines.append(
        f"accuracy {summary['accuracy']:.1%} of {len(labels)} inputs, abstained on {summary['abstention_rate']:.1%} "
        f"(n = {n}, alpha = {alpha:g})"
    )
    return "\n".join(lines)


def robustness_table(result: Any) -> str:
    """Empirical robust accuracy per attack and radius (:func:`~renyicert.workflow.attacks.empirical_robustness`'s result)."""
    lines = [
        f"empirical robust accuracy of {result.inputs} inputs (clean majority-vote accuracy {result.clean_accuracy:.1%})",
        f"{'attack':<12}" + "".join(f"{f'eps={e:g}':>11}" for e in result.eps),
    ]
    for name, values in result.accuracy.items():
        lines.append(f"{name:<12}" + "".join(f"{v:>11.1%}" for v in values))
    return "\n".join(lines)
