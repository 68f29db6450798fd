"""The results of checking a mechanism: a verdict per check, the evidence, and the report of a run.

:class:`CheckContext` is what every check receives; :class:`CheckResult` is what
it returns; :class:`CheckReport` gathers one run's results (see
:func:`renyicert.check`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .._json import dumps
from ..mechanism import Mechanism
from .derivation import derive_divergence

__all__ = ["CheckContext", "CheckReport", "CheckResult", "Verdict"]


class Verdict(str, enum.Enum):
    """The outcome of one check."""

    PASS = "pass"
    FAIL = "fail"
    UNDECIDED = "undecided"
    NOT_CHECKED = "not checked"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict, the method that decided it and the evidence.

    For a failure, ``evidence`` holds the counterexample (for instance
    ``order``, ``r``, ``shift``, ``closed_form`` and ``true``).  ``warnings`` are
    about the plugin (a sound but loose formula); ``limits`` say what the check
    could not cover.
    """

    name: str
    verdict: Verdict
    method: str
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0
    #: What the check did not cover (paths not drawn, dimensions not searched): the checker's limits, not the plugin's faults.
    limits: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "method": self.method,
            "evidence": _jsonable(self.evidence),
            "warnings": list(self.warnings),
            "limits": list(self.limits),
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class CheckReport:
    """Every check's result for one mechanism at one scale."""

    mechanism: str
    scale: float
    quick: bool
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        """``True`` only when every check ran and passed: the mechanism is verified as far as the checker goes.

        A check that could not run (:attr:`Verdict.NOT_CHECKED`, for instance with no
        density to verify the divergence against) or could not decide
        (:attr:`Verdict.UNDECIDED`) is not a pass: see :attr:`status`.
        """
        return self.status == "passed"

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks whose verdict is :attr:`Verdict.FAIL`."""
        return tuple(r for r in self.results if r.verdict is Verdict.FAIL)

    @property
    def not_checked(self) -> tuple[CheckResult, ...]:
        """The checks that could not run or could not decide (:attr:`Verdict.NOT_CHECKED`, :attr:`Verdict.UNDECIDED`)."""
        return tuple(r for r in self.results if r.verdict in (Verdict.NOT_CHECKED, Verdict.UNDECIDED))

    @property
    def status(self) -> str:
        """``"failed"`` (some check failed), ``"passed what could be checked"`` (none failed, some could not run) or ``"passed"``."""
        if self.failures:
            return "failed"
        return "passed what could be checked" if self.not_checked else "passed"

    @property
    def summary(self) -> str:
        """The report's last line: ``PASSED``, ``PASSED WHAT COULD BE CHECKED (...)`` or ``FAILED (...)``."""
        if self.failures:
            return f"FAILED ({', '.join(r.name for r in self.failures)})"
        if self.not_checked:
            names = ", ".join(r.name for r in self.not_checked)
            return (
                f"PASSED WHAT COULD BE CHECKED: {len(self.not_checked)} of {len(self.results)} checks not checked ({names}); "
                "this mechanism is not verified"
            )
        return "PASSED"

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}; the report has {[r.name for r in self.results]}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "mechanism": self.mechanism,
            "scale": self.scale,
            "quick": self.quick,
            "passed": self.passed,
            "status": self.status,
            "not_checked": [r.name for r in self.not_checked],
            "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        """The report as one line of JSON."""
        return dumps(self.to_dict())

    def __str__(self) -> str:
        mode = "quick" if self.quick else "full"
        lines = [f"renyicert check: {self.mechanism} at scale {self.scale:g} ({mode} mode)"]
        for result in self.results:
            lines.append(
                f"  {result.name:<20} {result.verdict.value.upper():<12} {result.method}  [{result.seconds:.1f} s]"
            )
            for key, value in result.evidence.items():
                lines.append(f"      {key}: {_short(value)}")
            for warning in result.warnings:
                lines.append(f"      warning: {warning}")
            for limit in result.limits:
                lines.append(f"      not covered: {limit}")
        lines.append(self.summary)
        return "\n".join(lines)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, int, str)) or value is None:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


@dataclass
class CheckContext:
    """Settings and shared, lazily computed state of one :func:`check` run."""

    mechanism: Mechanism
    quick: bool
    seed: int
    #: The input dimension the worst-shift search covers (``None``: the mechanism's own, else a range of them).
    dimension: int | None = None
    _derived: Any = None
    _paths: Any = None
    _draws: dict[tuple[str, int, int, int], Any] = field(default_factory=dict)
    #: Unit shift directions the norm-ball search found worst (per order, radius and dimension searched): the tight-radius check tries them too.
    worst_shifts: list[Any] = field(default_factory=list)

    @property
    def noise_paths(self) -> Any:
        """``(paths, notes)``: the noise paths the sampler checks draw through (:func:`renyicert.checker.paths.noise_paths`), listed once."""
        if self._paths is None:
            from .paths import noise_paths

            self._paths = noise_paths(self.mechanism, include_interpreted_triton=not self.quick)
        return self._paths

    def draws(self, path: Any, rows: int, coordinates: int, seed: int) -> Any:
        """``path.draw(rows, coordinates, seed)``, drawn once per run and shared by the checks (an exception is re-raised each time)."""
        key = (path.name, rows, coordinates, seed)
        if key not in self._draws:
            try:
                self._draws[key] = path.draw(rows, coordinates, seed)
            except Exception as error:  # the plugin's own error: kept, so each check reports it
                self._draws[key] = error
        found = self._draws[key]
        if isinstance(found, Exception):
            raise found
        return found

    @property
    def derived(self) -> Any:
        """The divergence derived from the density (:class:`renyicert.checker.derivation.DerivedDivergence`), computed once."""
        if self._derived is None:
            self._derived = derive_divergence(self.mechanism)
        return self._derived
