"""The demo's report: Markdown tables, the plots, and the claims of Li et al. (NeurIPS 2019) as they came out.

:func:`write_report` takes the summary :func:`renyicert.workflow.jobs.demo.run_demo` builds
(records per noise and training method, empirical robustness per attack) and
writes ``report.md`` and the PNG plots beside it.  :func:`main_table` is the
table the CLI prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...radii import RECORD_BOUNDS
from ..plots import TENG_NOTE, bound_label, norm_name, plot_certified_accuracy
from ..summary import certified_accuracy, curve_radii, radius_grid, summarize_certified

__all__ = ["main_table", "write_report"]

METHOD_LABELS = {"standard": "undefended", "augmentation": "noise augmentation", "stability": "stability training"}


def _grid(entries: list[dict[str, Any]], points: int = 6) -> list[float]:
    """The table's radii for one noise: :func:`~renyicert.workflow.summary.radius_grid` over all its methods' records."""
    return radius_grid([r for e in entries for r in e["_records"]], points)


def _sequential_rows(entries: list[dict[str, Any]], grid: list[float], n0: int) -> list[list[str]]:
    """One row per method certified sequentially at the table's radii: its accuracies, undecided inputs and forward passes."""
    rows = []
    for e in entries:
        seq = e.get("sequential")
        if not seq or [round(r, 9) for r in seq["radii"]] != [round(r, 9) for r in grid]:
            continue
        fixed_cost = seq["budget"] + n0
        undecided = sum(seq["undecided"])
        rows.append(
            [
                f"{METHOD_LABELS[e['method']]}, sequential",
                *(percent(a) for a in seq["certified_accuracy"]),
                f"{seq['forward_passes']:,.0f}",
                f"{fixed_cost / seq['forward_passes']:.1f}x",
                f"{undecided}",
            ]
        )
    return rows


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def _by_noise(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, entry in summary["results"].items():
        groups.setdefault(key.split("/")[0], []).append(entry)
    return groups


def main_table(summary: dict[str, Any]) -> str:
    """Certified accuracy (Rényi bound) at a few radii, per noise and training method, as Markdown.

    Each method has a row at fixed ``n``, and where the summary holds one, a row
    certified sequentially at the same radii, with the forward passes it spent
    per input and how many times that fixed ``n`` = budget would spend.
    """
    parts = []
    settings = summary["settings"]
    for noise, entries in _by_noise(summary).items():
        grid = _grid(entries)
        norm = norm_name(float(entries[0]["norm"]))
        n = settings["n"]
        summaries = [summarize_certified(e["_records"], "renyi") for e in entries]
        rows = [
            [
                f"{METHOD_LABELS[e['method']]}, n = {n:,}",
                *(percent(a) for a in certified_accuracy(e["_records"], grid, "renyi")),
                f"{n + settings['n0']:,}",
                "",
                "",
                f"{s.average_certified_radius:.3f}",
                percent(s.abstention_rate),
            ]
            for e, s in zip(entries, summaries)
        ]
        sequential = [row + ["", ""] for row in _sequential_rows(entries, grid, settings["n0"])]
        budget = settings.get("sequential_budget", 0)
        header = [
            "method",
            *(f"r = {r:g}" for r in grid),
            "forward passes / input",
            f"fixed n = {budget:,} spends (times)",
            "undecided (all radii)",
            "ACR",
            "abstained",
        ]
        note = ""
        if sequential:
            extended = settings.get("sequential_extended_budget")
            note = (
                f"\n\nSequential rows: `Smoothed.certify_at` at these radii, alpha = {settings['alpha']}, a budget of {budget:,} samples per input"
                + (
                    " (the threshold form: one-sided tests per radius at the full alpha, in increasing order)"
                    if settings.get("sequential_p2_mode") == "complement"
                    else ""
                )
                + (f" (up to {extended:,} where the estimate is above a threshold)" if extended else "")
                + f"; fixed n = {budget:,} would spend {budget + settings['n0']:,} per input for the same answers."
            )
        note += "\n\nACR: the average certified radius (the mean over the test images of the certified radius where the prediction is right, 0 elsewhere); abstained: the share of images where the smoothed classifier abstained."
        parts.append(
            f"**{noise}** (certified accuracy, Rényi bound, {norm} radius r)\n\n"
            + markdown_table(header, rows + sequential)
            + note
        )
    return "\n\n".join(parts)


def _claims(noise: str, entries: list[dict[str, Any]], grid: list[float]) -> list[str]:
    lines = []
    by_method = {e["method"]: e for e in entries}
    if "augmentation" in by_method and "stability" in by_method:
        aug = certified_accuracy(by_method["augmentation"]["_records"], grid, "renyi")
        stab = certified_accuracy(by_method["stability"]["_records"], grid, "renyi")
        better, worse = int((stab > aug + 1e-12).sum()), int((stab < aug - 1e-12).sum())
        verdict = (
            "stability training wins"
            if stab.mean() > aug.mean()
            else ("noise augmentation wins" if stab.mean() < aug.mean() else "a tie")
        )
        lines.append(
            f"- *Stability training vs noise augmentation* ({noise}): stability is higher at {better} of {len(grid)} radii, "
            f"lower at {worse}; mean certified accuracy over the radii {percent(stab.mean())} vs {percent(aug.mean())}: **{verdict}**."
        )
    means = {m: certified_accuracy(e["_records"], grid, "renyi").mean() for m, e in by_method.items()}
    best = max(means, key=lambda m: means[m])
    lines.append(
        f"- *Best method* ({noise}, mean certified accuracy over the radii, Rényi bound): **{METHOD_LABELS[best]}** ({percent(means[best])})."
    )
    records = [r for e in entries for r in e["_records"] if r["correct"] and r["radius_renyi"] > 0]
    for other in ("tight", "pixeldp"):
        pairs = [(r["radius_renyi"], r[f"radius_{other}"]) for r in records if r.get(f"radius_{other}") is not None]
        if not pairs:
            continue
        renyi, theirs = np.array(pairs).T
        ratio = np.median(renyi / np.maximum(theirs, 1e-300))
        lines.append(
            f"- *Rényi vs {bound_label(other, str(entries[0]['noise']))}* ({noise}, same counts, {len(pairs)} inputs certified correctly, all training methods together): the Rényi radius is larger on "
            f"{int((renyi > theirs * (1 + 1e-9)).sum())}, smaller on {int((renyi < theirs * (1 - 1e-9)).sum())}; median ratio Rényi / {other} = {ratio:.3f}."
        )
    return lines


def write_report(out: str | Path, summary: dict[str, Any]) -> Path:
    """Write ``report.md`` and the plots into ``out``; returns the report's path."""
    out = Path(out)
    sections = _introduction(summary)
    checks: list[str] = []
    claims: list[str] = []
    for noise, entries in _by_noise(summary).items():
        grid = _grid(entries)
        sections += _noise_section(out, noise, entries, grid, summary["settings"], checks)
        claims += _claims(noise, entries, grid)
    sections += ["## The paper's claims, as they came out here", "", *claims, ""]
    sections += _notes(summary.get("stage_seconds", {}))
    sections += [
        "## Consistency check",
        "",
        "Certified accuracy must never exceed empirical robust accuracy at the same radius (that would mean an unsound certificate or a broken attack).",
        "",
        *(checks or ["- Passed: certified <= empirical at every eps, for every bound, noise and method."]),
        "",
    ]
    path = out / "report.md"
    path.write_text("\n".join(sections))
    return path


def _introduction(summary: dict[str, Any]) -> list[str]:
    """The report's title, the settings in one paragraph, and the main table."""
    settings = summary["settings"]
    return [
        "# renyicert demo: certified and empirical robustness on scikit-learn's digits",
        "",
        f"Model `{settings['model']}`, {summary['train_size']} training and {summary['test_size']} test images (8x8, pixels in [0, 1]); "
        f"`n0 = {settings['n0']}`, `n = {settings['n']}`, `alpha = {settings['alpha']}` (Clopper-Pearson, Bonferroni over the runner-up classes); "
        f"{settings['epochs']} epochs of Adam; stability training with gamma = {summary['gamma']:g}. "
        "Certified accuracy at radius r: the share of test images the smoothed classifier predicts correctly with a certified radius >= r "
        "(abstentions count as wrong). Every bound is computed from the same counts.",
        "",
        "## Certified accuracy (Rényi bound)",
        "",
        main_table(summary),
        "",
    ]


def _noise_section(
    out: Path, noise: str, entries: list[dict[str, Any]], grid: list[float], settings: dict[str, Any], checks: list[str]
) -> list[str]:
    """One noise's section: its three plots, the per-bound table and the attacks table; failed consistency checks go to ``checks``."""
    norm = norm_name(float(entries[0]["norm"]))
    mechanism = str(entries[0]["noise"])
    _plot_methods_and_bounds(out, noise, entries, grid, norm, mechanism)
    attack_rows, empirical_curves = _attack_rows(noise, entries, checks)
    _plot_empirical(out, noise, entries, norm, empirical_curves)
    return [
        f"## {noise} ({norm})",
        "",
        f"![certified accuracy by method](certified-{noise}.png)",
        "",
        f"![bounds compared](bounds-{noise}.png)",
        "",
        *_bound_table(entries, grid, mechanism),
        *_attack_table(entries, settings, attack_rows),
        f"![certified vs empirical](empirical-{noise}.png)",
        "",
    ]


def _plot_methods_and_bounds(
    out: Path, noise: str, entries: list[dict[str, Any]], grid: list[float], norm: str, mechanism: str
) -> None:
    """``certified-{noise}.png`` (the Rényi curve of each method) and ``bounds-{noise}.png`` (every bound of the best one)."""
    radii = curve_radii([e["_records"] for e in entries])
    curves = {METHOD_LABELS[e["method"]]: (radii, certified_accuracy(e["_records"], radii, "renyi")) for e in entries}
    plot_certified_accuracy(
        curves,
        out / f"certified-{noise}.png",
        title=f"Certified accuracy, {noise} noise (Rényi bound), by training method",
        norm=norm,
    )
    best = max(entries, key=lambda e: certified_accuracy(e["_records"], grid, "renyi").mean())
    offered = [b for b in RECORD_BOUNDS if best["_records"][0][f"radius_{b}"] is not None]
    radii = curve_radii([best["_records"]], offered)
    bound_curves = {bound_label(b, mechanism): (radii, certified_accuracy(best["_records"], radii, b)) for b in offered}
    plot_certified_accuracy(
        bound_curves,
        out / f"bounds-{noise}.png",
        title=f"Bounds from the same counts, {noise}, {METHOD_LABELS[best['method']]}",
        norm=norm,
        note=TENG_NOTE if mechanism == "laplace" and "tight" in offered else None,
        dashed=[bound_label("best", mechanism)],
    )


def _bound_table(entries: list[dict[str, Any]], grid: list[float], mechanism: str) -> list[str]:
    """The certified accuracy of every method under every bound it offers, from the same counts."""
    bound_rows = [
        [
            METHOD_LABELS[e["method"]],
            bound_label(b, mechanism),
            *(percent(a) for a in certified_accuracy(e["_records"], grid, b)),
        ]
        for e in entries
        for b in RECORD_BOUNDS
        if e["_records"][0][f"radius_{b}"] is not None
    ]
    return [
        "Certified accuracy per bound (same counts):",
        "",
        markdown_table(["method", "bound", *(f"r = {r:g}" for r in grid)], bound_rows),
        "",
    ]


def _attack_table(entries: list[dict[str, Any]], settings: dict[str, Any], attack_rows: list[list[str]]) -> list[str]:
    """Empirical robust accuracy next to certified accuracy on the same images, at radius = eps."""
    certified_names = [f"certified ({b})" for b in RECORD_BOUNDS if b in entries[0]["certified_on_attacked"]]
    header = [
        "method",
        "eps",
        *certified_names,
        *(f"{a}" for a in entries[0]["empirical"]["accuracy"] if a != "all"),
        "all attacks",
    ]
    return [
        f"Empirical robust accuracy on the first {entries[0]['empirical']['inputs']} test images (majority vote of "
        f"{settings['vote_samples']} noisy copies on the attack's output) next to certified accuracy on the same images at radius = eps:",
        "",
        markdown_table(header, attack_rows),
        "",
    ]


def _plot_empirical(
    out: Path, noise: str, entries: list[dict[str, Any]], norm: str, empirical_curves: dict[str, Any]
) -> None:
    """``empirical-{noise}.png``: the certified curve on the attacked images next to the empirical curves."""
    radii_fine = curve_radii([e["_records"][: e["empirical"]["inputs"]] for e in entries])
    overlay = {
        f"{METHOD_LABELS[e['method']]}: certified (Rényi)": (
            radii_fine,
            certified_accuracy(e["_records"][: e["empirical"]["inputs"]], radii_fine, "renyi"),
        )
        for e in entries
    }
    plot_certified_accuracy(
        overlay,
        out / f"empirical-{noise}.png",
        title=f"Certified vs empirical robust accuracy, {noise}",
        norm=norm,
        empirical=empirical_curves,
    )


def _attack_rows(
    noise: str, entries: list[dict[str, Any]], checks: list[str]
) -> tuple[list[list[str]], dict[str, Any]]:
    """The attacks table's rows and the empirical curves; a row where certified > empirical adds a failed check."""
    attack_rows, empirical_curves = [], {}
    for e in entries:
        emp = e["empirical"]
        attacks = [a for a in emp["accuracy"] if a != "all"]
        certified = e["certified_on_attacked"]
        for i, eps in enumerate(emp["eps"]):
            row = [
                METHOD_LABELS[e["method"]],
                f"{eps:g}",
                *(percent(certified[b][i]) for b in RECORD_BOUNDS if b in certified),
            ]
            row += [percent(emp["accuracy"][a][i]) for a in attacks] + [percent(emp["accuracy"]["all"][i])]
            attack_rows.append(row)
            top = max(certified[b][i] for b in certified)
            if top > emp["accuracy"]["all"][i] + 1e-12:
                checks.append(
                    f"- **FAILED** {noise}/{e['method']} at eps {eps:g}: certified {percent(top)} > empirical {percent(emp['accuracy']['all'][i])}"
                )
        empirical_curves[f"{METHOD_LABELS[e['method']]}: empirical (all attacks)"] = (
            [0.0, *emp["eps"]],
            [emp["clean_vote_accuracy"], *emp["accuracy"]["all"]],
        )
    return attack_rows, empirical_curves


def _notes(stage: dict[str, float]) -> list[str]:
    """What the reader should know about the attacks and the bounds, and where the time went."""
    return [
        "## Notes",
        "",
        "- The attacks give an upper bound on robust accuracy, the certificates a lower bound; the truth lies between.",
        "- In l1, `pgd` is adversarial-robustness-toolbox's PGD, whose steps are dense (the gradient over its l1 norm) and weak in l1; "
        "`pgd-strong` is our sparse-step l1 PGD (SLIDE, Tramèr & Boneh 2019), which moves the top 3% of coordinates per step. "
        "The gap between certified and empirical accuracy under Laplace noise is still partly the attacks'.",
        "- The boundary attack minimises the l2 distance; under Laplace noise its examples are judged by their l1 distance.",
        "- PixelDP's Gaussian certificate cannot exceed sigma / sqrt(2 ln(1.25 / delta)) (eps <= 1, delta = 1e-5): about 0.2 sigma.",
        f"- Time: training {stage.get('train', 0):.0f} s, certification {stage.get('certify', 0):.0f} s (fixed n), "
        f"{stage.get('sequential', 0):.0f} s (sequential), attacks {stage.get('attack', 0):.0f} s.",
        "- Sequential certification (`certify_at`) decides each radius with anytime-valid tests (in the threshold form one "
        "one-sided e-process per radius, certified in increasing order): an input stops once every radius is certified, refused, or "
        "given up because its test would most likely not decide it by the budget. Its guarantee is the fixed-n one (each input's "
        "certified answers are all right with probability >= 1 - alpha); undecided inputs are counted as not certified.",
        "- The paper's other comparisons (TRADES, a deterministic 1-Lipschitz certifier, and PGD with 20 random starts of 1,000 steps "
        "against these smoothed models) are `renyicert compare` (`make compare`), which writes `compare.md` beside this report.",
        "",
    ]
