"""Check a mechanism plugin: its divergence formula against its density, and its sampler against both.

:func:`check` runs five checks and returns a :class:`CheckReport`:

``closed-form``
    The closed form against the divergence derived from the density (sympy,
    or mpmath quadrature where sympy cannot integrate).
``norm-ball``
    The closed form against the worst shift of the same norm spread over 2 to 8
    coordinates (product noise), not only an axis-aligned one.
``laws``
    ``D(order, 0) = 0``, ``D >= 0``, monotone in ``r`` and ``order``, the
    ``order -> inf`` limit, and ``D(order, r; s) = D(order, r/s; 1)`` (hypothesis).
``sampler-density``
    Goodness of fit of the sampler's marginals to the density, mean, scale
    convention, independence of coordinates and reproducibility from a seed.
``sampler-divergence``
    A Monte Carlo estimate of ``E_P[(p/q)^(order-1)]`` from the sampler's own
    draws against the closed form, with a confidence interval.

A closed form *above* the true divergence is sound (it certifies less than it
could) and passes with a "not tight" warning; one *below* it fails with the
counterexample.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from ..mechanism import Mechanism
from ..registry import resolve_mechanism
from .results import CheckContext, CheckReport, CheckResult

__all__ = ["CHECKS", "check"]


def _registry() -> dict[str, Callable[[CheckContext], CheckResult]]:
    from .formula import check_closed_form, check_laws, check_norm_ball
    from .sampler import check_sampler_density, check_sampler_divergence

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
    # An instance keeps its own scale; ``scale`` builds a class or a name.
    mechanism = resolve_mechanism(mechanism, None if isinstance(mechanism, Mechanism) else scale)
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
    return CheckReport(mechanism=mechanism.label, scale=mechanism.scale, quick=bool(quick), results=tuple(results))
