"""Progress: a bar on a terminal, plain lines in a log, nothing when asked."""

from __future__ import annotations

import io
import sys

import pytest

from renyicert._progress import LineProgress, progress_bar


def test_a_log_gets_a_line_every_few_percent_with_elapsed_and_remaining_time() -> None:
    out = io.StringIO()
    ticks = iter([0.0, *range(10, 1000, 10)])
    with LineProgress(
        100, "certify dataset", "input", out, step_percent=25, quiet_seconds=0.0, clock=lambda: float(next(ticks))
    ) as bar:
        for _ in range(100):
            bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "certify dataset: 25% (25/100 input), 0:10 elapsed, 0:30 left"
    assert [line.split(":")[1].split("%")[0].strip() for line in lines[:4]] == ["25", "50", "75", "100"]
    assert lines[-1].startswith("certify dataset: done in")


def test_short_work_stays_silent_in_a_log() -> None:
    out = io.StringIO()
    with LineProgress(10, "quick", "step", out, quiet_seconds=3.0, clock=lambda: 1.0) as bar:
        for _ in range(10):
            bar.update(1)
    assert out.getvalue() == ""


def test_the_choice_follows_the_terminal_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert isinstance(progress_bar(5, "d", "u", None), LineProgress)
    with progress_bar(5, "d", "u", False) as bar:
        assert bar is None
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress_bar(5, "d", "u", None)
    from tqdm import tqdm

    assert isinstance(bar, tqdm) and not bar.disable
    bar.close()
