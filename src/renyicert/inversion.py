"""The inner problem of the certified radius: the largest distance at which a divergence stays within a budget.

``radius_from_budget(mechanism, order, budget)`` is ``sup { r : D(order, r) <= budget }``,
elementwise: the mechanism's closed-form inverse where it has one, else a
vectorised safeguarded secant (Illinois) root-find in ``log r``
(:func:`invert_divergence`). The solver (:mod:`renyicert.solver`) maximises it
over the order; the checker inverts a divergence it derived itself with the same root-find.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from .mechanism import Mechanism

__all__ = ["SMALLEST_BUDGET", "invert_divergence", "radius_from_budget"]

#: Budgets (and margins ``p1 - p2``) below this certify radius 0. Float64 loses relative precision below
#: about 2.2e-308 (subnormal numbers), where a divergence evaluated near zero may come out below the true
#: one and so give a radius above the true radius; 2^-900 (about 1.2e-271) keeps every intermediate
#: value of the built-in divergences normal. Radius 0 is always a sound certificate.
SMALLEST_BUDGET = 2.0**-900
_ROOT_ITERATIONS = 100
#: Relative width in log r at which the generic root-find stops (a few ulps).
_ROOT_TOL = 8e-16


def invert_divergence(
    mechanism: Mechanism, order: NDArray[np.float64], budget: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Largest ``r`` with ``D(order, r) <= budget`` by a root-find in ``s = log r``.

    ``log D`` is close to linear in ``log r`` for every mechanism of interest
    (slope 2 for small shifts of a smooth density, 1 for large shifts of a
    Laplace-like one), so a safeguarded secant converges in a handful of steps.
    Returns the lower end of the final bracket: ``D(order, r) <= budget`` holds.
    """
    scale = mechanism.scale
    out = np.zeros(budget.shape)
    todo = np.isfinite(budget) & (budget > 0.0)
    out[np.isinf(budget)] = np.inf
    if not todo.any():
        return out
    idx = np.flatnonzero(todo)
    a = order[idx]
    log_target = np.log(budget[idx])

    def g(s: NDArray[np.float64], sel: NDArray[np.intp]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore"):
            return np.log(mechanism._eval_divergence(a[sel], np.exp(s))) - log_target[sel]

    every = np.arange(idx.size)
    s0 = np.full(idx.size, math.log(scale))
    g0 = g(s0, every)
    # First guess: D grows like r^2 from the point we evaluated.
    s1 = s0 - 0.5 * np.where(np.isfinite(g0), g0, 0.0)
    s1 = np.where(s1 == s0, s0 + 1.0, s1)
    g1 = g(s1, every)
    lo, hi, glo, ghi = _first_bracket(((s0, g0), (s1, g1)))
    prev_s, prev_g, cur_s, cur_g = s0, g0, s1, g1
    active = np.flatnonzero(np.isinf(lo) | np.isinf(hi) | (hi - lo > _ROOT_TOL * np.maximum(1.0, np.abs(lo))))
    side = np.zeros(idx.size, dtype=np.int8)  # Illinois: which end was kept last time
    for _ in range(_ROOT_ITERATIONS):
        if active.size == 0:
            break
        ps, pg, cs, cg = prev_s[active], prev_g[active], cur_s[active], cur_g[active]
        l, h, gl, gh = lo[active], hi[active], glo[active], ghi[active]
        bracketed = np.isfinite(l) & np.isfinite(h)
        step = _next_step(ps, pg, cs, cg, l, h, gl, gh)
        gs = g(step, active)
        below = gs <= 0.0
        # Illinois: halve the function value at the end that stays, if it stayed twice.
        s_side = side[active]
        new_side = np.where(below, -1, 1).astype(np.int8)
        gh_adj = np.where(bracketed & below & (s_side == -1), gh * 0.5, gh)
        gl_adj = np.where(bracketed & ~below & (s_side == 1), gl * 0.5, gl)
        lo[active] = np.where(below, step, l)
        glo[active] = np.where(below, gs, gl_adj)
        hi[active] = np.where(~below, step, h)
        ghi[active] = np.where(~below, gs, gh_adj)
        side[active] = new_side
        prev_s[active], prev_g[active] = cs, cg
        cur_s[active], cur_g[active] = step, gs
        l, h = lo[active], hi[active]
        done = (np.isfinite(l) & np.isfinite(h) & (h - l <= _ROOT_TOL * np.maximum(1.0, np.abs(l)))) | (gs == 0.0)
        done |= np.isfinite(l) & (l > 745.0)  # r beyond e^745: the divergence never reaches the budget
        active = active[~done]
    _check_root_found(mechanism, active, lo)
    out[idx] = np.where(lo > 745.0, np.inf, np.exp(lo))
    return out


def _check_root_found(mechanism: Mechanism, active: NDArray[np.intp], lo: NDArray[np.float64]) -> None:
    """Refuse a root-find that did not converge, or a divergence above the budget at distance 0."""
    if active.size:
        raise RuntimeError(
            f"{mechanism!r}: root-find for the radius did not converge; is the divergence "
            "continuous and non-decreasing in the distance?"
        )
    if np.any(np.isinf(lo)):
        raise RuntimeError(f"{mechanism!r}: divergence at distance 0 exceeds the budget; D(order, 0) must be 0")


def _first_bracket(
    points: tuple[tuple[NDArray[np.float64], NDArray[np.float64]], ...],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """The bracket ``[lo, hi]`` with ``g(lo) <= 0 < g(hi)`` the points ``(s, g(s))`` give, and ``g`` there; +-inf until found."""
    size = points[0][0].size
    lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
    glo, ghi = np.full(size, -np.inf), np.full(size, np.inf)
    for s, gs in points:
        below = gs <= 0.0
        take_lo = below & (s > lo)
        lo, glo = np.where(take_lo, s, lo), np.where(take_lo, gs, glo)
        take_hi = ~below & (s < hi)
        hi, ghi = np.where(take_hi, s, hi), np.where(take_hi, gs, ghi)
    return lo, hi, glo, ghi


def _next_step(
    ps: NDArray[np.float64],
    pg: NDArray[np.float64],
    cs: NDArray[np.float64],
    cg: NDArray[np.float64],
    l: NDArray[np.float64],
    h: NDArray[np.float64],
    gl: NDArray[np.float64],
    gh: NDArray[np.float64],
) -> NDArray[np.float64]:
    """The next ``s`` from the last two points and the bracket: Illinois regula falsi inside it, a safeguarded secant out of it."""
    bracketed = np.isfinite(l) & np.isfinite(h)
    with np.errstate(divide="ignore", invalid="ignore"):
        regula = h - gh * (h - l) / (gh - gl)
    # Unbracketed: secant with its slope kept in [1/2, 4]; bracketed: Illinois regula falsi.
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.clip((cg - pg) / (cs - ps), 0.5, 4.0)
    slope = np.where(np.isfinite(slope), slope, 1.0)
    free = cs - np.where(np.isfinite(cg), cg, np.sign(cg) * 10.0) / slope
    # Unbracketed steps move at least a little towards the missing end, so a
    # secant that lands on the root from one side still produces a bracket.
    nudge = 0.5 * _ROOT_TOL * np.maximum(1.0, np.abs(cs))
    free = np.where(np.isinf(l), np.minimum(free, cs - nudge), np.maximum(free, cs + nudge))
    step = np.where(bracketed, regula, free)
    bad = ~np.isfinite(step) | (bracketed & ((step <= l) | (step >= h)))
    step = np.where(bad & bracketed, 0.5 * (l + h), step)
    return np.where(bad & ~bracketed, np.where(np.isinf(l), cs - 8.0, cs + 8.0), step)


def radius_from_budget(
    mechanism: Mechanism, order: NDArray[np.float64], budget: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Largest ``r`` with ``D(order, r) <= budget``, elementwise; 0 for a budget below :data:`SMALLEST_BUDGET`."""
    negligible = budget < SMALLEST_BUDGET
    if negligible.any():
        out = np.zeros(budget.shape)
        keep = ~negligible
        if keep.any():
            out[keep] = radius_from_budget(mechanism, order[keep], budget[keep])
        return out
    infinite = np.isinf(order)
    if infinite.any():
        # Closed forms are for finite orders; at order = inf the inverse is found numerically.
        out = np.empty(budget.shape)
        out[infinite] = invert_divergence(mechanism, order[infinite], budget[infinite])
        if (~infinite).any():
            out[~infinite] = radius_from_budget(mechanism, order[~infinite], budget[~infinite])
        return out
    if mechanism.has_closed_form_inverse:
        return mechanism._eval_radius_at(order, budget)
    return invert_divergence(mechanism, order, budget)


# ------------------------------------------------------------------- the search
