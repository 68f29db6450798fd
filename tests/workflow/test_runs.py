"""A records run never loses data: overwrite only under the lock, sequential records written as each input is decided."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import renyicert
from renyicert.workflow import distributed, records
from renyicert.workflow.data import load_digits
from renyicert.workflow.certify import certify_dataset, certify_dataset_at
from renyicert.workflow.models import DigitsMLP
from renyicert.workflow.records import read_records


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return DigitsMLP()


def _smoothed(model: torch.nn.Module) -> renyicert.Smoothed:
    return renyicert.Smoothed(model, "gaussian", 10, scale=0.25, backend="eager", batch_size=64, progress=False)


def test_overwrite_while_another_run_holds_the_file_deletes_nothing(model: torch.nn.Module, tmp_path: Path) -> None:
    """Two demo stages into one folder: the second is refused by the first's lock and has removed none of its records."""
    _, test = load_digits()
    path = tmp_path / "records" / "gaussian-0.25-standard.jsonl"
    first = certify_dataset(_smoothed(model), test.subset(3), path, n0=10, n=50, progress=False)
    before = path.read_bytes(), records.settings_path(path).read_bytes()
    lock = distributed.RecordsLock(path, 0)  # the first run, still writing
    try:
        with pytest.raises(ValueError, match="is being written by another run"):
            certify_dataset(_smoothed(model), test.subset(4), path, n0=10, n=50, overwrite=True, progress=False)
        with pytest.raises(ValueError, match="is being written by another run"):
            certify_dataset_at(
                _smoothed(model), test.subset(4), [0.0], path, budget=100, overwrite=True, progress=False
            )
        assert (path.read_bytes(), records.settings_path(path).read_bytes()) == before
    finally:
        lock.release()
    # Once the lock is free, overwrite starts the file afresh (the parts and settings too).
    (path.parent / (path.name + ".part1")).write_text('{"index": 0}\n')
    again = certify_dataset(_smoothed(model), test.subset(4), path, n0=10, n=50, overwrite=True, progress=False)
    assert [r["index"] for r in again] == [0, 1, 2, 3] and [r["counts"] for r in again[:3]] == [
        r["counts"] for r in first
    ]
    assert not records.part_paths(path)
    with pytest.raises(ValueError, match="resume and overwrite exclude each other"):
        certify_dataset(_smoothed(model), test.subset(4), path, resume=True, overwrite=True, progress=False)


def test_the_demo_stages_overwrite_under_the_lock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: torch.nn.Module
) -> None:
    """The demo's and compare's certification stages pass overwrite=True instead of unlinking the records first."""
    from renyicert.workflow.jobs import compare, demo

    calls = []

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(kwargs.get("overwrite"))
        raise RuntimeError("stop")

    for module in (demo, compare):
        monkeypatch.setattr(module, "certify_dataset", recording)
    monkeypatch.setattr(demo, "certify_dataset_at", recording)
    _, test = load_digits()
    path = tmp_path / "records" / "gaussian-0.25-standard.jsonl"
    path.parent.mkdir()
    path.write_text("keep\n")
    settings = demo.DemoSettings()
    with pytest.raises(RuntimeError, match="stop"):
        demo._certify_and_attack(
            model, ("gaussian", 0.25), "standard", None, settings, test, test, tmp_path, {"certify": 0.0}, None, False
        )
    with pytest.raises(RuntimeError, match="stop"):
        demo._certify_sequentially(
            model, ("gaussian", 0.25), "standard", [0.0], settings, test, tmp_path, {"sequential": 0.0}, False
        )
    assert calls == [True, True] and path.read_text() == "keep\n"


def test_the_demo_certifies_sequentially_with_the_ordered_one_sided_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model: torch.nn.Module
) -> None:
    """The demo's sequential rows use issue 27's rule: the threshold form, whose default test is the ordered one-sided one."""
    import inspect

    from renyicert.workflow.jobs import demo
    from renyicert.workflow.certify import certify_dataset_at

    seen: dict = {}

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        raise RuntimeError("stop")

    monkeypatch.setattr(demo, "certify_dataset_at", recording)
    _, test = load_digits()
    with pytest.raises(RuntimeError, match="stop"):
        demo._certify_sequentially(
            model,
            ("gaussian", 0.25),
            "standard",
            [0.0],
            demo.DemoSettings(),
            test,
            tmp_path,
            {"sequential": 0.0},
            False,
        )
    test_default = inspect.signature(certify_dataset_at).parameters["decision_test"].default
    assert seen["p2_mode"] == "complement" and seen.get("decision_test", test_default) == "ordered"


class _FailAfter:
    """A forward hook that counts the model's passes and raises on pass ``calls + 1``: a kill in the middle of a certify_at call."""

    def __init__(self, calls: int) -> None:
        self.left = calls

    def __call__(self, module: torch.nn.Module, inputs: object) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt


def test_sequential_records_are_written_as_each_input_is_decided(model: torch.nn.Module, tmp_path: Path) -> None:
    """Killed mid-call, the inputs already decided are on disk, and a resume certifies only the rest, with the same answers."""
    _, test = load_digits()
    data = test.subset(12)
    counter = _FailAfter(10**9)
    handle = model.register_forward_pre_hook(counter)
    try:
        reference = certify_dataset_at(
            _smoothed(model), data, [0.0, 0.25], tmp_path / "whole.jsonl", budget=3000, progress=False
        )
    finally:
        handle.remove()
    passes = 10**9 - counter.left
    path = tmp_path / "killed.jsonl"
    handle = model.register_forward_pre_hook(_FailAfter(passes * 2 // 3))
    try:
        with pytest.raises(KeyboardInterrupt):
            certify_dataset_at(_smoothed(model), data, [0.0, 0.25], path, budget=3000, progress=False)
    finally:
        handle.remove()
    written = read_records(path).records
    assert 0 < len(written) < len(data), len(written)
    by_index = {r["index"]: r for r in reference}
    assert all(r == by_index[r["index"]] for r in written)
    resumed = certify_dataset_at(_smoothed(model), data, [0.0, 0.25], path, budget=3000, resume=True, progress=False)
    assert resumed == reference
