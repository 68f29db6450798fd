"""The run around a data set's certification: one writer, the settings, resumption, this rank's chunks, the merge.

:func:`run_records` holds the records file's lock for the whole run, checks
(or writes) the settings beside it, keeps the records already there on
resume, gives this rank its chunks (:mod:`renyicert.workflow.distributed`),
writes each record as it comes and, at the end, merges the ranks' parts
(:mod:`renyicert.workflow.records`). What is certified is the caller's:
:mod:`renyicert.workflow.certify`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._progress import progress_bar
from ..radii import best_bounds, offered_bounds
from ..smoothing import Smoothed
from . import distributed
from .checkpoints import mechanism_parameters, model_sha256
from .data import LabelledData
from .records import (
    RECORDS_FORMAT,
    RecordWriter,
    check_settings,
    merge_parts,
    part_paths,
    read_records,
    recorded,
    remove_records,
    write_settings,
)

__all__ = ["gather_records", "open_records", "run_records", "run_settings"]


def run_records(
    smoothed: Smoothed,
    data: LabelledData,
    path: str | Path | None,
    settings: dict[str, Any],
    inputs_per_call: int,
    resume: bool,
    progress: bool | None,
    certify: Callable[[list[range], dict[int, Any], Any], Iterator[dict[str, Any]]],
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """The run around a certification: the lock, the settings, resumption, this rank's chunks, the writer, the merge."""
    if data.num_classes != smoothed.num_classes:
        raise ValueError(
            f"the data has {data.num_classes} classes but the smoothed model scores {smoothed.num_classes}"
        )
    if overwrite and resume:
        raise ValueError(
            "resume and overwrite exclude each other: resume keeps the records in the file, overwrite removes them"
        )
    rank, world = distributed.rank_and_world()
    done: dict[int, dict[str, Any]] = {}
    lock = None
    if path is not None:
        path = Path(path)
        lock = distributed.RecordsLock(path, rank)  # one writer per records file, for the whole run
        try:
            if overwrite:
                remove_records(path, rank)  # only now that the lock is ours
            done = open_records(path, settings, resume, rank, len(data))
        except BaseException:
            lock.release()
            raise
    chunks = [
        c
        for k, c in enumerate(distributed.chunk_indices(len(data), inputs_per_call))
        if k % world == rank and any(i not in done for i in c)
    ]
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
        return gather_records(path, done, rank)
    finally:
        if lock is not None:
            lock.release()


def run_settings(smoothed: Smoothed, data: LabelledData, **options: Any) -> dict[str, Any]:
    """What makes a run's records: kept beside them, compared on resume (the data by its content and size)."""
    mechanism = smoothed.mechanism
    settings = {
        "format": RECORDS_FORMAT,
        "mechanism": mechanism.label,
        "scale": mechanism.scale,
        **options,
        "num_classes": smoothed.num_classes,
        "model_sha256": model_sha256(smoothed.model),
        "inputs": len(data),
        "data_sha256": data.fingerprint(),
    }
    parameters = mechanism_parameters(mechanism)
    if parameters:  # only where there are any, so that the settings of the built-ins read as before
        settings["parameters"] = parameters
    if best_bounds(mechanism) != offered_bounds(
        mechanism
    ):  # a comparison bound nothing verified: reported, never the best
        settings["best_of"] = list(best_bounds(mechanism))
    if not mechanism.has_density:  # nothing can verify the divergence: the certificates rest on the plugin's word
        settings["divergence_verifiable"] = False
    if smoothed.grid is not None:  # lattice mode (float mode's settings read as before)
        settings["grid"] = smoothed.grid
        settings["round_off_grid"] = smoothed.round_off_grid
    return settings


def open_records(
    path: Path, settings: dict[str, Any], resume: bool, rank: int, inputs: int
) -> dict[int, dict[str, Any]]:
    """The records already in ``path`` (a torn last line cut off by rank 0), after checking that this run may add to them."""
    check_settings(path, settings, resume)  # every rank checks: all raise together
    done: dict[int, dict[str, Any]] = {}
    if rank == 0:
        before = {p: p.stat().st_size for p in [path, *part_paths(path)] if p.exists()}
        done = recorded(path, repair=True, inputs=inputs)
        if any(p.stat().st_size != size for p, size in before.items()):
            warnings.warn(
                f"renyicert: {path}: cut off a torn last line left by an interrupted run", RuntimeWarning, stacklevel=3
            )
        write_settings(path, settings)
    distributed.barrier()
    if rank != 0:
        done = recorded(path, repair=False, inputs=inputs)
    return done


def gather_records(path: Path | None, done: dict[int, dict[str, Any]], rank: int) -> list[dict[str, Any]]:
    """Every record ordered by index: from memory, or from ``path`` once rank 0 has merged the ranks' parts."""
    if path is None:
        return [done[i] for i in sorted(done)]
    distributed.barrier()
    if rank == 0:
        merge_parts(path)
    distributed.barrier()
    return read_records(path).records
