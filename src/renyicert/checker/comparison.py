"""The comparison bounds checked where they are used: the tight radius in the norm ball, the PixelDP radius against the divergence.

``certify(bound="best")`` takes the largest of every bound a mechanism offers,
so a plugin's ``_tight_radius`` or ``_pixeldp_radius`` that is too large becomes
the certificate.  Two checks keep them honest:

:func:`tight_radius_problem`
    The Neyman-Pearson worst case of a shift ``delta`` with ``||delta|| = R`` (the
    claimed tight radius) in the mechanism's norm: the base classifier that keeps
    ``P(top) >= p1`` and ``P(runner-up) <= p2`` under the noise and does worst
    under the shifted noise puts the top class where the log-likelihood ratio
    ``log q/p`` is lowest and the runner-up where it is highest.  For product
    noise the ratio is a sum over the shifted coordinates, so both sets and their
    probabilities under the shifted noise are estimated by Monte Carlo from the
    mechanism's own (separately checked) sampler, with DKW confidence bands on
    both sides.  A shift at which the runner-up provably overtakes the top class
    fails the radius, naming the shift and the numbers.  The shifts are those of
    the divergence's norm-ball search: the axis, the k-sparse uniform ones (for
    l_inf the cube's vertex) in the dimension the formula assumes (or a range),
    and the worst shifts that search found.
:func:`pixeldp_problem`
    PixelDP (Lecuyer et al. 2019) certifies ``L`` when the noise is
    ``(eps, delta)``-DP for shifts of size ``L`` and ``p1 > e^(2 eps) p2 + (1 + e^eps) delta``.
    The verified Rényi divergence gives that DP through the conversion of
    Canonne, Kamath & Steinke (2020, Prop. 12):
    ``eps = D(order, L) + log(1/delta)/(order-1) + log(1 - 1/order) - log(order)/(order-1)``
    for every order > 1, and pure DP ``eps = D(inf, L)`` with ``delta = 0``.
    :func:`pixeldp_from_divergence` is the largest ``L`` that gives; a plugin's
    PixelDP radius above it is not backed by the divergence and fails.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..inversion import invert_divergence
from .norm_ball import sparse_sizes

__all__ = ["pixeldp_from_divergence", "pixeldp_problem", "tight_radius_problem"]

#: ``(p1, p2)`` at which the comparison bounds are checked.
PAIRS = ((0.55, 0.45), (0.7, 0.3), (0.9, 0.1), (0.99, 0.01), (0.7, 0.2), (0.9, 0.05), (0.6, 0.1))
#: The deltas the PixelDP radius is checked at.
DELTAS = (1e-5, 1e-3)
#: A PixelDP radius may exceed the one derived from the divergence by this much (relative): the derivation maximises over a grid of orders.
PIXELDP_RTOL = 1e-3
#: Failure probability of each Monte Carlo comparison (DKW bands on both sides), so that a sound radius fails only rarely.
SIGNIFICANCE = 1e-6
#: The finite Rényi orders the conversion to (eps, delta)-DP is maximised over (order inf is the pure-DP case, taken apart).
_ORDERS = 1.0 + np.geomspace(1e-4, 1e4, 600)


def pixeldp_from_divergence(mechanism: Any, p1: float, p2: float, delta: float) -> float:
    """The largest ``L`` the mechanism's Rényi divergence proves PixelDP-robust at ``(p1, p2)`` and ``delta``.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.checker.comparison import pixeldp_from_divergence
    >>> laplace = renyicert.get_mechanism("laplace", scale=0.5)
    >>> round(pixeldp_from_divergence(laplace, 0.9, 0.1, 1e-5), 6)  # pure DP: b log(p1/p2) / 2
    0.549306
    """
    best = 0.0
    if mechanism.has_max_divergence and p1 > p2 > 0.0:
        pure = 0.5 * (math.log(p1) - math.log(p2))  # delta = 0: p1 > e^(2 eps) p2, with eps = D(inf, L)
        if pure > 0.0:
            best = float(invert_divergence(mechanism, np.array([np.inf]), np.array([pure]))[0])
    surplus = p1 - delta
    if surplus > 0.0:
        z = 2.0 * surplus / (delta + math.sqrt(delta * delta + 4.0 * p2 * surplus))
        eps = math.log(z)  # the largest eps with p1 > e^(2 eps) p2 + (1 + e^eps) delta
        budget = (
            eps - math.log(1.0 / delta) / (_ORDERS - 1.0) - np.log1p(-1.0 / _ORDERS) + np.log(_ORDERS) / (_ORDERS - 1.0)
        )
        usable = budget > 0.0
        if usable.any():
            radii = invert_divergence(mechanism, _ORDERS[usable], budget[usable])
            best = max(best, float(np.max(radii)))
    return best


def pixeldp_problem(mechanism: Any) -> dict[str, Any] | None:
    """Where the plugin's ``_pixeldp_radius`` exceeds :func:`pixeldp_from_divergence` (over-certifies), or ``None``."""
    for delta in DELTAS:
        for p1, p2 in PAIRS:
            claimed = float(mechanism._eval_pixeldp_radius(np.array([p1]), np.array([p2]), delta)[0])
            derived = pixeldp_from_divergence(mechanism, p1, p2, delta)
            if claimed > derived * (1.0 + PIXELDP_RTOL) + 1e-300:
                return {
                    "method": "_pixeldp_radius",
                    "p1": p1,
                    "p2": p2,
                    "delta": delta,
                    "claimed radius": claimed,
                    "radius the divergence proves": derived,
                    "problem": f"the PixelDP radius is {claimed / derived - 1.0:.1%} above what the verified divergence proves"
                    if derived > 0
                    else "a PixelDP radius > 0 where the verified divergence proves none",
                }
    return None


def _shift_plan(
    mechanism: Any, dimension: int | None, worst: list[NDArray[np.float64]], quick: bool
) -> list[tuple[str, NDArray[np.float64]]]:
    """Unit shifts (``||u||_norm = 1``, only the non-zero coordinates kept) to test the tight radius along."""
    norm = float(mechanism.norm)
    dims = [dimension] if dimension is not None else ([1, 2, 16, 1024] if quick else [1, 2, 4, 16, 64, 256, 1024])
    plan: list[tuple[str, NDArray[np.float64]]] = []
    sizes = sorted({k for d in dims for k in sparse_sizes(d)})
    if quick and len(sizes) > 5:
        sizes = sorted({1, 2, sizes[len(sizes) // 2], sizes[-1]})
    for k in sizes:
        coordinate = 1.0 if math.isinf(norm) else k ** (-1.0 / norm)
        plan.append((f"{k} coordinate(s) at R{'' if k == 1 else f' x {coordinate:.6g}'}", np.full(k, coordinate)))
    seen: set[tuple[float, ...]] = set()
    for direction in worst:
        kept = np.sort(direction[direction > 0.0])[::-1]
        key = tuple(np.round(kept, 3))
        if kept.size and key not in seen and len(seen) < (2 if quick else 6):
            seen.add(key)
            plan.append((f"the norm-ball search's worst shift, R x {[round(float(v), 4) for v in kept]}", kept))
    return plan


def tight_radius_problem(
    mechanism: Any, log_density: Any, dimension: int | None, worst: list[NDArray[np.float64]], quick: bool, seed: int
) -> tuple[dict[str, Any] | None, int]:
    """``(evidence, shifts tested)``: a shift of the claimed tight radius at which the runner-up provably overtakes the top class, or ``None``."""
    import torch

    rng = np.random.default_rng(seed)
    budget = 2_000_000 if quick else 8_000_000  # noise values per (pair, shift)
    tested = 0
    plan = _shift_plan(mechanism, dimension, worst, quick)
    pairs = PAIRS[1:4] + PAIRS[5:6] if quick else PAIRS
    for p1, p2 in pairs:
        radius = float(mechanism._eval_tight_radius(np.array([p1]), np.array([p2]))[0])
        if not 0.0 < radius < math.inf:
            continue
        for label, unit in plan:
            tested += 1
            shift = radius * unit
            count = int(max(2_000, min(200_000, budget // shift.size)))
            noise = mechanism.sample((count, shift.size), seed=int(rng.integers(2**62)), dtype=torch.float64).numpy()

            def log_ratio(z: NDArray[np.float64]) -> NDArray[np.float64]:
                return np.sum(log_density(z - shift) - log_density(z), axis=1)  # log q/p, q the noise shifted by +shift

            under_p = log_ratio(noise) + 1e-9 * rng.random(
                count
            )  # ties (atoms of the ratio) broken at random, as Neyman-Pearson allows
            under_q = log_ratio(noise + shift) + 1e-9 * rng.random(count)
            band = math.sqrt(
                math.log(4.0 / SIGNIFICANCE) / (2.0 * count)
            )  # DKW: each empirical CDF within `band` with prob. 1 - SIGNIFICANCE/2
            top_cut = float(np.quantile(under_p, min(1.0, p1 + band)))  # P(ratio <= cut) >= p1 on the band's event
            runner_cut = float(np.quantile(under_p, min(1.0, 1.0 - p2 + band)))  # P(ratio > cut) <= p2
            top = float(np.mean(under_q <= top_cut)) + band
            runner_up = float(np.mean(under_q > runner_cut)) - band
            if top < runner_up:
                return {
                    "method": "_tight_radius",
                    "p1": p1,
                    "p2": p2,
                    "radius": radius,
                    "shift": label,
                    "coordinates": int(shift.size),
                    "worst top-class probability under the shifted noise (upper bound)": top,
                    "worst runner-up probability (lower bound)": runner_up,
                    "confidence": f"{1 - 2 * SIGNIFICANCE:.6f} (DKW bands over {count} Monte Carlo draws on each side)",
                    "problem": "a shift of the claimed radius lets the runner-up overtake the top class (over-certifies)",
                }, tested
    return None, tested
