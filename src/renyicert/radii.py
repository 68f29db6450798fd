"""Which certificate gives a radius: the one place a bound's name is checked and turned into a radius.

Three theorems turn the same confidence bounds ``(p1_lower, p2_upper)`` into a
radius: Li et al.'s Rényi bound (:func:`renyicert.certified_radius`, every
mechanism), the mechanism's tight bound and PixelDP's
(:mod:`renyicert.comparison_radii`, where the plugin offers them).
``bound="best"`` takes the largest of those :func:`best_bounds` allows.
Smoothing, sequential certification, the thresholds of
:func:`probability_threshold`, the records and the command line all name a bound
through this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._validation import as_float_array, first_bad
from .comparison_radii import pixeldp_radius, tight_radius
from .mechanism import Mechanism, check_mechanism
from .registry import get_mechanism
from .solver import certified_radius

__all__ = [
    "BOUNDS",
    "BUILT_IN_MODULES",
    "RECORD_BOUNDS",
    "best_bounds",
    "best_radii",
    "bound_radius",
    "check_bound",
    "offered_bounds",
    "probability_threshold",
    "radii_where_certified",
    "radius_table",
    "require_offered",
]

#: The certificates a radius can come from: Li et al.'s Rényi bound, the mechanism's tight bound, PixelDP's.
BOUNDS = ("renyi", "tight", "pixeldp")
#: The radii a fixed-n record holds: one per bound of :data:`BOUNDS`, and ``best``, the largest of them
#: (which bound gave it is the record's ``best_bound``).
RECORD_BOUNDS = (*BOUNDS, "best")


def check_bound(bound: Any, allowed: tuple[str, ...] = BOUNDS) -> str:
    """``bound``, refused with a ``ValueError`` naming it unless it is one of ``allowed``.

    Examples
    --------
    >>> from renyicert.radii import check_bound
    >>> check_bound("cohen")
    Traceback (most recent call last):
    ...
    ValueError: bound must be one of ('renyi', 'tight', 'pixeldp'), got 'cohen'
    """
    if not isinstance(bound, str) or bound not in allowed:
        raise ValueError(f"bound must be one of {allowed}, got {bound!r}")
    return bound


def require_offered(mechanism: Mechanism, bound: str) -> str:
    """``bound``, refused with a ``ValueError`` when ``mechanism`` does not offer it (the Rényi bound it always does).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.radii import require_offered
    >>> require_offered(renyicert.get_mechanism("gaussian", scale=1.0), "tight")
    'tight'
    """
    if bound not in offered_bounds(mechanism):
        what = {"tight": "a tight certificate", "pixeldp": "a PixelDP certificate"}.get(bound, repr(bound))
        raise ValueError(f"bound={bound!r} needs {what}, which {mechanism.label} does not provide")
    return bound


def bound_radius(
    mechanism: Mechanism, bound: str, p1: Any, p2: Any, delta: float = 1e-5
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(radius, order)`` of ``bound`` at ``(p1, p2)`` as float arrays; ``order`` is the Rényi order, ``nan`` for the others.

    ``delta`` is PixelDP's. Every bound gives radius 0 where ``p1 <= p2``.

    Examples
    --------
    >>> import numpy as np, renyicert
    >>> from renyicert.radii import bound_radius
    >>> radius, order = bound_radius(renyicert.get_mechanism("gaussian", scale=0.5), "tight", 0.9, 0.1)
    >>> round(float(radius), 6), bool(np.isnan(order))
    (0.640776, True)
    """
    check_bound(bound)
    if bound == "renyi":
        radius, order = certified_radius(mechanism, p1, p2)
        return np.asarray(radius, dtype=np.float64), np.asarray(order, dtype=np.float64)
    if bound == "tight":
        radius = np.asarray(tight_radius(mechanism, p1, p2), dtype=np.float64)
    else:
        radius = np.asarray(pixeldp_radius(mechanism, p1, p2, delta=delta), dtype=np.float64)
    return radius, np.full(radius.shape, np.nan)


def radii_where_certified(
    mechanism: Mechanism, p1_lower: Any, p2_upper: Any, certified: Any, bound: str
) -> tuple[Any, Any]:
    """``(radius, order)`` under ``bound`` (one of :data:`BOUNDS`) where ``certified``, and ``(0, nan)`` where the classifier abstains.

    The bound is evaluated only at the certified pairs (the others are replaced
    by ``(1, 0)`` first, so that no formula sees ``p1 <= p2``); ``order`` is the
    Rényi order attaining the radius, ``nan`` for the other bounds.

    Examples
    --------
    >>> import numpy as np, renyicert
    >>> from renyicert.radii import radii_where_certified
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    >>> radius, order = radii_where_certified(gaussian, np.array([0.99, 0.4]), np.array([0.01, 0.4]), np.array([True, False]), "renyi")
    >>> radius.round(6).tolist(), np.isnan(order).tolist()
    ([0.477002, 0.0], [False, True])
    """
    check_bound(bound)
    p1, p2 = np.where(certified, p1_lower, 1.0), np.where(certified, p2_upper, 0.0)
    radius, order = bound_radius(mechanism, bound, p1, p2)
    radius = np.where(certified, radius, 0.0)
    return radius, np.where(certified, np.asarray(order, dtype=np.float64), np.nan)


def offered_bounds(mechanism: Mechanism) -> tuple[str, ...]:
    """The bounds of :data:`BOUNDS` that ``mechanism`` offers (the Rényi bound always).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.radii import offered_bounds
    >>> offered_bounds(renyicert.get_mechanism("laplace", scale=1.0))
    ('renyi', 'tight', 'pixeldp')
    """
    offered = {"renyi": True, "tight": mechanism.has_tight_radius, "pixeldp": mechanism.has_pixeldp_radius}
    return tuple(bound for bound in BOUNDS if offered[bound])


#: The modules of the mechanisms renyicert ships: their comparison bounds are checked by renyicert's own test suite
#: (the checker in full mode, and tests against the closed forms), so they count in ``bound="best"``.
BUILT_IN_MODULES = frozenset({"renyicert_gaussian", "renyicert_laplace"})


def best_bounds(mechanism: Mechanism) -> tuple[str, ...]:
    """The bounds ``bound="best"`` takes the largest of: the Rényi bound always, a comparison bound only where it was verified.

    The Rényi radius comes from the divergence alone, which :func:`renyicert.check`
    verifies against the density.  A comparison bound (``_tight_radius``,
    ``_pixeldp_radius``) is a second formula a plugin supplies; it counts in
    ``best`` only when the mechanism is one renyicert ships (its class is defined in
    :data:`BUILT_IN_MODULES`), or when :func:`renyicert.checker.verify_comparison_bounds`
    has checked it on this mechanism (the tight radius against the Neyman-Pearson worst
    case over the norm ball, the PixelDP radius against the divergence).  An unverified
    comparison radius is still computed and reported (``radius_tight``,
    ``radius_pixeldp``), never taken as the certificate.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.radii import best_bounds
    >>> best_bounds(renyicert.get_mechanism("laplace", scale=1.0))
    ('renyi', 'tight', 'pixeldp')
    """
    offered = offered_bounds(mechanism)
    if type(mechanism).__module__ in BUILT_IN_MODULES:
        return offered
    verified = getattr(mechanism, "_verified_bounds", frozenset())
    return tuple(bound for bound in offered if bound == "renyi" or bound in verified)


def best_radii(mechanism: Mechanism, p1_lower: Any, p2_upper: Any, certified: Any) -> tuple[Any, Any, Any]:
    """``(radius, order, bound)``: the largest radius of every bound :func:`best_bounds` allows, its Rényi order, and which bound gave it.

    Each bound is a theorem "if ``p1 >= p1_lower`` and ``p2 <= p2_upper``, the
    prediction is constant within R"; on the event where the confidence bounds
    hold (probability ``1 - alpha``), all of them hold at once, and so does
    their maximum: taking it spends no extra alpha.  A tie goes to the earlier
    bound of :data:`BOUNDS` (Rényi, then tight, then PixelDP); ``order`` is the
    Rényi order where the Rényi bound gave the radius, ``nan`` elsewhere, and
    ``bound`` is ``"renyi"`` where the classifier abstains (radius 0).

    Examples
    --------
    >>> import numpy as np, renyicert
    >>> from renyicert.radii import best_radii
    >>> laplace = renyicert.get_mechanism("laplace", scale=0.25)
    >>> radius, order, bound = best_radii(laplace, np.array([0.9, 0.6]), np.array([0.01, 0.001]), np.array([True, True]))
    >>> bound.tolist(), radius.round(4).tolist()  # PixelDP wins where the runner-up is tiny beside a small p1
    (['renyi', 'pixeldp'], [0.6135, 0.7996])
    """
    bounds = best_bounds(mechanism)
    results = [radii_where_certified(mechanism, p1_lower, p2_upper, certified, bound) for bound in bounds]
    radii = np.stack([np.atleast_1d(radius) for radius, _ in results])
    winner = np.argmax(radii, axis=0)  # the first of equal maxima: the earlier bound
    columns = np.arange(radii.shape[1])
    radius = radii[winner, columns]
    order = np.where(winner == 0, np.atleast_1d(results[0][1]), np.nan)
    shape = np.shape(results[0][0])
    return radius.reshape(shape), order.reshape(shape), np.asarray(bounds, dtype=object)[winner].reshape(shape)


def probability_threshold(mechanism: Mechanism, radius: Any, bound: str = "renyi") -> Any:
    """The smallest ``p1`` whose certified radius, with ``p2 = 1 - p1``, reaches ``radius``: a lower bound ``p1 > c`` certifies ``radius``.

    Bisection on ``p1`` in ``[1/2, 1)`` to adjacent doubles, keeping the upper
    end, where the radius is computed and reaches ``radius``: the returned
    ``c`` always certifies it (``bound``'s radius at ``(c, 1 - c)`` is
    ``>= radius``), and no double below ``c`` by more than one step does.
    ``radius = 0`` gives exactly ``1/2`` (a top class above one half is the
    smoothed prediction); a radius no ``p1 < 1`` reaches gives ``1.0`` (never
    certified from a bound below 1).

    Parameters
    ----------
    mechanism
        The noise.
    radius
        Radii ``>= 0`` (a scalar or an array).
    bound
        ``"renyi"`` (:func:`certified_radius`), ``"tight"`` (:func:`tight_radius`) or ``"pixeldp"`` (:func:`pixeldp_radius`).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.radii import probability_threshold
    >>> gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    >>> [round(float(c), 6) for c in probability_threshold(gaussian, [0.0, 0.5, 1.0], "tight")]  # Phi(r / sigma)
    [0.5, 0.841345, 0.97725]
    """
    mechanism = check_mechanism(mechanism)
    check_bound(bound)
    radii = as_float_array(radius, "radius")
    bad = np.isnan(radii) | (radii < 0) | np.isinf(radii)
    if bad.any():
        raise ValueError(f"radius must be a finite number >= 0, got {first_bad(radii, bad)!r}")
    require_offered(mechanism, bound)
    shape = radii.shape
    target = radii.ravel()

    def reaches(p1: NDArray[np.float64]) -> NDArray[np.bool_]:
        return bound_radius(mechanism, bound, p1, 1.0 - p1)[0] >= target

    below = np.full(target.shape, 0.5)  # radius 0 at a tie: below every positive radius
    above = np.full(target.shape, np.nextafter(1.0, 0.0))
    reachable = reaches(above)
    for _ in range(80):  # [1/2, 1) holds 2^52 doubles: 53 halvings reach adjacent ones
        middle = 0.5 * (below + above)
        open_gap = (middle > below) & (middle < above)
        if not open_gap.any():
            break
        ok = reaches(middle)
        above = np.where(open_gap & ok, middle, above)
        below = np.where(open_gap & ~ok, middle, below)
    threshold = np.where(target == 0.0, 0.5, np.where(reachable, above, 1.0))
    return threshold.reshape(shape) if shape else float(threshold[0])


def radius_table(
    mechanisms: Sequence[tuple[str, float]], p1_values: Sequence[float], delta: float = 1e-5
) -> list[dict[str, Any]]:
    """Rows ``{mechanism, scale, p1, p2, renyi, order, tight, pixeldp}`` with ``p2 = 1 - p1`` (``None`` for a bound not offered).

    Examples
    --------
    >>> from renyicert.radii import radius_table
    >>> row = radius_table([("laplace", 1.0)], [0.99])[0]
    >>> round(row["renyi"], 6) == round(row["tight"], 6)  # Teng et al.'s bound is reached
    True
    """
    rows = []
    p1 = np.asarray(p1_values, dtype=float)
    p2 = 1.0 - p1
    for name, scale in mechanisms:
        mechanism = get_mechanism(name, scale=scale)
        radii = {bound: bound_radius(mechanism, bound, p1, p2, delta) for bound in offered_bounds(mechanism)}
        for i, value in enumerate(p1):
            row: dict[str, Any] = {"mechanism": name, "scale": scale, "p1": float(value), "p2": float(p2[i])}
            for bound in BOUNDS:
                row[bound] = float(radii[bound][0][i]) if bound in radii else None
            row["order"] = float(radii["renyi"][1][i])
            rows.append(row)
    return rows
