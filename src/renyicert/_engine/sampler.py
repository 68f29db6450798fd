"""The fused batched sampler: ``x + noise`` for many copies of several inputs, written once into a buffer.

Row ``j`` of the output is input ``row_input[j]`` plus noise number
``row_sample[j]`` of that input.  The noise is counter-based (Philox-4x32-10):
element ``e`` of sample ``s`` of an input with seed ``k`` is a pure function of
``(k, s * G + e // 4, e % 4)`` with ``G = ceil(numel / 4)``, so it does not
depend on how rows are packed into batches, on the batch size, or on the
device: a Triton kernel on CUDA, a C++ kernel on the CPU
(:mod:`renyicert._engine.native`), a ``torch.compile``-d loop and the eager torch
fallback all draw the same numbers (up to float32 rounding of ``log``/``cos``).

Noise kinds (a mechanism's ``fused_noise`` attribute):

``"normal"``
    ``scale * z``, z from Box-Muller on two 32-bit draws (four normals per
    Philox call), ``u1 = (i + 1/2) 2^-32`` so no draw is infinite.
``"laplace"``
    ``scale * sign * E`` with the sign from one bit and ``E = -log((i' + 1/2) 2^-31)``
    an exponential from the other 31 bits: symmetric tails, nothing infinite.
``"uniform"``
    the mechanism's own ``_transform_uniform(u)`` of ``u = (i + 1/2) 2^-32`` (CPU/torch paths only).

A mechanism with none of these falls back to its own ``sample()``.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from collections.abc import Callable
from typing import Any

from .native import native_count_then_fill, native_ops
from .noise_checks import check_transform
from .philox import randint4x
from .votes import NativeBatchStep

__all__ = ["FusedSampler", "fused_noise_kind", "noisy_rows_reference"]

_TWO_PI = 6.283185307179586
_2_POW_M32 = 2.0**-32
_2_POW_M31 = 2.0**-31


def fused_noise_kind(mechanism: Any) -> str | None:
    """``"normal"``, ``"laplace"`` or ``"uniform"`` when ``mechanism`` can be sampled elementwise; else ``None``."""
    kind = getattr(mechanism, "fused_noise", None)
    if kind in ("normal", "laplace"):
        return kind
    if mechanism.has_transform_uniform:
        return "uniform"
    return None


def _bits_to_noise(
    kind: str, bits: tuple[Any, Any, Any, Any], scale: float, transform: Callable[[Any], Any] | None
) -> Any:
    """Four draws per counter -> four noise values (last axis), float32."""
    import torch

    i1, i2, i3, i4 = bits
    if kind == "normal":
        out = []
        for a, b in ((i1, i2), (i3, i4)):
            u1 = (a.to(torch.float32) + 0.5) * _2_POW_M32
            theta = b.to(torch.float32) * (_TWO_PI * _2_POW_M32)
            r = torch.sqrt(-2.0 * torch.log(u1))
            out += [r * torch.cos(theta), r * torch.sin(theta)]
        return torch.stack(out, dim=-1) * scale
    if kind == "laplace":
        lanes = []
        for a in bits:
            magnitude = -torch.log(((a >> 1).to(torch.float32) + 0.5) * _2_POW_M31)
            lanes.append(torch.where((a & 1) == 1, -magnitude, magnitude))
        return torch.stack(lanes, dim=-1) * scale
    assert transform is not None
    return torch.stack([transform((a.to(torch.float32) + 0.5) * _2_POW_M32) for a in bits], dim=-1)


def noisy_rows_reference(
    x: Any,
    row_input: Any,
    row_sample: Any,
    seeds: Any,
    kind: str,
    scale: float,
    transform: Callable[[Any], Any] | None = None,
) -> Any:
    """``x[row_input] + noise`` in plain torch ops (the definition every backend reproduces).

    Parameters
    ----------
    x
        ``(inputs, numel)`` inputs, flattened.
    row_input, row_sample
        int64 ``(rows,)``: which input and which of its noise samples each row is.
    seeds
        int64 ``(inputs,)`` non-negative Philox keys, one per input.
    """
    import torch

    numel = x.shape[1]
    groups = (numel + 3) // 4
    offsets = row_sample[:, None] * groups + torch.arange(groups, device=x.device, dtype=torch.int64)[None, :]
    bits = randint4x(seeds[row_input][:, None], offsets)
    noise = _bits_to_noise(kind, bits, scale, transform).reshape(row_input.shape[0], 4 * groups)[:, :numel]
    return x[row_input] + noise.to(x.dtype)


def _write_rows(
    out: Any, x: Any, row_input: Any, row_sample: Any, seeds: Any, kind: str, scale: float, transform: Any
) -> None:
    out.copy_(noisy_rows_reference(x, row_input, row_sample, seeds, kind, scale, transform))


# ------------------------------------------------------------------ Triton (CUDA)
_TRITON_KERNELS: dict[str, Any] = {}
_BUILD_LOCK = threading.Lock()


def _triton_kernel() -> Any:
    """The Triton kernel, built on first use (after ``TRITON_INTERPRET`` is read), one per interpreter setting."""
    key = os.environ.get("TRITON_INTERPRET", "0")
    with _BUILD_LOCK:
        if key in _TRITON_KERNELS:
            return _TRITON_KERNELS[key]
        import triton
        import triton.language as tl

        @triton.jit
        def noisy_rows_kernel(
            x_ptr,
            out_ptr,
            row_input_ptr,
            row_sample_ptr,
            seed_ptr,
            numel,
            groups,
            scale,
            KIND: tl.constexpr,
            BLOCK: tl.constexpr,
        ):
            row = tl.program_id(0)
            group = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
            source = tl.load(row_input_ptr + row)
            sample = tl.load(row_sample_ptr + row)
            seed = tl.load(seed_ptr + source)
            offset = sample * groups + group.to(tl.int64)
            i1, i2, i3, i4 = tl.randint4x(seed, offset)
            if KIND == 0:  # normal: Box-Muller on (i1, i2) and (i3, i4)
                r12 = tl.sqrt(-2.0 * tl.log((i1.to(tl.float32) + 0.5) * 2.3283064365386963e-10))
                t12 = i2.to(tl.float32) * (6.283185307179586 * 2.3283064365386963e-10)
                r34 = tl.sqrt(-2.0 * tl.log((i3.to(tl.float32) + 0.5) * 2.3283064365386963e-10))
                t34 = i4.to(tl.float32) * (6.283185307179586 * 2.3283064365386963e-10)
                n0 = r12 * tl.cos(t12)
                n1 = r12 * tl.sin(t12)
                n2 = r34 * tl.cos(t34)
                n3 = r34 * tl.sin(t34)
            else:  # laplace: sign bit and a 31-bit exponential
                m1 = -tl.log(((i1 >> 1).to(tl.float32) + 0.5) * 4.656612873077393e-10)
                m2 = -tl.log(((i2 >> 1).to(tl.float32) + 0.5) * 4.656612873077393e-10)
                m3 = -tl.log(((i3 >> 1).to(tl.float32) + 0.5) * 4.656612873077393e-10)
                m4 = -tl.log(((i4 >> 1).to(tl.float32) + 0.5) * 4.656612873077393e-10)
                n0 = tl.where((i1 & 1) == 1, -m1, m1)
                n1 = tl.where((i2 & 1) == 1, -m2, m2)
                n2 = tl.where((i3 & 1) == 1, -m3, m3)
                n3 = tl.where((i4 & 1) == 1, -m4, m4)
            element = group.to(tl.int64) * 4
            x_row = x_ptr + source * numel
            out_row = out_ptr + row.to(tl.int64) * numel
            e0 = element
            m = e0 < numel
            tl.store(
                out_row + e0,
                (tl.load(x_row + e0, mask=m).to(tl.float32) + scale * n0).to(out_ptr.dtype.element_ty),
                mask=m,
            )
            e1 = element + 1
            m = e1 < numel
            tl.store(
                out_row + e1,
                (tl.load(x_row + e1, mask=m).to(tl.float32) + scale * n1).to(out_ptr.dtype.element_ty),
                mask=m,
            )
            e2 = element + 2
            m = e2 < numel
            tl.store(
                out_row + e2,
                (tl.load(x_row + e2, mask=m).to(tl.float32) + scale * n2).to(out_ptr.dtype.element_ty),
                mask=m,
            )
            e3 = element + 3
            m = e3 < numel
            tl.store(
                out_row + e3,
                (tl.load(x_row + e3, mask=m).to(tl.float32) + scale * n3).to(out_ptr.dtype.element_ty),
                mask=m,
            )

        _TRITON_KERNELS[key] = noisy_rows_kernel
        return noisy_rows_kernel


def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


class FusedSampler:
    """Writes ``x[row_input] + noise`` into a model batch buffer, choosing the fastest available path.

    Parameters
    ----------
    mechanism
        The noise; its ``fused_noise`` kind (or ``_transform_uniform``) decides the draw.
    backend
        ``"auto"``: Triton on CUDA; on the CPU the C++ kernel for float32 normal and
        Laplace noise, else ``torch.compile``, else eager, each step taken (and
        said once) when the one before cannot be built. Or one of ``"triton"``,
        ``"native"``, ``"compiled"``, ``"eager"``.

    Examples
    --------
    >>> import torch, renyicert
    >>> from renyicert._engine.sampler import FusedSampler
    >>> sampler = FusedSampler(renyicert.get_mechanism("gaussian", scale=0.5), backend="eager")
    >>> x = torch.zeros(2, 3)
    >>> out = torch.empty(4, 3)
    >>> rows = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 1])
    >>> sampler.write(out, x, *rows, seeds=torch.tensor([7, 8]))
    >>> bool(torch.equal(out[0], FusedSampler(renyicert.get_mechanism("gaussian", scale=0.5), backend="eager").noisy(x[:1], torch.tensor([0]), torch.tensor([0]), torch.tensor([7]))[0]))
    True
    """

    _warned_fallback = False

    def __init__(self, mechanism: Any, backend: str = "auto") -> None:
        if backend not in ("auto", "triton", "native", "compiled", "eager"):
            raise ValueError(f"backend must be 'auto', 'triton', 'native', 'compiled' or 'eager', got {backend!r}")
        self.mechanism = mechanism
        self.kind = fused_noise_kind(mechanism)
        if self.kind is None:
            raise ValueError(
                f"{type(mechanism).__name__} has no elementwise noise (fused_noise or _transform_uniform); use its sample()"
            )
        self.backend = backend
        self._compiled: dict[tuple[Any, ...], Any] = {}
        self._transform = (
            mechanism._eval_transform_uniform if self.kind == "uniform" and mechanism.has_transform_uniform else None
        )
        if self._transform is not None:
            check_transform(mechanism)

    def path(self, out: Any, x: Any) -> str:
        """The path that writes ``x``'s copies into ``out``: ``"triton"``, ``"native"``, ``"compiled"`` or ``"eager"`` (the one place it is decided)."""
        if self.backend != "auto":
            return self.backend
        if out.device.type == "cuda" and self.kind != "uniform" and triton_available():
            return "triton"
        if out.device.type == "cpu" and self._native_fits(out, x) and native_ops() is not None:
            return "native"
        return "compiled"

    def _native_fits(self, out: Any, x: Any) -> bool:
        import torch

        return self.kind in ("normal", "laplace") and out.dtype == torch.float32 and x.dtype == torch.float32

    def write(self, out: Any, x: Any, row_input: Any, row_sample: Any, seeds: Any) -> None:
        """Fill ``out`` (``(rows, *input_shape)``) with ``x[row_input] + noise``; ``x`` is ``(inputs, *input_shape)``."""
        self.bind(out, x, seeds)(row_input.contiguous(), row_sample.contiguous())

    def bind(self, out: Any, x: Any, seeds: Any, path: str | None = None) -> Callable[[Any, Any], None]:
        """A writer into one buffer from fixed inputs and keys: ``writer(row_input, row_sample)`` does what :meth:`write` does.

        The path, the flat views and the checks are settled once, so a loop over
        many batches into the same buffer pays only for the draw. ``row_input`` and
        ``row_sample`` must be contiguous int64 tensors, one entry per row of ``out``.
        ``path`` is :meth:`path`'s answer, when the caller has it already.
        """
        rows = out.shape[0]
        numel = math.prod(x.shape[1:])
        flat_out = out.view(rows, numel)
        flat_x = x.reshape(x.shape[0], numel).contiguous()
        seeds = seeds.contiguous()
        scale = float(self.mechanism.scale)
        path = self.path(out, x) if path is None else path
        kind = 0 if self.kind == "normal" else 1
        if path == "native":
            if out.device.type != "cpu" or not self._native_fits(out, x):
                raise ValueError(
                    f"the native path writes float32 normal or Laplace noise on the CPU, got {self.kind!r} noise in {out.dtype} on {out.device}"
                )
            ops = native_ops()
            if ops is None:
                raise RuntimeError(
                    "the native CPU kernels could not be built (see the warning above); use backend='auto' or 'compiled'"
                )
            noisy_rows = ops.noisy_rows
            return lambda row_input, row_sample: noisy_rows(flat_out, flat_x, row_input, row_sample, seeds, scale, kind)
        if path == "triton":
            if self.kind == "uniform":
                raise ValueError("the Triton path supports the 'normal' and 'laplace' kinds only")
            if out.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
                raise ValueError(
                    f"the Triton sampler runs on CUDA tensors (or under TRITON_INTERPRET=1), the inputs are on {out.device}: use sampler 'auto'"
                )
            if not triton_available():
                raise ValueError(
                    "the Triton sampler needs the triton package, which is not installed: use sampler 'auto'"
                )
            import triton

            groups = (numel + 3) // 4
            block = min(256, triton.next_power_of_2(groups))
            kernel = _triton_kernel()[(rows, triton.cdiv(groups, block))]
            return lambda row_input, row_sample: kernel(
                flat_x, flat_out, row_input, row_sample, seeds, numel, groups, scale, KIND=kind, BLOCK=block
            )

        def write_torch(row_input: Any, row_sample: Any) -> None:
            if path == "compiled" and self._write_compiled(flat_out, flat_x, row_input, row_sample, seeds):
                return
            _write_rows(flat_out, flat_x, row_input, row_sample, seeds, self.kind, scale, self._transform)

        return write_torch

    def native_step(
        self, out: Any, x: Any, seeds: Any, row_input: Any, row_sample: Any, counts: Any, classes: int
    ) -> Any:
        """A :class:`renyicert._engine.votes.NativeBatchStep` for a phase's batches into ``out`` on the native path; ``None`` when it cannot be built.

        ``row_input``/``row_sample`` hold the phase's rows in whole batches of
        ``out``'s size; the step's votes go to ``counts`` (``voters * classes``).
        """
        if out.device.type != "cpu" or not self._native_fits(out, x):
            return None
        function = native_count_then_fill()
        if function is None:
            return None
        kind = 0 if self.kind == "normal" else 1
        return NativeBatchStep(
            function, out, x, seeds, row_input, row_sample, counts, classes, float(self.mechanism.scale), kind
        )

    def noisy(self, x: Any, row_input: Any, row_sample: Any, seeds: Any) -> Any:
        """``x[row_input] + noise`` as a new tensor (the same numbers :meth:`write` writes)."""
        import torch

        out = torch.empty((row_input.shape[0], *x.shape[1:]), dtype=x.dtype, device=x.device)
        self.write(out, x, row_input, row_sample, seeds)
        return out

    def _write_compiled(self, out: Any, x: Any, row_input: Any, row_sample: Any, seeds: Any) -> bool:
        """Write with the compiled writer for these arguments' shapes; ``False`` when it is unavailable (then the caller writes eagerly).

        All samplers share one code object, so dynamo caches their graphs together.
        The scale is passed as a tensor (not a guarded constant), so a new scale reuses
        the graph. The first call for a new key compiles, with up to
        :data:`_RECOMPILE_LIMIT` recompilations allowed for it. Torch's global setting
        is left alone, and later calls with the same key hit the cache. The key holds
        what dynamo guards on: shapes, dtypes, the device and which tensors are
        inference tensors.
        """
        import torch

        arguments = (out, x, row_input, row_sample, seeds)
        key = (
            tuple(out.shape),
            tuple(x.shape),
            out.dtype,
            x.dtype,
            out.device.type,
            tuple(t.is_inference() for t in arguments),
        )
        function = self._compiled.get(key, _NOT_COMPILED)
        if function is None:
            return False
        try:
            if function is _NOT_COMPILED:
                scale = torch.tensor(float(self.mechanism.scale), dtype=torch.float32, device=out.device)
                compiled_rows = _compiled_writer(self.kind, self._transform)

                def function(o: Any, xs: Any, ri: Any, rs: Any, sd: Any) -> None:
                    compiled_rows(o, xs, ri, rs, sd, scale)

                with torch._dynamo.config.patch(
                    recompile_limit=_RECOMPILE_LIMIT, accumulated_recompile_limit=4 * _RECOMPILE_LIMIT
                ):
                    function(*arguments)
                self._compiled[key] = function
            else:
                function(*arguments)
        except Exception as error:  # no C++ compiler, unsupported platform, a recompilation that failed, ...
            self._compile_failed(error, key)
            return False
        return True

    def _compile_failed(self, error: Exception, key: tuple[Any, ...]) -> None:
        """Use the eager path for ``key`` from now on, and say so once per process."""
        if not FusedSampler._warned_fallback:
            warnings.warn(
                f"renyicert: torch.compile of the fused sampler failed ({type(error).__name__}: {error}); "
                "using the eager sampler (same noise, slower)",
                RuntimeWarning,
                stacklevel=4,
            )
            FusedSampler._warned_fallback = True
        self._compiled[key] = None


_NOT_COMPILED = object()
#: Recompilations allowed for the sampler's one code object (each new buffer shape is one).
_RECOMPILE_LIMIT = 256
_COMPILED_WRITERS: dict[tuple[str, Any], Any] = {}


def _compiled_writer(kind: str, transform: Callable[[Any], Any] | None) -> Any:
    """``torch.compile`` of the row writer for one noise kind (and transform), built once per process."""
    key = (kind, transform)
    with _BUILD_LOCK:
        if key not in _COMPILED_WRITERS:
            import torch

            def write_rows(o: Any, xs: Any, ri: Any, rs: Any, sd: Any, scale: Any) -> None:
                _write_rows(o, xs, ri, rs, sd, kind, scale, transform)

            _COMPILED_WRITERS[key] = torch.compile(write_rows, dynamic=False, fullgraph=True)
        return _COMPILED_WRITERS[key]
