"""Clopper-Pearson bounds and the top-two pair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from renyicert.confidence import clopper_pearson_lower, clopper_pearson_upper, top_two_bounds


@pytest.mark.parametrize("k,n", [(0, 10), (1, 10), (3, 10), (9, 10), (10, 10), (990, 1000)])
def test_bounds_match_scipy_binomtest(k: int, n: int) -> None:
    low = binomtest(k, n).proportion_ci(confidence_level=0.98, method="exact")
    assert float(clopper_pearson_lower(k, n, 0.01)) == pytest.approx(low.low, abs=1e-12)
    assert float(clopper_pearson_upper(k, n, 0.01)) == pytest.approx(low.high, abs=1e-12)


def test_runner_up_mode_bounds_every_other_class() -> None:
    counts = np.array([[700, 200, 100], [500, 0, 500]])
    p1, p2 = top_two_bounds(counts, np.array([0, 0]), 0.001, "runner-up")
    assert p1[0] < 0.7 and p2[0] > 0.2 and p2[0] < 1 - p1[0]
    assert p2[1] == pytest.approx(1 - p1[1])  # capped at the complement
    q1, q2 = top_two_bounds(counts, np.array([0, 0]), 0.001, "complement")
    assert np.all(q1 > p1) and np.allclose(q2, 1 - q1)


def test_bad_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="p2_mode must be one of"):
        top_two_bounds(np.array([[1, 2]]), np.array([1]), 0.01, "max")


@pytest.mark.parametrize(
    "counts,top",
    [
        ([[900, 60, 40, 0]], [0]),  # four classes: the runner-up bound is at alpha / (2 * 3)
        ([[5, 3, 2]], [1]),  # the selected class is not the largest: class 0 is the runner-up
        ([[100, 0]], [0]),  # no runner-up votes: its bound is still above 0
        ([[40]], [0]),  # one class: no runner-up at all
    ],
)
def test_top_two_bounds_are_exactly_bonferroni_clopper_pearson(counts: list[list[int]], top: list[int]) -> None:
    from scipy.stats import beta

    alpha = 0.01
    row, k = np.array(counts[0]), int(counts[0][top[0]])
    n, classes = int(row.sum()), row.size
    runner_up = int(np.delete(row, top[0]).max()) if classes > 1 else 0
    expected_p1 = beta.ppf(alpha / 2, k, n - k + 1) if k > 0 else 0.0
    level = alpha / (2 * max(classes - 1, 1))
    expected_p2 = min(beta.ppf(1 - level, runner_up + 1, n - runner_up), 1 - expected_p1)
    p1, p2 = top_two_bounds(np.array(counts), np.array(top), alpha)
    assert float(p1[0]) == pytest.approx(expected_p1, rel=1e-13, abs=1e-300)
    assert float(p2[0]) == pytest.approx(expected_p2, rel=1e-13)
    # The default mode is "runner-up", and float-valued counts and classes are read as integers.
    again = top_two_bounds(np.array(counts, dtype=float), np.array(top, dtype=float), alpha, "runner-up")
    assert np.array_equal(again[0], p1) and np.array_equal(again[1], p2)


def test_complement_mode_is_cohens_one_sided_bound() -> None:
    from scipy.stats import beta

    p1, p2 = top_two_bounds(np.array([[990, 10]]), np.array([0]), 0.001, "complement")
    assert float(p1[0]) == pytest.approx(beta.ppf(0.001, 990, 11), rel=1e-13)
    assert float(p2[0]) == 1.0 - float(p1[0])


def test_bounds_ignore_the_callers_floating_point_settings() -> None:
    # scipy returns nan for the k = 0 lower (and k = n upper) bound, which the function replaces: no warning leaks out.
    with np.errstate(invalid="raise"):
        assert float(clopper_pearson_lower(0, 10, 0.01)) == 0.0 and float(clopper_pearson_upper(10, 10, 0.01)) == 1.0


def test_a_lower_bound_never_rounds_to_one_even_at_alpha_next_to_one() -> None:
    """alpha = 1 - 2^-53 with every vote for the top class: the exact bound alpha^(1/n) rounds to 1.0 (found by the fuzz suite:
    an infinite radius from two samples); the bound returned stays below 1 and below the exact value."""
    from renyicert.confidence import clopper_pearson_lower

    alpha = np.nextafter(1.0, 0.0)
    bound = float(clopper_pearson_lower(2, 2, alpha))
    assert bound < 1.0 and bound <= alpha**0.5


def test_failed_lattice_copies_count_in_n_and_for_every_class_but_the_top_one() -> None:
    from scipy.stats import beta

    def lower(k: int, n: int, a: float) -> float:
        return float(beta.ppf(a, k, n - k + 1))

    def upper(k: int, n: int, a: float) -> float:
        return float(beta.ppf(1 - a, k + 1, n - k))

    alpha = 0.01
    # Three classes, two, and one: the failed copies join n always, and the runner-up where there is one.
    cases = [([90, 3, 2], 5, alpha / 4, 3 + 5), ([90, 5], 5, alpha / 2, 5 + 5), ([95], 5, alpha / 2, 0)]
    for counts, failed, other_alpha, runner_up in cases:
        n = sum(counts) + failed
        p1, p2 = top_two_bounds(np.array([counts]), np.array([0]), alpha, "runner-up", np.array([failed]))
        assert p1[0] == pytest.approx(lower(counts[0], n, alpha / 2), rel=1e-12)
        assert p2[0] == pytest.approx(min(upper(runner_up, n, other_alpha), 1 - p1[0]), rel=1e-12)
        p1, p2 = top_two_bounds(np.array([counts]), np.array([0]), alpha, "complement", [failed])
        assert p1[0] == pytest.approx(lower(counts[0], n, alpha), rel=1e-12) and p2[0] == 1 - p1[0]
    # No failed copies is failed = 0, per row.
    counts = np.array([[90, 3, 2], [50, 45, 0]])
    assert np.array_equal(
        np.array(top_two_bounds(counts, np.array([0, 1]), alpha)),
        np.array(top_two_bounds(counts, np.array([0, 1]), alpha, "runner-up", np.array([0, 0]))),
    )
    with_failed = top_two_bounds(counts, np.array([0, 1]), alpha, "runner-up", np.array([0, 4]))
    alone = top_two_bounds(counts[1:], np.array([1]), alpha, "runner-up", np.array([4]))
    assert with_failed[0][1] == alone[0][0] and with_failed[1][1] == alone[1][0]


def test_the_runner_up_split_ignores_the_top_class_and_never_goes_below_zero() -> None:
    from renyicert.confidence import runner_up_split

    top, runner_up, top_alpha, other_alpha = runner_up_split(np.array([[100, 0, 0], [3, 9, 9]]), np.array([0, 2]), 0.01)
    assert top.tolist() == [100, 9] and runner_up.tolist() == [0, 9] and (top_alpha, other_alpha) == (0.005, 0.0025)
    top, runner_up, top_alpha, other_alpha = runner_up_split(np.array([[5], [7]]), np.array([0, 0]), 0.01)
    assert top.tolist() == [5, 7] and runner_up.tolist() == [0, 0] and (top_alpha, other_alpha) == (0.005, 0.005)
    assert runner_up_split(np.array([[4, 6]]), np.array([0]), 0.01)[1:] == (np.array([6]), 0.005, 0.005)
