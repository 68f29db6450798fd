"""The mechanism commands: ``mechanisms`` (the installed plugins), ``radius``, ``table`` and ``check``.

Each pairs its parser with its handler; they need no torch model, only the
core (:mod:`renyicert.radii` for the radii, :func:`renyicert.check`).
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

import numpy as np

from .. import available_mechanisms, check
from ..checker import CHECKS
from ..radii import BOUNDS, best_radii, bound_radius, offered_bounds, radius_table
from .arguments import add_option_argument, float_list, mechanism_from_arguments, print_json

__all__ = ["add_commands"]


def _bounds_for(mechanism: Any, wanted: str) -> list[str]:
    """``--bound``: one bound, or with ``all`` every bound the mechanism offers and ``best``."""
    return [wanted] if wanted != "all" else [*offered_bounds(mechanism), "best"]


def _radius(mechanism: Any, bound: str, p1: Any, p2: Any, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(radius, order)`` of one bound, or for ``best`` ``(radius, the bound that gave it)``."""
    if bound != "best":
        return bound_radius(mechanism, bound, p1, p2, delta)
    certified = np.asarray(p1) > np.asarray(p2)
    radius, _, winner = best_radii(mechanism, np.where(certified, p1, 1.0), np.where(certified, p2, 0.0), certified)
    return np.asarray(radius), np.asarray(winner)


def _fmt(value: Any, width: int = 10) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        if math.isinf(value):
            return "inf".rjust(width)
        return f"{value:{width}.6g}"
    return str(value).rjust(width)


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    print("  ".join(c.rjust(10) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c)) for c in columns))


def _cmd_mechanisms(args: argparse.Namespace) -> int:
    infos = available_mechanisms()
    if args.json:
        print(json.dumps([{"name": i.name, "norm": i.norm, "provider": i.provider} for i in infos]))
        return 0
    print(f"{'name':<16}{'norm':>6}  provider")
    for info in infos:
        norm = "inf" if math.isinf(info.norm) else f"{info.norm:g}"
        print(f"{info.name:<16}{norm:>6}  {info.provider}")
    return 0


def _cmd_radius(args: argparse.Namespace) -> int:
    mechanism = mechanism_from_arguments(args.mechanism, args.scale, args.options)
    if len(args.p1) != len(args.p2) and len(args.p2) != 1:
        raise ValueError(f"give one --p2 or as many as --p1 ({len(args.p1)}), got {len(args.p2)}")
    p1 = np.asarray(args.p1, dtype=float)
    p2 = np.broadcast_to(np.asarray(args.p2, dtype=float), p1.shape)
    bounds = _bounds_for(mechanism, args.bound)
    results = {bound: _radius(mechanism, bound, p1, p2, args.delta) for bound in bounds}
    rows = []
    for i in range(p1.size):
        row: dict[str, Any] = {
            "mechanism": mechanism.label,
            **mechanism.get_params(),
            "p1": float(p1[i]),
            "p2": float(p2[i]),
        }
        for bound in bounds:
            row[bound] = float(results[bound][0][i])
        if "best" in results:
            row["best_bound"] = str(results["best"][1][i])
        if "renyi" in results:
            row["order"] = float(results["renyi"][1][i])
        rows.append(row)
    if args.json:
        for row in rows:
            print_json(row)
    else:
        _print_table(
            rows,
            [
                "p1",
                "p2",
                *bounds,
                *(["best_bound"] if "best" in results else []),
                *(["order"] if "renyi" in results else []),
            ],
        )
    return 0


def _cmd_table(args: argparse.Namespace) -> int:
    p1_values = [0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 0.9999]
    mechanisms = [("gaussian", 0.25), ("gaussian", 0.5), ("laplace", 0.25), ("laplace", 0.5)]
    rows = radius_table(mechanisms, p1_values, delta=args.delta)
    print("Certified radii with p2 = 1 - p1 (renyi: Li et al. 2019, maximised over the Rényi order in (1, inf];")
    print(f"tight: Cohen et al. 2019 / Teng et al. 2020; pixeldp: Lecuyer et al. 2019, delta = {args.delta:g})")
    for name, scale in mechanisms:
        print(f"\n{name} (l{'2' if name == 'gaussian' else '1'}), scale {scale:g}")
        _print_table(
            [r for r in rows if r["mechanism"] == name and r["scale"] == scale],
            ["p1", "renyi", "order", "tight", "pixeldp"],
        )
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    mechanism = mechanism_from_arguments(args.name, args.scale, args.options)
    report = check(
        mechanism, quick=args.quick, seed=args.seed, checks=args.only or list(CHECKS), dimension=args.dimension
    )
    print(report.to_json() if args.json else report)
    if report.failures:
        return 1
    if report.not_checked and not args.allow_not_checked:
        return 3
    return 0


def _add_mechanisms(sub: Any) -> None:
    """``mechanisms``: the installed plugins."""
    mech = sub.add_parser(
        "mechanisms",
        help="list the installed noise mechanisms",
        description="List the mechanisms discovered through the 'renyicert' entry points.",
    )
    mech.add_argument("--json", action="store_true", help="print JSON instead of a table")
    mech.set_defaults(func=_cmd_mechanisms)


def _add_radius(sub: Any) -> None:
    """``radius``: the certified radius at given bounds."""
    rad = sub.add_parser(
        "radius",
        help="certified radius for given class probabilities",
        description="Certified radius for given (p1, p2).",
    )
    rad.add_argument("--mechanism", required=True, help="registered mechanism name, e.g. gaussian or laplace")
    rad.add_argument("--scale", required=True, type=float, help="noise scale (sigma for gaussian, b for laplace)")
    rad.add_argument(
        "--p1", required=True, type=float_list, help="lower bound(s) on the top-class probability, comma-separated"
    )
    rad.add_argument(
        "--p2", required=True, type=float_list, help="upper bound(s) on the runner-up probability, comma-separated"
    )
    rad.add_argument(
        "--bound",
        choices=[*BOUNDS, "best", "all"],
        default="renyi",
        help="which certificate; best: the largest of them, at no extra alpha (default: renyi)",
    )
    rad.add_argument("--delta", type=float, default=1e-5, help="delta of the PixelDP bound (default: 1e-5)")
    rad.add_argument("--json", action="store_true", help="print one JSON object per line")
    add_option_argument(rad)
    rad.set_defaults(func=_cmd_radius)


def _add_check(sub: Any) -> None:
    """``check``: verify a mechanism."""
    chk = sub.add_parser(
        "check",
        help="verify a mechanism's divergence formula and sampler",
        description="Verify a mechanism: its closed form against its density (sympy, mpmath), the worst shift "
        "over the norm ball, the laws of a divergence (hypothesis), and its sampler against the density and "
        "the divergence (scipy.stats, Monte Carlo), and the comparison bounds against the divergence. Exit status: 0 when every "
        "check passed; 1 when a check failed; 3 when none failed but some could not run (no density, no symbolic form: "
        "the mechanism is not verified), unless --allow-not-checked.",
    )
    chk.add_argument("name", help="registered mechanism name, e.g. gaussian or laplace")
    chk.add_argument(
        "--scale", type=float, default=0.3, help="noise scale to check at (default: 0.3; 1.0 hides a scale**2 mix-up)"
    )
    chk.add_argument("--quick", action="store_true", help="fewer points and samples (a few seconds; what CI runs)")
    chk.add_argument("--seed", type=int, default=0, help="seed of every random choice (default: 0)")
    chk.add_argument(
        "--only",
        action="append",
        metavar="CHECK",
        help="run only this check (repeatable): closed-form, norm-ball, laws, optional-methods, sampler-density, sampler-divergence",
    )
    chk.add_argument("--json", action="store_true", help="print the report as one JSON object")
    chk.add_argument(
        "--allow-not-checked", action="store_true", help="exit 0, not 3, when no check failed but some could not run"
    )
    chk.add_argument(
        "--dimension",
        type=int,
        help="the input dimension to search the worst shift in (default: the mechanism's own, else 2 to 8 coordinates and structured shifts up to 2^20)",
    )
    add_option_argument(chk)
    chk.set_defaults(func=_cmd_check)


def _add_table(sub: Any) -> None:
    """``table``: radii of the built-in mechanisms."""
    table = sub.add_parser(
        "table",
        help="print a table of certified radii for the built-in mechanisms",
        description="A table of certified radii for both built-in mechanisms under every bound, with p2 = 1 - p1.",
    )
    table.add_argument("--delta", type=float, default=1e-5, help="delta of the PixelDP bound (default: 1e-5)")
    table.set_defaults(func=_cmd_table)


def add_commands(sub: Any) -> None:
    """Register ``mechanisms``, ``radius``, ``check`` and ``table`` on the CLI's subparsers."""
    _add_mechanisms(sub)
    _add_radius(sub)
    _add_check(sub)
    _add_table(sub)
