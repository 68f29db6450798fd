"""The certified radius: ``sup over order in (1, inf]`` of the largest safe distance.

For a mechanism with divergence ``D(order, r)`` (non-decreasing in ``r``) and the
budget ``B(order)`` of :mod:`renyicert.bounds`, the Rényi certificate of Li et
al. (2019) is

    R = sup_{order > 1} sup { r : D(order, r) <= B(order) }.

The inner problem is the mechanism's closed-form inverse when it has one and a
vectorised safeguarded secant (Illinois) root-find in ``log r`` otherwise.  The
outer problem is solved in ``u = log(order - 1)``: a coarse grid over
``order - 1`` in ``[e^-28, e^35]`` brackets the maximum, a vectorised Brent
search (parabolic steps with golden-section safeguards) refines it, and the
``order = inf`` limit is always a candidate when the mechanism provides it.
Over the whole range checked (see the tests) the radius is unimodal in ``u``.

Everything is vectorised over the pairs: there is no Python loop over pairs,
only over iterations.  Large inputs are split into chunks that run on a thread
pool (numpy releases the GIL).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._validation import as_float_array, check_probabilities, first_bad
from .bounds import PairBudget
from ._torch import like_inputs
from .mechanism import Mechanism

__all__ = ["RadiusResult", "certified_radius", "pixeldp_radius", "probability_threshold", "radius_at_order", "tight_radius"]

#: Budgets (and margins ``p1 - p2``) below this certify radius 0. Float64 loses relative precision below
#: about 2.2e-308 (subnormal numbers), where a divergence evaluated near zero may come out below the true
#: one and so give a radius above the true radius; 2^-900 (about 1.2e-271) keeps every intermediate
#: value of the built-in divergences normal. Radius 0 is always a sound certificate.
SMALLEST_BUDGET = 2.0**-900

#: Grid over u = log(order - 1) that brackets the optimal order.
_GRID = np.linspace(-28.0, 35.0, 15)
#: Absolute tolerance on u of the Brent refinement.
_U_TOL = 1e-6
_GOLDEN = 0.3819660112501051
_CHUNK = 1 << 15
_ROOT_ITERATIONS = 100
#: Relative width in log r at which the generic root-find stops (a few ulps).
_ROOT_TOL = 8e-16
_NEWTON_ITERATIONS = 100


class RadiusResult(NamedTuple):
    """A certified radius and the Rényi order that attains it.

    ``order`` is ``inf`` where the supremum is the max-divergence limit, close
    to 1 where it is the ``order -> 1`` limit, and ``nan`` where the radius is 0
    (no order certifies anything).
    """

    radius: Any
    order: Any


# --------------------------------------------------------------------- inverse
def _invert_divergence(
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
    # Bracket [lo, hi] with g(lo) <= 0 < g(hi); +-inf until found.
    lo = np.full(idx.size, -np.inf)
    hi = np.full(idx.size, np.inf)
    glo = np.full(idx.size, -np.inf)
    ghi = np.full(idx.size, np.inf)
    for s, gs in ((s0, g0), (s1, g1)):
        below = gs <= 0.0
        take_lo = below & (s > lo)
        lo, glo = np.where(take_lo, s, lo), np.where(take_lo, gs, glo)
        take_hi = ~below & (s < hi)
        hi, ghi = np.where(take_hi, s, hi), np.where(take_hi, gs, ghi)
    prev_s, prev_g, cur_s, cur_g = s0, g0, s1, g1
    active = np.flatnonzero(np.isinf(lo) | np.isinf(hi) | (hi - lo > _ROOT_TOL * np.maximum(1.0, np.abs(lo))))
    side = np.zeros(idx.size, dtype=np.int8)  # Illinois: which end was kept last time
    for _ in range(_ROOT_ITERATIONS):
        if active.size == 0:
            break
        ps, pg, cs, cg = prev_s[active], prev_g[active], cur_s[active], cur_g[active]
        l, h, gl, gh = lo[active], hi[active], glo[active], ghi[active]
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
        step = np.where(bad & ~bracketed, np.where(np.isinf(l), cs - 8.0, cs + 8.0), step)
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
    if active.size:
        raise RuntimeError(
            f"{mechanism!r}: root-find for the radius did not converge; is the divergence "
            "continuous and non-decreasing in the distance?"
        )
    if np.any(np.isinf(lo)):
        raise RuntimeError(f"{mechanism!r}: divergence at distance 0 exceeds the budget; D(order, 0) must be 0")
    out[idx] = np.where(lo > 745.0, np.inf, np.exp(lo))
    return out


def _radius_from_budget(
    mechanism: Mechanism, order: NDArray[np.float64], budget: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Largest ``r`` with ``D(order, r) <= budget``, elementwise; 0 for a budget below :data:`SMALLEST_BUDGET`."""
    negligible = budget < SMALLEST_BUDGET
    if negligible.any():
        out = np.zeros(budget.shape)
        keep = ~negligible
        if keep.any():
            out[keep] = _radius_from_budget(mechanism, order[keep], budget[keep])
        return out
    infinite = np.isinf(order)
    if infinite.any():
        # Closed forms are for finite orders; at order = inf the inverse is found numerically.
        out = np.empty(budget.shape)
        out[infinite] = _invert_divergence(mechanism, order[infinite], budget[infinite])
        if (~infinite).any():
            out[~infinite] = _radius_from_budget(mechanism, order[~infinite], budget[~infinite])
        return out
    if mechanism.has_closed_form_inverse:
        return mechanism._eval_radius_at(order, budget)
    return _invert_divergence(mechanism, order, budget)


# ------------------------------------------------------------------- the search
def _maximise_linear_order(
    mechanism: Mechanism, budget: PairBudget, p2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mechanisms with ``D(order, r) = order * rho(r)``: ``R = rho^-1(sup_t B(1 + t) / (1 + t))``.

    The maximiser of ``F(t) = B(1 + t) / (1 + t)`` is the root of
    ``G(t) = (1 + t) B'(t) - B(t)``, found by Newton's method in ``u = log t``
    with the analytic ``B'`` and ``B''`` (``G' = (1 + t) B''``), safeguarded by a
    bracket on the sign of ``G`` and bisection.  ``G(0) <= 0`` means the
    supremum is the ``order -> 1`` limit.
    """
    n = p2.size
    t = np.zeros(n)
    b0, db0, _ = budget.with_derivatives(np.zeros(n))
    # p2 = 0: B does not depend on order > 1, so F decreases and the limit order -> 1 is best.
    interior = (p2 > 0.0) & (db0 - b0 > 0.0)
    active = np.flatnonzero(interior)
    u = np.full(active.size, -1.0)
    # G(0) > 0 here, so G > 0 at t = e^-45 too (G is continuous): a finite left end.
    lo = np.full(active.size, -45.0)
    hi = np.full(active.size, np.inf)  # G < 0 at hi, once one is found
    for _ in range(_NEWTON_ITERATIONS):
        if active.size == 0:
            break
        tu = np.exp(u)
        b, db, ddb = budget.with_derivatives(tu, active)
        g = (1.0 + tu) * db - b
        dg_du = tu * (1.0 + tu) * ddb
        positive = g > 0.0
        lo = np.where(positive, u, lo)
        hi = np.where(positive, hi, u)
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = u - g / dg_du
        # Newton steps stay inside the bracket and, while it is open on the right, short.
        ok = np.isfinite(newton) & (dg_du < 0.0) & (newton > lo) & (newton < np.minimum(hi, u + 4.0))
        fallback = np.where(np.isinf(hi), u + 2.0, 0.5 * (lo + hi))
        new_u = np.where(ok, newton, fallback)
        done = (np.abs(new_u - u) < 1e-10 * np.maximum(1.0, np.abs(u))) | (g == 0.0)
        done |= hi - lo < 1e-12 * np.maximum(1.0, np.abs(u))
        t[active] = np.exp(np.where(done, u, new_u))
        keep = ~done
        active, u, lo, hi = active[keep], new_u[keep], lo[keep], hi[keep]
    rate = budget(1.0 + t) / (1.0 + t)
    negligible = rate < SMALLEST_BUDGET
    radius = mechanism._eval_radius_per_order(np.where(negligible, 0.0, rate))
    return np.where(negligible, 0.0, radius), 1.0 + t


def _brent_maximise(
    objective: Any,
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    x: NDArray[np.float64],
    fx: NDArray[np.float64],
    w: NDArray[np.float64],
    fw: NDArray[np.float64],
    v: NDArray[np.float64],
    fv: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Brent's method (maximisation), vectorised over independent problems: ``(x, f(x))`` at the maxima to :data:`_U_TOL`.

    ``objective(u, rows)`` evaluates problems ``rows`` at points ``u``. Each
    problem starts from its bracket ``[a, b]``, its best point ``x`` and the two
    next best ``w`` and ``v`` (with their values), so the first step is the
    parabola through three grid points rather than a golden step. Parabolic steps
    are taken where they fall well inside the bracket, golden-section steps
    otherwise. The arrays are updated in place.
    """
    n = x.size
    d = np.zeros(n)
    e = b - a
    active = np.arange(n)
    for _ in range(200):
        xa, aa, ba = x[active], a[active], b[active]
        m = 0.5 * (aa + ba)
        tol1 = _U_TOL
        converged = np.abs(xa - m) <= 2.0 * tol1 - 0.5 * (ba - aa)
        active = active[~converged]
        if active.size == 0:
            break
        xa, aa, ba, m = xa[~converged], aa[~converged], ba[~converged], m[~converged]
        wa, va, fxa, fwa, fva = w[active], v[active], fx[active], fw[active], fv[active]
        da, ea = d[active], e[active]
        # Parabola through (v, w, x) on -f.
        r = (xa - wa) * (fva - fxa)
        q = (xa - va) * (fwa - fxa)
        p = (xa - va) * q - (xa - wa) * r
        q = 2.0 * (q - r)
        p = np.where(q > 0.0, -p, p)
        q = np.abs(q)
        with np.errstate(divide="ignore", invalid="ignore"):
            para_d = p / q
        try_para = np.abs(ea) > tol1
        para_ok = (
            try_para
            & (np.abs(p) < np.abs(0.5 * q * ea))
            & (p > q * (aa - xa))
            & (p < q * (ba - xa))
        )
        golden_e = np.where(xa >= m, aa - xa, ba - xa)
        new_e = np.where(para_ok, da, golden_e)
        new_d = np.where(para_ok, para_d, _GOLDEN * golden_e)
        u_try = xa + new_d
        near_edge = para_ok & (((u_try - aa) < 2.0 * tol1) | ((ba - u_try) < 2.0 * tol1))
        new_d = np.where(near_edge, np.where(m > xa, tol1, -tol1), new_d)
        u = np.where(np.abs(new_d) >= tol1, xa + new_d, xa + np.where(new_d >= 0.0, tol1, -tol1))
        fu = objective(u, active)
        better = fu >= fxa
        # Bracket update.
        a[active] = np.where(better, np.where(u >= xa, xa, aa), np.where(u < xa, u, aa))
        b[active] = np.where(better, np.where(u >= xa, ba, xa), np.where(u < xa, ba, u))
        # Best three points.
        second = ~better & ((fu >= fwa) | (wa == xa))
        third = ~better & ~second & ((fu >= fva) | (va == xa) | (va == wa))
        v[active] = np.where(better, wa, np.where(second, wa, np.where(third, u, va)))
        fv[active] = np.where(better, fwa, np.where(second, fwa, np.where(third, fu, fva)))
        w[active] = np.where(better, xa, np.where(second, u, wa))
        fw[active] = np.where(better, fxa, np.where(second, fu, fwa))
        x[active] = np.where(better, u, xa)
        fx[active] = np.where(better, fu, fxa)
        d[active] = new_d
        e[active] = new_e
    return x, fx


def _maximise_over_order(
    mechanism: Mechanism, p1: NDArray[np.float64], p2: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(radius, order)`` for flat arrays of valid pairs with ``p2 < p1 < 1``."""
    n = p1.size
    budget = PairBudget(p1, p2)
    if mechanism.has_linear_order:
        return _maximise_linear_order(mechanism, budget, p2)

    def radius_at_u(u: NDArray[np.float64], sel: NDArray[np.intp] | slice) -> NDArray[np.float64]:
        order = 1.0 + np.exp(u)
        return _radius_from_budget(mechanism, order, budget(order, sel))

    grid_values = np.stack([radius_at_u(np.full(n, u), slice(None)) for u in _GRID])
    k = np.argmax(grid_values, axis=0)
    rows = np.arange(n)
    # Brent's method (maximisation) on [a, b] around the best grid point x.
    a = _GRID[np.maximum(k - 1, 0)]
    b = _GRID[np.minimum(k + 1, _GRID.size - 1)]
    x = _GRID[k].copy()
    fx = grid_values[k, rows]
    # Start Brent from the parabola through the three grid points, not from golden steps.
    w, fw = a.copy(), grid_values[np.maximum(k - 1, 0), rows]
    v, fv = b.copy(), grid_values[np.minimum(k + 1, _GRID.size - 1), rows]
    x, fx = _brent_maximise(radius_at_u, a, b, x, fx, w, fw, v, fv)
    radius = fx
    order = 1.0 + np.exp(x)
    if mechanism.has_max_divergence:
        order_inf = np.full(n, np.inf)
        at_inf = _radius_from_budget(mechanism, order_inf, budget(order_inf))
        # Ties within rounding go to the limit (the supremum is there when p2 = 1 - p1).
        use_inf = at_inf >= radius * (1.0 - 1e-13)
        radius = np.where(use_inf, at_inf, radius)
        order = np.where(use_inf, np.inf, order)
    return radius, order


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _in_chunks(mechanism: Mechanism, p1: NDArray[np.float64], p2: NDArray[np.float64]):
    if p1.size <= _CHUNK:
        return _maximise_over_order(mechanism, p1, p2)
    starts = range(0, p1.size, _CHUNK)
    with ThreadPoolExecutor(max_workers=_threads()) as pool:
        parts = list(pool.map(lambda s: _maximise_over_order(mechanism, p1[s : s + _CHUNK], p2[s : s + _CHUNK]), starts))
    return np.concatenate([r for r, _ in parts]), np.concatenate([a for _, a in parts])


def _check_mechanism(mechanism: Any) -> Mechanism:
    if not isinstance(mechanism, Mechanism):
        raise TypeError(
            f"mechanism must be a renyicert.Mechanism (e.g. renyicert.get_mechanism('gaussian', scale=0.25)), "
            f"got {mechanism!r}"
        )
    return mechanism


# ------------------------------------------------------------------ public API
def certified_radius(mechanism: Mechanism, p1: Any, p2: Any) -> RadiusResult:
    """The Rényi certified radius of Li et al. (2019), maximised over the order.

    Computes ``sup_{order in (1, inf]} sup{r : D(order, r) <= B(order)}`` for any
    mechanism, to about 1e-12 relative accuracy (tested against 50-digit mpmath
    to 1e-9).

    Parameters
    ----------
    mechanism
        A :class:`~renyicert.Mechanism`, e.g. ``get_mechanism("gaussian", scale=0.25)``.
    p1, p2
        Lower bound on the top-class probability and upper bound on the
        runner-up; scalars, numpy arrays or torch tensors of any broadcastable
        shapes, each in ``[0, 1]`` with ``p1 + p2 <= 1``.

    Returns
    -------
    RadiusResult
        ``(radius, order)``, broadcast to the shape of the inputs (torch tensors
        if an input was one).  ``radius`` is 0 where ``p1 <= p2`` and finite
        whenever ``p1 < 1``.  ``p1 = 1`` (hence ``p2 = 0``) means the base
        classifier returns the top class almost surely under noise of full
        support, so the smoothed classifier is constant: radius ``inf``,
        ``order = inf``.  In practice ``p1`` is a confidence bound and is < 1.

    Raises
    ------
    ValueError
        For NaN, values outside ``[0, 1]`` or ``p1 + p2 > 1``.

    Examples
    --------
    >>> import renyicert
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    >>> radius, order = renyicert.certified_radius(gaussian, 0.99, 0.01)
    >>> round(float(radius), 6), round(float(order), 4)
    (0.477002, 1.4041)
    >>> laplace = renyicert.get_mechanism("laplace", scale=1.0)
    >>> radius, order = renyicert.certified_radius(laplace, 0.99, 0.01)  # = -log(2 * 0.01)
    >>> round(float(radius), 6), float(order)
    (3.912023, inf)
    """
    mechanism = _check_mechanism(mechanism)
    a, b = check_probabilities(p1, p2)
    shape = a.shape
    a, b = a.ravel(), b.ravel()
    radius = np.zeros(a.size)
    order = np.full(a.size, np.nan)
    certain = a == 1.0
    radius[certain] = np.inf
    order[certain] = np.inf
    # A margin below SMALLEST_BUDGET bounds every order's budget below about it: radius 0 (always sound).
    solve = (a - b >= SMALLEST_BUDGET) & ~certain
    if solve.any():
        radius[solve], order[solve] = _in_chunks(mechanism, a[solve], b[solve])
    radius, order = radius.reshape(shape), order.reshape(shape)
    return RadiusResult(like_inputs(radius, p1, p2), like_inputs(order, p1, p2))


def radius_at_order(mechanism: Mechanism, p1: Any, p2: Any, order: Any) -> Any:
    """The radius certified at one fixed Rényi order ``order`` (no maximisation).

    Useful to reproduce a fixed-order or grid search, such as the original
    code's ``order in linspace(1.01, 2, 100)``.

    Examples
    --------
    >>> import renyicert
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=1.0)
    >>> round(float(renyicert.radius_at_order(gaussian, 0.9, 0.1, 2.0)), 6)
    1.010768
    """
    mechanism = _check_mechanism(mechanism)
    a, b = check_probabilities(p1, p2)
    orders = as_float_array(order, "order")
    bad = np.isnan(orders) | (orders <= 1.0)
    if bad.any():
        raise ValueError(f"order must be > 1, got {first_bad(orders, bad)!r}")
    if np.isinf(orders).any() and not mechanism.has_max_divergence:
        raise ValueError(f"order = inf needs the max-divergence, which {mechanism.label} does not provide")
    a, b, orders = np.broadcast_arrays(a, b, orders)
    shape = a.shape
    a, b, orders = a.ravel(), b.ravel(), orders.ravel().copy()
    radius = np.zeros(a.size)
    certain = a == 1.0
    radius[certain] = np.inf
    # A margin below SMALLEST_BUDGET bounds every order's budget below about it: radius 0 (always sound).
    solve = (a - b >= SMALLEST_BUDGET) & ~certain
    if solve.any():
        budget = PairBudget(a[solve], b[solve])(orders[solve])
        radius[solve] = _radius_from_budget(mechanism, orders[solve], budget)
    return like_inputs(radius.reshape(shape), p1, p2, order)


def tight_radius(mechanism: Mechanism, p1: Any, p2: Any) -> Any:
    """The mechanism's tight certificate at ``(p1, p2)``, for comparison.

    For the Gaussian this is Cohen et al. (2019)'s ``sigma/2 (PhiInv(p1) - PhiInv(p2))``,
    for Laplace Teng et al. (2020)'s ``-b log(2 (1 - p1))``.

    Examples
    --------
    >>> import renyicert
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    >>> round(float(renyicert.tight_radius(gaussian, 0.99, 0.01)), 6)
    0.581587
    """
    mechanism = _check_mechanism(mechanism)
    if not mechanism.has_tight_radius:
        raise ValueError(f"mechanism {mechanism.label!r} provides no tight certificate")
    a, b = _comparison_probabilities(p1, p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(a > b, mechanism._eval_tight_radius(a, b), 0.0)
    return like_inputs(radius, p1, p2)


def _comparison_probabilities(p1: Any, p2: Any) -> tuple[Any, Any]:
    """Validated ``(p1, p2)`` for the comparison bounds, with ``p2 = 0 < 1 - p1`` read as the smallest positive double.

    Cohen's and PixelDP's formulas take ``log p2`` or ``PhiInv(p2)``, so
    ``p2 = 0`` with ``p1 < 1`` would give an infinite radius: the limit the
    formula approaches, but no radius to report for ``p1 < 1``.  A larger
    ``p2`` is still a valid upper bound on the runner-up, so the radius stays
    sound, and finite.
    """
    a, b = check_probabilities(p1, p2)
    return a, np.where((b <= 0.0) & (a < 1.0), np.nextafter(0.0, 1.0), b)


def pixeldp_radius(mechanism: Mechanism, p1: Any, p2: Any, delta: float = 1e-5) -> Any:
    """The PixelDP certificate (Lecuyer et al. 2019) at ``(p1, p2)``, for comparison.

    Parameters
    ----------
    delta
        The ``delta`` of ``(eps, delta)``-DP, in ``(0, 1)``; default ``1e-5``.

    Examples
    --------
    >>> import renyicert
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    >>> round(float(renyicert.pixeldp_radius(gaussian, 0.99, 0.01)), 6)
    0.051602
    """
    mechanism = _check_mechanism(mechanism)
    if not mechanism.has_pixeldp_radius:
        raise ValueError(f"mechanism {mechanism.label!r} provides no PixelDP certificate")
    delta = float(delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    a, b = _comparison_probabilities(p1, p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(a > b, mechanism._eval_pixeldp_radius(a, b, delta), 0.0)
    return like_inputs(radius, p1, p2)


#: The certificates :func:`probability_threshold` inverts: Li et al.'s Rényi bound, the mechanism's tight bound, PixelDP's.
THRESHOLD_BOUNDS = ("renyi", "tight", "pixeldp")


def probability_threshold(mechanism: Mechanism, radius: Any, bound: str = "renyi") -> Any:
    """The smallest ``p1`` whose certified radius, with ``p2 = 1 - p1``, reaches ``radius``: a lower bound ``p1 > c`` certifies ``radius``.

    Bisection on ``p1`` in ``[1/2, 1)`` to adjacent doubles, keeping the upper
    end, where the radius is computed and reaches ``radius``: the returned
    ``c`` always certifies it (``bound``'s radius at ``(c, 1 - c)`` is
    ``>= radius``), and no double below ``c`` by more than one step does.
    ``radius = 0`` gives exactly ``1/2`` (a top class above one half is the
    smoothed prediction); a radius no ``p1 < 1`` reaches gives ``1.0`` (never
    certified from a bound below 1).

    Parameters
    ----------
    mechanism
        The noise.
    radius
        Radii ``>= 0`` (a scalar or an array).
    bound
        ``"renyi"`` (:func:`certified_radius`), ``"tight"`` (:func:`tight_radius`) or ``"pixeldp"`` (:func:`pixeldp_radius`).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.solver import probability_threshold
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    >>> [round(float(c), 6) for c in probability_threshold(gaussian, [0.0, 0.5, 1.0], "tight")]  # Phi(r / sigma)
    [0.5, 0.841345, 0.97725]
    """
    mechanism = _check_mechanism(mechanism)
    if bound not in THRESHOLD_BOUNDS:
        raise ValueError(f"bound must be one of {THRESHOLD_BOUNDS}, got {bound!r}")
    radii = as_float_array(radius, "radius")
    bad = np.isnan(radii) | (radii < 0) | np.isinf(radii)
    if bad.any():
        raise ValueError(f"radius must be a finite number >= 0, got {first_bad(radii, bad)!r}")
    if bound == "tight" and not mechanism.has_tight_radius:
        raise ValueError(f"bound='tight' needs a tight certificate, which {mechanism.label} does not provide")
    if bound == "pixeldp" and not mechanism.has_pixeldp_radius:
        raise ValueError(f"bound='pixeldp' needs a PixelDP certificate, which {mechanism.label} does not provide")
    shape = radii.shape
    target = radii.ravel()

    def reaches(p1: NDArray[np.float64]) -> NDArray[np.bool_]:
        p2 = 1.0 - p1
        if bound == "renyi":
            value = certified_radius(mechanism, p1, p2)[0]
        elif bound == "tight":
            value = tight_radius(mechanism, p1, p2)
        else:
            value = pixeldp_radius(mechanism, p1, p2)
        return np.asarray(value, dtype=np.float64) >= target

    below = np.full(target.shape, 0.5)  # radius 0 at a tie: below every positive radius
    above = np.full(target.shape, np.nextafter(1.0, 0.0))
    reachable = reaches(above)
    for _ in range(80):  # [1/2, 1) holds 2^52 doubles: 53 halvings reach adjacent ones
        middle = 0.5 * (below + above)
        open_gap = (middle > below) & (middle < above)
        if not open_gap.any():
            break
        ok = reaches(middle)
        above = np.where(open_gap & ok, middle, above)
        below = np.where(open_gap & ~ok, middle, below)
    threshold = np.where(target == 0.0, 0.5, np.where(reachable, above, 1.0))
    return threshold.reshape(shape) if shape else float(threshold[0])
