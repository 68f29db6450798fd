"""Certify a whole dataset, and certified accuracy as a function of the radius (tables and plots).

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
probability.  :func:`upgrade_record` reads format 1 records as format 2, so
reports and tables read both; resuming a format 1 file is refused with a message
that names the format.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._progress import progress_bar
from .._torch import model_device
from .._validation import check_alpha, check_positive_int
from ..smoothing import BOUNDS as SINGLE_BOUNDS
from ..smoothing import Smoothed, best_bounds, offered_bounds, radii_where_certified
from . import distributed
from .data import LabelledData, as_labelled_data
from .records import RecordWriter, read_records

__all__ = [
    "BOUNDS", "RECORDS_FORMAT", "CertifiedSummary", "SequentialSummary", "best_of_record", "bound_label", "certified_accuracy", "checked_record", "certify_dataset",
    "certify_dataset_at", "curve_radii", "norm_name", "plot_certified_accuracy", "radius_grid", "recertify_records", "summarize_certified", "summarize_sequential",
    "upgrade_record", "write_csv",
]  # fmt: skip

#: The records format this version writes (stored in the settings file as ``"format"``).
RECORDS_FORMAT = 2
#: The radii a record holds: one per bound, and ``best``, the largest of them (which bound gave it is ``best_bound``).
BOUNDS = (*SINGLE_BOUNDS, "best")
BOUND_LABELS = {
    "renyi": "Rényi (Li et al. 2019)", "tight": "tight (Cohen 2019 / Teng 2020)", "pixeldp": "PixelDP (Lecuyer 2019)",
    "best": "best of the bounds (their maximum, same alpha)",
}  # fmt: skip


def best_of_record(record: dict[str, Any], bounds: Sequence[str] = SINGLE_BOUNDS) -> tuple[float, str]:
    """``(radius, bound)``: the largest of a record's per-bound radii and the bound that gave it (a tie goes to the earlier bound).

    Every bound is a theorem about the same ``(p1_lower, p2_upper)``, so on the
    event where those hold, all radii hold and so does their maximum: no extra
    alpha is spent (see :func:`renyicert.smoothing.best_radii`).  ``bounds`` are those
    that may win (:func:`renyicert.smoothing.best_bounds`: a comparison bound nothing
    verified is reported in its own field but never taken as the best).

    Examples
    --------
    >>> from renyicert.workflow.evaluation import best_of_record
    >>> best_of_record({"radius_renyi": 0.4, "radius_tight": 0.5, "radius_pixeldp": None})
    (0.5, 'tight')
    """
    radius, winner = -1.0, "renyi"
    for bound in (b for b in SINGLE_BOUNDS if b in bounds):
        value = record.get(f"radius_{bound}")
        if value is not None and float(value) > radius:
            radius, winner = float(value), bound
    return max(radius, 0.0), winner


def checked_record(record: Any, where: str, best_of: Sequence[str] | None = None) -> dict[str, Any]:
    """A record read from a file, upgraded (:func:`upgrade_record`) and checked for what ``report`` uses.

    ``correct`` must be true or false and ``radius_renyi`` a finite number ``>= 0``
    (the comparison radii too, where present); anything else is a ``ValueError``
    naming ``where`` (the file and the record), so that no table is printed over
    NaN, negative or infinite radii.  ``best_of`` are the bounds the best radius may
    come from (the settings' ``best_of``; all of them for records that do not say).

    Examples
    --------
    >>> from renyicert.workflow.evaluation import checked_record
    >>> checked_record({"correct": True, "radius_renyi": "nan"}, "r.jsonl record 1")
    Traceback (most recent call last):
    ...
    ValueError: r.jsonl record 1: radius_renyi must be a finite number >= 0, got 'nan'
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got a {type(record).__name__}")
    record = upgrade_record(record)
    if not isinstance(record.get("correct"), bool):
        raise ValueError(f"{where}: 'correct' must be true or false, got {record.get('correct', 'nothing')!r}")
    for bound in SINGLE_BOUNDS:
        key = f"radius_{bound}"
        if key not in record and bound == "renyi":
            raise ValueError(f"{where}: the record has no {key!r}; is this a renyicert records file?")
        value = record.get(key)
        if value is None and bound != "renyi":
            continue
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number < 0:
            raise ValueError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    checked = _with_best(record, SINGLE_BOUNDS if best_of is None else tuple(best_of))
    if record.get("radius_best") is not None and (record["radius_best"], record.get("best_bound")) != (checked["radius_best"], checked["best_bound"]):
        raise ValueError(
            f"{where}: radius_best = {record['radius_best']!r} ({record.get('best_bound')!r}) is not the largest of its bounds' radii, "
            f"{checked['radius_best']!r} ({checked['best_bound']!r})"
        )
    return checked


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any format as a format 2 record: format 1's ``alpha`` (the Rényi order) becomes ``order``.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import upgrade_record
    >>> upgrade_record({"index": 0, "alpha": 1.4})
    {'index': 0, 'order': 1.4}
    """
    if "order" in record or "alpha" not in record:
        return record
    upgraded = {key: value for key, value in record.items() if key != "alpha"}
    upgraded["order"] = record["alpha"]
    return upgraded


def _comparison_radii(mechanism: Any, p1: NDArray[np.float64], p2: NDArray[np.float64], certified: NDArray[np.bool_]) -> list[dict[str, float | None]]:
    """Per input, ``radius_tight`` and ``radius_pixeldp`` from the same bounds (``None`` for a bound the mechanism does not offer)."""
    offered = {"tight": mechanism.has_tight_radius, "pixeldp": mechanism.has_pixeldp_radius}
    radii = {bound: radii_where_certified(mechanism, p1, p2, certified, bound)[0] if has else None for bound, has in offered.items()}
    return [{f"radius_{bound}": None if values is None else float(values[i]) for bound, values in radii.items()} for i in range(len(p1))]


def _with_best(record: dict[str, Any], bounds: Sequence[str] = SINGLE_BOUNDS) -> dict[str, Any]:
    """``record`` with ``radius_best`` and ``best_bound`` (:func:`best_of_record` over ``bounds``) set from its radii."""
    radius, winner = best_of_record(record, bounds)
    return dict(record, radius_best=radius, best_bound=winner)


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
    >>> from renyicert.workflow.evaluation import certify_dataset
    >>> from renyicert.workflow.models import DigitsMLP
    >>> _, test = load_digits()
    >>> smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    >>> records = certify_dataset(smoothed, test.subset(3), n0=20, n=200, progress=False)
    >>> [r["index"] for r in records], sorted(records[0])[:4]
    ([0, 1, 2], ['best_bound', 'correct', 'counts', 'index'])
    """
    data = as_labelled_data(data)
    inputs_per_call = check_positive_int(inputs_per_call, "inputs_per_call")
    settings = _run_settings(smoothed, data, n0=n0, n=n, alpha=alpha, seed=seed, inputs_per_call=inputs_per_call)
    device = model_device(smoothed.model)

    def certify_chunks(chunks: list[range], done: dict[int, Any], bar: Any) -> Iterator[dict[str, Any]]:
        for chunk in chunks:
            for record in _certify_chunk(smoothed, data, chunk, device, n0=n0, n=n, alpha=alpha, seed=seed):
                if record["index"] not in done:  # the rest of a chunk an interrupted run left half-written
                    yield record
            if bar is not None:
                bar.update(len(chunk))

    return _run_records(smoothed, data, path, settings, inputs_per_call, resume, progress, certify_chunks, overwrite)


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
    >>> from renyicert.workflow.evaluation import certify_dataset_at
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
    from ..sequential import check_extended_budget, decision_rule

    budget = check_positive_int(budget, "budget")
    extended_budget = check_extended_budget(extended_budget, budget)
    n0 = check_positive_int(n0, "n0")
    rule = decision_rule(smoothed.mechanism, radii, bound, p2_mode, check_alpha(alpha), smoothed.num_classes, decision_test)  # bad radii refused before any file is touched
    radii = [float(r) for r in radii]
    settings = _run_settings(
        smoothed, data, method="sequential", radii=radii, alpha=alpha, budget=budget, extended_budget=extended_budget, n0=n0, bound=bound,
        p2_mode=p2_mode, seed=seed, inputs_per_call=inputs_per_call,
    )  # fmt: skip
    if rule.ordered:  # the threshold form's default since issue 27 (records made before hold no decision_test: the two-sided rule)
        settings["decision_test"] = "ordered"
    device = model_device(smoothed.model)

    def certify_stream(chunks: list[range], done: dict[int, Any], bar: Any) -> Iterator[dict[str, Any]]:
        indices = [i for chunk in chunks for i in chunk if i not in done]
        for start in range(0, len(indices), _STREAM_CALL):  # one certify_at call per slice: its inputs stream through the pool
            part = indices[start : start + _STREAM_CALL]
            for k, answer in _certify_indices(smoothed, data, part, device, rule, (budget, extended_budget), n0, seed, inputs_at_once):
                index = part[k]  # recorded now, as it is decided: a kill later in the call loses none of the decided inputs
                if bar is not None:
                    bar.update(1)
                label = int(data.y[index])
                yield {
                    "index": index, "label": label, "prediction": answer.label if answer.certified[0] else -1,
                    "selected": answer.label, "certified": list(answer.certified), "undecided": list(answer.undecided),
                    "samples": answer.samples, "successes": answer.successes, "p1_lower": answer.p1_lower, "p2_upper": answer.p2_upper,
                    "counts": list(answer.counts), "n0": n0, **({"failed": answer.failed} if smoothed.grid is not None else {}),
                }  # fmt: skip

    return _run_records(smoothed, data, path, settings, inputs_per_call, resume, progress, certify_stream, overwrite)


#: Inputs per :meth:`Smoothed.certify_at` call in :func:`certify_dataset_at` (its pool streams through them; this bounds the memory of one call).
_STREAM_CALL = 4096


def _certify_indices(
    smoothed: Smoothed, data: LabelledData, indices: list[int], device: Any, rule: Any, budgets: tuple[int, int | None], n0: int, seed: int, inputs_at_once: int,
) -> Iterator[tuple[int, Any]]:  # fmt: skip
    """``certify_at`` on the inputs at ``indices`` (input ``i`` with key ``seed + i``, as if certified alone): ``(position in indices, answer)`` as each is decided."""
    from ..sequential import certify_stream

    x = data.inputs(indices)
    if device is not None:
        x = x.to(device)
    smoothed._as_batch(x)  # the shape, dtype and device checks of certify_at
    source = ((k, x[k : k + 1], seed + i) for k, i in enumerate(indices))
    yield from certify_stream(
        smoothed._engine, source, rule, budget=budgets[0], extended_budget=budgets[1], n0=n0, batch_size=smoothed.batch_size,
        inputs_at_once=inputs_at_once,
    )  # fmt: skip


def _run_records(
    smoothed: Smoothed, data: LabelledData, path: str | Path | None, settings: dict[str, Any], inputs_per_call: int, resume: bool, progress: bool | None,
    certify: Callable[[list[range], dict[int, Any], Any], Iterator[dict[str, Any]]], overwrite: bool = False,
) -> list[dict[str, Any]]:  # fmt: skip
    """The run around a certification: the lock, the settings, resumption, this rank's chunks, the writer, the merge."""
    if data.num_classes != smoothed.num_classes:
        raise ValueError(f"the data has {data.num_classes} classes but the smoothed model scores {smoothed.num_classes}")
    if overwrite and resume:
        raise ValueError("resume and overwrite exclude each other: resume keeps the records in the file, overwrite removes them")
    rank, world = distributed.rank_and_world()
    done: dict[int, dict[str, Any]] = {}
    lock = None
    if path is not None:
        path = Path(path)
        lock = distributed.RecordsLock(path, rank)  # one writer per records file, for the whole run
        try:
            if overwrite:
                distributed.remove_records(path, rank)  # only now that the lock is ours
            done = _open_records(path, settings, resume, rank, len(data))
        except BaseException:
            lock.release()
            raise
    chunks = [c for k, c in enumerate(distributed.chunk_indices(len(data), inputs_per_call)) if k % world == rank and any(i not in done for i in c)]
    writer = None if path is None else RecordWriter(path if world == 1 else path.with_name(f"{path.name}.part{rank}"))
    try:
        description = f"certify dataset{f' (rank {rank})' if world > 1 else ''}"
        with progress_bar(sum(len(c) for c in chunks), description, "input", progress) as bar:
            for record in certify(chunks, done, bar):
                done[record["index"]] = record
                if writer is not None:
                    writer.write(record)
    finally:
        if writer is not None:
            writer.close()
    try:
        return _gather_records(path, done, rank)
    finally:
        if lock is not None:
            lock.release()


def _run_settings(smoothed: Smoothed, data: LabelledData, **options: Any) -> dict[str, Any]:
    """What makes a run's records: kept beside them, compared on resume (the data by its content and size)."""
    from .models import mechanism_parameters, model_sha256

    mechanism = smoothed.mechanism
    settings = {
        "format": RECORDS_FORMAT, "mechanism": mechanism.label, "scale": mechanism.scale, **options,
        "num_classes": smoothed.num_classes, "model_sha256": model_sha256(smoothed.model),
        "inputs": len(data), "data_sha256": data.fingerprint(),
    }  # fmt: skip
    parameters = mechanism_parameters(mechanism)
    if parameters:  # only where there are any, so that the settings of the built-ins read as before
        settings["parameters"] = parameters
    if best_bounds(mechanism) != offered_bounds(mechanism):  # a comparison bound nothing verified: reported, never the best
        settings["best_of"] = list(best_bounds(mechanism))
    if not mechanism.has_density:  # nothing can verify the divergence: the certificates rest on the plugin's word
        settings["divergence_verifiable"] = False
    if smoothed.grid is not None:  # lattice mode (float mode's settings read as before)
        settings["grid"] = smoothed.grid
        settings["round_off_grid"] = smoothed.round_off_grid
    return settings


def _open_records(path: Path, settings: dict[str, Any], resume: bool, rank: int, inputs: int) -> dict[int, dict[str, Any]]:
    """The records already in ``path`` (a torn last line cut off by rank 0), after checking that this run may add to them."""
    distributed.check_settings(path, settings, resume)  # every rank checks: all raise together
    done: dict[int, dict[str, Any]] = {}
    if rank == 0:
        before = {p: p.stat().st_size for p in [path, *distributed.part_paths(path)] if p.exists()}
        done = distributed.recorded(path, repair=True, inputs=inputs)
        if any(p.stat().st_size != size for p, size in before.items()):
            import warnings

            warnings.warn(f"renyicert: {path}: cut off a torn last line left by an interrupted run", RuntimeWarning, stacklevel=3)
        distributed.write_settings(path, settings)
    distributed.barrier()
    if rank != 0:
        done = distributed.recorded(path, repair=False, inputs=inputs)
    return done


def _certify_chunk(smoothed: Smoothed, data: LabelledData, chunk: range, device: Any, *, n0: int, n: int, alpha: float, seed: int) -> list[dict[str, Any]]:
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
        records.append(_with_best({
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
        }, eligible))  # fmt: skip
    return records


def _gather_records(path: Path | None, done: dict[int, dict[str, Any]], rank: int) -> list[dict[str, Any]]:
    """Every record ordered by index: from memory, or from ``path`` once rank 0 has merged the ranks' parts."""
    if path is None:
        return [done[i] for i in sorted(done)]
    distributed.barrier()
    if rank == 0:
        distributed.merge_parts(path)
    distributed.barrier()
    return read_records(path).records


def certified_accuracy(records: Sequence[dict[str, Any]], radii: Sequence[float] | NDArray[np.float64], bound: str = "renyi") -> NDArray[np.float64]:
    """Fraction of records predicted correctly *and* certified at radius ``>= r``, for each ``r`` in ``radii``.

    At ``r = 0`` this is the smoothed classifier's clean accuracy (abstentions count as wrong).

    Examples
    --------
    >>> from renyicert.workflow.evaluation import certified_accuracy
    >>> records = [{"correct": True, "radius_renyi": 0.5}, {"correct": True, "radius_renyi": 0.1}, {"correct": False, "radius_renyi": 0.0}]
    >>> certified_accuracy(records, [0.0, 0.2, 1.0]).round(3).tolist()
    [0.667, 0.333, 0.0]
    """
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
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
        return {"inputs": self.inputs, "clean_accuracy": self.clean_accuracy, "abstention_rate": self.abstention_rate, "acr": self.average_certified_radius}


def summarize_certified(records: Sequence[dict[str, Any]], bound: str = "renyi") -> CertifiedSummary:
    """Clean accuracy, abstention rate and average certified radius (ACR) of fixed-n records under ``bound``.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import summarize_certified
    >>> records = [{"correct": True, "prediction": 3, "radius_renyi": 0.6}, {"correct": False, "prediction": 2, "radius_renyi": 0.4},
    ...            {"correct": False, "prediction": -1, "radius_renyi": 0.0}]
    >>> summary = summarize_certified(records)
    >>> round(summary.average_certified_radius, 6), round(summary.abstention_rate, 4), round(summary.clean_accuracy, 4)
    (0.2, 0.3333, 0.3333)
    """
    if bound not in BOUNDS:
        raise ValueError(f"bound must be one of {BOUNDS}, got {bound!r}")
    if not records:
        return CertifiedSummary(0, 0.0, 0.0, 0.0)
    key = f"radius_{bound}"
    if any(r.get(key) is None for r in records):
        raise ValueError(f"the records have no {bound!r} radius (the mechanism offers no such bound)")
    correct = np.array([bool(r["correct"]) for r in records])
    radius = np.array([float(r[key]) for r in records])
    abstained = np.array([r.get("prediction") == -1 for r in records])
    return CertifiedSummary(len(records), float(correct.mean()), float(abstained.mean()), float(np.where(correct, radius, 0.0).mean()))


def recertify_records(records: Sequence[dict[str, Any]], mechanism: Any, alpha: float, p2_mode: str = "runner-up") -> list[dict[str, Any]]:
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
    from ..confidence import top_two_bounds
    from ..smoothing import ABSTAIN

    alpha = check_alpha(alpha)
    if not records:
        return []
    counts = []
    selected = []
    failures = []
    for k, record in enumerate(records):
        where = f"record {k + 1} (index {record.get('index') if isinstance(record, dict) else None})"
        if not isinstance(record, dict):
            raise ValueError(f"{where}: a record must be a dict, got a {type(record).__name__}")
        if any(key in record for key in ("certified", "undecided", "samples", "successes")):
            raise ValueError(
                f"{where} is a sequential record (certify_at, certify --radii): its counts were taken at a stopping time that depended on them, "
                "so no fixed-n Clopper-Pearson bound holds for them; certify again (at a new alpha, with new noise)"
            )
        values = record.get("counts")
        if not isinstance(values, list) or not values or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in values):
            raise ValueError(f"{where}: 'counts' must be a list of non-negative integers, got {values!r}")
        choice = record.get("selected", record.get("prediction"))
        if choice == ABSTAIN or not isinstance(choice, int) or isinstance(choice, bool) or not 0 <= choice < len(values):
            raise ValueError(
                f"{where}: the class the selection chose is not recorded (an abstention in records written before 'selected' was kept); "
                f"certify again to recompute it, got selected = {record.get('selected')!r}, prediction = {record.get('prediction')!r}"
            )
        failed = record.get("failed", 0)
        if not isinstance(failed, int) or isinstance(failed, bool) or failed < 0:
            raise ValueError(f"{where}: 'failed' (lattice copies whose draw failed) must be a non-negative integer, got {failed!r}")
        if record.get("n") is not None and sum(values) + failed != record["n"]:
            raise ValueError(f"{where}: its counts sum to {sum(values)}{f' and {failed} failed' if failed else ''}, its n is {record['n']}")
        counts.append(values)
        selected.append(choice)
        failures.append(failed)
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
        recomputed.append(_with_best(dict(
            upgrade_record(record), prediction=prediction, selected=int(top[i]), correct=prediction == record.get("label"),
            radius_renyi=float(radius[i]), **extra[i], p1_lower=float(p1_lower[i]), p2_upper=float(p2_upper[i]),
            order=None if math.isnan(order[i]) else float(order[i]),
        ), eligible))  # fmt: skip
    return recomputed


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


def summarize_sequential(records: Sequence[dict[str, Any]], radii: Sequence[float], where: str = "records") -> SequentialSummary:
    """Certified accuracy at ``radii`` from :func:`certify_dataset_at`'s records, each checked (a ``ValueError`` names ``where`` and the record).

    Examples
    --------
    >>> from renyicert.workflow.evaluation import summarize_sequential
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
        if not isinstance(record, dict) or not isinstance(record.get("certified"), list) or not isinstance(record.get("undecided"), list):
            raise ValueError(f"{at}: a sequential record needs lists 'certified' and 'undecided'; is this a 'renyicert certify --radii' records file?")
        flags = record["certified"] + record["undecided"]
        if len(record["certified"]) != count or len(record["undecided"]) != count or not all(isinstance(f, bool) for f in flags):
            raise ValueError(f"{at}: 'certified' and 'undecided' must hold {count} true/false values (one per radius), got {record['certified']!r} and {record['undecided']!r}")
        numbers = [record.get(key) for key in ("label", "selected", "samples", "n0")]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in numbers) or numbers[2] < 0 or numbers[3] < 0:
            raise ValueError(f"{at}: 'label', 'selected', 'samples' and 'n0' must be integers (the last two >= 0), got {numbers!r}")
        correct[k] = np.array(record["certified"]) & (record["selected"] == record["label"])
        undecided[k] = record["undecided"]
        passes[k] = record["n0"] + record["samples"]
    return SequentialSummary(
        radii=tuple(float(r) for r in radii), certified_accuracy=tuple(float(a) for a in correct.mean(axis=0)) if records else (0.0,) * count,
        undecided=tuple(int(u) for u in undecided.sum(axis=0)), inputs=len(records), forward_passes=float(passes.mean()) if records else 0.0,
    )  # fmt: skip


def radius_grid(records: Sequence[dict[str, Any]], points: int = 6, bound: str = "renyi") -> list[float]:
    """``points`` radii ``0, h, 2h, ...``, the columns of a table: the step ``h`` is rounded down to a multiple of
    half a power of ten, so the last point is at most the largest radius certified correctly under ``bound``.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import radius_grid
    >>> radius_grid([{"correct": True, "radius_renyi": 0.93}, {"correct": False, "radius_renyi": 2.0}])
    [0.0, 0.15, 0.3, 0.45, 0.6, 0.75]
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise ValueError(f"points must be an integer >= 2, got {points!r}")
    largest = max((float(r[f"radius_{bound}"] or 0.0) for r in records if r["correct"]), default=0.0)
    if not largest > 0:
        return [0.0]
    step = largest / (points - 1)
    if not step > 0 or not 10 ** np.floor(np.log10(step)) > 0:  # subnormal radii: no round steps to make, and no NaN columns
        return [0.0, float(largest)]
    magnitude = 10 ** np.floor(np.log10(step))
    step = float(np.floor(step / magnitude * 2) / 2 * magnitude) or float(magnitude)
    return [float(f"{i * step:.6g}") for i in range(points)]  # six significant digits: tiny radii keep theirs


def norm_name(norm: float) -> str:
    """A mechanism's norm as tables and plots name it.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import norm_name
    >>> norm_name(2.0), norm_name(1), norm_name(float("inf"))
    ('l2', 'l1', 'linf')
    """
    return "linf" if math.isinf(norm) else f"l{float(norm):g}"


def bound_label(bound: str, mechanism: str | None = None) -> str:
    """How a plot or table names ``bound`` for ``mechanism``: Teng et al.'s Laplace bound says that it uses p1 only.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import bound_label
    >>> bound_label("tight", "laplace")
    'Teng 2020 (p1 only)'
    """
    if bound == "tight" and mechanism == "laplace":
        return "Teng 2020 (p1 only)"
    if bound == "tight" and mechanism == "gaussian":
        return "tight (Cohen 2019)"
    return BOUND_LABELS.get(bound, bound)


#: The caption of a plot holding Teng et al.'s Laplace curve beside the Rényi one.
TENG_NOTE = (
    "Teng et al.'s Laplace certificate uses the top class's bound p1 only (it takes p2 = 1 - p1); the Rényi bound here also uses the "
    "runner-up's upper bound p2, so it can certify more from the same counts. A lower Teng curve is that, not an error."
)


def curve_radii(records_sets: Sequence[Sequence[dict[str, Any]]], bounds: Sequence[str] = ("renyi",), points: int = 600) -> NDArray[np.float64]:
    """Radii from 0 past the largest radius certified correctly in any of ``records_sets`` under any of ``bounds``: where every curve reaches zero.

    Examples
    --------
    >>> from renyicert.workflow.evaluation import curve_radii
    >>> radii = curve_radii([[{"correct": True, "radius_renyi": 0.5}]])
    >>> float(radii[0]), float(radii[-1]) > 0.5
    (0.0, True)
    """
    largest = max(
        (float(r.get(f"radius_{b}") or 0.0) for records in records_sets for r in records for b in bounds if r.get("correct")), default=0.0
    )  # fmt: skip
    return np.linspace(0.0, largest * 1.08 if largest > 0 else 1.0, points)


def _zero_from(radii: Any, accuracy: Any) -> float:
    """The radius from which a curve stays at zero (its last radius if it never does)."""
    radii, accuracy = np.asarray(radii, dtype=float), np.asarray(accuracy, dtype=float)
    if radii.size == 0:
        return 0.0
    nonzero = np.flatnonzero(accuracy > 0)
    if nonzero.size == 0:
        return float(radii[0])
    last = int(nonzero[-1])
    return float(radii[min(last + 1, radii.size - 1)])


def plot_certified_accuracy(
    curves: dict[str, tuple[Any, Any]],
    path: str | Path,
    *,
    title: str,
    norm: str,
    empirical: dict[str, tuple[Any, Any]] | None = None,
    note: str | None = None,
    dashed: Sequence[str] = (),
) -> Path:
    """Plot certified accuracy against radius, one line per entry of ``curves`` (``label -> (radii, accuracies)``), to a PNG.

    ``empirical`` adds dashed lines with markers (``label -> (eps, robust accuracy)``),
    the ``i``-th in the colour of the ``i``-th curve.  The x axis runs to where
    every curve has reached zero (give radii past the largest certified one:
    :func:`curve_radii`), the legend sits outside the axes so that it never
    covers a curve, and ``note`` is printed under the plot as its caption.
    The curves labelled in ``dashed`` are drawn dashed, on top, so that a curve
    they coincide with (the best bound over the one that gave it) stays visible.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9.0, 4.5), dpi=120)
    right = 0.0
    for i, (label, (radii, accuracy)) in enumerate(curves.items()):
        style = {"linestyle": (0, (4, 3)), "linewidth": 2.0, "zorder": 3} if label in dashed else {"linewidth": 1.8}
        axes.step(radii, accuracy, where="post", label=label, color=f"C{i % 10}", **style)
        right = max(right, _zero_from(radii, accuracy))
    for i, (label, (eps, accuracy)) in enumerate((empirical or {}).items()):  # the i-th empirical line pairs with the i-th curve
        axes.plot(eps, accuracy, linestyle="--", marker="o", markersize=4, label=label, color=f"C{i % 10}")
        right = max(right, float(np.max(eps)) if len(eps) else 0.0)
    axes.set_xlabel(f"radius r ({norm} norm, in the units of the inputs: [0, 1])")
    axes.set_ylabel("accuracy on the test set")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlim(0.0, right * 1.04 if right > 0 else 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    if note:
        import textwrap

        axes.text(0.0, -0.16, "\n".join(textwrap.wrap(note, 120)), transform=axes.transAxes, fontsize=7.5, va="top", ha="left")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path


def write_csv(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write records as CSV (``counts`` joined with spaces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = ["index", "label", "prediction", "correct", *(f"radius_{b}" for b in BOUNDS), "best_bound", "p1_lower", "p2_upper", "order", "counts", "n0", "n", "seconds"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(dict(record, counts=" ".join(str(c) for c in record["counts"])))
    return path
