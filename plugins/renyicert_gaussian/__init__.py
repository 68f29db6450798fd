"""Isotropic Gaussian noise, certifying in the l2 norm (built-in renyicert plugin).

Registered through the ``renyicert`` entry-point group exactly like a
third-party plugin; it uses only renyicert's public API.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtri

import renyicert

__all__ = ["Gaussian", "renyicert_register_mechanisms"]


class Gaussian(renyicert.Mechanism):
    """Isotropic Gaussian noise ``N(0, sigma^2 I)``, ``scale = sigma``, certifying in l2.

    The Rényi divergence between ``N(x, sigma^2 I)`` and ``N(x', sigma^2 I)`` with
    ``||x - x'||_2 = r`` is ``order r^2 / (2 sigma^2)`` for every shift direction
    (Gil, Alajaji & Linder 2013; Mironov 2017, Prop. 7).

    Examples
    --------
    >>> import renyicert
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    >>> float(gaussian.divergence(2.0, 1.0))
    4.0
    """

    name = "gaussian"
    fused_noise = "normal"
    norm = 2

    def _sample(self, shape: tuple[int, ...], generator: Any, dtype: Any, device: Any) -> Any:
        import torch

        out = torch.empty(shape, dtype=dtype, device=device)
        return out.normal_(0.0, self.scale, generator=generator)

    def _divergence(self, order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        y = distance / self.scale
        return order * y * y / 2.0

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        import sympy

        return -(x**2) / (2 * scale**2) - sympy.log(scale * sympy.sqrt(2 * sympy.pi))

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return order * distance**2 / (2 * scale**2)

    def _coordinate_cdf(self, t: Any) -> Any:
        import mpmath

        return mpmath.ncdf(t, 0, self.scale)

    def _radius_at(self, order: NDArray[np.float64], budget: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.scale * np.sqrt(2.0 * budget / order)

    def _radius_per_order(self, rate: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.scale * np.sqrt(2.0 * rate)

    def _tight_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """Cohen, Rosenfeld & Kolter (2019), Theorem 1: ``sigma/2 (PhiInv(p1) - PhiInv(p2))``.

        ``PhiInv(p1)`` is evaluated as ``-PhiInv(1 - p1)`` (``1 - p1`` is exact for
        ``p1 >= 1/2``), which keeps its accuracy as ``p1 -> 1``.
        """
        upper = np.where(p1 >= 0.5, -ndtri(1.0 - p1), ndtri(p1))
        lower = np.where(p2 >= 0.5, -ndtri(1.0 - p2), ndtri(p2))
        return np.maximum(self.scale / 2.0 * (upper - lower), 0.0)

    def _pixeldp_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
        """Lecuyer et al. (2019): the largest ``L`` certified by the Gaussian mechanism.

        Noise ``sigma = sqrt(2 ln(1.25/delta)) L / eps`` (``eps <= 1``) makes the
        prediction robust to l2 shifts of size ``L`` when
        ``p1 > e^(2 eps) p2 + (1 + e^eps) delta``.  The condition's right-hand side
        grows with ``eps`` and ``L = sigma eps / sqrt(2 ln(1.25/delta))``, so the
        radius is reached at the largest feasible ``eps``: with ``z = e^eps``,
        ``p2 z^2 + delta z + delta - p1 = 0``.
        """
        surplus = p1 - delta
        with np.errstate(invalid="ignore", divide="ignore"):
            # Root of the quadratic in the form without cancellation; p2 = 0 gives (p1 - delta)/delta.
            z = 2.0 * surplus / (delta + np.sqrt(delta * delta + 4.0 * p2 * surplus))
            eps = np.minimum(np.log(z), 1.0)
        eps = np.where(surplus > 0.0, eps, 0.0)
        return np.maximum(eps, 0.0) * self.scale / math.sqrt(2.0 * math.log(1.25 / delta))


@renyicert.hookimpl
def renyicert_register_mechanisms(registry: renyicert.MechanismRegistry) -> None:
    """Register :class:`Gaussian` under the name ``"gaussian"``."""
    registry.add(Gaussian)
