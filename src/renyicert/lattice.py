"""Lattice noise: a mechanism's noise rounded to the input grid, drawn exactly from 64-bit integers.

Float-mode smoothing adds ``scale * z`` to ``x`` in float32. The sum's low-order
bits depend on ``x``, so the noisy inputs are not shifted copies of one
distribution, and a model that reads those bits can break every certificate
(Voráček & Hein, ICLR 2023). Lattice mode puts the noise on the grid the inputs
live on (``k / grid``, an 8-bit image has ``grid = 255``): each coordinate of the
noise is the mechanism's continuous noise ``e`` rounded to the nearest grid point,
``j = round(grid * e)``, drawn *exactly* from one uniform 64-bit integer ``U``:

* atom ``j`` (``lowest <= j <= lowest + atoms - 1``) is drawn when
  ``U`` is in its interval of ``floor(2^64 (F(j + 1/2) - F(j - 1/2)) - m)`` integers,
  the intervals laid end to end from ``ceil(2^64 F(lowest - 1/2) + m)``, with
  ``F`` the mechanism's one-coordinate CDF (:meth:`renyicert.Mechanism._coordinate_cdf`,
  mpmath) at the atom's boundaries ``(j +- 1/2) / grid``, evaluated with
  :data:`DIGITS` digits and a margin ``m = 2^-16`` that dwarfs their error;
* every other ``U`` (the truncated tails, each below ``tail``, and what the
  rounding down left at the right end, under one integer per atom) is a **failure**.

So each atom gets at most its true probability, and the failure probability
per coordinate is known exactly (:attr:`LatticeNoise.failure_mass`): about
``atoms * 2^-65`` (a 64-bit draw cannot do better while no atom gets more than its mass).

Why this certifies in floating point: for ``x = k / grid`` the copy is
``(k + j) / grid`` computed once from the integer ``k + j``, a deterministic
function ``h`` of the lattice point. With ``e`` continuous, ``k + round(grid e) =
round(grid (x + e))``, so the smoothed classifier is exactly the (real-arithmetic)
smoothing of the base classifier ``f(h(round(grid * .)))`` with the continuous
noise, and every bound (Rényi, tight, PixelDP) holds for it at grid inputs against
grid adversaries. Failures are handled by a coupling (see :func:`failure_adjusted`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .mechanism import Mechanism

__all__ = [
    "DIGITS",
    "GUIDE_BITS",
    "LatticeNoise",
    "MAX_ATOMS",
    "MAX_GRID",
    "TAIL",
    "check_grid",
    "failure_adjusted",
    "grid_integers",
    "lattice_noise",
    "log2_failure",
]

#: Decimal digits the CDF is evaluated with (64 bits need 20; the rest is margin for tails near 1).
DIGITS = 50
#: Default mass of each truncated tail, at most: 2^-66 (below the gaps' mass, about one integer per atom).
TAIL = 2.0**-66
#: Most atoms a lattice may have (a noise scale of more than ~400 grid steps for a Laplace at 2^-66 tails).
MAX_ATOMS = 1 << 20
#: The largest grid (points per unit) accepted: the noisy integers ``k + j`` stay exact in float32.
MAX_GRID = 1 << 16
#: ``U >> (64 - GUIDE_BITS)`` indexes the guide table (the first candidate atom) of the C++ kernel: 2^16 buckets, so
#: that almost every bucket of the body lies inside one atom (no threshold compared), at 256 KiB per table.
GUIDE_BITS = 16
#: The margin, in units of 2^-64, between a threshold and the CDF it rounds (far above the CDF's error at DIGITS digits).
_MARGIN = Fraction(1, 2**16)
_TWO_64 = 2**64
THRESHOLD_SHIFT = 2**63  # thresholds are stored as U - 2^63 (signed int64 keeps the unsigned order)


@dataclass(frozen=True, eq=False)
class LatticeNoise:
    """The integer thresholds of one mechanism's noise rounded to a grid.

    Attributes
    ----------
    mechanism
        The noise.
    grid
        Grid points per unit: the inputs are ``k / grid``.
    tail
        The most mass each truncated tail was allowed.
    lowest
        The smallest atom ``j`` drawn (usually ``-(atoms - 1) / 2``).
    start, ends
        Atom ``lowest + a`` is drawn for ``ends[a - 1] <= U < ends[a]`` (``ends[-1]``
        read as ``start``); ``U < start`` or ``U >= ends[-1]`` is a failure. Stored as
        ``value - 2^63`` (int64), so that signed comparison orders them as unsigned.
    guide
        int32 ``(2^GUIDE_BITS,)``: ``guide[t]`` is the number of ``ends`` at or below ``t 2^48``
        (the first atom a ``U`` with top bits ``t`` can fall in).
    """

    mechanism: Mechanism
    grid: int
    tail: float
    lowest: int
    start: int
    ends: NDArray[np.int64]
    guide: NDArray[np.int32] = field(repr=False)

    @property
    def atoms(self) -> int:
        """How many atoms the lattice draws."""
        return int(self.ends.shape[0])

    @property
    def highest(self) -> int:
        """The largest atom ``j`` drawn."""
        return self.lowest + self.atoms - 1

    @functools.cached_property
    def failure_mass(self) -> Fraction:
        """The exact probability that one coordinate's draw fails: ``(2^64 - (ends[-1] - start)) / 2^64``."""
        return Fraction(_TWO_64 - (int(self.ends[-1]) - self.start), _TWO_64)

    def integer_masses(self) -> list[int]:
        """Each atom's sampled probability times 2^64, exactly: the integers ``U`` that draw it."""
        edges = [self.start, *(int(e) for e in self.ends.tolist())]
        return [b - a for a, b in zip(edges, edges[1:])]

    def masses(self) -> NDArray[np.float64]:
        """Each atom's sampled probability (float64, for tests and plots)."""
        return np.asarray(self.integer_masses(), dtype=np.float64) / float(_TWO_64)

    def draw(self, words: NDArray[np.uint64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """The atom ``j`` and whether the draw failed, for each uniform 64-bit integer of ``words`` (the definition every path reproduces).

        Examples
        --------
        >>> import numpy as np, renyicert
        >>> from renyicert.lattice import lattice_noise
        >>> noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 16)
        >>> j, failed = noise.draw(np.array([2**63, 0], dtype=np.uint64))  # the median, and U = 0 (in the left tail)
        >>> j.tolist(), failed.tolist()
        ([0, -37], [False, True])
        """
        signed = (np.asarray(words, dtype=np.uint64) ^ np.uint64(THRESHOLD_SHIFT)).view(np.int64)
        index = np.searchsorted(self.ends, signed, side="right")
        failed = (index >= self.atoms) | (signed < self.start)
        return np.minimum(index, self.atoms - 1).astype(np.int64) + self.lowest, failed


def check_grid(grid: Any) -> int:
    """``grid`` checked: an integer in ``[1, MAX_GRID]`` (``True`` and floats such as 255.0 are refused).

    Examples
    --------
    >>> from renyicert.lattice import check_grid
    >>> check_grid(255)
    255
    >>> check_grid(0.5)
    Traceback (most recent call last):
    ...
    ValueError: grid must be an integer in [1, 65536] (grid points per unit: 255 for 8-bit images), got 0.5
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or not 1 <= grid <= MAX_GRID:
        raise ValueError(
            f"grid must be an integer in [1, {MAX_GRID}] (grid points per unit: 255 for 8-bit images), got {grid!r}"
        )
    return int(grid)


def grid_integers(x: Any, grid: int, round_off_grid: bool = False) -> Any:
    """The integers ``k`` with ``x = k / grid`` (a tensor of ``x``'s shape, int64); off-grid values refused unless ``round_off_grid``.

    A value is on the grid when ``|x grid - k|`` is within float32 rounding of
    ``k / grid`` (``2^-20 max(|k|, 1)``, 16 times float32's half-ulp). The refusal
    says how many values are off the grid and the largest distance.

    Examples
    --------
    >>> import torch
    >>> from renyicert.lattice import grid_integers
    >>> grid_integers(torch.tensor([0.0, 1 / 255, 1.0]), 255).tolist()
    [0, 1, 255]
    >>> grid_integers(torch.tensor([0.5, 0.25]), 255)
    Traceback (most recent call last):
    ...
    ValueError: 2 of 2 input values are off the grid k / 255 (the largest is 0.5 grid steps away, at 0.5); give inputs on the grid (8-bit pixels / 255) or ask to round them (round_off_grid=True, --round-to-grid)
    """
    import torch

    scaled = x.double() * grid
    k = torch.round(scaled)
    if k.numel() and float(k.abs().max()) >= 2**24 - MAX_ATOMS:
        raise ValueError(
            f"inputs reach {float(x.abs().max()):g}, past {(2**24 - MAX_ATOMS) / grid:g} = (2^24 - {MAX_ATOMS}) / {grid}, where k + j / {grid} is no longer exact in float32"
        )
    distance = (scaled - k).abs()
    off = distance > 2.0**-20 * torch.clamp(k.abs(), min=1.0)
    if not round_off_grid and bool(off.any()):
        worst = int(torch.argmax(distance.reshape(-1)))
        raise ValueError(
            f"{int(off.sum())} of {x.numel()} input values are off the grid k / {grid} (the largest is {float(distance.reshape(-1)[worst]):.3g} grid steps away, "
            f"at {float(x.reshape(-1)[worst]):.6g}); give inputs on the grid (8-bit pixels / {grid}) or ask to round them (round_off_grid=True, --round-to-grid)"
        )
    return k.to(torch.int64)


def failure_adjusted(counts: NDArray[np.int64], top: NDArray[np.int64], failed: NDArray[np.int64]) -> NDArray[np.int64]:
    """Class counts with the failed copies counted for every class but ``top`` (the counts the bounds are computed from).

    ``counts`` are the votes of the copies that did not fail (``(inputs, classes)``),
    ``failed`` the copies that did (``(inputs,)``); a trial total is
    ``counts.sum(1) + failed``. Sound by a coupling: the lattice sampler gives each
    atom at most its true mass, so it can be coupled with an exact draw of the
    rounded noise that agrees with it on every copy that did not fail. Against the
    exact draws, the top class has at least ``counts[top]`` votes and every other
    class at most ``counts[c] + failed``; the Clopper-Pearson bounds (and the
    confidence sequences) are monotone in the count, so a lower bound on ``p1`` from
    the first and upper bounds on the others from the second are valid bounds for
    the exact rounded noise, at the same alpha.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.lattice import failure_adjusted
    >>> failure_adjusted(np.array([[90, 7, 1]]), np.array([0]), np.array([2])).tolist()
    [[90, 9, 3]]
    """
    counts = np.asarray(counts, dtype=np.int64)
    failed = np.asarray(failed, dtype=np.int64).reshape(-1, 1)
    others = np.ones(counts.shape, dtype=bool)
    others[np.arange(counts.shape[0]), np.asarray(top, dtype=np.int64)] = False
    return counts + np.where(others, failed, 0)


def _cdf_at(mechanism: Mechanism, boundary: Any, grid: int) -> Any:
    """``F(boundary / grid)`` for a boundary in grid units (an mpf), checked to be a probability."""
    import mpmath

    value = mpmath.mpf(mechanism._eval_coordinate_cdf(mpmath.mpf(boundary) / grid))
    if not 0 <= value <= 1:
        raise ValueError(
            f"{mechanism.label}._coordinate_cdf({mpmath.nstr(mpmath.mpf(boundary) / grid, 8)}) returned {mpmath.nstr(value, 8)}, not a probability in [0, 1]"
        )
    return value


def _tail_end(mechanism: Mechanism, grid: int, tail: float, side: int) -> int:
    """The atom closest to 0 on ``side`` (+1 or -1) beyond whose outer boundary the tail mass is at most ``tail``."""
    import mpmath

    def outside(j: int) -> Any:  # the tail mass beyond atom j's outer boundary
        value = _cdf_at(mechanism, j + side * mpmath.mpf("0.5"), grid)
        return 1 - value if side > 0 else value

    step = 1
    while outside(side * step) > tail:
        step *= 2
        if step > MAX_ATOMS:
            raise ValueError(
                f"{mechanism!r} rounded to the grid 1/{grid} needs more than {MAX_ATOMS} atoms to leave tails below {tail:g}: "
                "its scale is too large against the grid step, or its tails too heavy, for lattice mode"
            )
    low, high = step // 2, step  # outside(side * low) > tail >= outside(side * high), or low = 0
    while high - low > 1:
        middle = (low + high) // 2
        if outside(side * middle) > tail:
            low = middle
        else:
            high = middle
    return side * high


@functools.lru_cache(maxsize=32)
def _build(mechanism: Mechanism, grid: int, tail: float) -> LatticeNoise:
    import mpmath

    with mpmath.workdps(DIGITS):
        lowest, highest = _tail_end(mechanism, grid, tail, -1), _tail_end(mechanism, grid, tail, +1)
        atoms = highest - lowest + 1
        if atoms > MAX_ATOMS:
            raise ValueError(
                f"{mechanism!r} rounded to the grid 1/{grid} needs {atoms} atoms, more than {MAX_ATOMS}: its scale is too large against the grid step for lattice mode"
            )
        two_64 = mpmath.mpf(_TWO_64)
        margin = mpmath.mpf(_MARGIN.numerator) / _MARGIN.denominator
        cdf = [_cdf_at(mechanism, lowest + a - mpmath.mpf("0.5"), grid) for a in range(atoms + 1)]
        if any(b > c for b, c in zip(cdf, cdf[1:])):
            raise ValueError(f"{mechanism.label}._coordinate_cdf is not non-decreasing on the grid 1/{grid}")
        # Contiguous intervals from the left tail's end: each atom gets floor(2^64 p - m) integers, never more than 2^64 p.
        start = int(mpmath.ceil(cdf[0] * two_64 + margin))
        ends, end = [], start
        for below, above in zip(cdf, cdf[1:]):
            end += max(int(mpmath.floor((above - below) * two_64 - margin)), 0)
            ends.append(end)
    if ends[-1] >= _TWO_64:
        raise ValueError(f"{mechanism.label}._coordinate_cdf gives more than probability 1 on the grid 1/{grid}")
    ends_array = np.array([e - THRESHOLD_SHIFT for e in ends], dtype=np.int64)
    buckets = (np.arange(1 << GUIDE_BITS, dtype=np.uint64) << np.uint64(64 - GUIDE_BITS)) ^ np.uint64(THRESHOLD_SHIFT)
    guide = np.searchsorted(ends_array, buckets.view(np.int64), side="right").astype(np.int32)
    return LatticeNoise(
        mechanism=mechanism,
        grid=grid,
        tail=tail,
        lowest=lowest,
        start=start - THRESHOLD_SHIFT,
        ends=ends_array,
        guide=guide,
    )


def lattice_noise(mechanism: Mechanism, grid: int, tail: float = TAIL) -> LatticeNoise:
    """The :class:`LatticeNoise` of ``mechanism`` rounded to the grid ``1 / grid``, built once per (mechanism, grid, tail) per process.

    Parameters
    ----------
    mechanism
        Product noise that offers ``_coordinate_cdf`` (the Gaussian and Laplace do).
    grid
        Grid points per unit (255 for 8-bit images, 16 for scikit-learn's digits).
    tail
        The most mass each truncated tail may have (default :data:`TAIL`); the
        tails count as failures.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.lattice import lattice_noise
    >>> noise = lattice_noise(renyicert.get_mechanism("laplace", scale=0.25), 255)
    >>> noise.lowest, noise.highest, float(noise.failure_mass) < 2**-50
    (-2872, 2872, True)
    """
    grid = check_grid(grid)
    if not (isinstance(tail, float) and 0.0 < tail < 0.5):
        raise ValueError(f"tail must be a float in (0, 0.5), got {tail!r}")
    if not getattr(mechanism, "has_coordinate_cdf", False):
        raise ValueError(
            f"lattice mode needs the noise's one-coordinate CDF in high precision, {type(mechanism).__name__}._coordinate_cdf(t) "
            f"(mpmath in, mpmath out), which {mechanism.label} does not provide; see docs/writing-plugins.md"
        )
    return _build(mechanism, grid, float(tail))


def log2_failure(noise: LatticeNoise) -> float:
    """``log2`` of the failure mass per coordinate (``-inf`` when no draw can fail)."""
    mass = noise.failure_mass
    return -math.inf if mass == 0 else math.log2(mass.numerator) - math.log2(mass.denominator)
