from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch
from scipy import stats

import renyicert

from ..reference import laplace_divergence

LAPLACE = renyicert.get_mechanism("laplace", scale=1.0)


@pytest.mark.parametrize("alpha", [1 + 1e-9, 1.01, 1.5, 2.0, 10.0, 1e3, 1e8])
def test_divergence_matches_mpmath_at_every_distance(alpha: float) -> None:
    y = np.concatenate([np.logspace(-10, 2, 40), [1e-6, 1.0, 3.0]])
    got = LAPLACE.divergence(alpha, y)
    with mp.workdps(60):
        expected = np.array([float(laplace_divergence(mp.mpf(alpha), mp.mpf(v))) for v in y])
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0)


def test_divergence_limits() -> None:
    y = np.array([1e-8, 0.5, 3.0])
    np.testing.assert_allclose(LAPLACE.divergence(1.0, y), y + np.expm1(-y), rtol=1e-6)  # KL
    np.testing.assert_allclose(LAPLACE.divergence(math.inf, y), y, rtol=1e-15)
    assert float(LAPLACE.divergence(1e12, 3.0)) == pytest.approx(3.0, rel=1e-9)


def test_the_seeds_linear_l1_formula_is_below_the_true_divergence() -> None:
    # alpha = 2, b = 1, shift 3 on one coordinate (DESIGN section 3).
    seed_formula = 3 * float(LAPLACE.divergence(2.0, 1.0))
    assert seed_formula == pytest.approx(1.8574, abs=1e-4)
    assert float(LAPLACE.divergence(2.0, 3.0)) == pytest.approx(2.5946, abs=1e-4)


def test_worst_l1_shift_is_on_one_coordinate() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        alpha = 1 + rng.exponential(2)
        r = rng.exponential(2)
        split = rng.dirichlet(np.ones(rng.integers(2, 8))) * r
        assert LAPLACE.divergence(alpha, split).sum() <= float(LAPLACE.divergence(alpha, r)) * (1 + 1e-12)


def test_tight_radius_is_tengs() -> None:
    assert float(renyicert.tight_radius(LAPLACE, 0.99, 0.01)) == pytest.approx(-math.log(0.02), rel=1e-14)
    assert float(renyicert.tight_radius(LAPLACE, 0.5, 0.5)) == 0.0


def test_sampler_draws_laplace_with_scale_b() -> None:
    x = renyicert.get_mechanism("laplace", scale=0.7).sample((100_000,), seed=1, dtype=torch.float64).numpy()
    assert np.isfinite(x).all()
    assert stats.kstest(x, stats.laplace(scale=0.7).cdf).pvalue > 1e-3


def test_papers_alpha_grid_loses_radius() -> None:
    # DESIGN: linspace(1.01, 2, 100) loses 6-12% (p1 = 0.6: 0.2105 vs 0.2231; p1 = 0.99: 3.634 vs 3.912).
    for p1, grid_value, exact in [(0.6, 0.2105, 0.2231), (0.99, 3.634, 3.912)]:
        grid = max(float(renyicert.radius_at_order(LAPLACE, p1, 1 - p1, a)) for a in np.linspace(1.01, 2, 100))
        assert grid == pytest.approx(grid_value, abs=1e-3)
        assert float(renyicert.certified_radius(LAPLACE, p1, 1 - p1).radius) == pytest.approx(exact, abs=1e-3)
