"""The program itself: its version."""

from __future__ import annotations

import pytest

from renyicert.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import renyicert

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"renyicert {renyicert.__version__}"
