"""The mechanism interface: a noise sampler plus a closed-form Rényi divergence.

A plugin author subclasses :class:`Mechanism` and writes two private methods,
in the manner of ``scipy.stats.rv_continuous``:

* ``_sample(shape, generator, dtype, device)``: zero-mean noise at ``self.scale``
  as a ``torch.Tensor`` drawn from ``generator``;
* ``_divergence(alpha, distance)``: the Rényi divergence of order ``alpha``
  between the noise centred at ``x`` and at ``x'`` with ``||x - x'|| = distance``
  in the mechanism's norm, vectorised over float64 numpy arrays.  It must be an
  **upper bound over every shift of that norm**, not only along one axis.

Everything else (validation, torch/numpy conversion, the certified radius, the
checks) is derived.  Optional methods make the solver faster or tighter:
``_max_divergence`` (the ``alpha -> inf`` limit), ``_radius_at`` (a closed-form
inverse of the divergence in ``distance``), ``_radius_per_order`` (for
divergences of the form ``alpha * rho(r)``: ``rho``'s inverse), ``_tight_radius`` (a tight
certificate for comparison) and ``_pixeldp_radius``.

Two optional methods let :func:`renyicert.check` verify the divergence from
first principles: ``_symbolic_log_density(x, scale)`` (the log-density of one
coordinate of product noise, as a sympy expression) and
``_symbolic_divergence(alpha, distance, scale)`` (the closed form, as a sympy
expression).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._validation import as_float_array, check_scale, first_bad, is_torch

__all__ = ["Mechanism"]


def _like(result: NDArray[np.float64], *inputs: Any) -> Any:
    """Return ``result`` as a torch tensor (float64, on the first tensor's device) if any input was one."""
    for value in inputs:
        if is_torch(value):
            import torch

            return torch.as_tensor(result, dtype=torch.float64, device=value.device)
    return result


class Mechanism:
    """Base class of a smoothing noise distribution with a closed-form Rényi divergence.

    Subclasses set the class attributes :attr:`name` and :attr:`norm` and
    implement ``_sample`` and ``_divergence`` (see the module docstring).

    Parameters
    ----------
    scale
        Positive, finite scale of the noise (for example the Gaussian's standard
        deviation or the Laplace distribution's ``b``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from renyicert import Mechanism
    >>> class Gaussian(Mechanism):
    ...     name = "my-gaussian"
    ...     norm = 2
    ...     def _sample(self, shape, generator, dtype, device):
    ...         return self.scale * torch.randn(shape, generator=generator, dtype=dtype, device=device)
    ...     def _divergence(self, alpha, distance):
    ...         return alpha * distance**2 / (2 * self.scale**2)
    >>> mechanism = Gaussian(scale=0.5)
    >>> float(mechanism.divergence(2.0, 1.0))
    4.0
    >>> tuple(mechanism.sample((2, 3), seed=0).shape)
    (2, 3)
    """

    #: Registry name, unique among installed plugins (for example ``"gaussian"``).
    name: ClassVar[str] = ""
    #: The norm the divergence is stated in: 1, 2, ``math.inf``, ...
    norm: ClassVar[float] = 2
    #: Elementwise noise the fused sampler (:mod:`renyicert.sampling`) can draw:
    #: ``"normal"`` (``scale * N(0, 1)``), ``"laplace"`` (``Laplace(0, scale)``) or
    #: ``None``.  A mechanism may instead define ``_transform_uniform(u)``, noise
    #: from uniforms ``u`` in ``(0, 1]`` in torch ops; with neither, the sampler
    #: falls back to :meth:`sample`.
    fused_noise: ClassVar[str | None] = None

    def __init__(self, scale: float) -> None:
        self._scale = check_scale(scale)

    @property
    def scale(self) -> float:
        """The noise scale given at construction."""
        return self._scale

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self._scale!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.scale == self.scale  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self._scale))

    # ------------------------------------------------------------------ sampling
    def sample(
        self,
        shape: tuple[int, ...] | list[int] | int,
        *,
        generator: Any = None,
        seed: int | None = None,
        dtype: Any = None,
        device: Any = None,
    ) -> Any:
        """Draw noise of the given shape.

        Parameters
        ----------
        shape
            Shape of the returned tensor.
        generator
            A ``torch.Generator`` to draw from (on ``device``).  Mutually exclusive with ``seed``.
        seed
            Seed of a fresh generator: the same seed gives the same noise.
        dtype, device
            Of the returned tensor; default ``torch.float32`` on the CPU.

        Returns
        -------
        torch.Tensor
            Zero-mean noise at :attr:`scale`.
        """
        import torch

        if isinstance(shape, int):
            shape = (shape,)
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"shape must have non-negative sizes, got {shape}")
        if generator is not None and seed is not None:
            raise ValueError("give either generator or seed, not both")
        device = torch.device("cpu") if device is None else torch.device(device)
        dtype = torch.float32 if dtype is None else dtype
        if not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype}")
        if seed is not None:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(seed))
        return self._sample(shape, generator, dtype, device)

    def _sample(self, shape: tuple[int, ...], generator: Any, dtype: Any, device: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement _sample(shape, generator, dtype, device)")

    # ---------------------------------------------------------------- divergence
    def divergence(self, alpha: Any, distance: Any) -> Any:
        """Rényi divergence of order ``alpha`` between copies ``distance`` apart.

        Parameters
        ----------
        alpha
            Order(s) in ``[1, inf]``; ``1`` is the Kullback-Leibler limit and
            ``inf`` the max-divergence (only when the mechanism provides it).
        distance
            Distance(s) ``>= 0`` between the two means, in :attr:`norm`.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            Broadcast over the inputs; a float64 tensor if either input was a tensor.
        """
        a = as_float_array(alpha, "alpha")
        r = as_float_array(distance, "distance")
        bad = np.isnan(a) | (a < 1.0)
        if bad.any():
            raise ValueError(f"alpha must be in [1, inf], got {first_bad(a, bad)!r}")
        bad = np.isnan(r) | (r < 0.0)
        if bad.any():
            raise ValueError(f"distance must be >= 0, got {first_bad(r, bad)!r}")
        a, r = np.broadcast_arrays(a, r)
        infinite = np.isinf(a)
        if infinite.any() and not self.has_max_divergence:
            raise ValueError(f"alpha = inf needs the max-divergence, which {self.name or type(self).__name__} does not provide")
        out = np.empty(a.shape)
        finite = ~infinite
        if finite.any():
            out[finite] = self._divergence(a[finite], r[finite])
        if infinite.any():
            out[infinite] = self._max_divergence(r[infinite])
        return _like(out, alpha, distance)

    def _divergence(self, alpha: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError(f"{type(self).__name__} must implement _divergence(alpha, distance)")

    # ----------------------------------------------------------- optional parts
    @property
    def has_max_divergence(self) -> bool:
        """Whether the ``alpha -> inf`` limit (``_max_divergence``) is provided."""
        return type(self)._max_divergence is not Mechanism._max_divergence

    @property
    def has_closed_form_inverse(self) -> bool:
        """Whether ``_radius_at`` (the divergence inverted in the distance) is provided."""
        return type(self)._radius_at is not Mechanism._radius_at

    @property
    def has_linear_order(self) -> bool:
        """Whether ``D(alpha, r) = alpha * rho(r)`` with ``rho^-1`` given as ``_radius_per_order``.

        The Gaussian has this form (``rho(r) = r^2 / (2 sigma^2)``); the solver then
        maximises ``B(alpha) / alpha`` directly with Newton's method.
        """
        return type(self)._radius_per_order is not Mechanism._radius_per_order

    @property
    def has_tight_radius(self) -> bool:
        """Whether a tight (Neyman-Pearson) certificate is provided for comparison."""
        return type(self)._tight_radius is not Mechanism._tight_radius

    @property
    def has_pixeldp_radius(self) -> bool:
        """Whether the PixelDP certificate (Lecuyer et al. 2019) is provided for comparison."""
        return type(self)._pixeldp_radius is not Mechanism._pixeldp_radius

    def _max_divergence(self, distance: NDArray[np.float64]) -> NDArray[np.float64]:
        """``lim_{alpha -> inf} D(alpha, distance)``; optional."""
        raise NotImplementedError

    def _radius_at(self, alpha: NDArray[np.float64], budget: NDArray[np.float64]) -> NDArray[np.float64]:
        """The largest distance with ``D(alpha, distance) <= budget``; optional closed form."""
        raise NotImplementedError

    def _radius_per_order(self, rate: NDArray[np.float64]) -> NDArray[np.float64]:
        """``rho^-1(rate)`` for mechanisms with ``D(alpha, r) = alpha * rho(r)``; optional."""
        raise NotImplementedError

    def _tight_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """A tight certificate at ``(p1, p2)``; optional, for comparison."""
        raise NotImplementedError

    def _pixeldp_radius(
        self, p1: NDArray[np.float64], p2: NDArray[np.float64], delta: float
    ) -> NDArray[np.float64]:
        """The PixelDP certificate at ``(p1, p2)``; optional, for comparison."""
        raise NotImplementedError

    # ------------------------------------------------ symbolic parts (checker)
    @property
    def has_density(self) -> bool:
        """Whether ``_symbolic_log_density`` is provided (the checker derives the divergence from it)."""
        return type(self)._symbolic_log_density is not Mechanism._symbolic_log_density

    @property
    def has_symbolic_divergence(self) -> bool:
        """Whether ``_symbolic_divergence`` is provided (the checker tries to prove it equal to the derived one)."""
        return type(self)._symbolic_divergence is not Mechanism._symbolic_divergence

    def _symbolic_log_density(self, x: Any, scale: Any) -> Any:
        """Log-density of **one coordinate** at scale ``scale``, a sympy expression in ``x`` and ``scale``.

        Providing it declares the noise a product of independent coordinates
        with this density, symmetric about 0; optional.
        """
        raise NotImplementedError

    def _symbolic_divergence(self, alpha: Any, distance: Any, scale: Any) -> Any:
        """The closed form of ``_divergence`` as a sympy expression in ``alpha > 1``, ``distance > 0`` and ``scale``; optional."""
        raise NotImplementedError

    def max_divergence(self, distance: Any) -> Any:
        """``D(inf, distance)``, the max-divergence between copies ``distance`` apart."""
        return self.divergence(math.inf, distance)
