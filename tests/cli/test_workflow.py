"""The workflow commands end to end on a few digits, and their errors for user files that do not fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from renyicert.cli import main


def test_train_certify_attack_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, std, records = tmp_path / "m.pt", tmp_path / "std.pt", tmp_path / "r.jsonl"
    assert main(["train", "--method", "augmentation", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    assert main(["train", "--method", "standard", "--epochs", "3", "--out", str(std), "--quiet"]) == 0
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {"name": "gaussian", "scale": 0.25, "parameters": {}}
    assert main(["certify", "--checkpoint", str(model), "--limit", "6", "--n", "200", "--records", str(records), "--quiet"]) == 0
    assert len(records.read_text().splitlines()) == 6
    assert main(["attack", "--checkpoint", str(model), "--undefended", str(std), "--limit", "4", "--eps", "0.5", "--attacks", "pgd,transfer", "--vote-samples", "100", "--json", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(records), "--all-bounds", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "renyi" in out and "pixeldp" in out and (tmp_path / "p.png").exists()


def test_user_data_and_model_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 5)).astype("float32"), (rng.random(40) > 0.5).astype("int64")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    model = tmp_path / "m.pt"
    argv = ["train", "--data", str(tmp_path / "d.npz"), "--model", "tests.workflow.test_models:wide_model", "--epochs", "2", "--out", str(model), "--quiet"]
    assert main(argv) == 0
    # The checkpoint names module:callable code: imported only when the user names it too.
    assert main(["certify", "--data", str(tmp_path / "d.npz"), "--checkpoint", str(model), "--n", "100", "--quiet"]) == 2
    assert "imports a module:callable only when you name it yourself" in capsys.readouterr().err
    assert main(["certify", "--data", str(tmp_path / "d.npz"), "--checkpoint", str(model), "--model", "tests.workflow.test_models:wide_model", "--n", "100", "--quiet"]) == 0
    np.savez(tmp_path / "wide.npz", x=rng.random((10, 7)).astype("float32"), y=y[:10])
    capsys.readouterr()
    assert main(["certify", "--data", str(tmp_path / "wide.npz"), "--checkpoint", str(model), "--model", "tests.workflow.test_models:wide_model", "--quiet"]) == 2
    assert "takes inputs of shape (5,), the data has (7,)" in capsys.readouterr().err
    np.savez(tmp_path / "three.npz", x=x[:9], y=np.arange(9) % 3)
    assert main(["certify", "--data", str(tmp_path / "three.npz"), "--checkpoint", str(model), "--model", "tests.workflow.test_models:wide_model", "--num-classes", "3", "--quiet"]) == 2
    assert "scores 2 classes, the data has 3" in capsys.readouterr().err
    assert main(["train", "--model", "cnn", "--data", str(tmp_path / "d.npz"), "--out", str(model), "--quiet"]) == 2
    assert "DigitsCNN needs images" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["certify", "--checkpoint", str(tmp_path / "junk.pt"), "--quiet"]) == 2
    assert "has no junk.json beside it" in capsys.readouterr().err


def test_a_zero_scale_is_an_error_not_the_checkpoints_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.pt"
    assert main(["train", "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["certify", "--checkpoint", str(model), "--scale", "0", "--limit", "2", "--n", "50", "--quiet"]) == 2
    assert "scale must be finite and > 0, got 0.0" in capsys.readouterr().err


def test_batch_size_auto_or_a_positive_integer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.pt"
    assert main(["train", "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    records = tmp_path / "r.jsonl"
    assert main(["certify", "--checkpoint", str(model), "--batch-size", "auto", "--limit", "2", "--n", "50", "--records", str(records), "--quiet"]) == 0
    assert len(records.read_text().splitlines()) == 2
    capsys.readouterr()
    assert main(["certify", "--checkpoint", str(model), "--batch-size", "many", "--quiet"]) == 2
    assert "must be a positive integer or 'auto', got 'many'" in capsys.readouterr().err


@pytest.fixture
def linf_registered() -> object:
    import renyicert

    from ..bad_mechanisms import LinfGaussian

    renyicert.register(LinfGaussian)
    yield LinfGaussian
    renyicert.unregister(LinfGaussian.name)


def test_mechanism_parameters_go_through_train_certify_and_attack(tmp_path: Path, capsys: pytest.CaptureFixture[str], linf_registered: object) -> None:
    model, records = tmp_path / "m.pt", tmp_path / "r.jsonl"
    argv = ["train", "--mechanism", "test-linf-gaussian", "--scale", "0.02", "-o", "d=64", "--epochs", "2", "--out", str(model), "--quiet"]
    assert main(argv) == 0
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {"name": "test-linf-gaussian", "scale": 0.02, "parameters": {"d": 64}}
    # certify takes the checkpoint's parameters with its mechanism, and keeps them in the run's settings
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(records), "--quiet"]) == 0
    settings = json.loads(records.with_name(records.name + ".settings.json").read_text())
    assert settings["parameters"] == {"d": 64} and settings["mechanism"] == "test-linf-gaussian"
    capsys.readouterr()
    # -o overrides the checkpoint's value: a formula for 16 coordinates is refused on 64-element inputs
    assert main(["certify", "--checkpoint", str(model), "--limit", "2", "--n", "100", "-o", "d=16", "--quiet"]) == 2
    assert "states its divergence for 16 coordinates, but the inputs have 64" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["attack", "--checkpoint", str(model), "--limit", "2", "--eps", "0.01", "--attacks", "pgd", "--vote-samples", "50", "-o", "d=64", "--json", "--quiet"]) == 2
    assert "not linf (test-linf-gaussian)" in capsys.readouterr().err  # the attack saw the mechanism and its norm


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["-o", "d=4.5"], "parameter 'd' of test-linf-gaussian expects an int, got '4.5'"),
        (["-o", "width=3"], "test-linf-gaussian has no parameter 'width'; its parameters are ['scale', 'd']"),
        (["-o", "d"], "-o expects KEY=VALUE, got 'd'"),
        (["-o", "scale=2"], "give the scale with --scale"),
        (["-o", "d=4", "-o", "d=5"], "-o d= given twice"),
    ],
)
def test_bad_mechanism_options_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], linf_registered: object, options: list[str], message: str) -> None:
    argv = ["train", "--mechanism", "test-linf-gaussian", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet", *options]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tmp_path_factory.mktemp("trained") / "m.pt"
    assert main(["train", "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    return model


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_triton_on_a_cpu_machine_is_a_one_line_error(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--sampler", "triton", "--limit", "1", "--n", "50", "--quiet"], "the Triton sampler runs on CUDA tensors")


def test_train_out_onto_a_directory_is_refused_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "d.pt").mkdir()
    _one_line_error(capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "d.pt"), "--quiet"], "is a directory")
    _one_line_error(capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "m.bin"), "--quiet"], "--out must end in .pt")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"correct": True, "radius_renyi": "inf"}, "radius_renyi must be a finite number >= 0, got 'inf'"),
        ({"correct": True, "radius_renyi": -0.5}, "radius_renyi must be a finite number >= 0, got -0.5"),
        ({"correct": True, "radius_renyi": "nan"}, "radius_renyi must be a finite number >= 0, got 'nan'"),
        ({"correct": True}, "the record has no 'radius_renyi'"),
        ({"radius_renyi": 0.1}, "'correct' must be true or false"),
    ],
)
def test_report_refuses_records_it_cannot_trust(tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, object], message: str) -> None:
    # Before: Infinity gave a table with r=nan columns; NaN and negative radii were accepted; a missing key a traceback.
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"correct": True, "radius_renyi": 0.2}) + "\n" + json.dumps(record) + "\n")
    _one_line_error(capsys, ["report", str(path)], f"{path} record 2: {message}")


def test_num_classes_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--num-classes", "12", "--limit", "1", "--quiet"], "the digits have 10 classes, got --num-classes 12")
    # A user file whose labels lack the top class still certifies: the classes default to the checkpoint's model's.
    from renyicert.workflow.data import load_digits

    test = load_digits()[1]
    keep = test.y < 9
    np.savez(tmp_path / "no9.npz", x=test.x[keep][:4].numpy(), y=test.y[keep][:4].numpy())
    assert main(["certify", "--data", str(tmp_path / "no9.npz"), "--checkpoint", str(trained), "--n", "50", "--quiet"]) == 0


def test_records_in_a_new_folder_and_a_read_only_folder(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import os

    # Before: --records newdir/r.jsonl failed naming ...settings.json.tmp.
    assert main(["certify", "--checkpoint", str(trained), "--limit", "1", "--n", "50", "--records", str(tmp_path / "new" / "r.jsonl"), "--quiet"]) == 0
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        _one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--limit", "1", "--n", "50", "--records", str(locked / "r.jsonl"), "--quiet"], str(locked / "r.jsonl"))
    finally:
        locked.chmod(0o700)


def test_a_seed_beyond_the_philox_keys_is_refused(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: seeds were taken modulo 2^63 without a word.
    _one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--limit", "2", "--n", "50", "--seed", str(2**63 - 1), "--quiet"], "seed must be at most 2^63 - 2")


def test_certify_at_radii_sequentially_and_report_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, records, fixed = tmp_path / "m.pt", tmp_path / "s.jsonl", tmp_path / "f.jsonl"
    assert main(["train", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    argv = ["certify", "--checkpoint", str(model), "--limit", "6", "--radii", "0,0.25", "--budget", "2000", "--records", str(records), "--quiet"]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "decided sequentially" in out and "undecided" in out and "mean forward passes per input" in out
    assert len(records.read_text().splitlines()) == 6
    assert json.loads((tmp_path / "s.jsonl.settings.json").read_text())["radii"] == [0.0, 0.25]
    assert main(["report", str(records)]) == 0
    assert "certified" in capsys.readouterr().out
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(fixed), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["report", str(records), str(fixed)]) == 2
    assert "cannot report fixed-n records" in capsys.readouterr().err
    assert main(["report", str(records), "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot draws curves" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--budget", "100", "--quiet"]) == 2
    assert "--budget applies to sequential certification: give --radii too" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--radii", "0.1", "--n", "100", "--quiet"]) == 2
    assert "--n belongs to fixed-n certification" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--radii", "0.3,0.1", "--quiet"]) == 2
    assert "radii must be strictly increasing" in capsys.readouterr().err
