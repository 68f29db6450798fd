"""docs/your-model.md, run as a new user would: every file it says to save, every command it shows, in an empty folder."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "your-model.md"


def _steps(text: str) -> list[tuple[str, str, str | None]]:
    """``(kind, body, file)`` per fenced block: python blocks the text says to save (and maybe run), and every sh block."""
    steps = []
    for match in re.finditer(r"```(python|sh)\n(.*?)```", text, flags=re.S):
        kind, body = match.group(1), match.group(2)
        before = text[: match.start()].rsplit("\n\n", 2)[-2:]
        paragraph = " ".join(before)
        saved = re.search(r"[Ss]ave (?:this )?as `([\w.]+)`", paragraph)
        if kind == "python" and not saved:
            continue  # an illustration, not a step
        steps.append((kind, body, saved.group(1) if saved else None))
    return steps


def test_the_guide_certifies_a_local_model_with_its_own_weights_on_cifar_format_data(tmp_path: Path) -> None:
    text = DOC.read_text()
    steps = _steps(text)
    assert [kind for kind, _, _ in steps] == ["python", "python", "python", "sh", "sh"], steps
    environment = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", PYTHONPATH="")
    environment.pop("PYTHONPATH")
    outputs = []
    for kind, body, name in steps:
        if kind == "python":
            assert name is not None
            (tmp_path / name).write_text(body)
            if f"python {name}" in text:
                subprocess.run([sys.executable, name], cwd=tmp_path, env=environment, check=True, timeout=120)
            continue
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", body],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    # The model was found in the working directory without PYTHONPATH, its weights loaded, the CIFAR batches read.
    assert "certified accuracy of 10 inputs (gaussian, scale 0.25, l2 radii, n = 1000" in outputs[0]
    assert "ACR" in outputs[0] and "abstained on" in outputs[0]
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert len(records) == 10 and all(len(r["counts"]) == 10 and sum(r["counts"]) == 1000 for r in records)
    assert (tmp_path / "certified.png").stat().st_size > 0
    assert len((tmp_path / "records-alpha-0.01.jsonl").read_text().splitlines()) == 10
    assert "accuracy" in outputs[1] and "abstained on" in outputs[1]


def test_the_guide_is_in_the_docs_index() -> None:
    assert "your-model" in (DOC.parent / "index.md").read_text()


@pytest.mark.parametrize(
    "paragraph,expected", [("Save this as `a.py`:", "a.py"), ("save as `make_x.py` and run it", "make_x.py")]
)
def test_the_step_parser_finds_the_files_to_save(paragraph: str, expected: str) -> None:
    steps = _steps(f"{paragraph}\n\n```python\nx = 1\n```\n")
    assert steps == [("python", "x = 1\n", expected)]
