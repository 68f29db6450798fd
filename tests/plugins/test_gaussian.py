from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

import renyicert

GAUSSIAN = renyicert.get_mechanism("gaussian", scale=0.5)


def test_divergence_is_alpha_r_squared_over_two_sigma_squared() -> None:
    assert float(GAUSSIAN.divergence(2.0, 1.0)) == pytest.approx(4.0, rel=1e-15)
    assert float(GAUSSIAN.divergence(1.5, 1e-6)) == pytest.approx(1.5 * 1e-12 / 0.5, rel=1e-15)


def test_tight_radius_is_cohens() -> None:
    from scipy.stats import norm

    assert float(renyicert.tight_radius(GAUSSIAN, 0.9, 0.1)) == pytest.approx(0.5 * norm.ppf(0.9), rel=1e-14)
    # Stays accurate as p1 -> 1 (PhiInv(p1) = -PhiInv(1 - p1); 1 - p1 is exact in floats).
    p1 = 1 - 1e-15
    p2 = 1 - p1  # 9.99e-16: the float nearest 1 - 1e-15 is not 1e-15 away from 1

    def phi_inv(p: float) -> mp.mpf:
        return mp.sqrt(2) * mp.erfinv(2 * mp.mpf(p) - 1)

    with mp.workdps(40):
        expected = float(0.25 * (phi_inv(p1) - phi_inv(p2)))
    assert float(renyicert.tight_radius(GAUSSIAN, p1, p2)) == pytest.approx(expected, rel=1e-9)


def test_renyi_is_80_to_89_percent_of_cohens_for_two_classes() -> None:
    p1 = np.linspace(0.8, 0.9999, 20)
    ratio = renyicert.certified_radius(GAUSSIAN, p1, 1 - p1).radius / renyicert.tight_radius(GAUSSIAN, p1, 1 - p1)
    assert np.all((ratio > 0.78) & (ratio < 0.9))


def test_optimal_order_is_moderate() -> None:
    p1 = np.linspace(0.8, 0.9999, 20)
    alpha = renyicert.certified_radius(GAUSSIAN, p1, 1 - p1).order
    assert np.all((alpha > 1.2) & (alpha < 1.55))


def test_runner_up_bound_beats_complement_when_probability_is_spread() -> None:
    unit = renyicert.get_mechanism("gaussian", scale=1.0)
    spread = float(renyicert.certified_radius(unit, 0.6, 0.1).radius)
    complement = float(renyicert.certified_radius(unit, 0.6, 0.4).radius)
    assert spread == pytest.approx(0.689, abs=1e-3)
    assert complement == pytest.approx(0.202, abs=1e-3)


def test_sampler_draws_the_stated_scale() -> None:
    x = GAUSSIAN.sample((200_000,), seed=0, dtype=torch.float64)
    assert abs(float(x.mean())) < 0.01
    assert float(x.std()) == pytest.approx(0.5, rel=0.01)


def test_pixeldp_is_capped_at_eps_one() -> None:
    cap = 0.5 / math.sqrt(2 * math.log(1.25e5))
    assert float(renyicert.pixeldp_radius(GAUSSIAN, 0.9999, 0.0001)) == pytest.approx(cap, rel=1e-14)
