"""The options every command shares (cli/arguments.py): devices, batch sizes, noise, sampler paths, data and input ranges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from renyicert.cli import main
from .helpers import one_line_error


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


def test_triton_on_a_cpu_machine_is_a_one_line_error(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--sampler", "triton", "--limit", "1", "--n", "50", "--quiet"],
        "the Triton sampler runs on CUDA tensors",
    )
    # --backend is the same option under Smoothed's name; a path it does not know is refused by name.
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--backend", "triton", "--limit", "1", "--n", "50", "--quiet"],
        "the Triton sampler runs on CUDA tensors",
    )
    one_line_error(capsys, ["certify", "--checkpoint", str(trained), "--backend", "gpu"], "invalid choice: 'gpu'")


def test_num_classes_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(
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
        one_line_error(capsys, [*command, "--device", device, "--limit", "2", "--quiet"], message)
    one_line_error(
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


def test_input_ranges_on_the_command_line(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from renyicert.workflow.data import load_digits

    test = load_digits()[1]
    np.savez(tmp_path / "bytes.npz", x=(test.x[:4].numpy() * 255).round().astype(np.uint8), y=test.y[:4].numpy())
    one_line_error(
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
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--input-range", "0,255", "--quiet"],
        "--input-range applies to .npz/.pt files",
    )


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
    one_line_error(capsys, [*cifar, "--num-classes", "5"], "has 10 classes, got --num-classes 5")
    one_line_error(capsys, [*cifar, "--image-size", "16"], "an image size applies to image folders")
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--data", str(tmp_path / "d.npz"), "--image-size", "8", "--quiet"],
        "--image-size applies to image folders",
    )
    one_line_error(
        capsys,
        ["certify", "--checkpoint", str(trained), "--image-size", "8", "--quiet"],
        "--image-size applies to image folders; 'digits' is not one",
    )
    assert main([*cifar, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inputs"] == 3
