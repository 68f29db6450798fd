from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

from renyicert.budget import PairBudget, renyi_budget

from .reference import budget as reference_budget

EXTREME_PAIRS = [
    (0.5 + 1e-7, 0.5 - 1e-7),
    (0.30001, 0.3),
    (0.5 + 1e-15, 0.5 - 1e-15),
    (1 - 1e-12, 1 - (1 - 1e-12)),
    (1 - 1e-15, 1e-300),
    (0.9, 0.0),
    (0.99, 0.01),
    (0.7, 0.1),
    (0.6, 0.4),
]
ORDERS = [1.0, 1 + 1e-12, 1 + 1e-9, 1 + 1e-4, 1.3, 2.0, 10.0, 1e3, 1e6, 1e12, math.inf]


@pytest.mark.parametrize("p1,p2", EXTREME_PAIRS)
def test_budget_matches_50_digit_reference(p1: float, p2: float) -> None:
    # 90 digits: the naive formula raises a number near 1 to the power 1/(1 - alpha),
    # which is -1e12 for alpha = 1 + 1e-12, and loses that many digits.
    with mp.workdps(90):
        for alpha in ORDERS:
            expected = reference_budget(mp.mpf(p1), mp.mpf(p2), mp.mpf(alpha))
            got = float(renyi_budget(p1, p2, alpha))
            assert got == pytest.approx(float(expected), rel=1e-11, abs=0), (alpha, got, expected)


def test_budget_limits_are_geometric_mean_and_minimum() -> None:
    p1, p2 = 0.8, 0.15
    assert float(renyi_budget(p1, p2, 1.0)) == pytest.approx(-math.log(1 - p1 - p2 + 2 * math.sqrt(p1 * p2)), rel=1e-14)
    assert float(renyi_budget(p1, p2, math.inf)) == pytest.approx(-math.log(1 - p1 + p2), rel=1e-14)


def test_budget_is_finite_for_p2_equal_complement_at_every_order() -> None:
    # Naive evaluation reports infinity here (1 - p1 - p2 cancels to 0 and M underflows).
    values = renyi_budget(0.999, 0.001, np.array([1.5, 50.0, 1e4, 1e8, math.inf]))
    assert np.all(np.isfinite(values))
    assert np.all(np.diff(values) >= 0)


def test_budget_broadcasts() -> None:
    values = renyi_budget(np.array([[0.9], [0.8]]), 0.05, np.array([1.5, 2.0, 3.0]))
    assert values.shape == (2, 3)


def test_budget_derivatives_match_finite_differences() -> None:
    p1, p2 = np.array([0.9, 0.6, 0.99, 0.7]), np.array([0.1, 0.3, 1e-200, 0.2])
    pairs = PairBudget(p1, p2)
    for t in [0.05, 0.3, 2.0, 50.0]:
        tt = np.full(4, t)
        b, db, ddb = pairs.with_derivatives(tt)
        h = 1e-4 * t
        plus, minus = pairs(1 + tt + h), pairs(1 + tt - h)
        np.testing.assert_allclose(b, pairs(1 + tt), rtol=1e-14)
        np.testing.assert_allclose(db, (plus - minus) / (2 * h), rtol=1e-6, atol=1e-80)
        np.testing.assert_allclose(ddb, (plus - 2 * b + minus) / h**2, rtol=1e-3, atol=1e-80)


def test_budget_derivatives_are_continuous_at_alpha_one() -> None:
    pairs = PairBudget(np.array([0.9, 0.6]), np.array([0.1, 0.3]))
    at_zero = pairs.with_derivatives(np.zeros(2))
    near_zero = pairs.with_derivatives(np.full(2, 1e-9))
    for exact, near in zip(at_zero, near_zero):
        np.testing.assert_allclose(exact, near, rtol=1e-6, atol=1e-8)


def test_budget_reads_integer_inputs_as_real_numbers() -> None:
    assert math.isinf(float(renyi_budget(np.array(1), np.array(0), np.array(2))))
    np.testing.assert_array_equal(renyi_budget(np.array([1, 1]), 0.1, 2), renyi_budget(np.array([1.0, 1.0]), 0.1, 2.0))
    np.testing.assert_array_equal(
        renyi_budget(0.9, 0.1, np.array([2, 3])), renyi_budget(0.9, 0.1, np.array([2.0, 3.0]))
    )
