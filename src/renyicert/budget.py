"""The Rényi-divergence budget ``B(order)`` of Li et al. (2019), evaluated stably.

If the top-two class probabilities of the smoothed classifier at ``x`` are
``p1 >= p2``, its prediction cannot change at ``x'`` as long as, for some
order ``order > 1``,

.. math::

    D_a(\\text{noise}(x) \\| \\text{noise}(x')) < B(a)
    = -\\log\\bigl(1 - p_1 - p_2 + 2 M_{1-a}(p_1, p_2)\\bigr),

where :math:`M_s(p_1, p_2) = ((p_1^s + p_2^s)/2)^{1/s}` is the power mean of
order ``s = 1 - order < 0`` (Li, Chen, Wang & Carin, NeurIPS 2019, Lemma 1).

Evaluated naively this overflows for large ``order`` (``p ** (1 - order)``)
and cancels catastrophically twice: in ``1 - p1 - p2 + 2M`` when
``p2 = 1 - p1`` and in ``p1 + p2 - 2M`` near ties.  Here everything is
computed from

.. math::

    L(t) = \\log \\frac{M_{-t}(p_1, p_2)}{m}
         = \\tfrac12 \\log(1 - \\delta^2) - \\frac{\\log\\cosh(t\\,\\operatorname{atanh}\\delta)}{t},

with ``t = order - 1``, ``m = (p1 + p2) / 2`` and ``delta = (p1 - p2) / (p1 + p2)``:
two non-positive terms, so no cancellation.  Then
``B = -log1p((p1 + p2) * expm1(L))`` when the argument of the logarithm is at
least 1/2 (near ties) and ``B = -log(q + (p1 + p2) e^L)`` with
``q = (1 - p1) - p2`` otherwise (large margins).  The limits ``t -> 0``
(``M -> sqrt(p1 p2)``) and ``t -> inf`` (``M -> p2``) are exact cases.

This module is pure numpy: it is the numerical floor of the solver.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["PairBudget", "renyi_budget"]

_LOG2 = float(np.log(2.0))


def _logcosh(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(cosh(x))`` for ``x >= 0``, accurate for tiny and huge ``x``."""
    x = np.abs(x)
    small = x < 20.0
    xs = np.where(small, x, 0.0)
    em1 = np.expm1(xs)
    # cosh(x) - 1 = expm1(x)^2 / (2 e^x): no cancellation for small x.
    near = np.log1p(em1 * em1 / (2.0 * (em1 + 1.0)))
    with np.errstate(over="ignore", invalid="ignore"):
        far = x - _LOG2 + np.log1p(np.exp(-2.0 * x))
    return np.where(small, near, far)


class PairBudget:
    """``B(order)`` for fixed arrays ``(p1, p2)``, with the parts that do not depend on ``order`` precomputed.

    The solver evaluates ``B`` at many orders for the same pairs; only
    ``log cosh(t atanh(delta)) / t`` changes with ``t = order - 1``.
    Inputs must be valid (``1 >= p1 >= p2 >= 0``, ``p1 + p2 <= 1``, ``p1 > 0``).
    """

    def __init__(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> None:
        total = p1 + p2
        delta = (p1 - p2) / total
        with np.errstate(divide="ignore"):
            log_p1 = np.log(p1)
            log_p2 = np.log(p2)
        wide = delta > 0.5
        narrow = np.minimum(delta, 0.5)
        # log(1 - delta^2) / 2 and atanh(delta), each in the form that is exact in its range.
        self.half_log_1md2 = np.where(
            wide, 0.5 * (log_p1 + log_p2) - np.log(0.5 * total), 0.5 * np.log1p(-narrow * narrow)
        )
        with np.errstate(invalid="ignore"):
            self.atanh_delta = np.where(wide, 0.5 * (log_p1 - log_p2), np.arctanh(narrow))
        self.total = total
        self.q = np.maximum((1.0 - p1) - p2, 0.0)

    def log_ratio(self, t: NDArray[np.float64], sel: Any = slice(None)) -> NDArray[np.float64]:
        """``L = log(M_{-t}(p1, p2) / m)`` at ``t = order - 1`` for the pairs ``sel``; exact at ``t = 0, inf``."""
        d = self.atanh_delta[sel]
        finite_t = np.isfinite(t)
        positive_t = t > 0
        ts = np.where(finite_t & positive_t, t, 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            x = ts * d
            lc = _logcosh(np.where(np.isinf(x), 0.0, x))
            lc = np.where(np.isinf(x), np.inf, lc)
            logcosh_over_t = lc / ts
        # Limits: d^2 t / 2 -> 0 as t -> 0, and d as t -> inf.
        logcosh_over_t = np.where(finite_t, logcosh_over_t, d)
        logcosh_over_t = np.where(positive_t, logcosh_over_t, 0.0)
        return self.half_log_1md2[sel] - logcosh_over_t

    def with_derivatives(
        self, t: NDArray[np.float64], sel: Any = slice(None)
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """``B`` and its first two derivatives in ``t = order - 1``, for finite ``t >= 0``.

        With ``x = t d`` (``d = atanh(delta)``), ``Lambda = log cosh(x) / t`` has
        ``Lambda' = (x tanh x - log cosh x) / t^2`` and
        ``Lambda'' = (x^2 sech^2 x - 2 (x tanh x - log cosh x)) / t^3``; below
        ``x = 1e-3`` their Taylor series replace them (the closed forms cancel).
        Then ``L = c - Lambda``, ``W = q + (p1 + p2) e^L`` and ``B = -log W``.
        """
        d = self.atanh_delta[sel]
        with np.errstate(invalid="ignore"):
            x = t * d  # nan for t = 0, d = inf (p2 = 0): callers treat p2 = 0 apart
        small = x < 1e-3
        ts = np.where(small, 1.0, t)
        xs = np.where(small, 1.0, x)
        with np.errstate(invalid="ignore", over="ignore"):
            lc = _logcosh(xs)
            th = np.tanh(xs)
            h = xs * th - lc
            d2 = d * d
            lam = np.where(small, t * d2 * (0.5 - t * t * d2 / 12.0), lc / ts)
            dlam = np.where(small, d2 * (0.5 - t * t * d2 / 4.0), h / (ts * ts))
            ddlam = np.where(small, -0.5 * t * d2 * d2, (xs * xs * (1.0 - th * th) - 2.0 * h) / (ts * ts * ts))
        log_ratio = self.half_log_1md2[sel] - lam
        total = self.total[sel]
        x_near = total * np.expm1(log_ratio)
        near = x_near > -0.5
        w = np.where(near, 1.0 + x_near, self.q[sel] + total * np.exp(log_ratio))
        budget = np.where(near, -np.log1p(np.maximum(x_near, -0.5)), -np.log(w))
        e = total * np.exp(log_ratio)
        dw = -e * dlam
        ddw = e * (dlam * dlam - ddlam)
        dw_w = dw / w
        return budget, -dw_w, -ddw / w + dw_w * dw_w

    def __call__(self, order: NDArray[np.float64], sel: Any = slice(None)) -> NDArray[np.float64]:
        """``B(order)`` for the pairs ``sel`` (``order`` broadcast against them)."""
        log_ratio = self.log_ratio(order - 1.0, sel)
        total = self.total[sel]
        # Near ties: 1 - p1 - p2 + 2M = 1 + (p1 + p2) * expm1(L), close to 1.
        x = total * np.expm1(log_ratio)
        near = -np.log1p(np.maximum(x, -0.5))
        # Large margins: q + 2M with q = (1 - p1) - p2 >= 0 computed without rounding loss.
        with np.errstate(divide="ignore"):
            far = -np.log(self.q[sel] + total * np.exp(log_ratio))
        return np.where(x > -0.5, near, far)


def renyi_budget(p1: ArrayLike, p2: ArrayLike, order: ArrayLike) -> NDArray[np.float64]:
    """The largest Rényi divergence of order ``order`` that keeps the top class.

    Computes ``B(order) = -log(1 - p1 - p2 + 2 M_{1-order}(p1, p2))`` (Li et al.
    2019, Lemma 1) stably in float64 for ``order`` in ``[1, inf]``; ``order = 1``
    and ``order = inf`` are the limits.  Inputs broadcast; they are assumed valid
    (``1 >= p1 >= p2 >= 0``, ``p1 + p2 <= 1``, ``p1 > 0``) because the public
    entry points validate them.

    Parameters
    ----------
    p1, p2
        Probability of the top class and (an upper bound on) the runner-up.
    order
        Rényi order(s), ``order >= 1``.

    Returns
    -------
    numpy.ndarray
        ``B(order) >= 0``; ``inf`` only when ``p1 = 1``.

    Examples
    --------
    >>> from renyicert.budget import renyi_budget
    >>> float(renyi_budget(0.9, 0.1, float("inf")))  # -log(1 - p1 + p2)
    1.6094379124341
    >>> float(renyi_budget(0.5 + 1e-7, 0.5 - 1e-7, 2.0))  # near tie: no cancellation
    3.9999999980096793e-14
    """
    p1, p2, order = np.broadcast_arrays(
        np.asarray(p1, dtype=np.float64), np.asarray(p2, dtype=np.float64), np.asarray(order, dtype=np.float64)
    )
    return PairBudget(p1.ravel(), p2.ravel())(order.ravel()).reshape(p1.shape)
