"""The confidence sequence: anytime coverage under optional stopping, its decisions, its bounds, its edges."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from renyicert.confidence_sequence import (
    ABOVE,
    BELOW,
    PRIOR,
    UNDECIDED,
    log_wealth,
    sequence_bounds,
    threshold_decisions,
)


def _misses(p: float, alpha: float, streams: int, steps: int, seed: int) -> tuple[float, float]:
    """Over ``streams`` Bernoulli(p) streams checked after *every* sample up to ``steps``: the share whose sequence ever
    excludes ``p`` (optional stopping at the worst moment), and the same for Clopper-Pearson re-tested at every sample."""
    rng = np.random.default_rng(seed)
    successes = np.cumsum(rng.random((streams, steps)) < p, axis=1)
    # Every (s, t) a stream can pass through, evaluated once: out[t - 1, s] says whether p is outside at s of t.
    t_grid, s_grid = np.meshgrid(np.arange(1, steps + 1), np.arange(steps + 1), indexing="ij")
    possible = s_grid <= t_grid
    s_flat, t_flat = s_grid[possible], t_grid[possible]
    out = np.zeros(t_grid.shape, dtype=bool)
    out[possible] = log_wealth(s_flat, t_flat, p) - 1e-9 >= np.log(1 / alpha)
    # Two-sided Clopper-Pearson at level alpha, recomputed as samples come in: valid at a fixed n only.
    naive = np.zeros(t_grid.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        lower = np.where(s_flat > 0, beta.ppf(alpha / 2, s_flat, t_flat - s_flat + 1), 0.0)
        upper = np.where(s_flat < t_flat, beta.ppf(1 - alpha / 2, s_flat + 1, t_flat - s_flat), 1.0)
    naive[possible] = (lower > p) | (upper < p)
    steps_index = np.arange(steps)[None, :]
    return float(out[steps_index, successes].any(axis=1).mean()), float(
        naive[steps_index, successes].any(axis=1).mean()
    )


@pytest.mark.parametrize(("alpha", "streams", "steps"), [(0.05, 4000, 1000), (0.001, 20000, 1000)])
@pytest.mark.parametrize("p", [0.5, 0.9, 0.99])
def test_anytime_coverage_under_optional_stopping_at_every_step(
    alpha: float, streams: int, steps: int, p: float
) -> None:
    ours, naive = _misses(p, alpha, streams, steps, seed=int(p * 1000) + streams)
    assert ours <= alpha, f"the sequence missed p = {p} on {ours:.4f} of the streams, above alpha = {alpha}"
    if (
        alpha == 0.05 and p == 0.5
    ):  # the test can fail: a fixed-n interval re-tested at every step misses far more often
        assert naive > 3 * alpha


def test_decisions_match_the_bounds_and_the_bounds_contain_the_estimate() -> None:
    rng = np.random.default_rng(1)
    trials = rng.integers(1, 200_000, 300)
    successes = np.minimum(trials, rng.binomial(trials, rng.choice([0.5, 0.9, 0.999, 0.99999, 1.0], 300)))
    lower, upper = sequence_bounds(successes, trials, 0.001)
    assert np.all(lower <= successes / trials) and np.all(successes / trials <= upper)
    for c in (0.5, 0.9, 0.999, 0.9999):
        decision = threshold_decisions(successes, trials, c, 0.001)
        # ABOVE exactly where c lies below the lower bound (to the bisection's precision), BELOW where above the upper.
        assert np.all((decision == ABOVE) == (lower > c)[...] | ((decision == ABOVE) & (np.abs(lower - c) < 1e-12)))
        assert np.all((decision == BELOW) <= (upper < c + 1e-12))
        assert np.all((decision == UNDECIDED) <= ((lower <= c + 1e-12) & (upper >= c - 1e-12)))


def test_threshold_decisions_example_and_every_threshold_from_one_sequence() -> None:
    assert threshold_decisions(990, 1000, [0.5, 0.98, 0.99, 0.999], 0.001).tolist() == [
        ABOVE,
        UNDECIDED,
        UNDECIDED,
        BELOW,
    ]
    # Convexity: once c is certified, every smaller threshold is too.
    decisions = threshold_decisions(9990, 10_000, np.linspace(0.5, 0.9999, 400), 0.001)
    above = decisions == ABOVE
    assert above.any() and np.all(above[: above.argmin()]) and not above[above.argmin() :].any()


def test_one_side_is_the_same_bound_as_both() -> None:
    lower, upper = sequence_bounds([3, 900, 1000], [10, 1000, 1000], 0.01)
    only_lower, one = sequence_bounds([3, 900, 1000], [10, 1000, 1000], 0.01, "lower")
    zero, only_upper = sequence_bounds([3, 900, 1000], [10, 1000, 1000], 0.01, "upper")
    assert np.array_equal(lower, only_lower) and np.array_equal(upper, only_upper)
    assert np.all(one == 1.0) and np.all(zero == 0.0)


def test_edges_are_exact() -> None:
    assert log_wealth(0, 0, 0.3) == pytest.approx(0.0, abs=1e-12)  # no data: wealth 1
    assert log_wealth(3, 5, 0.0) == np.inf and log_wealth(2, 5, 1.0) == np.inf  # data that rule m out
    lower, upper = sequence_bounds(0, 0, 0.05)
    assert (lower, upper) == (0.0, 1.0)
    lower, upper = sequence_bounds(50, 50, 0.05)
    assert upper == 1.0 and 0.8 < lower < 1.0
    lower, upper = sequence_bounds(0, 50, 0.05)
    assert lower == 0.0 and 0.0 < upper < 0.2


def test_prior_is_a_probability_and_the_mixture_a_likelihood_ratio() -> None:
    assert sum(w for w, _, _ in PRIOR) == pytest.approx(1.0)
    # E_m[M_1(m)] = 1: the expected wealth after one trial is the starting wealth, at any m.
    for m in (0.1, 0.5, 0.999):
        assert m * np.exp(log_wealth(1, 1, m)) + (1 - m) * np.exp(log_wealth(0, 1, m)) == pytest.approx(1.0, rel=1e-9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: threshold_decisions(5, 4, 0.5, 0.05), "0 <= successes <= trials"),
        (lambda: threshold_decisions(1.5, 4, 0.5, 0.05), "integers"),
        (lambda: threshold_decisions(1, 4, 0.5, 1.5), r"alpha must be in \(0, 1\), got 1.5"),
        (lambda: sequence_bounds(1, 4, 0.0), r"alpha must be in \(0, 1\), got 0.0"),
        (lambda: log_wealth(1, 4, 1.2), r"m must be in \[0, 1\], got 1.2"),
        (lambda: log_wealth(1, 4, float("nan")), r"m must be in \[0, 1\]"),
        (lambda: sequence_bounds(1, 4, 0.05, "left"), "side must be 'both', 'lower' or 'upper', got 'left'"),
    ],
)
def test_bad_input_is_refused_by_name(call, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


def test_the_rounding_margin_only_ever_withholds_a_decision() -> None:
    """At a threshold where log M exceeds log(1/alpha) by less than the margin, nothing is decided, and the bound stays
    on the undecided side of it: the margin absorbs rounding in the conservative direction only."""
    alpha, s, t = 0.001, 970, 1000
    level = np.log(1 / alpha)
    low, high = 0.5, 0.97  # log M falls from above level + margin to below level across [low, high]
    for _ in range(200):
        middle = 0.5 * (low + high)
        if log_wealth(s, t, middle) > level + 0.5e-9:
            low = middle
        else:
            high = middle
    c = low
    assert level < log_wealth(s, t, c) < level + 1e-9  # inside the margin
    assert threshold_decisions(s, t, c, alpha) == UNDECIDED
    lower, _ = sequence_bounds(s, t, alpha)
    assert lower <= c


def test_decisions_are_int8_and_errors_name_the_bad_value_among_many() -> None:
    assert threshold_decisions([1, 2], [4, 4], 0.5, 0.05).dtype == np.int8
    with pytest.raises(ValueError, match=r"got 5.0 of 4.0"):
        threshold_decisions([1, 5], 4, 0.5, 0.05)
    with pytest.raises(ValueError, match=r"got 3.0 of 2.0"):
        sequence_bounds(3, [2, 9], 0.05)
    with pytest.raises(ValueError, match=r"m must be in \[0, 1\], got 1.2"):
        log_wealth(1, 4, [0.0, 0.5, 1.0, 1.2])
    with pytest.raises(ValueError, match=r"m must be in \[0, 1\], got -0.1"):
        log_wealth(1, 4, [0.0, 1.0, -0.1])
    with pytest.raises(ValueError, match=r"alpha must be in \(0, 1\), got 1.0"):
        threshold_decisions(1, 4, 0.5, 1.0)


def test_one_sided_wealth_is_a_supermartingale_under_every_null_probability() -> None:
    """E[W_{t+1} | W_t] <= W_t for every p <= c (equality at p = c): from (s, t), one more trial at p."""
    from renyicert.confidence_sequence import one_sided_log_wealth

    for c in (0.5, 0.9, 0.999):
        for s, t in ((0, 0), (3, 5), (40, 40), (900, 1000)):
            now = np.exp(one_sided_log_wealth(s, t, c))
            up, down = np.exp(one_sided_log_wealth(s + 1, t + 1, c)), np.exp(one_sided_log_wealth(s, t + 1, c))
            assert c * up + (1 - c) * down == pytest.approx(now, rel=1e-9)  # a martingale at p = c
            for p in (0.0, c / 2, c * 0.999):
                assert p * up + (1 - p) * down <= now * (1 + 1e-12)
            # and the mirror, for p >= c
            now, up, down = (
                np.exp(one_sided_log_wealth(a, b, c, "below")) for a, b in ((s, t), (s + 1, t + 1), (s, t + 1))
            )
            assert c * up + (1 - c) * down == pytest.approx(now, rel=1e-9)
            assert 1.0 * up <= now * (1 + 1e-12)


@pytest.mark.parametrize("p,c", [(0.9, 0.9), (0.85, 0.9), (0.99, 0.99)])
def test_one_sided_test_rejects_a_true_null_at_most_alpha_under_optional_stopping(p: float, c: float) -> None:
    from renyicert.confidence_sequence import one_sided_decisions

    alpha, streams, steps = 0.05, 2000, 400
    rng = np.random.default_rng(7)
    successes = np.cumsum(rng.random((streams, steps)) < p, axis=1)
    above, _ = one_sided_decisions(successes, np.arange(1, steps + 1)[None, :], c, alpha)
    assert above.any(axis=1).mean() <= alpha


def test_one_sided_level_and_its_margin_only_ever_withhold_a_decision() -> None:
    """Just below log(1/alpha) nothing is decided; just above, it is (kills a level off by 1e-3, or at 2 alpha)."""
    from renyicert.confidence_sequence import one_sided_decisions, one_sided_log_wealth

    alpha, s, t = 0.001, 970, 1000
    level = np.log(1 / alpha)

    def threshold_at(target: float) -> float:
        low, high = 0.5, 0.97  # log W falls from far above level to below it across [low, high]
        for _ in range(200):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if one_sided_log_wealth(s, t, middle) > target else (low, middle)
        return low

    inside = threshold_at(level - 2e-4)
    assert level - 3e-4 < one_sided_log_wealth(s, t, inside) < level
    assert not one_sided_decisions(s, t, inside, alpha)[0]
    outside = threshold_at(level + 2e-4)
    assert level < one_sided_log_wealth(s, t, outside) < level + 3e-4
    assert one_sided_decisions(s, t, outside, alpha)[0]
    below_at = 0.99  # 970 of 1000 against p >= 0.99: the mirror test refuses
    assert one_sided_decisions(s, t, below_at, alpha)[1] and not one_sided_decisions(s, t, below_at, alpha)[0]


def test_one_sided_edges_and_bad_input() -> None:
    from renyicert.confidence_sequence import one_sided_log_wealth

    assert float(one_sided_log_wealth(0, 0, 0.7)) == 0.0  # no trials: wealth 1
    assert np.isfinite(one_sided_log_wealth(10**6, 10**6, 0.9999)) and np.isfinite(
        one_sided_log_wealth(0, 10**6, 0.0001, "below")
    )
    assert one_sided_log_wealth(0, 10**5, 0.9) == -np.inf  # no evidence at all for p > 0.9
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\), got 1.0"):
        one_sided_log_wealth(1, 2, 1.0)
    with pytest.raises(ValueError, match="side must be 'above' or 'below', got 'up'"):
        one_sided_log_wealth(1, 2, 0.5, "up")
