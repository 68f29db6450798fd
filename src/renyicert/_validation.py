"""Argument checks shared by the public entry points.

Every error names the bad value and what was expected; checks run where input
enters the library so the numerical code below can assume valid arrays.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "as_float_array",
    "check_alpha",
    "check_batch_size",
    "check_flag",
    "check_positive_int",
    "check_scale",
    "check_seed",
    "check_probabilities",
    "first_bad",
    "is_torch",
]


def is_torch(value: Any) -> bool:
    """Whether ``value`` is a ``torch.Tensor`` (without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def as_float_array(value: Any, name: str) -> NDArray[np.float64]:
    """``value`` (scalar, sequence, numpy array or torch tensor) as a float64 array."""
    if is_torch(value):
        value = value.detach().cpu().double().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a real number or an array of them, got {value!r}") from error
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be real numbers, got dtype {array.dtype} ({value!r})")
    return array.astype(np.float64, copy=False)


def first_bad(array: NDArray[np.float64], bad: NDArray[np.bool_]) -> float:
    """The first element of ``array`` where ``bad`` holds (for error messages)."""
    return float(array[bad].flat[0]) if array.ndim else float(array)


#: The largest count a check accepts: what the engine's int64 counters (and Philox's 64-bit sample numbers) hold with room to add.
MAX_COUNT = 1 << 62


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an ``int``, or ``ValueError`` naming ``name`` unless it is an integer in ``[1, 2^62]`` (``True`` is not one).

    Examples
    --------
    >>> from renyicert._validation import check_positive_int
    >>> check_positive_int(2**63, "n")
    Traceback (most recent call last):
    ...
    ValueError: n must be a positive integer of at most 2^62, got 9223372036854775808
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if value > MAX_COUNT:
        raise ValueError(f"{name} must be a positive integer of at most 2^62, got {value!r}")
    return int(value)


def check_seed(value: Any, name: str = "seed") -> int:
    """A noise key: an integer in ``[0, 2^63)`` (a 63-bit Philox key), else a ``ValueError`` naming ``name``.

    Examples
    --------
    >>> from renyicert._validation import check_seed
    >>> check_seed(-1, "seeds[0]")
    Traceback (most recent call last):
    ...
    ValueError: seeds[0] must be an integer in [0, 2^63), got -1
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) < 2**63:
        raise ValueError(f"{name} must be an integer in [0, 2^63), got {value!r}")
    return int(value)


def check_alpha(alpha: Any) -> float:
    """``alpha`` as a float in ``(0, 1)``: the failure probability of a certificate.

    Examples
    --------
    >>> from renyicert._validation import check_alpha
    >>> check_alpha(1.0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be in (0, 1), got 1.0
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def check_batch_size(value: Any) -> int | str:
    """``value`` as a positive ``int``, or ``"auto"``; else ``ValueError`` naming it."""
    if isinstance(value, str) and value == "auto":
        return value
    try:
        return check_positive_int(value, "batch_size")
    except ValueError:
        raise ValueError(f"batch_size must be a positive integer or 'auto', got {value!r}") from None


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a ``bool``, or ``TypeError`` naming ``name`` unless it is ``True`` or ``False``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


_SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)


def check_scale(scale: Any) -> float:
    """``scale`` as a float, or ``ValueError`` unless it is finite and a normal float64 > 0 (a subnormal scale is refused)."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
        if is_torch(scale) and scale.numel() == 1:
            scale = float(scale.item())
        else:
            raise TypeError(f"scale must be a real number, got {scale!r}")
    scale = float(scale)
    if not math.isfinite(scale) or scale <= 0.0:
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    if scale < _SMALLEST_NORMAL:
        raise ValueError(
            f"scale must be at least the smallest normal float64, 2.2250738585072014e-308; got the subnormal {scale!r}, at which radii lose their digits"
        )
    return scale


def _coarsest_float(*values: Any) -> Any:
    """The least precise floating dtype among ``values`` (numpy or torch arrays), at most float64; float64 for plain numbers."""
    widest = np.float64
    for value in values:
        if is_torch(value):
            bits = value.element_size() * 8 if value.dtype.is_floating_point else 64
        else:
            dtype = getattr(value, "dtype", None)
            bits = dtype.itemsize * 8 if dtype is not None and np.issubdtype(dtype, np.floating) else 64
        if bits <= 32:
            widest = np.float32  # float16/bfloat16 sums are judged in float32, which holds them exactly
    return widest


def check_probabilities(p1: Any, p2: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validate and broadcast ``(p1, p2)``.

    Raises ``ValueError`` for NaN, values outside ``[0, 1]`` and ``p1 + p2 > 1``,
    the sum taken at the inputs' own precision (float32 tensors, torch's default,
    in float32).  The values are then used in float64, where ``p2`` is clamped to
    ``1 - p1``: that is always sound, since the true ``p2 <= 1 - true p1 <= 1 - p1``
    whenever ``p1`` is a valid lower bound on the top class.
    """
    precision = _coarsest_float(p1, p2)
    a = as_float_array(p1, "p1")
    b = as_float_array(p2, "p2")
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError as error:
        raise ValueError(f"p1 and p2 must broadcast together, got shapes {np.shape(a)} and {np.shape(b)}") from error
    for name, array in (("p1", a), ("p2", b)):
        bad = np.isnan(array) | (array < 0.0) | (array > 1.0)
        if bad.any():
            raise ValueError(f"{name} must be in [0, 1], got {first_bad(array, bad)!r}")
    # Judged at the inputs' own precision (float32 0.99 + 0.01 is 1 in float32, 1 + 9e-9 in float64); computed in float64.
    over = (a.astype(precision) + b.astype(precision)) > 1.0
    if over.any():
        i = np.flatnonzero(over.ravel())[0]
        raise ValueError(
            "p1 + p2 must be <= 1, got "
            f"p1={float(a.ravel()[i])!r} + p2={float(b.ravel()[i])!r} = {float(a.ravel()[i] + b.ravel()[i])!r}"
        )
    return a, np.minimum(b, 1.0 - a)
