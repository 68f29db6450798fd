"""``batch_size="auto"``: the batch size with the least time per noisy copy, found by timing whole batch steps.

A timed step is what the engine does per batch: draw the copies, run the model
(the eager one), count the votes; a size's time is its fastest step.  The first
pass goes up from the smallest size and stops after two sizes in a row slower
than the best so far, a step over :data:`LONG_STEP` seconds or a buffer over
:data:`BUFFER_BYTES`.  Further passes time every size tried again
(:data:`PASSES` in all), so that a moment's slowdown of a shared machine during
one pass cannot decide.  A size within :data:`TIE` of the fastest ties with it,
and the largest such wins (fewer calls).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["AUTO_BATCH_SIZES", "fastest_batch_size"]

#: The batch sizes ``batch_size="auto"`` tries, smallest first.
AUTO_BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
#: No batch whose noisy copies take more memory than this is tried.
BUFFER_BYTES = 256 * 2**20
#: Sizes this close in time per copy tie, and the larger wins.
TIE = 0.02
#: Passes over the sizes (each size's fastest step counts), the least time a size is timed for in one pass,
#: and the step time beyond which no larger size is tried.
PASSES = 3
WINDOW = 0.02
LONG_STEP = 0.25


def fastest_batch_size(
    make_step: Callable[[int], Callable[[], None]], row_bytes: int, synchronize: Callable[[], None] = lambda: None
) -> int:
    """The size in :data:`AUTO_BATCH_SIZES` with the least time per copy.

    Parameters
    ----------
    make_step
        ``make_step(rows)`` returns a function that runs one batch step of ``rows`` copies.
    row_bytes
        The memory of one noisy copy.
    synchronize
        Waits for the device (``torch.cuda.synchronize`` on CUDA).

    Examples
    --------
    >>> from renyicert._engine.tuning import fastest_batch_size
    >>> fastest_batch_size(lambda rows: (lambda: None), row_bytes=4) in (16, 4096)
    True
    """
    costs: dict[int, float] = {}  # seconds per copy, the best seen

    def measure(rows: int) -> float:
        """Time steps of ``rows`` copies (at least two, and for at least :data:`WINDOW` s); the fastest step's seconds."""
        step = make_step(rows)  # made anew each pass: only one size's buffers live at a time
        step()  # warm-up: allocations, kernel selection
        synchronize()
        fastest, calls, start = math.inf, 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < WINDOW:
            begin = time.perf_counter()
            step()
            synchronize()
            fastest = min(fastest, time.perf_counter() - begin)
            calls += 1
        costs[rows] = min(costs.get(rows, math.inf), fastest / rows)
        return fastest

    leader, slower = math.inf, 0
    for rows in AUTO_BATCH_SIZES:
        if rows > AUTO_BATCH_SIZES[0] and rows * row_bytes > BUFFER_BYTES:
            break
        seconds = measure(rows)
        if costs[rows] <= leader * (1.0 + TIE):
            leader, slower = min(leader, costs[rows]), 0
        else:
            slower += 1
            if slower == 2:
                break
        if seconds > LONG_STEP:  # larger sizes would take long to try
            break
    for _ in range(PASSES - 1):
        for rows in list(costs):
            measure(rows)
    fastest = min(costs.values())
    return max(rows for rows, cost in costs.items() if cost <= fastest * (1.0 + TIE))
