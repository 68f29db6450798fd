"""Sequential certification at radii: sound under optional stopping, the same in any batch, full batches, strict input."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import pytest
import torch
from scipy.stats import beta, norm

import renyicert
import renyicert.sequential as sequential
import renyicert.sequential_rule as sequential_rule
from renyicert import Smoothed
from renyicert.confidence_sequence import ABOVE, BELOW, UNDECIDED, sequence_bounds
from renyicert.sequential import FIRST_BLOCK, decision_points
from renyicert.radii import probability_threshold
from renyicert.workflow.models import DigitsMLP


def threshold_model() -> torch.nn.Module:
    """Logits (x, -x): class 0 exactly when the input is positive, so under Gaussian noise p0 = Phi(x / sigma) exactly."""
    model = torch.nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    return model


def _wrong_certifications(alpha: float, p2_mode: str = "complement", decision_test: str = "ordered") -> tuple[int, int]:
    """2,000 inputs whose true top-class probability lies just below the threshold of radius 0.5 sigma (tight bound):
    every "certified" answer is wrong. Returns (wrong answers, inputs)."""
    sigma, radius, inputs = 1.0, 0.5, 2000
    threshold = float(probability_threshold(renyicert.get_mechanism("gaussian", scale=sigma), radius, "tight"))
    p_true = np.linspace(threshold - 0.04, threshold - 1e-4, inputs)
    xs = torch.tensor(sigma * norm.ppf(p_true), dtype=torch.float32)[:, None]
    assert np.all(norm.cdf(xs.numpy()[:, 0] / sigma) < threshold)  # float32 rounding keeps every input below
    smoothed = Smoothed(
        threshold_model(), "gaussian", num_classes=2, scale=sigma, input_shape=(1,), batch_size=8192, progress=False
    )
    answers = smoothed.certify_at(
        xs, [radius], alpha, budget=2000, n0=20, bound="tight", p2_mode=p2_mode, seed=0, decision_test=decision_test
    )
    return sum(a.certified[0] for a in answers), inputs


@pytest.mark.parametrize(
    "p2_mode,decision_test", [("complement", "ordered"), ("complement", "two-sided"), ("runner-up", "ordered")]
)
def test_wrong_certifications_are_at_most_alpha_on_a_model_with_known_probabilities(
    p2_mode: str, decision_test: str
) -> None:
    wrong, inputs = _wrong_certifications(alpha=0.05, p2_mode=p2_mode, decision_test=decision_test)
    assert wrong / inputs <= 0.05, f"{wrong} of {inputs} inputs certified above their true probability"


def test_the_soundness_test_fails_for_a_fixed_n_interval_retested_at_every_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Clopper-Pearson at level alpha, re-tested at each decision point (valid only at one fixed n): the same test catches it."""

    def retested_clopper_pearson(successes, trials, thresholds, alpha):  # type: ignore[no-untyped-def]
        c = np.asarray(thresholds, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            lower = np.where(successes > 0, beta.ppf(alpha, successes, trials - successes + 1), 0.0)
            upper = np.where(successes < trials, beta.ppf(1 - alpha, successes + 1, trials - successes), 1.0)
        return np.where(lower > c, ABOVE, np.where(upper < c, BELOW, UNDECIDED)).astype(np.int8)

    monkeypatch.setattr(sequential_rule, "threshold_decisions", retested_clopper_pearson)
    wrong, inputs = _wrong_certifications(alpha=0.05, decision_test="two-sided")
    assert wrong / inputs > 0.05

    def retested_one_sided(successes, trials, thresholds, alpha):  # type: ignore[no-untyped-def]
        decided = retested_clopper_pearson(successes, trials, thresholds, alpha)
        return decided == ABOVE, decided == BELOW

    monkeypatch.setattr(sequential_rule, "one_sided_decisions", retested_one_sided)
    wrong, inputs = _wrong_certifications(alpha=0.05, decision_test="ordered")
    assert wrong / inputs > 0.05


def test_the_runner_up_form_certifies_a_top_class_below_one_half() -> None:
    """Three classes in 120-degree sectors of the plane: near the origin p1 = 0.45 and the others share the rest,
    so p2 = 1 - p1 never separates, and a bound on the runner-up does."""
    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-0.5, 0.75**0.5], [-0.5, -(0.75**0.5)]]))
    smoothed = Smoothed(model, "gaussian", num_classes=3, scale=1.0, input_shape=(2,), progress=False)
    x = torch.tensor([0.35, 0.0])
    complement = smoothed.certify_at(x, [0.0], budget=20_000, p2_mode="complement", seed=0)
    runner_up = smoothed.certify_at(x, [0.0], budget=20_000, p2_mode="runner-up", seed=0)
    assert (
        complement.label == runner_up.label == 0 and complement.certified == (False,) and runner_up.certified == (True,)
    )
    assert (
        runner_up.p1_lower < 0.5
        and runner_up.p2_upper < runner_up.p1_lower
        and sum(runner_up.counts) == runner_up.samples
    )


def mlp_smoothed(batch_size: int = 1000) -> Smoothed:
    torch.manual_seed(0)
    return Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, input_shape=(64,), batch_size=batch_size, progress=False)


def test_answers_do_not_depend_on_batch_size_inputs_at_once_or_the_other_inputs() -> None:
    torch.manual_seed(1)
    x = torch.rand(6, 64)
    radii = [0.0, 0.1, 0.3]
    reference = mlp_smoothed(1000).certify_at(x, radii, budget=1500, seed=5)
    assert reference != mlp_smoothed(1000).certify_at(x, radii, budget=1500, seed=6)  # the seed matters
    assert len({a.samples for a in reference}) > 2  # inputs come and go at different times
    for batch_size, at_once in [(13, 1), (64, 2), (4096, 6)]:
        assert mlp_smoothed(batch_size).certify_at(x, radii, budget=1500, seed=5, inputs_at_once=at_once) == reference
    for i in range(6):
        assert mlp_smoothed(300).certify_at(x[i], radii, budget=1500, seed=5 + i) == reference[i]


def test_every_model_batch_is_full_while_inputs_remain(monkeypatch: pytest.MonkeyPatch) -> None:
    smoothed = mlp_smoothed(256)
    engine = smoothed._engine
    calls: list[int] = []
    count_rows = engine.count_rows

    def recording(x, keys, row_input, row_sample, *, batch_size, bar=None):  # type: ignore[no-untyped-def]
        calls.append(int(row_input.shape[0]))
        assert batch_size == 256
        return count_rows(x, keys, row_input, row_sample, batch_size=batch_size, bar=bar)

    monkeypatch.setattr(engine, "count_rows", recording)
    torch.manual_seed(2)
    answers = smoothed.certify_at(torch.rand(40, 64), [0.0, 0.05], budget=2000, seed=0, inputs_at_once=8)
    budget_left = [a for a in answers if a.samples < 2000]
    assert calls and budget_left
    # Every call but those where the undecided inputs' streams had no more room is whole batches.
    full = [rows % 256 == 0 for rows in calls]
    assert sum(full) >= len(calls) - 2, calls


def test_a_certain_input_stops_at_the_first_point_and_radii_follow_the_thresholds() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=1.0, input_shape=(1,), progress=False)
    first = smoothed.certify_at(torch.tensor([8.0]), [0.0], budget=1000, n0=10, seed=0, p2_mode="complement")
    assert (
        first.label == 0
        and first.certified == (True,)
        and first.samples == FIRST_BLOCK
        and first.forward_passes == 10 + FIRST_BLOCK
    )
    # Radius 1 needs p1 > 0.893 under the Rényi bound: 80 successes in a row show it to the one-sided test (and to the
    # two-sided sequence; 16 show neither), and radius 0 comes with it.
    answer = smoothed.certify_at(torch.tensor([8.0]), [0.0, 1.0], budget=1000, n0=10, seed=0, p2_mode="complement")
    assert answer.certified == (True, True) and answer.samples == 80 and answer.successes == 80
    # The reported bound is the two-sided sequence's (its own event at alpha), not intersected with the one-sided tests' thresholds.
    assert answer.radius == 1.0 and answer.p1_lower == float(
        sequence_bounds(np.array([80]), np.array([80]), 0.001, "lower")[0][0]
    )
    two_sided = smoothed.certify_at(
        torch.tensor([8.0]), [0.0, 1.0], budget=1000, n0=10, seed=0, p2_mode="complement", decision_test="two-sided"
    )
    assert (
        two_sided.certified == (True, True)
        and two_sided.samples == 80
        and two_sided.p1_lower >= two_sided.thresholds[1]
    )
    # p = 1/2: both radii refused by the mirror test (radius 1, p1 > 0.893, before its predicted chance of crossing
    # falls below FUTILITY = 1e-4), long before the budget.
    refused = smoothed.certify_at(torch.tensor([0.0]), [0.5, 1.0], budget=1000, n0=10, seed=0, p2_mode="complement")
    assert refused.certified == (False, False) and refused.undecided == (False, False) and refused.samples < 1000
    assert refused.radius == -np.inf


def test_a_radius_the_budget_cannot_reach_is_undecided_at_once_and_costs_nothing_more() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=1.0, input_shape=(1,), progress=False)
    # p = 1 in practice; radius 3 needs p1 > Phi(3) = 0.99865, which 1,000 successes in a row cannot show.
    answer = smoothed.certify_at(
        torch.tensor([9.0]), [0.0, 3.0], budget=1000, n0=10, bound="tight", seed=0, p2_mode="complement"
    )
    assert answer.certified == (True, False) and answer.undecided == (False, True) and answer.samples == FIRST_BLOCK
    # With enough budget the same radius is certified.
    assert smoothed.certify_at(
        torch.tensor([9.0]), [0.0, 3.0], budget=20_000, n0=10, bound="tight", seed=0, p2_mode="complement"
    ).certified == (True, True)
    # A radius no probability below 1 certifies is refused without a copy.
    far = smoothed.certify_at(torch.tensor([9.0]), [1e6], budget=1000, n0=10, seed=0, p2_mode="complement")
    assert far.certified == (False,) and far.samples == 0 and far.label == -1


def test_the_extended_budget_goes_on_only_where_the_estimate_would_be_certified_by_then() -> None:
    sigma = 1.0
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=sigma, input_shape=(1,), progress=False)
    threshold = float(probability_threshold(smoothed.mechanism, 0.5, "tight"))
    above, below = sigma * norm.ppf(threshold + 0.02), sigma * norm.ppf(threshold - 0.02)
    xs = torch.tensor([[above], [below]], dtype=torch.float32)
    plain = smoothed.certify_at(xs, [0.5], budget=2000, n0=10, bound="tight", seed=3, p2_mode="complement")
    extended = smoothed.certify_at(
        xs, [0.5], budget=2000, extended_budget=200_000, n0=10, bound="tight", seed=3, p2_mode="complement"
    )
    # Without the extension both are undecided at the budget (or sooner, once even a run of successes could not decide them).
    assert plain[0].samples <= 2000 and plain[0].undecided == (True,) and plain[1].certified == (False,)
    assert extended[1].samples <= 2000 and extended[1].certified == (False,)  # below: stops by the budget
    assert extended[0].samples > 2000 and extended[0].certified == (True,)  # above: goes on, and is certified
    # Just above the threshold, where even the extended budget would not tell: stops at the budget.
    close = torch.tensor([sigma * norm.ppf(threshold + 0.001)], dtype=torch.float32)
    answers = [
        smoothed.certify_at(
            close, [0.5], budget=2000, extended_budget=10_000, n0=10, bound="tight", seed=seed, p2_mode="complement"
        )
        for seed in range(5)
    ]
    assert all(a.samples <= 2000 and a.undecided == (True,) for a in answers)


def test_futility_stops_a_radius_the_test_will_not_certify_by_the_budget_and_keeps_one_it_will() -> None:
    sigma, radius, budget = 1.0, 0.5, 20_000
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=sigma, input_shape=(1,), progress=False)
    threshold = float(probability_threshold(smoothed.mechanism, radius, "tight"))
    crossing = int(sequential_rule.one_sided_crossing_counts(budget, [threshold], 0.001)[0])
    needed = crossing / budget  # the fraction of successes the test needs at the budget
    # Just below the threshold: the mirror test would take far past the budget; futility stops it early, undecided.
    below = torch.tensor([sigma * norm.ppf(threshold - 0.003)], dtype=torch.float32)
    answers = [
        smoothed.certify_at(below, [radius], budget=budget, n0=10, bound="tight", seed=seed, p2_mode="complement")
        for seed in range(3)
    ]
    assert all(a.certified == (False,) and a.undecided == (True,) and a.samples < budget / 4 for a in answers), [
        a.samples for a in answers
    ]
    # Comfortably above what the test needs at the budget (2.5 standard deviations): never given up, certified.
    above = torch.tensor([sigma * norm.ppf(needed + 0.008)], dtype=torch.float32)
    kept = [
        smoothed.certify_at(above, [radius], budget=budget, n0=10, bound="tight", seed=seed, p2_mode="complement")
        for seed in range(3)
    ]
    assert all(a.certified == (True,) for a in kept)
    # Without the futility rule: the input above is certified the same way; the one below runs on many times longer.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sequential_rule, "FUTILITY", 0.0)
        assert [
            smoothed.certify_at(above, [radius], budget=budget, n0=10, bound="tight", seed=seed, p2_mode="complement")
            for seed in range(3)
        ] == kept
        plain = smoothed.certify_at(below, [radius], budget=budget, n0=10, bound="tight", seed=0, p2_mode="complement")
    assert plain.samples > 4 * answers[0].samples


def test_the_predicted_crossing_chance_matches_the_beta_binomial_it_approximates() -> None:
    from scipy.stats import betabinom

    budget = 3000
    for successes, samples, crossing in [
        (450, 500, 2700),
        (470, 500, 2800),
        (90, 100, 2650),
        (990, 1000, 2960),
        (2600, 2900, 2700),
    ]:
        exact = betabinom.sf(crossing - successes - 1, budget - samples, successes + 0.5, samples - successes + 0.5)
        assert float(sequential_rule.crossing_chance(successes, samples, budget, crossing)) == pytest.approx(
            exact, abs=0.03
        )
    # At the budget the chance is 0 or 1: whether the count is there.
    assert sequential_rule.crossing_chance(np.array([10, 11]), 20, 20, 11).tolist() == [0.0, 1.0]


@pytest.mark.parametrize("trials", [1, 16, 1000, 100_000])
def test_the_crossing_count_is_the_fewest_successes_the_one_sided_test_certifies(trials: int) -> None:
    from renyicert.confidence_sequence import one_sided_crossing_counts, one_sided_decisions

    thresholds = np.concatenate([[0.3, 0.5, 0.9, 0.99, 0.9999, 1 - 1e-9], np.linspace(0.05, 0.95, 37)])
    counts = one_sided_crossing_counts(trials, thresholds, 0.001)
    reachable = counts <= trials
    assert one_sided_decisions(counts[reachable], trials, thresholds[reachable], 0.001)[0].all()
    assert not one_sided_decisions(counts[reachable] - 1, trials, thresholds[reachable], 0.001)[0].any()
    assert (
        not one_sided_decisions(trials, trials, thresholds[~reachable], 0.001)[0].any()
        and (counts[~reachable] == trials + 1).all()
    )
    with pytest.raises(ValueError, match="trials must be a positive integer, got 0"):
        one_sided_crossing_counts(0, thresholds, 0.001)


def test_decision_points_grow_by_a_twentieth_and_end_at_the_budgets() -> None:
    points = decision_points(100_000, 150_000)
    assert points[0] == FIRST_BLOCK and 100_000 in points and points[-1] == 150_000
    steps = np.diff(points)
    assert np.all(steps >= 1) and np.all(steps[:-1] <= np.maximum(FIRST_BLOCK, points[:-2] // 20))
    assert decision_points(5).tolist() == [5]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (
            lambda s: s.certify_at(torch.ones(1), [0.5, 0.25]),
            ValueError,
            r"radii must be strictly increasing, got \[0.5, 0.25\]",
        ),
        (lambda s: s.certify_at(torch.ones(1), [-0.1]), ValueError, r"radii must be finite numbers >= 0, got \[-0.1\]"),
        (lambda s: s.certify_at(torch.ones(1), [float("nan")]), ValueError, "radii must be finite numbers >= 0"),
        (lambda s: s.certify_at(torch.ones(1), []), ValueError, "radii must be one radius or a non-empty list"),
        (lambda s: s.certify_at(torch.ones(1), [0.1], budget=0), ValueError, "budget must be a positive integer"),
        (
            lambda s: s.certify_at(torch.ones(1), [0.1], budget=100, extended_budget=50),
            ValueError,
            r"extended_budget must be an integer >= budget \(100\), or None; got 50",
        ),
        (lambda s: s.certify_at(torch.ones(1), [0.1], alpha=1.0), ValueError, r"alpha must be in \(0, 1\), got 1.0"),
        (
            lambda s: s.certify_at(torch.ones(1), [0.1], bound="pixeldp"),
            ValueError,
            r"bound must be one of \('renyi', 'tight'\), got 'pixeldp'",
        ),
        (
            lambda s: s.certify_at(torch.ones(1), [0.1], inputs_at_once=0),
            ValueError,
            "inputs_at_once must be a positive integer",
        ),
        (lambda s: s.certify_at(torch.ones(1), [0.1], p2_mode="both"), ValueError, "p2_mode must be one of"),
        (lambda s: s.certify_at(torch.ones(3), [0.1]), ValueError, r"x has shape \(3,\)"),
    ],
)
def test_bad_input_gets_a_clear_error(call, error, match) -> None:  # type: ignore[no-untyped-def]
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=1.0, input_shape=(1,), progress=False)
    with pytest.raises(error, match=match):
        call(smoothed)


def test_the_runner_up_form_reports_the_bonferroni_split_bounds_exactly() -> None:
    """On the 3-sector model the reported bounds are the sequences' own: p1's lower one at alpha / 2, the runner-up's upper
    one at alpha / (2 (K - 1)) capped at 1 - p1_lower (kills the mutants that spend alpha, or alpha / 2, on either)."""
    from renyicert.confidence_sequence import sequence_bounds

    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-0.5, 0.75**0.5], [-0.5, -(0.75**0.5)]]))
    smoothed = Smoothed(model, "gaussian", num_classes=3, scale=1.0, input_shape=(2,), progress=False)
    alpha = 0.01
    answer = smoothed.certify_at(
        torch.tensor([0.35, 0.0]), [0.0, 0.2], alpha, budget=20_000, p2_mode="runner-up", seed=0
    )
    counts = np.array(answer.counts)
    top = counts[answer.label]
    runner_up = np.delete(counts, answer.label).max()
    p1_lower = float(sequence_bounds(np.array([top]), np.array([answer.samples]), alpha / 2, "lower")[0][0])
    p2_upper = float(sequence_bounds(np.array([runner_up]), np.array([answer.samples]), alpha / 4, "upper")[1][0])
    assert answer.p1_lower == pytest.approx(p1_lower, rel=1e-12)
    assert answer.p2_upper == pytest.approx(min(p2_upper, 1.0 - p1_lower), rel=1e-12)
    wrong_split = float(sequence_bounds(np.array([runner_up]), np.array([answer.samples]), alpha / 2, "upper")[1][0])
    assert wrong_split != pytest.approx(answer.p2_upper, rel=1e-9)  # the test can tell alpha / 4 from alpha / 2


def _harness_answers(decision_test: str = "ordered") -> list[renyicert.SequentialCertificate]:
    """1,000 inputs just below the threshold of the smallest of four radii (tight bound): every "certified" answer is wrong."""
    sigma, radii, inputs = 1.0, [0.5, 0.6, 0.8, 1.2], 1000
    thresholds = radius_thresholds_for(radii, sigma)
    p_true = np.linspace(thresholds[0] - 0.03, thresholds[0] - 1e-4, inputs)
    xs = torch.tensor(sigma * norm.ppf(p_true), dtype=torch.float32)[:, None]
    smoothed = Smoothed(
        threshold_model(), "gaussian", num_classes=2, scale=sigma, input_shape=(1,), batch_size=8192, progress=False
    )
    return smoothed.certify_at(
        xs, radii, 0.05, budget=2000, n0=20, bound="tight", p2_mode="complement", seed=3, decision_test=decision_test
    )


def radius_thresholds_for(radii: list[float], sigma: float) -> np.ndarray:
    return np.array(
        [float(probability_threshold(renyicert.get_mechanism("gaussian", scale=sigma), r, "tight")) for r in radii]
    )


def test_ordered_tests_at_full_alpha_stay_sound_with_several_radii_at_once() -> None:
    answers = _harness_answers()
    wrong = sum(any(a.certified) for a in answers)
    assert wrong / len(answers) <= 0.05, wrong
    assert all(list(a.certified) == sorted(a.certified, reverse=True) for a in answers)  # certified radii are a prefix


def test_dropping_the_order_changes_nothing_the_harness_could_see(monkeypatch: pytest.MonkeyPatch) -> None:
    """Why no harness catches a dropped order: where the one-sided e-process for a larger threshold has crossed 1/alpha,
    the one for every smaller threshold has too (below), so testing each radius on its own at alpha gives the same answers."""
    ordered = _harness_answers()
    monkeypatch.setattr(sequential, "in_order", lambda crossed: crossed)
    monkeypatch.setattr(sequential_rule, "in_order", lambda crossed: crossed)
    unordered = _harness_answers()
    assert [a.certified for a in ordered] == [a.certified for a in unordered]


@settings(max_examples=300, deadline=None)
@given(
    trials=st.integers(1, 200_000), fraction=st.floats(0.0, 1.0), low=st.floats(0.5, 0.999999), gap=st.floats(1e-9, 0.5)
)
def test_one_sided_wealth_that_reaches_one_at_a_threshold_is_larger_at_every_smaller_one(
    trials: int, fraction: float, low: float, gap: float
) -> None:
    from renyicert.confidence_sequence import one_sided_log_wealth

    high = min(low + gap, 1 - 1e-12)
    successes = round(fraction * trials)
    at_low, at_high = one_sided_log_wealth(successes, trials, [low, high])
    if at_high >= 0.0:
        assert at_low >= at_high - 1e-9


class _ScriptedRule:
    """A stand-in for DecisionRule whose one-sided crossings are scripted, to test the ordering of _decide by itself."""

    ordered = True

    def __init__(self, script: list[list[int]]) -> None:
        self.script = script  # per decision: the per-radius answer of each radius's own test

    def decisions(self, counts, label, samples, budget):  # type: ignore[no-untyped-def]
        decided = np.array([self.script.pop(0)], dtype=np.int8)
        return decided, np.ones(decided.shape, dtype=bool)


def _state(radii: int) -> "sequential._InputState":
    points = np.array([10, 26, 42, 58], dtype=np.int64)
    state = sequential._InputState(
        tag=0, x=None, key=0, points=points, budget_end=58, classes=2, thresholds=np.linspace(0.6, 0.9, radii)
    )
    state.label, state.drawn, state.counts = 0, 26, np.array([16, 0])
    return state


def test_a_radius_is_certified_only_after_every_smaller_one_and_a_crossing_waits_for_them() -> None:
    state = _state(3)
    rule = _ScriptedRule([[UNDECIDED, ABOVE, ABOVE], [ABOVE, UNDECIDED, UNDECIDED]])
    sequential._decide([state], rule, 10)  # radii 2 and 3 cross first: nothing is certified out of order
    assert state.decisions.tolist() == [UNDECIDED, UNDECIDED, UNDECIDED] and state.crossed.tolist() == [
        False,
        True,
        True,
    ]
    state.drawn = 42
    sequential._decide([state], rule, 10)  # radius 1 crosses: the earlier crossings of 2 and 3 now count
    assert state.decisions.tolist() == [ABOVE, ABOVE, ABOVE] and state.done


def test_a_refused_radius_refuses_every_larger_one() -> None:
    state = _state(3)
    sequential._decide([state], _ScriptedRule([[UNDECIDED, BELOW, UNDECIDED]]), 10)
    assert state.decisions.tolist() == [UNDECIDED, BELOW, BELOW] and not state.done


def test_fixed_sequence_prefix() -> None:
    crossed = np.array([[True, False, True], [False, True, True], [True, True, True]])
    assert sequential_rule.in_order(crossed).tolist() == [
        [True, False, False],
        [False, False, False],
        [True, True, True],
    ]


def test_the_ordered_one_sided_rule_is_the_default_and_spends_fewer_copies_than_the_two_sided_one() -> None:
    """Inputs with p = 0.97 at a radius whose threshold is 0.9 (tight bound): the one-sided tests certify sooner, and
    the bound they report is the two-sided sequence's, which may still be below the threshold they certified."""
    sigma = 1.0
    radius = float(norm.ppf(0.9)) * sigma
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=sigma, input_shape=(1,), progress=False)
    xs = torch.full((40, 1), float(norm.ppf(0.97)) * sigma)
    default = smoothed.certify_at(xs, [radius], budget=5000, bound="tight", p2_mode="complement", seed=0)
    ordered = smoothed.certify_at(
        xs, [radius], budget=5000, bound="tight", p2_mode="complement", seed=0, decision_test="ordered"
    )
    two_sided = smoothed.certify_at(
        xs, [radius], budget=5000, bound="tight", p2_mode="complement", seed=0, decision_test="two-sided"
    )
    assert default == ordered
    assert sum(a.samples for a in ordered) < 0.95 * sum(a.samples for a in two_sided)
    assert all(a.certified[0] for a in ordered)
    assert any(a.p1_lower < a.thresholds[0] for a in ordered)  # not intersected with the certified threshold
    assert all(a.p1_lower >= a.thresholds[0] for a in two_sided if a.certified[0])  # the two-sided rule's: intersected


def test_an_unknown_decision_test_is_refused_by_name() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=1.0, input_shape=(1,), progress=False)
    with pytest.raises(ValueError, match=r"test must be one of \('ordered', 'two-sided'\), got 'one-sided'"):
        smoothed.certify_at(torch.tensor([1.0]), [0.1], decision_test="one-sided")


def test_certify_at_stream_answers_each_input_as_certify_at_does_alone_and_refuses_bad_seeds() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=1.0, input_shape=(1,), progress=False)
    x = torch.tensor([[8.0], [0.5], [-3.0]])
    answers = dict(smoothed.certify_at_stream(x, [0.0, 0.5], seeds=[7, 3, 2**63 - 1], budget=2000, n0=10))
    for i, seed in enumerate([7, 3, 2**63 - 1]):
        assert answers[i] == smoothed.certify_at(x[i], [0.0, 0.5], seed=seed, budget=2000, n0=10)
    with pytest.raises(ValueError, match=r"seeds must hold one seed per input of x \(3\), got 2"):
        smoothed.certify_at_stream(x, [0.0], seeds=[1, 2])
    for bad, shown in ((-1, "-1"), (2**63, str(2**63)), (True, "True"), (1.5, "1.5")):
        with pytest.raises(ValueError, match=rf"seeds\[1\] must be an integer in \[0, 2\^63\), got {shown}"):
            smoothed.certify_at_stream(x, [0.0], seeds=[0, bad, 2])
    with pytest.raises(ValueError, match=r"budget must be a positive integer, got 0"):
        smoothed.certify_at_stream(x, [0.0], seeds=[0, 1, 2], budget=0)  # checked before it returns, not on iteration
