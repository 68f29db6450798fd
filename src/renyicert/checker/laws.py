"""The laws every Rényi divergence obeys, checked on the plugin's formula with hypothesis.

Non-negative, zero at distance 0, non-decreasing in the order and in the
distance, and location-scale: ``D_scale(order, y * scale) = D_1(order, y)`` for
noise of a scale family (:func:`location_scale_problem`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from .formula import plugin_divergence
from .results import CheckContext, CheckResult, Verdict
from .strategies import distances, orders

__all__ = ["check_laws", "location_scale_problem"]


#: Distances below this are left out of the location-scale law: ``y * scale`` loses digits to underflow there (5e-324 * 0.3 is 0).
_LAW_FLOOR = 1e-290


# ------------------------------------------------------------------------- laws
class _LawBroken(Exception):
    def __init__(self, evidence: dict[str, Any]) -> None:
        super().__init__(str(evidence))
        self.evidence = evidence


def _run_law(law: Any, strategies: list[Any], max_examples: int, seed: int) -> dict[str, Any] | None:
    """Run ``law(*examples)`` under hypothesis; the shrunk counterexample, or ``None``."""
    from hypothesis import HealthCheck, Verbosity, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    @settings(
        max_examples=max_examples,
        database=None,
        deadline=None,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
    )
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
    mechanism = context.mechanism
    examples = 100 if context.quick else 500
    far = distances(max_value=50 * mechanism.scale)
    laws: list[tuple[str, Any, list[Any]]] = [
        ("D(order, 0) = 0", partial(_zero_at_zero, mechanism), [orders()]),
        ("D >= 0", partial(_non_negative, mechanism), [orders(), far]),
        ("non-decreasing in r", partial(_increasing_in_r, mechanism), [orders(), far, far]),
        ("non-decreasing in order", partial(_increasing_in_order, mechanism), [orders(), orders(), far]),
    ]
    if mechanism.has_max_divergence:
        laws.append(("order -> inf limit", partial(_limit_at_infinity, mechanism), [orders(), far]))
    unit = _unit_scale_copy(mechanism)
    if unit is not None:
        laws.append(
            ("location-scale", partial(location_scale_problem, mechanism, unit), [orders(), distances(max_value=50.0)])
        )
    for index, (law_name, law, strategies) in enumerate(laws):
        found = _run_law(law, strategies, examples, context.seed + index)
        if found is not None:
            return CheckResult(
                "laws", Verdict.FAIL, f"hypothesis: law '{law_name}' broken (shrunk counterexample)", found
            )
    names = ", ".join(n for n, _, _ in laws)
    warnings = (
        ()
        if unit is not None
        else (
            "location-scale law not checked: the mechanism cannot be rebuilt at scale 1 (mechanism.replace(scale=1.0) failed)",
        )
    )
    return CheckResult("laws", Verdict.PASS, f"hypothesis, {examples} examples per law: {names}", {}, warnings)


#: The relative slack of the monotonicity and limit laws (rounding in the plugin's formula).
_RTOL = 1e-12


def _d(mechanism: Any, order: float, r: float) -> float:
    """The plugin's divergence at one (order, r), as a float."""
    return float(plugin_divergence(mechanism, order, r))


def _zero_at_zero(mechanism: Any, order: float) -> dict[str, Any] | None:
    """D(order, 0) = 0."""
    value = _d(mechanism, order, 0.0)
    return None if value == 0.0 else {"law": "D(order, 0) = 0", "order": order, "D": value}


def _non_negative(mechanism: Any, order: float, r: float) -> dict[str, Any] | None:
    """D >= 0 (NaN breaks it)."""
    value = _d(mechanism, order, r)
    return None if value >= 0.0 else {"law": "D >= 0 and not NaN", "order": order, "r": r, "D": value}


def _increasing_in_r(mechanism: Any, order: float, r1: float, r2: float) -> dict[str, Any] | None:
    """D is non-decreasing in the distance."""
    low, high = sorted((r1, r2))
    a, b = _d(mechanism, order, low), _d(mechanism, order, high)
    if a <= b * (1 + _RTOL):
        return None
    return {"law": "non-decreasing in r", "order": order, "r": [low, high], "D": [a, b]}


def _increasing_in_order(mechanism: Any, a1: float, a2: float, r: float) -> dict[str, Any] | None:
    """D is non-decreasing in the order."""
    low, high = sorted((a1, a2))
    a, b = _d(mechanism, low, r), _d(mechanism, high, r)
    if a <= b * (1 + _RTOL):
        return None
    return {"law": "non-decreasing in order", "order": [low, high], "r": r, "D": [a, b]}


def _limit_at_infinity(mechanism: Any, order: float, r: float) -> dict[str, Any] | None:
    """D(order, r) <= D(inf, r), and D(1e9, r) is D(inf, r)."""
    limit = float(mechanism.max_divergence(r))
    value = _d(mechanism, order, r)
    far = _d(mechanism, 1e9, r)
    if value > limit * (1 + _RTOL) + 1e-300 or abs(far - limit) > 1e-6 * (1.0 + limit):
        return {
            "law": "D(order, r) <= D(inf, r) and D(1e9, r) -> D(inf, r)",
            "order": order,
            "r": r,
            "D": value,
            "D(1e9)": far,
            "D(inf)": limit,
        }
    return None


def location_scale_problem(mechanism: Any, unit: Any, order: float, y: float) -> dict[str, Any] | None:
    """Where ``D(order, y * scale) != D(order, y)`` at scale 1 (``unit``), or ``None``; a ``y`` whose product with the scale
    underflows (``5e-324 * 0.3`` is 0) is left out, since there the law's own arithmetic loses the shift, not the plugin."""
    scale = mechanism.scale
    if y * scale < _LAW_FLOOR or y < _LAW_FLOOR:
        return None
    a, b = float(plugin_divergence(mechanism, order, y * scale)), float(plugin_divergence(unit, order, y))
    if abs(a - b) <= 1e-10 * max(abs(a), abs(b)) or a == b:
        return None
    return {
        "law": "D(order, r; scale) = D(order, r/scale; 1)",
        "order": order,
        "r": y * scale,
        "D": a,
        "D at scale 1": b,
    }


def _unit_scale_copy(mechanism: Any) -> Any:
    """The mechanism with every parameter kept and the scale set to 1 (``None`` when it cannot be rebuilt)."""
    try:
        return mechanism.replace(scale=1.0)
    except Exception:  # a class whose parameters cannot be read back (see Mechanism.get_params)
        return None
