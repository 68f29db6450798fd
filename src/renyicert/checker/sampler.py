"""The checks of a mechanism's sampler: against its density, and against its divergence.

Each check takes a :class:`renyicert.checker.CheckContext` and returns a
:class:`renyicert.checker.CheckResult`; :func:`renyicert.check` runs them.
Statistical tests use significance ``SIGNIFICANCE`` each, so a correct sampler
fails one only rarely; every draw is seeded, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .derivation import log_density_expression, symbols
from .results import CheckContext, CheckResult, Verdict

__all__ = ["check_sampler_density", "check_sampler_divergence"]

#: Significance level of each statistical test.
SIGNIFICANCE = 1e-5
#: Coordinates drawn per sample (independence is tested between them).
COORDINATES = 4
#: Rows of COORDINATES values drawn on each path, by quick mode; the density check uses the first 20,000 / 100,000.
_DRAWN_ROWS = {True: 50_000, False: 250_000}


def numeric_log_density(mechanism: Any) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """The one-coordinate log-density at the mechanism's scale as a numpy function."""
    import sympy

    sym = symbols()
    function = sympy.lambdify(
        sym["x"], log_density_expression(mechanism).subs(sym["scale"], mechanism.scale), modules="numpy"
    )
    return lambda z: np.broadcast_to(np.asarray(function(z), dtype=np.float64), np.shape(z))


def _numeric_cdf(
    log_density: Callable[[Any], Any], samples: NDArray[np.float64]
) -> tuple[Callable[[Any], Any], float, float]:
    """The density's CDF on the samples' range (quadrature below it, Simpson on a fine grid across it), its mean and std."""
    from scipy.integrate import cumulative_simpson, quad

    def pdf(z: float) -> float:
        return float(np.exp(log_density(np.asarray(z))))

    low, high = float(samples.min()), float(samples.max())
    start = quad(pdf, -np.inf, low, limit=200)[0] if np.isfinite(low) else 0.0
    grid = np.linspace(low, high, 2**18 + 1)
    cumulative = start + cumulative_simpson(np.exp(log_density(grid)), x=grid, initial=0.0)
    first = sum(quad(lambda z: z * pdf(z), a, b, limit=200)[0] for a, b in ((-np.inf, 0.0), (0.0, np.inf)))
    second = sum(quad(lambda z: z * z * pdf(z), a, b, limit=200)[0] for a, b in ((-np.inf, 0.0), (0.0, np.inf)))
    return (lambda z: np.interp(z, grid, cumulative)), first, math.sqrt(max(second - first * first, 0.0))


def _scale_diagnosis(ratio: float, scale: float) -> str:
    """A likely cause of a sample std ``ratio`` times the density's."""
    causes = [
        (scale, "the sampler uses scale**2 where scale is meant (variance for standard deviation?)"),
        (1.0 / scale, "the sampler uses 1/scale or sqrt(scale) conventions"),
        (math.sqrt(scale), "the sampler uses sqrt(scale) where scale is meant"),
        (
            1.0 / math.sqrt(2.0),
            "the sampler draws with standard deviation = scale where scale is a Laplace-type b (std = sqrt(2) b)",
        ),
        (math.sqrt(2.0), "the sampler draws with scale b where scale means the standard deviation"),
    ]
    if not ratio > 0:
        return "the sampler's draws have no spread"
    matches = [cause for factor, cause in causes if abs(math.log(ratio / factor)) < 0.02]
    return " or ".join(matches) if matches else "the sampler's scale convention differs from the density's"


def _drawn(
    context: CheckContext, path: Any, count: int, seed: int
) -> tuple[NDArray[np.float64] | None, dict[str, Any]]:
    """``path``'s draws, or ``None`` and the problem (an error from the plugin, wrong shape, non-finite values)."""
    try:
        samples = np.asarray(context.draws(path, count, COORDINATES, seed), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError, NotImplementedError) as error:
        return None, {"path": path.name, "problem": f"{type(error).__name__}: {error}"}
    if samples.shape != (count, COORDINATES):
        return None, {"path": path.name, "problem": f"draws of shape {samples.shape}, expected {(count, COORDINATES)}"}
    if not np.isfinite(samples).all():
        return None, {"path": path.name, "problem": "non-finite draws", "count": int((~np.isfinite(samples)).sum())}
    return samples, {}


def check_sampler_density(context: CheckContext) -> CheckResult:
    """Every noise path against the density: KS fit, mean, scale convention, independence; ``sample()`` reproducible.

    The paths are those certification can draw through (see
    :mod:`renyicert.checker.paths`); without a density each is compared with
    ``sample()`` instead (two-sample KS).
    """
    from scipy import stats

    mechanism = context.mechanism
    name = "sampler-density"
    count = 20_000 if context.quick else 100_000
    problems = _reproducibility_problems(mechanism, context.seed + 17)
    if problems:
        return CheckResult(name, Verdict.FAIL, "reproducibility from seed and generator", problems)
    paths, notes = context.noise_paths
    has_density = mechanism.has_density and context.derived.normalised is not False
    z_crit = float(stats.norm.isf(SIGNIFICANCE / 2))
    test = (
        "scipy.stats.kstest against the density's CDF, mean, std"
        if has_density
        else "scipy.stats.ks_2samp against sample(), std"
    )
    method = (
        f"up to {count} x {COORDINATES} draws on each of {len(paths)} path(s): {test}, independence of coordinates and of copies "
        f"(|corr| of values and magnitudes; copies at lags {', '.join(map(str, COPY_LAGS))} and in pairs; repeated copies), seeds"
    )
    log_density = numeric_log_density(mechanism) if has_density else None
    reference: tuple[str, NDArray[np.float64]] | None = None
    measured: dict[str, str] = {}
    drawn: list[tuple[Any, NDArray[np.float64]]] = []
    for path in paths:  # the draws the divergence check uses too (the first rows of them)
        rows = path.sample_count(_DRAWN_ROWS[context.quick], COORDINATES)
        samples, problem = _drawn(context, path, rows, context.seed + 29)
        if samples is None:
            return CheckResult(name, Verdict.FAIL, method, problem)
        drawn.append((path, samples[: path.sample_count(count, COORDINATES)]))
    # One CDF over every path's range (quadrature and a fine grid are the costly part).
    cdf_parts = (
        _numeric_cdf(log_density, np.concatenate([samples.ravel() for _, samples in drawn]))
        if log_density is not None
        else None
    )
    for path, samples in drawn:
        problem = _independence_problem(path.name, samples, z_crit)
        if problem is not None:
            return CheckResult(name, Verdict.FAIL, method, problem)
        pooled = samples.ravel()
        if cdf_parts is None:
            if reference is None:
                reference = (path.name, pooled)
                measured[path.name] = f"std {float(pooled.std()):.6g} (the reference)"
                continue
            measured[path.name], problem = _against_reference(path.name, pooled, reference)
        else:
            measured[path.name], problem = _against_density(path.name, pooled, cdf_parts, z_crit, mechanism.scale)
        if problem is not None:
            return CheckResult(name, Verdict.FAIL, method, problem)
    return CheckResult(name, Verdict.PASS, method, {"paths": measured}, _density_warnings(context), limits=tuple(notes))


def _density_warnings(context: CheckContext) -> tuple[str, ...]:
    """What a passing density check could not see: no density, a density that is not normalised, or scale 1."""
    if not context.mechanism.has_density:
        return (
            "goodness of fit not checked: no density (_symbolic_log_density); the paths were compared with sample() only",
        )
    if context.derived.normalised is False:
        return ("goodness of fit not checked: the density does not integrate to 1 (see closed-form)",)
    if context.mechanism.scale == 1.0:
        return ("scale 1 cannot tell scale from scale**2: check at another scale too",)
    return ()


def _independence_problem(path: str, samples: NDArray[np.float64], z_crit: float) -> dict[str, Any] | None:
    """The evidence that a path's coordinates (values or magnitudes) or its copies are dependent; ``None`` if not."""
    rows = samples.shape[0]
    for label, values in (("values", samples), ("magnitudes", np.abs(samples))):
        corr = np.corrcoef(values, rowvar=False)[np.triu_indices(COORDINATES, 1)]
        worst = float(np.max(np.abs(corr)))
        if worst * math.sqrt(rows) > z_crit:
            return {
                "path": path,
                "problem": f"coordinates are correlated ({label})",
                "max |corr|": worst,
                "threshold": z_crit / math.sqrt(rows),
            }
    dependence = _copies_dependence(samples, z_crit)
    return None if dependence is None else {"path": path, **dependence}


def _against_reference(
    path: str, pooled: NDArray[np.float64], reference: tuple[str, NDArray[np.float64]]
) -> tuple[str, dict[str, Any] | None]:
    """A path without a density against the first path's draws (two-sample KS): what was measured, and the evidence of a difference."""
    from scipy import stats

    sample_std = float(pooled.std())
    ks2 = stats.ks_2samp(reference[1], pooled)
    other_std = float(reference[1].std())
    measured = f"two-sample KS p = {ks2.pvalue:.3g}, std {sample_std:.6g} ({reference[0]}: {other_std:.6g})"
    if not ks2.pvalue < SIGNIFICANCE:
        return measured, None
    return measured, {
        "path": path,
        "problem": f"the path's noise differs from {reference[0]}'s",
        "measured": f"{path}: std {sample_std:.6g}, {reference[0]}: std {other_std:.6g}",
        "KS statistic": float(ks2.statistic),
        "p-value": float(ks2.pvalue),
    }


def _against_density(
    path: str, pooled: NDArray[np.float64], cdf_parts: tuple[Any, float, float], z_crit: float, scale: float
) -> tuple[str, dict[str, Any] | None]:
    """A path's draws against the density: its mean (a z-test), then the KS fit; what was measured, and the evidence of a misfit."""
    from scipy import stats

    cdf, mean, std = cdf_parts
    sample_mean = float(pooled.mean())
    if abs(sample_mean - mean) > z_crit * std / math.sqrt(pooled.size):
        evidence = {
            "path": path,
            "problem": "mean differs from the density's",
            "sample mean": sample_mean,
            "density mean": mean,
        }
        return f"mean {sample_mean:.6g} (density {mean:.6g})", evidence
    sample_std = float(pooled.std())
    ks = stats.kstest(pooled, cdf)
    ratio = sample_std / std if std > 0 else math.nan
    measured = f"KS p = {ks.pvalue:.3g}, std {sample_std:.6g} (density {std:.6g})"
    if not ks.pvalue < SIGNIFICANCE:
        return measured, None
    evidence = {
        "path": path,
        "measured": f"{path}: std {sample_std:.6g}, density: {std:.6g}",
        "KS statistic": float(ks.statistic),
        "p-value": float(ks.pvalue),
        "std ratio": ratio,
    }
    if abs(math.log(ratio)) > 0.01:
        evidence["likely cause"] = _scale_diagnosis(ratio, scale)
    return measured, evidence


def _divergence_point(
    context: CheckContext,
    log_density: Any,
    samples: NDArray[np.float64],
    path: str,
    order: float,
    y: float,
    z_crit: float,
) -> tuple[str | None, dict[str, Any], str | None]:
    """One (order, r/scale) point on one path: why it fails (or ``None``), the evidence, and a warning if not tight."""
    mechanism = context.mechanism
    shift = y * mechanism.scale
    # In log space throughout: (order - 1) D overflows exp() beyond 709 (an l_inf formula for d >= 710 coordinates).
    exponents = (order - 1.0) * (log_density(samples) - log_density(samples - shift))
    peak = float(np.max(exponents))
    scaled = np.exp(exponents - peak)
    mean, half = float(scaled.mean()), z_crit * float(scaled.std(ddof=1)) / math.sqrt(scaled.size)
    log_estimate = peak + math.log(mean)
    log_low = peak + math.log(mean - half) if mean > half else -math.inf
    log_high = peak + math.log(mean + half)
    closed = float(mechanism.divergence(order, shift))
    log_closed = (order - 1.0) * closed
    evidence = {
        "path": path,
        "order": order,
        "r": shift,
        "shift": [shift],
        "closed_form": closed,
        "sampled": log_estimate / (order - 1.0),
        "log-moment interval": [log_low, log_high],
        "closed-form log-moment": log_closed,
    }
    if log_closed < log_low:
        return "the closed form is below what the samples show", evidence, None
    log_true = (order - 1.0) * float(context.derived.at(order, shift, mechanism.scale))
    if not (log_low <= log_true <= log_high):
        evidence["density log-moment"] = log_true
        return "the samples disagree with the density's divergence (sampler and density differ)", evidence, None
    if log_closed > log_high:
        warning = (
            f"not tight for a one-coordinate shift at order={order:g}, r={shift:g}: closed form {closed:.6g}, "
            f"sampled {log_estimate / (order - 1.0):.6g}"
        )
        return None, evidence, warning
    return None, evidence, None


#: Distances between copies (rows) whose correlation is tested: neighbours, and the next few (a period-2 pattern, say).
COPY_LAGS = (1, 2, 3, 4)


def _copies_dependence(samples: NDArray[np.float64], z_crit: float) -> dict[str, Any] | None:
    """Evidence that copies of the same input (rows) are not independent draws, or ``None``.

    Certification counts votes over copies as independent trials, so a sampler
    whose copies depend on each other (antithetic pairs, ``row 2k+1 = -row 2k``;
    repeated rows) breaks the Clopper-Pearson coverage even when every row alone
    has the right law.  Tested: the correlation of values and of magnitudes
    between rows ``lag`` apart, and within the pairs ``(2k, 2k+1)``, each against
    its null spread ``1/sqrt(n)``; and rows repeated exactly, which continuous
    noise never gives.
    """
    rows = samples.shape[0]
    pairs: list[tuple[str, NDArray[np.float64], NDArray[np.float64]]] = [
        (f"copies {lag} apart", samples[:-lag], samples[lag:]) for lag in COPY_LAGS if rows > lag + 2
    ]
    if rows >= 6:
        half = rows // 2
        pairs.append(("copies in pairs (2k, 2k+1)", samples[0 : 2 * half : 2], samples[1 : 2 * half : 2]))
    for label, first, second in pairs:
        for kind, a, b in (("values", first, second), ("magnitudes", np.abs(first), np.abs(second))):
            a, b = a.ravel(), b.ravel()
            if a.std() == 0.0 or b.std() == 0.0:
                continue
            corr = float(np.corrcoef(a, b)[0, 1])
            if abs(corr) * math.sqrt(a.size) > z_crit:
                return {
                    "problem": f"{label} are correlated ({kind}): copies of one input must be independent draws",
                    "corr": corr,
                    "threshold": z_crit / math.sqrt(a.size),
                }
    first = samples[: max(1, rows // 4)].ravel()
    if (
        np.unique(first).size > 0.99 * first.size
    ):  # continuous noise (judged on the first copies): an exactly repeated row is a repeated draw
        repeated = rows - np.unique(samples, axis=0).shape[0]
        if repeated > 0:
            return {
                "problem": "copies of one input are repeated exactly: the sampler reuses draws",
                "repeated rows": int(repeated),
                "rows": rows,
            }
    return None


def _reproducibility_problems(mechanism: Any, seed: int) -> dict[str, Any]:
    import torch

    first = mechanism.sample((64, 3), seed=seed, dtype=torch.float64)
    again = mechanism.sample((64, 3), seed=seed, dtype=torch.float64)
    other = mechanism.sample((64, 3), seed=seed + 1, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    through_generator = mechanism.sample((64, 3), generator=generator, dtype=torch.float64)
    single = mechanism.sample((64, 3), seed=seed, dtype=torch.float32)
    if tuple(first.shape) != (64, 3) or first.dtype != torch.float64 or single.dtype != torch.float32:
        return {
            "problem": "sample() ignores the requested shape or dtype",
            "shape": list(first.shape),
            "dtypes": [str(first.dtype), str(single.dtype)],
        }
    if not torch.equal(first, again):
        return {"problem": "the same seed gave different noise"}
    if torch.equal(first, other):
        return {"problem": "different seeds gave the same noise"}
    if not torch.equal(first, through_generator):
        return {"problem": "seed=s and generator=torch.Generator().manual_seed(s) gave different noise"}
    return {}


def check_sampler_divergence(context: CheckContext) -> CheckResult:
    """On every noise path, a Monte Carlo estimate of ``E_P[(p/q)^(order-1)]`` against the closed form and the density's."""
    from scipy import stats

    mechanism = context.mechanism
    name = "sampler-divergence"
    if not mechanism.has_density:
        return CheckResult(name, Verdict.NOT_CHECKED, "not checked: no density (_symbolic_log_density)")
    if context.derived.normalised is False:
        return CheckResult(
            name, Verdict.NOT_CHECKED, "not checked: the density does not integrate to 1 (see closed-form)"
        )
    count = _DRAWN_ROWS[context.quick]
    log_density = numeric_log_density(mechanism)
    paths, notes = context.noise_paths
    points = (
        [(1.5, 0.5), (2.0, 1.0)] if context.quick else [(1.5, 0.25), (1.5, 1.0), (2.0, 0.5), (2.0, 1.0), (3.0, 0.5)]
    )
    z_crit = float(stats.norm.isf(SIGNIFICANCE / 2))
    method = (
        f"Monte Carlo over up to {count * COORDINATES} draws on each of {len(paths)} path(s), {len(points)} points (order, r/scale): "
        f"E_P[(p/q)^(order-1)] with a {1 - SIGNIFICANCE:.5f} normal interval vs exp((order-1) D), compared in log space"
    )
    warnings: list[str] = []
    for path in paths:
        drawn, problem = _drawn(context, path, path.sample_count(count, COORDINATES), context.seed + 29)
        if drawn is None:
            return CheckResult(name, Verdict.FAIL, method, problem)
        samples = drawn.ravel()
        for order, y in points:
            failure, evidence, warning = _divergence_point(context, log_density, samples, path.name, order, y, z_crit)
            if failure is not None:
                return CheckResult(name, Verdict.FAIL, f"{method}: {failure}", evidence)
            if warning is not None and path is paths[0]:
                warnings.append(warning)
    return CheckResult(
        name,
        Verdict.PASS,
        f"{method}; paths: {', '.join(p.name for p in paths)}",
        {},
        tuple(warnings),
        limits=tuple(notes),
    )
