"""The commands on records files: ``report`` (tables and plots) and ``recertify`` (certificates recomputed from counts)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import workflow
from .arguments import add_grid_option, print_json

__all__ = ["add_commands"]


def _cmd_report(args: argparse.Namespace) -> int:
    found = workflow.report_records(
        args.records, all_bounds=args.all_bounds, norm=args.norm, plot=args.plot, title=args.title
    )
    if isinstance(found, list):  # sequential records: one table per file
        for run in found:
            if args.json:
                print_json({**workflow.sequential_report_json(run), **workflow.sequential_json(run.summary)})
            else:
                print(
                    workflow.sequential_table(run.summary, run.what, run.settings.get("budget"), run.settings.get("n0"))
                )
        return 0
    if args.json:
        for row in found.rows:
            print_json(row)
    else:
        print(workflow.records_report_table(found.rows, found.grid, found.norm, found.mode))
    if found.plot and not args.json:
        print(f"plot: {found.plot}")
    return 0


def _cmd_recertify(args: argparse.Namespace) -> int:
    """``recertify``: the certificates a fixed-n records file's counts give under another alpha or p2 mode, without the model."""
    records, what = workflow.recertify_file(
        args.records, alpha=args.alpha, p2_mode=args.p2_mode, out=args.out, grid=args.grid
    )
    if args.json:
        print_json(workflow.fixed_n_summary(records, what, args.out))
    else:
        print(workflow.fixed_n_table(records, what, args.out))
    return 0


def _add_report(sub: Any) -> None:
    """``report``: tables and plots of records files."""
    rp = sub.add_parser(
        "report",
        help="certified accuracy of records files",
        description="Certified accuracy against radius from 'renyicert certify' records, as a table and a plot.",
    )
    rp.add_argument("records", nargs="+", help="JSONL records files")
    rp.add_argument("--all-bounds", action="store_true", help="every bound, not only the Rényi one")
    rp.add_argument("--plot", help="PNG file for the plot")
    rp.add_argument("--title", default="Certified accuracy", help="plot title")
    rp.add_argument(
        "--norm",
        help="the norm of records without a settings file (default: read from the settings, the mechanism's norm)",
    )
    rp.add_argument("--json", action="store_true", help="print one JSON object per row")
    rp.set_defaults(func=_cmd_report)


def _add_recertify(sub: Any) -> None:
    """``recertify``: certificates recomputed from counts."""
    rc = sub.add_parser(
        "recertify",
        help="recompute certificates from a records file's counts",
        description="Recompute every certificate of a fixed-n records file from its counts under another alpha or p2 mode, without the model "
        "(every bound, as certify computes them). Choose the alpha before looking: trying several and keeping the best spends more than one.",
    )
    rc.add_argument("records", help="a JSONL records file written by 'renyicert certify' (its settings file beside it)")
    rc.add_argument(
        "--alpha",
        type=float,
        required=True,
        help="the failure probability to certify at; choose it before looking: trying several and keeping the best spends each",
    )
    rc.add_argument(
        "--p2-mode",
        choices=["runner-up", "complement"],
        default="runner-up",
        help="bound the runner-up class (default, as certify does) or take p2 = 1 - p1",
    )
    rc.add_argument("--out", help="write the recomputed records (and their settings) here")
    add_grid_option(rc)
    rc.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    rc.set_defaults(func=_cmd_recertify)


def add_commands(sub: Any) -> None:
    """Register ``report`` and ``recertify`` on the CLI's subparsers."""
    _add_report(sub)
    _add_recertify(sub)
