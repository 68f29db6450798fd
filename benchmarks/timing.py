"""Timing shared by the benchmarks: interleaved rounds, best round per function."""

from __future__ import annotations

import math
import time
from collections.abc import Callable


def interleaved_best(
    functions: dict[str, Callable[[], object]], rounds: int, synchronize: Callable[[], None] = lambda: None
) -> dict[str, float]:
    """The best time of each function over `rounds` rounds, each round running every function once in turn.

    Interleaving puts the same machine load on every function: a shared machine
    drifts by tens of percent over minutes, which back-to-back blocks of repeats
    would turn into false ratios. The order rotates from round to round, so no
    function always follows the same one. `synchronize` (e.g. torch.cuda.synchronize)
    runs before each clock reading.
    """
    best = dict.fromkeys(functions, math.inf)
    names = list(functions)
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            synchronize()
            start = time.perf_counter()
            functions[name]()
            synchronize()
            best[name] = min(best[name], time.perf_counter() - start)
    return best
