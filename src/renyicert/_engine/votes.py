"""The batch loop of smoothing: noisy copies into the model's batch, the model, its votes counted.

A phase (selection or estimation) is a list of rows, row ``j`` holding input
``row_input[j]`` plus noise number ``row_sample[j]``, padded to whole batches of
the buffer's size; only the first ``valid`` rows vote. :func:`count_phase_votes`
runs the model on each batch and hands its logits to a *batch step*, which
counts the batch's votes and writes the next batch. Two steps count the same votes:

* :class:`NativeBatchStep` (the C++ sampler on the CPU, float32 logits): one plain
  C call per batch. Right after a forward pass, a ``torch.ops`` call pays for its
  dispatch with caches the model has just evicted: two such calls per batch cost
  a small MLP about 1.5% more than this one C call.
* :class:`GenericBatchStep` (Triton, ``torch.compile``, eager, a mechanism's own
  sampler, any logits): :func:`count_votes`, then the sampler's writer.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from .native import BatchPlan

__all__ = ["GenericBatchStep", "LatticeBatchStep", "NativeBatchStep", "count_phase_votes", "count_votes"]

#: The return codes of ``renyicert_count_then_fill``, and what the others mean.
_DONE, _NOT_FINITE = 0, 1
_FAILURES = {2: "an offset, valid or a row's input out of range", 3: "an internal error"}
_NON_FINITE_MESSAGE = "model returned non-finite logits (NaN or inf) on noisy inputs"


def count_votes(logits: Any, row_input: Any, valid: int, counts: Any, ops: Any) -> bool:
    """Add each of the first ``valid`` rows' vote (argmax) to ``counts[input * classes + class]``; ``False`` if a logit is not finite.

    One pass in C++ (``ops.count_votes``) for float32/float64 logits on the CPU
    when the native kernels are built; torch's ``isfinite``, ``argmax`` (the
    first largest logit) and ``index_add_`` otherwise. Both count the same votes.

    Examples
    --------
    >>> import torch
    >>> from renyicert._engine.votes import count_votes
    >>> counts = torch.zeros(2 * 3, dtype=torch.int64)
    >>> count_votes(torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0]]), torch.tensor([0, 1]), 2, counts, None)
    True
    >>> counts.tolist()
    [0, 1, 0, 1, 0, 0]
    """
    import torch

    if ops is not None and logits.dtype in (torch.float32, torch.float64) and logits.device.type == "cpu":
        return ops.count_votes(logits, row_input, counts, valid)  # it makes them contiguous where they are not
    scores = logits[:valid]
    if not torch.isfinite(scores).all():
        return False
    predictions = scores.argmax(dim=1)
    counts.index_add_(0, row_input[:valid] * logits.shape[1] + predictions, torch.ones_like(predictions))
    return True


def _check_step_buffers(
    out: Any, x: Any, seeds: Any, row_input: Any, row_sample: Any, counts: Any, classes: int, kind: int
) -> None:
    """Refuse buffers the C side would misread: its dtypes, devices, contiguity and whole batches of rows."""
    import torch

    rows, numel = out.shape[0], out[0].numel()
    if (
        out.dtype != torch.float32
        or x.dtype != torch.float32
        or not out.is_contiguous()
        or out.device.type != "cpu"
        or x.device.type != "cpu"
    ):
        raise ValueError(f"the native batch step needs contiguous float32 CPU buffers, got {out.dtype} on {out.device}")
    if x.shape[1] != numel or rows == 0 or row_input.shape[0] % rows or row_input.shape != row_sample.shape:
        raise ValueError(
            f"rows {tuple(row_input.shape)} and {tuple(row_sample.shape)} do not fill whole batches of {rows} rows of {numel} values"
        )
    if (
        any(t.dtype != torch.int64 for t in (seeds, row_input, row_sample, counts))
        or not counts.is_contiguous()
        or classes < 1
        or counts.numel() % classes
    ):
        raise ValueError(
            f"seeds, row_input, row_sample and counts must be int64, and counts contiguous (voters * {classes},)"
        )
    if kind not in (0, 1):
        raise ValueError(f"kind must be 0 (normal) or 1 (laplace), got {kind!r}")


class NativeBatchStep:
    """One C call per batch: count a batch's votes, then write the next batch (see :func:`renyicert._engine.native.native_count_then_fill`).

    It checks the phase's tensors once (the C side trusts their dtypes, shapes
    and contiguity, and checks the offsets and the rows' inputs on every call)
    and holds them, so that they live as long as the pointers do.

    Parameters
    ----------
    function
        :func:`renyicert._engine.native.native_count_then_fill`'s function.
    out
        The model's batch, float32 ``(rows, *input_shape)``, contiguous.
    x
        The inputs, float32 ``(inputs, *input_shape)``.
    seeds
        int64 ``(inputs,)`` keys.
    row_input, row_sample
        int64 ``(batches * rows,)``: each row's input and noise number.
    counts, classes
        int64 ``(voters * classes,)``, contiguous: the votes are added to it
        (``row_input`` below ``voters`` on the rows that vote).
    scale, kind
        The noise scale and kind (0 normal, 1 Laplace).
    """

    def __init__(
        self,
        function: Any,
        out: Any,
        x: Any,
        seeds: Any,
        row_input: Any,
        row_sample: Any,
        counts: Any,
        classes: int,
        scale: float,
        kind: int,
    ) -> None:
        rows = out.shape[0]
        inputs = x.shape[0]
        numel = out[0].numel()
        x = x.reshape(inputs, numel).contiguous()
        seeds, row_input, row_sample = seeds.contiguous(), row_input.contiguous(), row_sample.contiguous()
        _check_step_buffers(out, x, seeds, row_input, row_sample, counts, classes, kind)
        self._function = function
        self._tensors = (out, x, seeds, row_sample)  # kept alive with their pointers, as are the two below
        self._row_input, self._counts = row_input, counts
        self.rows = rows
        self.batches = row_input.shape[0] // rows
        self._plan = BatchPlan(
            out.data_ptr(),
            x.data_ptr(),
            row_input.data_ptr(),
            row_sample.data_ptr(),
            seeds.data_ptr(),
            counts.data_ptr(),
            row_input.shape[0],
            rows,
            numel,
            inputs,
            seeds.shape[0],
            counts.numel() // classes,
            classes,
            kind,
            float(scale),
        )
        self._plan_pointer = ctypes.pointer(self._plan)

    def __call__(self, logits: Any, counted: int, valid: int, next_row: int) -> None:
        """Count the first ``valid`` votes of the batch at row ``counted`` (unless ``logits`` is ``None``), then write the batch at row ``next_row`` (unless negative)."""
        import torch

        if logits is not None and (
            logits.dtype != torch.float32 or not logits.is_contiguous() or logits.device.type != "cpu"
        ):
            # Other logits: torch counts them (from the C-contiguous rows), the C call only writes.
            if not count_votes(logits, self._row_input[counted : counted + self.rows], valid, self._counts, None):
                raise ValueError(_NON_FINITE_MESSAGE)
            logits = None
        status = self._function(
            self._plan_pointer, None if logits is None else logits.data_ptr(), counted, valid, next_row
        )
        if status == _NOT_FINITE:
            raise ValueError(_NON_FINITE_MESSAGE)
        if status != _DONE:
            reason = _FAILURES.get(status, "an unknown status")
            raise RuntimeError(
                f"renyicert_count_then_fill failed with status {status}, {reason} (counted={counted}, valid={valid}, next={next_row})"
            )


class GenericBatchStep:
    """A batch step from any writer: count a batch's votes with :func:`count_votes`, then write the next batch with ``fill``.

    Parameters
    ----------
    fill
        ``fill(row_input, row_sample)`` writes one batch of noisy copies into the model's buffer.
    row_input, row_sample
        int64 ``(batches * rows,)``: each row's input and noise number.
    rows
        Rows per batch.
    counts
        int64 ``(voters * classes,)``: the votes are added to it.
    ops
        The native kernels for :func:`count_votes` (``None``: torch counts).
    """

    def __init__(
        self, fill: Callable[[Any, Any], None], row_input: Any, row_sample: Any, rows: int, counts: Any, ops: Any
    ) -> None:
        self._fill = fill
        self._row_input, self._row_sample = row_input, row_sample
        self.rows = rows
        self.batches = row_input.shape[0] // rows
        self._counts = counts
        self._ops = ops

    def __call__(self, logits: Any, counted: int, valid: int, next_row: int) -> None:
        """Count the first ``valid`` votes of the batch at row ``counted`` (unless ``logits`` is ``None``), then write the batch at row ``next_row`` (unless negative)."""
        if logits is not None and not count_votes(
            logits, self._row_input[counted : counted + self.rows], valid, self._counts, self._ops
        ):
            raise ValueError(_NON_FINITE_MESSAGE)
        if next_row >= 0:
            self._fill(
                self._row_input[next_row : next_row + self.rows], self._row_sample[next_row : next_row + self.rows]
            )


class LatticeBatchStep(GenericBatchStep):
    """:class:`GenericBatchStep` for lattice copies: a copy with a failed coordinate gives its vote up to ``failures``.

    ``fill`` is a :class:`~renyicert._engine.lattice_sampler.LatticeWriter`, whose
    ``failed`` flags mark the batch's failed copies. After a batch's votes are
    counted, each failed voting row's vote (the same argmax, the first largest
    logit) is taken back from ``counts`` and the row counted in ``failures``
    (``(voters,)``, int64) instead: ``counts`` then hold the votes of the copies
    that did not fail, which is what :func:`renyicert.lattice.failure_adjusted`
    needs. Failures are rare (about ``numel * 2^-53`` per copy), so the check is one
    ``any()`` per batch.
    """

    def __init__(
        self, fill: Any, row_input: Any, row_sample: Any, rows: int, counts: Any, failures: Any, classes: int, ops: Any
    ) -> None:
        super().__init__(fill, row_input, row_sample, rows, counts, ops)
        self._failed = fill.failed
        self._failures = failures
        self._classes = classes

    @property
    def failed(self) -> Any:
        """The failure flags of the batch written last (int32, one per row)."""
        return self._failed

    def __call__(self, logits: Any, counted: int, valid: int, next_row: int) -> None:
        """Count the batch at row ``counted`` (its failed copies apart), then write the batch at row ``next_row`` (unless negative)."""
        import torch

        if logits is not None:
            if not count_votes(logits, self._row_input[counted : counted + self.rows], valid, self._counts, self._ops):
                raise ValueError(_NON_FINITE_MESSAGE)
            flags = self._failed[:valid]
            if bool(flags.any()):
                failed_rows = flags.nonzero()[:, 0]
                inputs = self._row_input[counted : counted + self.rows][failed_rows]
                votes = logits[failed_rows].argmax(dim=1)
                ones = torch.ones_like(inputs)
                self._counts.index_add_(0, inputs * self._classes + votes, -ones)
                self._failures.index_add_(0, inputs, ones)
        if next_row >= 0:
            self._fill(
                self._row_input[next_row : next_row + self.rows], self._row_sample[next_row : next_row + self.rows]
            )


def count_phase_votes(
    runner: Callable[[Any], Any],
    buffer: Any,
    valid_rows: int,
    classes: int,
    step: GenericBatchStep | NativeBatchStep,
    bar: Any,
) -> None:
    """Run a phase: every batch of ``buffer``'s size through ``runner``, the first ``valid_rows`` rows' votes counted by ``step``.

    ``step`` holds the phase's rows in whole batches (padding rows at the end
    draw noise but do not vote), writes each batch and counts its votes.
    Raises ``ValueError`` when the model's output is not ``(rows, classes)`` or
    holds a non-finite logit among the voting rows.
    """
    import torch

    rows = buffer.shape[0]
    batches = step.batches
    expected = (rows, classes)
    step(None, 0, 0, 0)  # write the first batch
    for batch in range(batches):
        first = batch * rows
        valid = min(rows, valid_rows - first)
        logits = runner(buffer)
        if not isinstance(logits, torch.Tensor) or logits.shape != expected:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"model output has shape {shape}; expected {expected} = (batch, num_classes)")
        step(logits, first, valid, first + rows if batch + 1 < batches else -1)
        del (
            logits
        )  # before the next forward pass: a live output moves the model's allocations (measured: +30% for an MLP)
        if bar is not None:
            bar.update(valid)
