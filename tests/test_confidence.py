"""Clopper-Pearson bounds and the top-two pair."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from renyicert.confidence import clopper_pearson_lower, clopper_pearson_upper, top_two_bounds


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (990, 1000)])
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
