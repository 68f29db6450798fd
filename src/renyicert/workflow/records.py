"""Append-only JSONL records that survive a crash: whole lines, flushed and fsynced, torn tails repaired.

A record is one JSON object on one line, strict JSON (a non-finite number is
written as ``"inf"``, ``"-inf"`` or ``"nan"``: see :mod:`renyicert._json`).  :class:`RecordWriter` writes each line
with a single ``write`` on a file opened for appending, then ``fsync``\\s it, so
after a crash the file holds whole records plus at most one torn last line;
:func:`read_records` reports such a line and, with ``repair=True``, cuts it off
so that a resumed run appends after the last whole record.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._json import dumps

__all__ = ["RecordFile", "RecordWriter", "atomic_write", "read_records"]


def atomic_write(path: Path, write: Any) -> None:
    """``write(temporary)``, fsync, rename over ``path``, fsync the folder: a crash or a full disk leaves the old file or none,
    never half of one; an ``OSError`` names ``path`` (not the temporary)."""
    temporary = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise OSError(error.errno, f"cannot write {str(path)!r}: {error.strerror or error}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class RecordFile:
    """The whole records of a file and whether a torn last line was found (and cut off, with ``repair``)."""

    records: list[dict[str, Any]]
    torn_line: bool


def read_records(path: str | Path, repair: bool = False) -> RecordFile:
    """Read a JSONL records file; a missing file has no records.

    A last line without its newline (or that is not JSON) is a torn write: it is
    reported, and removed from the file when ``repair`` is true.  A bad line
    *before* the last is corruption, not a crash, and raises ``ValueError``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from renyicert.workflow.records import RecordWriter, read_records
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.jsonl"
    >>> with RecordWriter(path) as writer:
    ...     writer.write({"index": 0})
    >>> _ = path.open("a").write('{"index": 1, "lab')   # a crash mid-line
    >>> found = read_records(path, repair=True)
    >>> found.records, found.torn_line, path.read_text()
    ([{'index': 0}], True, '{"index": 0}\\n')
    """
    path = Path(path)
    if not path.exists():
        return RecordFile([], False)
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends in a newline
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except ValueError as error:
            if number == len(lines) and not tail:
                tail = line  # the last line is torn yet ends in a newline: treat as torn
                break
            raise ValueError(f"{str(path)!r} line {number} is not a JSON record ({error}); the file is corrupt, not merely interrupted") from error
    torn = bool(tail)
    if torn and repair:
        keep = len(data) - len(tail) - (0 if data.endswith(tail) else 1)
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
    return RecordFile(records, torn)


class RecordWriter:
    """Appends records to a JSONL file, one ``write`` + ``fsync`` per record (a context manager)."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as error:
            raise OSError(error.errno, f"cannot open {str(self.path)!r} for appending: {error.strerror or error}") from None
        self._fsync = fsync

    def write(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line."""
        line = (dumps(record, sort_keys=True) + "\n").encode()
        try:
            written = os.write(self._fd, line)
            while written < len(line):  # os.write may write less; finish the same line
                written += os.write(self._fd, line[written:])
            if self._fsync:
                os.fsync(self._fd)
        except OSError as error:
            raise OSError(error.errno, f"cannot append a record to {str(self.path)!r}: {error.strerror or error}") from None

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
