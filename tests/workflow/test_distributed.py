"""Distributed certification with torchrun (gloo, 2 ranks on localhost): rank-independent, crash-safe, resumable."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from renyicert.cli import main
from renyicert.workflow.records import read_records

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m.pt"
    assert main(["train", "--method", "augmentation", "--epochs", "4", "--out", str(path), "--quiet"]) == 0
    return path


def _certify_argv(checkpoint: Path, records: Path, limit: int = 30, samples: int = 300) -> list[str]:
    return [
        "certify",
        "--checkpoint",
        str(checkpoint),
        "--limit",
        str(limit),
        "--samples",
        str(samples),
        "--records",
        str(records),
        "--sampler",
        "eager",
        "--inputs-per-call",
        "3",
        "--quiet",
    ]


def _torchrun(argv: list[str], ranks: int = 2) -> subprocess.Popen:  # type: ignore[type-arg]
    command = [*TORCHRUN, f"--nproc_per_node={ranks}", f"--master_port={_free_port()}", "-m", "renyicert.cli", *argv]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _without_timing(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()]


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


@pytest.mark.parametrize("mode", [[], ["--grid", "16"]], ids=["float", "lattice"])
def test_one_and_two_ranks_give_identical_records(checkpoint: Path, tmp_path: Path, mode: list[str]) -> None:
    assert main([*_certify_argv(checkpoint, tmp_path / "one.jsonl"), *mode]) == 0
    process = _torchrun([*_certify_argv(checkpoint, tmp_path / "two.jsonl"), *mode])
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    assert "renyi" in out  # rank 0 prints the table once
    one = _without_timing(tmp_path / "one.jsonl")
    assert one == _without_timing(tmp_path / "two.jsonl")
    assert all(("failed" in record) == bool(mode) for record in one)  # lattice records count their failed copies
    assert not list(tmp_path.glob("two.jsonl.part*"))  # merged and removed


@pytest.mark.parametrize("victim", ["first", "last"])
def test_sigkill_of_one_rank_then_resume_gives_the_uninterrupted_records(
    checkpoint: Path, tmp_path: Path, victim: str
) -> None:
    reference, crashed = tmp_path / "reference.jsonl", tmp_path / "crashed.jsonl"
    assert main(_certify_argv(checkpoint, reference, limit=60, samples=2000)) == 0
    process = _torchrun(_certify_argv(checkpoint, crashed, limit=60, samples=2000))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        parts = list(tmp_path.glob("crashed.jsonl.part*"))
        if sum(p.read_text().count("\n") for p in parts) >= 6:
            break
        time.sleep(0.05)
    workers = sorted(
        c
        for agent in _children(process.pid)
        for c in [agent, *_children(agent)]
        if "renyicert" in Path(f"/proc/{c}/cmdline").read_text()
    )
    assert len(workers) == 2, f"expected two rank processes, found {workers}"
    os.kill(workers[0] if victim == "first" else workers[-1], signal.SIGKILL)
    process.communicate(timeout=120)
    assert process.returncode != 0  # the job failed as a whole
    left = sum(len(read_records(p).records) for p in tmp_path.glob("crashed.jsonl.part*"))
    assert 0 < left < 60
    resumed = _torchrun([*_certify_argv(checkpoint, crashed, limit=60, samples=2000), "--resume"])
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert _without_timing(crashed) == _without_timing(reference)


def test_torn_part_file_is_repaired_on_resume(checkpoint: Path, tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    assert main(_certify_argv(checkpoint, records, limit=9)) == 0
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:4]))
    (tmp_path / "r.jsonl.part1").write_text(lines[4] + lines[5][: len(lines[5]) // 2])  # a rank died mid-line
    with pytest.warns(RuntimeWarning, match="torn last line"):
        assert main([*_certify_argv(checkpoint, records, limit=9), "--resume"]) == 0
    assert records.read_text().splitlines(keepends=True) and _without_timing(records) == [
        {k: v for k, v in json.loads(line).items() if k != "seconds"} for line in lines
    ]


def test_resume_with_other_settings_is_refused_naming_the_setting(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = tmp_path / "r.jsonl"
    assert main(_certify_argv(checkpoint, records, limit=3)) == 0
    capsys.readouterr()
    assert main([*_certify_argv(checkpoint, records, limit=3, samples=500), "--resume"]) == 2
    assert "it was made with n = 300, this run has n = 500" in capsys.readouterr().err
    assert main([*_certify_argv(checkpoint, records, limit=3), "--resume", "--scale", "0.5"]) == 2
    assert "made with scale = 0.25, this run has scale = 0.5" in capsys.readouterr().err
    assert main(_certify_argv(checkpoint, records, limit=3)) == 2
    assert "already holds records" in capsys.readouterr().err
    records.unlink()  # records removed, settings file left behind: a fresh run with other settings is fine
    assert main(_certify_argv(checkpoint, records, limit=3, samples=500)) == 0
    assert json.loads(records.with_name("r.jsonl.settings.json").read_text())["n"] == 500


# ------------------------------------------------------------- one writer, known data
def _smoothed_digits() -> tuple[object, object]:
    import renyicert
    from renyicert.workflow.data import load_digits
    from renyicert.workflow.models import DigitsMLP

    torch.manual_seed(0)
    return renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False), load_digits()[1]


def test_a_second_run_into_one_records_file_is_refused_naming_the_holder(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    from renyicert.workflow.certify import certify_dataset

    records = tmp_path / "r.jsonl"
    holder = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from renyicert.workflow.distributed import RecordsLock
        lock = RecordsLock(Path({str(records)!r}), 0)
        print("locked", flush=True)
        sys.stdin.read()   # held until the test closes stdin
        lock.release()
    """)
    process = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "locked"
        smoothed, test = _smoothed_digits()
        # Before: both runs exited 0 and the file held one run's records under the other's summary.
        with pytest.raises(ValueError, match=f"is being written by another run \\(pid {process.pid} on "):
            certify_dataset(smoothed, test.subset(2), records, n0=10, n=50, progress=False)
        assert not records.exists()
    finally:
        process.communicate("", timeout=30)
    smoothed, test = _smoothed_digits()
    assert len(certify_dataset(smoothed, test.subset(2), records, n0=10, n=50, progress=False)) == 2  # free again
    assert not records.with_name("r.jsonl.lock.holder").exists()


def test_resume_with_other_data_or_another_limit_is_refused(tmp_path: Path) -> None:
    from renyicert.workflow.data import LabelledData
    from renyicert.workflow.certify import certify_dataset

    smoothed, test = _smoothed_digits()
    records = tmp_path / "r.jsonl"
    certify_dataset(smoothed, test.subset(4), records, n0=10, n=50, progress=False)
    other = LabelledData(test.x[:4].flip(0).contiguous(), test.y[:4].flip(0).contiguous(), 10)
    # Before: a resume with --data other.npz exited 0 with records of two data sets in one table.
    with pytest.raises(ValueError, match="it was made with data_sha256 = "):
        certify_dataset(smoothed, other, records, n0=10, n=50, resume=True, progress=False)
    with pytest.raises(ValueError, match="it was made with inputs = 4, this run has inputs = 2"):
        certify_dataset(smoothed, test.subset(2), records, n0=10, n=50, resume=True, progress=False)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"label": 1}\n', "'index' must be an integer in \\[0, 3\\), got None"),
        ('{"index": 99}\n', "'index' must be an integer in \\[0, 3\\), got 99"),
        ('{"index": "0"}\n', "got '0'"),
        ("[1, 2]\n", "got None"),
    ],
)
def test_resuming_over_a_foreign_record_line_is_a_clear_error(tmp_path: Path, line: str, match: str) -> None:
    from renyicert.workflow.certify import certify_dataset

    smoothed, test = _smoothed_digits()
    records = tmp_path / "r.jsonl"
    certify_dataset(smoothed, test.subset(3), records, n0=10, n=50, progress=False)
    records.write_text(records.read_text().splitlines(keepends=True)[0] + line)
    with pytest.raises(ValueError, match=match):
        certify_dataset(smoothed, test.subset(3), records, n0=10, n=50, resume=True, progress=False)


@pytest.mark.parametrize(
    ("text", "match"), [("[1, 2]", "holds a JSON list, not the settings object"), ("{not json", "is not JSON")]
)
def test_a_foreign_settings_file_is_a_clear_error(tmp_path: Path, text: str, match: str) -> None:
    from renyicert.workflow.certify import certify_dataset

    smoothed, test = _smoothed_digits()
    records = tmp_path / "r.jsonl"
    certify_dataset(smoothed, test.subset(2), records, n0=10, n=50, progress=False)
    records.with_name("r.jsonl.settings.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        certify_dataset(smoothed, test.subset(2), records, n0=10, n=50, resume=True, progress=False)
