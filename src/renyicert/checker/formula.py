"""The checks of a mechanism's divergence formula: closed form, worst case over the norm ball, laws.

Each check takes a :class:`renyicert.checker.CheckContext` and returns a
:class:`renyicert.checker.CheckResult`; :func:`renyicert.check` runs them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .results import CheckContext, CheckResult, Verdict

__all__ = ["check_closed_form", "check_laws", "check_norm_ball"]

#: Relative tolerance between the plugin's float64 divergence and the 40-digit derived value.
SYMBOLIC_RTOL = 1e-9
#: The same when the derived value comes from quadrature.
QUADRATURE_RTOL = 1e-7
#: Relative tolerance of the norm-ball search (float64 on both sides).
BALL_RTOL = 1e-9
#: Distances below this are left out of the location-scale law: ``y * scale`` loses digits to underflow there (5e-324 * 0.3 is 0).
_LAW_FLOOR = 1e-290


def _plugin_divergence(mechanism: Any, order: Any, distance: Any) -> NDArray[np.float64]:
    return np.asarray(mechanism.divergence(np.asarray(order, dtype=np.float64), np.asarray(distance, dtype=np.float64)), dtype=np.float64)


def _test_points(context: CheckContext, count: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Orders in (1, ~100] and distances (in units of scale) in [1e-3, 20], fixed ones first, then random."""
    rng = np.random.default_rng(context.seed)
    fixed_a = np.array([1.001, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0, 50.0])
    fixed_y = np.array([1e-3, 0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0])
    grid_a, grid_y = (g.ravel() for g in np.meshgrid(fixed_a, fixed_y))
    random_a = 1.0 + 10.0 ** rng.uniform(-3.0, 2.0, count)
    random_y = 10.0 ** rng.uniform(-3.0, math.log10(20.0), count)
    order = np.concatenate([grid_a, random_a])
    y = np.concatenate([grid_y, random_y])
    keep = (order - 1.0) * y < 600.0  # keep e^((order-1) y) within float64 on the plugin's side
    return order[keep], y[keep] * context.mechanism.scale


def check_closed_form(context: CheckContext) -> CheckResult:
    """The closed form against the divergence derived from the density, symbolically where sympy can decide."""
    mechanism = context.mechanism
    name = "closed-form"
    if not mechanism.has_density:
        return CheckResult(name, Verdict.NOT_CHECKED, "not checked: no density (_symbolic_log_density)")
    derived = context.derived
    warnings: list[str] = []
    if derived.normalised is False:
        return CheckResult(name, Verdict.FAIL, "sympy: the density does not integrate to 1", {"log_density": str(derived.log_density)})
    if derived.normalised is None:
        warnings.append("could not show that the density integrates to 1")
    symbolic = _symbolic_comparison(context) if derived.expression is not None and mechanism.has_symbolic_divergence else None
    # Numeric comparison at many points: decides where sympy could not, and checks
    # that the float64 implementation matches the formula either way.
    order, distance = _test_points(context, 40 if context.quick else 200)
    plugin = _plugin_divergence(mechanism, order, distance)
    true = np.array([float(derived.at(a, r, mechanism.scale)) for a, r in zip(order, distance)])
    rtol = SYMBOLIC_RTOL if derived.expression is not None else QUADRATURE_RTOL
    relative = (plugin - true) / np.maximum(np.abs(true), 1e-300)
    below = relative < -rtol
    above = relative > rtol
    numeric_method = f"{derived.method}; float64 closed form vs {len(order)} points (order, r), rtol {rtol:g}"
    if below.any():
        worst = int(np.argmin(relative))
        evidence = {
            "order": float(order[worst]),
            "r": float(distance[worst]),
            "shift": [float(distance[worst])],
            "closed_form": float(plugin[worst]),
            "true": float(true[worst]),
            "points_below": int(below.sum()),
        }
        if symbolic is not None and symbolic[0] is Verdict.PASS:
            evidence["note"] = "the sympy closed form is right but the float64 _divergence disagrees with it"
        return CheckResult(name, Verdict.FAIL, f"closed form below the true divergence: {numeric_method}", evidence, tuple(warnings))
    if symbolic is not None:
        verdict, method, tight = symbolic
        mismatch = _implementation_mismatch(context, order, distance, plugin)
        if mismatch is not None:
            return CheckResult(name, Verdict.FAIL, f"{method}, but the float64 _divergence does not match that formula", mismatch, tuple(warnings))
        if not tight:
            warnings.append("not tight along one axis: the closed form is above the divergence of an axis-aligned shift (the norm-ball check covers the others)")
        return CheckResult(name, Verdict.PASS, f"{method}; the float64 implementation agrees at {len(order)} points", {}, tuple(warnings))
    if above.any():
        worst = int(np.argmax(relative))
        warnings.append(
            f"not tight along one axis: the closed form is above the axis-aligned divergence at {int(above.sum())} of {len(order)} points "
            f"(most at order={order[worst]:.6g}, r={distance[worst]:.6g}: {plugin[worst]:.10g} vs {true[worst]:.10g})"
        )
    return CheckResult(name, Verdict.PASS, numeric_method, {}, tuple(warnings))


def _implementation_mismatch(
    context: CheckContext, order: NDArray[np.float64], distance: NDArray[np.float64], plugin: NDArray[np.float64]
) -> dict[str, Any] | None:
    """Where the float64 ``_divergence`` and the sympy ``_symbolic_divergence`` differ by more than ``SYMBOLIC_RTOL``."""
    import mpmath
    import sympy

    from .derivation import MP_DIGITS, symbols

    sym = symbols()
    closed = sympy.sympify(context.mechanism._symbolic_divergence(1 + sym["t"], sym["d"], sym["scale"]))
    function = sympy.lambdify((sym["t"], sym["d"], sym["scale"]), closed, modules="mpmath")
    with mpmath.workdps(MP_DIGITS):
        exact = np.array([float(function(mpmath.mpf(a) - 1, mpmath.mpf(r), mpmath.mpf(context.mechanism.scale))) for a, r in zip(order, distance)])
    relative = np.abs(plugin - exact) / np.maximum(np.abs(exact), 1e-300)
    worst = int(np.argmax(relative))
    if relative[worst] <= SYMBOLIC_RTOL:
        return None
    return {"order": float(order[worst]), "r": float(distance[worst]), "float64 _divergence": float(plugin[worst]), "sympy formula": float(exact[worst])}


def _symbolic_comparison(context: CheckContext) -> tuple[Verdict, str, bool] | None:
    """``(PASS, method, tight)`` when sympy proves the closed form equal to or above the derived one; else ``None``."""
    import sympy

    from .derivation import symbols

    sym = symbols()
    derived = context.derived.expression
    try:
        closed = sympy.sympify(context.mechanism._symbolic_divergence(1 + sym["t"], sym["d"], sym["scale"]))
        if sympy.simplify(sympy.exp(sym["t"] * closed) - sympy.exp(sym["t"] * derived)) == 0 or sympy.simplify(closed - derived) == 0:
            return Verdict.PASS, "sympy: closed form proved equal to the derived divergence (tight)", True
        if sympy.simplify(closed - derived).is_nonnegative:
            return Verdict.PASS, "sympy: closed form proved >= the derived divergence (sound)", False
    except Exception:  # an expression sympy cannot handle: fall back to numbers
        return None
    return None


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
    candidates = np.vstack([axis, np.ones(dimension), rng.exponential(size=(16, dimension)), rng.random((16, dimension)) ** 4])
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
    sizes = _sparse_sizes(dimension)
    shifts = np.zeros((len(sizes), dimension))
    for row, k in enumerate(sizes):
        shifts[row, :k] = 1.0
    return _on_sphere(shifts, norm, radius)


def _sparse_sizes(dimension: int) -> list[int]:
    """The numbers of equal non-zero coordinates the structured shifts use in ``dimension`` coordinates: 1, 2, 4, ..., and all."""
    return sorted({1, dimension, *(2**k for k in range(1, int(math.log2(dimension)) + 1))})


def _structured_values(true_1d: Any, order: float, radius: float, norm: float, dimension: int) -> list[tuple[int, float, float]]:
    """``(k, coordinate, divergence)`` of the k-sparse uniform shifts of ``||d||_norm = radius``: k coordinates at ``radius / k^(1/norm)``.

    Product noise sums the 1-D divergences, so each needs one evaluation, whatever the dimension.
    """
    sizes = np.array(_sparse_sizes(dimension), dtype=np.float64)
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
        f", axis, uniform (l_inf: the cube's vertex) and k-sparse shifts in all {dimension}" if structured else " (every shift has at most d non-zero coordinates)"
    )
    missing = f"Nelder-Mead runs in at most {limit} of the {dimension} coordinates" if structured else None
    return searched, structured, covered, missing


def check_norm_ball(context: CheckContext) -> CheckResult:
    """The closed form against the worst shift over ``||d|| = r`` in the dimension the formula assumes (or a range of them)."""
    mechanism = context.mechanism
    name = "norm-ball"
    if not mechanism.has_density:
        return CheckResult(name, Verdict.NOT_CHECKED, "not checked: no density (_symbolic_log_density)")
    derived = context.derived
    if derived.normalised is False:
        return CheckResult(name, Verdict.NOT_CHECKED, "not checked: the density does not integrate to 1 (see closed-form)")
    true_1d = derived.vectorised(mechanism.scale)
    rng = np.random.default_rng(context.seed + 1)
    orders = [1.1, 2.0, 5.0] if context.quick else [1.01, 1.1, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0]
    ys = [0.2, 1.0, 3.0] if context.quick else [0.05, 0.2, 0.5, 1.0, 2.0, 3.0, 5.0]
    dimensions, structured, covered, missing = _search_plan(context)
    restarts = 1 if context.quick else 2
    norm = float(mechanism.norm)
    worst_excess, counterexample, slack = -math.inf, None, 0.0
    searched = 0
    for order in orders:
        for y in ys:
            radius = y * mechanism.scale
            closed = float(_plugin_divergence(mechanism, order, radius))
            best_here = -math.inf
            found = [_worst_shift(true_1d, order, radius, norm, dimension, rng, restarts) for dimension in dimensions]
            described: list[tuple[int, Any, float]] = []
            for shift, value in found:
                tidy = np.where(shift < 1e-12 * radius, 0.0, shift)
                described.append((int(tidy.size), [float(v) for v in tidy], value))
                context.worst_shifts.append(tidy / radius)
            for dimension in structured:
                k, coordinate, value = max(_structured_values(true_1d, order, radius, norm, dimension), key=lambda item: item[2])
                described.append((dimension, f"{k} coordinates at {coordinate:.6g}", value))
            for coordinates, shift_text, value in described:
                searched += 1
                best_here = max(best_here, value)
                excess = (value - closed) / max(abs(closed), 1e-300)
                if excess > worst_excess:
                    worst_excess = excess
                    counterexample = {"order": order, "r": radius, "coordinates": coordinates, "shift": shift_text, "closed_form": closed, "true": value}
            slack = max(slack, (closed - best_here) / max(abs(closed), 1e-300))
    norm_name = "inf" if math.isinf(norm) else f"{norm:g}"
    method = (
        f"true divergence = sum of 1-D divergences ({'sympy' if derived.expression is not None else 'quadrature'}), "
        f"worst shift over ||d||_{norm_name} = r in {searched} (order, r, dimension) cells; covered: {covered}"
    )
    if worst_excess > BALL_RTOL and counterexample is not None:
        counterexample["excess"] = f"{worst_excess:.3%} above the closed form"
        on_axis = float(true_1d(np.array([counterexample["order"]]), np.array([counterexample["r"]]))[0])
        holds_on_axis = on_axis <= counterexample["closed_form"] * (1.0 + BALL_RTOL)
        if mechanism.dimension is None and context.dimension is None and counterexample["coordinates"] > 1 and holds_on_axis:
            counterexample["hint"] = "right along one axis, wrong spread over many: a formula that holds only in d coordinates must say so (Mechanism.dimension = d)"
        return CheckResult(name, Verdict.FAIL, method, counterexample)
    warnings = [] if slack <= 1e-6 else [f"not tight over the ball: the worst shift found is up to {slack:.3%} below the closed form"]
    limits = ("the search is numerical (Nelder-Mead from the best of 34 starting shifts, and structured shifts), not a proof",) + (() if missing is None else (missing,))
    return CheckResult(name, Verdict.PASS, method, {}, tuple(warnings), limits=limits)


# ------------------------------------------------------------------------- laws
class _LawBroken(Exception):
    def __init__(self, evidence: dict[str, Any]) -> None:
        super().__init__(str(evidence))
        self.evidence = evidence


def _run_law(law: Any, strategies: list[Any], max_examples: int, seed: int) -> dict[str, Any] | None:
    """Run ``law(*examples)`` under hypothesis; the shrunk counterexample, or ``None``."""
    from hypothesis import HealthCheck, Verbosity, given, seed as hypothesis_seed, settings
    from hypothesis import strategies as st

    @settings(max_examples=max_examples, database=None, deadline=None, verbosity=Verbosity.quiet, suppress_health_check=list(HealthCheck))
    @hypothesis_seed(seed)
    @given(st.tuples(*strategies))
    def run(example: tuple[Any, ...]) -> None:
        evidence = law(*example)
        if evidence is not None:
            raise _LawBroken(evidence)

    try:
        run()
    except _LawBroken as broken:
        return broken.evidence
    return None


def check_laws(context: CheckContext) -> CheckResult:
    """Property-based laws of a divergence (hypothesis): zero, sign, monotonicity, limits, scale."""
    from .strategies import distances, orders

    mechanism = context.mechanism
    scale = mechanism.scale
    examples = 100 if context.quick else 500
    rtol = 1e-12

    def d(order: float, r: float, m: Any = mechanism) -> float:
        return float(_plugin_divergence(m, order, r))

    def zero_at_zero(order: float) -> dict[str, Any] | None:
        value = d(order, 0.0)
        return None if value == 0.0 else {"law": "D(order, 0) = 0", "order": order, "D": value}

    def non_negative(order: float, r: float) -> dict[str, Any] | None:
        value = d(order, r)
        return None if value >= 0.0 else {"law": "D >= 0 and not NaN", "order": order, "r": r, "D": value}

    def increasing_in_r(order: float, r1: float, r2: float) -> dict[str, Any] | None:
        low, high = sorted((r1, r2))
        a, b = d(order, low), d(order, high)
        return None if a <= b * (1 + rtol) else {"law": "non-decreasing in r", "order": order, "r": [low, high], "D": [a, b]}

    def increasing_in_order(a1: float, a2: float, r: float) -> dict[str, Any] | None:
        low, high = sorted((a1, a2))
        a, b = d(low, r), d(high, r)
        return None if a <= b * (1 + rtol) else {"law": "non-decreasing in order", "order": [low, high], "r": r, "D": [a, b]}

    laws: list[tuple[str, Any, list[Any]]] = [
        ("D(order, 0) = 0", zero_at_zero, [orders()]),
        ("D >= 0", non_negative, [orders(), distances(max_value=50 * scale)]),
        ("non-decreasing in r", increasing_in_r, [orders(), distances(max_value=50 * scale), distances(max_value=50 * scale)]),
        ("non-decreasing in order", increasing_in_order, [orders(), orders(), distances(max_value=50 * scale)]),
    ]
    if mechanism.has_max_divergence:

        def limit_at_infinity(order: float, r: float) -> dict[str, Any] | None:
            limit = float(mechanism.max_divergence(r))
            value = d(order, r)
            far = d(1e9, r)
            if value > limit * (1 + rtol) + 1e-300 or abs(far - limit) > 1e-6 * (1.0 + limit):
                return {"law": "D(order, r) <= D(inf, r) and D(1e9, r) -> D(inf, r)", "order": order, "r": r, "D": value, "D(1e9)": far, "D(inf)": limit}
            return None

        laws.append(("order -> inf limit", limit_at_infinity, [orders(), distances(max_value=50 * scale)]))
    unit = _unit_scale_copy(mechanism)
    if unit is not None:

        def location_scale(order: float, y: float) -> dict[str, Any] | None:
            return location_scale_problem(mechanism, unit, order, y)

        laws.append(("location-scale", location_scale, [orders(), distances(max_value=50.0)]))
    for index, (law_name, law, strategies) in enumerate(laws):
        found = _run_law(law, strategies, examples, context.seed + index)
        if found is not None:
            return CheckResult("laws", Verdict.FAIL, f"hypothesis: law '{law_name}' broken (shrunk counterexample)", found)
    names = ", ".join(n for n, _, _ in laws)
    warnings = () if unit is not None else ("location-scale law not checked: the mechanism cannot be rebuilt at scale 1 (mechanism.replace(scale=1.0) failed)",)
    return CheckResult("laws", Verdict.PASS, f"hypothesis, {examples} examples per law: {names}", {}, warnings)


def location_scale_problem(mechanism: Any, unit: Any, order: float, y: float) -> dict[str, Any] | None:
    """Where ``D(order, y * scale) != D(order, y)`` at scale 1 (``unit``), or ``None``; a ``y`` whose product with the scale
    underflows (``5e-324 * 0.3`` is 0) is left out, since there the law's own arithmetic loses the shift, not the plugin."""
    scale = mechanism.scale
    if y * scale < _LAW_FLOOR or y < _LAW_FLOOR:
        return None
    a, b = float(_plugin_divergence(mechanism, order, y * scale)), float(_plugin_divergence(unit, order, y))
    if abs(a - b) <= 1e-10 * max(abs(a), abs(b)) or a == b:
        return None
    return {"law": "D(order, r; scale) = D(order, r/scale; 1)", "order": order, "r": y * scale, "D": a, "D at scale 1": b}


def _unit_scale_copy(mechanism: Any) -> Any:
    """The mechanism with every parameter kept and the scale set to 1 (``None`` when it cannot be rebuilt)."""
    try:
        return mechanism.replace(scale=1.0)
    except Exception:  # a class whose parameters cannot be read back (see Mechanism.get_params)
        return None

