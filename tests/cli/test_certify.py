"""The certify and predict commands: user data and models, records on disk, seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from renyicert.cli import main
from .helpers import one_line_error


def test_user_data_and_model_paths(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((40, 5)).astype("float32"), (rng.random(40) > 0.5).astype("int64")
    np.savez(tmp_path / "d.npz", x=x, y=y)
    model = tmp_path / "m.pt"
    argv = [
        "train",
        "--data",
        str(tmp_path / "d.npz"),
        "--model",
        "tests.workflow.test_models:wide_model",
        "--epochs",
        "2",
        "--out",
        str(model),
        "--quiet",
    ]
    assert main(argv) == 0
    # The checkpoint names module:callable code: imported only when the user names it too.
    assert (
        main(["certify", "--data", str(tmp_path / "d.npz"), "--checkpoint", str(model), "--n", "100", "--quiet"]) == 2
    )
    assert "imports a module:callable only when you name it yourself" in capsys.readouterr().err
    assert (
        main(
            [
                "certify",
                "--data",
                str(tmp_path / "d.npz"),
                "--checkpoint",
                str(model),
                "--model",
                "tests.workflow.test_models:wide_model",
                "--n",
                "100",
                "--quiet",
            ]
        )
        == 0
    )
    np.savez(tmp_path / "wide.npz", x=rng.random((10, 7)).astype("float32"), y=y[:10])
    capsys.readouterr()
    assert (
        main(
            [
                "certify",
                "--data",
                str(tmp_path / "wide.npz"),
                "--checkpoint",
                str(model),
                "--model",
                "tests.workflow.test_models:wide_model",
                "--quiet",
            ]
        )
        == 2
    )
    assert "takes inputs of shape (5,), the data has (7,)" in capsys.readouterr().err
    np.savez(tmp_path / "three.npz", x=x[:9], y=np.arange(9) % 3)
    assert (
        main(
            [
                "certify",
                "--data",
                str(tmp_path / "three.npz"),
                "--checkpoint",
                str(model),
                "--model",
                "tests.workflow.test_models:wide_model",
                "--num-classes",
                "3",
                "--quiet",
            ]
        )
        == 2
    )
    assert "scores 2 classes, the data has 3" in capsys.readouterr().err
    assert main(["train", "--model", "cnn", "--data", str(tmp_path / "d.npz"), "--out", str(model), "--quiet"]) == 2
    assert "DigitsCNN needs images" in capsys.readouterr().err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["certify", "--checkpoint", str(tmp_path / "junk.pt"), "--quiet"]) == 2
    assert "has no junk.json beside it" in capsys.readouterr().err


def test_records_in_a_new_folder_and_a_read_only_folder(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    # Before: --records newdir/r.jsonl failed naming ...settings.json.tmp.
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "1",
                "--n",
                "50",
                "--records",
                str(tmp_path / "new" / "r.jsonl"),
                "--quiet",
            ]
        )
        == 0
    )
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        one_line_error(
            capsys,
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "1",
                "--n",
                "50",
                "--records",
                str(locked / "r.jsonl"),
                "--quiet",
            ],
            str(locked / "r.jsonl"),
        )
    finally:
        locked.chmod(0o700)


def test_a_seed_beyond_the_philox_keys_is_refused(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: seeds were taken modulo 2^63 without a word.
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--limit", "2", "--n", "50", "--seed", str(2**63 - 1), "--quiet"],
        "seed must be at most 2^63 - 2",
    )


def test_a_users_own_weights_certify_without_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from renyicert.workflow.models import DigitsMLP

    torch.manual_seed(0)
    torch.save(DigitsMLP().state_dict(), tmp_path / "w.pt")
    base = ["certify", "--model", "mlp", "--weights", str(tmp_path / "w.pt"), "--limit", "4", "--n", "100", "--quiet"]
    # Plain weights do not say which noise: asked for, naming what is missing, never assumed.
    one_line_error(
        capsys,
        base,
        "give --mechanism and --scale: the noise to certify with, normally the one the model was trained with (plain weights do not record it)",
    )
    one_line_error(capsys, [*base, "--mechanism", "laplace"], "give --scale: the noise to certify with")
    assert main([*base, "--mechanism", "laplace", "--scale", "0.25", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["mechanism"], summary["norm"], summary["inputs"], summary["n"]) == ("laplace", "l1", 4, 100)
    assert set(summary["acr"]) == {"renyi", "tight", "pixeldp", "best"} and 0.0 <= summary["abstention_rate"] <= 1.0
    one_line_error(capsys, ["certify", "--weights", str(tmp_path / "w.pt"), "--quiet"], "--weights needs --model")
    one_line_error(capsys, [*base, "--checkpoint", str(tmp_path / "w.pt")], "not both")
    one_line_error(capsys, ["certify", "--quiet"], "give the model: --checkpoint FILE.pt")
    one_line_error(
        capsys,
        [
            "certify",
            "--model",
            "cnn",
            "--weights",
            str(tmp_path / "w.pt"),
            "--mechanism",
            "gaussian",
            "--scale",
            "0.25",
            "--quiet",
        ],
        "do not fit the model",
    )


def test_a_checkpoint_without_noise_asks_for_it_without_claiming_how_it_was_trained(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = json.loads(trained.with_suffix(".json").read_text())
    from renyicert.workflow.checkpoints import load_checkpoint, save_checkpoint

    model, _ = load_checkpoint(trained)
    save_checkpoint(
        tmp_path / "bare.pt",
        model,
        {key: value for key, value in config.items() if key not in ("mechanism", "config_sha256", "state_dict_sha256")},
    )
    # Before: "the model was trained without noise", which the file does not say.
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(tmp_path / "bare.pt"), "--quiet"],
        "the checkpoint does not record one: it was saved without a mechanism",
    )


def test_predict_prints_a_class_or_an_abstention_per_input(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--checkpoint", str(trained), "--limit", "5", "--n", "200", "--json", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["predictions"]) == 5 and all(-1 <= p < 10 for p in result["predictions"])
    import renyicert
    from renyicert.workflow.data import load_digits
    from renyicert.workflow.checkpoints import load_checkpoint

    model, _ = load_checkpoint(trained)
    smoothed = renyicert.Smoothed(model, "gaussian", 10, scale=0.25, progress=False)
    assert result["predictions"] == smoothed.predict(load_digits()[1].x[:5], n=200, alpha=0.001, seed=0)
    assert main(["predict", "--checkpoint", str(trained), "--limit", "2", "--n", "50", "--quiet"]) == 0
    assert "abstained on" in capsys.readouterr().out
    one_line_error(
        capsys,
        ["predict", "--checkpoint", str(trained), "--inputs-per-call", "0", "--quiet"],
        "--inputs-per-call must be a positive integer, got 0",
    )
    one_line_error(
        capsys, ["predict", "--checkpoint", str(trained), "--n", "0", "--quiet"], "n must be a positive integer, got 0"
    )
