"""Dataset-scale certification on ``torch.distributed``: sharding, per-rank part files, settings, the merge.

Inputs are grouped into fixed *chunks* of consecutive indices (``chunk k`` =
indices ``k * size ... (k + 1) * size - 1``); chunk ``k`` is certified by rank
``k % world_size``, and always as one batch.  Because input ``i`` is certified
with seed ``seed + i`` and a chunk's model batches are the same whoever runs
it, the records do not depend on the number of ranks.

Each rank appends its records to its own part file (``results.jsonl.part<rank>``)
with one ``write`` + ``fsync`` per record; at the end rank 0 merges the parts
and the results file into one file ordered by index (written to a temporary
file, fsynced, then renamed over the old one, so a crash during the merge
loses nothing).  A chunk is done only when all its records are there: after a
crash its missing records are certified again with the whole chunk.  The run's
settings are kept in ``results.jsonl.settings.json``; a run refuses to resume
into a file made with other settings and names the setting that differs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._json import dumps
from .records import atomic_write, read_records

__all__ = ["RecordsLock", "barrier", "chunk_indices", "init_from_environment", "merge_parts", "part_paths", "rank_and_world", "remove_records", "settings_path"]


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised default process group, or ``(0, 1)``."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    """Wait for every rank (nothing to do without a process group)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def init_from_environment() -> bool:
    """Join the process group ``torchrun`` describes (``WORLD_SIZE`` > 1): gloo on the CPU, nccl on CUDA.

    Also gives each rank its share of the CPU threads.  Returns whether a group was initialised.
    """
    import torch
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or dist.is_initialized():
        return False
    local = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", str(world))))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def chunk_indices(total: int, size: int) -> list[range]:
    """The fixed chunks of ``range(total)``: consecutive runs of ``size`` indices."""
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def part_paths(path: Path) -> list[Path]:
    """The per-rank part files of ``path`` that exist."""
    return sorted(path.parent.glob(path.name + ".part*"))


def settings_path(path: Path) -> Path:
    """Where the settings of the records in ``path`` are kept."""
    return path.with_name(path.name + ".settings.json")


def check_settings(path: Path, settings: dict[str, Any], resume: bool) -> None:
    """Refuse a fresh run into existing records, or a resume with other settings (naming the first that differs)."""
    existing = path.exists() and path.stat().st_size > 0 or bool(part_paths(path))
    if not resume:
        if existing:
            raise ValueError(f"{str(path)!r} already holds records; pass resume=True (CLI: --resume) to continue it, or choose a new file")
        return  # a fresh run: a settings file left without records is simply replaced
    stored = settings_path(path)
    if not stored.exists():
        if existing:
            raise ValueError(f"{str(path)!r} holds records but no {stored.name}: cannot tell which settings made them")
        return
    try:
        old = json.loads(stored.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot resume {str(path)!r}: {stored.name} is not JSON ({error})") from None
    if not isinstance(old, dict):
        raise ValueError(f"cannot resume {str(path)!r}: {stored.name} holds a JSON {type(old).__name__}, not the settings object")
    if "format" in settings and old.get("format", 1) != settings["format"]:
        raise ValueError(
            f"cannot resume {str(path)!r}: its records are in format {old.get('format', 1)} (renyicert 0.1, where 'alpha' in a record "
            f"was the Rényi order), this version writes format {settings['format']}; certify into a new file (report reads both formats)"
        )
    for key in [*settings, *(k for k in old if k not in settings)]:
        if old.get(key) != settings.get(key):
            raise ValueError(f"cannot resume {str(path)!r}: it was made with {key} = {old.get(key)!r}, this run has {key} = {settings.get(key)!r}")


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Store ``settings`` beside ``path`` (atomically)."""
    _atomic_write(settings_path(path), dumps(settings, indent=2, sort_keys=True) + "\n")


def _atomic_write(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically (see :func:`renyicert.workflow.records.atomic_write`)."""
    atomic_write(path, lambda target: target.write_text(text))


def recorded(path: Path, repair: bool, inputs: int | None = None) -> dict[int, dict[str, Any]]:
    """Every record in ``path`` and its part files, by index (the first of duplicates); torn last lines cut off with ``repair``.

    A record without an integer ``"index"`` in ``[0, inputs)`` is a ``ValueError`` naming the file and the line.
    """
    done: dict[int, dict[str, Any]] = {}
    for source in [path, *part_paths(path)]:
        for line, record in enumerate(read_records(source, repair=repair).records, start=1):
            index = record.get("index") if isinstance(record, dict) else None
            if isinstance(index, bool) or not isinstance(index, int) or index < 0 or (inputs is not None and index >= inputs):
                expected = f"an integer in [0, {inputs})" if inputs is not None else "an integer >= 0"
                raise ValueError(f"{str(source)!r}, record {line}: 'index' must be {expected}, got {index!r}; this file does not hold this run's records")
            done.setdefault(index, record)
    return done


def remove_records(path: Path, rank: int) -> None:
    """Remove ``path``'s records, part files and settings (rank 0, holding the records lock), then wait for every rank."""
    if rank == 0:
        for stale in [path, *part_paths(path), settings_path(path)]:
            try:
                stale.unlink(missing_ok=True)
            except OSError as error:
                raise OSError(error.errno, f"cannot remove {str(stale)!r} to overwrite it: {error.strerror or error}") from None
    barrier()


def merge_parts(path: Path) -> list[dict[str, Any]]:
    """Merge ``path`` and its part files into ``path``, ordered by index, one record per index; remove the parts."""
    done = recorded(path, repair=True)
    records = [done[i] for i in sorted(done)]
    parts = part_paths(path)
    current = read_records(path).records if path.exists() else []
    if parts or [r["index"] for r in current] != sorted(done):
        _atomic_write(path, "".join(dumps(r, sort_keys=True) + "\n" for r in records))
        for part in parts:
            part.unlink()
    return records


class RecordsLock:
    """An exclusive lock on a records file for one run (``filelock``; under torchrun rank 0 holds it).

    A second run into the same file is refused at once, with a message naming the
    file and the process that holds it; every rank of a distributed run raises
    together.  The lock is ``<records>.lock``; the holder is described in
    ``<records>.lock.holder`` while it is held.
    """

    def __init__(self, path: Path, rank: int) -> None:
        import socket
        import time

        from filelock import FileLock, Timeout

        self._lock: Any = None
        self._holder = path.with_name(path.name + ".lock.holder")
        failure: str | None = None
        if rank == 0:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = FileLock(str(path.with_name(path.name + ".lock")), timeout=0)
                lock.acquire()
            except Timeout:
                holder = self._holder.read_text().strip() if self._holder.exists() else "another process"
                failure = f"{str(path)!r} is being written by another run ({holder}); wait for it to finish, or certify into another file"
            except OSError as error:
                failure = f"cannot lock {str(path)!r} for writing: {error.strerror or error} ({error.filename or path})"
            else:
                self._lock = lock
                self._holder.write_text(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        failure = _from_rank_zero(failure)
        if failure is not None:
            raise ValueError(failure)

    def release(self) -> None:
        """Let the next run in (idempotent)."""
        if self._lock is not None:
            self._holder.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None


def _from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (itself without a process group)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
