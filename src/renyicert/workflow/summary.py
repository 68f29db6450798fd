"""What records say: certified accuracy against the radius, average certified radius, and sequential summaries.

Pure functions of records (dicts as :mod:`renyicert.workflow.records` reads
them): :func:`certified_accuracy` and :func:`summarize_certified` for fixed-n
records, :func:`summarize_sequential` for :func:`~renyicert.workflow.certify_dataset_at`'s,
and the radii of a table's columns (:func:`radius_grid`) and of a plot's x axis (:func:`curve_radii`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..radii import RECORD_BOUNDS, check_bound

__all__ = [
    "CertifiedSummary",
    "SequentialSummary",
    "certified_accuracy",
    "curve_radii",
    "radius_grid",
    "summarize_certified",
    "summarize_sequential",
]


def certified_accuracy(
    records: Sequence[dict[str, Any]], radii: Sequence[float] | NDArray[np.float64], bound: str = "renyi"
) -> NDArray[np.float64]:
    """Fraction of records predicted correctly *and* certified at radius ``>= r``, for each ``r`` in ``radii``.

    At ``r = 0`` this is the smoothed classifier's clean accuracy (abstentions count as wrong).

    Examples
    --------
    >>> from renyicert.workflow.summary import certified_accuracy
    >>> records = [{"correct": True, "radius_renyi": 0.5}, {"correct": True, "radius_renyi": 0.1}, {"correct": False, "radius_renyi": 0.0}]
    >>> certified_accuracy(records, [0.0, 0.2, 1.0]).round(3).tolist()
    [0.667, 0.333, 0.0]
    """
    check_bound(bound, RECORD_BOUNDS)
    radii = np.asarray(radii, dtype=np.float64)
    if not records:
        return np.zeros_like(radii)
    key = f"radius_{bound}"
    if any(r.get(key) is None for r in records):
        raise ValueError(f"the records have no {bound!r} radius (the mechanism offers no such bound)")
    correct = np.array([bool(r["correct"]) for r in records])  # an abstention is never correct
    radius = np.array([float(r[key]) for r in records])
    return (correct[None, :] & (radius[None, :] >= radii[:, None])).mean(axis=1)


@dataclass(frozen=True)
class CertifiedSummary:
    """What fixed-n records say in three numbers, under one bound.

    Attributes
    ----------
    inputs
        Records read.
    clean_accuracy
        Share predicted correctly (certified accuracy at radius 0; abstentions count as wrong).
    abstention_rate
        Share where the smoothed classifier abstained (the bounds did not separate the top class).
    average_certified_radius
        The mean over all inputs of the certified radius where the prediction is correct and 0 elsewhere
        (ACR, as Zhai et al. 2020 define it): the area under the certified-accuracy curve.
    """

    inputs: int
    clean_accuracy: float
    abstention_rate: float
    average_certified_radius: float

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return {
            "inputs": self.inputs,
            "clean_accuracy": self.clean_accuracy,
            "abstention_rate": self.abstention_rate,
            "acr": self.average_certified_radius,
        }


def summarize_certified(records: Sequence[dict[str, Any]], bound: str = "renyi") -> CertifiedSummary:
    """Clean accuracy, abstention rate and average certified radius (ACR) of fixed-n records under ``bound``.

    Examples
    --------
    >>> from renyicert.workflow.summary import summarize_certified
    >>> records = [{"correct": True, "prediction": 3, "radius_renyi": 0.6}, {"correct": False, "prediction": 2, "radius_renyi": 0.4},
    ...            {"correct": False, "prediction": -1, "radius_renyi": 0.0}]
    >>> summary = summarize_certified(records)
    >>> round(summary.average_certified_radius, 6), round(summary.abstention_rate, 4), round(summary.clean_accuracy, 4)
    (0.2, 0.3333, 0.3333)
    """
    check_bound(bound, RECORD_BOUNDS)
    if not records:
        return CertifiedSummary(0, 0.0, 0.0, 0.0)
    key = f"radius_{bound}"
    if any(r.get(key) is None for r in records):
        raise ValueError(f"the records have no {bound!r} radius (the mechanism offers no such bound)")
    correct = np.array([bool(r["correct"]) for r in records])
    radius = np.array([float(r[key]) for r in records])
    abstained = np.array([r.get("prediction") == -1 for r in records])
    return CertifiedSummary(
        len(records), float(correct.mean()), float(abstained.mean()), float(np.where(correct, radius, 0.0).mean())
    )


@dataclass(frozen=True)
class SequentialSummary:
    """What sequential records say, per radius: certified accuracy, undecided inputs, and the copies spent.

    Attributes
    ----------
    radii
        The radii decided.
    certified_accuracy
        Per radius, the share of inputs whose candidate is the true label and is certified there.
    undecided
        Per radius, the inputs whose budget ran out before a decision (counted as not certified).
    inputs
        Records read.
    forward_passes
        Mean noisy copies classified per input (selection included).
    """

    radii: tuple[float, ...]
    certified_accuracy: tuple[float, ...]
    undecided: tuple[int, ...]
    inputs: int
    forward_passes: float


def summarize_sequential(
    records: Sequence[dict[str, Any]], radii: Sequence[float], where: str = "records"
) -> SequentialSummary:
    """Certified accuracy at ``radii`` from :func:`certify_dataset_at`'s records, each checked (a ``ValueError`` names ``where`` and the record).

    Examples
    --------
    >>> from renyicert.workflow.summary import summarize_sequential
    >>> records = [{"label": 3, "selected": 3, "certified": [True, False], "undecided": [False, True], "samples": 900, "n0": 100},
    ...            {"label": 1, "selected": 2, "certified": [True, True], "undecided": [False, False], "samples": 100, "n0": 100}]
    >>> summary = summarize_sequential(records, [0.0, 0.5])
    >>> summary.certified_accuracy, summary.undecided, summary.forward_passes
    ((0.5, 0.0), (0, 1), 600.0)
    """
    count = len(radii)
    correct = np.zeros((len(records), count), dtype=bool)
    undecided = np.zeros((len(records), count), dtype=bool)
    passes = np.zeros(len(records))
    for k, record in enumerate(records):
        at = f"{where} record {k + 1}"
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("certified"), list)
            or not isinstance(record.get("undecided"), list)
        ):
            raise ValueError(
                f"{at}: a sequential record needs lists 'certified' and 'undecided'; is this a 'renyicert certify --radii' records file?"
            )
        flags = record["certified"] + record["undecided"]
        if (
            len(record["certified"]) != count
            or len(record["undecided"]) != count
            or not all(isinstance(f, bool) for f in flags)
        ):
            raise ValueError(
                f"{at}: 'certified' and 'undecided' must hold {count} true/false values (one per radius), got {record['certified']!r} and {record['undecided']!r}"
            )
        numbers = [record.get(key) for key in ("label", "selected", "samples", "n0")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers) or numbers[2] < 0 or numbers[3] < 0:
            raise ValueError(
                f"{at}: 'label', 'selected', 'samples' and 'n0' must be integers (the last two >= 0), got {numbers!r}"
            )
        correct[k] = np.array(record["certified"]) & (record["selected"] == record["label"])
        undecided[k] = record["undecided"]
        passes[k] = record["n0"] + record["samples"]
    return SequentialSummary(
        radii=tuple(float(r) for r in radii),
        certified_accuracy=tuple(float(a) for a in correct.mean(axis=0)) if records else (0.0,) * count,
        undecided=tuple(int(u) for u in undecided.sum(axis=0)),
        inputs=len(records),
        forward_passes=float(passes.mean()) if records else 0.0,
    )


def radius_grid(records: Sequence[dict[str, Any]], points: int = 6, bound: str = "renyi") -> list[float]:
    """``points`` radii ``0, h, 2h, ...``, the columns of a table: the step ``h`` is rounded down to a multiple of
    half a power of ten, so the last point is at most the largest radius certified correctly under ``bound``.

    Examples
    --------
    >>> from renyicert.workflow.summary import radius_grid
    >>> radius_grid([{"correct": True, "radius_renyi": 0.93}, {"correct": False, "radius_renyi": 2.0}])
    [0.0, 0.15, 0.3, 0.45, 0.6, 0.75]
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    largest = max((float(r[f"radius_{bound}"] or 0.0) for r in records if r["correct"]), default=0.0)
    if not largest > 0:
        return [0.0]
    step = largest / (points - 1)
    if (
        not step > 0 or not 10 ** np.floor(np.log10(step)) > 0
    ):  # subnormal radii: no round steps to make, and no NaN columns
        return [0.0, float(largest)]
    magnitude = 10 ** np.floor(np.log10(step))
    step = float(np.floor(step / magnitude * 2) / 2 * magnitude) or float(magnitude)
    return [float(f"{i * step:.6g}") for i in range(points)]  # six significant digits: tiny radii keep theirs


def curve_radii(
    records_sets: Sequence[Sequence[dict[str, Any]]], bounds: Sequence[str] = ("renyi",), points: int = 600
) -> NDArray[np.float64]:
    """Radii from 0 past the largest radius certified correctly in any of ``records_sets`` under any of ``bounds``: where every curve reaches zero.

    Examples
    --------
    >>> from renyicert.workflow.summary import curve_radii
    >>> radii = curve_radii([[{"correct": True, "radius_renyi": 0.5}]])
    >>> float(radii[0]), float(radii[-1]) > 0.5
    (0.0, True)
    """
    largest = max(
        (
            float(r.get(f"radius_{b}") or 0.0)
            for records in records_sets
            for r in records
            for b in bounds
            if r.get("correct")
        ),
        default=0.0,
    )
    return np.linspace(0.0, largest * 1.08 if largest > 0 else 1.0, points)
