"""The lattice sampler: ``(k + j) / grid`` for many copies of several grid inputs, ``j`` drawn exactly (see :mod:`renyicert.lattice`).

Element ``e`` of sample ``s`` of an input with key ``k`` draws its atom from the
64-bit integer ``U = (w[2 (e % 2)] << 32) | w[2 (e % 2) + 1]``, ``w`` the four
words of Philox counter ``s * ceil(numel / 2) + e // 2``: a pure function of
``(k, s, e)``, so the atoms do not depend on batch size, packing or device, and
every path (eager torch, ``torch.compile``, the C++ kernel, Triton) draws the
same integers and writes the same floats (``(k + j) / grid`` is one correctly
rounded division of an integer exact in float32). A row any of whose elements
failed is flagged in ``failed`` (int32, one per row).
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from typing import Any

from ..lattice import LatticeNoise
from .native import native_ops
from .philox import randint4x
from .sampler import triton_available

__all__ = ["LatticeSampler", "LatticeWriter", "lattice_rows_reference"]

_BACKENDS = ("auto", "triton", "native", "compiled", "eager")


def lattice_rows_reference(
    k: Any, row_input: Any, row_sample: Any, seeds: Any, ends: Any, start: int, lowest: int, grid: int, dtype: Any
) -> tuple[Any, Any]:
    """``((k[row_input] + j) / grid, failed)`` in plain torch ops: the definition every path reproduces.

    Parameters
    ----------
    k
        int64 ``(inputs, numel)``: the inputs' grid integers.
    row_input, row_sample, seeds
        As in :func:`renyicert._engine.sampler.noisy_rows_reference`.
    ends, start, lowest
        The lattice's thresholds (:class:`renyicert.lattice.LatticeNoise`), ``ends`` an int64 tensor.

    Returns
    -------
    The copies ``(rows, numel)`` in ``dtype`` and int32 ``(rows,)``: 1 where a coordinate failed.
    """
    import torch

    numel = k.shape[1]
    groups = (numel + 1) // 2
    offsets = row_sample[:, None] * groups + torch.arange(groups, device=k.device, dtype=torch.int64)[None, :]
    w0, w1, w2, w3 = randint4x(seeds[row_input][:, None], offsets)
    rows = row_input.shape[0]
    high = torch.stack([w0, w2], dim=-1).reshape(rows, 2 * groups)[:, :numel]
    low = torch.stack([w1, w3], dim=-1).reshape(rows, 2 * groups)[:, :numel]
    value = (high - 2**31) * 2**32 + low  # U - 2^63, exact in int64
    index = torch.searchsorted(ends, value, right=True)
    atoms = ends.shape[0]
    failed = (index >= atoms) | (value < start)
    atom = index.clamp_max(atoms - 1) + lowest
    copies = (k[row_input] + atom).to(dtype) / grid
    return copies, failed.any(dim=1).to(torch.int32)


class LatticeWriter:
    """``writer(row_input, row_sample)`` writes one batch of lattice copies into ``out`` and their failure flags into :attr:`failed`."""

    def __init__(self, write: Any, failed: Any) -> None:
        self._write = write
        #: int32 ``(rows,)``: 1 for a row (copy) with a failed coordinate, after each call.
        self.failed = failed

    def __call__(self, row_input: Any, row_sample: Any) -> None:
        self._write(row_input, row_sample)


class LatticeSampler:
    """Writes lattice copies of grid inputs into a model batch buffer, on the fastest path available.

    Parameters
    ----------
    noise
        The lattice (:func:`renyicert.lattice.lattice_noise`).
    backend
        As for :class:`~renyicert._engine.sampler.FusedSampler`: ``"auto"`` takes Triton on
        CUDA, the C++ kernel for float32 on the CPU, else ``torch.compile``, else eager.

    Examples
    --------
    >>> import torch, renyicert
    >>> from renyicert.lattice import lattice_noise
    >>> from renyicert._engine.lattice_sampler import LatticeSampler
    >>> noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.5), 16)
    >>> x = torch.tensor([[0.0, 0.5, 1.0]])
    >>> out = torch.empty(2, 3)
    >>> writer = LatticeSampler(noise, backend="eager").bind(out, x, torch.tensor([7]))
    >>> writer(torch.tensor([0, 0]), torch.tensor([0, 1]))
    >>> bool(((out * 16) == (out * 16).round()).all()), writer.failed.tolist()
    (True, [0, 0])
    """

    _warned_fallback = False

    def __init__(self, noise: LatticeNoise, backend: str = "auto") -> None:
        if backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {backend!r}")
        self.noise = noise
        self.backend = backend
        self._tables: dict[Any, tuple[Any, Any]] = {}
        self._compiled_failed = False

    def tables(self, device: Any) -> tuple[Any, Any]:
        """The thresholds ``ends`` (int64) and the guide table (int32, ``2^16 + 1`` entries) on ``device``, made once per device."""
        import torch

        key = str(device)
        if key not in self._tables:
            self._tables[key] = (
                torch.from_numpy(self.noise.ends.copy()).to(device),
                # closed by the number of atoms, so that bucket b's candidates are entries b and b + 1 for every b
                torch.cat(
                    [torch.from_numpy(self.noise.guide.copy()), torch.tensor([len(self.noise.ends)], dtype=torch.int32)]
                ).to(device),
            )
        return self._tables[key]

    def path(self, out: Any, x: Any) -> str:
        """The path that writes the copies: ``"triton"``, ``"native"``, ``"compiled"`` or ``"eager"``."""
        import torch

        if self.backend != "auto":
            return self.backend
        if out.device.type == "cuda" and triton_available():
            return "triton"
        if out.device.type == "cpu" and out.dtype == torch.float32 and native_ops() is not None:
            return "native"
        return "compiled"

    def bind(self, out: Any, x: Any, seeds: Any, path: str | None = None) -> LatticeWriter:
        """A :class:`LatticeWriter` into ``out`` (``(rows, *input_shape)``) from the grid inputs ``x`` and their keys.

        ``x`` must be on the grid (:func:`renyicert.lattice.grid_integers` checks it
        where the inputs enter; here they are rounded to their grid integers).
        """
        import torch

        rows = out.shape[0]
        numel = math.prod(x.shape[1:])
        flat_out = out.view(rows, numel)
        k = torch.round(x.reshape(x.shape[0], numel).double() * self.noise.grid).to(torch.int64).contiguous()
        seeds = seeds.contiguous()
        failed = torch.zeros(rows, dtype=torch.int32, device=out.device)
        ends, guide = self.tables(out.device)
        path = self.path(out, x) if path is None else path
        if path == "native":
            return LatticeWriter(self._native_writer(flat_out, failed, k, seeds, ends, guide), failed)
        if path == "triton":
            return LatticeWriter(self._triton_writer(flat_out, failed, k, seeds, ends), failed)
        if path not in ("compiled", "eager"):
            raise ValueError(f"path must be one of {_BACKENDS[1:]}, got {path!r}")
        return LatticeWriter(self._torch_writer(flat_out, failed, k, seeds, ends, compiled=path == "compiled"), failed)

    def _native_writer(self, flat_out: Any, failed: Any, k: Any, seeds: Any, ends: Any, guide: Any) -> Any:
        """The C++ kernel's writer (float32 copies on the CPU)."""
        import torch

        ops = native_ops()
        if flat_out.device.type != "cpu" or flat_out.dtype != torch.float32:
            raise ValueError(
                f"the native lattice path writes float32 copies on the CPU, got {flat_out.dtype} on {flat_out.device}"
            )
        if ops is None:
            raise RuntimeError(
                "the native CPU kernels could not be built (see the warning above); use backend='auto' or 'compiled'"
            )
        lattice_rows = ops.lattice_rows
        noise = self.noise

        def write_native(row_input: Any, row_sample: Any) -> None:
            lattice_rows(
                flat_out,
                failed,
                k,
                row_input,
                row_sample,
                seeds,
                ends,
                guide,
                noise.start,
                noise.lowest,
                float(noise.grid),
            )

        return write_native

    def _torch_writer(self, flat_out: Any, failed: Any, k: Any, seeds: Any, ends: Any, compiled: bool) -> Any:
        """The torch reference's writer: compiled (falling back to eager once, with a warning) or eager."""
        noise = self.noise
        dtype = flat_out.dtype
        reference = _compiled_reference() if compiled and not self._compiled_failed else None

        def write_torch(row_input: Any, row_sample: Any) -> None:
            nonlocal reference
            if reference is not None:
                try:
                    copies, flags = reference(
                        k, row_input, row_sample, seeds, ends, noise.start, noise.lowest, noise.grid, dtype
                    )
                except Exception as error:  # no C++ compiler, an unsupported platform, ...
                    self._compile_failed(error)
                    reference = None
                else:
                    flat_out.copy_(copies)
                    failed.copy_(flags)
                    return
            copies, flags = lattice_rows_reference(
                k, row_input, row_sample, seeds, ends, noise.start, noise.lowest, noise.grid, dtype
            )
            flat_out.copy_(copies)
            failed.copy_(flags)

        return write_torch

    def _compile_failed(self, error: Exception) -> None:
        self._compiled_failed = True
        if not LatticeSampler._warned_fallback:
            warnings.warn(
                f"renyicert: torch.compile of the lattice sampler failed ({type(error).__name__}: {error}); using the eager sampler (same copies, slower)",
                RuntimeWarning,
                stacklevel=4,
            )
            LatticeSampler._warned_fallback = True

    def _triton_writer(self, flat_out: Any, failed: Any, k: Any, seeds: Any, ends: Any) -> Any:
        if flat_out.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
            raise ValueError(
                f"the Triton sampler runs on CUDA tensors (or under TRITON_INTERPRET=1), the inputs are on {flat_out.device}: use sampler 'auto'"
            )
        if not triton_available():
            raise ValueError("the Triton sampler needs the triton package, which is not installed: use sampler 'auto'")
        import triton

        rows, numel = flat_out.shape
        groups = (numel + 1) // 2
        block = min(256, triton.next_power_of_2(groups))
        atoms = int(ends.shape[0])
        steps = max(atoms.bit_length(), 1) + 1
        kernel = _triton_kernel()[(rows, triton.cdiv(groups, block))]
        noise = self.noise

        def write_triton(row_input: Any, row_sample: Any) -> None:
            failed.zero_()
            kernel(
                k,
                flat_out,
                failed,
                row_input,
                row_sample,
                seeds,
                ends,
                numel,
                groups,
                atoms,
                noise.start,
                noise.lowest,
                float(noise.grid),
                STEPS=steps,
                BLOCK=block,
            )

        return write_triton


_COMPILED: list[Any] = []
_BUILD_LOCK = threading.Lock()


def _compiled_reference() -> Any:
    """``torch.compile`` of :func:`lattice_rows_reference`, built once per process."""
    with _BUILD_LOCK:
        if not _COMPILED:
            import torch

            _COMPILED.append(torch.compile(lattice_rows_reference, dynamic=False))
        return _COMPILED[0]


_TRITON_KERNELS: dict[str, Any] = {}


def _triton_kernel() -> Any:
    """The Triton lattice kernel, built on first use, one per ``TRITON_INTERPRET`` setting."""
    key = os.environ.get("TRITON_INTERPRET", "0")
    with _BUILD_LOCK:
        if key in _TRITON_KERNELS:
            return _TRITON_KERNELS[key]
        import triton
        import triton.language as tl

        @triton.jit
        def lattice_rows_kernel(
            k_ptr,
            out_ptr,
            failed_ptr,
            row_input_ptr,
            row_sample_ptr,
            seed_ptr,
            ends_ptr,
            numel,
            groups,
            atoms,
            start,
            lowest,
            grid,
            STEPS: tl.constexpr,
            BLOCK: tl.constexpr,
        ):
            row = tl.program_id(0)
            group = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
            source = tl.load(row_input_ptr + row)
            sample = tl.load(row_sample_ptr + row)
            seed = tl.load(seed_ptr + source)
            i1, i2, i3, i4 = tl.randint4x(seed, sample * groups + group.to(tl.int64))
            k_row = k_ptr + source * numel
            out_row = out_ptr + row.to(tl.int64) * numel
            any_failed = tl.zeros([BLOCK], dtype=tl.int32)
            for lane in tl.static_range(2):  # element 2 g + lane from words (2 lane, 2 lane + 1) of counter g
                if lane == 0:
                    high, low = i1, i2
                else:
                    high, low = i3, i4
                value = (high.to(tl.int64) - 2147483648) * 4294967296 + low.to(tl.int64)  # U - 2^63
                below = tl.zeros([BLOCK], dtype=tl.int64)
                above = tl.zeros([BLOCK], dtype=tl.int64) + atoms
                for _ in tl.static_range(STEPS):  # the number of ends <= value, by bisection
                    active = below < above
                    middle = (below + above) // 2
                    threshold = tl.load(ends_ptr + middle, mask=active, other=0)
                    below = tl.where(active & (threshold <= value), middle + 1, below)
                    above = tl.where(active & (threshold > value), middle, above)
                element = group.to(tl.int64) * 2 + lane
                inside = element < numel
                failed = ((below >= atoms) | (value < start)) & inside
                atom = tl.minimum(below, atoms - 1) + lowest
                integer = tl.load(k_row + element, mask=inside, other=0) + atom
                copy = tl.math.div_rn(integer.to(tl.float32), grid)
                tl.store(out_row + element, copy.to(out_ptr.dtype.element_ty), mask=inside)
                any_failed = tl.maximum(any_failed, failed.to(tl.int32))
            tl.atomic_max(failed_ptr + row, tl.max(any_failed, axis=0))

        _TRITON_KERNELS[key] = lattice_rows_kernel
        return lattice_rows_kernel
