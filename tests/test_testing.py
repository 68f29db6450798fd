"""The plugin authors' toolkit: strategies and the one-call contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given

import renyicert
from renyicert.testing import (
    MechanismContractError,
    check_mechanism_contract,
    distances,
    orders,
    probability_pairs,
    shift_vectors,
)

from . import bad_mechanisms as bad


@given(orders(include_inf=True))
def test_orders_are_at_least_one(alpha: float) -> None:
    assert alpha >= 1.0 and not math.isnan(alpha)


@given(distances(max_value=3.0))
def test_distances_are_in_range(r: float) -> None:
    assert 0.0 <= r <= 3.0


@given(probability_pairs(min_gap=0.1))
def test_probability_pairs_are_valid_solver_inputs(pair: tuple[float, float]) -> None:
    p1, p2 = pair
    assert 0.0 <= p2 <= p1 <= 1.0 and p1 + p2 <= 1.0 and p1 - p2 >= 0.1 - 1e-12
    radius, _ = renyicert.certified_radius(renyicert.get_mechanism("gaussian", scale=1.0), p1, p2)
    assert np.isfinite(radius) or p1 == 1.0


@given(shift_vectors(1.0, radius=2.0, max_dimension=5))
def test_shift_vectors_lie_on_the_sphere(shift: np.ndarray) -> None:
    assert 1 <= shift.size <= 5
    assert np.abs(shift).sum() == pytest.approx(2.0)


def test_strategies_reject_bad_parameters() -> None:
    with pytest.raises(ValueError, match="max_value must be finite and > 1, got 0.5"):
        orders(max_value=0.5)
    with pytest.raises(ValueError, match="norm must be >= 1"):
        shift_vectors(0.5)
    with pytest.raises(ValueError, match="min_gap must be in"):
        probability_pairs(min_gap=1.5)


def test_contract_passes_for_a_builtin() -> None:
    report = check_mechanism_contract("laplace", checks=["closed-form", "laws"])
    assert report.passed


def test_contract_raises_an_assertion_with_the_report() -> None:
    with pytest.raises(MechanismContractError, match="closed-form") as failure:
        check_mechanism_contract(bad.QuarterGaussian, checks=["closed-form"])
    assert isinstance(failure.value, AssertionError)
    assert not failure.value.report.passed
