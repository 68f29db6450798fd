"""What a records file can check about itself before anything is summarised or recomputed from it.

A record is made from its counts: the bounds ``(p1_lower, p2_upper)`` come
from the counts at the run's alpha, the decision (certified or abstained) from
the bounds, and every radius from the bounds and the mechanism.  So a fixed-n
record that was edited, merged twice, or read with the settings of another run
contradicts itself somewhere, and :func:`verify_fixed_n` finds where:

- every ``index`` once (``cat a.jsonl b.jsonl`` repeats them), within the run's ``inputs``;
- classes in range: ``label``, ``selected`` in ``[0, classes)``, ``prediction`` too or ``-1`` (abstain);
- ``correct == (prediction == label)``, and an abstention has radius 0 under every bound;
- ``counts`` of ``classes`` non-negative integers summing to ``n``;
- with the mechanism and alpha of the settings: the bounds, the decision and every
  radius re-derived from the counts (:func:`~renyicert.workflow.certify.recertify_records`
  at the recorded alpha) equal the recorded ones, to 1e-9 relative.

:func:`verify_sequential` does the same for :func:`~renyicert.workflow.certify.certify_dataset_at`'s
records: unique indices, classes in range, no radius both certified and
undecided, certified radii forming a prefix of the (increasing) radii, a
certificate only from at least one success, successes at most the samples and
counts summing to the samples.  :func:`incomplete_warnings` says what makes a
file unfinished: fewer records than the run's inputs, a run still holding its
lock, part files of a distributed run that were never merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from ..radii import RECORD_BOUNDS
from .certify import recertify_records
from .records import part_paths

__all__ = ["incomplete_warnings", "verify_fixed_n", "verify_sequential"]

#: Relative difference at which a recorded number and its re-derivation disagree.
RELATIVE_TOLERANCE = 1e-9


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_indices(records: Sequence[dict[str, Any]], where: str, inputs: Any) -> None:
    """Every record has an integer ``index`` in ``[0, inputs)``, each index once."""
    seen: dict[int, int] = {}
    for k, record in enumerate(records, start=1):
        index = record.get("index")
        if not _is_int(index) or index < 0 or (_is_int(inputs) and index >= inputs):
            expected = f"an integer in [0, {inputs})" if _is_int(inputs) else "an integer >= 0"
            raise ValueError(f"{where} record {k}: 'index' must be {expected}, got {index!r}")
        if index in seen:
            raise ValueError(
                f"{where}: index {index} is recorded twice (records {seen[index]} and {k}): the file holds another run's records too, or one run's twice"
            )
        seen[index] = k


#: The classes a record may name when neither its settings nor its counts say how many there are.
_MOST_CLASSES = 2**31


def _check_class(record: dict[str, Any], key: str, classes: int | None, at: str, abstain: bool = False) -> None:
    """``record[key]`` is a class in ``[0, classes)`` (``[0, 2^31)`` when the number is unknown), or -1 with ``abstain``."""
    limit = _MOST_CLASSES if classes is None else classes
    value = record.get(key)
    if not _is_int(value) or not (0 <= value < limit or (abstain and value == -1)):
        allowed = f"-1 (abstain) or a class in [0, {limit})" if abstain else f"a class in [0, {limit})"
        raise ValueError(f"{at}: {key!r} must be {allowed}, got {value!r}")


def _check_failed(record: dict[str, Any], settings: dict[str, Any], at: str) -> int:
    """``record["failed"]`` (lattice copies whose noise draw failed): absent or 0 in float mode, a non-negative integer in lattice mode."""
    failed = record.get("failed", 0)
    if not _is_int(failed) or failed < 0:
        raise ValueError(f"{at}: 'failed' must be a non-negative integer, got {failed!r}")
    if failed and settings.get("grid") is None:
        raise ValueError(
            f"{at}: {failed} failed copies, but its settings are float mode's (no grid): only lattice noise can fail"
        )
    return int(failed)


def _check_counts(record: dict[str, Any], classes: int | None, total: Any, total_name: str, at: str) -> list[int]:
    """``record["counts"]``: non-negative integers, one per class (as many as the record has when the number is unknown), summing to ``total``."""
    counts = record.get("counts")
    if (
        not isinstance(counts, list)
        or (classes is not None and len(counts) != classes)
        or not all(_is_int(c) and c >= 0 for c in counts)
    ):
        expected = (
            f"{classes} non-negative integers (one per class)"
            if classes is not None
            else "a list of non-negative integers"
        )
        raise ValueError(f"{at}: 'counts' must be {expected}, got {counts!r}")
    if _is_int(total) and sum(counts) != total:
        raise ValueError(f"{at}: its counts sum to {sum(counts)}, but it drew {total_name} = {total} copies")
    return counts


def _classes(records: Sequence[dict[str, Any]], settings: dict[str, Any]) -> int | None:
    """The number of classes: the settings', else the first record's counts', else unknown (``None``)."""
    stored = settings.get("num_classes")
    if _is_int(stored) and stored >= 2:
        return stored
    counts = records[0].get("counts") if records else None
    return len(counts) if isinstance(counts, list) and len(counts) >= 2 else None


def _differs(recorded: Any, derived: Any) -> bool:
    if recorded is None or derived is None:
        return recorded is not derived
    if isinstance(recorded, bool) or isinstance(derived, bool) or not isinstance(recorded, (int, float)):
        return recorded != derived
    scale = max(abs(float(recorded)), abs(float(derived)))
    return abs(float(recorded) - float(derived)) > RELATIVE_TOLERANCE * scale + 1e-300


def verify_fixed_n(
    records: Sequence[dict[str, Any]], settings: dict[str, Any], where: str, mechanism: Any = None
) -> None:
    """``ValueError`` naming ``where``, the record and the contradiction, unless fixed-n ``records`` agree with themselves and their ``settings``.

    ``records`` are those of :func:`~renyicert.workflow.records.checked_record`
    (types already checked).  With ``mechanism`` (the one the settings name) and
    the settings' ``alpha``, every record is re-derived from its counts.

    Examples
    --------
    >>> from renyicert.workflow.record_checks import verify_fixed_n
    >>> record = {"index": 0, "label": 1, "prediction": -1, "selected": 1, "correct": True, "radius_renyi": 5.0, "counts": [3, 7], "n": 10}
    >>> verify_fixed_n([record], {}, "r.jsonl")
    Traceback (most recent call last):
    ...
    ValueError: r.jsonl record 1 (index 0): 'correct' is True but its prediction is -1 and its label 1
    """
    _check_indices(records, where, settings.get("inputs"))
    classes = _classes(records, settings)
    for k, record in enumerate(records, start=1):
        at = f"{where} record {k} (index {record['index']})"
        _check_class(record, "label", classes, at)
        _check_class(record, "prediction", classes, at, abstain=True)
        if "selected" in record:
            _check_class(record, "selected", classes, at)
        prediction, label = record["prediction"], record["label"]
        if record["correct"] != (prediction == label):
            raise ValueError(
                f"{at}: 'correct' is {record['correct']} but its prediction is {prediction} and its label {label}"
            )
        if prediction == -1:
            nonzero = [b for b in RECORD_BOUNDS if record.get(f"radius_{b}") not in (None, 0, 0.0)]
            if nonzero:
                raise ValueError(
                    f"{at}: it abstained (prediction -1) yet holds radius_{nonzero[0]} = {record[f'radius_{nonzero[0]}']!r}; an abstention certifies nothing"
                )
        n = record.get("n", settings.get("n"))
        if _is_int(settings.get("n")) and record.get("n") is not None and record.get("n") != settings["n"]:
            raise ValueError(f"{at}: its n is {record.get('n')!r}, the run's settings say n = {settings['n']}")
        failed = _check_failed(record, settings, at)
        _check_counts(
            record, classes, n - failed if _is_int(n) else n, "n" + (f" - {failed} failed" if failed else ""), at
        )
        for key in ("p1_lower", "p2_upper"):
            value = record.get(key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{at}: {key!r} must be a number in [0, 1], got {value!r}")
    alpha = settings.get("alpha")
    if mechanism is None or not isinstance(alpha, float) or not all("selected" in r for r in records):
        return
    derived = recertify_records(records, mechanism, alpha, str(settings.get("p2_mode", "runner-up")))
    keys = ("prediction", "p1_lower", "p2_upper", *(f"radius_{b}" for b in RECORD_BOUNDS))
    for k, (record, again) in enumerate(zip(records, derived), start=1):
        for key in keys:
            if key in record and _differs(record[key], again.get(key)):
                raise ValueError(
                    f"{where} record {k} (index {record['index']}): {key} = {record[key]!r}, but its own counts give {again.get(key)!r} "
                    f"under {mechanism.label} at alpha = {alpha}: the record was edited, or its settings ({Path(where).name}.settings.json) are another run's"
                )


def verify_sequential(
    records: Sequence[dict[str, Any]], radii: Sequence[float], settings: dict[str, Any], where: str
) -> None:
    """``ValueError`` naming the record and the contradiction, unless sequential ``records`` agree with themselves (see the module).

    Examples
    --------
    >>> from renyicert.workflow.record_checks import verify_sequential
    >>> record = {"index": 0, "label": 1, "selected": 1, "prediction": -1, "certified": [False, True], "undecided": [False, False],
    ...           "samples": 50, "successes": 50, "counts": [0, 50], "n0": 10}
    >>> verify_sequential([record], [0.0, 0.5], {}, "s.jsonl")
    Traceback (most recent call last):
    ...
    ValueError: s.jsonl record 1 (index 0): certified at radius 0.5 but not at 0: a larger radius is certified only where every smaller one is
    """
    if any(not b > a for a, b in zip(radii, radii[1:])):
        raise ValueError(f"{where}: its settings' radii must increase, got {list(radii)!r}")
    _check_indices(records, where, settings.get("inputs"))
    classes = _classes(records, settings)
    for k, record in enumerate(records, start=1):
        at = f"{where} record {k} (index {record['index']})"
        _check_class(record, "label", classes, at)
        _check_class(record, "selected", classes, at)
        certified, undecided = record["certified"], record["undecided"]
        both = [r for r, c, u in zip(radii, certified, undecided) if c and u]
        if both:
            raise ValueError(f"{at}: radius {both[0]:g} is both certified and undecided")
        for j in range(1, len(radii)):
            if certified[j] and not certified[j - 1]:
                raise ValueError(
                    f"{at}: certified at radius {radii[j]:g} but not at {radii[j - 1]:g}: a larger radius is certified only where every smaller one is"
                )
        expected = record["selected"] if certified[0] else -1
        if "prediction" in record and record["prediction"] != expected:
            raise ValueError(
                f"{at}: 'prediction' is {record['prediction']!r}, but its flags say {expected} (the candidate where radius {radii[0]:g} is certified, else -1)"
            )
        successes, samples = record.get("successes"), record["samples"]
        if successes is not None:
            if not _is_int(successes) or not 0 <= successes <= samples:
                raise ValueError(f"{at}: 'successes' must be an integer in [0, samples = {samples}], got {successes!r}")
            if successes == 0 and any(certified):
                raise ValueError(
                    f"{at}: certified from zero successes: no confidence sequence certifies a class it never saw"
                )
        if "counts" in record:
            failed = _check_failed(record, settings, at)
            counts = _check_counts(
                record, classes, samples - failed, "samples" + (f" - {failed} failed" if failed else ""), at
            )
            if successes is not None and counts[record["selected"]] != successes:
                raise ValueError(
                    f"{at}: {successes} successes, but its counts give the candidate {counts[record['selected']]}"
                )


def incomplete_warnings(path: str | Path, settings: dict[str, Any], count: int) -> list[str]:
    """What says that the records in ``path`` are not a finished run: a live lock, part files, fewer records than the run's inputs.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from renyicert.workflow.record_checks import incomplete_warnings
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.jsonl"
    >>> print(*incomplete_warnings(path, {"inputs": 10}, 4))
    r.jsonl holds 4 of the run's 10 inputs: the run was stopped before the end, or is still going (--resume finishes it)
    """
    path = Path(path)
    warnings: list[str] = []
    lock_path = path.with_name(path.name + ".lock")
    if lock_path.exists():
        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            holder = path.with_name(path.name + ".lock.holder")
            who = holder.read_text().strip() if holder.exists() else "another process"
            warnings.append(f"{path.name} is being written right now ({who}): this summary is of the records so far")
        except OSError:
            pass
        else:
            lock.release()
    parts = part_paths(path)
    if parts:
        warnings.append(
            f"{path.name} has {len(parts)} part file(s) of a distributed run ({', '.join(p.name for p in parts)}) never merged into it: their records are not in this summary"
        )
    inputs = settings.get("inputs")
    if _is_int(inputs) and count < inputs:
        warnings.append(
            f"{path.name} holds {count} of the run's {inputs} inputs: the run was stopped before the end, or is still going (--resume finishes it)"
        )
    return warnings
