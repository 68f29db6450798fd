"""Small special functions that the closed forms need and numpy lacks.

Each is vectorised, float64, and accurate to a few ulps over its whole domain;
the tests compare them with mpmath.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["expm1mx"]

# Taylor coefficients of (e^z - 1 - z) / z^2 = sum_k z^k / (k + 2)!.
_EXPM1MX_COEFFS = np.array([1.0 / np.prod(np.arange(1, k + 3, dtype=np.float64)) for k in range(18)])


def expm1mx(z: ArrayLike) -> NDArray[np.float64]:
    """``exp(z) - 1 - z``, without the cancellation of the direct form for small ``z``.

    The result is ``>= 0`` for every real ``z`` (and ``z**2 / 2`` to leading order).

    Examples
    --------
    >>> from renyicert.special import expm1mx
    >>> float(expm1mx(1e-8))
    5.000000016666667e-17
    """
    z = np.asarray(z, dtype=np.float64)
    small = np.abs(z) < 0.5
    zs = np.where(small, z, 0.0)
    series = np.zeros_like(zs)
    for coeff in _EXPM1MX_COEFFS[::-1]:
        series = series * zs + coeff
    with np.errstate(over="ignore"):
        direct = np.expm1(np.where(small, 0.0, z)) - z
    return np.where(small, series * zs * zs, direct)
