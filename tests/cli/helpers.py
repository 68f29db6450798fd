"""Helpers of the command-line tests."""

from __future__ import annotations

import pytest

from renyicert.cli import main


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    """``main(argv)`` exits with 2 and a one-line message holding ``message``, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
