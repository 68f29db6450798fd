"""``renyicert report`` and ``recertify`` as functions: records files read, checked, summarised, plotted or recomputed.

:func:`reports` reads one or more records files with their settings,
checks every record (:mod:`renyicert.workflow.record_checks`: the radii
re-derived from the counts where the mechanism can be built here), refuses
to put unlike claims in one table (other norms, float and lattice modes,
fixed-n beside sequential records) and returns the rows of the table, with
the plot written where asked. :func:`recertify_file` recomputes a fixed-n
file's certificates under another alpha or p2 mode, without the model.
Notes and warnings (an unverified divergence, an unfinished run) go to stderr.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..radii import RECORD_BOUNDS
from .certify import recertify_records
from .inputs import recorded_norm, settings_mechanism, stored_mechanism
from .plots import TENG_NOTE, bound_label, norm_name, plot_certified_accuracy
from .record_checks import incomplete_warnings, verify_fixed_n, verify_sequential
from .records import RecordWriter, checked_record, read_records, read_settings, settings_path, write_settings
from .summary import (
    SequentialSummary,
    certified_accuracy,
    curve_radii,
    radius_grid,
    summarize_certified,
    summarize_sequential,
)

__all__ = ["FixedNReport", "SequentialReport", "recertify_file", "report_records", "run_mode", "sequential_report_json"]


def run_mode(settings: dict[str, Any] | None) -> str:
    """``"lattice (grid 1/255)"`` for lattice-mode records, ``"float"`` for the others.

    Examples
    --------
    >>> from renyicert.workflow.reports import run_mode
    >>> run_mode({"grid": 255}), run_mode({})
    ('lattice (grid 1/255)', 'float')
    """
    grid = (settings or {}).get("grid")
    return "float" if grid is None else f"lattice (grid 1/{grid})"


@dataclass(frozen=True)
class FixedNReport:
    """The table of fixed-n records files: one row per file and bound, at the radii ``grid``, in ``norm``, one ``mode``."""

    rows: list[dict[str, Any]]
    grid: list[float]
    norm: str | None
    mode: str
    plot: str | None = None


@dataclass(frozen=True)
class SequentialReport:
    """One sequential records file: its settings and its summary."""

    path: str
    settings: dict[str, Any]
    summary: SequentialSummary
    what: str = field(default="")


def _note_unverified(path: str, settings: dict[str, Any]) -> None:
    """Say on stderr when a records file's mechanism could not be verified, or some of its bounds were left out of the best radius."""
    if settings.get("divergence_verifiable") is False:
        print(
            f"renyicert: note: {path}: {settings.get('mechanism')} has no density, so nothing verified its divergence "
            "(renyicert check says 'passed what could be checked'): these certificates rest on the plugin's formula "
            "(verified: false)",
            file=sys.stderr,
        )
    if isinstance(settings.get("best_of"), list):
        print(
            f"renyicert: note: {path}: the best radius is taken over {', '.join(map(str, settings['best_of']))} only: "
            "the other comparison bounds were not verified",
            file=sys.stderr,
        )


def _warn_incomplete(path: str, settings: dict[str, Any], count: int) -> None:
    """Print on stderr what says that ``path`` is not a finished run (a live lock, part files, missing inputs)."""
    for warning in incomplete_warnings(path, settings, count):
        print(f"renyicert: warning: {warning}", file=sys.stderr)


def _refuse_mixed_modes(runs: list[dict[str, Any]]) -> None:
    """Refuse one table over float-mode and lattice-mode records (or lattices of different grids): their certificates cover different inputs."""
    modes = sorted({run_mode(run["settings"]) for run in runs})
    if len(modes) > 1:
        described = "; ".join(f"{run['path']}: {run_mode(run['settings'])}" for run in runs)
        raise ValueError(
            f"these records were certified in different modes ({', '.join(modes)}): a lattice certificate holds in "
            "floating point for grid inputs, a float one in real arithmetic only, so one table would compare unlike "
            f"claims; report them apart ({described})"
        )


def report_records(
    paths: list[str],
    *,
    all_bounds: bool = False,
    norm: str | None = None,
    plot: str | None = None,
    title: str = "Certified accuracy",
) -> FixedNReport | list[SequentialReport]:
    """The report of ``paths``: a :class:`FixedNReport` for fixed-n records, a :class:`SequentialReport` per sequential file.

    ``all_bounds``: every bound, not only the Rényi one; ``norm``: the norm of
    records without a settings file; ``plot``: a PNG of the curves (fixed-n
    records only). Mixing sequential with fixed-n records is refused.
    """
    stored = [read_settings(path) for path in paths]
    if any(settings.get("method") == "sequential" for settings in stored):
        return _report_sequential(paths, [s if s.get("method") == "sequential" else None for s in stored], plot)
    runs = [_fixed_n_run(path, settings, norm) for path, settings in zip(paths, stored)]
    _refuse_mixed_modes(runs)
    norms = sorted({str(run["norm"]) for run in runs})
    if len(norms) > 1:
        described = "; ".join(
            f"{run['path']}: {run['mechanism'] or 'unknown'} noise, {run['norm'] or 'norm not recorded'}"
            for run in runs
        )
        raise ValueError(
            f"these records certify radii in different norms ({', '.join(norms)}), which no table or plot can compare; "
            f"report them apart ({described})"
        )
    grid = radius_grid([r for run in runs for r in run["records"]])
    rows, row_runs = [], []
    for run in runs:
        for bound in RECORD_BOUNDS:
            if run["records"][0].get(f"radius_{bound}") is None or (bound != "renyi" and not all_bounds):
                continue
            rows.append(_report_row(run, bound, grid, runs[0]["norm"]))
            row_runs.append(run)
    if plot:
        _plot_report(rows, row_runs, runs, plot, title, runs[0]["norm"])
    return FixedNReport(rows=rows, grid=grid, norm=runs[0]["norm"], mode=run_mode(runs[0]["settings"]), plot=plot)


def _fixed_n_run(path: str, settings: dict[str, Any], norm: str | None) -> dict[str, Any]:
    """One fixed-n records file, read and checked: its path, name, settings, norm, mechanism and records."""
    found = read_records(path)
    if not found.records:
        raise ValueError(f"{path!r} holds no records")
    recorded = recorded_norm(settings)
    if recorded is not None and norm is not None and norm != recorded:
        raise ValueError(
            f"{path}: its records are {recorded} radii ({settings.get('mechanism')} noise), not {norm}; drop --norm, "
            "which is only for records without settings"
        )
    records = [
        checked_record(record, f"{path} record {k}", settings.get("best_of"))
        for k, record in enumerate(found.records, start=1)
    ]
    verify_fixed_n(records, settings, path, settings_mechanism(path, settings))
    _note_unverified(path, settings)
    _warn_incomplete(path, settings, len(records))
    return {
        "path": path,
        "name": Path(path).stem,
        "settings": settings,
        "norm": recorded or norm,
        "mechanism": settings.get("mechanism"),
        "records": records,
    }


def _report_row(run: dict[str, Any], bound: str, grid: list[float], norm: str | None) -> dict[str, Any]:
    """The table row of one run under one bound (also ``report --json``'s object)."""
    summary = summarize_certified(run["records"], bound)
    settings = run["settings"]
    return {
        "records": run["path"],
        "mechanism": run["mechanism"],
        "scale": settings.get("scale"),
        "norm": norm,
        "bound": bound,
        "alpha": settings.get("alpha"),
        "n": settings.get("n"),
        "radii": grid,
        "certified_accuracy": [float(a) for a in certified_accuracy(run["records"], grid, bound)],
        **summary.as_dict(),
        "divergence_verifiable": settings.get("divergence_verifiable", True) if settings else None,
        "mode": run_mode(settings),
    }


def _plot_report(
    rows: list[dict[str, Any]],
    row_runs: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    plot: str,
    title: str,
    norm: str | None,
) -> None:
    """The report's curves, one per row, to ``plot`` (the best bound's dashed, on top; Teng's note under Laplace's tight curve)."""
    radii = curve_radii([run["records"] for run in runs], [row["bound"] for row in rows])
    curves = {}
    noise = "noise not recorded"
    for row, run in zip(rows, row_runs):
        scale = run["settings"].get("scale")
        noise = (
            f"{run['mechanism']} {scale:g}"
            if run["mechanism"] and isinstance(scale, (int, float))
            else "noise not recorded"
        )
        label = bound_label(row["bound"], run["mechanism"])
        curves[label if len(runs) == 1 else f"{run['name']}: {noise}, {label}"] = (
            radii,
            certified_accuracy(run["records"], radii, row["bound"]),
        )
    teng = any(row["bound"] == "tight" and row["mechanism"] == "laplace" for row in rows)
    dashed = [label for label, row in zip(curves, rows) if row["bound"] == "best"]
    plot_certified_accuracy(
        curves,
        plot,
        title=title if len(runs) > 1 else f"{title}: {runs[0]['name']} ({noise})",
        norm=norm or "norm not recorded",
        note=TENG_NOTE if teng else None,
        dashed=dashed,
    )


def _report_sequential(
    paths: list[str], settings: list[dict[str, Any] | None], plot: str | None
) -> list[SequentialReport]:
    """``report`` on records of ``certify --radii``: one summary per file (mixing them with fixed-n records is refused)."""
    if not all(settings):
        fixed = [p for p, s in zip(paths, settings) if not s]
        raise ValueError(
            f"cannot report fixed-n records ({', '.join(fixed)}) together with sequential ones (certify --radii): "
            "their radii are not comparable; report them apart"
        )
    if plot:
        raise ValueError(
            "--plot draws curves over radii from fixed-n records; sequential records hold answers at their own radii only"
        )
    _refuse_mixed_modes([{"path": path, "settings": stored} for path, stored in zip(paths, settings)])
    reports = []
    for path, stored in zip(paths, settings):
        assert stored is not None
        radii = stored.get("radii")
        numbers = isinstance(radii, list) and all(
            isinstance(r, (int, float)) and not isinstance(r, bool) for r in radii
        )
        if not radii or not numbers:
            raise ValueError(f"{path}: its settings hold no list of radii, got {radii!r}")
        records = read_records(path).records
        if not records:
            raise ValueError(f"{path!r} holds no records")
        summary = summarize_sequential(records, radii, path)  # checks each record's fields and types
        verify_sequential(records, radii, stored, path)
        _warn_incomplete(path, stored, len(records))
        _note_unverified(path, stored)
        what = (
            f"{Path(path).stem}: {stored.get('mechanism')}, scale {stored.get('scale')}, {stored.get('bound')} bound, "
            f"alpha = {stored.get('alpha')}, {run_mode(stored)} mode"
        )
        reports.append(SequentialReport(path=path, settings=stored, summary=summary, what=what))
    return reports


def sequential_report_json(report: SequentialReport) -> dict[str, Any]:
    """``report --json``'s object for one sequential records file (the summary's fields after the run's)."""
    stored = report.settings
    return {
        "records": report.path,
        "mechanism": stored.get("mechanism"),
        "scale": stored.get("scale"),
        "norm": recorded_norm(stored),
        "bound": stored.get("bound"),
        "alpha": stored.get("alpha"),
        "mode": run_mode(stored),
    }


def recertify_file(
    path: str, *, alpha: float, p2_mode: str = "runner-up", out: str | None = None, grid: int | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(records, run)``: the certificates the fixed-n records file ``path`` gives under ``alpha`` and ``p2_mode``.

    The file's recorded radii are re-derived at its own alpha first (a file that
    contradicts itself is refused before anything changes); with ``out`` the
    recomputed records and their settings are written there (a new file).
    ``grid`` must be the file's own (recertify keeps a file's mode).
    """
    settings = read_settings(path)
    if not settings:
        raise ValueError(
            f"{path!r} has no {settings_path(Path(path)).name} beside it: the mechanism and scale its counts were drawn "
            "with are unknown"
        )
    if settings.get("method") == "sequential":
        raise ValueError(
            f"{path!r} holds sequential records (certify --radii): their decisions depend on the alpha at every step, "
            "so they cannot be recomputed from the final counts; certify again"
        )
    mechanism = stored_mechanism(path, settings)
    if grid is not None and settings.get("grid") != grid:
        raise ValueError(
            f"--grid {grid}: {path!r} was certified in {run_mode(settings)} mode; recertify keeps a file's mode "
            f"(drop --grid, or certify again with --grid {grid})"
        )
    found = read_records(path)
    if not found.records:
        raise ValueError(f"{path!r} holds no records")
    checked = [checked_record(r, f"{path} record {k}", settings.get("best_of")) for k, r in enumerate(found.records, 1)]
    if not isinstance(settings.get("alpha"), float):
        raise ValueError(
            f"{path!r}: its settings hold no alpha, got {settings.get('alpha')!r}; the recorded radii cannot be "
            "re-derived before recomputing them"
        )
    verify_fixed_n(checked, settings, path, mechanism)  # the recorded radii, re-derived at the recorded alpha
    _warn_incomplete(path, settings, len(checked))
    records = recertify_records(checked, mechanism, alpha, p2_mode)
    if out:
        target = Path(out)
        if target.exists() or settings_path(target).exists():
            raise ValueError(f"--out {out!r} already exists; choose a new file")
        with RecordWriter(target) as writer:
            for record in records:
                writer.write(record)
        write_settings(target, dict(settings, alpha=alpha, p2_mode=p2_mode, recertified_from=str(path)))
    run = {
        "mechanism": mechanism.label,
        "scale": mechanism.scale,
        "norm": norm_name(mechanism.norm),
        "n0": settings.get("n0"),
        "n": settings.get("n"),
        "alpha": alpha,
        "mode": run_mode(settings),
    }
    return records, run
