"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from renyicert.cli import main


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits model trained for one epoch by ``renyicert train`` (once for the whole run)."""
    model = tmp_path_factory.mktemp("trained") / "m.pt"
    assert main(["train", "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    return model
