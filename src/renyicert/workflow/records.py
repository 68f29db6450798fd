"""The records file, its one owner: crash-safe JSONL lines, the settings beside them, per-rank parts and their merge.

A record is one JSON object on one line, strict JSON (a non-finite number is
written as ``"inf"``, ``"-inf"`` or ``"nan"``: see :mod:`renyicert._json`).  :class:`RecordWriter` writes each line
with a single ``write`` on a file opened for appending, then ``fsync``\\s it, so
after a crash the file holds whole records plus at most one torn last line;
:func:`read_records` reports such a line and, with ``repair=True``, cuts it off
so that a resumed run appends after the last whole record.

Under ``torchrun`` each rank appends its records to its own part file
(``results.jsonl.part<rank>``); at the end rank 0 merges the parts and the
results file into one file ordered by index (written to a temporary file,
fsynced, then renamed over the old one, so a crash during the merge loses
nothing).  A chunk is done only when all its records are there: after a crash
its missing records are certified again with the whole chunk.  The run's
settings are kept in ``results.jsonl.settings.json``; a run refuses to resume
into a file made with other settings and names the setting that differs.
What a report trusts in a record is :mod:`renyicert.workflow.record_checks`.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._json import dumps
from ..radii import BOUNDS, RECORD_BOUNDS
from .distributed import barrier

__all__ = [
    "RECORDS_FORMAT",
    "RecordFile",
    "RecordWriter",
    "atomic_write",
    "atomic_write_text",
    "best_of_record",
    "checked_record",
    "check_settings",
    "merge_parts",
    "part_paths",
    "read_records",
    "read_settings",
    "recorded",
    "remove_records",
    "settings_path",
    "upgrade_record",
    "with_best",
    "write_csv",
    "write_settings",
]


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
            raise ValueError(
                f"{str(path)!r} line {number} is not a JSON record ({error}); the file is corrupt, not merely interrupted"
            ) from error
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
            raise OSError(
                error.errno, f"cannot open {str(self.path)!r} for appending: {error.strerror or error}"
            ) from None
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
            raise OSError(
                error.errno, f"cannot append a record to {str(self.path)!r}: {error.strerror or error}"
            ) from None

    def close(self) -> None:
        """Close the file."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


#: The records format this version writes (stored in the settings file as ``"format"``).
RECORDS_FORMAT = 2


def best_of_record(record: dict[str, Any], bounds: Sequence[str] = BOUNDS) -> tuple[float, str]:
    """``(radius, bound)``: the largest of a record's per-bound radii and the bound that gave it (a tie goes to the earlier bound).

    Every bound is a theorem about the same ``(p1_lower, p2_upper)``, so on the
    event where those hold, all radii hold and so does their maximum: no extra
    alpha is spent (see :func:`renyicert.radii.best_radii`).  ``bounds`` are those
    that may win (:func:`renyicert.radii.best_bounds`: a comparison bound nothing
    verified is reported in its own field but never taken as the best).

    Examples
    --------
    >>> from renyicert.workflow.records import best_of_record
    >>> best_of_record({"radius_renyi": 0.4, "radius_tight": 0.5, "radius_pixeldp": None})
    (0.5, 'tight')
    """
    radius, winner = -1.0, "renyi"
    for bound in (b for b in BOUNDS if b in bounds):
        value = record.get(f"radius_{bound}")
        if value is not None and float(value) > radius:
            radius, winner = float(value), bound
    return max(radius, 0.0), winner


def checked_record(record: Any, where: str, best_of: Sequence[str] | None = None) -> dict[str, Any]:
    """A record read from a file, upgraded (:func:`upgrade_record`) and checked for what ``report`` uses.

    ``correct`` must be true or false and ``radius_renyi`` a finite number ``>= 0``
    (the comparison radii too, where present); anything else is a ``ValueError``
    naming ``where`` (the file and the record), so that no table is printed over
    NaN, negative or infinite radii.  ``best_of`` are the bounds the best radius may
    come from (the settings' ``best_of``; all of them for records that do not say).

    Examples
    --------
    >>> from renyicert.workflow.records import checked_record
    >>> checked_record({"correct": True, "radius_renyi": "nan"}, "r.jsonl record 1")
    Traceback (most recent call last):
    ...
    ValueError: r.jsonl record 1: radius_renyi must be a finite number >= 0, got 'nan'
    """
    if not isinstance(record, dict):
        raise ValueError(f"{where}: a record must be a JSON object, got a {type(record).__name__}")
    record = upgrade_record(record)
    if not isinstance(record.get("correct"), bool):
        raise ValueError(f"{where}: 'correct' must be true or false, got {record.get('correct', 'nothing')!r}")
    for bound in BOUNDS:
        key = f"radius_{bound}"
        if key not in record and bound == "renyi":
            raise ValueError(f"{where}: the record has no {key!r}; is this a renyicert records file?")
        value = record.get(key)
        if value is None and bound != "renyi":
            continue
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or number < 0:
            raise ValueError(f"{where}: {key} must be a finite number >= 0, got {value!r}")
    checked = with_best(record, BOUNDS if best_of is None else tuple(best_of))
    if record.get("radius_best") is not None and (record["radius_best"], record.get("best_bound")) != (
        checked["radius_best"],
        checked["best_bound"],
    ):
        raise ValueError(
            f"{where}: radius_best = {record['radius_best']!r} ({record.get('best_bound')!r}) is not the largest of its bounds' radii, "
            f"{checked['radius_best']!r} ({checked['best_bound']!r})"
        )
    return checked


def upgrade_record(record: dict[str, Any]) -> dict[str, Any]:
    """A record of any format as a format 2 record: format 1's ``alpha`` (the Rényi order) becomes ``order``.

    Examples
    --------
    >>> from renyicert.workflow.records import upgrade_record
    >>> upgrade_record({"index": 0, "alpha": 1.4})
    {'index': 0, 'order': 1.4}
    """
    if "order" in record or "alpha" not in record:
        return record
    upgraded = {key: value for key, value in record.items() if key != "alpha"}
    upgraded["order"] = record["alpha"]
    return upgraded


def with_best(record: dict[str, Any], bounds: Sequence[str] = BOUNDS) -> dict[str, Any]:
    """``record`` with ``radius_best`` and ``best_bound`` (:func:`best_of_record` over ``bounds``) set from its radii."""
    radius, winner = best_of_record(record, bounds)
    return dict(record, radius_best=radius, best_bound=winner)


def write_csv(records: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Write records as CSV (``counts`` joined with spaces)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [
        "index",
        "label",
        "prediction",
        "correct",
        *(f"radius_{b}" for b in RECORD_BOUNDS),
        "best_bound",
        "p1_lower",
        "p2_upper",
        "order",
        "counts",
        "n0",
        "n",
        "seconds",
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for record in records:
            writer.writerow(dict(record, counts=" ".join(str(c) for c in record["counts"])))
    return path


def part_paths(path: Path) -> list[Path]:
    """The per-rank part files of ``path`` that exist."""
    return sorted(path.parent.glob(path.name + ".part*"))


def settings_path(path: Path) -> Path:
    """Where the settings of the records in ``path`` are kept."""
    return path.with_name(path.name + ".settings.json")


def check_settings(path: Path, settings: dict[str, Any], resume: bool) -> None:
    """Refuse a fresh run into existing records, or a resume with other settings (naming the first that differs)."""
    existing = path.exists() and path.stat().st_size > 0 or bool(part_paths(path))
    if not resume:
        if existing:
            raise ValueError(
                f"{str(path)!r} already holds records; pass resume=True (CLI: --resume) to continue it, or choose a new file"
            )
        return  # a fresh run: a settings file left without records is simply replaced
    stored = settings_path(path)
    if not stored.exists():
        if existing:
            raise ValueError(f"{str(path)!r} holds records but no {stored.name}: cannot tell which settings made them")
        return
    try:
        old = json.loads(stored.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot resume {str(path)!r}: {stored.name} is not JSON ({error})") from None
    if not isinstance(old, dict):
        raise ValueError(
            f"cannot resume {str(path)!r}: {stored.name} holds a JSON {type(old).__name__}, not the settings object"
        )
    if "format" in settings and old.get("format", 1) != settings["format"]:
        raise ValueError(
            f"cannot resume {str(path)!r}: its records are in format {old.get('format', 1)} (renyicert 0.1, where 'alpha' in a record "
            f"was the Rényi order), this version writes format {settings['format']}; certify into a new file (report reads both formats)"
        )
    for key in [*settings, *(k for k in old if k not in settings)]:
        if old.get(key) != settings.get(key):
            raise ValueError(
                f"cannot resume {str(path)!r}: it was made with {key} = {old.get(key)!r}, this run has {key} = {settings.get(key)!r}"
            )


def write_settings(path: Path, settings: dict[str, Any]) -> None:
    """Store ``settings`` beside ``path`` (atomically)."""
    atomic_write_text(settings_path(path), dumps(settings, indent=2, sort_keys=True) + "\n")


def atomic_write_text(path: Path, text: str) -> None:
    """``text`` into ``path`` atomically (see :func:`atomic_write`)."""
    atomic_write(path, lambda target: target.write_text(text))


def recorded(path: Path, repair: bool, inputs: int | None = None) -> dict[int, dict[str, Any]]:
    """Every record in ``path`` and its part files, by index (the first of duplicates); torn last lines cut off with ``repair``.

    A record without an integer ``"index"`` in ``[0, inputs)`` is a ``ValueError`` naming the file and the line.
    """
    done: dict[int, dict[str, Any]] = {}
    for source in [path, *part_paths(path)]:
        for line, record in enumerate(read_records(source, repair=repair).records, start=1):
            index = record.get("index") if isinstance(record, dict) else None
            if (
                isinstance(index, bool)
                or not isinstance(index, int)
                or index < 0
                or (inputs is not None and index >= inputs)
            ):
                expected = f"an integer in [0, {inputs})" if inputs is not None else "an integer >= 0"
                raise ValueError(
                    f"{str(source)!r}, record {line}: 'index' must be {expected}, got {index!r}; this file does not hold this run's records"
                )
            done.setdefault(index, record)
    return done


def remove_records(path: Path, rank: int) -> None:
    """Remove ``path``'s records, part files and settings (rank 0, holding the records lock), then wait for every rank."""
    if rank == 0:
        for stale in [path, *part_paths(path), settings_path(path)]:
            try:
                stale.unlink(missing_ok=True)
            except OSError as error:
                raise OSError(
                    error.errno, f"cannot remove {str(stale)!r} to overwrite it: {error.strerror or error}"
                ) from None
    barrier()


def merge_parts(path: Path) -> list[dict[str, Any]]:
    """Merge ``path`` and its part files into ``path``, ordered by index, one record per index; remove the parts."""
    done = recorded(path, repair=True)
    records = [done[i] for i in sorted(done)]
    parts = part_paths(path)
    current = read_records(path).records if path.exists() else []
    if parts or [r["index"] for r in current] != sorted(done):
        atomic_write_text(path, "".join(dumps(r, sort_keys=True) + "\n" for r in records))
        for part in parts:
            part.unlink()
    return records


def read_settings(path: str | Path) -> dict[str, Any]:
    """The settings stored beside a records file (``{}`` when there are none)."""
    stored = settings_path(Path(path))
    if not stored.exists():
        return {}
    try:
        settings = json.loads(stored.read_text())
    except ValueError as error:
        raise ValueError(f"{str(stored)!r} is not JSON ({error})") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{str(stored)!r} holds a JSON {type(settings).__name__}, not the settings object")
    return settings
