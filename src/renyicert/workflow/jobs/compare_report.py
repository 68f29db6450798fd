"""The comparison's report: one table per noise, the training-cost ratio, the paper's claims in plain words, the checks.

:func:`write_comparison_report` takes the summary :func:`~renyicert.workflow.jobs.compare.run_comparison`
builds and writes ``compare.md`` and the plots beside it.  :func:`verdict` turns two rows of
numbers into "held", "did not hold" or "held at some radii".
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..plots import TENG_NOTE, bound_label, norm_name, plot_certified_accuracy
from ..summary import certified_accuracy, curve_radii
from .report import METHOD_LABELS as SMOOTHED_METHOD_LABELS
from .report import markdown_table, percent

__all__ = [
    "comparison_curves",
    "comparison_table",
    "consistency_failures",
    "median_ratio",
    "plot_comparison",
    "verdict",
    "write_comparison_report",
]

METHOD_LABELS = {**SMOOTHED_METHOD_LABELS, "trades": "TRADES", "lipschitz": "1-Lipschitz"}
#: Empirical robust accuracy within this many points of TRADES's counts as "competitive" in the claims.
COMPETITIVE_POINTS = 0.05
#: The paper's training-cost ratio: TRADES 5 days against 8 hours of stability training (one GPU, Wide-ResNet, CIFAR-10).
PAPER_COST_RATIO = 15.0

ORDER = ("standard", "augmentation", "stability", "trades", "lipschitz")
GUARANTEES = {"smoothed": "w.p. >= 1 - alpha", "deterministic": "deterministic"}


def verdict(ours: Sequence[float], theirs: Sequence[float], where: str = "radii", within: float = 0.0) -> str:
    """How a claim that ``ours`` beats ``theirs`` came out: "held", "did not hold" or "held at some radii (k of n)".

    With ``within = 0`` the claim is "higher": it held where ``ours > theirs``, and it held
    (everywhere) when ``ours`` is nowhere lower and somewhere higher.  With ``within > 0`` the
    claim is "competitive": it held where ``ours >= theirs - within``.

    Examples
    --------
    >>> from renyicert.workflow.jobs.compare_report import verdict
    >>> verdict([0.9, 0.8], [0.7, 0.8]), verdict([0.5, 0.8], [0.7, 0.8]), verdict([0.9, 0.1], [0.7, 0.8])
    ('held', 'did not hold', 'held at some radii (1 of 2)')
    >>> verdict([0.66, 0.1], [0.7, 0.5], "eps", within=0.05)
    'held at some eps (1 of 2)'
    """
    ours_array, theirs_array = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    if ours_array.shape != theirs_array.shape or ours_array.ndim != 1 or ours_array.size == 0:
        raise ValueError(
            f"verdict needs two rows of the same non-zero length, got shapes {ours_array.shape} and {theirs_array.shape}"
        )
    if not within >= 0.0:
        raise ValueError(f"within must be >= 0, got {within!r}")
    if within > 0.0:
        held = ours_array >= theirs_array - within - 1e-12
        everywhere = bool(held.all())
    else:
        held = ours_array > theirs_array + 1e-12
        everywhere = bool(held.any() and not (ours_array < theirs_array - 1e-12).any())
    if everywhere:
        return "held"
    if not held.any():
        return "did not hold"
    return f"held at some {where} ({int(held.sum())} of {held.size})"


def _certified_row(entry: dict[str, Any]) -> tuple[list[float] | None, str]:
    """The certified accuracies a model's table row shows, and under which bound."""
    certified = entry.get("certified", {})
    for bound in ("best", "deterministic", "renyi"):
        if bound in certified:
            return certified[bound], bound
    return None, ""


def comparison_table(noise_result: dict[str, Any], times: dict[str, Any], noise: str) -> str:
    """One noise's table: clean, certified and empirical (all attacks) accuracy per model, and its training time."""
    eps = noise_result["eps"]
    header = [
        "model",
        "guarantee",
        "clean (test set)",
        *(f"certified r = {e:g}" for e in eps),
        *(f"empirical eps = {e:g}" for e in eps),
        "training (s)",
    ]
    rows = []
    for method in ORDER:
        entry = noise_result["models"].get(method)
        if entry is None:
            continue
        certified, bound = _certified_row(entry)
        cells = [percent(v) for v in certified] if certified is not None else ["none"] * len(eps)
        label = METHOD_LABELS[method] + (f" ({bound} bound)" if bound in ("best", "renyi") else "")
        guarantee = GUARANTEES[entry["kind"]] if certified is not None else "none (empirical defence)"
        rows.append(
            [
                label,
                guarantee,
                percent(entry["clean_accuracy"]),
                *cells,
                *(percent(v) for v in entry["empirical"]["accuracy"]["all"]),
                _training_seconds(times, method, noise, noise_result["norm"]),
            ]
        )
    return markdown_table(header, rows)


def _training_seconds(times: dict[str, Any], method: str, noise: str, norm: float) -> str:
    value = {"standard": times.get("standard"), "lipschitz": times.get("lipschitz")}.get(method)
    if method in ("augmentation", "stability"):
        value = times[method].get(noise)
    elif method == "trades":
        value = times["trades"].get(norm_name(norm))
    if isinstance(value, list):
        return f"{float(np.median(value)):.1f}" + (f" (median of {len(value)})" if len(value) > 1 else "")
    return "" if value is None else f"{value:.1f}"


def _attack_table(noise_result: dict[str, Any]) -> str:
    """Empirical robust accuracy per model and attack at each eps."""
    eps = noise_result["eps"]
    rows = []
    for method in ORDER:
        entry = noise_result["models"].get(method)
        if entry is None:
            continue
        for attack, values in entry["empirical"]["accuracy"].items():
            rows.append(
                [METHOD_LABELS[method], "all attacks" if attack == "all" else attack, *(percent(v) for v in values)]
            )
    return markdown_table(["model", "attack", *(f"eps = {e:g}" for e in eps)], rows)


def consistency_failures(results: dict[str, Any]) -> list[str]:
    """Every (noise, model, bound, eps) where certified accuracy exceeds empirical robust accuracy on the same inputs."""
    failures = []
    for noise, noise_result in results.items():
        for method, entry in noise_result["models"].items():
            empirical = entry["empirical"]["accuracy"]["all"]
            for bound, values in entry.get("certified", {}).items():
                for e, c, a in zip(noise_result["eps"], values, empirical):
                    if c > a + 1e-12:
                        failures.append(
                            f"- **FAILED** {noise}/{METHOD_LABELS[method]}, {bound} bound, eps {e:g}: certified {percent(c)} > empirical {percent(a)}"
                        )
    return failures


def _cost_lines(summary: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The training-cost table and the claim about it."""
    times = summary["training_seconds"]
    rows, claims = [], []
    for norm, trades in times["trades"].items():
        for noise, noise_result in summary["results"].items():
            if norm_name(noise_result["norm"]) != norm or noise not in times["stability"]:
                continue
            stability = times["stability"][noise]
            ratio = median_ratio(trades, stability)
            rows.append(
                [
                    noise,
                    norm,
                    f"{np.median(stability):.1f} ({len(stability)} runs, {min(stability):.1f}-{max(stability):.1f})",
                    f"{np.median(trades):.1f} ({len(trades)} runs, {min(trades):.1f}-{max(trades):.1f})",
                    f"{ratio:.1f}x",
                ]
            )
            word = (
                "held"
                if ratio >= PAPER_COST_RATIO
                else (
                    "held in part: stability training is cheaper, by less than the paper's factor"
                    if ratio > 1
                    else "did not hold"
                )
            )
            claims.append(
                f"- *Stability training is about {PAPER_COST_RATIO:g}x cheaper to train than TRADES* ({noise}, same architecture, data, optimiser and epochs): "
                f"TRADES took **{ratio:.1f}x** as long (median of {len(trades)} and {len(stability)} runs): **{word}**."
            )
    table = markdown_table(["noise", "norm", "stability training (s)", "TRADES (s)", "TRADES / stability"], rows)
    return [table], claims


def _claims(summary: dict[str, Any], cost_claims: list[str]) -> list[str]:
    """The paper's claims, each with how it came out here."""
    lines = []
    settings = summary["settings"]
    for noise, noise_result in summary["results"].items():
        models, eps = noise_result["models"], noise_result["eps"]
        if "augmentation" in models and "stability" in models:
            stability, augmentation = models["stability"], models["augmentation"]
            full_stability = certified_accuracy(stability["_records"], eps, "renyi")
            full_augmentation = certified_accuracy(augmentation["_records"], eps, "renyi")
            lines.append(
                f"- *Stability training gives higher certified accuracy than noise augmentation* ({noise}, Rényi bound, whole test set, r = {', '.join(f'{e:g}' for e in eps)}): "
                f"{', '.join(percent(v) for v in full_stability)} vs {', '.join(percent(v) for v in full_augmentation)}: **{verdict(full_stability, full_augmentation)}**."
            )
            ours, theirs = stability["empirical"]["accuracy"]["all"], augmentation["empirical"]["accuracy"]["all"]
            lines.append(
                f"- *... and higher empirical robust accuracy* ({noise}, all attacks): {', '.join(percent(v) for v in ours)} vs {', '.join(percent(v) for v in theirs)}: **{verdict(ours, theirs, 'eps')}**."
            )
        if "stability" in models and "trades" in models:
            ours, theirs = (
                models["stability"]["empirical"]["accuracy"]["all"],
                models["trades"]["empirical"]["accuracy"]["all"],
            )
            lines.append(
                f"- *Stability training with smoothing is empirically competitive with TRADES* ({noise}, all attacks, within {100 * COMPETITIVE_POINTS:g} points counts as competitive): "
                f"{', '.join(percent(v) for v in ours)} vs TRADES {', '.join(percent(v) for v in theirs)}: **{verdict(ours, theirs, 'eps', COMPETITIVE_POINTS)}**."
            )
        if "stability" in models and "lipschitz" in models:
            ours = certified_accuracy(models["stability"]["_records"], eps, "best")
            theirs = models["lipschitz"]["_certificates"].certified_accuracy(eps)
            lines.append(
                f"- *Smoothing certifies more than a deterministic certifier* ({noise}, stability training with the best bound vs the 1-Lipschitz network, whole test set, "
                f"r = {', '.join(f'{e:g}' for e in eps)}): {', '.join(percent(v) for v in ours)} vs {', '.join(percent(v) for v in theirs)}: **{verdict(ours, theirs)}**; "
                "the smoothed certificate holds with probability >= 1 - alpha, the deterministic one always."
            )
    lines += cost_claims
    lines += _masking_claim(summary, settings)
    return lines


def _masking_claim(summary: dict[str, Any], settings: dict[str, Any]) -> list[str]:
    """No gradient masking: under the long PGD, certified accuracy stays at or below empirical; and how it compared with the 20-step PGD."""
    if "pgd-long" not in settings["attacks"]:
        return []
    failures, differences = [], []
    for noise, noise_result in summary["results"].items():
        for method, entry in noise_result["models"].items():
            accuracy = entry["empirical"]["accuracy"]
            if entry["kind"] != "smoothed" or "pgd-long" not in accuracy:
                continue
            if "pgd" in accuracy:
                differences += [
                    (p - q, f"{noise}/{METHOD_LABELS[method]} at eps {e:g}")
                    for e, p, q in zip(noise_result["eps"], accuracy["pgd"], accuracy["pgd-long"])
                ]
            certified = (
                entry["certified"]["best"]
                if "best" in entry["certified"]
                else max(entry["certified"].values(), key=sum)
            )
            failures += [
                f"{noise}/{method} at eps {e:g}"
                for e, c, a in zip(noise_result["eps"], certified, accuracy["pgd-long"])
                if c > a + 1e-12
            ]
    word = "held" if not failures else "did not hold"
    detail = "" if not failures else f" (certified above empirical at {', '.join(failures)})"
    line = (
        f"- *No gradient masking: PGD with {settings['long_restarts']} random starts of {settings['long_steps']} steps does not break the certificates* "
        f"(every smoothed model, certified accuracy under its best bound at or below accuracy under this attack alone, at every eps){detail}: **{word}**."
    )
    if differences:
        lower, higher = max(differences), min(differences)
        line += (
            f" Against the 20-step PGD (32 noise draws per step) on the smoothed models, PGD-{settings['long_steps']} "
            f"({settings['long_soft_samples']} draw per step) found accuracy up to {percent(max(lower[0], 0.0))} lower ({lower[1]})"
            f" and up to {percent(max(-higher[0], 0.0))} higher ({higher[1]})."
        )
    return [line]


def write_comparison_report(out: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``compare.md`` and ``compare-<noise>.png`` into ``out``; returns the report's path."""
    out = Path(out)
    cost_table, cost_claims = _cost_lines(summary)
    checks = consistency_failures(summary["results"])
    sections = [
        *_introduction(summary),
        *cost_table,
        "",
        *(line for noise, result in summary["results"].items() for line in _noise_lines(out, summary, noise, result)),
        "## The paper's claims, as they came out here",
        "",
        *_claims(summary, cost_claims),
        "",
        "## Consistency check",
        "",
        "Certified accuracy must never exceed empirical robust accuracy on the same images at radius = eps (every model with a certificate, every bound).",
        "",
        *(checks or ["- Passed: certified <= empirical at every eps, for every bound, noise and model."]),
        "",
        "## Notes",
        "",
        "- The 1-Lipschitz certificate: for logits f that are L-Lipschitz in l2, f_y - f_j is sqrt(2) L-Lipschitz, so a margin m certifies "
        "the l2 radius m / (sqrt(2) L) (Tsuzuku et al. 2018). L is the product of the exported layers' exact spectral norms (SVD in float64), "
        "not deel-torchlip's training-time estimate, and the margin is computed in float64.",
        "- ART's TRADES crafts x' with the attack it is given (PGD on the cross-entropy with the true labels) where Zhang et al. maximise the KL term; "
        "the outer loss is TRADES's. Each TRADES step costs the inner PGD's forward and backward passes on top of the two forward passes "
        "stability training makes, so the cost ratio grows with the inner steps; the paper's 15x is for a Wide-ResNet on CIFAR-10 on one GPU.",
        "- TRADES gives no certificate. The attacks give an upper bound on robust accuracy, the certificates a lower bound.",
        f"- Time: {summary.get('seconds', 0):.0f} s in all.",
        "",
    ]
    path = out / "compare.md"
    path.write_text("\n".join(sections))
    return path


def _introduction(summary: dict[str, Any]) -> list[str]:
    """The report's title, what every model shares, and the training cost's heading."""
    settings = summary["settings"]
    return [
        "# renyicert compare: randomized smoothing against TRADES and a 1-Lipschitz network on scikit-learn's digits",
        "",
        f"Every model has the demo's architecture (`{settings['model']}`; the 1-Lipschitz one its spectrally normalised twin) and trains on the same "
        f"{summary['train_size']} images for {settings['epochs']} epochs of Adam. Clean accuracy is on all {summary['test_size']} test images; certified and "
        f"empirical accuracy in the tables are on the first {summary['attack_inputs']} (the attacked ones), certified at radius r and attacked at eps = r. "
        f"Smoothed models: `n0 = {settings['n0']}`, `n = {settings['n']}`, `alpha = {settings['alpha']}`, the majority vote of {settings['vote_samples']} "
        f"noisy copies judges each adversarial example. Empirical accuracy is under the strongest attack: an image counts as broken if any of "
        f"{', '.join(settings['attacks'])} broke it; `pgd-long` is PGD with {settings['long_restarts']} random starts of {settings['long_steps']} steps "
        f"({settings['long_soft_samples']} noise draw per step on smoothed models). TRADES: ART's trainer, beta = {settings['trades_beta']:g}, PGD of "
        f"{settings['trades_attack_steps']} steps at eps = {settings['trades_eps']:g} in the noise's norm.",
        "",
        "## Training cost",
        "",
    ]


def _noise_lines(out: Path, summary: dict[str, Any], noise: str, noise_result: dict[str, Any]) -> list[str]:
    """One noise's section (its table, its plot, written to ``compare-{noise}.png``, and its attacks table)."""
    norm = float(noise_result["norm"])
    plot_comparison(
        noise_result["models"],
        out / f"compare-{noise}.png",
        noise,
        str(noise_result["noise"]),
        norm,
        summary["settings"]["alpha"],
    )
    return [
        f"## {noise} ({norm_name(norm)})",
        "",
        comparison_table(noise_result, summary["training_seconds"], noise),
        "",
        f"![smoothing vs the 1-Lipschitz network](compare-{noise}.png)",
        "",
        "Empirical robust accuracy per attack:",
        "",
        _attack_table(noise_result),
        "",
    ]


def comparison_curves(entries: dict[str, dict[str, Any]], mechanism: str) -> dict[str, tuple[Any, Any]]:
    """The plot's curves: noise augmentation and stability training (Rényi and tight) and the 1-Lipschitz network, on the whole test set."""
    record_sets = [entries[m]["_records"] for m in ("augmentation", "stability") if m in entries]
    bounds = [b for b in ("renyi", "tight") if record_sets and record_sets[0][0][f"radius_{b}"] is not None]
    radii = curve_radii(record_sets, bounds or ("renyi",))
    if "lipschitz" in entries:
        top = float(entries["lipschitz"]["_certificates"].radius.max(initial=0.0))
        radii = np.union1d(radii, np.linspace(0.0, top * 1.05, 200))
    curves: dict[str, tuple[Any, Any]] = {}
    for method in ("augmentation", "stability"):
        if method in entries:
            for bound in bounds:
                curves[f"{METHOD_LABELS[method]}, smoothed ({bound_label(bound, mechanism)})"] = (
                    radii,
                    certified_accuracy(entries[method]["_records"], radii, bound),
                )
    if "lipschitz" in entries:
        curves["1-Lipschitz network (deterministic)"] = (
            radii,
            entries["lipschitz"]["_certificates"].certified_accuracy(radii),
        )
    return curves


def plot_comparison(
    entries: dict[str, dict[str, Any]], path: Path, noise: str, mechanism: str, norm: float, alpha: float
) -> Path:
    """Certified accuracy of the smoothed models and of the 1-Lipschitz network on one plot, the guarantees in the caption."""
    note = (
        f"The smoothed curves hold with probability >= 1 - alpha = {1 - alpha:g} for each input, over the noise drawn to certify it; "
        "the 1-Lipschitz curve holds deterministically (its logit margin over sqrt(2) times the product of its layers' spectral norms)."
    )
    if norm == 1.0:
        note += " Under Laplace noise the radii are l1; the 1-Lipschitz network certifies l2 radii, which are also l1 radii (||d||_2 <= ||d||_1), so its curve here is loose."
    curves = comparison_curves(entries, mechanism)
    tight = f"({bound_label('tight', mechanism)})"
    if mechanism == "laplace" and any(label.endswith(tight) for label in curves):
        note += " " + TENG_NOTE
    dashed = [label for label in curves if label.endswith(tight)]
    return plot_certified_accuracy(
        curves,
        path,
        title=f"Smoothing vs a deterministic certifier, {noise}",
        norm=norm_name(norm),
        note=note,
        dashed=dashed,
    )


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """The ratio of the medians of two lists of timings.

    Examples
    --------
    >>> from renyicert.workflow.jobs.compare_report import median_ratio
    >>> median_ratio([10.0, 12.0, 30.0], [1.0, 2.0, 3.0])
    6.0
    """
    return statistics.median(numerator) / statistics.median(denominator)
