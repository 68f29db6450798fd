"""The vote engine: class counts of a model over noisy copies of inputs, with every speed decision made here.

:class:`VoteEngine` is the one object :class:`renyicert.Smoothed` asks for votes.
For a phase of ``samples`` noisy copies of each input it plans the rows,
decides the sampler path once (native C++, Triton, compiled, eager, or the
mechanism's own ``sample()``), picks the batch size (given, or timed with
``"auto"``), runs the model (eager or compiled) on full batches and counts the
votes.

Noise is counter-based: copy ``s`` of an input with key ``k`` is the same
whatever the batch size, the packing or the device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .._progress import progress_bar
from ..lattice import LatticeNoise
from ..mechanism import Mechanism
from .compiled import CompiledModel
from .lattice_sampler import LatticeSampler
from .native import native_ops
from .noise_checks import check_noise, checking_first_batch
from .sampler import FusedSampler, fused_noise_kind
from .tuning import fastest_batch_size
from .votes import GenericBatchStep, LatticeBatchStep, NativeBatchStep, count_phase_votes, count_votes

__all__ = ["VoteEngine", "noise_keys"]

#: Mixes an input's key with a batch's first sample number into the seed of a mechanism's own sampler.
_OWN_SAMPLER_MIX = 0x9E3779B97F4A7C15


def noise_keys(count: int, seed: int | None, generator: Any, share_noise: bool = False) -> Any:
    """The Philox keys of ``count`` inputs: ``seed + i`` (all ``seed`` with ``share_noise``), or a random base from ``generator``.

    Examples
    --------
    >>> from renyicert._engine.engine import noise_keys
    >>> noise_keys(3, 5, None).tolist(), noise_keys(3, 5, None, share_noise=True).tolist()
    ([5, 6, 7], [5, 5, 5])
    """
    import torch

    if seed is not None and generator is not None:
        raise ValueError("give either seed or generator, not both")
    if seed is None:
        base = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    else:
        base = int(seed)
    if base + (1 if share_noise else count) > 2**63:
        raise ValueError(
            f"seed must be at most 2^63 - {1 if share_noise else count} (input i is drawn with key seed + i, a 63-bit Philox key), got {seed!r}"
        )
    return torch.tensor([base if share_noise else (base + i) % 2**63 for i in range(count)], dtype=torch.int64)


#: Rows planned at once in a phase (two int64 indices each: 64 MiB), whatever the number of samples.
SEGMENT_ROWS = 1 << 22


def _phase_rows(
    inputs: int, samples: int, first_sample: int, start: int, stop: int, share_noise: bool, device: Any
) -> tuple[Any, Any]:
    """Rows ``start ... stop - 1`` of a phase: each row's input and noise number (input-major, or sample-major with ``share_noise``)."""
    import torch

    position = torch.arange(start, stop, dtype=torch.int64, device=device)
    if share_noise:
        return position % inputs, position // inputs + first_sample
    return position // samples, position % samples + first_sample


def _next_power_of_two(value: int) -> int:
    return 1 << max(int(value) - 1, 0).bit_length()


def round_rows(value: int) -> int:
    """``value`` rounded up to a multiple of an eighth of the power of two below it: 8 sizes per octave, at most 12.5% padding.

    Examples
    --------
    >>> from renyicert._engine.engine import round_rows
    >>> [round_rows(v) for v in (7, 100, 1000)]
    [7, 104, 1024]
    """
    step = max((1 << (int(value).bit_length() - 1)) // 8, 1)
    return -(-int(value) // step) * step


class VoteEngine:
    """Counts a model's votes over noisy copies of inputs.

    Parameters
    ----------
    model
        The base classifier, ``(B, *input_shape) -> (B, num_classes)``.
    mechanism
        The noise.
    num_classes
        Classes the model scores.
    compile
        Run a compiled copy of the model (:class:`~renyicert._engine.compiled.CompiledModel`).
    backend
        Sampler path, see :class:`~renyicert._engine.sampler.FusedSampler`.
    lattice
        Lattice mode (:mod:`renyicert.lattice`): the copies are ``(k + j) / grid``
        with ``j`` this lattice's atoms, and every counts array gets one more
        column, the copies that failed (their votes left out of the classes').
    """

    def __init__(
        self,
        model: Any,
        mechanism: Mechanism,
        num_classes: int,
        *,
        compile: bool = False,
        backend: str = "auto",
        lattice: LatticeNoise | None = None,
    ) -> None:
        self.model = model
        self.mechanism = mechanism
        self.num_classes = num_classes
        #: The lattice of lattice mode, or ``None`` (float mode).
        self.lattice = lattice
        #: The sizes ``batch_size="auto"`` chose, by (input shape, dtype, device).
        self.tuned_batch_sizes: dict[tuple[Any, ...], int] = {}
        self._lattice_sampler = LatticeSampler(lattice, backend) if lattice is not None else None
        self._sampler = (
            FusedSampler(mechanism, backend) if lattice is None and fused_noise_kind(mechanism) is not None else None
        )
        self._compile = bool(compile)
        self._compiled: CompiledModel | None = None
        #: Why the last :meth:`accepts` said no (for messages).
        self.last_error = ""

    # ------------------------------------------------------------ the model
    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Eval mode and inference mode, the model's previous mode restored on exit."""
        import torch

        model = self.model
        # A model already in eval mode throughout is left alone (eval() and train() walk every module).
        switch = any(module.training for module in model.modules())
        was_training = model.training
        if switch:
            model.eval()
        try:
            with torch.inference_mode():
                yield
        finally:
            if switch:
                model.train(was_training)

    def accepts(self, batch: Any) -> bool:
        """Whether the model maps ``batch`` to logits ``(len(batch), num_classes)`` (an error counts as no; it is kept in :attr:`last_error`)."""
        from .._logits import LogitsNotFound

        try:
            with self.evaluation():
                logits = self.model(batch)
        except LogitsNotFound:
            raise  # the model ran, but its output holds no logits: no shape would help
        except Exception as error:
            self.last_error = f"{type(error).__name__}: {error}"
            return False
        shape = tuple(getattr(logits, "shape", ()))
        self.last_error = f"it returned shape {shape}, expected ({batch.shape[0]}, {self.num_classes})"
        return shape == (batch.shape[0], self.num_classes)

    def _runner(self, input_shape: tuple[int, ...]) -> Any:
        """The model as run on the batches: the eager one, or its compiled copy (which falls back to eager by itself)."""
        if not self._compile:
            return self.model
        if self._compiled is None:
            self._compiled = CompiledModel(self.model, input_shape)
        return self._compiled

    # -------------------------------------------------------------- counting
    def count_votes(
        self,
        x: Any,
        keys: Any,
        phases: Sequence[int],
        *,
        batch_size: int | str,
        share_noise: bool = False,
        progress: bool | None = None,
        description: str = "count",
    ) -> list[Any]:
        """Class counts ``(B, num_classes)`` per phase (``(B, num_classes + 1)`` in lattice mode, the last column the failed copies): phase ``k`` counts ``phases[k]`` fresh copies of each input.

        The phases use consecutive noise numbers (phase 0 copies ``0 ... phases[0] - 1``,
        phase 1 the next ``phases[1]``), so no copy is used twice.
        """
        with (
            self.evaluation(),
            progress_bar(x.shape[0] * sum(phases), description, "sample", progress, unit_scale=True) as bar,
        ):
            rows = self.batch_size(batch_size, x)
            counts, first = [], 0
            for samples in phases:
                counts.append(self._count_phase(x, samples, first, keys, rows, bar, share_noise))
                first += samples
        return counts

    def batch_size(self, requested: int | str, x: Any) -> int:
        """``requested``, or for ``"auto"`` the size chosen (once per input shape, dtype and device) by timing."""
        if requested != "auto":
            return int(requested)
        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if key not in self.tuned_batch_sizes:
            self.tuned_batch_sizes[key] = self._tune(x)
        return self.tuned_batch_sizes[key]

    def _tune(self, x: Any) -> int:
        """Time whole batch steps of ``x[0]``'s copies with the eager model (a compiled one would compile per size)."""
        import torch

        device = x.device
        keys = torch.zeros(1, dtype=torch.int64, device=device)
        votes = torch.zeros(self.num_classes, dtype=torch.int64, device=device)
        ops = native_ops() if device.type == "cpu" else None

        def make_step(rows: int) -> Any:
            buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=device)
            row_input = torch.zeros(rows, dtype=torch.int64, device=device)
            row_sample = torch.arange(rows, device=device)
            fill = self._writer(buffer, x[:1], keys, None)

            def step() -> None:
                fill(row_input, row_sample)
                logits = self.model(buffer)
                if logits.dim() == 2 and logits.shape == (rows, self.num_classes):  # else counting will say so
                    count_votes(logits, row_input, rows, votes, ops)

            return step

        synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        return fastest_batch_size(make_step, x[0].numel() * x.element_size(), synchronize)

    def _count_phase(
        self, x: Any, samples: int, first_sample: int, keys: Any, batch_size: int, bar: Any, share_noise: bool
    ) -> Any:
        """Class counts ``(B, num_classes)`` of ``samples`` noisy copies of each input (copies ``first_sample...``).

        With ``share_noise`` the rows go sample by sample (the inputs' copies of
        one draw side by side, so that the native sampler draws it once); the
        counts do not depend on the order.  The rows are planned a segment of at
        most :data:`SEGMENT_ROWS` (rounded to whole batches) at a time, so memory
        does not grow with ``samples``; counter-based noise makes the counts the
        same as for one segment.
        """
        import torch

        inputs = x.shape[0]
        total = inputs * samples
        counts = torch.zeros(inputs * self.num_classes, dtype=torch.int64, device=x.device)
        failures = torch.zeros(inputs, dtype=torch.int64, device=x.device)
        rows = min(batch_size, round_rows(total))
        segment = max(rows, SEGMENT_ROWS // rows * rows)
        for start in range(0, total, segment):
            row_input, row_sample = _phase_rows(
                inputs, samples, first_sample, start, min(start + segment, total), share_noise, x.device
            )
            self._count_rows_into(x, keys, row_input, row_sample, rows, counts, bar, failures)
        return self._counts_out(counts, failures, inputs)

    def _counts_out(self, counts: Any, failures: Any, inputs: int) -> Any:
        """``(inputs, num_classes)`` counts as numpy, with the failures as one more column in lattice mode."""
        import torch

        table = counts.view(inputs, self.num_classes)
        if self.lattice is not None:
            table = torch.cat([table, failures.view(inputs, 1)], dim=1)
        return table.cpu().numpy()

    def count_rows(
        self, x: Any, keys: Any, row_input: Any, row_sample: Any, *, batch_size: int, bar: Any = None
    ) -> Any:
        """Class counts ``(B, num_classes)`` over the given rows: row ``j`` is noise number ``row_sample[j]`` of input ``row_input[j]``.

        The caller plans the rows (at most :data:`SEGMENT_ROWS` of them, int64
        tensors on the inputs' device); the model runs on batches of
        ``batch_size`` rows (fewer when there are fewer rows), the last one
        padded with rows that draw noise but never vote.  What sequential
        certification runs, several inputs at different sample numbers in one batch.
        """
        import torch

        total = int(row_input.shape[0])
        if total > SEGMENT_ROWS:
            raise ValueError(f"at most {SEGMENT_ROWS} rows per call, got {total}")
        counts = torch.zeros(x.shape[0] * self.num_classes, dtype=torch.int64, device=x.device)
        failures = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        if total:
            with self.evaluation():
                self._count_rows_into(
                    x, keys, row_input, row_sample, min(batch_size, round_rows(total)), counts, bar, failures
                )
        return self._counts_out(counts, failures, x.shape[0])

    def _count_rows_into(
        self, x: Any, keys: Any, row_input: Any, row_sample: Any, rows: int, counts: Any, bar: Any, failures: Any
    ) -> None:
        """Add the votes of the given rows to ``counts`` (``inputs * num_classes``), in batches of ``rows`` (failed lattice copies to ``failures``)."""
        import torch

        inputs = x.shape[0]
        keys = keys.to(x.device)
        # Few distinct shapes, so few compilations of the sampler (and of a compiled model): the buffer's
        # rows are rounded up by the caller and the inputs padded to a power of two; padding is never counted.
        padded = _next_power_of_two(inputs)
        if padded > inputs:
            x = torch.cat([x, x[:1].expand(padded - inputs, *x.shape[1:])])
            keys = torch.cat([keys, keys[:1].expand(padded - inputs)])
        buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=x.device)
        runner = self._runner(tuple(x.shape[1:]))
        valid = row_input.shape[0]
        tail = (
            -valid % rows
        )  # the last batch's padding rows (its first row again): drawn, for one buffer shape, never counted
        if tail:
            last = valid - valid % rows
            row_input = torch.cat([row_input, row_input[last : last + 1].expand(tail)])
            row_sample = torch.cat([row_sample, row_sample[last : last + 1].expand(tail)])
        step = self._batch_step(buffer, x, keys, row_input, row_sample, counts, failures)
        count_phase_votes(runner, buffer, valid, self.num_classes, step, bar)

    def draw_copies(self, x: Any, key: int, samples: int, *, with_failures: bool = False) -> Any:
        """Noisy copies ``0 ... samples - 1`` of the one input ``x`` (``(1, *shape)``), written as a phase's first batch is.

        The same entry point, path decision and batch step as :meth:`count_votes`,
        without the model: what :func:`renyicert.check` draws to test the noise
        that certification uses. With ``with_failures`` (lattice mode), also the
        int32 ``(samples,)`` flags of the copies with a failed coordinate.
        """
        import torch

        device = x.device
        buffer = torch.empty((samples, *x.shape[1:]), dtype=x.dtype, device=device)
        row_input = torch.zeros(samples, dtype=torch.int64, device=device)
        row_sample = torch.arange(samples, device=device)
        counts = torch.zeros(self.num_classes, dtype=torch.int64, device=device)
        keys = torch.tensor([int(key)], dtype=torch.int64, device=device)
        step = self._batch_step(buffer, x, keys, row_input, row_sample, counts)
        step(None, 0, 0, 0)  # write the first (here: the only) batch
        if with_failures:
            if not isinstance(step, LatticeBatchStep):
                raise ValueError("with_failures=True is for lattice mode: float-mode copies never fail")
            return buffer, step.failed.clone()
        return buffer

    # --------------------------------------------------------------- paths
    def _batch_step(
        self, buffer: Any, x: Any, keys: Any, row_input: Any, row_sample: Any, counts: Any, failures: Any = None
    ) -> GenericBatchStep | NativeBatchStep:
        """The phase's batch step, on the sampler path decided here, once per phase."""
        ops = native_ops() if buffer.device.type == "cpu" else None
        if self._lattice_sampler is not None:
            writer = self._lattice_sampler.bind(buffer, x, keys)
            if failures is None:  # a caller that does not keep them (draw_copies)
                failures = counts.new_zeros(x.shape[0])
            return LatticeBatchStep(
                writer, row_input, row_sample, buffer.shape[0], counts, failures, self.num_classes, ops
            )
        path = self._sampler.path(buffer, x) if self._sampler is not None else "own"
        if path == "native":
            step = self._sampler.native_step(buffer, x, keys, row_input, row_sample, counts, self.num_classes)  # type: ignore[union-attr]
            if step is not None:
                return step
        return GenericBatchStep(
            self._writer(buffer, x, keys, path), row_input, row_sample, buffer.shape[0], counts, ops
        )

    def _writer(self, buffer: Any, x: Any, keys: Any, path: str | None) -> Any:
        """``fill(row_input, row_sample)``: write a batch's noisy copies (input ``row_input[j]``, sample ``row_sample[j]``) into ``buffer``."""
        import torch

        if self._lattice_sampler is not None:
            return self._lattice_sampler.bind(buffer, x, keys, path)
        if self._sampler is not None:
            fill = self._sampler.bind(buffer, x, keys, path)
            return (
                fill
                if self._sampler.kind != "uniform"
                else checking_first_batch(fill, buffer, self.mechanism, "_transform_uniform")
            )
        mechanism = self.mechanism
        first = [True]

        def fill_with_own_sampler(row_input: Any, row_sample: Any) -> None:
            # No elementwise noise: the mechanism's own sampler, seeded by the batch's first row (its input's
            # key and its sample number, so that no two batches of a certification, selection or estimation,
            # start from one seed).
            generator = torch.Generator(device=buffer.device)
            generator.manual_seed((int(keys[row_input[0]]) * _OWN_SAMPLER_MIX + int(row_sample[0])) % 2**63)
            noise = mechanism.sample(tuple(buffer.shape), generator=generator, dtype=buffer.dtype, device=buffer.device)
            if first[0]:  # the phase's first batch: the noise's shape, dtype and values, before they are used
                check_noise(noise, buffer, mechanism)
                first[0] = False
            torch.index_select(x, 0, row_input, out=buffer)
            buffer.add_(noise)

        return fill_with_own_sampler
