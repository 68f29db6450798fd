"""Radii per second of renyicert's solver against two baselines, in the same run.

Baselines:
(a) a per-pair ``scipy.optimize.minimize_scalar`` over alpha (bounded, in
    u = log(alpha - 1)), with ``scipy.optimize.brentq`` for the Laplace inverse;
(b) the paper's own method: a grid alpha in linspace(1.01, 2, 100), vectorised
    (Gaussian: the naive closed form of the original code; Laplace: the exact
    inverse at each grid order).
Accuracy: the max relative error against a 50-digit mpmath reference on a sample.
Prints a table and one JSON line. Usage: python benchmarks/solver.py [--pairs N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.optimize import brentq, minimize_scalar

import renyicert
from renyicert.budget import renyi_budget

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.reference import radius as reference_radius  # noqa: E402

PAPER_GRID = np.linspace(1.01, 2.0, 100)


def make_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p1 = 0.5 + 0.5 * rng.random(n) ** rng.integers(1, 4, n) * (1 - 1e-12)
    p2 = np.minimum(rng.random(n) * (1 - p1), 1 - p1)
    p2[::4] = 1 - p1[::4]  # a quarter with two classes (p2 = 1 - p1)
    return p1, p2


def scipy_per_pair(mechanism: renyicert.Mechanism, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    out = np.empty(p1.size)
    for i in range(p1.size):
        a, b = float(p1[i]), float(p2[i])

        def radius_at(u: float) -> float:
            alpha = 1.0 + np.exp(u)
            budget = float(renyi_budget(a, b, alpha))
            if mechanism.name == "gaussian":
                return mechanism.scale * np.sqrt(2 * budget / alpha)
            f = lambda r: float(mechanism._divergence(np.array(alpha), np.array(r))) - budget  # noqa: E731
            hi = mechanism.scale
            while f(hi) < 0:
                hi *= 2
            return brentq(f, 0.0, hi, xtol=1e-14, rtol=1e-12)

        res = minimize_scalar(lambda u: -radius_at(u), bounds=(-28.0, 35.0), method="bounded", options={"xatol": 1e-6})
        out[i] = -res.fun
    return out


def paper_grid(mechanism: renyicert.Mechanism, p1: np.ndarray, p2: np.ndarray) -> np.ndarray:
    if mechanism.name == "gaussian":
        best = np.zeros(p1.size)
        with np.errstate(all="ignore"):
            for alpha in PAPER_GRID:  # the original code's naive expression
                m = ((p1 ** (1 - alpha) + p2 ** (1 - alpha)) / 2) ** (1 / (1 - alpha))
                budget = -np.log(1 - p1 - p2 + 2 * m)
                best = np.fmax(best, mechanism.scale * np.sqrt(2 * budget / alpha))
        return best
    return np.max([renyicert.radius_at_order(mechanism, p1, p2, a) for a in PAPER_GRID], axis=0)


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--scipy-pairs", type=int, default=300)
    parser.add_argument("--grid-pairs", type=int, default=100_000)
    parser.add_argument("--reference-pairs", type=int, default=12)
    args = parser.parse_args()
    p1, p2 = make_pairs(args.pairs)
    report = {"pairs": args.pairs}
    rows = []
    for name in ("gaussian", "laplace"):
        mechanism = renyicert.get_mechanism(name, scale=0.5)
        renyicert.certified_radius(mechanism, p1[:1000], p2[:1000])  # warm-up
        (ours, _), t_ours = timed(renyicert.certified_radius, mechanism, p1, p2)
        k = args.scipy_pairs
        scipy_values, t_scipy = timed(scipy_per_pair, mechanism, p1[:k], p2[:k])
        g = min(args.grid_pairs, args.pairs)
        grid_values, t_grid = timed(paper_grid, mechanism, p1[:g], p2[:g])
        rate_ours, rate_scipy, rate_grid = args.pairs / t_ours, k / t_scipy, g / t_grid
        sample = np.linspace(0, args.pairs - 1, args.reference_pairs).astype(int)
        refs = np.array([reference_radius(name, p1[i], p2[i], 0.5) for i in sample])
        rel_err = float(np.max(np.abs(ours[sample] - refs) / refs))
        grid_err = float(
            np.max(np.abs(grid_values[np.isin(np.arange(g), sample)] - refs[sample < g]) / refs[sample < g])
        )
        smaller = int(np.sum(ours[:g] < grid_values[:g] * (1 - 1e-12)))
        gain = float(np.median(ours[:g] / np.where(grid_values[:g] > 0, grid_values[:g], np.nan)))
        rows.append((name, rate_ours, rate_scipy, rate_grid, rel_err, grid_err, smaller, gain))
        report[name] = {
            "radii_per_s": rate_ours,
            "scipy_per_pair_radii_per_s": rate_scipy,
            "paper_grid_radii_per_s": rate_grid,
            "speedup_vs_scipy": rate_ours / rate_scipy,
            "speedup_vs_paper_grid": rate_ours / rate_grid,
            "max_rel_error_vs_mpmath": rel_err,
            "paper_grid_max_rel_error_vs_mpmath": grid_err,
            "pairs_where_ours_below_grid": smaller,
            "median_ours_over_grid": gain,
        }
    print(
        f"{'mechanism':<10}{'ours/s':>12}{'scipy/s':>10}{'grid/s':>11}{'x scipy':>9}{'x grid':>8}{'ours err':>10}{'grid err':>10}{'ours<grid':>10}{'med gain':>9}"
    )
    for name, ro, rs, rg, e, ge, sm, gain in rows:
        print(
            f"{name:<10}{ro:>12,.0f}{rs:>10,.0f}{rg:>11,.0f}{ro / rs:>9.0f}{ro / rg:>8.2f}{e:>10.1e}{ge:>10.1e}{sm:>10d}{gain:>9.4f}"
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
