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


class UnnormalisedLaplace(Laplace):
    """A density that integrates to 2."""

    name = "bad-unnormalised-laplace"

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return -sympy.Abs(x) / scale - sympy.log(scale)
