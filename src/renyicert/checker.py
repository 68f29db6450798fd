"""Check a mechanism plugin: its divergence formula against its density, and its sampler against both.

:func:`check` runs five checks and returns a :class:`CheckReport`:

``closed-form``
    The closed form against the divergence derived from the density (sympy,
    or mpmath quadrature where sympy cannot integrate).
``norm-ball``
    The closed form against the worst shift of the same norm spread over 2 to 8
    coordinates (product noise), not only an axis-aligned one.
``laws``
    ``D(alpha, 0) = 0``, ``D >= 0``, monotone in ``r`` and ``alpha``, the
    ``alpha -> inf`` limit, and ``D(alpha, r; s) = D(alpha, r/s; 1)`` (hypothesis).
``sampler-density``
    Goodness of fit of the sampler's marginals to the density, mean, scale
    convention, independence of coordinates and reproducibility from a seed.
``sampler-divergence``
    A Monte Carlo estimate of ``E_P[(p/q)^(alpha-1)]`` from the sampler's own
    draws against the closed form, with a confidence interval.

A closed form *above* the true divergence is sound (it certifies less than it
could) and passes with a "not tight" warning; one *below* it fails with the
counterexample.
"""

from __future__ import annotations

import enum
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .mechanism import Mechanism

__all__ = ["CHECKS", "CheckReport", "CheckResult", "Verdict", "check"]


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
    ``alpha``, ``r``, ``shift``, ``closed_form`` and ``true``).
    """

    name: str
    verdict: Verdict
    method: str
    evidence: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "method": self.method,
            "evidence": _jsonable(self.evidence),
            "warnings": list(self.warnings),
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
        """``True`` unless some check failed (undecided and not-checked checks do not fail)."""
        return not self.failures

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The checks whose verdict is :attr:`Verdict.FAIL`."""
        return tuple(r for r in self.results if r.verdict is Verdict.FAIL)

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
            "checks": [r.to_dict() for r in self.results],
        }

    def to_json(self) -> str:
        """The report as one line of JSON."""
        return json.dumps(self.to_dict())

    def __str__(self) -> str:
        mode = "quick" if self.quick else "full"
        lines = [f"renyicert check: {self.mechanism} at scale {self.scale:g} ({mode} mode)"]
        for result in self.results:
            lines.append(f"  {result.name:<20} {result.verdict.value.upper():<12} {result.method}  [{result.seconds:.1f} s]")
            for key, value in result.evidence.items():
                lines.append(f"      {key}: {_short(value)}")
            for warning in result.warnings:
                lines.append(f"      warning: {warning}")
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(r.name for r in self.failures)})"
        lines.append(verdict)
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
    _derived: Any = None

    @property
    def derived(self) -> Any:
        """The divergence derived from the density (:class:`renyicert.derivation.DerivedDivergence`), computed once."""
        if self._derived is None:
            from .derivation import derive_divergence

            self._derived = derive_divergence(self.mechanism)
        return self._derived


def _registry() -> dict[str, Callable[[CheckContext], CheckResult]]:
    from .formula_checks import check_closed_form, check_laws, check_norm_ball
    from .sampler_checks import check_sampler_density, check_sampler_divergence

    return {
        "closed-form": check_closed_form,
        "norm-ball": check_norm_ball,
        "laws": check_laws,
        "sampler-density": check_sampler_density,
        "sampler-divergence": check_sampler_divergence,
    }


#: The names of the checks, in the order they run.
CHECKS: tuple[str, ...] = ("closed-form", "norm-ball", "laws", "sampler-density", "sampler-divergence")


def check(
    mechanism: Mechanism | type[Mechanism] | str,
    *,
    scale: float = 0.3,
    quick: bool = False,
    seed: int = 0,
    checks: Sequence[str] | None = None,
) -> CheckReport:
    """Check a mechanism's divergence formula and sampler.

    Parameters
    ----------
    mechanism
        A mechanism instance, a mechanism class (built at ``scale``) or a registered name.
    scale
        Scale to build the mechanism at when a class or name is given.  Avoid
        ``1.0``, where a sampler that confuses ``sigma`` with ``sigma**2`` looks
        right, and ``0.5``, where ``sqrt(scale)`` and ``scale / sqrt(2)`` coincide.
    quick
        Fewer points, examples and samples (about a quarter of the work).
    seed
        Seeds every random choice, so a report is reproducible.
    checks
        Names from :data:`CHECKS` to run (default: all).

    Returns
    -------
    CheckReport
        ``report.passed`` is ``False`` when any check failed.

    Examples
    --------
    >>> import renyicert
    >>> report = renyicert.check("gaussian", quick=True, checks=["closed-form", "laws"])
    >>> report.passed, report["closed-form"].verdict.value
    (True, 'pass')
    """
    from .registry import get_mechanism

    if isinstance(mechanism, str):
        mechanism = get_mechanism(mechanism, scale=scale)
    elif isinstance(mechanism, type) and issubclass(mechanism, Mechanism):
        mechanism = mechanism(scale)
    if not isinstance(mechanism, Mechanism):
        raise TypeError(f"mechanism must be a Mechanism, a Mechanism subclass or a registered name, got {mechanism!r}")
    wanted = list(CHECKS if checks is None else checks)
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; expected names from {list(CHECKS)}")
    context = CheckContext(mechanism=mechanism, quick=bool(quick), seed=int(seed))
    table = _registry()
    results = []
    for name in CHECKS:
        if name not in wanted:
            continue
        start = time.perf_counter()
        result = table[name](context)
        results.append(
            CheckResult(result.name, result.verdict, result.method, result.evidence, result.warnings, time.perf_counter() - start)
        )
    label = mechanism.name or type(mechanism).__name__
    return CheckReport(mechanism=label, scale=mechanism.scale, quick=bool(quick), results=tuple(results))
