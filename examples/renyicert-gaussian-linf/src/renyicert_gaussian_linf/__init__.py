"""Gaussian noise certifying the l_inf norm in ``d`` dimensions: an example plugin with a parameter.

Isotropic Gaussian noise ``N(0, sigma^2 I_d)`` has Rényi divergence
``order ||delta||_2^2 / (2 sigma^2)`` between copies shifted by ``delta``.  In
``d`` coordinates ``||delta||_2^2 <= d ||delta||_inf^2``, with equality at the
cube's vertices, so ``order d r^2 / (2 sigma^2)`` bounds the divergence over the
whole l_inf ball of radius ``r``, and the bound is attained.  The formula holds
only in ``d`` dimensions: the mechanism says so through ``dimension``, so that
``renyicert check`` searches the worst shift in ``d`` coordinates and
``Smoothed`` refuses inputs of another size.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy
import torch

import renyicert

__all__ = ["GaussianLinf", "renyicert_register_mechanisms"]


class GaussianLinf(renyicert.Mechanism):
    """``N(0, sigma^2 I_d)`` noise, ``scale = sigma``, certifying in l_inf for inputs of ``d`` elements.

    Parameters
    ----------
    scale
        The standard deviation ``sigma`` (finite, > 0).
    d
        The number of input elements (``math.prod(input_shape)``); a positive integer.

    Examples
    --------
    >>> import renyicert
    >>> m = renyicert.get_mechanism("gaussian-linf", scale=0.5, d=4)
    >>> m, float(m.divergence(2.0, 1.0))
    (GaussianLinf(scale=0.5, d=4), 16.0)
    """

    name = "gaussian-linf"
    norm = float("inf")
    fused_noise = "normal"  # the fused sampler draws scale * N(0, 1) per element

    # A parameter beyond the scale: take it in __init__ and store it under its own name.
    # renyicert reads it back from the signature (get_params), for ==, hash, repr,
    # replace(), records, checkpoints and `-o d=64` on the command line.
    def __init__(self, scale: float, d: int = 64) -> None:
        super().__init__(scale)
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"d must be a positive integer, got {d!r}")
        self.d = int(d)

    @property
    def dimension(self) -> int:
        """The divergence holds for inputs of exactly ``d`` elements."""
        return self.d

    # Required: the sampler and the closed-form divergence.
    def _sample(self, shape: tuple[int, ...], generator: Any, dtype: Any, device: Any) -> torch.Tensor:
        return torch.empty(shape, dtype=dtype, device=device).normal_(0.0, self.scale, generator=generator)

    def _divergence(self, order: np.ndarray, distance: np.ndarray) -> np.ndarray:
        return order * self.d * (distance / self.scale) ** 2 / 2.0

    # Optional: D = order * rho(r) with rho(r) = d r^2 / (2 sigma^2); rho's inverse makes the solver exact and fast.
    def _radius_per_order(self, rate: np.ndarray) -> np.ndarray:
        return self.scale * np.sqrt(2.0 * rate / self.d)

    # Optional: what `renyicert check` derives and proves the formula from (one coordinate's density).
    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        return -(x**2) / (2 * scale**2) - sympy.log(scale * sympy.sqrt(2 * sympy.pi))

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        return order * self.d * distance**2 / (2 * scale**2)


@renyicert.hookimpl
def renyicert_register_mechanisms(registry: renyicert.MechanismRegistry) -> None:
    """Register :class:`GaussianLinf` as ``"gaussian-linf"``."""
    registry.add(GaussianLinf)
