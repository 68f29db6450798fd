"""Independent 50-digit references, written from the papers' formulas with mpmath.

Nothing here reuses renyicert's numerics: B(alpha) is the naive formula of Li et
al. (2019) evaluated at 50 digits, the Laplace divergence is Mironov's (2017)
two-exponential form, and the maximisation over alpha is a dense grid plus
golden-section search in u = log(alpha - 1), with the alpha = inf limit added.
"""

from __future__ import annotations

import mpmath as mp

DIGITS = 50


def budget(p1: mp.mpf, p2: mp.mpf, alpha: mp.mpf) -> mp.mpf:
    if alpha == mp.inf:
        return -mp.log(1 - p1 + p2)
    if alpha == 1:
        return -mp.log(1 - p1 - p2 + 2 * mp.sqrt(p1 * p2))
    m = mp.mpf(0) if p2 == 0 else ((p1 ** (1 - alpha) + p2 ** (1 - alpha)) / 2) ** (1 / (1 - alpha))
    return -mp.log(1 - p1 - p2 + 2 * m)


def laplace_divergence(alpha: mp.mpf, y: mp.mpf) -> mp.mpf:
    if alpha == mp.inf:
        return y
    return mp.log(
        alpha / (2 * alpha - 1) * mp.exp((alpha - 1) * y) + (alpha - 1) / (2 * alpha - 1) * mp.exp(-alpha * y)
    ) / (alpha - 1)


def _laplace_inverse(alpha: mp.mpf, b: mp.mpf) -> mp.mpf:
    if b == 0:
        return mp.mpf(0)
    if alpha == mp.inf:
        return b
    # D >= D(1, y) = y + e^-y - 1 >= y^2 / 3 for y <= 1, and >= y - 1 always: both ends are above the root.
    hi = min(b + 2, 2 * mp.sqrt(b)) if b <= mp.mpf(1) / 4 else b + 2
    while laplace_divergence(alpha, hi / 2) > b:  # down to within a factor 2, so bisection is relative
        hi /= 2
    lo = hi / 2
    for _ in range(64):  # 2^-64 of a factor-2 bracket: far below float64's 1e-16
        mid = (lo + hi) / 2
        if laplace_divergence(alpha, mid) <= b:
            lo = mid
        else:
            hi = mid
    return lo


def radius(kind: str, p1: float, p2: float, scale: float = 1.0) -> float:
    """The Rényi certified radius for ``kind`` in {"gaussian", "laplace"}.

    ``1 - p1 - p2 + 2M`` differs from 1 only in digit ``-log10(p1)``: tiny
    probabilities get that many more digits, so 50 remain.
    """
    extra = max(0, int(-mp.log10(p1)) + 10) if 0 < p1 < 1e-20 else 0
    with mp.workdps(DIGITS + extra):
        a, b = mp.mpf(p1), mp.mpf(p2)
        if kind == "gaussian":

            def f(u: mp.mpf) -> mp.mpf:
                alpha = 1 + mp.exp(u)
                return mp.sqrt(2 * budget(a, b, alpha) / alpha)
        else:

            def f(u: mp.mpf) -> mp.mpf:
                alpha = 1 + mp.exp(u)
                return _laplace_inverse(alpha, budget(a, b, alpha))

        us = [mp.mpf(-30) + k * mp.mpf(70) / 70 for k in range(71)]
        values = [f(u) for u in us]
        k = max(range(len(us)), key=lambda i: values[i])
        lo, hi = us[max(k - 1, 0)], us[min(k + 1, len(us) - 1)]
        g = (mp.sqrt(5) - 1) / 2
        c, d = hi - g * (hi - lo), lo + g * (hi - lo)
        fc, fd = f(c), f(d)
        for _ in range(55):
            if fc > fd:
                hi, d, fd = d, c, fc
                c = hi - g * (hi - lo)
                fc = f(c)
            else:
                lo, c, fc = c, d, fd
                d = lo + g * (hi - lo)
                fd = f(d)
        best = max(fc, fd, values[k])
        if kind == "laplace":
            best = max(best, budget(a, b, mp.inf))
        return float(best * scale)
