"""The lattice check: what lattice mode (:mod:`renyicert.lattice`) relies on, verified for one mechanism.

Lattice mode's certificate holds when (1) the plugin's ``_coordinate_cdf`` is the CDF
of the noise whose divergence was verified, (2) the integer thresholds give each
atom at most its true mass, and (3) every sampler path draws the atoms those
thresholds say. The check tests each, at the grids of :data:`GRIDS`:

1. the CDF against the density (mpmath quadrature of ``exp(_symbolic_log_density)``,
   to 1e-12) where there is one, and against ``sample()`` (Kolmogorov-Smirnov) always;
2. the thresholds: non-decreasing int64, the guide table recomputed, and every atom's
   integer mass compared *exactly* (an integer against a binary mpmath number) with
   ``2^64 (F(j + 1/2) - F(j - 1/2))`` evaluated at :data:`VERIFY_DIGITS` digits, with a
   margin of 2^-40 that is far above that evaluation's error; the failure mass per
   coordinate is reported and must be below ``(atoms + 1) 2^-64 + 2 tail``;
3. the draws of every path (eager torch, the C++ kernel, Triton on CUDA or under
   ``TRITON_INTERPRET=1``; ``torch.compile`` of the eager path's ops is compared with it
   bit for bit by the test suite, not here: a compilation costs seconds) against the eager path bit for bit,
   and the eager path's atoms against the rounded pmf by a chi-square test over
   bands of atoms (each band expecting at least 20 draws).

What it cannot cover: a CDF that agrees with the density to 1e-12 everywhere it is
evaluated but not between those points (the mass check is exact only against the
plugin's own CDF), and paths this machine cannot run (Triton on CUDA without a GPU).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._engine.engine import VoteEngine
from .._engine.native import native_ops
from ..lattice import GUIDE_BITS, THRESHOLD_SHIFT, lattice_noise
from .derivation import log_density_expression, symbols
from .paths import triton_importable
from .results import CheckContext, CheckResult, Verdict

__all__ = ["GRIDS", "VERIFY_DIGITS", "check_lattice"]

#: The grids checked: scikit-learn's digits (16 levels) and 8-bit images.
GRIDS = (16, 255)
#: Digits of the verifying CDF evaluation (the thresholds were built at 50).
VERIFY_DIGITS = 80
_NAME = "lattice"
_SIGNIFICANCE = 1e-5


def _cdf_against_density(context: CheckContext) -> str | None:
    """A problem when ``_coordinate_cdf`` disagrees with the density at a few points (``None`` when it agrees, or there is no density)."""
    import mpmath

    mechanism = context.mechanism
    if not mechanism.has_density:
        return None
    import sympy

    sym = symbols()
    expression = log_density_expression(mechanism).subs(sym["scale"], mechanism.scale)
    log_pdf = sympy.lambdify(sym["x"], expression, modules="mpmath")
    scale = mechanism.scale
    with mpmath.workdps(30):
        for t in (-3.0, -1.0, -0.25, 0.0, 0.5, 2.0):
            point = mpmath.mpf(t) * scale
            integral = mpmath.quad(
                lambda z: mpmath.exp(log_pdf(z)), [-mpmath.inf, -scale, 0, point] if t > 0 else [-mpmath.inf, point]
            )
            claimed = mpmath.mpf(mechanism._eval_coordinate_cdf(point))
            if abs(claimed - integral) > 1e-12:
                return f"_coordinate_cdf({mpmath.nstr(point, 6)}) = {mpmath.nstr(claimed, 12)}, but the density integrates to {mpmath.nstr(integral, 12)} there"
    return None


def _cdf_against_sample(context: CheckContext) -> tuple[str | None, float]:
    """A problem when ``sample()``'s draws do not follow ``_coordinate_cdf`` (KS test), and the p-value."""
    import mpmath
    from scipy import stats

    mechanism = context.mechanism
    draws = mechanism.sample(
        (20_000 if context.quick else 100_000,), seed=context.seed, dtype=__import__("torch").float64
    ).numpy()
    with mpmath.workdps(20):
        cdf = np.vectorize(lambda z: float(mechanism._eval_coordinate_cdf(mpmath.mpf(float(z)))))
        pvalue = float(stats.kstest(draws, cdf).pvalue)
    if pvalue < _SIGNIFICANCE:
        return f"sample() does not follow _coordinate_cdf (Kolmogorov-Smirnov p = {pvalue:.2g})", pvalue
    return None, pvalue


def _threshold_problems(noise: Any) -> tuple[str | None, dict[str, Any]]:
    """Check one lattice's thresholds exactly; ``(problem or None, evidence)``."""
    import mpmath

    ends = noise.ends
    if ends.dtype != np.int64 or ends.ndim != 1 or ends.size == 0:
        return f"the thresholds are {ends.dtype} of shape {ends.shape}, expected a non-empty int64 vector", {}
    masses = noise.integer_masses()
    if min(masses) < 0:
        a = int(np.argmin(masses))
        return f"the thresholds decrease at atom {noise.lowest + a}", {"atom": noise.lowest + a}
    buckets = (np.arange(1 << GUIDE_BITS, dtype=np.uint64) << np.uint64(64 - GUIDE_BITS)) ^ np.uint64(THRESHOLD_SHIFT)
    if not np.array_equal(noise.guide, np.searchsorted(ends, buckets.view(np.int64), side="right")):
        return "the guide table does not match the thresholds", {}
    mechanism, grid = noise.mechanism, noise.grid
    margin = mpmath.mpf(2) ** -40
    worst = (math.inf, None)
    with mpmath.workdps(VERIFY_DIGITS):
        two_64 = mpmath.mpf(2) ** 64
        below = mpmath.mpf(mechanism._eval_coordinate_cdf(mpmath.mpf(noise.lowest - mpmath.mpf("0.5")) / grid))
        # The first drawn integer is at or above 2^64 F(lowest - 1/2): the intervals sit inside [F(lowest - 1/2), 1].
        if mpmath.mpf(noise.start + THRESHOLD_SHIFT) < below * two_64 - margin:
            return "the first threshold is below the left tail's mass", {}
        for a, mass in enumerate(masses):
            above = mpmath.mpf(mechanism._eval_coordinate_cdf(mpmath.mpf(noise.lowest + a + mpmath.mpf("0.5")) / grid))
            slack = (above - below) * two_64 - mass  # exact: an integer against a binary number
            if slack < margin:
                return (
                    f"atom {noise.lowest + a} of the grid 1/{grid} gets {mass} / 2^64, more than its true mass "
                    f"{mpmath.nstr((above - below) * two_64, 25)} / 2^64",
                    {"atom": noise.lowest + a, "integers": mass},
                )
            if slack < worst[0]:
                worst = (float(slack), noise.lowest + a)
            below = above
    failure = noise.failure_mass
    bound = (noise.atoms + 1) / 2.0**64 + 2 * noise.tail
    evidence = {
        "grid": grid,
        "atoms": noise.atoms,
        "lowest": noise.lowest,
        "failure_per_coordinate": float(failure),
        "failure_bound": bound,
        "smallest_slack_integers": worst[0],
    }
    if float(failure) > bound:
        return (
            f"the failure mass per coordinate on the grid 1/{grid} is {float(failure):.3g}, above the bound {bound:.3g}",
            evidence,
        )
    return None, evidence


def _path_draws(
    noise: Any, backend: str, coordinates: int, rows: int, seed: int, device: str = "cpu"
) -> tuple[Any, Any]:
    """``(atoms (rows, coordinates), failed flags)`` of an input at mid-grid drawn through the engine on ``backend``."""
    import torch

    engine = VoteEngine(torch.nn.Identity(), noise.mechanism, 1, backend=backend, lattice=noise)
    k = noise.grid // 2
    x = torch.full((1, coordinates), k / noise.grid, dtype=torch.float32, device=device)
    copies, failed = engine.draw_copies(x, seed, rows, with_failures=True)
    atoms = torch.round(copies.double() * noise.grid).to(torch.int64) - k
    return atoms.cpu().numpy(), failed.cpu().numpy()


_TRITON_SCRIPT = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
import numpy as np, renyicert
from renyicert.lattice import lattice_noise
from renyicert.checker.lattice import _path_draws

mechanism = renyicert.get_mechanism(sys.argv[1], scale=float(sys.argv[2]))
atoms, failed = _path_draws(lattice_noise(mechanism, int(sys.argv[3])), "triton", int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
np.save(sys.argv[7], atoms)
"""


def _triton_interpreted(noise: Any, coordinates: int, rows: int, seed: int) -> Any:
    """The Triton lattice kernel under ``TRITON_INTERPRET=1`` in a fresh interpreter (registered mechanisms only)."""
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "atoms.npy"
        arguments = [
            noise.mechanism.name,
            repr(float(noise.mechanism.scale)),
            str(noise.grid),
            str(coordinates),
            str(rows),
            str(seed),
            str(target),
        ]
        result = subprocess.run(
            [sys.executable, "-c", _TRITON_SCRIPT, *arguments],
            env=dict(os.environ, TRITON_INTERPRET="1"),
            capture_output=True,
            text=True,
            timeout=600,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"the Triton lattice kernel under TRITON_INTERPRET=1 failed: {result.stderr.strip().splitlines()[-1:]}"
            )
        return np.load(target)


def _chi_square(noise: Any, atoms: Any) -> float:
    """The p-value of the draws against the lattice's pmf, atoms merged into bands expecting at least 20 draws each."""
    from scipy import stats

    masses = noise.masses()
    masses = masses / masses.sum()
    observed = np.bincount((atoms.reshape(-1) - noise.lowest).clip(0, noise.atoms - 1), minlength=noise.atoms).astype(
        np.float64
    )
    expected = masses * atoms.size
    edges, total = [0], 0.0
    for a, value in enumerate(expected):
        total += value
        if total >= 20.0:
            edges.append(a + 1)
            total = 0.0
    edges[-1] = noise.atoms
    observed_bands = np.add.reduceat(observed, edges[:-1])
    expected_bands = np.add.reduceat(expected, edges[:-1])
    return float(stats.chisquare(observed_bands, expected_bands * observed_bands.sum() / expected_bands.sum()).pvalue)


def check_lattice(context: CheckContext) -> CheckResult:
    """Verify what lattice mode relies on (see the module): the CDF, the thresholds exactly, and the draws of every path."""
    mechanism = context.mechanism
    if not mechanism.has_coordinate_cdf:
        return CheckResult(
            _NAME,
            Verdict.PASS,
            "no _coordinate_cdf: lattice mode refuses this mechanism, so nothing it relies on can be wrong",
            {},
            limits=("lattice mode not offered (no _coordinate_cdf)",),
        )
    problem = _cdf_against_density(context)
    if problem is not None:
        return CheckResult(
            _NAME, Verdict.FAIL, "_coordinate_cdf against the density (mpmath quadrature)", {"problem": problem}
        )
    problem, ks = _cdf_against_sample(context)
    if problem is not None:
        return CheckResult(
            _NAME,
            Verdict.FAIL,
            "_coordinate_cdf against sample() (Kolmogorov-Smirnov)",
            {"problem": problem, "pvalue": ks},
        )
    evidence: dict[str, Any] = {"ks_pvalue": ks, "grids": {}}
    limits: list[str] = []
    coordinates, rows = 64, 2_000 if context.quick else 10_000
    for grid in GRIDS[-1:] if context.quick else GRIDS:
        failure, found = _grid_problem(context, grid, coordinates, rows, limits)
        if failure is not None:
            return CheckResult(_NAME, Verdict.FAIL, failure, found)
        evidence["grids"][str(grid)] = found
    method = "CDF against density and sample(); thresholds exact at 80 digits; failure mass bounded; every path's atoms equal, chi-square against the pmf"
    return CheckResult(_NAME, Verdict.PASS, method, evidence, limits=tuple(limits))


def _grid_problem(
    context: CheckContext, grid: int, coordinates: int, rows: int, limits: list[str]
) -> tuple[str | None, dict[str, Any]]:
    """One grid 1/``grid``: its thresholds exactly, the eager draws against the pmf, every other path's atoms against the eager ones.

    Returns what failed (``None`` if nothing) and the evidence; the paths that could not be drawn here go to ``limits``.
    """
    import torch

    mechanism = context.mechanism
    noise = lattice_noise(mechanism, grid)
    problem, found = _threshold_problems(noise)
    if problem is not None:
        return "the thresholds against the CDF at 80 digits (exact comparison)", {"problem": problem, **found}
    reference, _ = _path_draws(noise, "eager", coordinates, rows, context.seed)
    pvalue = _chi_square(noise, reference)
    found["chi_square_pvalue"] = pvalue
    if pvalue < _SIGNIFICANCE:
        problem = f"the draws on the grid 1/{grid} do not follow the thresholds' pmf (p = {pvalue:.2g})"
        return "the eager lattice draws against the rounded pmf (chi-square)", {"problem": problem, **found}
    paths = ["native"] if native_ops() is not None else []
    if native_ops() is None:
        limits.append("native C++ lattice path not drawn: the kernels could not be built here")
    if "compiled" not in " ".join(limits):
        limits.append(
            "compiled lattice path not drawn: torch.compile of the eager path's ops (the test suite compares the two bit for bit)"
        )
    draws = {path: _path_draws(noise, path, coordinates, rows, context.seed)[0] for path in paths}
    if torch.cuda.is_available():
        draws["triton (CUDA)"] = _path_draws(noise, "triton", coordinates, rows, context.seed, "cuda")
    elif not context.quick and mechanism.name and triton_importable():
        draws["triton (TRITON_INTERPRET=1)"] = _triton_interpreted(noise, coordinates, 64, context.seed)
    else:
        limits.append(
            "Triton lattice path not drawn (no GPU; under the interpreter in full mode, for registered mechanisms)"
        )
    for path, atoms in draws.items():
        if not np.array_equal(atoms, reference[: atoms.shape[0]]):
            problem = f"the {path} path draws other atoms than the eager one on the grid 1/{grid}"
            return "every path's atoms against the eager path's", {"problem": problem, **found}
    found["paths"] = ["eager", *draws]
    return None, found
