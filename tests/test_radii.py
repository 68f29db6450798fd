"""The one dispatcher from a bound's name to its radius (renyicert.radii): masks, the best of the bounds, ties, names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import renyicert


def test_radii_where_certified_masks_abstentions_under_every_bound() -> None:
    from renyicert.radii import BOUNDS, radii_where_certified

    gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    p1, p2, certified = np.array([0.99, 0.8, 0.4]), np.array([0.01, 0.1, 0.4]), np.array([True, True, False])
    expected = {
        "renyi": renyicert.certified_radius(gaussian, p1[:2], p2[:2]).radius,
        "tight": renyicert.tight_radius(gaussian, p1[:2], p2[:2]),
        "pixeldp": renyicert.pixeldp_radius(gaussian, p1[:2], p2[:2]),
    }
    for bound in BOUNDS:
        radius, order = radii_where_certified(gaussian, p1, p2, certified, bound)
        assert radius.dtype == np.float64 and order.dtype == np.float64
        np.testing.assert_array_equal(radius, [*expected[bound], 0.0])
        assert np.isnan(order[2]) and (bound == "renyi") == bool(np.isfinite(order[:2]).all())
    with pytest.raises(ValueError, match=r"bound must be one of \('renyi', 'tight', 'pixeldp'\), got 'cohen'"):
        radii_where_certified(gaussian, p1, p2, certified, "cohen")


def test_the_best_bound_is_the_largest_radius_of_every_offered_bound_and_says_which() -> None:
    from renyicert.radii import best_radii, radii_where_certified

    rng = np.random.default_rng(3)
    for name, scale in (("laplace", 0.25), ("gaussian", 0.5)):
        mechanism = renyicert.get_mechanism(name, scale=scale)
        p1 = rng.uniform(0.3, 0.9999, 400)
        p2 = rng.uniform(0.0, 1.0, 400) * (1 - p1)
        certified = p1 > p2
        certified[:5] = False
        radius, order, bound = best_radii(mechanism, p1, p2, certified)
        assert bound.dtype == object and radius.shape == order.shape == bound.shape == (400,)
        single = {b: radii_where_certified(mechanism, p1, p2, certified, b) for b in ("renyi", "tight", "pixeldp")}
        stacked = np.stack([single[b][0] for b in ("renyi", "tight", "pixeldp")])
        assert np.array_equal(radius, stacked.max(axis=0))
        for b in (
            "renyi",
            "tight",
            "pixeldp",
        ):  # the named bound gave exactly that radius, and no earlier bound did as well
            chosen = bound == b
            assert np.array_equal(radius[chosen], single[b][0][chosen])
        assert np.array_equal(radius[:5], np.zeros(5)) and set(bound[:5]) == {"renyi"}  # abstentions: 0, named renyi
        renyi_won = bound == "renyi"
        assert (
            np.array_equal(order[renyi_won], single["renyi"][1][renyi_won], equal_nan=True)
            and np.isnan(order[~renyi_won]).all()
        )
        if (
            name == "laplace"
        ):  # with a real runner-up the Rényi bound wins most inputs, PixelDP some, Teng's none where p2 < 1 - p1
            assert (bound == "renyi").sum() > 200 and (bound == "pixeldp").sum() > 0
        else:  # the Gaussian's tight bound (Cohen's) is never beaten
            assert set(bound[certified]) == {"tight"}


def test_a_tie_between_bounds_goes_to_the_earlier_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import renyicert.radii as radii

    equal = {"renyi": [0.5, 0.2, 0.7], "tight": [0.5, 0.3, 0.7], "pixeldp": [0.5, 0.3, 0.6]}
    monkeypatch.setattr(
        radii,
        "radii_where_certified",
        lambda m, p1, p2, c, b: (np.array(equal[b]), np.full(3, 2.0 if b == "renyi" else np.nan)),
    )
    radius, order, bound = radii.best_radii(
        renyicert.get_mechanism("laplace", scale=1.0), np.ones(3), np.zeros(3), np.ones(3, bool)
    )
    assert bound.tolist() == ["renyi", "tight", "renyi"] and radius.tolist() == [0.5, 0.3, 0.7]
    assert order[0] == 2.0 and np.isnan(order[1]) and order[2] == 2.0


def test_a_bound_name_is_checked_once_and_a_bound_not_offered_is_refused_by_name() -> None:
    from renyicert.radii import bound_radius, check_bound, require_offered

    with pytest.raises(ValueError, match=r"bound must be one of \('renyi', 'tight'\), got 'pixeldp'"):
        check_bound("pixeldp", ("renyi", "tight"))
    assert check_bound("best", ("renyi", "best")) == "best"

    class NoTight(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
        name = "no-tight-for-radii"
        _tight_radius = renyicert.Mechanism._tight_radius

    with pytest.raises(ValueError, match="bound='tight' needs a tight certificate, which no-tight-for-radii"):
        require_offered(NoTight(1.0), "tight")

    class NoPixelDP(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
        name = "no-pixeldp-for-radii"
        _pixeldp_radius = renyicert.Mechanism._pixeldp_radius

    with pytest.raises(ValueError, match="bound='pixeldp' needs a PixelDP certificate, which no-pixeldp-for-radii"):
        require_offered(NoPixelDP(1.0), "pixeldp")
    require_offered(NoPixelDP(1.0), "tight")
    radius, order = bound_radius(renyicert.get_mechanism("gaussian", scale=0.5), "renyi", [0.9, 0.5], [0.1, 0.5])
    assert radius[0] > 0 and radius[1] == 0 and order[0] > 1 and np.isnan(order[1])


def test_the_radius_table_gives_every_offered_bound_from_the_same_p1_and_none_for_the_others(
    registered_mechanism: Any,
) -> None:
    from renyicert.radii import BOUNDS, bound_radius, radius_table

    class NoTight(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
        name = "no-tight-for-the-table"
        _tight_radius = renyicert.Mechanism._tight_radius

    registered_mechanism(NoTight)
    p1 = [0.6, 0.9, 0.999]
    for delta in (1e-5, 1e-2):
        rows = radius_table([("laplace", 1.0), ("no-tight-for-the-table", 0.5)], p1, delta=delta)
        assert [(row["mechanism"], row["scale"], row["p1"]) for row in rows] == [
            *(("laplace", 1.0, p) for p in p1),
            *(("no-tight-for-the-table", 0.5, p) for p in p1),
        ]
        for k, row in enumerate(rows):
            assert list(row) == ["mechanism", "scale", "p1", "p2", *BOUNDS, "order"]
            assert row["p2"] == 1.0 - row["p1"]
            mechanism = renyicert.get_mechanism(row["mechanism"], scale=row["scale"])
            i = k % len(p1)
            for bound in BOUNDS:
                if bound == "tight" and row["mechanism"] == "no-tight-for-the-table":
                    assert row[bound] is None
                    continue
                radius, order = bound_radius(mechanism, bound, np.array(p1), 1.0 - np.array(p1), delta)
                assert type(row[bound]) is float and row[bound] == float(radius[i]) and row[bound] > 0
                if bound == "renyi":
                    assert type(row["order"]) is float and row["order"] == float(order[i]) and row["order"] > 1
    # delta reaches the PixelDP bound (and no other); Laplace's is pure DP, so Gaussian's shows it.
    loose, strict = radius_table([("gaussian", 1.0)], [0.9], delta=1e-2)[0], radius_table([("gaussian", 1.0)], [0.9])[0]
    assert loose["pixeldp"] != strict["pixeldp"] and loose["renyi"] == strict["renyi"]


def test_best_takes_a_plugins_comparison_bound_only_once_it_is_verified() -> None:
    from renyicert.radii import best_bounds

    class ThirdParty(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
        name = "third-party-gaussian"

    assert type(renyicert.get_mechanism("gaussian", scale=1.0)).__module__ != ThirdParty.__module__
    mechanism = ThirdParty(0.5)
    assert best_bounds(mechanism) == ("renyi",)  # offered, not verified: reported, never the certificate
    mechanism._verified_bounds = frozenset({"pixeldp"})  # what verify_comparison_bounds sets
    assert best_bounds(mechanism) == ("renyi", "pixeldp")
    mechanism._verified_bounds = frozenset({"pixeldp", "tight", "renyi"})
    assert best_bounds(mechanism) == ("renyi", "tight", "pixeldp")  # in BOUNDS' order
    mechanism._verified_bounds = frozenset()
    assert best_bounds(mechanism) == ("renyi",)


@pytest.mark.parametrize(
    "radius,message",
    [
        ([0.5, -1.0], r"^radius must be a finite number >= 0, got -1\.0$"),
        (float("nan"), r"^radius must be a finite number >= 0, got nan$"),
        ([0.5, float("inf")], r"^radius must be a finite number >= 0, got inf$"),
        ("far", r"^radius must be real numbers, got dtype <U3 \('far'\)$"),
    ],
)
def test_probability_threshold_refuses_a_radius_it_cannot_certify_by_its_value(radius: Any, message: str) -> None:
    from renyicert.radii import probability_threshold

    with pytest.raises((ValueError, TypeError), match=message):
        probability_threshold(renyicert.get_mechanism("gaussian", scale=0.5), radius)


def test_probability_threshold_is_one_half_at_radius_zero_one_where_unreachable_and_keeps_the_shape() -> None:
    from renyicert.radii import bound_radius, probability_threshold

    gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    for bound in ("renyi", "tight", "pixeldp"):
        assert (
            probability_threshold(gaussian, 0.0, bound) == 0.5 and type(probability_threshold(gaussian, 0.0)) is float
        )
        assert probability_threshold(gaussian, 1e6, bound) == 1.0  # no p1 < 1 certifies it
        grid = probability_threshold(gaussian, [[0.0, 0.05], [0.02, 1e6]], bound)  # PixelDP reaches 0.1 at most here
        assert grid.shape == (2, 2) and grid[0, 0] == 0.5 and grid[1, 1] == 1.0
        # The threshold certifies its radius, and no double below it by more than one step does.
        c = float(grid[0, 1])
        below = np.nextafter(np.nextafter(c, 0.0), 0.0)
        assert (
            bound_radius(gaussian, bound, [c], [1 - c])[0][0]
            >= 0.05
            > bound_radius(gaussian, bound, [below], [1 - below])[0][0]
        )
    radius, order = bound_radius(gaussian, "tight", [0.9, 0.6], [0.1, 0.4])
    assert radius.dtype == order.dtype == np.float64 and np.isnan(order).all()  # only the Rényi bound has an order
