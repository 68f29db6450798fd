"""``torch.distributed`` for dataset-scale certification: ranks, the barrier, fixed chunks, the records lock.

Inputs are grouped into fixed *chunks* of consecutive indices (``chunk k`` =
indices ``k * size ... (k + 1) * size - 1``); chunk ``k`` is certified by rank
``k % world_size``, and always as one batch.  Because input ``i`` is certified
with seed ``seed + i`` and a chunk's model batches are the same whoever runs
it, the records do not depend on the number of ranks.  The per-rank part
files, the settings and the merge are the records file's
(:mod:`renyicert.workflow.records`); this module imports nothing of the workflow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["RecordsLock", "barrier", "chunk_indices", "init_from_environment", "join_torchrun", "rank_and_world"]


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


def join_torchrun() -> tuple[int, int]:
    """:func:`init_from_environment`, its group destroyed at exit; ``(rank, world_size)`` (``(0, 1)`` outside ``torchrun``)."""
    if init_from_environment():
        import atexit

        import torch.distributed as dist

        atexit.register(dist.destroy_process_group)
    return rank_and_world()


def chunk_indices(total: int, size: int) -> list[range]:
    """The fixed chunks of ``range(total)``: consecutive runs of ``size`` indices."""
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


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
                self._holder.write_text(
                    f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                )
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
