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
from .confidence_sequence import ABOVE, BELOW, UNDECIDED, sequence_bounds, threshold_decisions
from .mechanism import Mechanism
from .solver import probability_threshold

#: A threshold the budget cannot decide any more (reported as undecided; the input stops drawing for it).
OUT_OF_BUDGET = 2

__all__ = ["FIRST_BLOCK", "SequentialCertificate", "certify_stream", "check_extended_budget", "decision_points", "radius_thresholds"]

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
    p1_lower, p1_upper
        The confidence sequence for ``p_label`` when the input stopped (intersected with what the decisions showed).
    thresholds
        The probability threshold of each radius.
    n0
        Selection copies.
    """

    label: int
    radii: tuple[float, ...]
    certified: tuple[bool, ...]
    undecided: tuple[bool, ...]
    samples: int
    successes: int
    p1_lower: float
    p1_upper: float
    thresholds: tuple[float, ...]
    n0: int

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
    classes: int
    thresholds: NDArray[np.float64]
    drawn: int = 0
    next_point: int = 0
    label: int = -1
    selection: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    decisions: NDArray[np.int8] = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    done: bool = False

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.classes, dtype=np.int64)
        # A threshold of 1 (a radius no p1 < 1 reaches) is refused at once: no finite sample certifies it.
        self.decisions = np.where(self.thresholds >= 1.0, BELOW, UNDECIDED).astype(np.int8)

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
        if stop == n0:  # the selection's end: pick the candidate, start the estimation counts afresh
            self.selection = self.counts.copy()
            self.label = int(np.argmax(self.selection))
            self.counts = np.zeros(self.classes, dtype=np.int64)
            return False
        return True


def _decide(states: list[_InputState], thresholds: NDArray[np.float64], n0: int, alpha: float) -> None:
    """Decide the open radii of inputs at a decision point, all at once (one vectorised evaluation of the sequence)."""
    successes = np.array([int(state.counts[state.label]) for state in states], dtype=np.int64)[:, None]
    samples = np.array([state.drawn - n0 for state in states], dtype=np.int64)[:, None]
    budget = np.array([state.end - n0 for state in states], dtype=np.int64)[:, None]
    decisions = np.stack([state.decisions for state in states])
    open_ = decisions == UNDECIDED
    decisions = np.where(open_, threshold_decisions(successes, samples, thresholds[None, :], alpha), decisions)
    # A threshold that even a success on every remaining sample would not pass by the budget stays undecided, and stops
    # drawing: along that path the wealth falls then rises, so the budget's end is its best chance.
    still = decisions == UNDECIDED
    unreachable = threshold_decisions(successes + budget - samples, budget, thresholds[None, :], alpha) != ABOVE
    decisions = np.where(still & unreachable, OUT_OF_BUDGET, decisions)
    # At the budget, the extension goes on only for the thresholds the sequence would pass by its end if the estimate
    # were the truth (the estimate is above them by more than the sequence's half-width there): the others stop.
    at_budget = np.array([state.drawn == state.budget_end < state.end for state in states])[:, None]
    if at_budget.any():
        projected = np.rint(successes / np.maximum(samples, 1) * budget).astype(np.int64)
        promising = threshold_decisions(projected, budget, thresholds[None, :], alpha) == ABOVE
        decisions = np.where(at_budget & (decisions == UNDECIDED) & ~promising, OUT_OF_BUDGET, decisions)
    for k, state in enumerate(states):
        state.decisions = decisions[k].astype(np.int8)
        state.done = state.drawn == state.end or not (state.decisions == UNDECIDED).any()


def _certificates(states: list[_InputState], radii: tuple[float, ...], n0: int, alpha: float) -> list[SequentialCertificate]:
    """The certificates of stopped inputs, their confidence sequences' bounds computed together."""
    samples = np.array([max(state.drawn - n0, 0) for state in states], dtype=np.int64)
    successes = np.array([int(state.counts[state.label]) if state.label >= 0 else 0 for state in states], dtype=np.int64)
    lowers, uppers = sequence_bounds(successes, samples, alpha)
    certificates = []
    for k, state in enumerate(states):
        above, below = state.decisions == ABOVE, state.decisions == BELOW
        # The decisions were made at earlier points; the intervals there held too (the same event), so intersect.
        lower = max([float(lowers[k]), *state.thresholds[above].tolist()])
        upper = min([float(uppers[k]), *state.thresholds[below].tolist()])
        certificates.append(SequentialCertificate(
            label=state.label, radii=radii, certified=tuple(bool(a) for a in above),
            undecided=tuple(bool(d in (UNDECIDED, OUT_OF_BUDGET)) for d in state.decisions), samples=int(samples[k]),
            successes=int(successes[k]), p1_lower=lower, p1_upper=upper, thresholds=tuple(state.thresholds.tolist()), n0=n0,
        ))  # fmt: skip
    return certificates


def certify_stream(
    engine: VoteEngine,
    source: Iterable[tuple[Any, Any, int]],
    thresholds: NDArray[np.float64],
    radii: tuple[float, ...],
    *,
    alpha: float,
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
            state = _InputState(tag=tag, x=x, key=int(key), points=points, budget_end=n0 + budget, classes=engine.num_classes, thresholds=thresholds)
            if (state.decisions != UNDECIDED).all():  # every radius unreachable: nothing to draw
                state.done = True
                yield tag, _certificates([state], radii, n0, alpha)[0]
                if bar is not None:
                    bar.update(1)
                continue
            pool.append(state)
        if not pool:
            return
        if rows_per_batch is None:
            with engine.evaluation():
                rows_per_batch = engine.batch_size(batch_size, pool[0].x)
        _run_round(engine, pool, rows_per_batch, n0, alpha)
        stopped = [s for s in pool if s.done]
        pool[:] = [s for s in pool if not s.done]
        for state, certificate in zip(stopped, _certificates(stopped, radii, n0, alpha) if stopped else []):
            yield state.tag, certificate
            if bar is not None:
                bar.update(1)


def _run_round(engine: VoteEngine, pool: list[_InputState], rows_per_batch: int, n0: int, alpha: float) -> None:
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
        _decide(pending, pending[0].thresholds, n0, alpha)
