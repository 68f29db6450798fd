"""The train command: its options and its refusals before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from renyicert.cli import main
from .helpers import one_line_error


@pytest.fixture
def linf_registered() -> object:
    import renyicert

    from ..bad_mechanisms import LinfGaussian

    renyicert.register(LinfGaussian)
    yield LinfGaussian
    renyicert.unregister(LinfGaussian.name)


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


def test_train_out_onto_a_directory_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.pt").mkdir()
    one_line_error(capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "d.pt"), "--quiet"], "is a directory")
    one_line_error(
        capsys, ["train", "--epochs", "30", "--out", str(tmp_path / "m.bin"), "--quiet"], "--out must end in .pt"
    )
