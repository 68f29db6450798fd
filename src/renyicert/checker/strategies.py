"""Hypothesis strategies for the inputs of a mechanism and of the solver.

Re-exported by :mod:`renyicert.testing`, where plugin authors find them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["distances", "orders", "probability_pairs", "shift_vectors"]


def orders(*, max_value: float = 1e6, include_one: bool = True, include_inf: bool = False) -> Any:
    """Rényi orders ``order``: ``[1, max_value]``, denser near 1, optionally ``inf``.

    Examples
    --------
    >>> from hypothesis import find
    >>> from renyicert.testing import orders
    >>> find(orders(), lambda a: a > 2)
    3.0
    """
    from hypothesis import strategies as st

    if not (math.isfinite(max_value) and max_value > 1.0):
        raise ValueError(f"max_value must be finite and > 1, got {max_value!r}")
    lower = 1.0 if include_one else math.nextafter(1.0, 2.0)
    near_one = st.floats(min_value=0.0, max_value=math.log(max_value)).map(
        lambda u: min(max(math.expm1(u) + 1.0, lower), max_value)
    )
    parts = [st.floats(min_value=lower, max_value=max_value), near_one, st.sampled_from([lower, 1.5, 2.0, 10.0])]
    if include_inf:
        parts.append(st.just(math.inf))
    return st.one_of(*parts)


def distances(*, max_value: float = 50.0) -> Any:
    """Distances ``r`` in ``[0, max_value]``, including 0 and tiny values."""
    from hypothesis import strategies as st

    if not (math.isfinite(max_value) and max_value > 0.0):
        raise ValueError(f"max_value must be finite and > 0, got {max_value!r}")
    return st.one_of(
        st.floats(min_value=0.0, max_value=max_value),
        st.floats(min_value=-30.0, max_value=math.log10(max_value)).map(lambda e: 10.0**e),
        st.just(0.0),
    )


def probability_pairs(*, min_gap: float = 0.0) -> Any:
    """Pairs ``(p1, p2)`` with ``0 <= p2 <= p1``, ``p1 + p2 <= 1`` and ``p1 - p2 >= min_gap``."""
    from hypothesis import strategies as st

    if not (0.0 <= min_gap < 1.0):
        raise ValueError(f"min_gap must be in [0, 1), got {min_gap!r}")

    @st.composite
    def pairs(draw: Any) -> tuple[float, float]:
        p1 = draw(st.floats(min_value=max(min_gap, 1e-12), max_value=1.0))
        room = min(p1 - min_gap, 1.0 - p1)
        p2 = draw(st.floats(min_value=0.0, max_value=max(room, 0.0)))
        return p1, min(p2, 1.0 - p1)

    return pairs()


def shift_vectors(norm: float, *, radius: float | None = None, min_dimension: int = 1, max_dimension: int = 8) -> Any:
    """Shift vectors ``d`` (numpy float64) of ``min_dimension..max_dimension`` coordinates.

    With ``radius`` given, each vector is rescaled to ``||d||_norm = radius``
    (the zero vector is replaced by an axis-aligned one).
    """
    from hypothesis import strategies as st

    if not (norm >= 1.0):
        raise ValueError(f"norm must be >= 1 (1, 2, ..., inf), got {norm!r}")
    if not (1 <= min_dimension <= max_dimension):
        raise ValueError(f"need 1 <= min_dimension <= max_dimension, got {min_dimension} and {max_dimension}")
    coordinate = st.floats(min_value=-1e3, max_value=1e3, allow_subnormal=False)

    def build(values: list[float]) -> Any:
        vector = np.asarray(values, dtype=np.float64)
        if radius is None:
            return vector
        size = np.linalg.norm(vector, ord=norm)
        if not size > 0.0:
            vector = np.zeros_like(vector)
            vector[0] = 1.0
            size = 1.0
        return vector * (radius / size)

    return st.lists(coordinate, min_size=min_dimension, max_size=max_dimension).map(build)
