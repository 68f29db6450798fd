"""Lattice mode end to end: the floating-point attack on float mode, and lattice mode sound on models with known probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest, norm

import renyicert
from renyicert import Smoothed
from renyicert.radii import probability_threshold


class LowBits(torch.nn.Module):
    """Class 0 exactly when the input is a multiple of 2^-24, else class 1: a model that reads the low-order bits of its float input.

    In exact arithmetic ``x + sigma z`` is a multiple of 2^-24 with probability 0, so the smoothed classifier is class 1
    everywhere. In float32, ``fl(1 + n)`` is always a multiple of 2^-24 (every float32 at or above 1/2 is one, and a sum
    that lands below 1/2 is exact), but ``fl(0 + n) = n`` is one only when ``|n| >= 1/2`` or by luck.
    """

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        scaled = z.double() * 2.0**24
        on_lattice = (scaled == torch.floor(scaled)).all(dim=1)
        return torch.stack([on_lattice, ~on_lattice], dim=1).float()


SIGMA = 1.0 / 3.0
X_CERTIFIED, X_ADVERSARIAL = torch.tensor([1.0]), torch.tensor([0.0])  # 1 apart, both on the grid 1/255


def _attack(grid: int | None) -> tuple[renyicert.Certificate, np.ndarray]:
    smoothed = Smoothed(LowBits(), "gaussian", 2, scale=SIGMA, grid=grid, progress=False, batch_size=10_000)
    certificate = smoothed.certify(X_CERTIFIED, n0=100, n=100_000, alpha=0.001, bound="tight", seed=1)
    votes = smoothed.class_counts(X_ADVERSARIAL, 100_000, seed=2)
    return certificate, votes


def _adversarial_inside(certificate: renyicert.Certificate, votes: np.ndarray) -> bool:
    """Whether the certified ball holds a point where the smoothed classifier (estimated, at 1e-6 significance) prefers another class."""
    distance = float(abs(X_CERTIFIED - X_ADVERSARIAL))
    other = int(votes.sum() - votes[certificate.label])
    prefers_other = binomtest(other, int(votes.sum()), 0.5, alternative="greater").pvalue < 1e-6
    return certificate.label != -1 and certificate.radius > distance and prefers_other


def test_float_mode_certifies_past_a_real_adversarial_example() -> None:
    certificate, votes = _attack(grid=None)
    assert certificate.label == 0 and certificate.counts == (100_000, 0)
    assert certificate.radius == pytest.approx(1.2626, abs=1e-3)  # sigma PhiInv(0.001^(1/100000))
    assert 0.52 < votes[1] / votes.sum() < 0.56  # at distance 1 the float-mode smoothed classifier says class 1
    assert _adversarial_inside(certificate, votes)


def test_lattice_mode_on_the_same_model_does_not() -> None:
    certificate, votes = _attack(grid=255)
    # The lattice copies (255 + j) / 255 are a function of the lattice point: class 0 exactly when they are >= 1/2,
    # so the smoothed classifier is that threshold smoothed, honestly, and its radius stops short of the class-1 point.
    assert certificate.label == 0 and certificate.grid == 255
    p0 = float(norm.cdf(127.5 / 255 / SIGMA))  # P(255 + j >= 128) for j the Gaussian rounded to 1/255
    assert certificate.counts[0] / 100_000 == pytest.approx(p0, abs=0.003)
    assert certificate.radius < 0.5 < 1.0
    assert votes[1] / votes.sum() > 0.85
    assert not _adversarial_inside(certificate, votes)


def _threshold_model() -> torch.nn.Module:
    model = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    return model


def _lattice_probability(k: np.ndarray, grid: int, sigma: float) -> np.ndarray:
    """P(k + j > 0) for j = round(grid e), e ~ N(0, sigma^2): the threshold model's exact class-0 probability in lattice mode."""
    return norm.sf((0.5 - k) / (grid * sigma))


@pytest.mark.parametrize("p2_mode", ["runner-up", "complement"])
def test_lattice_certificates_are_sound_on_a_model_with_known_probabilities(p2_mode: str) -> None:
    grid, sigma, alpha, runs = 255, 0.5, 0.05, 300
    k = 51  # x = 0.2
    p1 = float(_lattice_probability(np.array(k), grid, sigma))
    smoothed = Smoothed(
        _threshold_model(), "gaussian", 2, scale=sigma, grid=grid, input_shape=(1,), progress=False, batch_size=4096
    )
    certificates = smoothed.certify(torch.full((runs, 1), k / grid), n0=20, n=300, alpha=alpha, p2_mode=p2_mode, seed=1)
    misses = sum(c.p1_lower > p1 for c in certificates)
    assert misses <= 2 * alpha * runs, misses
    truth = float(renyicert.certified_radius(smoothed.mechanism, p1, 1 - p1).radius)
    assert all(c.radius <= truth * (1 + 1e-12) for c in certificates if c.p1_lower <= p1 and c.p2_upper >= 1 - p1)
    assert all(c.label in (0, -1) and c.grid == grid and c.failed == 0 for c in certificates)
    best = smoothed.certify(torch.full((4, 1), k / grid), n0=20, n=2000, alpha=alpha, bound="best", seed=5)
    assert all(c.bound in ("renyi", "tight", "pixeldp") and c.radius >= 0 for c in best)


@pytest.mark.parametrize("p2_mode", ["complement", "runner-up"])
def test_lattice_sequential_wrong_certifications_are_at_most_alpha(p2_mode: str) -> None:
    """2,000 grid inputs whose exact lattice probability is just below the threshold of radius 0.5 sigma: every "certified" is wrong."""
    grid, sigma, radius, alpha, inputs = 1024, 1.0, 0.5, 0.05, 2000
    threshold = float(probability_threshold(renyicert.get_mechanism("gaussian", scale=sigma), radius, "tight"))
    targets = np.linspace(threshold - 0.04, threshold - 1e-4, inputs)
    k = np.floor(grid * sigma * norm.ppf(targets) + 0.5).astype(np.int64)
    while (too_high := _lattice_probability(k, grid, sigma) >= threshold).any():
        k[too_high] -= 1
    smoothed = Smoothed(
        _threshold_model(), "gaussian", 2, scale=sigma, grid=grid, input_shape=(1,), batch_size=8192, progress=False
    )
    answers = smoothed.certify_at(
        torch.tensor(k / grid, dtype=torch.float32)[:, None],
        [radius],
        alpha,
        budget=2000,
        n0=20,
        bound="tight",
        p2_mode=p2_mode,
        seed=0,
    )
    wrong = sum(a.certified[0] for a in answers)
    assert wrong / inputs <= alpha, f"{wrong} of {inputs} certified above their true probability"
    assert all(a.failed == 0 for a in answers)


def test_lattice_failures_count_against_the_label_in_certify_and_certify_at() -> None:
    from renyicert.lattice import lattice_noise

    mechanism = renyicert.get_mechanism("gaussian", scale=0.25)
    smoothed = Smoothed(_threshold_model(), mechanism, 2, grid=16, input_shape=(1,), progress=False)
    smoothed._engine = type(smoothed._engine)(
        smoothed.scorer, mechanism, 2, lattice=lattice_noise(mechanism, 16, tail=0.05)
    )  # 10% failures
    x = torch.tensor([0.5])
    certificate = smoothed.certify(x, n0=50, n=2000, seed=3)
    assert certificate.failed > 100 and sum(certificate.counts) + certificate.failed == 2000
    again = renyicert.confidence.top_two_bounds(
        np.array([certificate.counts]),
        np.array([certificate.selected]),
        0.001,
        "runner-up",
        np.array([certificate.failed]),
    )
    assert (certificate.p1_lower, certificate.p2_upper) == (float(again[0][0]), float(again[1][0]))
    assert certificate.p1_lower < certificate.counts[0] / 2000 < (certificate.counts[0] + certificate.failed) / 2000
    answer = smoothed.certify_at(x, [0.1], budget=3000, seed=3)
    assert answer.failed > 0 and sum(answer.counts) + answer.failed == answer.samples
    # The runner-up form's sequences saw the failed copies as the other class's votes: p2_upper from counts[1] + failed.
    from renyicert.confidence_sequence import sequence_bounds

    top, other = answer.counts[answer.label], answer.counts[1 - answer.label] + answer.failed
    p1_lower = float(sequence_bounds(np.array([top]), np.array([answer.samples]), 0.001 / 2, "lower")[0][0])
    p2_upper = float(sequence_bounds(np.array([other]), np.array([answer.samples]), 0.001 / 2, "upper")[1][0])
    assert (answer.p1_lower, answer.p2_upper) == (p1_lower, min(p2_upper, 1 - p1_lower))


def test_off_grid_inputs_are_refused_or_rounded_with_the_rounded_certificate() -> None:
    smoothed = Smoothed(_threshold_model(), "gaussian", 2, scale=0.5, grid=255, input_shape=(1,), progress=False)
    with pytest.raises(ValueError, match="off the grid k / 255"):
        smoothed.certify(torch.tensor([0.3001]), n=100)
    rounding = Smoothed(
        _threshold_model(), "gaussian", 2, scale=0.5, grid=255, input_shape=(1,), progress=False, round_off_grid=True
    )
    a = rounding.certify(torch.tensor([0.3001]), n=500, seed=1)
    b = rounding.certify(torch.tensor([round(0.3001 * 255) / 255]), n=500, seed=1)
    assert (a.counts, a.radius) == (b.counts, b.radius)
    assert not math.isnan(a.radius)
