"""Models and checkpoints: built-ins, user models by spec, safe and checked loading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from renyicert.workflow.checkpoints import load_checkpoint, save_checkpoint
from renyicert.workflow.models import DigitsCNN, DigitsMLP, build_model


def wide_model(input_shape: tuple[int, ...], num_classes: int) -> torch.nn.Module:
    """A user model factory, loaded by the spec 'tests.workflow.test_models:wide_model'."""
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(input_shape).prod()), num_classes))


def four_classes() -> torch.nn.Module:
    return torch.nn.Linear(3, 4)


def not_a_model() -> int:
    return 3


def test_built_ins_and_user_specs_build() -> None:
    assert isinstance(build_model("mlp", (1, 8, 8), 10), DigitsMLP)
    assert isinstance(build_model("cnn", (1, 8, 8), 10), DigitsCNN)
    assert build_model("tests.workflow.test_models:wide_model", (3,), 4)(torch.zeros(2, 3)).shape == (2, 4)


@pytest.mark.parametrize(
    "spec,shape,classes,match",
    [
        (
            "resnet",
            (1, 8, 8),
            10,
            "model must be one of \\['cifar_resnet110', 'cifar_resnet20', 'cnn', 'mlp', 'resnet20', 'resnet50'\\] or 'module:callable'",
        ),
        ("no_such_module:f", (1, 8, 8), 10, "cannot load model"),
        ("cnn", (64,), 10, "DigitsCNN needs images"),
        (
            "tests.workflow.test_models:four_classes",
            (3,),
            2,
            r"maps inputs of shape \(2, \*\(3,\)\) to \(2, 4\); expected \(2, 2\) logits",
        ),
        ("tests.workflow.test_models:not_a_model", (3,), 2, "returned int, not a torch.nn.Module"),
        ("tests.workflow.test_models:json", (3,), 2, "is not callable"),
    ],
)
def test_bad_model_specs_get_clear_errors(spec: str, shape: tuple[int, ...], classes: int, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        build_model(spec, shape, classes)


def test_checkpoint_round_trip_and_tamper_detection(tmp_path: Path) -> None:
    model = DigitsMLP()
    meta = save_checkpoint(
        tmp_path / "m.pt", model, {"model": "mlp", "input_shape": (1, 8, 8), "num_classes": 10, "note": "x"}
    )
    loaded, config = load_checkpoint(tmp_path / "m.pt")
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(loaded(x), model.eval()(x)) and config["note"] == "x"
    json.loads(meta.read_text())
    torch.save({"layers.1.weight": torch.zeros(1)}, tmp_path / "m.pt")
    with pytest.raises(ValueError, match="does not match the checksum"):
        load_checkpoint(tmp_path / "m.pt")


def test_not_a_checkpoint_gets_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="has no x.json beside it"):
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a renyicert checkpoint description"):
        load_checkpoint(tmp_path / "x.pt")
    from renyicert.workflow.checkpoints import file_sha256

    (tmp_path / "x.json").write_text(
        json.dumps(
            {
                "model": "mlp",
                "input_shape": [1, 8, 8],
                "num_classes": 10,
                "state_dict_sha256": file_sha256(tmp_path / "x.pt"),
            }
        )
    )
    with pytest.raises(ValueError, match="is not a loadable state dict"):
        load_checkpoint(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="must end in .pt"):
        save_checkpoint(tmp_path / "m.bin", DigitsMLP(), {"model": "mlp", "input_shape": (1, 8, 8), "num_classes": 10})


# --------------------------------------------------------- checkpoints run no code
def _saved(tmp_path: Path, spec: str = "mlp") -> Path:
    save_checkpoint(tmp_path / "m.pt", DigitsMLP(), {"model": spec, "input_shape": (1, 8, 8), "num_classes": 10})
    return tmp_path / "m.pt"


def _edit(path: Path, **changes: object) -> None:
    """Edit the description and recompute both checksums, as an attacker would."""
    from renyicert.workflow.checkpoints import config_sha256

    config = json.loads(path.with_suffix(".json").read_text())
    config.update(changes)
    config["config_sha256"] = config_sha256(config)
    path.with_suffix(".json").write_text(json.dumps(config))


@pytest.mark.parametrize("spec", ["sys:exit", "os:abort", "tempfile:mkstemp", "pdb:set_trace"])
def test_a_checkpoint_description_cannot_import_or_call_code(tmp_path: Path, spec: str) -> None:
    # Before: "sys:exit" exited 0 with no output, "os:abort" 134, "tempfile:mkstemp" created a file.
    path = _saved(tmp_path)
    _edit(path, model=spec)
    with pytest.raises(ValueError, match=f"the checkpoint's model is '{spec}', code that a file names"):
        load_checkpoint(path)


def test_a_module_callable_named_by_the_caller_is_used(tmp_path: Path) -> None:
    spec = "renyicert.workflow.models:DigitsMLP"
    path = _saved(tmp_path, spec)
    with pytest.raises(ValueError, match="only when you name it yourself"):
        load_checkpoint(path)
    model, _ = load_checkpoint(path, trusted_models=(spec,))
    assert type(model).__name__ == "DigitsMLP"


def test_an_edited_description_fails_its_own_checksum(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    config = json.loads(path.with_suffix(".json").read_text())
    config["mechanism"] = {"name": "laplace", "scale": 5.0}
    path.with_suffix(".json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="does not match its own checksum"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"input_shape": [-1, 8, 8]}, "'input_shape' must be a list of positive integers"),
        ({"input_shape": [1 << 15, 1 << 14]}, "'input_shape' must be a list of positive integers"),
        ({"num_classes": 1}, "'num_classes' must be an integer in \\[2, 2\\^24\\]"),
        ({"mechanism": "gaussian"}, "'mechanism' must be null or an object"),
        ({"mechanism": {"name": "gaussian", "scale": "big"}}, "the mechanism's 'scale' must be a number"),
        ({"model": 3}, "'model' must be a non-empty string"),
    ],
)
def test_a_wrong_typed_description_is_a_clear_error(tmp_path: Path, changes: dict[str, object], match: str) -> None:
    path = _saved(tmp_path)
    _edit(path, **changes)
    with pytest.raises(ValueError, match=match):
        load_checkpoint(path)


def test_a_description_that_is_a_list_is_a_clear_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    path.with_suffix(".json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="a JSON list, not an object"):
        load_checkpoint(path)


def test_saving_onto_a_directory_is_refused_and_a_failed_write_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "d.pt").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        save_checkpoint(tmp_path / "d.pt", DigitsMLP(), {"model": "mlp", "input_shape": (1, 8, 8), "num_classes": 10})

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match=f"cannot write '{tmp_path / 'm.pt'}': No space left on device"):
        save_checkpoint(tmp_path / "m.pt", DigitsMLP(), {"model": "mlp", "input_shape": (1, 8, 8), "num_classes": 10})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.pt"]


def test_resnet20_is_he_et_al_s_cifar_resnet_and_checks_its_depth() -> None:
    import torch

    from renyicert.workflow.models import CifarResNet, build_model

    model = build_model("resnet20", (3, 32, 32), 10)
    convolutions = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convolutions) + 1 == 20  # 19 3x3 convolutions and the classifier
    assert sum(p.numel() for p in model.parameters()) == 272_474
    assert build_model("resnet20", (1, 28, 28), 3)(torch.zeros(2, 1, 28, 28)).shape == (2, 3)
    for depth in (19, 2, True):
        with pytest.raises(ValueError, match="depth must be 6k \\+ 2"):
            CifarResNet(depth=depth)
    with pytest.raises(ValueError, match="CifarResNet needs images"):
        build_model("resnet20", (64,), 10)


def test_a_user_model_is_found_in_the_working_directory_as_python_m_finds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from renyicert.workflow.models import build_model

    (tmp_path / "mynets_for_this_test.py").write_text(
        "import torch\ndef net(num_classes):\n    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, num_classes))\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    before = list(sys.path)
    model = build_model("mynets_for_this_test:net", (4,), 3)
    assert model[1].out_features == 3
    assert sys.path == before  # the working directory was on the path for that import only
    with pytest.raises(ValueError, match="cannot load model 'no_such_module_here:net': ModuleNotFoundError"):
        build_model("no_such_module_here:net", (4,), 3)


def test_plain_weights_load_into_the_named_model(tmp_path: Path) -> None:
    import torch

    from renyicert.workflow.weights import load_weights

    source = torch.nn.Linear(3, 2)
    torch.save(source.state_dict(), tmp_path / "plain.pt")
    torch.save(
        {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}, "epoch": 90, "arch": "linear"},
        tmp_path / "cohen.pt",
    )
    for name in ("plain.pt", "cohen.pt"):
        target = load_weights(torch.nn.Linear(3, 2), tmp_path / name)
        assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)
    with pytest.raises(
        ValueError, match=r"do not fit the model: 1 of another shape \(weight \(2, 3\) \(the model's is \(2, 4\)\)\)"
    ):
        load_weights(torch.nn.Linear(4, 2), tmp_path / "plain.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="holds a list, not a state dict of tensors"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "list.pt")
    torch.save(source, tmp_path / "pickled-module.pt")  # a whole module: loading it would run code
    with pytest.raises(ValueError, match="not a state dict that loads without running code"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "pickled-module.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "missing.pt")


@pytest.mark.parametrize("make", ["sparse", "meta"])
def test_plain_weights_refuse_sparse_or_meta_tensors_as_checkpoints_do(tmp_path: Path, make: str) -> None:
    from renyicert.workflow.weights import load_weights

    weight = torch.zeros(2, 3).to_sparse() if make == "sparse" else torch.empty(2, 3, device="meta")
    torch.save({"weight": weight, "bias": torch.zeros(2)}, tmp_path / "w.pt")
    with pytest.raises(ValueError, match="holds sparse or meta tensors, not a model's weights"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "w.pt")


_PEAK_MEMORY = """
import json, sys
from renyicert.workflow.checkpoints import load_checkpoint
try:
    model, _ = load_checkpoint(sys.argv[1])
    outcome = type(model).__name__
except ValueError as error:
    outcome = "ValueError: " + str(error)
# VmHWM is this program's own peak (ru_maxrss would carry over the forking parent's)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"outcome": outcome, "peak_kb": peak}))
"""


@pytest.mark.parametrize(
    ("spec", "shape", "outcome"),
    [
        (
            "mlp",
            [1, 3500, 3500],
            "ValueError: .*does not fit the architecture 'mlp': 1 of another shape .*",
        ),  # 12.5 GB of Linear weights
        (
            "cnn",
            [1, 16000, 16000],
            "ValueError: .*does not fit the architecture 'cnn': .*",
        ),  # 2 x 256M pixels through two convolutions
        (
            "resnet20",
            [3, 9000, 9000],
            "CifarResNet",
        ),  # the weights fit any image size: checked on the meta device, nothing allocated
    ],
)
def test_a_hostile_input_shape_costs_no_memory(tmp_path: Path, spec: str, shape: list[int], outcome: str) -> None:
    """The checkpoint fuzz test's 12.8 GB case: a resealed description with a huge input_shape loads or is refused under 1 GB."""
    import re
    import subprocess
    import sys

    model = build_model(spec, (1, 8, 8) if spec != "resnet20" else (3, 32, 32), 10)
    save_checkpoint(
        tmp_path / "m.pt",
        model,
        {"model": spec, "input_shape": (1, 8, 8) if spec != "resnet20" else (3, 32, 32), "num_classes": 10},
    )
    _edit(tmp_path / "m.pt", input_shape=shape)
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_MEMORY, str(tmp_path / "m.pt")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert re.fullmatch(outcome, found["outcome"]), found["outcome"]
    assert found["peak_kb"] < 1 << 20, found  # under 1 GiB


def test_a_weights_archive_declaring_far_more_than_it_holds_is_refused_before_reading(tmp_path: Path) -> None:
    """A 200 MB entry deflated into a few hundred KB: refused from the archive's directory, without inflating it."""
    import zipfile

    from renyicert.workflow.weights import load_weights

    path = tmp_path / "bomb.pt"
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("bomb/data.pkl", "w", force_zip64=True) as entry,
    ):
        block = bytes(1 << 20)
        for _ in range(200):
            entry.write(block)
    assert path.stat().st_size < 1 << 20
    with pytest.raises(
        ValueError,
        match=r"declares 209,715,200 bytes of entries in a [\d,]+-byte archive: not a weights file written by torch.save",
    ):
        load_weights(torch.nn.Linear(3, 2), path)
    torch.save(torch.nn.Linear(300, 200).state_dict(), tmp_path / "real.pt")  # torch.save's own archives pass
    load_weights(torch.nn.Linear(300, 200), tmp_path / "real.pt")
