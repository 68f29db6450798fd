"""C++ kernels for the CPU (the fused sampler and vote counting), built on first use with ``torch.utils.cpp_extension``.

The kernel (``cpp/noisy_rows.cpp``) draws the same Philox-4x32-10 integers as
:mod:`renyicert._engine.philox` and Triton's ``tl.randint4x``. With AVX-512 or AVX2 it
keeps each counter word in a 64-bit lane, so that one ``vpmuludq`` gives a
round's whole 32x32-bit product (the ``torch.compile`` path and GCC's own
vectorisation use the slow 64-bit ``vpmullq``), runs four independent vectors at
once, and turns the words into noise straight from the registers. ``log`` comes
from ATen's SLEEF-backed ``at::vec::Vectorized<float>``, ``sin`` and ``cos`` from
one SLEEF ``sincos``. Without those instruction sets a scalar loop computes the
same numbers. Rows are shared out over torch's intra-op threads, and rows that
draw the same noise (inputs sharing one draw) compute it once. ``count_votes``
does a model batch's ``isfinite`` check, ``argmax`` (a SIMD vector of rows at a
time for float32) and ``index_add_`` in one pass over the logits.

Building needs a C++ compiler and ninja (the same as ``torch.compile`` on the
CPU) and takes a few seconds, once per machine.  The library is built in
renyicert's own folder, ``RENYICERT_NATIVE_DIR`` (default
``$XDG_CACHE_HOME/renyicert/native``, else ``~/.cache/renyicert/native``), one
sub-folder per hash of the source, the compiler flags and the torch version.
One process builds at a time, under an operating-system lock (``filelock``)
that dies with its holder: a build killed half-way (Ctrl-C, the OOM killer, a
cancelled CI job) leaves nothing that blocks the next process, which removes
torch's own ``lock`` file left behind and builds again.  A process that has to
wait for a live build says so on stderr, naming the holder, and waits at most
``RENYICERT_NATIVE_TIMEOUT`` seconds (default 300); then it goes on without the
kernels, with a warning naming the fix.  When the build fails, :func:`native_ops`
returns ``None``, a warning says so once, and the callers use torch ops instead
(the sampler its ``torch.compile`` path).  Set ``RENYICERT_NATIVE=0`` to skip
the kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["BatchPlan", "native_build_directory", "native_build_flags", "native_count_then_fill", "native_ops"]

_SOURCE = Path(__file__).with_name("cpp") / "noisy_rows.cpp"
_LOCK = threading.Lock()
_KERNEL: list[
    Any
] = []  # [] until the first call, then [(torch.ops namespace, C entry point or None)] or [(None, None)]


class BatchPlan(ctypes.Structure):
    """The C ``RenyicertBatchPlan``: a certification phase's buffers for :func:`native_count_then_fill` (see ``noisy_rows.cpp``)."""

    _fields_ = [
        ("out", ctypes.c_void_p),
        ("x", ctypes.c_void_p),
        ("row_input", ctypes.c_void_p),
        ("row_sample", ctypes.c_void_p),
        ("seeds", ctypes.c_void_p),
        ("counts", ctypes.c_void_p),
        ("total_rows", ctypes.c_int64),
        ("rows", ctypes.c_int64),
        ("numel", ctypes.c_int64),
        ("inputs", ctypes.c_int64),
        ("key_count", ctypes.c_int64),
        ("voters", ctypes.c_int64),
        ("classes", ctypes.c_int64),
        ("kind", ctypes.c_int64),
        ("scale", ctypes.c_double),
    ]


#: Compiler flags per ATen CPU capability: the instruction sets ATen builds its own kernels of that level with.
_CAPABILITY_FLAGS = {
    "AVX512": ["-DCPU_CAPABILITY_AVX512", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"],
    "AVX2": ["-DCPU_CAPABILITY_AVX2", "-mavx2", "-mfma", "-mf16c"],
}


def native_build_flags() -> list[str]:
    """Compiler flags: optimisation, OpenMP (torch's threads) and the SIMD level ATen runs at on this CPU.

    The level is ``torch.backends.cpu.get_cpu_capability()``: ``AVX512`` or
    ``AVX2`` build the SIMD kernels, anything else the portable ones. ATen's own
    ``ATEN_CPU_CAPABILITY`` variable (``avx2``, ``default``) lowers it, for this
    kernel as for torch's. Reading it is instant, where asking inductor's
    ``pick_vec_isa`` compiles probe programs (seconds, every process).

    Examples
    --------
    >>> from renyicert._engine.native import native_build_flags
    >>> "-O3" in native_build_flags()
    True
    """
    flags = ["-O3", "-ffp-contract=off", "-fopenmp"]
    try:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
    except Exception:  # a torch without the query: build the portable kernels
        capability = "DEFAULT"
    return flags + _CAPABILITY_FLAGS.get(capability, [])


def native_ops() -> Any:
    """The ``torch.ops.renyicert_native`` namespace, built and loaded on the first call; ``None`` when unavailable.

    ``noisy_rows(out, x, row_input, row_sample, seeds, scale, kind)`` writes
    ``out[j] = x[row_input[j]] + scale * noise`` for float32 ``(rows, numel)``
    ``out`` and ``(inputs, numel)`` ``x``, ``kind`` 0 for normal and 1 for
    Laplace noise (see :mod:`renyicert._engine.sampler`).
    ``count_votes(logits, row_input, counts, valid)`` adds one vote per row
    ``r < valid`` to ``counts[row_input[r] * classes + argmax(logits[r])]`` and
    returns ``False`` (counting nothing) if any of those logits is not finite.

    Examples
    --------
    >>> import torch
    >>> from renyicert._engine.native import native_ops
    >>> ops = native_ops()
    >>> counts = torch.zeros(2 * 3, dtype=torch.int64)
    >>> logits = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]])
    >>> ops is None or (bool(ops.count_votes(logits, torch.tensor([0, 1]), counts, 2)) and counts.tolist() == [0, 1, 0, 1, 0, 0])
    True
    """
    return _loaded()[0]


def native_count_then_fill() -> Any:
    """The C entry point ``renyicert_count_then_fill(plan, logits, counted, valid, next) -> int`` (a ctypes function); ``None`` when unavailable.

    One call per model batch counts that batch's votes and writes the next
    batch's noisy copies, with what a phase's batches share in a :class:`BatchPlan`.
    It exists for speed: right after a model's forward pass, a ``torch.ops``
    call pays for its dispatch with caches the model has just evicted, and one
    plain C call per batch instead of two op calls saves about 1.5% of a small
    MLP's forward time. :class:`renyicert._engine.votes.NativeBatchStep` is its one caller,
    and checks the tensors behind the pointers.
    """
    return _loaded()[1]


def _loaded() -> tuple[Any, Any]:
    with _LOCK:
        if not _KERNEL:
            _KERNEL.append(_build())
        return _KERNEL[0]


def _c_entry_point(path: str) -> Any:
    function = ctypes.CDLL(path).renyicert_count_then_fill  # the library torch has loaded: the same handle
    function.argtypes = [ctypes.POINTER(BatchPlan), ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function


#: Seconds a process waits for another's build of the kernels by default (``RENYICERT_NATIVE_TIMEOUT``).
DEFAULT_BUILD_TIMEOUT = 300.0
#: Seconds of waiting for another process's build before saying so on stderr.
_QUIET_WAIT = 1.0


def native_build_directory() -> Path:
    """The folder the kernels are built in: ``RENYICERT_NATIVE_DIR``, else ``renyicert/native`` under ``XDG_CACHE_HOME`` (default ``~/.cache``).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> from renyicert._engine.native import native_build_directory
    >>> with mock.patch.dict(os.environ, {"RENYICERT_NATIVE_DIR": "/srv/kernels"}):
    ...     str(native_build_directory())
    '/srv/kernels'
    >>> with mock.patch.dict(os.environ, {"RENYICERT_NATIVE_DIR": "", "XDG_CACHE_HOME": "/var/cache"}):
    ...     str(native_build_directory())
    '/var/cache/renyicert/native'
    """
    chosen = os.environ.get("RENYICERT_NATIVE_DIR")
    if chosen:
        return Path(chosen).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "renyicert" / "native"


def _build_timeout() -> float:
    """``RENYICERT_NATIVE_TIMEOUT`` in seconds (a number >= 0), else :data:`DEFAULT_BUILD_TIMEOUT`; a ``ValueError`` names a bad value."""
    text = os.environ.get("RENYICERT_NATIVE_TIMEOUT")
    if text is None or not text.strip():
        return DEFAULT_BUILD_TIMEOUT
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds >= 0 or seconds == float("inf"):
        raise ValueError(f"RENYICERT_NATIVE_TIMEOUT must be a number of seconds >= 0, got {text!r}")
    return seconds


class BuildLockTimeout(RuntimeError):
    """Another live process held the build lock past the deadline."""


def _locked_build(folder: Path, build: Any) -> Any:
    """``build()`` while holding ``folder``'s build lock: one builder at a time, a dead holder never blocks, a live one at most the deadline.

    The lock is ``filelock``'s (``flock`` on POSIX), which the operating system
    drops when its holder dies, so a killed build leaves nothing to wait for.
    torch's own ``lock`` file in ``folder`` (a plain file that torch never
    checks for a dead owner) can only be a leftover of such a build while we
    hold ours, so it is removed before building.  The holder's pid is kept in
    ``<folder>.lock.holder`` for the waiting message.
    """
    from filelock import FileLock, Timeout

    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder) + ".lock")
    holder = Path(str(folder) + ".lock.holder")
    deadline = _build_timeout()
    started = time.monotonic()
    try:
        lock.acquire(timeout=min(_QUIET_WAIT, deadline))
    except Timeout:
        who = holder.read_text().strip() if holder.exists() else "holder unknown"
        print(
            f"renyicert: another process ({who}) is building the native CPU kernels in {folder}; waiting at most {deadline:g} s "
            "(RENYICERT_NATIVE_TIMEOUT; RENYICERT_NATIVE=0 skips the kernels)",
            file=sys.stderr,
            flush=True,
        )
        try:
            lock.acquire(timeout=max(0.0, deadline - (time.monotonic() - started)))
        except Timeout:
            raise BuildLockTimeout(
                f"another process ({who}) held the build lock {str(folder)}.lock for more than {deadline:g} s; if no such process is building, "
                f"remove {folder}, or set RENYICERT_NATIVE=0 to skip the kernels (RENYICERT_NATIVE_TIMEOUT sets the wait)"
            ) from None
    try:
        holder.write_text(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "lock").unlink(
            missing_ok=True
        )  # torch's baton, left by a build that was killed: we hold the real lock
        return build()
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def _library_name(flags: list[str]) -> str:
    """The library's name: a hash of the source, the compiler flags and the torch version (its build folder's name too)."""
    import torch

    digest = hashlib.sha256("\0".join([_SOURCE.read_text(), *flags, torch.__version__]).encode()).hexdigest()[:12]
    return f"renyicert_native_{digest}"


def _build() -> tuple[Any, Any]:
    if os.environ.get("RENYICERT_NATIVE", "1") == "0":
        return None, None
    try:
        import torch
        from torch.utils.cpp_extension import load

        flags = native_build_flags()
        name = _library_name(flags)
        folder = native_build_directory() / name

        def build() -> None:
            load(
                name=name,
                sources=[str(_SOURCE)],
                extra_cflags=flags,
                extra_ldflags=["-fopenmp"],
                build_directory=str(folder),
                is_python_module=False,
                verbose=False,
            )

        _locked_build(folder, build)
        path = next((path for path in torch.ops.loaded_libraries if Path(path).name == f"{name}.so"), None)
        return torch.ops.renyicert_native, None if path is None else _c_entry_point(path)
    except BuildLockTimeout as error:
        warnings.warn(
            f"renyicert: not using the native CPU kernels: {error}; using torch ops and the torch.compile sampler (the same noise and counts, slower)",
            RuntimeWarning,
            stacklevel=4,
        )
        return None, None
    except Exception as error:  # no compiler or ninja, an unsupported platform, a read-only cache, ...
        warnings.warn(
            f"renyicert: could not build the native CPU kernels ({type(error).__name__}: {error}); using torch ops and the torch.compile sampler (the same noise and counts, slower)",
            RuntimeWarning,
            stacklevel=4,
        )
        return None, None
