"""How sequential certification decides a radius from an input's counts: the threshold form and the runner-up form.

:class:`DecisionRule` holds the radii, their thresholds
(:func:`radius_thresholds`: the smallest ``p1`` whose radius reaches each) and
the test; :func:`decision_rule` checks every argument and builds it. The
complement form's default test is ordered one-sided e-processes at the full
alpha (fixed-sequence testing), with a futility rule (:func:`crossing_chance`,
:data:`FUTILITY`) that stops drawing for a radius its test will not cross by
the budget; refusals spend no alpha. The runner-up form keeps the Bonferroni
split of fixed-n certification (:func:`renyicert.confidence.runner_up_split`).
The schedule and the guarantee are :mod:`renyicert.sequential`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .confidence import P2_MODES, runner_up_split
from .confidence_sequence import (
    ABOVE,
    BELOW,
    UNDECIDED,
    one_sided_crossing_counts,
    one_sided_decisions,
    sequence_bounds,
    threshold_decisions,
)
from .mechanism import Mechanism
from .radii import bound_radius, check_bound, probability_threshold, require_offered

__all__ = [
    "FUTILITY",
    "OUT_OF_BUDGET",
    "TESTS",
    "DecisionRule",
    "crossing_chance",
    "decision_rule",
    "in_order",
    "radius_thresholds",
]


#: A threshold the budget cannot decide any more (reported as undecided; the input stops drawing for it).
OUT_OF_BUDGET = 2


#: The tests a radius can be decided by (see :class:`DecisionRule`).
TESTS = ("ordered", "two-sided")


#: The ordered rule's futility level: a radius stops drawing (undecided) once the chance that its test crosses by the
#: budget, predicted from the counts so far (:func:`crossing_chance`), is below this. A stopping rule: it spends no alpha.
#: 1e-4, not 1e-3: the prediction is made again at every decision point, so a stream that starts unluckily (14 of 48
#: copies for p = 0.509) dips below 1e-3 once and is lost; at 1e-4 the demo's models lose no input the union bound keeps.
FUTILITY = 1e-4


def radius_thresholds(mechanism: Mechanism, radii: Any, bound: str) -> NDArray[np.float64]:
    """The probability threshold of each radius (:func:`~renyicert.radii.probability_threshold`), checked: radii finite, ``>= 0`` and increasing.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.sequential_rule import radius_thresholds
    >>> radius_thresholds(renyicert.get_mechanism("gaussian", scale=1.0), [0.0, 1.0], "tight").round(6).tolist()
    [0.5, 0.841345]
    """
    values = np.asarray(radii, dtype=np.float64) if not isinstance(radii, (int, float)) else np.array([float(radii)])
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"radii must be one radius or a non-empty list of them, got {radii!r}")
    if not np.all(np.isfinite(values)) or (values < 0).any():
        raise ValueError(f"radii must be finite numbers >= 0, got {values.tolist()!r}")
    if (np.diff(values) <= 0).any():
        raise ValueError(f"radii must be strictly increasing, got {values.tolist()!r}")
    return np.atleast_1d(np.asarray(probability_threshold(mechanism, values, bound), dtype=np.float64))


@dataclass(frozen=True)
class DecisionRule:
    """How the radii are decided from an input's estimation counts: the threshold form or the runner-up form.

    ``p2_mode="complement"`` (Cohen et al.): ``p2 = 1 - p1``, so radius ``r`` is
    a threshold ``t(r)`` on ``p1`` alone, decided by one confidence sequence at
    level ``alpha`` (:func:`~renyicert.confidence_sequence.threshold_decisions`).

    ``p2_mode="runner-up"``: as :func:`renyicert.confidence.top_two_bounds`
    bounds them at a fixed ``n``, Bonferroni over the classes: a lower sequence
    for ``p1`` at ``alpha / 2`` and an upper one for every other class at
    ``alpha / (2 (K - 1))`` (the largest count gives the largest, so it is
    ``p2_upper``, capped at ``1 - p1_lower``). Radius ``r`` is certified once
    ``p1_lower > p2_upper`` and the bound's radius at ``(p1_lower, p2_upper)``
    reaches ``r``; it is refused once the radius at the most favourable corner
    (``p1``'s upper end, the runner-up's lower end) is below ``r``. All the
    sequences hold at every time together with probability ``>= 1 - alpha``, so
    the guarantee is unchanged; where the votes the top class does not get are
    spread over several classes, ``p2`` is much smaller than ``1 - p1``.

    ``test`` (the threshold form): ``"ordered"`` (the default) decides radius ``r_k``
    by the one-sided e-process for ``p1 > t(r_k)``
    (:func:`~renyicert.confidence_sequence.one_sided_decisions`) at the full
    ``alpha``, and certifies it only once every smaller radius is certified
    (fixed-sequence testing); a radius is refused by the mirror e-process, a
    stopping rule that spends no alpha. ``"two-sided"``: every radius from the one
    two-sided sequence (:func:`~renyicert.confidence_sequence.threshold_decisions`),
    the rule before; the runner-up form always uses its two-sided sequences.
    """

    mechanism: Mechanism
    bound: str
    p2_mode: str
    radii: NDArray[np.float64]
    thresholds: NDArray[np.float64]
    alpha: float
    classes: int
    test: str = "ordered"

    @property
    def ordered(self) -> bool:
        """Whether radii are decided by ordered one-sided tests (the threshold form's default)."""
        return self.p2_mode == "complement" and self.test == "ordered"

    def decisions(
        self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64], budget: Any = None
    ) -> tuple[NDArray[np.int8], Any]:
        """:data:`ABOVE` (certified), :data:`BELOW` (refused) or :data:`UNDECIDED`, per input (rows) and radius (columns);
        with ``budget``, also whether a vote for the candidate on every copy left until then would certify each radius."""
        rows = np.arange(len(label))
        best = None
        if budget is not None:
            best = counts.copy()
            best[rows, label] += budget - samples
        if self.ordered:  # the crossings of each radius's one-sided test; _decide applies the order
            top = counts[rows, label][:, None]
            above, below = one_sided_decisions(top, samples[:, None], self.thresholds[None, :], self.alpha)
            decided = np.where(above, ABOVE, np.where(below, BELOW, UNDECIDED)).astype(np.int8)
            if best is None:
                return decided, None
            # The fewest successes that cross at each input's budget: a vote for the candidate on every copy left must reach
            # them (the wealth grows with the successes), and futility stops a radius its test will most likely not reach.
            crossing = np.empty(decided.shape, dtype=np.int64)
            for end in np.unique(budget):
                crossing[budget == end] = one_sided_crossing_counts(int(end), self.thresholds, self.alpha)
            reachable = best[rows, label][:, None] >= crossing
            return decided, reachable & (crossing_chance(top, samples[:, None], budget[:, None], crossing) >= FUTILITY)
        if self.p2_mode == "complement":
            top = counts[rows, label][:, None]
            decided = threshold_decisions(top, samples[:, None], self.thresholds[None, :], self.alpha)
            reachable = (
                None
                if best is None
                else threshold_decisions(
                    best[rows, label][:, None], budget[:, None], self.thresholds[None, :], self.alpha
                )
                == ABOVE
            )
            return decided, reachable
        p1_lower, p1_upper, p2_lower, p2_upper = self._bounds(counts, label, samples)
        favourable = np.minimum(p2_lower, 1.0 - p1_upper)  # the most favourable corner the sequences allow
        pairs = [(p1_lower, p2_upper), (p1_upper, favourable)]
        if best is not None:
            best_lower, _, _, best_upper = self._bounds(best, label, budget, side="certify")
            pairs.append((best_lower, best_upper))
        # One solver call for every pair (the solver's cost is mostly per call).
        radius = self._radius(np.concatenate([p for p, _ in pairs]), np.concatenate([q for _, q in pairs])).reshape(
            len(pairs), len(label), 1
        )
        certified = (p1_lower > p2_upper) & (radius[0] >= self.radii[None, :])
        refused = ~(p1_upper > p2_lower) | (radius[1] < self.radii[None, :])
        decided = np.where(certified, ABOVE, np.where(refused, BELOW, UNDECIDED)).astype(np.int8)
        reachable = None if best is None else (pairs[2][0] > pairs[2][1]) & (radius[2] >= self.radii[None, :])
        return decided, reachable

    def certifiable(
        self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64]
    ) -> NDArray[np.bool_]:
        """Whether these counts would certify each radius."""
        if self.ordered:
            return in_order(self.decisions(counts, label, samples)[0] == ABOVE)
        if self.p2_mode == "complement":
            return self.decisions(counts, label, samples)[0] == ABOVE
        p1_lower, _, _, p2_upper = self._bounds(counts, label, samples, side="certify")
        return (p1_lower > p2_upper) & (self._radius(p1_lower, p2_upper) >= self.radii[None, :])

    def _bounds(
        self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64], side: str = "both"
    ) -> tuple[Any, Any, Any, Any]:
        """The runner-up form's ``(p1_lower, p1_upper, p2_lower, p2_upper)``; with ``side="certify"`` only the first and last are computed."""
        top, runner_up, top_alpha, other_alpha = runner_up_split(counts, label, self.alpha)
        p1_lower, p1_upper = sequence_bounds(top, samples, top_alpha, "lower" if side == "certify" else "both")
        p2_lower, p2_upper = sequence_bounds(runner_up, samples, other_alpha, "upper" if side == "certify" else "both")
        p2_upper = np.minimum(p2_upper, 1.0 - p1_lower)
        return p1_lower[:, None], p1_upper[:, None], p2_lower[:, None], p2_upper[:, None]

    def _radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """The bound's radius at ``(p1, p2)`` broadcast over the radii's columns (0 where ``p1 <= p2``)."""
        p1, p2 = np.broadcast_arrays(p1, p2)
        separated = p1 > p2
        p1, p2 = np.where(separated, p1, 1.0), np.where(separated, p2, 0.0)  # the formulas never see p1 <= p2
        return np.where(separated, bound_radius(self.mechanism, self.bound, p1, p2)[0], 0.0)

    def bounds(
        self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64]
    ) -> tuple[Any, Any]:
        """``(p1_lower, p2_upper)`` of the inputs' sequences (the second ``1 - p1_lower`` in the complement form)."""
        if self.p2_mode == "complement":
            lower, _ = sequence_bounds(counts[np.arange(len(label)), label], samples, self.alpha, "lower")
            return lower, 1.0 - lower
        p1_lower, _, _, p2_upper = self._bounds(counts, label, samples, side="certify")
        return p1_lower[:, 0], p2_upper[:, 0]


def crossing_chance(successes: Any, samples: Any, budget: Any, crossing: Any) -> NDArray[np.float64]:
    """The predicted chance that ``successes`` in ``samples`` grow to at least ``crossing`` by ``budget`` samples (broadcast).

    The predictive distribution of the final count under Jeffreys' posterior
    ``Beta(s + 1/2, n - s + 1/2)`` for ``p`` (Bayesian predictive power, the futility
    rule of clinical trials: Spiegelhalter, Freedman & Blackburn 1986), in its normal
    approximation with a continuity correction: the future ``R = budget - n`` copies
    have mean ``R m`` and variance ``R m (1 - m) + R (R - 1) v``, ``m`` and ``v`` the
    posterior's mean and variance. (``scipy.stats.betabinom.sf`` is exact but sums
    the pmf term by term: 30 s for 2,000 evaluations at ``R = 90,000``.) It decides
    only when an input stops drawing for a radius, never a certificate.

    Examples
    --------
    >>> from renyicert.sequential_rule import crossing_chance
    >>> [round(float(crossing_chance(s, 1000, 100_000, 90_449)), 4) for s in (880, 900, 920)]
    [0.0075, 0.3027, 0.9613]
    """
    from scipy.special import ndtr

    s, n, k = (np.asarray(v, dtype=np.float64) for v in (successes, samples, crossing))
    remaining = np.asarray(budget, dtype=np.float64) - n
    mean = (s + 0.5) / (n + 1.0)
    variance = mean * (1.0 - mean) / (n + 2.0)
    spread = np.sqrt(remaining * mean * (1.0 - mean) + remaining * np.maximum(remaining - 1.0, 0.0) * variance)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s + remaining * mean - k + 0.5) / spread
    return np.where(remaining > 0, ndtr(z), (s >= k).astype(np.float64))


def decision_rule(
    mechanism: Mechanism, radii: Any, bound: str, p2_mode: str, alpha: float, classes: int, test: str = "ordered"
) -> DecisionRule:
    """The :class:`DecisionRule` for these radii, every argument checked (a ``ValueError`` names the bad one).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.sequential_rule import decision_rule
    >>> rule = decision_rule(renyicert.get_mechanism("gaussian", scale=1.0), [0.0, 1.0], "tight", "complement", 0.001, 10)
    >>> rule.thresholds.round(6).tolist()
    [0.5, 0.841345]
    """
    require_offered(mechanism, check_bound(bound, ("renyi", "tight")))
    if p2_mode not in P2_MODES:
        raise ValueError(f"p2_mode must be one of {P2_MODES}, got {p2_mode!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    thresholds = radius_thresholds(mechanism, radii, bound)
    values = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    return DecisionRule(
        mechanism=mechanism,
        bound=bound,
        p2_mode=p2_mode,
        radii=values,
        thresholds=thresholds,
        alpha=alpha,
        classes=classes,
        test=test,
    )


def in_order(crossed: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The radii fixed-sequence testing certifies: each whose test crossed, as long as every smaller radius's did (per row)."""
    return np.cumprod(crossed, axis=1).astype(bool)
