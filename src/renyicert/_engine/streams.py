"""Inputs coming and going: many inputs' streams of noisy copies, counted to each one's next stop, in full model batches.

Sequential certification (:mod:`renyicert.sequential`) looks at an input's
counts at fixed copy numbers (its *points*) and stops it once its answers are
decided. :func:`run_streams` is the row scheduler under it: it gives every
open stream the copies up to its next point, fills the rest of the last model
batch with copies further along the open streams (votes banked until their
point comes, lost only if the stream stops first), asks the owner to decide
the streams that reached a point, and replaces streams that stop with new ones
from the source, so the model runs full batches while inputs come and go.
With counter-based noise, copy ``k`` of a stream is the same in any batch, so
what an owner sees of a stream depends only on that stream's own noise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .engine import SEGMENT_ROWS, VoteEngine

__all__ = ["Stream", "run_streams"]


@dataclass
class Stream:
    """One input's stream of noisy copies: its counts so far and the copy numbers where its owner looks at them.

    Attributes
    ----------
    tag
        The owner's name for the input (handed back untouched).
    x
        The input, shape ``(1, *input_shape)``.
    key
        Its noise key: copy ``k`` of the stream is noise number ``k`` of this key.
    points
        Increasing absolute copy numbers where the owner looks; the last is where the stream ends.
    classes
        Columns of the counts.
    """

    tag: Any
    x: Any
    key: int
    points: NDArray[np.int64]
    classes: int
    drawn: int = 0
    next_point: int = 0
    counts: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    done: bool = False

    def __post_init__(self) -> None:
        self.counts = np.zeros(self.classes, dtype=np.int64)

    @property
    def end(self) -> int:
        """The copy number where the stream ends whatever its counts (its last point)."""
        return int(self.points[-1])

    def add(self, votes: NDArray[np.int64], stop: int) -> bool:
        """Add the votes of copies ``drawn ... stop - 1``; whether the owner decides now (``stop`` is a point it looks at)."""
        self.counts += votes
        self.drawn = stop
        if stop != self.points[self.next_point]:
            return False
        self.next_point += 1
        return self.reached_point()

    def reached_point(self) -> bool:
        """Called at each point: whether the owner's ``decide`` looks at this stream now (a subclass may act here instead)."""
        return True


def run_streams(
    engine: VoteEngine,
    source: Iterable[Stream],
    decide: Callable[[list[Stream]], None],
    *,
    batch_size: int | str,
    streams_at_once: int,
) -> Iterator[list[Stream]]:
    """Count the streams ``source`` yields, at most ``streams_at_once`` open at a time; yield each round's stopped streams.

    ``decide(streams)`` gets the streams that reached a point, all at their
    ``k``-th point of the round together, and sets ``done`` on those that stop.
    A stream that arrives ``done`` is handed back at once, without a copy drawn.
    """
    source = iter(source)
    pool: list[Stream] = []
    exhausted = False
    rows_per_batch: int | None = None
    while True:
        arrived_done: list[Stream] = []
        while not exhausted and len(pool) < streams_at_once:
            stream = next(source, None)
            if stream is None:
                exhausted = True
            elif stream.done:
                arrived_done.append(stream)
            else:
                pool.append(stream)
        if arrived_done:
            yield arrived_done
        if not pool:  # the source is exhausted
            return
        if rows_per_batch is None:
            with engine.evaluation():
                rows_per_batch = engine.batch_size(batch_size, pool[0].x)
        _run_round(engine, pool, rows_per_batch, decide)
        stopped = [s for s in pool if s.done]
        pool[:] = [s for s in pool if not s.done]
        if stopped:
            yield stopped


def _rows_of_round(pool: list[Stream], rows_per_batch: int) -> tuple[list[Stream], list[int], list[int], list[int]]:
    """The streams of one round and their parts ``(chosen, part's stream, part's first copy, part's end)``.

    Every chosen stream gets the copies up to its next point (as many streams as fit
    in one call's rows), the last batch is filled with copies further along their
    streams, evenly, never past their ends, and each stream's rows are split into
    parts at its points: one voter (counts row) per part.
    """
    needed, chosen, total = [], [], 0
    for stream in pool:
        need = int(stream.points[stream.next_point]) - stream.drawn
        if chosen and total + need > SEGMENT_ROWS:
            break
        chosen.append(stream)
        needed.append(need)
        total += need
    spare = -total % rows_per_batch
    extra = [0] * len(chosen)
    room = [stream.end - stream.drawn - need for stream, need in zip(chosen, needed)]
    while spare > 0 and any(room):
        share = max(spare // max(sum(1 for r in room if r > 0), 1), 1)
        for i in range(len(chosen)):
            give = min(share, room[i], spare)
            extra[i] += give
            room[i] -= give
            spare -= give
            if spare == 0:
                break
    part_stream, part_start, part_stop = [], [], []
    for i, stream in enumerate(chosen):
        start, stop = stream.drawn, stream.drawn + needed[i] + extra[i]
        cuts = stream.points[(stream.points > start) & (stream.points < stop)].tolist()
        for a, b in zip([start, *cuts], [*cuts, stop]):
            part_stream.append(i)
            part_start.append(a)
            part_stop.append(b)
    return chosen, part_stream, part_start, part_stop


def _run_round(
    engine: VoteEngine, pool: list[Stream], rows_per_batch: int, decide: Callable[[list[Stream]], None]
) -> None:
    """Draw every pool stream's copies up to its next point (and more, to fill the last batch), count, decide."""
    import torch

    chosen, part_stream, part_start, part_stop = _rows_of_round(pool, rows_per_batch)
    lengths = np.array(part_stop, dtype=np.int64) - np.array(part_start, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    row_input = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    row_sample = (
        np.arange(int(lengths.sum()), dtype=np.int64)
        - offsets
        + np.repeat(np.array(part_start, dtype=np.int64), lengths)
    )
    device = chosen[0].x.device
    x = torch.cat([chosen[i].x for i in part_stream])
    keys = torch.tensor([chosen[i].key for i in part_stream], dtype=torch.int64, device=device)
    counts = engine.count_rows(
        x,
        keys,
        torch.from_numpy(row_input).to(device),
        torch.from_numpy(row_sample).to(device),
        batch_size=rows_per_batch,
    )
    # Add each stream's parts in order, deciding at its points: all streams at their k-th point of the round together.
    parts_of: list[list[int]] = [[] for _ in chosen]
    for part, i in enumerate(part_stream):
        parts_of[i].append(part)
    position = [0] * len(chosen)
    while True:
        pending = []
        for i, stream in enumerate(chosen):
            while not stream.done and position[i] < len(parts_of[i]):
                part = parts_of[i][position[i]]
                position[i] += 1
                if stream.add(counts[part], part_stop[part]):
                    pending.append(stream)
                    break
        if not pending:
            return
        decide(pending)
