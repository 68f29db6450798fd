"""The check of a mechanism's divergence formula against its derivation: the closed form (sympy, mpmath, quadrature).

The worst case over the norm ball is :mod:`renyicert.checker.norm_ball`, the laws of a divergence :mod:`renyicert.checker.laws`.

Each check takes a :class:`renyicert.checker.CheckContext` and returns a
:class:`renyicert.checker.CheckResult`; :func:`renyicert.check` runs them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .derivation import MP_DIGITS, symbols
from .results import CheckContext, CheckResult, Verdict

__all__ = ["QUADRATURE_RTOL", "SYMBOLIC_RTOL", "check_closed_form", "plugin_divergence"]

#: Relative tolerance between the plugin's float64 divergence and the 40-digit derived value.
SYMBOLIC_RTOL = 1e-9
#: The same when the derived value comes from quadrature.
QUADRATURE_RTOL = 1e-7


def plugin_divergence(mechanism: Any, order: Any, distance: Any) -> NDArray[np.float64]:
    return np.asarray(
        mechanism.divergence(np.asarray(order, dtype=np.float64), np.asarray(distance, dtype=np.float64)),
        dtype=np.float64,
    )


def _sample_points(context: CheckContext, count: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
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
        return CheckResult(
            name, Verdict.FAIL, "sympy: the density does not integrate to 1", {"log_density": str(derived.log_density)}
        )
    if derived.normalised is None:
        warnings.append("could not show that the density integrates to 1")
    symbolic = (
        _symbolic_comparison(context) if derived.expression is not None and mechanism.has_symbolic_divergence else None
    )
    # Numeric comparison at many points: decides where sympy could not, and checks
    # that the float64 implementation matches the formula either way.
    order, distance = _sample_points(context, 40 if context.quick else 200)
    plugin = plugin_divergence(mechanism, order, distance)
    true = np.array([float(derived.at(a, r, mechanism.scale)) for a, r in zip(order, distance)])
    rtol = SYMBOLIC_RTOL if derived.expression is not None else QUADRATURE_RTOL
    relative = (plugin - true) / np.maximum(np.abs(true), 1e-300)
    below = relative < -rtol
    numeric_method = f"{derived.method}; float64 closed form vs {len(order)} points (order, r), rtol {rtol:g}"
    if below.any():
        evidence = _below_evidence(order, distance, plugin, true, relative, below)
        if symbolic is not None and symbolic[0] is Verdict.PASS:
            evidence["note"] = "the sympy closed form is right but the float64 _divergence disagrees with it"
        return CheckResult(
            name, Verdict.FAIL, f"closed form below the true divergence: {numeric_method}", evidence, tuple(warnings)
        )
    if symbolic is not None:
        return _symbolic_result(context, symbolic, order, distance, plugin, warnings)
    above = relative > rtol
    if above.any():
        worst = int(np.argmax(relative))
        warnings.append(
            f"not tight along one axis: the closed form is above the axis-aligned divergence at {int(above.sum())} of {len(order)} points "
            f"(most at order={order[worst]:.6g}, r={distance[worst]:.6g}: {plugin[worst]:.10g} vs {true[worst]:.10g})"
        )
    return CheckResult(name, Verdict.PASS, numeric_method, {}, tuple(warnings))


def _symbolic_result(
    context: CheckContext,
    symbolic: tuple[Verdict, str, bool],
    order: NDArray[np.float64],
    distance: NDArray[np.float64],
    plugin: NDArray[np.float64],
    warnings: list[str],
) -> CheckResult:
    """Where sympy decided: the float64 ``_divergence`` must match the formula sympy proved."""
    _, method, tight = symbolic
    mismatch = _implementation_mismatch(context, order, distance, plugin)
    if mismatch is not None:
        return CheckResult(
            "closed-form",
            Verdict.FAIL,
            f"{method}, but the float64 _divergence does not match that formula",
            mismatch,
            tuple(warnings),
        )
    if not tight:
        warnings.append(
            "not tight along one axis: the closed form is above the divergence of an axis-aligned shift (the norm-ball check covers the others)"
        )
    return CheckResult(
        "closed-form",
        Verdict.PASS,
        f"{method}; the float64 implementation agrees at {len(order)} points",
        {},
        tuple(warnings),
    )


def _below_evidence(
    order: NDArray[np.float64],
    distance: NDArray[np.float64],
    plugin: NDArray[np.float64],
    true: NDArray[np.float64],
    relative: NDArray[np.float64],
    below: NDArray[np.bool_],
) -> dict[str, Any]:
    """The point where the closed form is furthest below the true divergence, and how many points are below."""
    worst = int(np.argmin(relative))
    return {
        "order": float(order[worst]),
        "r": float(distance[worst]),
        "shift": [float(distance[worst])],
        "closed_form": float(plugin[worst]),
        "true": float(true[worst]),
        "points_below": int(below.sum()),
    }


def _implementation_mismatch(
    context: CheckContext, order: NDArray[np.float64], distance: NDArray[np.float64], plugin: NDArray[np.float64]
) -> dict[str, Any] | None:
    """Where the float64 ``_divergence`` and the sympy ``_symbolic_divergence`` differ by more than ``SYMBOLIC_RTOL``."""
    import mpmath
    import sympy

    sym = symbols()
    closed = sympy.sympify(context.mechanism._eval_symbolic_divergence(1 + sym["t"], sym["d"], sym["scale"]))
    function = sympy.lambdify((sym["t"], sym["d"], sym["scale"]), closed, modules="mpmath")
    with mpmath.workdps(MP_DIGITS):
        exact = np.array(
            [
                float(function(mpmath.mpf(a) - 1, mpmath.mpf(r), mpmath.mpf(context.mechanism.scale)))
                for a, r in zip(order, distance)
            ]
        )
    relative = np.abs(plugin - exact) / np.maximum(np.abs(exact), 1e-300)
    worst = int(np.argmax(relative))
    if relative[worst] <= SYMBOLIC_RTOL:
        return None
    return {
        "order": float(order[worst]),
        "r": float(distance[worst]),
        "float64 _divergence": float(plugin[worst]),
        "sympy formula": float(exact[worst]),
    }


def _symbolic_comparison(context: CheckContext) -> tuple[Verdict, str, bool] | None:
    """``(PASS, method, tight)`` when sympy proves the closed form equal to or above the derived one; else ``None``."""
    import sympy

    sym = symbols()
    derived = context.derived.expression
    try:
        closed = sympy.sympify(context.mechanism._eval_symbolic_divergence(1 + sym["t"], sym["d"], sym["scale"]))
        if (
            sympy.simplify(sympy.exp(sym["t"] * closed) - sympy.exp(sym["t"] * derived)) == 0
            or sympy.simplify(closed - derived) == 0
        ):
            return Verdict.PASS, "sympy: closed form proved equal to the derived divergence (tight)", True
        if sympy.simplify(closed - derived).is_nonnegative:
            return Verdict.PASS, "sympy: closed form proved >= the derived divergence (sound)", False
    except Exception:  # an expression sympy cannot handle: fall back to numbers
        return None
    return None
