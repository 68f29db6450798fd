"""Known-bad mechanisms: each must fail the check that is meant to catch it.

They subclass the built-in plugins and break one thing each.  Helpers the
parent provides for the *correct* formula (closed-form inverses, limits) are
switched off by pointing them back at the base class, so that the solver and
the checker see only the broken formula.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
import torch
from renyicert_gaussian import Gaussian
from renyicert_laplace import Laplace

import renyicert

_BASE = renyicert.Mechanism


class _OnlyTheFormula:
    _radius_at = _BASE._radius_at
    _radius_per_order = _BASE._radius_per_order
    _max_divergence = _BASE._max_divergence
    _tight_radius = _BASE._tight_radius
    _pixeldp_radius = _BASE._pixeldp_radius


class SeedLinearLaplace(_OnlyTheFormula, Laplace):
    """The seed text's l1 formula ``||d||_1 * D_1D(order, 1)``: linear in the distance, below the truth for r > b."""

    name = "bad-seed-linear-laplace"

    def _divergence(self, order: Any, distance: Any) -> Any:
        return (distance / self.scale) * Laplace(1.0)._divergence(order, np.ones_like(distance))

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return (distance / scale) * Laplace._symbolic_divergence(self, order, 1, 1)


class QuarterGaussian(_OnlyTheFormula, Gaussian):
    """``order r^2 / (4 sigma^2)``: half the true divergence (unsound)."""

    name = "bad-quarter-gaussian"

    def _divergence(self, order: Any, distance: Any) -> Any:
        return order * distance**2 / (4 * self.scale**2)

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return order * distance**2 / (4 * scale**2)


class DoubledGaussian(_OnlyTheFormula, Gaussian):
    """``order r^2 / sigma^2``: twice the true divergence (sound, not tight)."""

    name = "bad-doubled-gaussian"

    def _divergence(self, order: Any, distance: Any) -> Any:
        return order * distance**2 / self.scale**2

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return order * distance**2 / scale**2


class VarianceGaussian(Gaussian):
    """The sampler draws with standard deviation ``sigma**2`` where ``sigma`` is meant."""

    name = "bad-variance-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale**2, generator=generator)


class StdLaplace(Laplace):
    """The sampler draws Laplace noise with standard deviation ``b`` instead of scale ``b`` (std sqrt(2) b)."""

    name = "bad-std-laplace"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return Laplace(self.scale / np.sqrt(2.0))._sample(shape, generator, dtype, device)


class DecreasingInAlphaGaussian(_OnlyTheFormula, Gaussian):
    """``r^2 / (2 order sigma^2)``: decreases in order (and is below the truth)."""

    name = "bad-decreasing-gaussian"

    def _divergence(self, order: Any, distance: Any) -> Any:
        return distance**2 / (2 * order * self.scale**2)

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return distance**2 / (2 * order * scale**2)


class NoDensityGaussian(Gaussian):
    """A correct Gaussian that does not state its density: the density checks are skipped."""

    name = "no-density-gaussian"
    _symbolic_log_density = _BASE._symbolic_log_density
    _symbolic_divergence = _BASE._symbolic_divergence


class NoDensityHalfGaussian(_OnlyTheFormula, Gaussian):
    """No density, and half the true divergence, ``order r^2 / (4 sigma^2)``: nothing can verify it (case 4 of issue 25)."""

    name = "bad-no-density-half-gaussian"
    _symbolic_log_density = _BASE._symbolic_log_density
    _symbolic_divergence = _BASE._symbolic_divergence

    def _divergence(self, order: Any, distance: Any) -> Any:
        return order * distance**2 / (4 * self.scale**2)


class UnnormalisedLaplace(Laplace):
    """A density that integrates to 2."""

    name = "bad-unnormalised-laplace"

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return -sympy.Abs(x) / scale - sympy.log(scale)


# ---------------------------------------------------------------- noise paths
class LaplaceFusedGaussian(Gaussian):
    """A right ``sample()``, but the fused sampler (what certify draws through) is told to draw Laplace noise."""

    name = "bad-laplace-fused-gaussian"
    fused_noise = "laplace"


class HalfTransformGaussian(Gaussian):
    """No fused kind; ``_transform_uniform`` draws sigma/2 (``sample()`` is right)."""

    name = "bad-half-transform-gaussian"
    fused_noise = None

    def _transform_uniform(self, u: Any) -> Any:
        return (self.scale / 2.0) * torch.special.ndtri(u.clamp(max=1.0 - 2.0**-24))


class RightTransformGaussian(HalfTransformGaussian):
    """The same through ``_transform_uniform``, drawn right."""

    name = "right-transform-gaussian"

    def _transform_uniform(self, u: Any) -> Any:
        return self.scale * torch.special.ndtri(u.clamp(max=1.0 - 2.0**-24))


class _OwnSampler(Gaussian):
    fused_noise = None  # certify calls sample()


class BroadcastSampleGaussian(_OwnSampler):
    """``sample(shape)`` returns one draw of shape ``(1, *shape[1:])``, which ``buffer.add_`` would broadcast."""

    name = "bad-broadcast-sample-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return Gaussian._sample(self, (1, *shape[1:]), generator, dtype, device)


class ScalarSampleGaussian(_OwnSampler):
    """``sample(shape)`` returns a 0-d tensor."""

    name = "bad-scalar-sample-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return Gaussian._sample(self, (), generator, dtype, device)


class IntegerSampleGaussian(_OwnSampler):
    """``sample(shape)`` returns int64 zeros."""

    name = "bad-integer-sample-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return torch.zeros(shape, dtype=torch.int64, device=device)


class NaNSampleGaussian(_OwnSampler):
    """``sample(shape)`` returns NaN noise."""

    name = "bad-nan-sample-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return torch.full(shape, float("nan"), dtype=dtype, device=device)


class NaNTransformGaussian(HalfTransformGaussian):
    """``_transform_uniform`` is infinite at ``u = 1``, which the fused sampler produces."""

    name = "bad-nan-transform-gaussian"

    def _transform_uniform(self, u: Any) -> Any:
        return self.scale * torch.special.ndtri(u)


# ------------------------------------------------------------------ dimensions
class _InDimensions(renyicert.Mechanism):
    """Noise certifying l_inf with a formula for ``d`` coordinates (a parameter, declared as the mechanism's dimension)."""

    norm = float("inf")

    def __init__(self, scale: float, d: int = 4) -> None:
        super().__init__(scale)
        self.d = int(d)

    @property
    def dimension(self) -> int | None:
        return self.d


class LinfGaussian(_InDimensions):
    """Gaussian noise certifying l_inf in ``d`` dimensions: ``order d r^2 / (2 sigma^2)`` (correct)."""

    name = "test-linf-gaussian"
    fused_noise = "normal"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale, generator=generator)

    def _formula_dimension(self) -> int:
        return self.d

    def _divergence(self, order: Any, distance: Any) -> Any:
        return order * self._formula_dimension() * (distance / self.scale) ** 2 / 2.0

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return Gaussian._symbolic_log_density(self, x, scale)


class RequiredParameterLinf(LinfGaussian):
    """The same with ``d`` required."""

    name = "test-required-linf-gaussian"

    def __init__(self, scale: float, d: int) -> None:
        super().__init__(scale, d)


class HalfDimensionLinf(LinfGaussian):
    """Noise in ``d`` coordinates, but the formula assumes ``d / 2`` (unsound by a factor 2)."""

    name = "bad-half-dimension-linf"

    def _formula_dimension(self) -> int:
        return self.d // 2


class UndeclaredLinf(LinfGaussian):
    """``order 8 r^2 / (2 sigma^2)`` stated for every dimension (no ``dimension``): wrong above 8 coordinates."""

    name = "bad-undeclared-linf"

    @property
    def dimension(self) -> int | None:
        return None

    def _formula_dimension(self) -> int:
        return 8


# ------------------------------------------------------------ optional methods
class InflatedInverseGaussian(Gaussian):
    """A closed-form inverse ``_radius_at`` 1% too large (2% inside the square root); no ``_radius_per_order``."""

    name = "bad-inflated-inverse-gaussian"
    _radius_per_order = _BASE._radius_per_order

    def _radius_at(self, order: Any, budget: Any) -> Any:
        return 1.01 * self.scale * np.sqrt(2.0 * budget / order)


class InflatedPerOrderGaussian(Gaussian):
    """``_radius_per_order`` 1% too large."""

    name = "bad-inflated-per-order-gaussian"

    def _radius_per_order(self, rate: Any) -> Any:
        return 1.01 * self.scale * np.sqrt(2.0 * rate)


class SmallMaxDivergenceLaplace(Laplace):
    """``_max_divergence`` 1% too small (the solver takes order = inf from it)."""

    name = "bad-small-max-divergence-laplace"

    def _max_divergence(self, distance: Any) -> Any:
        return 0.99 * distance / self.scale


class InflatedTightGaussian(Gaussian):
    """Cohen et al.'s radius 1% too large: ``certify(bound="tight")`` would over-certify."""

    name = "bad-inflated-tight-gaussian"

    def _tight_radius(self, p1: Any, p2: Any) -> Any:
        return 1.01 * Gaussian._tight_radius(self, p1, p2)


class LooseTightLaplace(Laplace):
    """A "tight" radius at 90% of Teng et al.'s: below the Rényi radius, so not tight."""

    name = "bad-loose-tight-laplace"

    def _tight_radius(self, p1: Any, p2: Any) -> Any:
        return 0.9 * Laplace._tight_radius(self, p1, p2)


# ------------------------------------------------------------- copies (rows)
class AntitheticGaussian(_OwnSampler):
    """Antithetic copies: row ``2k+1`` is ``-row 2k`` (each row alone is right; the copies are not independent: case 3 of issue 25)."""

    name = "bad-antithetic-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        out = torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale, generator=generator)
        if len(shape) and shape[0] > 1:
            out[1::2] = -out[0 : 2 * (shape[0] // 2) : 2]
        return out


class RepeatedCopiesGaussian(_OwnSampler):
    """Every copy drawn twice in a row (row ``2k+1`` = row ``2k``)."""

    name = "bad-repeated-copies-gaussian"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        out = torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale, generator=generator)
        if len(shape) and shape[0] > 1:
            out[1::2] = out[0 : 2 * (shape[0] // 2) : 2]
        return out


# ------------------------------------------------------- comparison bounds (issue 25)
class PixelDPWithoutItsFactorGaussian(Gaussian):
    """Lecuyer et al.'s Gaussian PixelDP radius missing its ``sqrt(2 ln(1.25/delta))`` factor (case 1 of issue 25)."""

    name = "bad-pixeldp-without-its-factor-gaussian"

    def _pixeldp_radius(self, p1: Any, p2: Any, delta: float) -> Any:
        import math

        return Gaussian._pixeldp_radius(self, p1, p2, delta) * math.sqrt(2.0 * math.log(1.25 / delta))


class LaplaceLinf(_InDimensions):
    """Laplace noise certifying l_inf in ``d`` coordinates: ``d`` times the one-coordinate divergence, attained at the cube's vertex (correct),
    with Teng et al.'s *one-coordinate* radius as its tight radius (wrong in ``d > 1`` coordinates: case 2 of issue 25)."""

    name = "bad-one-coordinate-tight-laplace-linf"
    fused_noise = "laplace"

    def _sample(self, shape: Any, generator: Any, dtype: Any, device: Any) -> Any:
        return Laplace._sample(self, shape, generator, dtype, device)

    def _divergence(self, order: Any, distance: Any) -> Any:
        return self.d * Laplace(self.scale)._divergence(order, distance)

    def _max_divergence(self, distance: Any) -> Any:
        return self.d * distance / self.scale

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return Laplace._symbolic_log_density(self, x, scale)

    def _tight_radius(self, p1: Any, p2: Any) -> Any:
        return Laplace._tight_radius(self, p1, p2)


class MaxDivergenceBoundLaplace(_OnlyTheFormula, Laplace):
    """A correct (sound, loose) Laplace plugin with ``D = r / b`` at every order: the max-divergence bounds them all (case 6 of issue 25)."""

    name = "max-divergence-bound-laplace"

    def _divergence(self, order: Any, distance: Any) -> Any:
        return distance / self.scale

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return distance / scale
