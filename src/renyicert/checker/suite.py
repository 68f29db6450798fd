"""Check a mechanism plugin: its divergence formula against its density, its optional methods, and its noise against both.

:func:`check` runs seven checks and returns a :class:`CheckReport`:

``closed-form``
    The closed form against the divergence derived from the density (sympy,
    or mpmath quadrature where sympy cannot integrate).
``norm-ball``
    The closed form against the worst shift of the same norm (product noise):
    in the dimension the formula assumes (:attr:`Mechanism.dimension`, or the
    ``dimension`` given), else spread over 2 to 8 coordinates and, with
    structured shifts (axis, uniform, the cube's vertex for l_inf), up to 2^20.
``laws``
    ``D(order, 0) = 0``, ``D >= 0``, monotone in ``r`` and ``order``, the
    ``order -> inf`` limit, and ``D(order, r; s) = D(order, r/s; 1)`` (hypothesis).
``optional-methods``
    ``_radius_at`` and ``_radius_per_order`` against the divergence, and the
    comparison bounds against the laws of a certificate and the Rényi radius.
``sampler-density``
    On every noise path certification can draw through (``sample()``, the fused
    sampler on each backend: see :mod:`renyicert.checker.paths`): goodness of fit of
    the marginals to the density, mean, scale convention, independence of
    coordinates; ``sample()`` reproducible from a seed.
``sampler-divergence``
    On every noise path, a Monte Carlo estimate of ``E_P[(p/q)^(order-1)]`` from
    the draws against the closed form, with a confidence interval.
``lattice``
    What lattice mode relies on (:mod:`renyicert.checker.lattice`): ``_coordinate_cdf``
    against the density and ``sample()``, the integer thresholds against the CDF at
    80 digits (exactly), the failure mass, and the atoms every path draws.

A closed form *above* the true divergence is sound (it certifies less than it
could) and passes with a "not tight" warning; one *below* it fails with the
counterexample.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..mechanism import Mechanism
from ..radii import offered_bounds
from ..registry import resolve_mechanism
from .formula import check_closed_form
from .lattice import check_lattice
from .laws import check_laws
from .norm_ball import check_norm_ball
from .optional import check_optional_methods
from .results import CheckContext, CheckReport, CheckResult
from .sampler import check_sampler_density, check_sampler_divergence

__all__ = ["CHECKS", "check", "verify_comparison_bounds"]


def _registry() -> dict[str, Callable[[CheckContext], CheckResult]]:

    return {
        "closed-form": check_closed_form,
        "norm-ball": check_norm_ball,
        "laws": check_laws,
        "optional-methods": check_optional_methods,
        "sampler-density": check_sampler_density,
        "sampler-divergence": check_sampler_divergence,
        "lattice": check_lattice,
    }


#: The names of the checks, in the order they run.
CHECKS: tuple[str, ...] = (
    "closed-form",
    "norm-ball",
    "laws",
    "optional-methods",
    "sampler-density",
    "sampler-divergence",
    "lattice",
)


def check(
    mechanism: Mechanism | type[Mechanism] | str,
    *,
    scale: float = 0.3,
    params: dict[str, Any] | None = None,
    dimension: int | None = None,
    quick: bool = False,
    seed: int = 0,
    checks: Sequence[str] | None = None,
) -> CheckReport:
    """Check a mechanism's divergence formula and sampler.

    Parameters
    ----------
    mechanism
        A mechanism instance, a mechanism class (built at ``scale`` with ``params``) or a registered name.
    scale
        Scale to build the mechanism at when a class or name is given.  Avoid
        ``1.0``, where a sampler that confuses ``sigma`` with ``sigma**2`` looks
        right, and ``0.5``, where ``sqrt(scale)`` and ``scale / sqrt(2)`` coincide.
    params
        The other constructor arguments, when a class or a name is given (``{"d": 64}``).
    dimension
        The number of input coordinates to search the worst shift in (the input's
        ``numel``); default: the mechanism's own :attr:`~renyicert.Mechanism.dimension`,
        else a range of dimensions.
    quick
        Fewer points, examples and samples (about a quarter of the work); the Triton
        kernel is then drawn only on a GPU, not under the interpreter.
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
    mechanism = resolve_mechanism(mechanism, None if isinstance(mechanism, Mechanism) else scale, params)
    if dimension is not None and (isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1):
        raise ValueError(f"dimension must be a positive integer, got {dimension!r}")
    if dimension is not None and mechanism.dimension is not None and dimension != mechanism.dimension:
        raise ValueError(
            f"dimension={dimension} disagrees with {mechanism!r}, whose divergence is for {mechanism.dimension} coordinates"
        )
    wanted = list(CHECKS if checks is None else checks)
    unknown = [name for name in wanted if name not in CHECKS]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; expected names from {list(CHECKS)}")
    context = CheckContext(mechanism=mechanism, quick=bool(quick), seed=int(seed), dimension=dimension)
    table = _registry()
    results = []
    for name in CHECKS:
        if name not in wanted:
            continue
        start = time.perf_counter()
        result = table[name](context)
        results.append(dataclasses.replace(result, seconds=time.perf_counter() - start))
    others = {key: value for key, value in mechanism.get_params().items() if key != "scale"}
    label = mechanism.label + (f" ({', '.join(f'{key}={value!r}' for key, value in others.items())})" if others else "")
    return CheckReport(mechanism=label, scale=mechanism.scale, quick=bool(quick), results=tuple(results))


def verify_comparison_bounds(
    mechanism: Mechanism, *, quick: bool = True, seed: int = 0
) -> tuple[Mechanism, CheckReport]:
    """Check ``mechanism``'s comparison bounds where ``bound="best"`` uses them; ``(mechanism, report)``, the mechanism marked verified if they passed.

    Runs the closed-form, norm-ball and optional-methods checks (the comparison
    bounds are checked against the divergence, so the divergence must be verified
    too).  If all three pass, the returned mechanism is a copy whose tight and
    PixelDP radii count in :func:`renyicert.radii.best_bounds`; otherwise it is
    ``mechanism`` itself, whose ``best`` stays the Rényi radius.  The mechanisms
    renyicert ships need no such call.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.checker import verify_comparison_bounds
    >>> from renyicert.radii import best_bounds
    >>> class MyGaussian(type(renyicert.get_mechanism("gaussian", scale=1.0))):
    ...     name = "my-gaussian"
    >>> mine = MyGaussian(0.3)
    >>> best_bounds(mine)
    ('renyi',)
    >>> verified, report = verify_comparison_bounds(mine)
    >>> report.passed, best_bounds(verified)
    (True, ('renyi', 'tight', 'pixeldp'))
    """
    report = check(mechanism, quick=quick, seed=seed, checks=["closed-form", "norm-ball", "optional-methods"])
    comparison = tuple(bound for bound in offered_bounds(mechanism) if bound != "renyi")
    if not report.passed or not comparison:
        return mechanism, report
    verified = mechanism.replace()
    verified._verified_bounds = frozenset(comparison)  # type: ignore[attr-defined]
    return verified, report
