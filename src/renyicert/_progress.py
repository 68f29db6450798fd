"""The one progress rule: a tqdm bar on a terminal, lines in a log, nothing when asked.

``progress=None`` shows a tqdm bar when standard error is a terminal; when it is
not (a log file, CI, ``nohup``), long work prints a line every
:data:`LINE_STEP_PERCENT` percent with the elapsed and remaining time, starting
once it has run :data:`LINE_QUIET_SECONDS` (so that short calls stay silent).
tqdm redraws one line with carriage returns, which a log shows as one growing
line, or as nothing until the end; hence the plain lines.  ``True`` always draws
the bar; ``False`` shows nothing, and then no bar object is built at all (a
disabled tqdm bar still costs ~0.1 ms per call).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

__all__ = ["LINE_QUIET_SECONDS", "LINE_STEP_PERCENT", "LineProgress", "progress_bar"]

#: A log line every this many percent.
LINE_STEP_PERCENT = 5
#: No line before the work has run this long (seconds).
LINE_QUIET_SECONDS = 3.0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class LineProgress:
    """Progress as plain lines: ``certify dataset: 35% (126/360 input), 0:42 elapsed, 1:18 left``.

    Examples
    --------
    >>> import io
    >>> from renyicert._progress import LineProgress
    >>> out = io.StringIO()
    >>> with LineProgress(4, "steps", "step", out, quiet_seconds=0.0, clock=iter(range(10)).__next__) as bar:
    ...     for _ in range(4):
    ...         bar.update(1)
    >>> print(out.getvalue().strip())
    steps: 25% (1/4 step), 0:01 elapsed, 0:03 left
    steps: 50% (2/4 step), 0:02 elapsed, 0:02 left
    steps: 75% (3/4 step), 0:03 elapsed, 0:01 left
    steps: 100% (4/4 step), 0:04 elapsed, 0:00 left
    steps: done in 0:05
    """

    def __init__(
        self,
        total: int,
        description: str,
        unit: str,
        stream: TextIO | None = None,
        *,
        step_percent: int = LINE_STEP_PERCENT,
        quiet_seconds: float = LINE_QUIET_SECONDS,
        clock: Any = time.monotonic,
    ) -> None:
        self.total, self.description, self.unit = max(int(total), 0), description, unit
        self.stream = stream if stream is not None else sys.stderr
        self.step, self.quiet_seconds, self.clock = step_percent, quiet_seconds, clock
        self.n = 0
        self.start = clock()
        self.next_percent = step_percent
        self.printed = False

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.printed and exc[0] is None:
            self._print(f"{self.description}: done in {_clock(self.clock() - self.start)}")

    def update(self, count: int = 1) -> None:
        """Count ``count`` more units done; print a line when a step of percent is crossed after the quiet start."""
        self.n += count
        if self.total <= 0:
            return
        percent = 100 * self.n // self.total
        if percent < self.next_percent:
            return
        self.next_percent = (percent // self.step + 1) * self.step
        elapsed = self.clock() - self.start
        if elapsed < self.quiet_seconds:
            return
        left = elapsed * (self.total - self.n) / self.n if self.n else 0.0
        self._print(
            f"{self.description}: {percent}% ({self.n}/{self.total} {self.unit}), {_clock(elapsed)} elapsed, {_clock(left)} left"
        )

    def _print(self, line: str) -> None:
        self.printed = True
        print(line, file=self.stream, flush=True)


def progress_bar(
    total: int, description: str, unit: str, progress: bool | None, *, leave: bool = False, unit_scale: bool = False
) -> Any:
    """A context manager yielding a progress object with ``update(n)`` (``None`` when ``progress`` is ``False``).

    Examples
    --------
    >>> from renyicert._progress import progress_bar
    >>> with progress_bar(3, "steps", "step", progress=False) as bar:
    ...     bar is None
    True
    """
    if progress is False:
        return contextlib.nullcontext(None)
    if (
        progress is None and not _is_terminal(sys.stderr) and "ipykernel" not in sys.modules
    ):  # a notebook keeps tqdm's widget
        return LineProgress(total, description, unit)
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=description,
        unit=unit,
        unit_scale=unit_scale,
        disable=None if progress is None else not progress,
        leave=leave,
    )


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
