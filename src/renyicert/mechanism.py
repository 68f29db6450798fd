"""The mechanism interface: a noise sampler plus a closed-form Rényi divergence.

A plugin author subclasses :class:`Mechanism` and writes two private methods,
in the manner of ``scipy.stats.rv_continuous``:

* ``_sample(shape, generator, dtype, device)``: zero-mean noise at ``self.scale``
  as a ``torch.Tensor`` drawn from ``generator``;
* ``_divergence(order, distance)``: the Rényi divergence of order ``order``
  between the noise centred at ``x`` and at ``x'`` with ``||x - x'|| = distance``
  in the mechanism's norm, vectorised over float64 numpy arrays (``order`` in
  ``[1, inf)``: ``1`` is the Kullback-Leibler limit).  It must be an
  **upper bound over every shift of that norm**, not only along one axis.

Everything else (validation, torch/numpy conversion, the certified radius, the
checks) is derived.  ``order = 1`` reaches ``_divergence`` too (the
Kullback-Leibler limit).  Parameters beyond ``scale`` are the constructor's,
stored under their own names: :meth:`Mechanism.get_params` reads them back from
the signature (as scikit-learn does), and equality, hashing, ``repr``,
:meth:`Mechanism.replace`, records and checkpoints use them.  A formula that holds
only for inputs of ``d`` elements says so with :attr:`Mechanism.dimension`.  Optional methods make the solver faster or tighter:
``_max_divergence`` (the ``order -> inf`` limit), ``_radius_at`` (a closed-form
inverse of the divergence in ``distance``), ``_radius_per_order`` (for
divergences of the form ``order * rho(r)``: ``rho``'s inverse), ``_tight_radius`` (a tight
certificate for comparison) and ``_pixeldp_radius``.

Two optional methods let :func:`renyicert.check` verify the divergence from
first principles: ``_symbolic_log_density(x, scale)`` (the log-density of one
coordinate of product noise, as a sympy expression) and
``_symbolic_divergence(order, distance, scale)`` (the closed form, as a sympy
expression).

Those private methods are the plugin's *hooks*.  renyicert itself never calls a
hook directly: the solver and the checker go through the base class's
package-internal entries ``_eval_divergence``, ``_eval_radius_at``,
``_eval_radius_per_order``, ``_eval_tight_radius`` and ``_eval_pixeldp_radius``
(float64 arrays in, float64 arrays of the broadcast shape out, checked) and
``_eval_symbolic_*``, ``_eval_coordinate_cdf``, ``_eval_transform_uniform``, which a plugin must not override.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._torch import like_inputs
from ._validation import as_float_array, check_scale, first_bad

__all__ = ["Mechanism", "check_mechanism"]


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
    ...     def _divergence(self, order, distance):
    ...         return order * distance**2 / (2 * self.scale**2)
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
    #: Elementwise noise the fused sampler (:mod:`renyicert._engine.sampler`) can draw:
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

    @property
    def dimension(self) -> int | None:
        """The number of coordinates the divergence formula assumes, or ``None`` when it holds in every dimension.

        A formula that depends on the input's dimension (Gaussian noise certifying
        l_inf in ``d`` coordinates: ``D = order d r^2 / (2 sigma^2)``) returns ``d``;
        :class:`renyicert.Smoothed` then refuses inputs with another number of
        elements, and :func:`renyicert.check` searches the worst shift in ``d``
        coordinates.  The built-in Gaussian (l2) and Laplace (l1) hold in every dimension.
        """
        return None

    @property
    def label(self) -> str:
        """The registry name, or the class name of an unnamed mechanism (for messages and records)."""
        return self.name or type(self).__name__

    # ------------------------------------------------------------ parameters
    @classmethod
    def parameter_names(cls) -> tuple[str, ...]:
        """The constructor's parameters, ``scale`` first: what makes two mechanisms of a class the same noise.

        Read from the signature of ``__init__``, as scikit-learn's ``get_params`` does;
        each must be stored on the instance under its own name (or the name with a
        leading underscore) so that :meth:`get_params` can read it back.
        """
        import inspect

        names = []
        for parameter in list(inspect.signature(cls.__init__).parameters.values())[1:]:
            if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(
                    f"{cls.__name__}.__init__ takes *{parameter.name}; a mechanism's parameters must be named, one by one"
                )
            names.append(parameter.name)
        if "scale" not in names:
            raise TypeError(f"{cls.__name__}.__init__ must take scale, got parameters {names}")
        names.remove("scale")
        return ("scale", *names)

    def get_params(self) -> dict[str, Any]:
        """The constructor's arguments, by name (``scale`` first); ``type(m)(**m.get_params()) == m``.

        Examples
        --------
        >>> import renyicert
        >>> renyicert.get_mechanism("gaussian", scale=0.5).get_params()
        {'scale': 0.5}
        """
        params: dict[str, Any] = {}
        for name in self.parameter_names():
            for attribute in (name, f"_{name}"):
                if hasattr(self, attribute):
                    params[name] = getattr(self, attribute)
                    break
            else:
                raise TypeError(
                    f"{type(self).__name__} takes the parameter {name!r} but does not store it: set self.{name} (or self._{name}) in __init__"
                )
        return params

    def replace(self, **changes: Any) -> Mechanism:
        """A new mechanism of the same class with some parameters changed (``m.replace(scale=1.0)``).

        Examples
        --------
        >>> import renyicert
        >>> renyicert.get_mechanism("laplace", scale=0.5).replace(scale=2.0)
        Laplace(scale=2.0)
        """
        params = self.get_params()
        unknown = sorted(set(changes) - set(params))
        if unknown:
            raise ValueError(f"{self.label} has no parameter {unknown[0]!r}; its parameters are {list(params)}")
        return type(self)(**{**params, **changes})

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_params().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.get_params() == self.get_params()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        params = tuple(self.get_params().items())
        try:
            return hash((type(self), params))
        except TypeError:  # an unhashable parameter value (a list, an array): its repr stands in
            return hash((type(self), repr(params)))

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
    def divergence(self, order: Any, distance: Any) -> Any:
        """Rényi divergence of order ``order`` between copies ``distance`` apart.

        Parameters
        ----------
        order
            Rényi order(s) in ``[1, inf]``; ``1`` is the Kullback-Leibler limit and
            ``inf`` the max-divergence (only when the mechanism provides it).
        distance
            Distance(s) ``>= 0`` between the two means, in :attr:`norm`.

        Returns
        -------
        numpy.ndarray or torch.Tensor
            Broadcast over the inputs; a float64 tensor if either input was a tensor.
        """
        a = as_float_array(order, "order")
        r = as_float_array(distance, "distance")
        bad = np.isnan(a) | (a < 1.0)
        if bad.any():
            raise ValueError(f"order must be in [1, inf], got {first_bad(a, bad)!r}")
        bad = np.isnan(r) | (r < 0.0)
        if bad.any():
            raise ValueError(f"distance must be >= 0, got {first_bad(r, bad)!r}")
        if np.isinf(a).any() and not self.has_max_divergence:
            raise ValueError(f"order = inf needs the max-divergence, which {self.label} does not provide")
        return like_inputs(self._eval_divergence(a, r), order, distance)

    # ------------------------------------------- package-internal entries (final)
    def _eval_divergence(self, order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        """``D(order, distance)`` on valid float64 arrays, broadcast: the finite orders through ``_divergence``, ``inf`` through ``_max_divergence``."""
        order, distance = np.broadcast_arrays(
            np.asarray(order, dtype=np.float64), np.asarray(distance, dtype=np.float64)
        )
        infinite = np.isinf(order)
        if not infinite.any():
            return self._call_hook("_divergence", order, distance)
        out = np.empty(order.shape)
        finite = ~infinite
        if finite.any():
            out[finite] = self._call_hook("_divergence", order[finite], distance[finite])
        out[infinite] = self._call_hook("_max_divergence", distance[infinite])
        return out

    def _eval_radius_at(self, order: NDArray[np.float64], budget: NDArray[np.float64]) -> NDArray[np.float64]:
        """The closed-form inverse ``_radius_at`` at finite orders (see :attr:`has_closed_form_inverse`)."""
        return self._call_hook("_radius_at", order, budget)

    def _eval_radius_per_order(self, rate: NDArray[np.float64]) -> NDArray[np.float64]:
        """``rho^-1(rate)`` for ``D(order, r) = order * rho(r)`` (see :attr:`has_linear_order`)."""
        return self._call_hook("_radius_per_order", rate)

    def _eval_tight_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """The tight certificate at valid ``(p1, p2)`` (see :attr:`has_tight_radius`)."""
        return self._call_hook("_tight_radius", p1, p2)

    def _eval_pixeldp_radius(
        self, p1: NDArray[np.float64], p2: NDArray[np.float64], delta: float
    ) -> NDArray[np.float64]:
        """The PixelDP certificate at valid ``(p1, p2)`` (see :attr:`has_pixeldp_radius`)."""
        return self._call_hook("_pixeldp_radius", p1, p2, extra=(delta,))

    def _call_hook(self, hook: str, *arrays: Any, extra: tuple[Any, ...] = ()) -> NDArray[np.float64]:
        """Call the plugin's ``hook`` on the arrays broadcast and flattened to 1-D float64; its result in their shape, checked."""
        broadcast = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in arrays))
        shape = broadcast[0].shape
        flat = [np.ascontiguousarray(a).reshape(-1) for a in broadcast]
        return self._hook_output(hook, getattr(self, hook)(*flat, *extra), (flat[0].size,)).reshape(shape)

    def _hook_output(self, hook: str, value: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
        """A hook's result as float64 of ``shape`` (one number is broadcast, as numpy would); any other shape is a ``TypeError`` naming the plugin and the hook."""
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"{self.label}.{hook} returned {type(value).__name__}, expected float64 numbers of shape {shape}"
            ) from error
        if array.shape != shape:
            if array.size == 1:  # one number for every element: broadcast, as numpy would
                return np.full(shape, float(array.reshape(())))
            raise TypeError(f"{self.label}.{hook} returned shape {array.shape}, expected {shape}")
        return array

    def _divergence(self, order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
        raise NotImplementedError(f"{type(self).__name__} must implement _divergence(order, distance)")

    # ----------------------------------------------------------- optional parts
    @property
    def has_max_divergence(self) -> bool:
        """Whether the ``order -> inf`` limit (``_max_divergence``) is provided."""
        return type(self)._max_divergence is not Mechanism._max_divergence

    @property
    def has_closed_form_inverse(self) -> bool:
        """Whether ``_radius_at`` (the divergence inverted in the distance) is provided."""
        return type(self)._radius_at is not Mechanism._radius_at

    @property
    def has_linear_order(self) -> bool:
        """Whether ``D(order, r) = order * rho(r)`` with ``rho^-1`` given as ``_radius_per_order``.

        The Gaussian has this form (``rho(r) = r^2 / (2 sigma^2)``); the solver then
        maximises ``B(order) / order`` directly with Newton's method.
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
        """``lim_{order -> inf} D(order, distance)``; optional."""
        raise NotImplementedError

    def _radius_at(self, order: NDArray[np.float64], budget: NDArray[np.float64]) -> NDArray[np.float64]:
        """The largest distance with ``D(order, distance) <= budget`` at finite orders; optional closed form."""
        raise NotImplementedError

    def _radius_per_order(self, rate: NDArray[np.float64]) -> NDArray[np.float64]:
        """``rho^-1(rate)`` for mechanisms with ``D(order, r) = order * rho(r)``; optional."""
        raise NotImplementedError

    def _tight_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """A tight certificate at ``(p1, p2)``; optional, for comparison."""
        raise NotImplementedError

    def _pixeldp_radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64], delta: float) -> NDArray[np.float64]:
        """The PixelDP certificate at ``(p1, p2)``; optional, for comparison."""
        raise NotImplementedError

    # ------------------------------- the symbolic, CDF and uniform hooks (checker, lattice mode, fused samplers)
    def _eval_symbolic_log_density(self, x: Any, scale: Any) -> Any:
        """``_symbolic_log_density(x, scale)``: what :mod:`renyicert.checker` derives the divergence from (sympy)."""
        return self._symbolic_log_density(x, scale)

    def _eval_symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        """``_symbolic_divergence(order, distance, scale)``: what the checker proves equal to its derivation (sympy)."""
        return self._symbolic_divergence(order, distance, scale)

    def _eval_coordinate_cdf(self, t: Any) -> Any:
        """``_coordinate_cdf(t)`` (mpmath): lattice mode checks its range and monotonicity."""
        return self._coordinate_cdf(t)

    @property
    def has_transform_uniform(self) -> bool:
        """Whether the plugin maps uniforms to noise elementwise (``_transform_uniform(u)``, the fused samplers' generic path)."""
        return getattr(type(self), "_transform_uniform", None) is not None

    def _eval_transform_uniform(self, u: Any) -> Any:
        """``_transform_uniform(u)`` (the engine checks its first batch: finite, elementwise, float32)."""
        return self._transform_uniform(u)  # type: ignore[attr-defined]

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

    @property
    def has_coordinate_cdf(self) -> bool:
        """Whether ``_coordinate_cdf`` is provided (lattice mode, :mod:`renyicert.lattice`, draws from it)."""
        return type(self)._coordinate_cdf is not Mechanism._coordinate_cdf

    def _coordinate_cdf(self, t: Any) -> Any:
        """``P(noise coordinate <= t)`` at :attr:`scale`, in mpmath: ``t`` is an ``mpmath.mpf``, the result an ``mpf`` at the working precision; optional.

        Providing it declares the noise a product of independent coordinates with
        this CDF (as the sampler draws them) and gives the mechanism lattice mode
        (``Smoothed(..., grid=255)``): the thresholds of the noise rounded to the
        grid are computed from it at 50 digits. Compute tails without cancellation
        (``1 - F`` near 1 is what the right tail's thresholds need: write it as
        ``1 - tail`` with the tail computed directly, as ``mpmath.ncdf`` does).
        """
        raise NotImplementedError

    def _symbolic_divergence(self, order: Any, distance: Any, scale: Any) -> Any:
        """The closed form of ``_divergence`` as a sympy expression in ``order > 1``, ``distance > 0`` and ``scale``; optional."""
        raise NotImplementedError

    def max_divergence(self, distance: Any) -> Any:
        """``D(inf, distance)``, the max-divergence between copies ``distance`` apart."""
        return self.divergence(math.inf, distance)


def check_mechanism(mechanism: Any) -> Mechanism:
    """``mechanism``, refused with a ``TypeError`` naming it unless it is a :class:`Mechanism`."""
    if not isinstance(mechanism, Mechanism):
        example = "renyicert.get_mechanism('gaussian', scale=0.25)"
        raise TypeError(f"mechanism must be a renyicert.Mechanism (e.g. {example}), got {mechanism!r}")
    return mechanism
