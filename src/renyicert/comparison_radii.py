"""The comparison certificates: the mechanism's tight radius and PixelDP's, for comparison with the Rényi one.

Both are formulas a plugin supplies (``_tight_radius``, ``_pixeldp_radius``),
reached through :class:`~renyicert.Mechanism`'s checked entries; which of them
``bound="best"`` may use is :func:`renyicert.radii.best_bounds`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._torch import like_inputs
from ._validation import check_probabilities
from .mechanism import Mechanism, check_mechanism

__all__ = ["pixeldp_radius", "tight_radius"]


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
    mechanism = check_mechanism(mechanism)
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
    mechanism = check_mechanism(mechanism)
    if not mechanism.has_pixeldp_radius:
        raise ValueError(f"mechanism {mechanism.label!r} provides no PixelDP certificate")
    delta = float(delta)
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}")
    a, b = _comparison_probabilities(p1, p2)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.where(a > b, mechanism._eval_pixeldp_radius(a, b, delta), 0.0)
    return like_inputs(radius, p1, p2)
