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
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {
        "name": "gaussian",
        "scale": 0.25,
        "parameters": {},
    }
    assert (
        main(
            ["certify", "--checkpoint", str(model), "--limit", "6", "--n", "200", "--records", str(records), "--quiet"]
        )
        == 0
    )
    assert len(records.read_text().splitlines()) == 6
    assert (
        main(
            [
                "attack",
                "--checkpoint",
                str(model),
                "--undefended",
                str(std),
                "--limit",
                "4",
                "--eps",
                "0.5",
                "--attacks",
                "pgd,transfer",
                "--vote-samples",
                "100",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    argv = [
        "attack",
        "--checkpoint",
        str(model),
        "--limit",
        "3",
        "--eps",
        "0.5",
        "--attacks",
        "pgd-long",
        "--long-steps",
        "4",
        "--long-restarts",
        "2",
        "--vote-samples",
        "50",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)["accuracy"]) == {"pgd-long", "all"}
    assert main([*argv[:-4], "--long-restarts", "0", "--quiet"]) == 2
    assert "long_restarts must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["report", str(records), "--all-bounds", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "renyi" in out and "pixeldp" in out and (tmp_path / "p.png").exists()


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
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(model),
                "--batch-size",
                "auto",
                "--limit",
                "2",
                "--n",
                "50",
                "--records",
                str(records),
                "--quiet",
            ]
        )
        == 0
    )
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


def test_mechanism_parameters_go_through_train_certify_and_attack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], linf_registered: object
) -> None:
    model, records = tmp_path / "m.pt", tmp_path / "r.jsonl"
    argv = [
        "train",
        "--mechanism",
        "test-linf-gaussian",
        "--scale",
        "0.02",
        "-o",
        "d=64",
        "--epochs",
        "2",
        "--out",
        str(model),
        "--quiet",
    ]
    assert main(argv) == 0
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {
        "name": "test-linf-gaussian",
        "scale": 0.02,
        "parameters": {"d": 64},
    }
    # certify takes the checkpoint's parameters with its mechanism, and keeps them in the run's settings
    assert (
        main(
            ["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(records), "--quiet"]
        )
        == 0
    )
    settings = json.loads(records.with_name(records.name + ".settings.json").read_text())
    assert settings["parameters"] == {"d": 64} and settings["mechanism"] == "test-linf-gaussian"
    capsys.readouterr()
    # -o overrides the checkpoint's value: a formula for 16 coordinates is refused on 64-element inputs
    assert main(["certify", "--checkpoint", str(model), "--limit", "2", "--n", "100", "-o", "d=16", "--quiet"]) == 2
    assert "states its divergence for 16 coordinates, but the inputs have 64" in capsys.readouterr().err
    capsys.readouterr()
    assert (
        main(
            [
                "attack",
                "--checkpoint",
                str(model),
                "--limit",
                "2",
                "--eps",
                "0.01",
                "--attacks",
                "pgd",
                "--vote-samples",
                "50",
                "-o",
                "d=64",
                "--json",
                "--quiet",
            ]
        )
        == 2
    )
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
def test_bad_mechanism_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], linf_registered: object, options: list[str], message: str
) -> None:
    argv = [
        "train",
        "--mechanism",
        "test-linf-gaussian",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "m.pt"),
        "--quiet",
        *options,
    ]
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
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--sampler", "triton", "--limit", "1", "--n", "50", "--quiet"],
        "the Triton sampler runs on CUDA tensors",
    )
    # --backend is the same option under Smoothed's name; a path it does not know is refused by name.
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--backend", "triton", "--limit", "1", "--n", "50", "--quiet"],
        "the Triton sampler runs on CUDA tensors",
    )
    _one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--backend", "gpu"], "invalid choice: 'gpu'")


def test_train_out_onto_a_directory_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.pt").mkdir()
    _one_line_error(capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "d.pt"), "--quiet"], "is a directory")
    _one_line_error(
        capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "m.bin"), "--quiet"], "--out must end in .pt"
    )


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
def test_report_refuses_records_it_cannot_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, object], message: str
) -> None:
    # Before: Infinity gave a table with r=nan columns; NaN and negative radii were accepted; a missing key a traceback.
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"correct": True, "radius_renyi": 0.2}) + "\n" + json.dumps(record) + "\n")
    _one_line_error(capsys, ["report", str(path)], f"{path} record 2: {message}")


def test_num_classes_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--num-classes", "12", "--limit", "1", "--quiet"],
        "the digits have 10 classes, got --num-classes 12",
    )
    # A user file whose labels lack the top class still certifies: the classes default to the checkpoint's model's.
    from renyicert.workflow.data import load_digits

    test = load_digits()[1]
    keep = test.y < 9
    np.savez(tmp_path / "no9.npz", x=test.x[keep][:4].numpy(), y=test.y[keep][:4].numpy())
    assert (
        main(["certify", "--data", str(tmp_path / "no9.npz"), "--checkpoint", str(trained), "--n", "50", "--quiet"])
        == 0
    )


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
        _one_line_error(
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
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--limit", "2", "--n", "50", "--seed", str(2**63 - 1), "--quiet"],
        "seed must be at most 2^63 - 2",
    )


def test_certify_at_radii_sequentially_and_report_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, records, fixed = tmp_path / "m.pt", tmp_path / "s.jsonl", tmp_path / "f.jsonl"
    assert main(["train", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    argv = [
        "certify",
        "--checkpoint",
        str(model),
        "--limit",
        "6",
        "--radii",
        "0,0.25",
        "--budget",
        "2000",
        "--records",
        str(records),
        "--quiet",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "decided sequentially" in out and "undecided" in out and "mean forward passes per input" in out
    assert len(records.read_text().splitlines()) == 6
    assert json.loads((tmp_path / "s.jsonl.settings.json").read_text())["radii"] == [0.0, 0.25]
    assert main(["report", str(records)]) == 0
    assert "certified" in capsys.readouterr().out
    assert (
        main(["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(fixed), "--quiet"])
        == 0
    )
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


def test_a_users_own_weights_certify_without_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from renyicert.workflow.models import DigitsMLP

    torch.manual_seed(0)
    torch.save(DigitsMLP().state_dict(), tmp_path / "w.pt")
    base = ["certify", "--model", "mlp", "--weights", str(tmp_path / "w.pt"), "--limit", "4", "--n", "100", "--quiet"]
    # Plain weights do not say which noise: asked for, naming what is missing, never assumed.
    _one_line_error(
        capsys,
        base,
        "give --mechanism and --scale: the noise to certify with, normally the one the model was trained with (plain weights do not record it)",
    )
    _one_line_error(capsys, [*base, "--mechanism", "laplace"], "give --scale: the noise to certify with")
    assert main([*base, "--mechanism", "laplace", "--scale", "0.25", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["mechanism"], summary["norm"], summary["inputs"], summary["n"]) == ("laplace", "l1", 4, 100)
    assert set(summary["acr"]) == {"renyi", "tight", "pixeldp", "best"} and 0.0 <= summary["abstention_rate"] <= 1.0
    _one_line_error(capsys, ["certify", "--weights", str(tmp_path / "w.pt"), "--quiet"], "--weights needs --model")
    _one_line_error(capsys, [*base, "--checkpoint", str(tmp_path / "w.pt")], "not both")
    _one_line_error(capsys, ["certify", "--quiet"], "give the model: --checkpoint FILE.pt")
    _one_line_error(
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
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(tmp_path / "bare.pt"), "--quiet"],
        "the checkpoint does not record one: it was saved without a mechanism",
    )


@pytest.mark.parametrize(
    "device,message",
    [
        ("cuda", "torch sees no CUDA device here"),
        ("tpu", "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        ("nonsense:x", "--device must be"),
    ],
)
def test_devices_that_are_not_here_are_refused(
    trained: Path, capsys: pytest.CaptureFixture[str], device: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for command in (
        ["certify", "--checkpoint", str(trained)],
        ["predict", "--checkpoint", str(trained)],
        ["attack", "--checkpoint", str(trained), "--eps", "0.1"],
    ):
        _one_line_error(capsys, [*command, "--device", device, "--limit", "2", "--quiet"], message)
    _one_line_error(
        capsys,
        ["train", "--device", device, "--epochs", "1", "--out", str(trained.parent / "x.pt"), "--quiet"],
        message,
    )


def test_device_auto_and_cpu_run_on_the_cpu_here(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["train", "--device", "auto", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    assert "on cpu" in capsys.readouterr().out
    for device in ("auto", "cpu"):
        assert (
            main(
                [
                    "certify",
                    "--checkpoint",
                    str(trained),
                    "--device",
                    device,
                    "--limit",
                    "2",
                    "--n",
                    "50",
                    "--json",
                    "--quiet",
                ]
            )
            == 0
        )
        assert json.loads(capsys.readouterr().out)["inputs"] == 2


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
    _one_line_error(
        capsys,
        ["predict", "--checkpoint", str(trained), "--inputs-per-call", "0", "--quiet"],
        "--inputs-per-call must be a positive integer, got 0",
    )
    _one_line_error(
        capsys, ["predict", "--checkpoint", str(trained), "--n", "0", "--quiet"], "n must be a positive integer, got 0"
    )


def test_input_ranges_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from renyicert.workflow.data import load_digits

    test = load_digits()[1]
    np.savez(tmp_path / "bytes.npz", x=(test.x[:4].numpy() * 255).round().astype(np.uint8), y=test.y[:4].numpy())
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--data", str(tmp_path / "bytes.npz"), "--quiet"],
        "holds values in [0, 255], outside [0, 1]",
    )
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--data",
                str(tmp_path / "bytes.npz"),
                "--input-range",
                "0,255",
                "--n",
                "50",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["inputs"] == 4
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--input-range", "0,255", "--quiet"],
        "--input-range applies to .npz/.pt files",
    )


def test_report_reads_the_norm_from_the_settings_and_refuses_to_mix_norms(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gauss, laplace = tmp_path / "g.jsonl", tmp_path / "l.jsonl"
    assert (
        main(
            ["certify", "--checkpoint", str(trained), "--limit", "6", "--n", "200", "--records", str(gauss), "--quiet"]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--mechanism",
                "laplace",
                "--limit",
                "6",
                "--n",
                "200",
                "--records",
                str(laplace),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # Before: Laplace records were labelled l2, and records of both mechanisms shared one table.
    assert main(["report", str(laplace), "--all-bounds", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["mechanism"], r["norm"], r["bound"]) for r in rows] == [
        ("laplace", "l1", "renyi"),
        ("laplace", "l1", "tight"),
        ("laplace", "l1", "pixeldp"),
        ("laplace", "l1", "best"),
    ]
    assert all({"acr", "abstention_rate", "clean_accuracy", "certified_accuracy"} <= set(r) for r in rows)
    _one_line_error(capsys, ["report", str(gauss), str(laplace)], "different norms (l1, l2)")
    _one_line_error(
        capsys, ["report", str(laplace), "--norm", "l2"], "its records are l1 radii (laplace noise), not l2"
    )
    assert main(["report", str(laplace), "--all-bounds", "--plot", str(tmp_path / "l.png")]) == 0
    out = capsys.readouterr().out
    assert "ACR" in out and "abstain" in out and "l1 radii" in out


def test_recertify_from_the_counts_without_the_model(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, again = tmp_path / "r.jsonl", tmp_path / "r01.jsonl"
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "6",
                "--n",
                "200",
                "--records",
                str(records),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "6",
                "--n",
                "200",
                "--alpha",
                "0.1",
                "--records",
                str(tmp_path / "direct.jsonl"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["recertify", str(records), "--alpha", "0.1", "--out", str(again), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["alpha"] == 0.1
    strip = lambda path: [
        {k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()
    ]  # noqa: E731
    assert strip(again) == strip(tmp_path / "direct.jsonl")
    settings = json.loads((tmp_path / "r01.jsonl.settings.json").read_text())
    assert settings["alpha"] == 0.1 and settings["recertified_from"] == str(records)
    _one_line_error(capsys, ["recertify", str(records), "--alpha", "0.1", "--out", str(again)], "already exists")
    _one_line_error(capsys, ["recertify", str(records), "--alpha", "2"], "alpha must be in (0, 1)")
    (tmp_path / "bare.jsonl").write_text(records.read_text())
    _one_line_error(
        capsys,
        ["recertify", str(tmp_path / "bare.jsonl"), "--alpha", "0.1"],
        "the mechanism and scale its counts were drawn with are unknown",
    )
    sequential = tmp_path / "s.jsonl"
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "2",
                "--radii",
                "0",
                "--budget",
                "200",
                "--records",
                str(sequential),
                "--quiet",
            ]
        )
        == 0
    )
    _one_line_error(capsys, ["recertify", str(sequential), "--alpha", "0.1"], "holds sequential records")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import renyicert

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"renyicert {renyicert.__version__}"


def test_data_set_folders_on_the_command_line_refuse_flags_that_do_not_apply(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.workflow.test_datasets import _write_cifar

    _write_cifar(tmp_path / "cifar", {"test_batch": 3})
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 1, 8, 8), "float32"), y=np.array([0, 1]))
    weights = ["--model", "resnet20", "--mechanism", "gaussian", "--scale", "0.25", "--n", "20", "--quiet"]
    torch_save_resnet = tmp_path / "r.pt"
    import torch

    from renyicert.workflow.models import build_model

    torch.save(build_model("resnet20", (3, 32, 32), 10).state_dict(), torch_save_resnet)
    cifar = ["certify", "--data", str(tmp_path / "cifar"), "--weights", str(torch_save_resnet), *weights]
    _one_line_error(capsys, [*cifar, "--num-classes", "5"], "has 10 classes, got --num-classes 5")
    _one_line_error(capsys, [*cifar, "--image-size", "16"], "an image size applies to image folders")
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--data", str(tmp_path / "d.npz"), "--image-size", "8", "--quiet"],
        "--image-size applies to image folders",
    )
    _one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--image-size", "8", "--quiet"],
        "--image-size applies to image folders; 'digits' is not one",
    )
    assert main([*cifar, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == 3


def test_lattice_mode_on_the_command_line_records_says_and_keeps_its_mode(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--checkpoint", str(trained), "--limit", "12", "--samples", "300", "--quiet"]
    assert main(["certify", *common, "--records", str(tmp_path / "float.jsonl")]) == 0
    assert main(["certify", *common, "--grid", "16", "--records", str(tmp_path / "lattice.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "lattice.jsonl").read_text().splitlines()]
    assert all(r["failed"] == 0 and sum(r["counts"]) == r["n"] for r in records)
    assert json.loads((tmp_path / "lattice.jsonl.settings.json").read_text())["grid"] == 16
    assert main(["report", str(tmp_path / "lattice.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
    _one_line_error(
        capsys,
        ["report", str(tmp_path / "float.jsonl"), str(tmp_path / "lattice.jsonl")],
        "certified in different modes (float, lattice (grid 1/16))",
    )
    _one_line_error(
        capsys,
        ["recertify", str(tmp_path / "float.jsonl"), "--alpha", "0.01", "--grid", "16"],
        "was certified in float mode",
    )
    assert (
        main(
            [
                "recertify",
                str(tmp_path / "lattice.jsonl"),
                "--alpha",
                "0.001",
                "--grid",
                "16",
                "--out",
                str(tmp_path / "again.jsonl"),
            ]
        )
        == 0
    )
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["radius_renyi"] for r in again] == [
        r["radius_renyi"] for r in records
    ]  # at the records' own alpha: unchanged
    _one_line_error(capsys, ["certify", *common, "--grid", "255"], "off the grid k / 255")
    _one_line_error(capsys, ["certify", *common, "--grid", "0"], "--grid: must be an integer in [1, 65536]")
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained),
                "--limit",
                "3",
                "--samples",
                "200",
                "--grid",
                "16",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                *common[:4],
                "--grid",
                "16",
                "--radii",
                "0,0.2",
                "--budget",
                "500",
                "--quiet",
                "--records",
                str(tmp_path / "seq.jsonl"),
            ]
        )
        == 0
    )
    assert all("failed" in json.loads(line) for line in (tmp_path / "seq.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert main(["report", str(tmp_path / "seq.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
