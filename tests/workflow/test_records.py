"""Records files: whole lines only, torn tails repaired, corruption refused, a killed run resumes to the same records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from renyicert.workflow.records import RecordWriter, read_records


def test_torn_last_line_is_reported_and_cut(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RecordWriter(path) as writer:
        for i in range(3):
            writer.write({"index": i})
    with path.open("ab") as handle:
        handle.write(b'{"index": 3, "rad')
    found = read_records(path)
    assert [r["index"] for r in found.records] == [0, 1, 2] and found.torn_line
    assert path.read_bytes().endswith(b'"rad')  # reading alone changes nothing
    assert read_records(path, repair=True).torn_line
    assert path.read_text().count("\n") == 3 and not read_records(path).torn_line


def test_a_bad_line_before_the_last_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"index": 0}\nnot json\n{"index": 2}\n')
    with pytest.raises(ValueError, match="line 2 is not a JSON record"):
        read_records(path)


SCRIPT = textwrap.dedent(
    """
    import sys, torch, renyicert
    from renyicert.workflow.data import load_digits
    from renyicert.workflow.certify import certify_dataset
    from renyicert.workflow.models import DigitsMLP
    torch.manual_seed(0)
    _, test = load_digits()
    smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, backend="eager", batch_size=256, progress=False)
    certify_dataset(smoothed, test.subset(40), sys.argv[1], n0=20, n=400, inputs_per_call=2, resume=True, progress=False)
    """
)


def _strip(records: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_sigkill_mid_run_then_resume_gives_the_uninterrupted_records(tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    full, killed = tmp_path / "full.jsonl", tmp_path / "killed.jsonl"
    subprocess.run([sys.executable, str(script), str(full)], check=True, env=env, timeout=300)
    process = subprocess.Popen([sys.executable, str(script), str(killed)], env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not killed.exists() or killed.read_text().count("\n") < 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = read_records(killed, repair=True)
    assert 5 <= len(partial.records) < 40, len(partial.records)
    subprocess.run([sys.executable, str(script), str(killed)], check=True, env=env, timeout=300)
    lines = killed.read_text().splitlines()
    assert all(json.loads(line) for line in lines) and len(lines) == 40
    resumed = sorted(read_records(killed).records, key=lambda r: r["index"])
    assert _strip(resumed) == _strip(read_records(full).records)


def test_a_full_disk_names_the_records_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import os

    import pytest

    from renyicert.workflow.records import RecordWriter

    writer = RecordWriter(tmp_path / "r.jsonl")

    def full(*args):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    # Before: "No space left on device" without the path.
    with pytest.raises(OSError, match=f"cannot append a record to '{tmp_path / 'r.jsonl'}': No space left on device"):
        writer.write({"index": 0})
    monkeypatch.undo()
    writer.close()
