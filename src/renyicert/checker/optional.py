"""The check of a mechanism's optional methods against its required ones.

The solver trusts ``_radius_at`` (a closed-form inverse of the divergence) and
``_radius_per_order`` (for ``D = order * rho(r)``) in place of the divergence, and
``certify(bound="tight")`` certifies with ``_tight_radius`` (the dataset records
report it and ``_pixeldp_radius`` beside the Rényi one): each is a channel for a
wrong number that the other checks never look at.  ``_max_divergence`` (the ``order -> inf``
limit) is checked by the laws check.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..solver import certified_radius
from .comparison import DELTAS, PAIRS, SIGNIFICANCE, pixeldp_problem, tight_radius_problem
from .results import CheckContext, CheckResult, Verdict
from .sampler import numeric_log_density

__all__ = ["check_optional_methods"]

#: Relative tolerance of "D(order, r) <= budget" at an inverse's answer (float64 on both sides).
SOUND_RTOL = 1e-9
#: An inverse's answer may be at most this much (relatively) below the largest safe distance.
TIGHT_RTOL = 1e-6

_ORDERS = np.array([1.0 + 1e-3, 1.1, 1.5, 2.0, 3.0, 10.0, 100.0, 1e4])
_BUDGETS = np.array([1e-10, 1e-4, 1e-2, 0.1, 0.5, 1.0, 3.0, 10.0, 50.0])
_P1 = np.array([0.5 + 1e-6, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999, 1.0 - 1e-6])


def _grid(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    first, second = np.meshgrid(a, b, indexing="ij")
    return first.ravel(), second.ravel()


def _inverse_problem(mechanism: Any) -> dict[str, Any] | None:
    """Where ``_radius_at`` is not the largest distance whose divergence stays within the budget."""
    order, budget = _grid(_ORDERS, _BUDGETS)
    radius = mechanism._eval_radius_at(order, budget)
    if not np.all(np.isfinite(radius) & (radius >= 0.0)):
        i = int(np.flatnonzero(~(np.isfinite(radius) & (radius >= 0.0)))[0])
        return {
            "method": "_radius_at",
            "order": float(order[i]),
            "budget": float(budget[i]),
            "radius": float(radius[i]),
            "problem": "not a finite distance >= 0",
        }
    at = mechanism._eval_divergence(order, radius)
    above = at > budget * (1.0 + SOUND_RTOL)
    if above.any():
        i = int(np.argmax(np.where(above, at / budget, -np.inf)))
        return {
            "method": "_radius_at",
            "order": float(order[i]),
            "budget": float(budget[i]),
            "radius": float(radius[i]),
            "D(order, radius)": float(at[i]),
            "problem": f"D at the returned radius is {at[i] / budget[i] - 1.0:.3%} above the budget (over-certifies)",
        }
    beyond = mechanism._eval_divergence(order, radius * (1.0 + TIGHT_RTOL))
    short = beyond <= budget
    if short.any():
        i = int(np.flatnonzero(short)[0])
        return {
            "method": "_radius_at",
            "order": float(order[i]),
            "budget": float(budget[i]),
            "radius": float(radius[i]),
            "D(order, radius * (1 + 1e-6))": float(beyond[i]),
            "problem": "the returned radius is not the largest: the divergence stays within the budget beyond it",
        }
    return None


def _per_order_problem(mechanism: Any) -> dict[str, Any] | None:
    """Where ``_radius_per_order(rate)`` does not give ``D(order, r) = order * rate`` at every order."""
    rates = np.array([1e-12, 1e-6, 1e-3, 0.01, 0.1, 0.5, 1.0, 5.0, 20.0])
    order, rate = _grid(_ORDERS, rates)
    radius = mechanism._eval_radius_per_order(rate)
    if not np.all(np.isfinite(radius) & (radius >= 0.0)):
        i = int(np.flatnonzero(~(np.isfinite(radius) & (radius >= 0.0)))[0])
        return {
            "method": "_radius_per_order",
            "rate": float(rate[i]),
            "radius": float(radius[i]),
            "problem": "not a finite distance >= 0",
        }
    ratio = mechanism._eval_divergence(order, radius) / (order * rate)
    bad = (ratio > 1.0 + SOUND_RTOL) | (ratio < 1.0 - TIGHT_RTOL)
    if bad.any():
        i = int(np.argmax(np.abs(ratio - 1.0)))
        return {
            "method": "_radius_per_order",
            "order": float(order[i]),
            "rate": float(rate[i]),
            "radius": float(radius[i]),
            "D(order, radius) / (order * rate)": float(ratio[i]),
            "problem": "D(order, rho^-1(rate)) is not order * rate: "
            + ("over-certifies" if ratio[i] > 1.0 else "not the inverse, or D is not linear in the order"),
        }
    return None


def _comparison_problems(mechanism: Any, p1: NDArray[np.float64], renyi: NDArray[np.float64]) -> dict[str, Any] | None:
    """The laws every certificate obeys, for the comparison bounds; the tight one never below the Rényi one."""
    p2 = 1.0 - p1
    bounds = []
    if mechanism.has_tight_radius:
        bounds.append(("_tight_radius", lambda a, b: mechanism._eval_tight_radius(a, b)))
    if mechanism.has_pixeldp_radius:
        bounds.append(("_pixeldp_radius", lambda a, b: mechanism._eval_pixeldp_radius(a, b, 1e-5)))
    for method, radius_of in bounds:
        radius = radius_of(p1, p2)
        if not np.all((radius >= 0.0) & ~np.isnan(radius)):
            i = int(np.flatnonzero(~((radius >= 0.0) & ~np.isnan(radius)))[0])
            return {
                "method": method,
                "p1": float(p1[i]),
                "p2": float(p2[i]),
                "radius": float(radius[i]),
                "problem": "a radius < 0 or NaN",
            }
        if np.any(np.diff(radius) < -1e-12 * np.abs(radius[1:])):
            i = int(np.flatnonzero(np.diff(radius) < -1e-12 * np.abs(radius[1:]))[0])
            return {
                "method": method,
                "p1": [float(p1[i]), float(p1[i + 1])],
                "radius": [float(radius[i]), float(radius[i + 1])],
                "problem": "decreases as p1 grows (with p2 = 1 - p1)",
            }
        tie = radius_of(np.array([0.4, 0.3]), np.array([0.4, 0.5]))
        if np.any(tie != 0.0):
            return {
                "method": method,
                "p1": [0.4, 0.3],
                "p2": [0.4, 0.5],
                "radius": [float(v) for v in tie],
                "problem": "a radius > 0 where p1 <= p2 (nothing can be certified there)",
            }
        if method == "_tight_radius":
            below = radius < renyi * (1.0 - 1e-9)
            if below.any():
                i = int(np.flatnonzero(below)[0])
                return {
                    "method": method,
                    "p1": float(p1[i]),
                    "p2": float(p2[i]),
                    "tight": float(radius[i]),
                    "renyi": float(renyi[i]),
                    "problem": "the tight certificate is below the Rényi one, which is sound: it is not tight (or the Rényi side is wrong)",
                }
    return None


def _tight_soundness_problem(context: CheckContext) -> dict[str, Any] | None:
    """Where ``_tight_radius`` certifies past an axis-aligned shift that lets the runner-up catch up (Neyman-Pearson).

    For the one-coordinate density ``f`` with CDF ``F`` (log-concave densities have a
    monotone likelihood ratio, so half-lines are the Neyman-Pearson sets), a shift
    ``delta`` can bring the top class down to ``F(F^-1(p1) - delta)`` and the
    runner-up up to ``1 - F(F^-1(1 - p2) - delta)``; a sound radius keeps the first
    above the second.  For other densities this under-states the worst case, so the
    check can miss an error but never fails a sound radius.
    """
    from scipy.integrate import quad
    from scipy.optimize import brentq

    mechanism = context.mechanism
    log_density = numeric_log_density(mechanism)

    def pdf(z: float) -> float:
        return float(np.exp(log_density(np.asarray(z))))

    def cdf(z: float) -> float:
        if z <= 0.0:
            return quad(pdf, -np.inf, z, limit=200, epsabs=1e-14, epsrel=1e-12)[0]
        return 1.0 - quad(pdf, z, np.inf, limit=200, epsabs=1e-14, epsrel=1e-12)[0]

    def quantile(p: float) -> float:
        span = mechanism.scale
        while cdf(-span) > min(p, 1.0 - p) and span < 1e6 * mechanism.scale:
            span *= 2.0
        return brentq(lambda z: cdf(z) - p, -span, span, xtol=1e-14 * mechanism.scale, rtol=1e-14)

    pairs = [(p1, 1.0 - p1) for p1 in (0.55, 0.7, 0.9, 0.99)] + [(0.7, 0.2), (0.9, 0.05), (0.6, 0.1)]
    for p1, p2 in pairs:
        radius = float(mechanism._eval_tight_radius(np.array([p1]), np.array([p2]))[0])
        if not 0.0 < radius < np.inf:
            continue
        top = cdf(quantile(p1) - radius)
        runner_up = 1.0 - cdf(quantile(1.0 - p2) - radius)
        if top < runner_up - 1e-7:
            return {
                "method": "_tight_radius",
                "p1": p1,
                "p2": p2,
                "radius": radius,
                "worst top-class probability at the radius": top,
                "worst runner-up probability": runner_up,
                "problem": "an axis-aligned shift of the claimed radius lets the runner-up overtake the top class (over-certifies)",
            }
    return None


#: A failed optional-method check: what was checked (the result's method) and the evidence.
_Failure = tuple[str, dict[str, Any]]


def check_optional_methods(context: CheckContext) -> CheckResult:
    """``_radius_at``, ``_radius_per_order`` and the comparison bounds against the divergence and the Rényi certificate."""
    mechanism = context.mechanism
    name = "optional-methods"
    checked: list[str] = []
    missing: list[str] = []
    failure = _shortcut_failure(mechanism, checked)
    if failure is None and (mechanism.has_tight_radius or mechanism.has_pixeldp_radius):
        failure = _comparison_failure(context, checked, missing)
    if failure is not None:
        return CheckResult(name, Verdict.FAIL, *failure)
    if mechanism.has_max_divergence:
        checked.append("_max_divergence: checked by the laws check (D(order) <= D(inf), D(1e9) -> D(inf))")
    if not checked:
        return CheckResult(
            name,
            Verdict.PASS,
            "nothing to check: the mechanism has no optional methods (the solver inverts _divergence itself)",
        )
    return CheckResult(name, Verdict.PASS, "; ".join(checked), {}, limits=tuple(missing))


def _shortcut_failure(mechanism: Any, checked: list[str]) -> _Failure | None:
    """The solver's shortcuts, ``_radius_at`` and ``_radius_per_order``, against ``_divergence``."""
    if mechanism.has_closed_form_inverse:
        found = _inverse_problem(mechanism)
        if found is not None:
            return "_radius_at against _divergence on a grid of (order, budget)", found
        checked.append(
            f"_radius_at: D(order, r) <= budget (rtol {SOUND_RTOL:g}) and D(order, r (1 + {TIGHT_RTOL:g})) > budget at {_ORDERS.size * _BUDGETS.size} (order, budget)"
        )
    if mechanism.has_linear_order:
        found = _per_order_problem(mechanism)
        if found is not None:
            return "_radius_per_order against _divergence / order on a grid of (order, rate)", found
        checked.append("_radius_per_order: D(order, rho^-1(rate)) = order * rate at every order")
    return None


def _comparison_failure(context: CheckContext, checked: list[str], missing: list[str]) -> _Failure | None:
    """The comparison bounds against the laws of a certificate, the Rényi radius and, where they can be, their worst cases."""
    mechanism = context.mechanism
    # The Rényi radius from the divergence alone (the shortcuts were checked before).
    renyi = np.asarray(certified_radius(mechanism, _P1, 1.0 - _P1).radius)
    found = _comparison_problems(mechanism, _P1, renyi)
    if found is not None:
        return "comparison bounds against the laws of a certificate and the Rényi radius", found
    if mechanism.has_tight_radius:
        checked.append(
            "_tight_radius: >= 0, non-decreasing in p1, 0 where p1 <= p2, never below the Rényi radius (p2 = 1 - p1)"
        )
        if mechanism.has_density and context.derived.normalised is not False:
            failure = _tight_soundness_failure(context, checked, missing)
            if failure is not None:
                return failure
        else:
            missing.append("_tight_radius's soundness: no density to take the Neyman-Pearson worst case from")
    if mechanism.has_pixeldp_radius:
        return _pixeldp_failure(mechanism, checked, missing)
    return None


def _tight_soundness_failure(context: CheckContext, checked: list[str], missing: list[str]) -> _Failure | None:
    """``_tight_radius`` against the Neyman-Pearson worst case: exactly along an axis, by Monte Carlo over the norm ball."""
    mechanism = context.mechanism
    found = _tight_soundness_problem(context)
    if found is not None:
        return "_tight_radius against the Neyman-Pearson worst case of an axis-aligned shift", found
    checked.append(
        "_tight_radius sound against the exact Neyman-Pearson worst case of an axis-aligned shift at 7 (p1, p2)"
    )
    dimension = context.dimension if context.dimension is not None else mechanism.dimension
    found, tested = tight_radius_problem(
        mechanism, numeric_log_density(mechanism), dimension, context.worst_shifts, context.quick, context.seed + 41
    )
    if found is not None:
        return "_tight_radius against the Neyman-Pearson worst case over the norm ball (Monte Carlo)", found
    where = f"the formula's dimension {dimension}" if dimension is not None else "1 to 1024 coordinates"
    checked.append(
        f"_tight_radius sound against the Neyman-Pearson worst case of {tested} (p1, p2, shift) cells over the norm ball: axis, "
        f"k-sparse uniform shifts (l_inf: the cube's vertex) in {where}"
        + (" and the norm-ball search's worst shifts" if context.worst_shifts else "")
        + f" (Monte Carlo with DKW bands, failing only at confidence {1 - 2 * SIGNIFICANCE:g})"
    )
    missing.append(
        "_tight_radius: the norm-ball shifts are tested by Monte Carlo, so a radius over-certifying by less than the bands (about 1-3% in probability) can pass"
    )
    if not context.worst_shifts:
        missing.append(
            "_tight_radius: not tried along the norm-ball search's worst shifts (run the norm-ball check with it)"
        )
    return None


def _pixeldp_failure(mechanism: Any, checked: list[str], missing: list[str]) -> _Failure | None:
    """``_pixeldp_radius`` against the PixelDP radius the verified divergence proves."""
    found = pixeldp_problem(mechanism)
    if found is not None:
        return "_pixeldp_radius against the radius the verified divergence proves (Rényi-DP to (eps, delta)-DP)", found
    checked.append(
        f"_pixeldp_radius: >= 0, non-decreasing in p1, 0 where p1 <= p2, and at most the PixelDP radius the divergence proves "
        f"(Canonne-Kamath-Steinke conversion, pure DP from D(inf)) at {len(PAIRS) * len(DELTAS)} (p1, p2, delta)"
    )
    missing.append(
        "_pixeldp_radius: checked against the divergence, which the closed-form and norm-ball checks verify; a plugin whose own (eps, delta) analysis beats the Rényi conversion fails here"
    )
    return None
