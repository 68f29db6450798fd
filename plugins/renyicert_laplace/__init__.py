"""Product Laplace noise, certifying in the l1 norm (built-in renyicert plugin).

Registered through the ``renyicert`` entry-point group exactly like a
third-party plugin; it uses only renyicert's public API.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

import renyicert
from renyicert.special import expm1mx

__all__ = ["Laplace", "renyicert_register_mechanisms"]


class Laplace(renyicert.Mechanism):
    """I.i.d. Laplace noise with scale ``b`` on every coordinate, certifying in l1.

    In one dimension, for a shift ``d`` and ``y = d / b`` (Mironov 2017, Prop. 6)::

        D(order, y) = log( order/(2order-1) e^((order-1) y) + (order-1)/(2order-1) e^(-order y) ) / (order-1).

    For product noise the divergence of a shift vector is the sum over its
    coordinates.  The 1-D divergence is convex in ``|d_i|`` and 0 at 0, hence
    superadditive, so over ``||d||_1 = r`` the worst case puts all of ``r`` on
    one coordinate: ``D_l1(order, r) = D(order, r / b)``.  (The linear formula
    ``||d||_1 D(order, 1)`` of the seed text is *below* this for ``r > b`` and
    over-certifies.)  Limits: ``D(1, y) = y + e^(-y) - 1`` and ``D(inf, y) = y``.

    Examples
    --------
    >>> import renyicert
    >>> laplace = renyicert.get_mechanism("laplace", scale=1.0)
    >>> round(float(laplace.divergence(2.0, 3.0)), 4)
    2.5946
    >>> float(laplace.divergence(float("inf"), 3.0))
    3.0
    """

    name = "laplace"
    fused_noise = "laplace"
    norm = 1

    def _sample(self, shape: tuple[int, ...], generator: Any, dtype: Any, device: Any) -> Any:
        import torch

        # Inverse CDF of one uniform u in [-1/2, 1/2): x = -b sign(u) log(1 - 2|u|),
        # with 2|u| kept below 1 so that u = -1/2 cannot give an infinite draw.
        u = torch.empty(shape, dtype=dtype, device=device).uniform_(-0.5, 0.5, generator=generator)
        two_abs = (2.0 * u.abs()).clamp_max_(1.0 - torch.finfo(dtype).eps)
        return torch.log1p(-two_abs).mul_(-self.scale).mul_(torch.sign(u))

    def _coordinate_cdf(self, t: Any) -> Any:
        import mpmath

        half_tail = mpmath.exp(-abs(t) / self.scale) / 2  # P(X <= -|t|), with no cancellation in either tail
        return half_tail if t < 0 else 1 - half_tail

    def _divergence(self, order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # masked branches of np.where
            return self._divergence_unmasked(order, distance)

    def _divergence_unmasked(self, order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        y = distance / self.scale
        t = order - 1.0
        kl = expm1mx(-y)
        ts = np.where(t > 0.0, t, 1.0)
        # Small (order - 1) y: log1p of [order R((order-1)y) + (order-1) R(-order y)] / (2order-1),
        # R(z) = e^z - 1 - z >= 0, which removes the first-order cancellation.
        small = ts * y < 1.0
        yn = np.where(small, y, 0.0)
        near = np.log1p((order * expm1mx(ts * yn) + ts * expm1mx(-order * yn)) / (2.0 * order - 1.0)) / ts
        # Otherwise: y + log1p((order-1)/(2order-1) expm1(-(2order-1) y)) / (order-1).
        far = y + np.log1p(ts / (2.0 * order - 1.0) * np.expm1(-(2.0 * order - 1.0) * y)) / ts
        value = np.where(small, near, far)
        return np.where(t > 0.0, value, kl)

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        import sympy

        return -sympy.Abs(x) / scale - sympy.log(2 * scale)

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        import sympy

        y = distance / scale
        mix = order / (2 * order - 1) * sympy.exp((order - 1) * y) + (order - 1) / (2 * order - 1) * sympy.exp(
            -order * y
        )
        return sympy.log(mix) / (order - 1)

    def _divergence_slope(self, order: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
        """``dD/dy`` at ``y = distance / b``: ``order (1 - e^(-(2order-1) y)) / ((2order-1)(1 + c expm1(-(2order-1) y)))``."""
        k = 2.0 * order - 1.0
        e = np.expm1(-k * y)
        return order * (-e) / (k * (1.0 + (order - 1.0) / k * e))

    def _radius_at(self, order: NDArray[np.float64], budget: NDArray[np.float64]) -> NDArray[np.float64]:
        """Invert ``D(order, y) = budget`` by Newton's method in ``y``.

        ``D`` is convex and increasing in ``y`` with ``D <= y`` (the max-divergence)
        and ``D <= order y^2 / 2`` (pure ``y``-DP implies ``y^2/2``-zCDP, Bun &
        Steinke 2016), so ``max(budget, sqrt(2 budget / order))`` is below the root:
        the first Newton step lands above it and the rest descend monotonically.
        """
        y = np.maximum(budget, np.sqrt(2.0 * budget / order))
        active = np.flatnonzero((budget > 0.0) & np.isfinite(budget))
        for _ in range(100):
            if active.size == 0:
                break
            a, ya, ba = order[active], y[active], budget[active]
            step = (self._divergence(a, self.scale * ya) - ba) / self._divergence_slope(a, ya)
            y_new = ya - step
            y[active] = y_new
            active = active[~(np.abs(step) <= 1e-15 * y_new)]
        return self.scale * y

    def _max_divergence(self, distance: NDArray[np.float64]) -> NDArray[np.float64]:
        return distance / self.scale

    def _tight_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """Teng, Lee & Yuan (2020): ``-b log(2 (1 - p1))``, which assumes ``p2 = 1 - p1``.

        Only ``p1`` enters (the certificate is tight for the two-class worst case);
        it is 0 for ``p1 <= 1/2``.
        """
        with np.errstate(divide="ignore"):
            radius = -self.scale * np.log(2.0 * (1.0 - p1))
        return np.maximum(radius, 0.0)

    def _pixeldp_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
        """Lecuyer et al. (2019) with the Laplace mechanism: pure ``eps``-DP, ``b = L / eps``.

        Robust when ``p1 > e^(2 eps) p2``: ``eps = log(p1/p2) / 2`` and ``L = b eps``.
        ``delta`` is not used (the Laplace mechanism has ``delta = 0``).
        """
        with np.errstate(divide="ignore"):
            eps = 0.5 * (np.log(p1) - np.log(p2))
        return np.maximum(self.scale * eps, 0.0)


@renyicert.hookimpl
def renyicert_register_mechanisms(registry: renyicert.MechanismRegistry) -> None:
    """Register :class:`Laplace` under the name ``"laplace"``."""
    registry.add(Laplace)
