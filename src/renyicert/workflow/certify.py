"""Certify a whole data set: one record per input, written as it is produced; and certificates recomputed from records.

:func:`certify_dataset` writes one record per input as it is produced (JSONL,
flushed and fsynced; see :mod:`renyicert.workflow.records`) and, with ``resume=True``,
skips the inputs already recorded.  Every bound is computed from the *same*
counts and the same ``(p1_lower, p2_upper)``, so the curves compare bounds,
not Monte Carlo luck.  A record holds:

``index``, ``label``, ``prediction`` (``-1`` = abstain), ``selected`` (the
class the selection copies chose, certified or not), ``correct``,
``radius_renyi``, ``radius_tight``, ``radius_pixeldp`` (``null`` where the
mechanism has no such bound), ``p1_lower``, ``p2_upper``, ``order`` (the
Rényi order attaining ``radius_renyi``), ``counts``, ``n0``, ``n``, ``seconds``.

Records format 2 (this one) names the Rényi order ``order``; format 1
(renyicert 0.1) named it ``alpha``, the name the settings use for the failure
probability.  :func:`~renyicert.workflow.records.upgrade_record` reads format 1 records as format 2, so
reports and tables read both; resuming a format 1 file is refused with a message
that names the format.

:func:`certify_dataset_at` certifies sequentially (:meth:`renyicert.Smoothed.certify_at_stream`);
:func:`recertify_records` recomputes fixed-n certificates from recorded counts.
The run around them (the lock, the settings, resumption, ranks, the merge) is
:mod:`renyicert.workflow.runs`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._torch import model_device
from .._validation import check_alpha, check_positive_int
from ..certificate import ABSTAIN
from ..confidence import top_two_bounds
from ..radii import best_bounds, radii_where_certified
from ..sequential import SequentialCertificate, check_extended_budget
from ..sequential_rule import decision_rule
from ..smoothing import Smoothed
from .data import LabelledData, as_labelled_data
from .records import upgrade_record, with_best
from .runs import run_records, run_settings

__all__ = ["certify_dataset", "certify_dataset_at", "predict_dataset", "recertify_records"]


def _comparison_radii(
    mechanism: Any, p1: NDArray[np.float64], p2: NDArray[np.float64], certified: NDArray[np.bool_]
) -> list[dict[str, float | None]]:
    """Per input, ``radius_tight`` and ``radius_pixeldp`` from the same bounds (``None`` for a bound the mechanism does not offer)."""
    offered = {"tight": mechanism.has_tight_radius, "pixeldp": mechanism.has_pixeldp_radius}
    radii = {
        bound: radii_where_certified(mechanism, p1, p2, certified, bound)[0] if has else None
        for bound, has in offered.items()
    }
    return [
        {f"radius_{bound}": None if values is None else float(values[i]) for bound, values in radii.items()}
        for i in range(len(p1))
    ]


def certify_dataset(
    smoothed: Smoothed,
    data: LabelledData | Any,
    path: str | Path | None = None,
    *,
    n0: int = 100,
    n: int = 10_000,
    alpha: float = 0.001,
    seed: int = 0,
    inputs_per_call: int = 32,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> list[dict[str, Any]]:
    """Certify every input of ``data``; input ``i`` is certified with seed ``seed + i``.

    Runs unchanged under ``torchrun``: with an initialised ``torch.distributed``
    process group, the inputs are shared out by chunks among the ranks and the
    records merged by rank 0 (see :mod:`renyicert.workflow.distributed`); the records do
    not depend on the number of ranks.

    Parameters
    ----------
    smoothed
        The smoothed classifier.
    data
        :class:`~renyicert.workflow.data.LabelledData` (or a Dataset / ``(x, y)`` pair).
    path
        JSONL file the records are appended to as they are produced (``None``: keep them in memory only).
        Its settings (records format, mechanism and its parameters, n0, n, alpha, seed, chunk size, model checksum,
        the data's size and SHA-256) are kept beside it; one run at a time writes it (a lock file beside it).
    inputs_per_call
        Inputs certified together (a chunk: their noisy copies share the model batches).
    resume
        Keep the records already in ``path`` (cutting off a torn last line) and certify only the rest;
        refused if ``path`` was made with other settings.
    overwrite
        Start ``path`` afresh: its records, part files and settings are removed, but only once this run
        holds the file's lock, so a run that is refused (another is writing it) has deleted nothing.

    Returns
    -------
    list of dict
        All records, ordered by index.

    Examples
    --------
    >>> import torch, renyicert
    >>> from renyicert.workflow.data import load_digits
    >>> from renyicert.workflow.certify import certify_dataset
    >>> from renyicert.workflow.models import DigitsMLP
    >>> _, test = load_digits()
    >>> smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    >>> records = certify_dataset(smoothed, test.subset(3), n0=20, n=200, progress=False)
    >>> [r["index"] for r in records], sorted(records[0])[:4]
    ([0, 1, 2], ['best_bound', 'correct', 'counts', 'index'])
    """
    data = as_labelled_data(data)
    inputs_per_call = check_positive_int(inputs_per_call, "inputs_per_call")
    settings = run_settings(smoothed, data, n0=n0, n=n, alpha=alpha, seed=seed, inputs_per_call=inputs_per_call)
    device = model_device(smoothed.model)

    def certify_chunks(chunks: list[range], done: dict[int, Any], bar: Any) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            for record in _certify_chunk(smoothed, data, chunk, device, n0=n0, n=n, alpha=alpha, seed=seed):
                if record["index"] not in done:  # the rest of a chunk an interrupted run left half-written
                    yield record
            if bar is not None:
                bar.update(len(chunk))

    return run_records(smoothed, data, path, settings, inputs_per_call, resume, progress, certify_chunks, overwrite)


def certify_dataset_at(
    smoothed: Smoothed,
    data: LabelledData | Any,
    radii: Sequence[float],
    path: str | Path | None = None,
    *,
    alpha: float = 0.001,
    budget: int = 100_000,
    extended_budget: int | None = None,
    n0: int = 100,
    bound: str = "renyi",
    p2_mode: str = "runner-up",
    seed: int = 0,
    inputs_per_call: int = 32,
    inputs_at_once: int = 128,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
    decision_test: str = "ordered",
) -> list[dict[str, Any]]:
    """Sequential certification of every input of ``data`` at ``radii`` (:meth:`~renyicert.Smoothed.certify_at`); input ``i`` gets key ``seed + i``.

    Records, resumption, the lock and ``torchrun`` sharding are those of
    :func:`certify_dataset` (a rank takes the chunks ``k`` with ``k % world ==
    rank``), but each input is recorded as soon as it is decided, and
    ``inputs_at_once`` undecided inputs share the model's batches, new ones
    joining as others stop.  A record holds ``index``, ``label``, ``prediction``
    (the candidate class where radius ``radii[0]`` is certified, else ``-1``),
    ``selected`` (the candidate), ``certified`` and ``undecided`` (one flag per
    radius), ``samples`` (estimation copies), ``successes``, ``counts``, ``p1_lower``,
    ``p2_upper`` and ``n0``; the radii, ``alpha``, ``budget``, ``extended_budget``,
    ``bound``, ``p2_mode`` and ``decision_test`` (see :meth:`~renyicert.Smoothed.certify_at`) are in the settings.
    Records do not depend on the ranks, ``inputs_per_call`` or ``inputs_at_once``.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.workflow.data import load_digits
    >>> from renyicert.workflow.certify import certify_dataset_at
    >>> from renyicert.workflow.models import DigitsMLP
    >>> _, test = load_digits()
    >>> smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    >>> records = certify_dataset_at(smoothed, test.subset(3), [0.0, 0.25], budget=500, progress=False)
    >>> [r["index"] for r in records], len(records[0]["certified"])
    ([0, 1, 2], 2)
    """
    data = as_labelled_data(data)
    inputs_per_call = check_positive_int(inputs_per_call, "inputs_per_call")
    inputs_at_once = check_positive_int(inputs_at_once, "inputs_at_once")
    budget = check_positive_int(budget, "budget")
    options = {
        "budget": budget,
        "extended_budget": check_extended_budget(extended_budget, budget),
        "n0": check_positive_int(n0, "n0"),
        "bound": bound,
        "p2_mode": p2_mode,
    }
    rule = decision_rule(
        smoothed.mechanism, radii, bound, p2_mode, check_alpha(alpha), smoothed.num_classes, decision_test
    )  # bad radii refused before any file is touched
    radii = [float(r) for r in radii]
    settings = run_settings(
        smoothed,
        data,
        method="sequential",
        radii=radii,
        alpha=alpha,
        **options,
        seed=seed,
        inputs_per_call=inputs_per_call,
    )
    # The threshold form's default since issue 27 (records made before hold no decision_test: the two-sided rule).
    if rule.ordered:
        settings["decision_test"] = "ordered"
    stream_options = {**options, "inputs_at_once": inputs_at_once, "decision_test": decision_test}

    def certify_stream(chunks: list[range], done: dict[int, Any], bar: Any) -> Iterator[dict[str, Any]]:
        indices = [i for chunk in chunks for i in chunk if i not in done]
        return _stream_records(smoothed, data, indices, bar, radii, alpha, seed, stream_options)

    return run_records(smoothed, data, path, settings, inputs_per_call, resume, progress, certify_stream, overwrite)


def _stream_records(
    smoothed: Smoothed,
    data: LabelledData,
    indices: list[int],
    bar: Any,
    radii: list[float],
    alpha: float,
    seed: int,
    options: dict[str, Any],
) -> Iterator[dict[str, Any]]:
    """The sequential records of ``indices`` (input ``i`` with key ``seed + i``), each yielded as it is decided."""
    device = model_device(smoothed.model)
    for start in range(0, len(indices), _STREAM_CALL):  # one call per slice: its inputs stream through the pool
        part = indices[start : start + _STREAM_CALL]
        x = data.inputs(part)
        answers = smoothed.certify_at_stream(
            x if device is None else x.to(device), radii, alpha, seeds=[seed + i for i in part], **options
        )
        for k, answer in answers:  # each recorded as it is decided: a kill later in the call loses none of them
            if bar is not None:
                bar.update(1)
            yield _sequential_record(answer, part[k], int(data.y[part[k]]), lattice=smoothed.grid is not None)


#: Inputs per :meth:`Smoothed.certify_at_stream` call in :func:`certify_dataset_at` (its pool streams through them;
#: this bounds the memory of one call).
_STREAM_CALL = 4096


def _sequential_record(answer: SequentialCertificate, index: int, label: int, lattice: bool) -> dict[str, Any]:
    """The record of one input's :class:`~renyicert.SequentialCertificate` (``failed`` in lattice mode only)."""
    return {
        "index": index,
        "label": label,
        "prediction": answer.label if answer.certified[0] else -1,
        "selected": answer.label,
        "certified": list(answer.certified),
        "undecided": list(answer.undecided),
        "samples": answer.samples,
        "successes": answer.successes,
        "p1_lower": answer.p1_lower,
        "p2_upper": answer.p2_upper,
        "counts": list(answer.counts),
        "n0": answer.n0,
        **({"failed": answer.failed} if lattice else {}),
    }


def _certify_chunk(
    smoothed: Smoothed, data: LabelledData, chunk: range, device: Any, *, n0: int, n: int, alpha: float, seed: int
) -> list[dict[str, Any]]:
    """The records of one chunk, certified as one batch (input ``i`` with seed ``seed + i``), every bound from the same counts."""
    x = data.inputs(slice(chunk.start, chunk.stop))
    if device is not None:
        x = x.to(device)
    certificates = smoothed.certify(x, n0=n0, n=n, alpha=alpha, seed=seed + chunk.start)
    p1 = np.array([c.p1_lower for c in certificates])
    p2 = np.array([c.p2_upper for c in certificates])
    certified = np.array([not c.abstained for c in certificates])
    extra = _comparison_radii(smoothed.mechanism, p1, p2, certified)
    records = []
    eligible = best_bounds(smoothed.mechanism)
    for offset, cert in enumerate(certificates):
        label = int(data.y[chunk.start + offset])
        records.append(
            with_best(
                {
                    "index": chunk.start + offset,
                    "label": label,
                    "prediction": cert.label,
                    "selected": cert.selected,
                    "correct": cert.label == label,
                    "radius_renyi": cert.radius,
                    **extra[offset],
                    "p1_lower": cert.p1_lower,
                    "p2_upper": cert.p2_upper,
                    "order": None if math.isnan(cert.order) else cert.order,
                    "counts": list(cert.counts),
                    **({"failed": cert.failed} if smoothed.grid is not None else {}),
                    "n0": n0,
                    "n": n,
                    "seconds": cert.seconds,
                },
                eligible,
            )
        )
    return records


def _recorded_counts(record: Any, k: int) -> tuple[list[int], int, int]:
    """``(counts, selected class, failed copies)`` of the ``k``-th record (from 0), each checked: a ``ValueError`` names it."""
    where = f"record {k + 1} (index {record.get('index') if isinstance(record, dict) else None})"
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a dict, got a {type(record).__name__}")
    if any(key in record for key in ("certified", "undecided", "samples", "successes")):
        raise ValueError(
            f"{where} is a sequential record (certify_at, certify --radii): its counts were taken at a stopping time that depended on them, "
            "so no fixed-n Clopper-Pearson bound holds for them; certify again (at a new alpha, with new noise)"
        )
    values = record.get("counts")
    if (
        not isinstance(values, list)
        or not values
        or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in values)
    ):
        raise ValueError(f"{where}: 'counts' must be a list of non-negative integers, got {values!r}")
    choice = record.get("selected", record.get("prediction"))
    if choice == ABSTAIN or not isinstance(choice, int) or isinstance(choice, bool) or not 0 <= choice < len(values):
        raise ValueError(
            f"{where}: the class the selection chose is not recorded (an abstention in records written before 'selected' was kept); "
            f"certify again to recompute it, got selected = {record.get('selected')!r}, prediction = {record.get('prediction')!r}"
        )
    failed = record.get("failed", 0)
    if not isinstance(failed, int) or isinstance(failed, bool) or failed < 0:
        raise ValueError(
            f"{where}: 'failed' (lattice copies whose draw failed) must be a non-negative integer, got {failed!r}"
        )
    if record.get("n") is not None and sum(values) + failed != record["n"]:
        raise ValueError(
            f"{where}: its counts sum to {sum(values)}{f' and {failed} failed' if failed else ''}, its n is {record['n']}"
        )
    return values, choice, failed


def recertify_records(
    records: Sequence[dict[str, Any]], mechanism: Any, alpha: float, p2_mode: str = "runner-up"
) -> list[dict[str, Any]]:
    """The certificates ``records``' counts give under another ``alpha`` (or ``p2_mode``), every bound, without the model.

    Each record's ``counts`` (the estimation copies' votes) and ``selected``
    class (the selection copies' choice) are all a certificate depends on:
    :meth:`renyicert.Smoothed.certify` is bounds + solver on them, and so is
    this, so at the records' own alpha it returns them unchanged (a test holds
    it to that).  Choose the new alpha before looking at the results: trying
    several and keeping the best spends more than one alpha.

    Records written before ``selected`` was recorded hold the selected class
    only where they certified (``prediction``); an abstention among them is
    refused, naming the record. Lattice-mode records' ``failed`` copies count
    against the selected class, as in :meth:`renyicert.Smoothed.certify`.
    """
    alpha = check_alpha(alpha)
    if not records:
        return []
    counts, selected, failures = zip(*(_recorded_counts(record, k) for k, record in enumerate(records)))
    if len({len(c) for c in counts}) != 1:
        raise ValueError("the records' counts have different numbers of classes")
    matrix, top = np.array(counts, dtype=np.int64), np.array(selected, dtype=np.int64)
    p1_lower, p2_upper = top_two_bounds(matrix, top, alpha, p2_mode, np.array(failures, dtype=np.int64))
    certified = p1_lower > p2_upper
    radius, order = radii_where_certified(mechanism, p1_lower, p2_upper, certified, "renyi")
    extra = _comparison_radii(mechanism, p1_lower, p2_upper, certified)
    eligible = best_bounds(mechanism)
    recomputed = []
    for i, record in enumerate(records):
        prediction = int(top[i]) if certified[i] else ABSTAIN
        recomputed.append(
            with_best(
                dict(
                    upgrade_record(record),
                    prediction=prediction,
                    selected=int(top[i]),
                    correct=prediction == record.get("label"),
                    radius_renyi=float(radius[i]),
                    **extra[i],
                    p1_lower=float(p1_lower[i]),
                    p2_upper=float(p2_upper[i]),
                    order=None if math.isnan(order[i]) else float(order[i]),
                ),
                eligible,
            )
        )
    return recomputed


def predict_dataset(
    smoothed: Smoothed,
    data: LabelledData | Any,
    *,
    n: int = 1000,
    alpha: float = 0.001,
    seed: int = 0,
    inputs_per_call: int = 32,
) -> list[int]:
    """The smoothed classifier's prediction for every input of ``data`` (Cohen et al.'s PREDICT; ``-1`` = abstain).

    Input ``i`` is predicted with seed ``seed + i``, ``inputs_per_call`` at a time.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.workflow import load_digits, predict_dataset
    >>> from renyicert.workflow.models import DigitsMLP
    >>> smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    >>> len(predict_dataset(smoothed, load_digits()[1].subset(3), n=50))
    3
    """
    data = as_labelled_data(data)
    per_call = check_positive_int(inputs_per_call, "--inputs-per-call")
    device = model_device(smoothed.model)
    predictions: list[int] = []
    for start in range(0, len(data), per_call):
        x = data.inputs(slice(start, start + per_call))
        batch = smoothed.predict(x if device is None else x.to(device), n=n, alpha=alpha, seed=seed + start)
        predictions += [int(p) for p in batch]
    return predictions
