from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import renyicert
from renyicert import certified_radius, get_mechanism, pixeldp_radius, radius_at_order, tight_radius

from .reference import radius as reference_radius

GAUSSIAN = get_mechanism("gaussian", scale=1.0)
LAPLACE = get_mechanism("laplace", scale=1.0)
MECHANISMS = [GAUSSIAN, LAPLACE]

# p1 in [0.5, 1 - 1e-12], p2 <= min(p1, 1 - p1): the accuracy domain of the issue.
p1_values = st.one_of(
    st.floats(0.5, 1 - 1e-12),
    st.integers(1, 12).map(lambda k: 1 - 10.0**-k),
    st.floats(1e-15, 1e-3).map(lambda e: 0.5 + e),
)


@st.composite
def pairs(draw: st.DrawFn) -> tuple[float, float]:
    p1 = draw(p1_values)
    frac = draw(st.one_of(st.floats(0, 1), st.just(1.0), st.floats(1e-300, 1e-3)))
    p2 = min(frac * min(p1, 1 - p1), 1 - p1)
    return p1, p2


REFERENCE_PAIRS = [
    (0.5 + 1e-7, 0.5 - 1e-7),
    (0.30001, 0.3),
    (0.6, 0.4),
    (0.6, 0.1),
    (0.8, 0.2),
    (0.9, 0.05),
    (0.99, 0.01),
    (0.999, 1e-300),
    (1 - 1e-12, 1 - (1 - 1e-12)),
    (1 - 1e-12, 1e-20),
    (0.75, 0.0),
    (0.5 + 1e-4, 1e-6),
]


@pytest.mark.parametrize("mechanism", MECHANISMS, ids=lambda m: m.name)
@pytest.mark.parametrize("p1,p2", REFERENCE_PAIRS)
def test_radius_matches_50_digit_reference(mechanism: renyicert.Mechanism, p1: float, p2: float) -> None:
    radius, order = certified_radius(mechanism, p1, p2)
    expected = reference_radius(mechanism.name, p1, p2)
    assert float(radius) == pytest.approx(expected, rel=1e-9, abs=0)
    assert float(order) >= 1.0


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=pairs(), scale=st.floats(0.01, 10.0))
def test_random_radius_matches_50_digit_reference(pair: tuple[float, float], scale: float) -> None:
    p1, p2 = pair
    assume(p1 > p2)
    for mechanism in (get_mechanism("gaussian", scale=scale), get_mechanism("laplace", scale=scale)):
        expected = reference_radius(mechanism.name, p1, p2, scale)
        assert float(certified_radius(mechanism, p1, p2).radius) == pytest.approx(expected, rel=1e-9, abs=0)


@settings(max_examples=60, deadline=None)
@given(pair=pairs(), bump=st.floats(0, 1))
def test_radius_non_decreasing_in_p1(pair: tuple[float, float], bump: float) -> None:
    p1, p2 = pair
    larger = p1 + bump * (1 - p2 - p1)
    for mechanism in MECHANISMS:
        low, high = certified_radius(mechanism, [p1, larger], [p2, p2]).radius
        assert high >= low * (1 - 1e-10)


@settings(max_examples=60, deadline=None)
@given(pair=pairs(), shrink=st.floats(0, 1))
def test_radius_non_increasing_in_p2(pair: tuple[float, float], shrink: float) -> None:
    p1, p2 = pair
    smaller = p2 * shrink
    for mechanism in MECHANISMS:
        at_p2, at_smaller = certified_radius(mechanism, [p1, p1], [p2, smaller]).radius
        assert at_smaller >= at_p2 * (1 - 1e-10)


@settings(max_examples=40, deadline=None)
@given(pair=pairs(), scale=st.floats(1e-3, 1e3), factor=st.floats(1e-2, 1e2))
def test_radius_scales_linearly_with_noise_scale(pair: tuple[float, float], scale: float, factor: float) -> None:
    p1, p2 = pair
    for name in ("gaussian", "laplace"):
        base = float(certified_radius(get_mechanism(name, scale=scale), p1, p2).radius)
        scaled = float(certified_radius(get_mechanism(name, scale=scale * factor), p1, p2).radius)
        assert scaled == pytest.approx(factor * base, rel=1e-10, abs=0)


@settings(max_examples=100, deadline=None)
@given(pair=pairs())
def test_gaussian_renyi_radius_at_most_cohens(pair: tuple[float, float]) -> None:
    p1, p2 = pair
    renyi = float(certified_radius(GAUSSIAN, p1, p2).radius)
    assert renyi <= float(tight_radius(GAUSSIAN, p1, p2)) * (1 + 1e-12)


@settings(max_examples=100, deadline=None)
@given(p1=p1_values)
def test_laplace_renyi_radius_equals_tengs_when_p2_is_complement(p1: float) -> None:
    p2 = 1 - p1
    radius, order = certified_radius(LAPLACE, p1, p2)
    assert float(radius) == pytest.approx(float(tight_radius(LAPLACE, p1, p2)), rel=1e-9, abs=0)
    assert math.isinf(float(order)) or p1 == p2


def test_laplace_beats_the_papers_order_grid() -> None:
    rng = np.random.default_rng(0)
    p1 = 0.5 + 0.5 * rng.random(2000) * (1 - 1e-9)
    p2 = rng.random(2000) * (1 - p1)
    ours = certified_radius(LAPLACE, p1, p2).radius
    grid = np.max([radius_at_order(LAPLACE, p1, p2, a) for a in np.linspace(1.01, 2, 100)], axis=0)
    assert np.all(ours >= grid)


@pytest.mark.parametrize(
    "p1,p2",
    [(1 - 1e-15, 1e-300), (1 - 1e-15, 0.0), (1 - 1e-15, 1 - (1 - 1e-15)), (0.5 + 1e-16, 0.5 - 1e-16), (1e-300, 0.0)],
)
def test_extreme_inputs_give_finite_nonnegative_radii(p1: float, p2: float) -> None:
    for mechanism in MECHANISMS:
        radius, order = certified_radius(mechanism, p1, p2)
        assert np.isfinite(radius) and radius >= 0
        assert np.isnan(order) or order >= 1


def test_orders_near_one_and_near_infinity_are_reached() -> None:
    # p2 = 0: B is flat in order, so the Gaussian's best order is the order -> 1 limit.
    radius, order = certified_radius(GAUSSIAN, 0.9, 0.0)
    assert float(order) == pytest.approx(1.0, abs=1e-9)
    assert float(radius) == pytest.approx(math.sqrt(-2 * math.log(0.1)), rel=1e-12)
    # p2 = 1 - p1: Laplace's best order is order = inf (Teng et al.'s bound).
    assert math.isinf(float(certified_radius(LAPLACE, 0.9, 0.1).order))


def test_ties_and_reversed_pairs_certify_nothing() -> None:
    radius, order = certified_radius(GAUSSIAN, [0.5, 0.3, 0.2], [0.5, 0.3, 0.3])
    assert np.all(radius == 0)
    assert np.all(np.isnan(order))


def test_p1_equal_one_is_an_infinite_certificate() -> None:
    for mechanism in MECHANISMS:
        radius, order = certified_radius(mechanism, 1.0, 0.0)
        assert math.isinf(radius) and math.isinf(order)


def test_near_ties_are_not_over_certified() -> None:
    # Naive evaluation of B over-certifies these by up to 12x (DESIGN section 3).
    for p1, p2 in [(0.5 + 1e-7, 0.5 - 1e-7), (0.30001, 0.3)]:
        for mechanism in MECHANISMS:
            expected = reference_radius(mechanism.name, p1, p2)
            assert float(certified_radius(mechanism, p1, p2).radius) == pytest.approx(expected, rel=1e-9)


def test_broadcasting_and_torch_inputs() -> None:
    p1 = np.array([[0.9], [0.8]])
    radius, order = certified_radius(GAUSSIAN, p1, np.array([0.02, 0.05, 0.1]))
    assert radius.shape == order.shape == (2, 3)
    tensor = certified_radius(GAUSSIAN, torch.tensor([0.9, 0.8]), 0.1).radius
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
    np.testing.assert_allclose(tensor.numpy(), certified_radius(GAUSSIAN, [0.9, 0.8], 0.1).radius)
    empty = certified_radius(GAUSSIAN, np.array([]), np.array([]))
    assert empty.radius.shape == (0,)


def test_large_inputs_use_chunks_and_agree_with_small_ones() -> None:
    rng = np.random.default_rng(3)
    p1 = 0.5 + 0.5 * rng.random(70_000)
    p2 = rng.random(70_000) * (1 - p1)
    whole = certified_radius(LAPLACE, p1, p2).radius
    part = certified_radius(LAPLACE, p1[-100:], p2[-100:]).radius
    np.testing.assert_array_equal(whole[-100:], part)


@pytest.mark.parametrize(
    "p1,p2,message",
    [
        (1.2, 0.1, "p1 must be in [0, 1], got 1.2"),
        (float("nan"), 0.1, "p1 must be in [0, 1], got nan"),
        (0.9, -0.1, "p2 must be in [0, 1], got -0.1"),
        (0.7, 0.4, "p1 + p2 must be <= 1"),
        ([0.9, 0.8], [0.1, 0.1, 0.1], "must broadcast"),
    ],
)
def test_bad_probabilities_raise_value_error_naming_the_value(p1, p2, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        certified_radius(GAUSSIAN, p1, p2)


def test_non_mechanism_and_non_numeric_inputs_raise_type_error() -> None:
    with pytest.raises(TypeError, match="renyicert.Mechanism"):
        certified_radius("gaussian", 0.9, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="p1 must be"):
        certified_radius(GAUSSIAN, "high", 0.1)


def test_radius_at_order_validates_the_order() -> None:
    with pytest.raises(ValueError, match="order must be > 1, got 1.0"):
        radius_at_order(GAUSSIAN, 0.9, 0.1, 1.0)
    with pytest.raises(ValueError, match="max-divergence"):
        radius_at_order(GAUSSIAN, 0.9, 0.1, math.inf)
    assert float(radius_at_order(LAPLACE, 0.9, 0.1, math.inf)) == pytest.approx(math.log(5), rel=1e-14)


def test_pixeldp_radius() -> None:
    # sigma = sqrt(2 ln(1.25/delta)) L / eps: with eps capped at 1 the radius is sigma / sqrt(2 ln(1.25/delta)).
    cap = 1.0 / math.sqrt(2 * math.log(1.25 / 1e-5))
    assert float(pixeldp_radius(GAUSSIAN, 0.999, 0.001)) == pytest.approx(cap, rel=1e-14)
    eps = float(pixeldp_radius(GAUSSIAN, 0.6, 0.3)) / cap
    assert 0.6 == pytest.approx(math.exp(2 * eps) * 0.3 + (1 + math.exp(eps)) * 1e-5, rel=1e-12)
    assert float(pixeldp_radius(GAUSSIAN, 0.5, 0.5)) == 0.0
    with pytest.raises(ValueError, match="delta must be in"):
        pixeldp_radius(GAUSSIAN, 0.9, 0.1, delta=0.0)


def test_renyi_bound_beats_pixeldp_for_the_gaussian() -> None:
    p1 = np.linspace(0.55, 0.9999, 50)
    assert np.all(certified_radius(GAUSSIAN, p1, 1 - p1).radius > pixeldp_radius(GAUSSIAN, p1, 1 - p1))


@pytest.mark.parametrize("mechanism", [GAUSSIAN, LAPLACE], ids=["gaussian", "laplace"])
def test_closed_form_inverse_is_the_largest_safe_distance(mechanism: renyicert.Mechanism) -> None:
    # _radius_at must invert the divergence: D(order, r) <= budget at its r, and D > budget just beyond it.
    # (A closed form 1% too large, or 1e-6 too small, fails here, whichever path the solver takes.)
    order = np.repeat([1.0 + 1e-6, 1.01, 1.5, 2.0, 10.0, 1e4], 6)
    budget = np.tile([1e-9, 1e-4, 0.01, 0.5, 3.0, 40.0], 6)
    r = mechanism._eval_radius_at(order, budget)
    assert np.all(mechanism._eval_divergence(order, r) <= budget * (1 + 1e-12))
    assert np.all(mechanism._eval_divergence(order, r * (1 + 1e-8)) > budget)
    np.testing.assert_allclose(
        radius_at_order(mechanism, 0.9, 0.05, 2.0),
        mechanism._eval_radius_at(np.array(2.0), renyicert.renyi_budget(0.9, 0.05, 2.0)),
        rtol=1e-15,
    )


def test_radius_at_order_edges_and_array_types() -> None:
    # p1 = 1 is certain (radius inf); a torch input anywhere gives a float64 tensor back.
    assert math.isinf(float(radius_at_order(GAUSSIAN, 1.0, 0.0, 2.0)))
    assert float(radius_at_order(GAUSSIAN, np.array([0.9, 1.0]), 0.0, 2.0)[0]) < math.inf
    f64 = torch.float64  # float32 probabilities are issue 13's
    for p1, p2, order in (
        (torch.tensor(0.9, dtype=f64), 0.1, 2.0),
        (0.9, torch.tensor(0.1, dtype=f64), 2.0),
        (0.9, 0.1, torch.tensor(2.0)),
    ):
        result = radius_at_order(GAUSSIAN, p1, p2, order)
        assert isinstance(result, torch.Tensor) and result.dtype == torch.float64
    with pytest.raises(ValueError, match="order must be > 1, got 0.5"):
        radius_at_order(GAUSSIAN, 0.9, 0.1, [2.0, 0.5])
    with pytest.raises(TypeError, match="order must be real numbers"):
        radius_at_order(GAUSSIAN, 0.9, 0.1, "two")


def test_pixeldp_and_tight_radius_refuse_clearly_and_keep_the_array_type() -> None:
    with pytest.raises(ValueError, match=r"delta must be in \(0, 1\), got 1.0"):
        pixeldp_radius(GAUSSIAN, 0.9, 0.1, delta=1.0)
    for p1, p2 in ((torch.tensor(0.9, dtype=torch.float64), 0.1), (0.9, torch.tensor(0.1, dtype=torch.float64))):
        for result in (pixeldp_radius(GAUSSIAN, p1, p2), tight_radius(GAUSSIAN, p1, p2)):
            assert isinstance(result, torch.Tensor) and result.dtype == torch.float64

    class Bare(renyicert.Mechanism):
        name = "bare-for-comparison"

        def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
            return order * distance**2 / (2 * self.scale**2)

    with pytest.raises(ValueError, match="'bare-for-comparison' provides no PixelDP certificate"):
        pixeldp_radius(Bare(1.0), 0.9, 0.1)
    with pytest.raises(ValueError, match="'bare-for-comparison' provides no tight certificate"):
        tight_radius(Bare(1.0), 0.9, 0.1)


def test_comparison_bounds_at_the_edges() -> None:
    # p2 = 0 with p1 < 1 is read as the smallest positive p2 (finite radius); p1 = 1 is certain (infinite);
    # p1 = p2 certifies nothing, even where a formula would give a negative number (Teng's at p1 <= 1/2).
    assert math.isfinite(float(tight_radius(GAUSSIAN, 0.9, 0.0))) and math.isfinite(
        float(pixeldp_radius(GAUSSIAN, 0.9, 0.0))
    )
    assert math.isinf(float(tight_radius(GAUSSIAN, 1.0, 0.0)))
    for mechanism in (GAUSSIAN, LAPLACE):
        assert float(tight_radius(mechanism, 0.3, 0.3)) == 0.0 and float(pixeldp_radius(mechanism, 0.3, 0.3)) == 0.0
    with np.errstate(
        invalid="raise", divide="raise"
    ):  # a caller's strict settings do not reach the formulas' 0/0 and log(0)
        tight_radius(GAUSSIAN, np.array([0.9, 0.5, 0.9]), np.array([0.1, 0.5, 0.0]))
        pixeldp_radius(LAPLACE, np.array([0.9, 0.5, 0.9]), np.array([0.1, 0.5, 0.0]))


def test_radius_at_order_mixes_finite_and_infinite_orders_in_one_call() -> None:
    mixed = radius_at_order(LAPLACE, 0.9, 0.1, np.array([2.0, math.inf, 1.5]))
    alone = [float(radius_at_order(LAPLACE, 0.9, 0.1, order)) for order in (2.0, math.inf, 1.5)]
    np.testing.assert_array_equal(mixed, alone)


def test_float32_probabilities_are_judged_in_float32_and_solved_in_float64() -> None:
    # float32 0.99 + 0.01 is 1 + 9.3e-9 in float64 but exactly 1 in float32: a valid pair at its own precision.
    radius = certified_radius(GAUSSIAN, torch.tensor(0.99), torch.tensor(0.01)).radius
    assert radius.dtype == torch.float64
    p1, p2 = float(np.float32(0.99)), float(np.float32(0.01))
    assert float(radius) == pytest.approx(float(certified_radius(GAUSSIAN, p1, 1.0 - p1).radius), rel=1e-12)
    assert p1 + p2 > 1.0  # the float64 sum would have been refused
    a32, b32 = np.float32([0.9, 0.7]), np.float32([0.1, 0.3])
    np.testing.assert_allclose(
        certified_radius(LAPLACE, a32, b32).radius,
        certified_radius(LAPLACE, a32.astype(float), np.minimum(b32.astype(float), 1.0 - a32.astype(float))).radius,
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="p1 \\+ p2 must be <= 1"):
        certified_radius(GAUSSIAN, torch.tensor(0.6), torch.tensor(0.5))


# Pairs whose budgets are tiny: margins 1e-200 .. 1e-265 (normal float64), then subnormal ones.
TINY_PAIRS = [(1e-200, 0.0), (1e-200, 9.9e-201), (1e-265, 5e-266), (3e-250, 1e-250)]
SUBNORMAL_PAIRS = [(1e-320, 0.0), (5e-324, 0.0), (1e-320, 5e-324), (1e-310, 1e-315), (1e-300, 0.0), (2.0**-901, 0.0)]


@pytest.mark.parametrize("mechanism", MECHANISMS, ids=["gaussian", "laplace"])
@pytest.mark.parametrize(("p1", "p2"), TINY_PAIRS)
def test_tiny_budgets_match_the_50_digit_reference(mechanism: renyicert.Mechanism, p1: float, p2: float) -> None:
    assert float(certified_radius(mechanism, p1, p2).radius) == pytest.approx(
        reference_radius(mechanism.name, p1, p2), rel=1e-9
    )


@pytest.mark.parametrize("mechanism", MECHANISMS, ids=["gaussian", "laplace"])
@pytest.mark.parametrize(("p1", "p2"), SUBNORMAL_PAIRS)
def test_subnormal_budgets_certify_zero_never_above_the_truth_nor_nan(
    mechanism: renyicert.Mechanism, p1: float, p2: float
) -> None:
    # Before: Laplace at (1e-320, 5e-324) certified 1.6e-34 (true radius about 1.4e-160), (5e-324, 0) gave NaN.
    radius = float(certified_radius(mechanism, p1, p2).radius)
    assert radius == 0.0  # radius 0 is below the true radius (>= 0) whatever it is
    assert float(radius_at_order(mechanism, p1, p2, 8096.0)) == 0.0


def test_a_scan_of_tiny_pairs_never_certifies_above_the_reference() -> None:
    from renyicert.inversion import SMALLEST_BUDGET

    rng = np.random.default_rng(5)
    p1 = 10.0 ** rng.uniform(-323.5, -240.0, 400)
    p2 = p1 * rng.choice([0.0, 1e-6, 0.5, 0.999], 400)
    for mechanism in MECHANISMS:
        radius = np.asarray(certified_radius(mechanism, p1, p2).radius)
        assert np.isfinite(radius).all() and (radius >= 0.0).all()
        assert (radius[p1 - p2 < SMALLEST_BUDGET] == 0.0).all()
        for i in np.flatnonzero(radius > 0.0)[:6]:  # the positive ones, against 50 digits
            assert radius[i] <= reference_radius(mechanism.name, p1[i], p2[i]) * (1 + 1e-9)


# ------------------------------------------------------------- probability_threshold
@pytest.mark.parametrize("name,scale", [("gaussian", 0.25), ("gaussian", 1.0), ("laplace", 0.5)])
@pytest.mark.parametrize("bound", ["renyi", "tight", "pixeldp"])
def test_probability_threshold_is_the_smallest_p1_that_certifies_the_radius(
    name: str, scale: float, bound: str
) -> None:
    from renyicert.radii import probability_threshold

    mechanism = renyicert.get_mechanism(name, scale=scale)
    radius_of = {
        "renyi": lambda p: renyicert.certified_radius(mechanism, p, 1 - p)[0],
        "tight": lambda p: renyicert.tight_radius(mechanism, p, 1 - p),
        "pixeldp": lambda p: renyicert.pixeldp_radius(mechanism, p, 1 - p),
    }[bound]
    radii = np.array([1e-6, 0.01, 0.3, 1.0, 2.5]) * scale
    thresholds = probability_threshold(mechanism, radii, bound)
    for r, c in zip(radii, thresholds):
        if c == 1.0:  # out of reach below 1: the largest double below 1 does not reach it
            assert float(radius_of(np.nextafter(1.0, 0.0))) < r
            continue
        assert float(radius_of(c)) >= r  # c certifies r ...
        below = c - 4 * np.spacing(c)
        assert float(radius_of(below)) < r  # ... and a few doubles less do not
    assert np.all(np.diff(thresholds) >= 0)


def test_probability_threshold_matches_phi_for_the_gaussian_tight_bound_and_edges() -> None:
    from scipy.stats import norm

    from renyicert.radii import probability_threshold

    gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    radii = np.array([0.1, 0.5, 1.0, 2.0])
    assert probability_threshold(gaussian, radii, "tight") == pytest.approx(norm.cdf(radii / 0.5), rel=1e-13)
    assert probability_threshold(gaussian, 0.0) == 0.5
    assert probability_threshold(gaussian, 100.0) == 1.0  # beyond any p1 < 1
    with pytest.raises(ValueError, match=r"radius must be a finite number >= 0, got -1.0"):
        probability_threshold(gaussian, -1.0)
    with pytest.raises(ValueError, match="bound must be one of"):
        probability_threshold(gaussian, 1.0, "best")
    with pytest.raises(ValueError, match="radius must be a finite number >= 0, got inf"):
        probability_threshold(gaussian, np.inf)
