"""The worst case over the norm ball: is ``D(x || x + delta)`` as large at the shifts of norm ``r`` as the formula says?

The plugin's divergence is a function of the distance only; the checker
searches the sphere of radius ``r`` (random directions, then local optimisation,
and structured shifts: the axes, sparse and dense vectors) for a shift whose
divergence, computed from the density coordinate by coordinate, exceeds the
formula's. A certificate in a norm holds only if none does.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .formula import plugin_divergence
from .results import CheckContext, CheckResult, Verdict

__all__ = ["BALL_RTOL", "check_norm_ball", "sparse_sizes"]


#: Relative tolerance of the norm-ball search (float64 on both sides).
BALL_RTOL = 1e-9


# --------------------------------------------------------------------- norm ball
def _on_sphere(vectors: NDArray[np.float64], norm: float, radius: float) -> NDArray[np.float64]:
    size = np.linalg.norm(vectors, ord=norm, axis=-1, keepdims=True)
    return np.abs(vectors) * (radius / np.where(size > 0.0, size, 1.0))


def _worst_shift(
    true_1d: Any, order: float, radius: float, norm: float, dimension: int, rng: np.random.Generator, restarts: int
) -> tuple[NDArray[np.float64], float]:
    """The shift of ``||d||_norm = radius`` in ``dimension`` coordinates with the largest true divergence found."""
    from scipy.optimize import minimize

    def total(vectors: NDArray[np.float64]) -> NDArray[np.float64]:
        return true_1d(np.full(vectors.shape, order), vectors).sum(axis=-1)

    axis = np.zeros(dimension)
    axis[0] = 1.0
    candidates = np.vstack(
        [axis, np.ones(dimension), rng.exponential(size=(16, dimension)), rng.random((16, dimension)) ** 4]
    )
    candidates = _on_sphere(candidates, norm, radius)
    values = total(candidates)
    ranking = np.argsort(values)[::-1]
    best, best_value = candidates[ranking[0]], float(values[ranking[0]])
    for start in candidates[ranking[:restarts]]:
        result = minimize(
            lambda v: -float(total(_on_sphere(v[None, :], norm, radius))[0]),
            start + 1e-3 * rng.random(dimension),
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 100 * dimension},
        )
        shift = _on_sphere(result.x[None, :], norm, radius)[0]
        value = float(total(shift[None, :])[0])
        if value > best_value:
            best, best_value = shift, value
    return best, best_value


def _structured_shifts(dimension: int, norm: float, radius: float) -> NDArray[np.float64]:
    """Shifts of ``||d||_norm = radius`` in ``dimension`` coordinates: the axis, the uniform one (for l_inf the cube's
    vertex, an extreme point of the ball) and k-sparse uniform ones for k = 2, 4, 8, ...; symmetric densities make
    signs irrelevant."""
    sizes = sparse_sizes(dimension)
    shifts = np.zeros((len(sizes), dimension))
    for row, k in enumerate(sizes):
        shifts[row, :k] = 1.0
    return _on_sphere(shifts, norm, radius)


def sparse_sizes(dimension: int) -> list[int]:
    """The numbers of equal non-zero coordinates the structured shifts use in ``dimension`` coordinates: 1, 2, 4, ..., and all."""
    return sorted({1, dimension, *(2**k for k in range(1, int(math.log2(dimension)) + 1))})


def _structured_values(
    true_1d: Any, order: float, radius: float, norm: float, dimension: int
) -> list[tuple[int, float, float]]:
    """``(k, coordinate, divergence)`` of the k-sparse uniform shifts of ``||d||_norm = radius``: k coordinates at ``radius / k^(1/norm)``.

    Product noise sums the 1-D divergences, so each needs one evaluation, whatever the dimension.
    """
    sizes = np.array(sparse_sizes(dimension), dtype=np.float64)
    coordinate = radius / sizes ** (0.0 if math.isinf(norm) else 1.0 / norm)
    values = sizes * true_1d(np.full(sizes.shape, order), coordinate)
    return [(int(k), float(c), float(v)) for k, c, v in zip(sizes, coordinate, values)]


def _search_plan(context: CheckContext) -> tuple[list[int], list[int], str, str | None]:
    """``(Nelder-Mead dimensions, structured-only dimensions, what is covered, what is not)`` for the mechanism's dimension."""
    quick = context.quick
    dimension = context.dimension if context.dimension is not None else context.mechanism.dimension
    if dimension is None:
        searched = [2, 3, 8] if quick else [2, 3, 4, 5, 6, 8]
        structured = [16, 64, 256, 1024, 4096, 16384, 65536, 1 << 20]
        covered = (
            f"a formula for every dimension: Nelder-Mead in {searched} coordinates, axis, uniform (l_inf: the cube's vertex) "
            f"and k-sparse shifts in {structured}"
        )
        return searched, structured, covered, "dimensions above 2^20 (1,048,576) are not searched"
    dimension = int(dimension)
    if dimension < 1:
        raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
    limit = 8 if quick else 12
    searched = sorted({d for d in (1, 2, 3, 4, 8, 12, dimension) if d <= min(dimension, limit)})
    structured = [dimension] if dimension > limit else []
    covered = f"the formula's dimension d = {dimension}: Nelder-Mead in {searched} coordinates" + (
        f", axis, uniform (l_inf: the cube's vertex) and k-sparse shifts in all {dimension}"
        if structured
        else " (every shift has at most d non-zero coordinates)"
    )
    missing = f"Nelder-Mead runs in at most {limit} of the {dimension} coordinates" if structured else None
    return searched, structured, covered, missing


def _worst_shifts(
    context: CheckContext,
    true_1d: Any,
    order: float,
    radius: float,
    dimensions: list[int],
    structured: list[int],
    rng: np.random.Generator,
    restarts: int,
) -> list[tuple[int, Any, float]]:
    """The worst shifts found at one (order, r): ``(coordinates, shift, true divergence)`` per searched and structured dimension.

    The searched ones are kept, over the radius, in ``context.worst_shifts`` (the tight-radius check tries them too).
    """
    norm = float(context.mechanism.norm)
    described: list[tuple[int, Any, float]] = []
    for dimension in dimensions:
        shift, value = _worst_shift(true_1d, order, radius, norm, dimension, rng, restarts)
        tidy = np.where(shift < 1e-12 * radius, 0.0, shift)
        described.append((int(tidy.size), [float(v) for v in tidy], value))
        context.worst_shifts.append(tidy / radius)
    for dimension in structured:
        k, coordinate, value = max(
            _structured_values(true_1d, order, radius, norm, dimension), key=lambda item: item[2]
        )
        described.append((dimension, f"{k} coordinates at {coordinate:.6g}", value))
    return described


def _holds_only_on_axis(context: CheckContext, true_1d: Any, counterexample: dict[str, Any]) -> bool:
    """Whether a formula that claims every dimension breaks only spread over coordinates (it holds along one axis)."""
    if context.mechanism.dimension is not None or context.dimension is not None or counterexample["coordinates"] <= 1:
        return False
    on_axis = float(true_1d(np.array([counterexample["order"]]), np.array([counterexample["r"]]))[0])
    return on_axis <= counterexample["closed_form"] * (1.0 + BALL_RTOL)


def check_norm_ball(context: CheckContext) -> CheckResult:
    """The closed form against the worst shift over ``||d|| = r`` in the dimension the formula assumes (or a range of them)."""
    mechanism = context.mechanism
    name = "norm-ball"
    if not mechanism.has_density:
        return CheckResult(name, Verdict.NOT_CHECKED, "not checked: no density (_symbolic_log_density)")
    derived = context.derived
    if derived.normalised is False:
        return CheckResult(
            name, Verdict.NOT_CHECKED, "not checked: the density does not integrate to 1 (see closed-form)"
        )
    true_1d = derived.vectorised(mechanism.scale)
    rng = np.random.default_rng(context.seed + 1)
    orders = [1.1, 2.0, 5.0] if context.quick else [1.01, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]
    ys = [0.2, 1.0, 3.0] if context.quick else [0.05, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0]
    dimensions, structured, covered, missing = _search_plan(context)
    restarts = 1 if context.quick else 2
    worst_excess, counterexample, slack = -math.inf, None, 0.0
    searched = 0
    for order in orders:
        for y in ys:
            radius = y * mechanism.scale
            closed = float(plugin_divergence(mechanism, order, radius))
            best_here = -math.inf
            described = _worst_shifts(context, true_1d, order, radius, dimensions, structured, rng, restarts)
            for coordinates, shift_text, value in described:
                searched += 1
                best_here = max(best_here, value)
                excess = (value - closed) / max(abs(closed), 1e-300)
                if excess > worst_excess:
                    worst_excess = excess
                    counterexample = {
                        "order": order,
                        "r": radius,
                        "coordinates": coordinates,
                        "shift": shift_text,
                        "closed_form": closed,
                        "true": value,
                    }
            slack = max(slack, (closed - best_here) / max(abs(closed), 1e-300))
    norm = float(mechanism.norm)
    norm_name = "inf" if math.isinf(norm) else f"{norm:g}"
    method = (
        f"true divergence = sum of 1-D divergences ({'sympy' if derived.expression is not None else 'quadrature'}), "
        f"worst shift over ||d||_{norm_name} = r in {searched} (order, r, dimension) cells; covered: {covered}"
    )
    if worst_excess > BALL_RTOL and counterexample is not None:
        counterexample["excess"] = f"{worst_excess:.3%} above the closed form"
        if _holds_only_on_axis(context, true_1d, counterexample):
            counterexample["hint"] = (
                "right along one axis, wrong spread over many: a formula that holds only in d coordinates must say so (Mechanism.dimension = d)"
            )
        return CheckResult(name, Verdict.FAIL, method, counterexample)
    warnings = (
        ()
        if slack <= 1e-6
        else (f"not tight over the ball: the worst shift found is up to {slack:.3%} below the closed form",)
    )
    limits = (_SEARCH_LIMIT,) + (() if missing is None else (missing,))
    return CheckResult(name, Verdict.PASS, method, {}, warnings, limits=limits)


#: What a passing norm-ball check does not prove.
_SEARCH_LIMIT = (
    "the search is numerical (Nelder-Mead from the best of 34 starting shifts, and structured shifts), not a proof"
)
