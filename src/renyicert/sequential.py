"""Sequential certification: is the smoothed prediction certified at radius r? Answered with as few samples as the answer needs.

For each input, Cohen et al.'s selection picks a candidate class ``c`` from
``n0`` noisy copies; fresh copies then stream in, and a confidence sequence
(:mod:`renyicert.confidence_sequence`) bounds ``p_c`` at every time at once.
Radius ``r`` is certified as soon as the sequence's lower end passes the
threshold ``t(r)`` of :func:`renyicert.radii.probability_threshold` (the
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

from ._engine.engine import VoteEngine
from ._engine.streams import Stream, run_streams
from .confidence_sequence import ABOVE, BELOW, UNDECIDED
from .lattice import failure_adjusted
from .sequential_rule import OUT_OF_BUDGET, DecisionRule, in_order

__all__ = ["FIRST_BLOCK", "SequentialCertificate", "certify_stream", "check_extended_budget", "decision_points"]

#: Estimation samples before the first decision, and the smallest step between two decisions.
FIRST_BLOCK = 16
#: The step between decisions is the samples drawn so far over this (a twentieth): at most 5% more samples than stopping at once.
GROWTH_DIVISOR = 20


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
    if (
        isinstance(extended_budget, bool)
        or not isinstance(extended_budget, (int, np.integer))
        or extended_budget < budget
    ):
        raise ValueError(f"extended_budget must be an integer >= budget ({budget}), or None; got {extended_budget!r}")
    return int(extended_budget)


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
class _InputState(Stream):
    """One input's stream (:class:`~renyicert._engine.streams.Stream`) and its decisions so far."""

    selection_end: int = 0  # n0: the copy number where the selection ends and the estimation starts
    budget_end: int = 0  # the copy number where an input whose estimate is below every open threshold stops
    thresholds: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    lattice: bool = False  # the counts' last column is the copies whose draw failed
    label: int = -1
    decisions: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    crossed: NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, dtype=bool))  # the ordered rule's crossings

    def __post_init__(self) -> None:
        super().__post_init__()
        # A threshold of 1 (a radius no p1 < 1 reaches) is refused at once: no finite sample certifies it.
        self.decisions = np.where(self.thresholds >= 1.0, BELOW, UNDECIDED).astype(np.int8)
        self.crossed = np.zeros(len(self.thresholds), dtype=bool)
        self.done = bool((self.decisions != UNDECIDED).all())  # every radius unreachable: nothing to draw

    def reached_point(self) -> bool:
        """At the selection's end, pick the candidate and start the estimation counts afresh; at a decision point, decide."""
        if self.drawn != self.selection_end:
            return True
        self.label = int(np.argmax(self.counts[: self.classes - 1] if self.lattice else self.counts))
        self.counts = np.zeros(self.classes, dtype=np.int64)
        return False


def _bound_counts(states: list[_InputState], label: NDArray[np.int64]) -> NDArray[np.int64]:
    """The states' estimation counts the sequences see: in lattice mode the failed copies counted for every class but the label."""
    counts = np.stack([state.counts for state in states])
    if not states[0].lattice:
        return counts
    return failure_adjusted(counts[:, :-1], label, counts[:, -1])


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
        decided = np.where(in_order(crossed), ABOVE, np.where(decided == ABOVE, UNDECIDED, decided)).astype(np.int8)
    decisions = np.where(decisions == UNDECIDED, decided, decisions)
    # A radius that even a vote for the candidate on every remaining copy would not certify by the budget stays undecided,
    # and stops drawing (for the threshold form, the wealth along that path falls then rises, so the end is its best chance).
    decisions = np.where((decisions == UNDECIDED) & ~reachable, OUT_OF_BUDGET, decisions)
    if rule.ordered:  # a radius above one that will not be certified cannot be either: stop drawing for it
        for stopped in (BELOW, OUT_OF_BUDGET):
            decisions = np.where(
                (np.cumsum(decisions == stopped, axis=1) > 0) & (decisions == UNDECIDED), stopped, decisions
            )
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
        certificates.append(
            SequentialCertificate(
                label=state.label,
                radii=radii,
                certified=tuple(bool(a) for a in above),
                undecided=tuple(bool(d in (UNDECIDED, OUT_OF_BUDGET)) for d in state.decisions),
                samples=int(samples[k]),
                successes=int(state.counts[state.label]) if state.label >= 0 else 0,
                p1_lower=lower,
                p2_upper=upper,
                thresholds=tuple(state.thresholds.tolist()),
                n0=n0,
                counts=tuple(int(c) for c in (state.counts[:-1] if state.lattice else state.counts)),
                failed=int(state.counts[-1]) if state.lattice else 0,
            )
        )
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
) -> Iterator[tuple[Any, SequentialCertificate]]:
    """Certify the inputs ``source`` yields (``(tag, x of shape (1, *input_shape), key)``), yielding ``(tag, certificate)`` as each input stops.

    At most ``inputs_at_once`` inputs are undecided at a time; an input that
    stops makes room for the next (the engine's row scheduler,
    :func:`~renyicert._engine.streams.run_streams`).  The certificates do not
    depend on ``batch_size``, ``inputs_at_once`` or the order of the source.
    """
    points = np.concatenate([[n0], n0 + decision_points(budget, extended_budget)]).astype(np.int64)
    lattice = engine.lattice is not None
    states = (
        _InputState(
            tag=tag,
            x=x,
            key=int(key),
            points=points,
            classes=engine.num_classes + int(lattice),
            selection_end=n0,
            budget_end=n0 + budget,
            thresholds=rule.thresholds,
            lattice=lattice,
        )
        for tag, x, key in source
    )

    def decide(pending: list[Stream]) -> None:
        _decide(pending, rule, n0)  # type: ignore[arg-type]

    for stopped in run_streams(engine, states, decide, batch_size=batch_size, streams_at_once=inputs_at_once):
        for state, certificate in zip(stopped, _certificates(stopped, rule, n0)):  # type: ignore[arg-type]
            yield state.tag, certificate
