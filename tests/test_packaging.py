"""The package metadata setuptools reads: nothing it warns about at install time."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _project() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_license_is_an_spdx_string_not_the_deprecated_table() -> None:
    assert _project()["project"]["license"] == "MIT"


def test_every_folder_with_code_or_sources_is_a_listed_package() -> None:
    # A folder of shipped files missing from `packages` makes setuptools warn ("... is absent from the packages configuration").
    listed = set(_project()["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(path.parent.relative_to(ROOT / "src").parts)
        for path in (ROOT / "src" / "renyicert").rglob("*")
        if path.suffix in (".py", ".cpp") and "__pycache__" not in path.parts
    }
    assert folders <= listed, sorted(folders - listed)


def test_the_docs_tools_are_dev_dependencies() -> None:
    dev = " ".join(_project()["project"]["optional-dependencies"]["dev"])
    for name in ("sphinx", "myst-parser", "pydata-sphinx-theme", "sphinx-copybutton", "sphinx-mathjax-offline"):
        assert name in dev
