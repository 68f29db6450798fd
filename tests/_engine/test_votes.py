"""The batch loop: the native one-call-per-batch step counts exactly what the generic loop counts, and refuses bad rows."""

from __future__ import annotations

import pytest
import torch

import renyicert
from renyicert._engine.votes import GenericBatchStep, NativeBatchStep, count_phase_votes, count_votes
from renyicert._engine.native import native_count_then_fill, native_ops
from renyicert._engine.sampler import FusedSampler


def _native_function():  # type: ignore[no-untyped-def]
    function = native_count_then_fill()
    assert function is not None, "the native kernels should build on this machine"
    return function


def _phase(inputs: int, samples: int, rows: int, share: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Rows as Smoothed lays them out, padded to whole batches with the last batch's first row."""
    if share:
        row_input, row_sample = (
            torch.arange(inputs).repeat(samples),
            torch.arange(samples).repeat_interleave(inputs) + 3,
        )
    else:
        row_input, row_sample = (
            torch.arange(inputs).repeat_interleave(samples),
            torch.arange(samples).repeat(inputs) + 3,
        )
    total = inputs * samples
    tail = -total % rows
    last = total - total % rows
    row_input = torch.cat([row_input, row_input[last : last + 1].expand(tail)])
    row_sample = torch.cat([row_sample, row_sample[last : last + 1].expand(tail)])
    return row_input, row_sample, total


class _AsLogits(torch.nn.Module):
    """A linear model whose logits come out as float32, float64, not contiguous, or as the input buffer itself."""

    def __init__(self, form: str, features: int, classes: int) -> None:
        super().__init__()
        self.form = form
        self.linear = torch.nn.Linear(features, classes)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if self.form == "buffer":  # the buffer itself: counting must read it before the next batch is written
            return batch
        logits = self.linear(batch)
        if self.form == "float64":
            return logits.double()
        if self.form == "strided":
            return logits.t().contiguous().t()
        return logits


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("form", ["float32", "float64", "strided", "buffer"])
def test_native_step_counts_what_the_generic_loop_counts(form: str, share: bool) -> None:
    torch.manual_seed(0)
    inputs, features, rows = 3, 5, 64
    classes = features if form == "buffer" else 4
    model = _AsLogits(form, features, classes).eval()
    sampler = FusedSampler(renyicert.get_mechanism("gaussian", scale=0.7), backend="native")
    x, seeds = torch.randn(inputs, features), torch.tensor([5, 6, 7])
    row_input, row_sample, total = _phase(inputs, 90, rows, share)  # 270 rows: the last batch is 14 rows + 50 padding
    results = []
    for native in (True, False):
        buffer, counts = torch.empty(rows, features), torch.zeros(inputs * classes, dtype=torch.int64)
        if native:
            step = sampler.native_step(buffer, x, seeds, row_input, row_sample, counts, classes)
        else:
            step = GenericBatchStep(sampler.bind(buffer, x, seeds), row_input, row_sample, rows, counts, native_ops())
        with torch.inference_mode():
            count_phase_votes(model, buffer, total, classes, step, None)
        results.append(counts)
    assert int(results[0].sum()) == total
    assert torch.equal(results[0], results[1])


def test_native_step_refuses_non_finite_logits_and_rows_out_of_range() -> None:
    function = _native_function()
    rows, classes = 8, 3
    buffer, x, seeds = torch.empty(rows, 2), torch.zeros(2, 2), torch.tensor([1, 2])
    row_input, row_sample = torch.tensor([0, 1] * 8), torch.arange(16)
    counts = torch.zeros(2 * classes, dtype=torch.int64)
    step = NativeBatchStep(function, buffer, x, seeds, row_input, row_sample, counts, classes, 0.5, 0)
    logits = torch.zeros(rows, classes)
    logits[5, 1] = float("nan")
    with pytest.raises(ValueError, match="non-finite logits"):
        step(logits, 0, 6, -1)
    assert int(counts.sum()) == 0  # nothing counted
    step(logits, 0, 5, -1)  # the NaN row is padding: not looked at
    assert int(counts.sum()) == 5
    for counted, valid, next_row in (
        (9, 8, -1),
        (0, 9, -1),
        (-1, 1, -1),
    ):  # a batch past the rows, too many rows, a negative offset
        with pytest.raises(RuntimeError, match="status 2"):
            step(torch.zeros(rows, classes), counted, valid, next_row)
    with pytest.raises(RuntimeError, match="status 2"):
        step(None, 0, 0, 9)  # the next batch would run past the rows
    bad_input = torch.tensor([0, 1, 2, 0, 1, 0, 1, 0] * 2)  # input 2: there are two
    bad = NativeBatchStep(
        function, buffer, x, seeds, bad_input, row_sample, torch.zeros(2 * classes, dtype=torch.int64), classes, 0.5, 0
    )
    with pytest.raises(RuntimeError, match="status 2"):
        bad(None, 0, 0, 0)
    with pytest.raises(RuntimeError, match="status 2"):
        bad(torch.zeros(rows, classes), 0, rows, -1)


def test_native_step_checks_the_tensors_behind_its_pointers() -> None:
    function = _native_function()
    rows, x, seeds, counts = 4, torch.zeros(1, 3), torch.tensor([0]), torch.zeros(2, dtype=torch.int64)
    row_input, row_sample = torch.zeros(8, dtype=torch.int64), torch.arange(8)
    with pytest.raises(ValueError, match="float32"):
        NativeBatchStep(
            function,
            torch.empty(rows, 3, dtype=torch.float64),
            x.double(),
            seeds,
            row_input,
            row_sample,
            counts,
            2,
            0.5,
            0,
        )
    with pytest.raises(ValueError, match="whole batches"):
        NativeBatchStep(function, torch.empty(rows, 3), x, seeds, row_input[:6], row_sample[:6], counts, 2, 0.5, 0)
    with pytest.raises(ValueError, match="int64"):
        NativeBatchStep(function, torch.empty(rows, 3), x, seeds, row_input.int(), row_sample, counts, 2, 0.5, 0)
    with pytest.raises(ValueError, match="kind"):
        NativeBatchStep(function, torch.empty(rows, 3), x, seeds, row_input, row_sample, counts, 2, 0.5, 7)


def test_a_sampler_off_the_native_path_gives_no_native_step() -> None:
    mechanism = renyicert.get_mechanism("laplace", scale=0.5)
    buffer, x, seeds = torch.empty(4, 3), torch.zeros(1, 3), torch.tensor([0])
    rows = torch.zeros(4, dtype=torch.int64), torch.arange(4)
    counts = torch.zeros(2, dtype=torch.int64)
    assert FusedSampler(mechanism, backend="eager").path(buffer, x) == "eager"
    assert FusedSampler(mechanism, backend="auto").path(buffer.double(), x.double()) == "compiled"
    assert (
        FusedSampler(mechanism, backend="auto").native_step(buffer.double(), x.double(), seeds, *rows, counts, 2)
        is None
    )
    assert FusedSampler(mechanism, backend="auto").native_step(buffer, x, seeds, *rows, counts, 2) is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_native_vote_counting_matches_torch_argmax_with_ties_and_non_finite_logits(dtype: torch.dtype) -> None:
    ops = native_ops()
    assert ops is not None, "the native kernels should build on this machine"
    generator = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 3, (200, 7), generator=generator).to(dtype)  # many ties: the first largest wins
    row_input = torch.randint(0, 5, (200,), generator=generator)
    native, reference = torch.zeros(35, dtype=torch.int64), torch.zeros(35, dtype=torch.int64)
    assert count_votes(logits, row_input, 150, native, ops) and count_votes(logits, row_input, 150, reference, None)
    assert torch.equal(native, reference) and int(native.sum()) == 150
    column_major = logits.t().contiguous().t()  # the same logits, not contiguous: the kernel makes them so
    again = torch.zeros(35, dtype=torch.int64)
    assert count_votes(column_major, row_input, 150, again, ops) and torch.equal(again, reference)
    for bad in (float("nan"), float("inf"), -float("inf")):
        poisoned = logits.clone()
        poisoned[149, 3] = bad
        before = native.clone()
        assert not count_votes(poisoned, row_input, 150, native, ops) and torch.equal(native, before)
        assert not count_votes(poisoned, row_input, 150, reference, None)
        assert count_votes(poisoned, row_input, 149, native, ops)  # the bad row is padding: not looked at


def test_a_phase_is_planned_in_segments_with_the_same_counts(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Before: the row indices of a whole phase were allocated at once (16 bytes x inputs x n: --n 1e8 ran out of memory).
    import renyicert
    from renyicert._engine import engine

    model = torch.nn.Linear(6, 3)
    smoothed = renyicert.Smoothed(model, "gaussian", 3, scale=0.5, input_shape=(6,), batch_size=64, progress=False)
    x = torch.rand(3, 6)
    whole = smoothed.class_counts(x, 1000, seed=4)
    sizes: list[int] = []
    planned = engine._phase_rows

    def spy(*args):  # type: ignore[no-untyped-def]
        rows = planned(*args)
        sizes.append(rows[0].shape[0])
        return rows

    monkeypatch.setattr(engine, "SEGMENT_ROWS", 256)
    monkeypatch.setattr(engine, "_phase_rows", spy)
    segmented = smoothed.class_counts(x, 1000, seed=4)
    assert (segmented == whole).all() and max(sizes) <= 256 and sum(sizes) == 3000


def test_count_rows_counts_the_same_votes_as_a_phase_whatever_the_rows_order() -> None:
    import numpy as np

    import renyicert
    from renyicert._engine.engine import SEGMENT_ROWS, VoteEngine

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 3))
    engine = VoteEngine(model, renyicert.get_mechanism("gaussian", scale=0.5), 3)
    x, keys = torch.rand(3, 5), torch.tensor([7, 8, 9])
    with engine.evaluation():
        (phase,) = engine.count_votes(x, keys, [200], batch_size=64)
    # Input 1's copies 0..199 in two parts (two voters), then inputs 0 and 2, shuffled.
    voters = torch.stack([x[1], x[1], x[0], x[2]])
    voter_keys = torch.tensor([8, 8, 7, 9])
    row_input = torch.cat([torch.zeros(120), torch.ones(80), torch.full((200,), 2.0), torch.full((200,), 3.0)]).long()
    row_sample = torch.cat([torch.arange(120), torch.arange(120, 200), torch.arange(200), torch.arange(200)])
    order = torch.randperm(600)
    counts = engine.count_rows(voters, voter_keys, row_input[order], row_sample[order], batch_size=64)
    assert (
        np.array_equal(counts[0] + counts[1], phase[1])
        and np.array_equal(counts[2], phase[0])
        and np.array_equal(counts[3], phase[2])
    )
    assert engine.count_rows(voters, voter_keys, row_input[:0], row_sample[:0], batch_size=64).sum() == 0
    with pytest.raises(ValueError, match=f"at most {SEGMENT_ROWS} rows per call"):
        engine.count_rows(
            voters,
            voter_keys,
            torch.zeros(SEGMENT_ROWS + 1, dtype=torch.long),
            torch.zeros(SEGMENT_ROWS + 1, dtype=torch.long),
            batch_size=64,
        )
