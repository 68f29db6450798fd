"""Sequential certification: is the smoothed prediction certified at radius r? Answered with as few samples as the answer needs.

For each input, Cohen et al.'s selection picks a candidate class ``c`` from
``n0`` noisy copies; fresh copies then stream in, and a confidence sequence
(:mod:`renyicert.confidence_sequence`) bounds ``p_c`` at every time at once.
Radius ``r`` is certified as soon as the sequence's lower end passes the
threshold ``t(r)`` of :func:`renyicert.solver.probability_threshold` (the
smallest ``p1`` whose radius with ``p2 = 1 - p1`` reaches ``r``), and refused as
soon as its upper end falls below it; an input stops when its interval holds
none of the thresholds, or at the budget (its open radii are *undecided*,
reported as not certified and counted apart). An optional extended budget lets
an input go on past the budget for the open radii that the sequence would
decide by the extended budget if the estimate were the truth (these are the
inputs fixed-n certification at the budget would most likely certify, where an
anytime-valid sequence is wider). A radius that could not be
certified by the budget even if every remaining copy voted for ``c`` is
undecided at once, and costs no more copies.

**Guarantee.** For each input, the probability that *any* of its "certified at
r" answers is wrong is at most ``alpha``, whatever the stopping: a wrong answer
at radius ``r`` needs ``p_c <= t(r)`` below the sequence's lower end at some
time, and the sequence misses ``p_c`` at some time with probability at most
``alpha`` (Ville's inequality for the mixture martingale; Robbins 1970,
Howard et al. 2021, Waudby-Smith & Ramdas 2023). The selection uses other
copies than the sequence, so it only decides which class is tested. Every
radius is decided from the same sequence: no ``alpha`` is split between them.

**Schedule.** The sequence is evaluated at fixed sample counts per input (the
:func:`decision_points`: every 16 estimation samples at first, then every
twentieth of those drawn so far), so an input's answers depend only on its own
noise, never on which inputs share its batches: with counter-based noise, copy
``k`` of an input is the same in any batch. The scheduler gives every
undecided input the copies up to its next decision point, fills the rest of
the last model batch with copies further along the undecided inputs' streams
(votes banked until their point comes, lost only if the input stops first),
and replaces inputs that stop with new ones from the source, so the model runs
full batches while inputs come and go.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._engine.engine import SEGMENT_ROWS, VoteEngine
from .confidence import P2_MODES
from .confidence_sequence import ABOVE, BELOW, UNDECIDED, one_sided_crossing_counts, one_sided_decisions, sequence_bounds, threshold_decisions
from .lattice import failure_adjusted
from .mechanism import Mechanism
from .solver import certified_radius, probability_threshold, tight_radius

#: A threshold the budget cannot decide any more (reported as undecided; the input stops drawing for it).
OUT_OF_BUDGET = 2

__all__ = ["FIRST_BLOCK", "TESTS", "DecisionRule", "SequentialCertificate", "certify_stream", "check_extended_budget", "crossing_chance", "decision_points", "decision_rule", "radius_thresholds"]

#: The tests a radius can be decided by (see :class:`DecisionRule`).
TESTS = ("ordered", "two-sided")
#: Estimation samples before the first decision, and the smallest step between two decisions.
FIRST_BLOCK = 16
#: The step between decisions is the samples drawn so far over this (a twentieth): at most 5% more samples than stopping at once.
GROWTH_DIVISOR = 20
#: The ordered rule's futility level: a radius stops drawing (undecided) once the chance that its test crosses by the
#: budget, predicted from the counts so far (:func:`crossing_chance`), is below this. A stopping rule: it spends no alpha.
#: 1e-4, not 1e-3: the prediction is made again at every decision point, so a stream that starts unluckily (14 of 48
#: copies for p = 0.509) dips below 1e-3 once and is lost; at 1e-4 the demo's models lose no input the union bound keeps.
FUTILITY = 1e-4


def decision_points(budget: int, extended_budget: int | None = None) -> NDArray[np.int64]:
    """The estimation sample counts at which the sequence is evaluated: 16, 32, ..., then steps of a twentieth, through ``budget``, ending at ``extended_budget``.

    Examples
    --------
    >>> from renyicert.sequential import decision_points
    >>> decision_points(500).tolist()
    [16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 272, 288, 304, 320, 336, 352, 369, 387, 406, 426, 447, 469, 492, 500]
    >>> decision_points(500, 600).tolist()[-5:]
    [500, 525, 551, 578, 600]
    """
    points = [min(FIRST_BLOCK, budget)]
    for end in (budget, budget if extended_budget is None else max(budget, extended_budget)):
        while points[-1] < end:
            points.append(min(end, points[-1] + max(FIRST_BLOCK, points[-1] // GROWTH_DIVISOR)))
    return np.array(points, dtype=np.int64)


def check_extended_budget(extended_budget: Any, budget: int) -> int | None:
    """``extended_budget`` checked: ``None``, or an integer ``>= budget``.

    Examples
    --------
    >>> from renyicert.sequential import check_extended_budget
    >>> check_extended_budget(50, 100)
    Traceback (most recent call last):
    ...
    ValueError: extended_budget must be an integer >= budget (100), or None; got 50
    """
    if extended_budget is None:
        return None
    if isinstance(extended_budget, bool) or not isinstance(extended_budget, (int, np.integer)) or extended_budget < budget:
        raise ValueError(f"extended_budget must be an integer >= budget ({budget}), or None; got {extended_budget!r}")
    return int(extended_budget)


def radius_thresholds(mechanism: Mechanism, radii: Any, bound: str) -> NDArray[np.float64]:
    """The probability threshold of each radius (:func:`~renyicert.solver.probability_threshold`), checked: radii finite, ``>= 0`` and increasing.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.sequential import radius_thresholds
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
class SequentialCertificate:
    """The answer of :meth:`renyicert.Smoothed.certify_at` for one input.

    Attributes
    ----------
    label
        The candidate class, selected from the ``n0`` selection copies.
    radii
        The radii asked about, increasing.
    certified
        Per radius: the smoothed classifier predicts ``label`` and no perturbation
        within the radius changes that (jointly over the radii, with probability
        at least ``1 - alpha``).
    undecided
        Per radius: the budget ran out before the confidence sequence left the
        radius's threshold (counted as not certified).
    samples
        Estimation copies drawn for this input (the ``n0`` selection copies apart).
    successes
        Votes for ``label`` among them.
    p1_lower, p2_upper
        The sequences' bounds on ``p_label`` and on the runner-up when the input stopped (``p2_upper = 1 - p1_lower``
        in the complement form, where ``p1_lower`` is also intersected with the thresholds decided earlier).
    thresholds
        The probability threshold of each radius.
    n0
        Selection copies.
    counts
        Class counts of the estimation copies (in lattice mode, of those whose noise draw did not fail).
    failed
        Lattice mode: estimation copies whose noise draw failed (counted against the label, see :func:`renyicert.lattice.failure_adjusted`).
    """

    label: int
    radii: tuple[float, ...]
    certified: tuple[bool, ...]
    undecided: tuple[bool, ...]
    samples: int
    successes: int
    p1_lower: float
    p2_upper: float
    thresholds: tuple[float, ...]
    n0: int
    counts: tuple[int, ...] = ()
    failed: int = 0

    @property
    def forward_passes(self) -> int:
        """Noisy copies the model classified for this input: ``n0 + samples``."""
        return self.n0 + self.samples

    @property
    def radius(self) -> float:
        """The largest radius asked about that is certified (``-inf`` when none is, not even 0)."""
        return max((r for r, c in zip(self.radii, self.certified) if c), default=-math.inf)


@dataclass
class _InputState:
    """One input's progress: its stream's counts and its decisions so far."""

    tag: Any
    x: Any
    key: int
    points: NDArray[np.int64]  # absolute copy numbers of the selection's end and of every decision point
    budget_end: int  # the copy number where an input whose estimate is below every open threshold stops
    classes: int  # columns of the counts: the classes, and in lattice mode one more, the failed copies
    thresholds: NDArray[np.float64]
    lattice: bool = False
    drawn: int = 0
    next_point: int = 0
    label: int = -1
    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    decisions: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    crossed: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))  # the ordered rule's crossings so far
    done: bool = False

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.classes, dtype=np.int64)
        # A threshold of 1 (a radius no p1 < 1 reaches) is refused at once: no finite sample certifies it.
        self.decisions = np.where(self.thresholds >= 1.0, BELOW, UNDECIDED).astype(np.int8)
        self.crossed = np.zeros(len(self.thresholds), dtype=bool)

    @property
    def end(self) -> int:
        return int(self.points[-1])

    def add(self, votes: NDArray[np.int64], stop: int, n0: int) -> bool:
        """Add the votes of copies ``drawn ... stop - 1``; whether ``stop`` is a decision point of the estimation (then :func:`_decide`)."""
        self.counts += votes
        self.drawn = stop
        if stop != self.points[self.next_point]:
            return False
        self.next_point += 1
        if stop == n0:  # the selection's end: pick the candidate (from the classes' columns), start the estimation counts afresh
            self.label = int(np.argmax(self.counts[: self.classes - 1] if self.lattice else self.counts))
            self.counts = np.zeros(self.classes, dtype=np.int64)
            return False
        return True


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

    def decisions(self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64], budget: Any = None) -> tuple[NDArray[np.int8], Any]:
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
            reachable = None if best is None else threshold_decisions(best[rows, label][:, None], budget[:, None], self.thresholds[None, :], self.alpha) == ABOVE
            return decided, reachable
        p1_lower, p1_upper, p2_lower, p2_upper = self._bounds(counts, label, samples)
        favourable = np.minimum(p2_lower, 1.0 - p1_upper)  # the most favourable corner the sequences allow
        pairs = [(p1_lower, p2_upper), (p1_upper, favourable)]
        if best is not None:
            best_lower, _, _, best_upper = self._bounds(best, label, budget, side="certify")
            pairs.append((best_lower, best_upper))
        # One solver call for every pair (the solver's cost is mostly per call).
        radius = self._radius(np.concatenate([p for p, _ in pairs]), np.concatenate([q for _, q in pairs])).reshape(len(pairs), len(label), 1)
        certified = (p1_lower > p2_upper) & (radius[0] >= self.radii[None, :])
        refused = ~(p1_upper > p2_lower) | (radius[1] < self.radii[None, :])
        decided = np.where(certified, ABOVE, np.where(refused, BELOW, UNDECIDED)).astype(np.int8)
        reachable = None if best is None else (pairs[2][0] > pairs[2][1]) & (radius[2] >= self.radii[None, :])
        return decided, reachable

    def certifiable(self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64]) -> NDArray[np.bool_]:
        """Whether these counts would certify each radius."""
        if self.ordered:
            return _in_order(self.decisions(counts, label, samples)[0] == ABOVE)
        if self.p2_mode == "complement":
            return self.decisions(counts, label, samples)[0] == ABOVE
        p1_lower, _, _, p2_upper = self._bounds(counts, label, samples, side="certify")
        return (p1_lower > p2_upper) & (self._radius(p1_lower, p2_upper) >= self.radii[None, :])

    def _bounds(self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64], side: str = "both") -> tuple[Any, Any, Any, Any]:
        """The runner-up form's ``(p1_lower, p1_upper, p2_lower, p2_upper)``; with ``side="certify"`` only the first and last are computed."""
        rows = np.arange(len(label))
        top = counts[rows, label]
        others = counts.copy()
        others[rows, label] = -1
        runner_up = np.maximum(others.max(axis=1), 0) if self.classes > 1 else np.zeros_like(top)
        p1_lower, p1_upper = sequence_bounds(top, samples, self.alpha / 2, "lower" if side == "certify" else "both")
        p2_lower, p2_upper = sequence_bounds(runner_up, samples, self.alpha / (2 * max(self.classes - 1, 1)), "upper" if side == "certify" else "both")
        p2_upper = np.minimum(p2_upper, 1.0 - p1_lower)
        return p1_lower[:, None], p1_upper[:, None], p2_lower[:, None], p2_upper[:, None]

    def _radius(self, p1: NDArray[np.float64], p2: NDArray[np.float64]) -> NDArray[np.float64]:
        """The bound's radius at ``(p1, p2)`` broadcast over the radii's columns (0 where ``p1 <= p2``)."""
        p1, p2 = np.broadcast_arrays(p1, p2)
        separated = p1 > p2
        p1, p2 = np.where(separated, p1, 1.0), np.where(separated, p2, 0.0)  # the formulas never see p1 <= p2
        if self.bound == "renyi":
            radius = np.asarray(certified_radius(self.mechanism, p1, p2)[0], dtype=np.float64)
        else:
            radius = np.asarray(tight_radius(self.mechanism, p1, p2), dtype=np.float64)
        return np.where(separated, radius, 0.0)

    def bounds(self, counts: NDArray[np.int64], label: NDArray[np.int64], samples: NDArray[np.int64]) -> tuple[Any, Any]:
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
    >>> from renyicert.sequential import crossing_chance
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


def decision_rule(mechanism: Mechanism, radii: Any, bound: str, p2_mode: str, alpha: float, classes: int, test: str = "ordered") -> DecisionRule:
    """The :class:`DecisionRule` for these radii, every argument checked (a ``ValueError`` names the bad one).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.sequential import decision_rule
    >>> rule = decision_rule(renyicert.get_mechanism("gaussian", scale=1.0), [0.0, 1.0], "tight", "complement", 0.001, 10)
    >>> rule.thresholds.round(6).tolist()
    [0.5, 0.841345]
    """
    if bound not in ("renyi", "tight"):
        raise ValueError(f"bound must be 'renyi' or 'tight', got {bound!r}")
    if bound == "tight" and not mechanism.has_tight_radius:
        raise ValueError(f"bound='tight' needs a tight certificate, which {mechanism.label} does not provide")
    if p2_mode not in P2_MODES:
        raise ValueError(f"p2_mode must be one of {P2_MODES}, got {p2_mode!r}")
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    thresholds = radius_thresholds(mechanism, radii, bound)
    values = np.atleast_1d(np.asarray(radii, dtype=np.float64))
    return DecisionRule(mechanism=mechanism, bound=bound, p2_mode=p2_mode, radii=values, thresholds=thresholds, alpha=alpha, classes=classes, test=test)


def _bound_counts(states: list[_InputState], label: NDArray[np.int64]) -> NDArray[np.int64]:
    """The states' estimation counts the sequences see: in lattice mode the failed copies counted for every class but the label."""
    counts = np.stack([state.counts for state in states])
    if not states[0].lattice:
        return counts
    return failure_adjusted(counts[:, :-1], label, counts[:, -1])


def _in_order(crossed: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The radii fixed-sequence testing certifies: each whose test crossed, as long as every smaller radius's did (per row)."""
    return np.cumprod(crossed, axis=1).astype(bool)


def _decide(states: list[_InputState], rule: DecisionRule, n0: int) -> None:
    """Decide the open radii of inputs at a decision point, all at once (one vectorised evaluation of the sequences)."""
    label = np.array([state.label for state in states], dtype=np.int64)
    counts = _bound_counts(states, label)
    samples = np.array([state.drawn - n0 for state in states], dtype=np.int64)
    budget = np.array([state.end - n0 for state in states], dtype=np.int64)
    decisions = np.stack([state.decisions for state in states])
    decided, reachable = rule.decisions(counts, label, samples, budget)
    if rule.ordered:
        # Fixed-sequence testing: radius k is certified once its test has crossed (now or at an earlier point) and
        # every smaller radius is certified; a crossing out of order waits (it is kept in `crossed`).
        crossed = np.stack([state.crossed for state in states]) | (decided == ABOVE)
        for k, state in enumerate(states):
            state.crossed = crossed[k]
        decided = np.where(_in_order(crossed), ABOVE, np.where(decided == ABOVE, UNDECIDED, decided)).astype(np.int8)
    decisions = np.where(decisions == UNDECIDED, decided, decisions)
    # A radius that even a vote for the candidate on every remaining copy would not certify by the budget stays undecided,
    # and stops drawing (for the threshold form, the wealth along that path falls then rises, so the end is its best chance).
    decisions = np.where((decisions == UNDECIDED) & ~reachable, OUT_OF_BUDGET, decisions)
    if rule.ordered:  # a radius above one that will not be certified cannot be either: stop drawing for it
        for stopped in (BELOW, OUT_OF_BUDGET):
            decisions = np.where((np.cumsum(decisions == stopped, axis=1) > 0) & (decisions == UNDECIDED), stopped, decisions)
    # At the budget, the extension goes on only for the radii the sequences would certify by its end if the estimates
    # were the truth: the others stop.
    at_budget = np.array([state.drawn == state.budget_end < state.end for state in states])
    if at_budget.any() and (decisions[at_budget] == UNDECIDED).any():
        projected = np.rint(counts / np.maximum(samples, 1)[:, None] * budget[:, None]).astype(np.int64)
        promising = rule.certifiable(projected, label, budget)
        decisions = np.where(at_budget[:, None] & (decisions == UNDECIDED) & ~promising, OUT_OF_BUDGET, decisions)
    for k, state in enumerate(states):
        state.decisions = decisions[k].astype(np.int8)
        state.done = state.drawn == state.end or not (state.decisions == UNDECIDED).any()


def _certificates(states: list[_InputState], rule: DecisionRule, n0: int) -> list[SequentialCertificate]:
    """The certificates of stopped inputs, their sequences' bounds computed together."""
    samples = np.array([max(state.drawn - n0, 0) for state in states], dtype=np.int64)
    selected = np.array([max(state.label, 0) for state in states], dtype=np.int64)
    counts = _bound_counts(states, selected)
    lowers, uppers = rule.bounds(counts, selected, samples)
    radii = tuple(float(r) for r in rule.radii)
    certificates = []
    for k, state in enumerate(states):
        above = state.decisions == ABOVE
        lower, upper = float(lowers[k]), float(uppers[k])
        if rule.p2_mode == "complement" and not rule.ordered:
            # The decisions were made at earlier points; the intervals there held too (the same event), so intersect.
            lower = max([lower, *state.thresholds[above].tolist()])
            upper = 1.0 - lower
        certificates.append(SequentialCertificate(
            label=state.label, radii=radii, certified=tuple(bool(a) for a in above),
            undecided=tuple(bool(d in (UNDECIDED, OUT_OF_BUDGET)) for d in state.decisions), samples=int(samples[k]),
            successes=int(state.counts[state.label]) if state.label >= 0 else 0, p1_lower=lower, p2_upper=upper,
            thresholds=tuple(state.thresholds.tolist()), n0=n0, counts=tuple(int(c) for c in (state.counts[:-1] if state.lattice else state.counts)),
            failed=int(state.counts[-1]) if state.lattice else 0,
        ))  # fmt: skip
    return certificates


def certify_stream(
    engine: VoteEngine,
    source: Iterable[tuple[Any, Any, int]],
    rule: DecisionRule,
    *,
    budget: int,
    extended_budget: int | None = None,
    n0: int,
    batch_size: int | str,
    inputs_at_once: int,
    bar: Any = None,
) -> Iterator[tuple[Any, SequentialCertificate]]:
    """Certify the inputs ``source`` yields (``(tag, x of shape (1, *input_shape), key)``), yielding ``(tag, certificate)`` as each input stops.

    At most ``inputs_at_once`` inputs are undecided at a time; an input that
    stops makes room for the next.  The certificates do not depend on
    ``batch_size``, ``inputs_at_once`` or the order of the source (see the module).
    """
    points = np.concatenate([[n0], n0 + decision_points(budget, extended_budget)]).astype(np.int64)
    source = iter(source)
    pool: list[_InputState] = []
    exhausted = False
    rows_per_batch: int | None = None
    while True:
        while not exhausted and len(pool) < inputs_at_once:
            try:
                tag, x, key = next(source)
            except StopIteration:
                exhausted = True
                break
            lattice = engine.lattice is not None
            state = _InputState(
                tag=tag, x=x, key=int(key), points=points, budget_end=n0 + budget, classes=engine.num_classes + int(lattice), thresholds=rule.thresholds, lattice=lattice
            )
            if (state.decisions != UNDECIDED).all():  # every radius unreachable: nothing to draw
                state.done = True
                yield tag, _certificates([state], rule, n0)[0]
                if bar is not None:
                    bar.update(1)
                continue
            pool.append(state)
        if not pool:
            return
        if rows_per_batch is None:
            with engine.evaluation():
                rows_per_batch = engine.batch_size(batch_size, pool[0].x)
        _run_round(engine, pool, rows_per_batch, n0, rule)
        stopped = [s for s in pool if s.done]
        pool[:] = [s for s in pool if not s.done]
        for state, certificate in zip(stopped, _certificates(stopped, rule, n0) if stopped else []):
            yield state.tag, certificate
            if bar is not None:
                bar.update(1)


def _run_round(engine: VoteEngine, pool: list[_InputState], rows_per_batch: int, n0: int, rule: DecisionRule) -> None:
    """Draw every pool input's copies up to its next decision point (and more, to fill the last batch), count, decide."""
    import torch

    # The copies each input must have before its next decision; as many inputs as fit in one call's rows.
    needed, chosen, total = [], [], 0
    for state in pool:
        need = int(state.points[state.next_point]) - state.drawn
        if chosen and total + need > SEGMENT_ROWS:
            break
        chosen.append(state)
        needed.append(need)
        total += need
    # Fill the last batch with copies further along the chosen inputs' streams, evenly, never past their budget.
    spare = -total % rows_per_batch
    extra = [0] * len(chosen)
    room = [state.end - state.drawn - need for state, need in zip(chosen, needed)]
    while spare > 0 and any(room):
        share = max(spare // max(sum(1 for r in room if r > 0), 1), 1)
        for i in range(len(chosen)):
            give = min(share, room[i], spare)
            extra[i] += give
            room[i] -= give
            spare -= give
            if spare == 0:
                break
    # Each input's rows split into parts at its decision points: one voter (counts row) per part.
    part_state, part_start, part_stop = [], [], []
    for i, state in enumerate(chosen):
        start, stop = state.drawn, state.drawn + needed[i] + extra[i]
        cuts = state.points[(state.points > start) & (state.points < stop)].tolist()
        for a, b in zip([start, *cuts], [*cuts, stop]):
            part_state.append(i)
            part_start.append(a)
            part_stop.append(b)
    lengths = np.array(part_stop, dtype=np.int64) - np.array(part_start, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    row_input = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    row_sample = np.arange(int(lengths.sum()), dtype=np.int64) - offsets + np.repeat(np.array(part_start, dtype=np.int64), lengths)
    device = chosen[0].x.device
    x = torch.cat([chosen[i].x for i in part_state])
    keys = torch.tensor([chosen[i].key for i in part_state], dtype=torch.int64, device=device)
    counts = engine.count_rows(
        x, keys, torch.from_numpy(row_input).to(device), torch.from_numpy(row_sample).to(device), batch_size=rows_per_batch
    )
    # Add each input's parts in order, deciding at its decision points: all inputs at their k-th point of the round together.
    parts_of: list[list[int]] = [[] for _ in chosen]
    for part, i in enumerate(part_state):
        parts_of[i].append(part)
    position = [0] * len(chosen)
    while True:
        pending = []
        for i, state in enumerate(chosen):
            while not state.done and position[i] < len(parts_of[i]):
                part = parts_of[i][position[i]]
                position[i] += 1
                if state.add(counts[part], part_stop[part], n0):
                    pending.append(state)
                    break
        if not pending:
            return
        _decide(pending, rule, n0)
