"""What fixed-n certification answers for one input: :class:`Certificate`, and the engine's counts split from the failed copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ABSTAIN", "Certificate", "split_failures"]

#: The label of an abstention.
ABSTAIN = -1


@dataclass(frozen=True)
class Certificate:
    """The result of :meth:`Smoothed.certify` for one input.

    Attributes
    ----------
    label
        The smoothed prediction, or :data:`ABSTAIN` (then ``radius`` is 0).
    radius
        Certified radius in the mechanism's norm.
    p1_lower, p2_upper
        The confidence bounds the radius was computed from.
    counts
        Class counts of the ``n`` estimation samples.
    order
        The Rényi order at which the radius is attained (``nan`` when another bound gave it, or for an abstention).
    n0, n
        Selection and estimation samples.
    seconds
        Wall time spent on this input (its share of a batch).
    selected
        The class the ``n0`` selection copies chose, the one tested, whether
        certified or not (what recomputing the certificate from ``counts`` needs).
    bound
        The bound that gave ``radius``: the one asked for, or with ``bound="best"``
        the one whose radius was largest.
    failed
        Lattice mode: estimation copies whose noise draw failed, apart from
        ``counts`` (counted against the label in the bounds; almost always 0).
    grid
        The grid of lattice mode (the certificate holds for grid inputs and
        grid perturbations, in floating point), or ``None`` for float mode.
    """

    label: int
    radius: float
    p1_lower: float
    p2_upper: float
    counts: tuple[int, ...]
    order: float
    n0: int
    n: int
    seconds: float
    selected: int = ABSTAIN
    bound: str = "renyi"
    failed: int = 0
    grid: int | None = None

    @property
    def abstained(self) -> bool:
        """Whether the smoothed classifier abstained."""
        return self.label == ABSTAIN


def split_failures(counts: Any, classes: int) -> tuple[Any, Any]:
    """``(votes, failed)`` from the engine's counts: in lattice mode their last column is the failed copies, in float mode none fail.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.certificate import split_failures
    >>> votes, failed = split_failures(np.array([[5, 3, 1]]), 2)
    >>> votes.tolist(), failed.tolist()
    ([[5, 3]], [1])
    """
    counts = np.asarray(counts)
    if counts.shape[1] == classes:
        return counts, np.zeros(counts.shape[0], dtype=np.int64)
    return counts[:, :classes], counts[:, classes].astype(np.int64)
