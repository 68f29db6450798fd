"""Records that contradict themselves are refused by report and recertify, naming the record; unfinished files are warned about."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

import renyicert
from renyicert.cli import main
from renyicert.workflow import distributed
from renyicert.workflow.records import settings_path
from renyicert.workflow.data import load_digits
from renyicert.workflow.certify import certify_dataset, certify_dataset_at, recertify_records
from renyicert.workflow.models import DigitsMLP
from renyicert.workflow.record_checks import incomplete_warnings, verify_fixed_n, verify_sequential


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fixed-n and a sequential records file of 20 digits each, made by the library with their settings beside them."""
    torch.manual_seed(0)
    smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, backend="eager", progress=False)
    _, test = load_digits()
    folder = tmp_path_factory.mktemp("runs")
    certify_dataset(smoothed, test.subset(20), folder / "fixed.jsonl", n0=20, n=300, alpha=0.01, progress=False)
    certify_dataset_at(
        smoothed, test.subset(20), [0.0, 0.1, 0.2], folder / "sequential.jsonl", budget=2000, progress=False
    )
    return {"fixed": folder / "fixed.jsonl", "sequential": folder / "sequential.jsonl"}


def _copy(source: Path, folder: Path, edit: Any = None, name: str | None = None) -> Path:
    """``source`` and its settings in ``folder``, with ``edit(records, settings)`` applied."""
    records = [json.loads(line) for line in source.read_text().splitlines()]
    settings = json.loads(settings_path(source).read_text())
    if edit is not None:
        edit(records, settings)
    target = folder / (name or source.name)
    target.write_text("".join(json.dumps(r) + "\n" for r in records))
    settings_path(target).write_text(json.dumps(settings))
    return target


def _abstained(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["prediction"] == -1)


def _certified(records: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in records if r["prediction"] != -1 and r["radius_renyi"] > 0)


FIXED_FORGERIES = {
    "duplicated indices (cat a.jsonl b.jsonl)": (lambda r, s: r.extend(r[:10]), "index 0 is recorded twice"),
    "an abstention marked correct with radius 5": (
        lambda r, s: _abstained(r).update(correct=True, radius_renyi=5.0, radius_best=5.0),
        "'correct' is True but its prediction is -1",
    ),
    "an abstention with a radius": (
        lambda r, s: _abstained(r).update(radius_renyi=5.0, radius_best=5.0),
        "it abstained .* yet holds radius_renyi = 5.0",
    ),
    "correct where prediction != label": (
        lambda r, s: _certified(r).update(label=(_certified(r)["prediction"] + 1) % 10, correct=True),
        "'correct' is True but its prediction is",
    ),
    "a radius its own bounds cannot give": (
        lambda r, s: _certified(r).update(
            radius_renyi=_certified(r)["radius_tight"] * 3,
            radius_best=_certified(r)["radius_tight"] * 3,
            best_bound="renyi",
        ),
        "radius_renyi = .*, but its own counts give",
    ),
    "bounds its counts cannot give": (
        lambda r, s: _certified(r).update(p1_lower=0.999999),
        "p1_lower = 0.999999, but its own counts give",
    ),
    "class 99 of 10": (lambda r, s: r[0].update(label=99), "'label' must be a class in \\[0, 10\\), got 99"),
    "class 10 of 10": (lambda r, s: r[0].update(label=10), "'label' must be a class in \\[0, 10\\), got 10"),
    "a prediction out of range": (
        lambda r, s: r[0].update(prediction=12, correct=False),
        "'prediction' must be -1 \\(abstain\\) or a class in \\[0, 10\\)",
    ),
    "counts that do not sum to n": (
        lambda r, s: r[0]["counts"].__setitem__(0, r[0]["counts"][0] + 1),
        "its counts sum to 301, but it drew n = 300",
    ),
    "an index past the run's inputs": (
        lambda r, s: r[0].update(index=20),
        "'index' must be an integer in \\[0, 20\\), got 20",
    ),
    "the settings' mechanism edited": (
        lambda r, s: s.update(mechanism="laplace"),
        "under laplace.*the record was edited, or its settings",
    ),
    "the settings' alpha edited": (lambda r, s: s.update(alpha=0.5), "but its own counts give .* at alpha = 0.5"),
}


@pytest.mark.parametrize("case", sorted(FIXED_FORGERIES))
def test_report_and_recertify_refuse_fixed_n_records_that_contradict_themselves(
    runs: dict[str, Path], tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, match = FIXED_FORGERIES[case]
    path = _copy(runs["fixed"], tmp_path, edit)
    for argv in (["report", str(path)], ["recertify", str(path), "--alpha", "0.05"]):
        assert main(argv) == 2, (case, argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err
        assert __import__("re").search(match, err), (case, argv, err)


def test_untouched_records_pass_every_check_and_report_as_before(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(runs["fixed"])]) == 0
    assert main(["report", str(runs["sequential"])]) == 0
    assert main(["recertify", str(runs["fixed"]), "--alpha", "0.05", "--out", str(tmp_path / "again.jsonl")]) == 0
    assert (
        main(["report", str(tmp_path / "again.jsonl")]) == 0
    )  # a recertified file checks against its own settings (alpha, p2 mode)
    assert "warning" not in capsys.readouterr().err


SEQUENTIAL_FORGERIES = {
    "duplicated indices": (lambda r, s: r.extend(r[:3]), "index 0 is recorded twice"),
    "certified at 0.1 but not at 0": (
        lambda r, s: r[0].update(certified=[False, True, False], undecided=[False, False, False]),
        "certified at radius 0.1 but not at 0",
    ),
    "certified and undecided": (
        lambda r, s: r[0].update(certified=[True, True, True], undecided=[True, False, False]),
        "radius 0 is both certified and undecided",
    ),
    "certified from zero successes": (
        lambda r, s: r[0].update(
            certified=[True, False, False], undecided=[False] * 3, successes=0, prediction=r[0]["selected"]
        ),
        "certified from zero successes",
    ),
    "successes past the samples": (
        lambda r, s: r[0].update(successes=r[0]["samples"] + 1),
        "'successes' must be an integer in \\[0, samples",
    ),
    "a prediction the flags do not give": (
        lambda r, s: r[0].update(prediction=(r[0]["selected"] + 1) % 10),
        "'prediction' is .* but its flags say",
    ),
    "class 99 of 10": (lambda r, s: r[0].update(label=99), "'label' must be a class in \\[0, 10\\)"),
    "counts that do not sum to the samples": (
        lambda r, s: r[0].update(samples=r[0]["samples"] + 1),
        "its counts sum to .* but it drew samples",
    ),
    "decreasing radii": (lambda r, s: s.update(radii=[0.0, 0.2, 0.1]), "its settings' radii must increase"),
    "a repeated radius": (lambda r, s: s.update(radii=[0.0, 0.1, 0.1]), "its settings' radii must increase"),
}


@pytest.mark.parametrize("case", sorted(SEQUENTIAL_FORGERIES))
def test_report_refuses_sequential_records_that_contradict_themselves(
    runs: dict[str, Path], tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    edit, match = SEQUENTIAL_FORGERIES[case]
    path = _copy(runs["sequential"], tmp_path, edit)
    assert main(["report", str(path)]) == 2, case
    err = capsys.readouterr().err
    assert __import__("re").search(match, err), (case, err)


def test_report_warns_when_a_file_is_unfinished(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fewer records than the run's inputs, a run still holding the lock, part files never merged: each said on stderr."""
    path = _copy(runs["fixed"], tmp_path, lambda r, s: r.__delitem__(slice(12, None)))
    (tmp_path / (path.name + ".part1")).write_text("")
    lock = distributed.RecordsLock(path, 0)
    try:
        assert main(["report", str(path)]) == 0
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "holds 12 of the run's 20 inputs" in err
    assert "is being written right now (pid " in err
    assert "1 part file(s) of a distributed run (fixed.jsonl.part1) never merged" in err
    settings = json.loads(settings_path(runs["fixed"]).read_text())
    assert incomplete_warnings(runs["fixed"], settings, 20) == []
    assert incomplete_warnings(runs["fixed"], settings, 19) == [
        "fixed.jsonl holds 19 of the run's 20 inputs: the run was stopped before the end, or is still going (--resume finishes it)"
    ]


def test_recertify_records_refuses_sequential_records_in_the_api(runs: dict[str, Path]) -> None:
    """Counts taken at a data-dependent stopping time carry no fixed-n bound (17.6% wrong at alpha = 0.1 in the audit)."""
    records = [json.loads(line) for line in runs["sequential"].read_text().splitlines()]
    mechanism = renyicert.get_mechanism("gaussian", scale=0.25)
    with pytest.raises(
        ValueError, match=r"record 1 \(index 0\) is a sequential record .* no fixed-n Clopper-Pearson bound holds"
    ):
        recertify_records(records, mechanism, 0.1)


def test_the_checks_run_in_the_api_too(runs: dict[str, Path]) -> None:
    fixed = [json.loads(line) for line in runs["fixed"].read_text().splitlines()]
    settings = json.loads(settings_path(runs["fixed"]).read_text())
    verify_fixed_n(fixed, settings, "fixed.jsonl", renyicert.get_mechanism("gaussian", scale=0.25))
    with pytest.raises(ValueError, match="under gaussian.*the record was edited"):
        verify_fixed_n(fixed, settings, "fixed.jsonl", renyicert.get_mechanism("gaussian", scale=0.5))
    sequential = [json.loads(line) for line in runs["sequential"].read_text().splitlines()]
    verify_sequential(sequential, [0.0, 0.1, 0.2], {"inputs": 20, "num_classes": 10}, "s.jsonl")


def test_failed_lattice_copies_are_part_of_n_and_only_in_lattice_mode() -> None:
    record = {
        "index": 0,
        "label": 1,
        "prediction": 1,
        "selected": 1,
        "correct": True,
        "radius_renyi": 0.1,
        "counts": [3, 95],
        "n": 100,
        "p1_lower": 0.9,
        "p2_upper": 0.1,
        "failed": 2,
    }
    verify_fixed_n([record], {"grid": 16}, "r.jsonl")  # 98 votes and 2 failed copies: n = 100
    with pytest.raises(ValueError, match="only lattice noise can fail"):
        verify_fixed_n([record], {}, "r.jsonl")
    with pytest.raises(ValueError, match=r"its counts sum to 98, but it drew n - 1 failed = 99 copies"):
        verify_fixed_n([dict(record, failed=1)], {"grid": 16}, "r.jsonl")
    with pytest.raises(ValueError, match="'failed' must be a non-negative integer"):
        verify_fixed_n([dict(record, failed=-1)], {"grid": 16}, "r.jsonl")
    sequential = {
        "index": 0,
        "label": 1,
        "selected": 1,
        "prediction": 1,
        "certified": [True],
        "undecided": [False],
        "samples": 50,
        "successes": 47,
        "counts": [0, 47],
        "n0": 10,
        "failed": 3,
    }
    verify_sequential([sequential], [0.0], {"grid": 16}, "s.jsonl")
    with pytest.raises(ValueError, match="its counts sum to 47, but it drew samples - 2 failed"):
        verify_sequential([dict(sequential, failed=2)], [0.0], {"grid": 16}, "s.jsonl")
