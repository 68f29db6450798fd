"""Gaussian noise certifying the l1 norm: an example third-party renyicert plugin.

Isotropic Gaussian noise ``N(0, sigma^2 I)`` has Rényi divergence
``order ||d||_2^2 / (2 sigma^2)`` between copies shifted by ``d``.  Since
``||d||_2 <= ||d||_1`` for every ``d`` (with equality when ``d`` lies on one
axis), ``order r^2 / (2 sigma^2)`` bounds the divergence over the whole l1 ball
of radius ``r``, and the bound is attained: a certificate in l1.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
import torch

import renyicert

__all__ = ["GaussianL1", "renyicert_register_mechanisms"]


class GaussianL1(renyicert.Mechanism):
    """``N(0, sigma^2 I)`` noise, ``scale = sigma``, certifying in l1 through ``||d||_2 <= ||d||_1``."""

    name = "gaussian-l1"
    norm = 1
    fused_noise = "normal"  # lets the fused batched sampler draw it: scale * N(0, 1)

    # Required: the sampler and the closed-form divergence.
    def _sample(self, shape: tuple[int, ...], generator: Any, dtype: Any, device: Any) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale, generator=generator)

    def _divergence(self, order: np.ndarray, distance: np.ndarray) -> np.ndarray:
        return order * (distance / self.scale) ** 2 / 2.0

    # Optional: a closed-form inverse makes the solver faster.
    def _radius_at(self, order: np.ndarray, budget: np.ndarray) -> np.ndarray:
        return self.scale * np.sqrt(2.0 * budget / order)

    # Optional: what `renyicert check` proves the formula from.
    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return -(x**2) / (2 * scale**2) - sympy.log(scale * sympy.sqrt(2 * sympy.pi))

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return order * distance**2 / (2 * scale**2)


@renyicert.hookimpl
def renyicert_register_mechanisms(registry: renyicert.MechanismRegistry) -> None:
    """Register :class:`GaussianL1` as ``"gaussian-l1"``."""
    registry.add(GaussianL1)
