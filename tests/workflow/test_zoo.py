"""The field's published checkpoints load as their code saves them: Cohen et al.'s CIFAR ResNets and the ImageNet ResNet-50."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import renyicert
from renyicert.cli import main
from renyicert.workflow.published import load_published_checkpoint
from renyicert.workflow.zoo import CohenCifarResNet, NormalizeLayer, TorchvisionResNet50, published_model


def _cohen_cifar_keys(depth: int) -> list[str]:
    """The state-dict keys of locuslab/smoothing's ``code/archs/cifar_resnet.py`` ``ResNet(depth, block_name='BasicBlock')``,
    written from that file: conv1, bn1, layer1-3 of (depth - 2) / 6 BasicBlocks (conv1, bn1, conv2, bn2, and a
    ``downsample`` = Sequential(Conv2d 1x1, BatchNorm2d) on the first block of layer2 and layer3, where the width doubles), fc."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{b}" for b in bn)]
    for stage in (1, 2, 3):
        for block in range((depth - 2) // 6):
            at = f"layer{stage}.{block}"
            keys += [
                f"{at}.conv1.weight",
                *(f"{at}.bn1.{b}" for b in bn),
                f"{at}.conv2.weight",
                *(f"{at}.bn2.{b}" for b in bn),
            ]
            if stage > 1 and block == 0:
                keys += [f"{at}.downsample.0.weight", *(f"{at}.downsample.1.{b}" for b in bn)]
    return keys + ["fc.weight", "fc.bias"]


def _torchvision_resnet50_keys() -> list[str]:
    """torchvision's ``models/resnet.py`` ``resnet50()``: Bottleneck blocks [3, 4, 6, 3] of conv1-3 and bn1-3, a downsample on
    each stage's first block (the first stage too: 64 -> 256 channels), fc; 320 keys."""
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    keys = ["conv1.weight", *(f"bn1.{b}" for b in bn)]
    for stage, blocks in enumerate((3, 4, 6, 3), start=1):
        for block in range(blocks):
            at = f"layer{stage}.{block}"
            for k in (1, 2, 3):
                keys += [f"{at}.conv{k}.weight", *(f"{at}.bn{k}.{b}" for b in bn)]
            if block == 0:
                keys += [f"{at}.downsample.0.weight", *(f"{at}.downsample.1.{b}" for b in bn)]
    return keys + ["fc.weight", "fc.bias"]


@pytest.mark.parametrize("depth", [20, 110])
def test_the_cifar_resnet_has_the_public_codes_keys(depth: int) -> None:
    assert list(CohenCifarResNet(depth).state_dict()) == _cohen_cifar_keys(depth)


def test_resnet50_has_torchvisions_keys_and_parameter_count() -> None:
    net = TorchvisionResNet50()
    assert list(net.state_dict()) == _torchvision_resnet50_keys() and len(net.state_dict()) == 320
    assert sum(p.numel() for p in net.parameters()) == 25_557_032  # torchvision's documented ResNet-50 size


def test_the_normalize_layer_keeps_its_constants_out_of_the_state_dict() -> None:
    model = published_model("cifar_resnet20")
    assert isinstance(model[0], NormalizeLayer) and not any(k.startswith("0.") for k in model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    expected = (x - torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)) / torch.tensor(
        [0.2023, 0.1994, 0.2010]
    ).view(1, 3, 1, 1)
    assert torch.allclose(model[0](x), expected)


def _save_as_cohen(path: Path, arch: str) -> torch.nn.Module:
    """What locuslab/smoothing's train.py writes: Sequential(NormalizeLayer, net) (DataParallel for ImageNet), with optimizer and epoch."""
    net = (
        CohenCifarResNet(110 if arch == "cifar_resnet110" else 20)
        if arch.startswith("cifar")
        else torch.nn.DataParallel(TorchvisionResNet50())
    )
    model = torch.nn.Sequential(NormalizeLayer((0.5,) * 3, (0.25,) * 3), net)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.save({"epoch": 90, "arch": arch, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}, path)
    return model


def _cifar_folder(folder: Path, count: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    batch = {
        b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
        b"labels": [3, 8, 8][:count],
        b"batch_label": b"test",
    }
    (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    return folder


@pytest.mark.parametrize("arch", ["cifar_resnet20", "cifar_resnet110"])
def test_a_cohen_cifar_checkpoint_certifies_from_the_cli_and_the_api(
    tmp_path: Path, arch: str, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save_as_cohen(tmp_path / "checkpoint.pth.tar", arch)
    model, info = load_published_checkpoint(tmp_path / "checkpoint.pth.tar")
    assert info == {"arch": arch, "dataset": "cifar10", "input_shape": (3, 32, 32), "num_classes": 10, "epoch": 90}
    for (key, ours), theirs in zip(model.state_dict().items(), saved.state_dict().values()):
        assert torch.equal(ours, theirs), key
    certificate = renyicert.Smoothed(model, "gaussian", 10, scale=0.25, progress=False).certify(
        torch.rand(3, 32, 32), n0=5, n=20
    )
    assert sum(certificate.counts) == 20
    data = _cifar_folder(tmp_path / "cifar")
    argv = [
        "certify",
        "--checkpoint",
        str(tmp_path / "checkpoint.pth.tar"),
        "--data",
        str(data),
        "--mechanism",
        "gaussian",
        "--scale",
        "0.25",
        "--n0",
        "5",
        "--n",
        "20",
        "--limit",
        "2",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["inputs"] == 2


def test_a_cohen_imagenet_checkpoint_certifies_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ResNet-50 under DataParallel: keys under '1.module.', 1000 classes, 224 x 224 images."""
    _save_as_cohen(tmp_path / "imagenet.pth.tar", "resnet50")
    x = np.random.default_rng(1).random((2, 3, 224, 224), dtype=np.float32)
    np.savez(tmp_path / "two.npz", x=x, y=np.array([1, 999]))
    argv = [
        "certify",
        "--checkpoint",
        str(tmp_path / "imagenet.pth.tar"),
        "--data",
        str(tmp_path / "two.npz"),
        "--mechanism",
        "gaussian",
        "--scale",
        "0.5",
        "--n0",
        "2",
        "--n",
        "4",
        "--batch-size",
        "4",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["inputs"] == 2


def test_cohen_weights_load_into_the_named_architecture_with_weights(tmp_path: Path) -> None:
    from renyicert.workflow.models import build_model
    from renyicert.workflow.weights import load_weights

    saved = _save_as_cohen(tmp_path / "c.pt", "cifar_resnet20")
    model = load_weights(build_model("cifar_resnet20", (3, 32, 32), 10), tmp_path / "c.pt")
    assert torch.equal(model[1].fc.weight, saved[1].fc.weight)


def test_a_mismatch_is_a_few_lines_that_name_the_cause(tmp_path: Path) -> None:
    from renyicert.workflow.models import build_model
    from renyicert.workflow.weights import load_weights

    _save_as_cohen(tmp_path / "c.pt", "cifar_resnet20")
    with pytest.raises(ValueError) as caught:  # Cohen's file into renyicert's own resnet20, whose names differ
        load_weights(build_model("resnet20", (3, 32, 32), 10), tmp_path / "c.pt")
    message = str(caught.value)
    assert len(message) < 800 and message.count("\n") <= 3, message
    assert "keys missing" in message and "unexpected" in message and "likely cause" in message
    torch.save(
        CohenCifarResNet(20).state_dict(), tmp_path / "bare.pt"
    )  # the inner network alone: our keys start with '1.'
    with pytest.raises(
        ValueError, match=r"likely cause: every key of the model starts with '1\.', which the file's keys lack"
    ):
        load_weights(build_model("cifar_resnet20", (3, 32, 32), 10), tmp_path / "bare.pt")
    torch.save({f"1.{k}": v for k, v in torch.nn.Linear(3, 2).state_dict().items()}, tmp_path / "wrapped.pt")
    with pytest.raises(
        ValueError, match=r"likely cause: every key in the file starts with '1\.', which the model's keys lack"
    ):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "wrapped.pt")


def test_a_checkpoint_naming_another_architecture_is_refused(tmp_path: Path) -> None:
    torch.save({"arch": "wrn28", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(
        ValueError,
        match=r"names architecture 'wrn28'; renyicert knows Cohen et al.'s \['cifar_resnet110', 'cifar_resnet20', 'resnet50'\]",
    ):
        load_published_checkpoint(tmp_path / "other.pt")


class _HuggingFaceStyle(torch.nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.linear, self.kind = torch.nn.Linear(4, 3), kind

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        logits = self.linear(x.flatten(1))
        if self.kind == "object":
            return type("ImageClassifierOutput", (), {"logits": logits, "loss": None})()
        if self.kind == "dict":
            return {"logits": logits, "features": x}
        if self.kind == "tuple":
            return logits, x
        return {"scores": logits}


@pytest.mark.parametrize("kind", ["object", "dict", "tuple"])
def test_models_that_return_more_than_a_tensor_certify(kind: str) -> None:
    torch.manual_seed(0)
    model = _HuggingFaceStyle(kind)
    plain = renyicert.Smoothed(model.linear, "gaussian", 3, scale=0.5, progress=False).certify(
        torch.rand(4), n0=10, n=200, seed=3
    )
    wrapped = renyicert.Smoothed(model, "gaussian", 3, scale=0.5, progress=False).certify(
        torch.rand(4), n0=10, n=200, seed=3
    )
    assert wrapped.counts == plain.counts or sum(wrapped.counts) == 200


def test_an_output_key_names_where_the_logits_are_and_anything_else_is_named() -> None:
    model = _HuggingFaceStyle("scores")
    with pytest.raises(
        TypeError, match=r"the model returned a dict with keys \['scores'\], not logits: give output='KEY'"
    ):
        renyicert.Smoothed(model, "gaussian", 3, scale=0.5, progress=False).certify(torch.rand(4), n0=5, n=10)
    certificate = renyicert.Smoothed(model, "gaussian", 3, scale=0.5, progress=False, output="scores").certify(
        torch.rand(4), n0=5, n=10
    )
    assert sum(certificate.counts) == 10
    through = renyicert.Smoothed(
        model, "gaussian", 3, scale=0.5, progress=False, output=lambda out: out["scores"]
    ).certify(torch.rand(4), n0=5, n=10)
    assert sum(through.counts) == 10
    with pytest.raises(TypeError, match="output must be None, a key"):
        renyicert.Smoothed(model, "gaussian", 3, scale=0.5, output=3)  # type: ignore[arg-type]


def test_the_output_key_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "scoresmodel.py").write_text(
        "import torch\n"
        "class Scores(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.linear = torch.nn.Linear(4, 3)\n"
        "    def forward(self, x):\n"
        "        return {'scores': self.linear(x)}\n"
        "def build(input_shape, num_classes):\n"
        "    return Scores()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    torch.save(importlib.import_module("scoresmodel").build((4,), 3).state_dict(), tmp_path / "w.pt")
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((3, 4), dtype=np.float32), y=np.array([0, 1, 2]))
    argv = [
        "certify",
        "--model",
        "scoresmodel:build",
        "--weights",
        "w.pt",
        "--data",
        "d.npz",
        "--mechanism",
        "gaussian",
        "--scale",
        "0.5",
        "--n0",
        "5",
        "--n",
        "20",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 2
    assert "the model returned a dict with keys ['scores'], not logits" in capsys.readouterr().err
    assert main([*argv, "--output-key", "nope"]) == 2
    assert "has no 'nope' (the output key asked for)" in capsys.readouterr().err
    assert main([*argv, "--output-key", "scores"]) == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["inputs"] == 3


def test_a_hostile_checkpoint_without_its_description_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A decompression bomb, a pickle that is no checkpoint, and a train.py file whose weights are another model's: one line each, exit 2."""
    import time
    import zipfile

    with (
        zipfile.ZipFile(tmp_path / "bomb.pt", "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb/data.pkl", "w", force_zip64=True) as entry,
    ):
        for _ in range(200):
            entry.write(bytes(1 << 20))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"arch": "cifar_resnet20", "state_dict": torch.nn.Linear(3, 2).state_dict()}, tmp_path / "wrong.pt")
    expected = {
        "bomb.pt": "has no bomb.json beside it",
        "junk.pt": "has no junk.json beside it",
        "wrong.pt": "do not fit 'cifar_resnet20': ",
    }
    for name, message in expected.items():
        started = time.monotonic()
        assert (
            main(
                [
                    "certify",
                    "--checkpoint",
                    str(tmp_path / name),
                    "--mechanism",
                    "gaussian",
                    "--scale",
                    "0.25",
                    "--quiet",
                ]
            )
            == 2
        ), name
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (name, err)
        assert time.monotonic() - started < 30
