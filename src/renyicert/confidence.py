"""Confidence bounds on class probabilities from Monte Carlo counts (scipy.stats, Clopper-Pearson).

``top_two_bounds`` gives the pair ``(p1_lower, p2_upper)`` the certificate
needs, holding together with probability at least ``1 - alpha``, in one of two
``p2_mode`` values:

``"complement"`` (Cohen et al. 2019)
    ``p1_lower`` one-sided at level ``alpha``, ``p2_upper = 1 - p1_lower``.
``"runner-up"``
    Bonferroni: ``p1_lower`` at ``alpha / 2``, and an upper bound at
    ``alpha / (2 (K - 1))`` on *every* other class, whose maximum is ``p2_upper``
    (capped at ``1 - p1_lower``).  The runner-up is whichever class is largest,
    so all ``K - 1`` need a bound; this is what PixelDP does.  Goodman and
    Sison-Glaz intervals (statsmodels) are approximate and break at the edges,
    so they are not offered.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["P2_MODES", "clopper_pearson_lower", "clopper_pearson_upper", "runner_up_split", "top_two_bounds"]

P2_MODES = ("runner-up", "complement")


def _clopper_pearson(successes: Any, trials: Any, alpha: Any, upper: Any) -> NDArray[np.float64]:
    """One-sided ``1 - alpha`` Clopper-Pearson bounds, lower or upper per element, from one ``scipy.stats.beta.ppf`` call.

    The lower bound is 0 when ``successes == 0`` and the upper bound 1 when ``successes == trials``.
    """
    from scipy.stats import beta

    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(trials, dtype=np.float64)
    upper = np.asarray(upper, dtype=bool)
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(
            np.where(upper, 1.0 - alpha, alpha), np.where(upper, k + 1.0, k), np.where(upper, n - k, n - k + 1.0)
        )
    # A lower bound is below 1 (alpha^(1/n) at k = n); for alpha within an ulp of 1 it rounds to 1.0 (an infinite radius):
    # the largest double below 1 is below the exact bound then, so it stays a valid lower bound.
    lower = np.minimum(np.where(k > 0, bound, 0.0), np.nextafter(1.0, 0.0))
    return np.where(upper, np.where(k < n, bound, 1.0), lower)


def clopper_pearson_lower(successes: Any, trials: Any, alpha: float) -> NDArray[np.float64]:
    """One-sided ``1 - alpha`` Clopper-Pearson lower bound (``scipy.stats.beta``); 0 when ``successes == 0``.

    Examples
    --------
    >>> from renyicert.confidence import clopper_pearson_lower
    >>> round(float(clopper_pearson_lower(990, 1000, 0.001)), 5)
    0.97604
    """
    return _clopper_pearson(successes, trials, alpha, False)


def clopper_pearson_upper(successes: Any, trials: Any, alpha: float) -> NDArray[np.float64]:
    """One-sided ``1 - alpha`` Clopper-Pearson upper bound (``scipy.stats.beta``); 1 when ``successes == trials``.

    Examples
    --------
    >>> from renyicert.confidence import clopper_pearson_upper
    >>> round(float(clopper_pearson_upper(10, 1000, 0.001)), 5)
    0.02396
    """
    return _clopper_pearson(successes, trials, alpha, True)


def top_two_bounds(
    counts: Any, top: Any, alpha: float, p2_mode: str = "runner-up", failed: Any = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(p1_lower, p2_upper)`` for each row of ``counts`` (``(inputs, classes)``) with top class ``top``.

    ``failed`` (lattice mode, ``(inputs,)``): copies whose noise draw failed, apart
    from ``counts``. They are trials counted for no class in ``p1``'s bound and for
    every other class in the runner-up's (:func:`renyicert.lattice.failure_adjusted`
    says why that is sound).

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.confidence import top_two_bounds
    >>> p1, p2 = top_two_bounds(np.array([[900, 60, 40]]), np.array([0]), 0.001)
    >>> bool(p1[0] < 0.9 < 0.06 + 0.04 + p1[0]), bool(0.06 < p2[0] < 1 - p1[0])
    (True, True)
    """
    if p2_mode not in P2_MODES:
        raise ValueError(f"p2_mode must be one of {P2_MODES}, got {p2_mode!r}")
    counts = np.asarray(counts, dtype=np.int64)
    top = np.asarray(top, dtype=np.int64)
    failed = (
        np.zeros(counts.shape[0], dtype=np.int64) if failed is None else np.asarray(failed, dtype=np.int64).reshape(-1)
    )
    n = counts.sum(axis=1) + failed
    if p2_mode == "complement":
        p1_lower = clopper_pearson_lower(counts[np.arange(counts.shape[0]), top], n, alpha)
        return p1_lower, 1.0 - p1_lower
    top_count, runner_up, top_alpha, other_alpha = runner_up_split(counts, top, alpha)
    if counts.shape[1] > 1:  # the failed copies count for the runner-up (for every class but the top one)
        runner_up = runner_up + failed
    rows = counts.shape[0]
    levels = np.repeat([top_alpha, other_alpha], rows)
    bounds = _clopper_pearson(
        np.concatenate([top_count, runner_up]), np.concatenate([n, n]), levels, np.repeat([False, True], rows)
    )
    p1_lower, p2_upper = bounds[:rows], bounds[rows:]
    return p1_lower, np.minimum(p2_upper, 1.0 - p1_lower)


def runner_up_split(
    counts: NDArray[np.int64], top: NDArray[np.int64], alpha: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], float, float]:
    """The runner-up form's Bonferroni split: ``(top counts, largest other counts, p1's alpha, each other class's alpha)``.

    ``p1``'s bound takes ``alpha / 2``; each of the ``K - 1`` other classes
    ``alpha / (2 (K - 1))``, so all ``K`` bounds hold together with probability
    ``>= 1 - alpha``. A bound is increasing in its count, so the largest other
    count gives the largest upper bound: ``p2_upper``. Fixed-n
    (:func:`top_two_bounds`) and sequential certification both split this way.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.confidence import runner_up_split
    >>> top, runner_up, top_alpha, other_alpha = runner_up_split(np.array([[90, 6, 4]]), np.array([0]), 0.001)
    >>> top.tolist(), runner_up.tolist(), top_alpha, other_alpha
    ([90], [6], 0.0005, 0.00025)
    """
    rows = np.arange(counts.shape[0])
    classes = counts.shape[1]
    others = counts.copy()
    others[rows, top] = -1
    runner_up = np.maximum(others.max(axis=1), 0) if classes > 1 else np.zeros(counts.shape[0], dtype=np.int64)
    return counts[rows, top], runner_up, alpha / 2.0, alpha / (2.0 * max(classes - 1, 1))
