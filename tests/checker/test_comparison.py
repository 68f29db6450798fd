"""The comparison bounds are checked where bound="best" uses them: the tight radius in the norm ball, PixelDP against the divergence."""

from __future__ import annotations

import numpy as np
import pytest

import renyicert
from renyicert import Verdict
from renyicert.checker.comparison import pixeldp_from_divergence, pixeldp_problem, tight_radius_problem
from renyicert.checker.sampler import numeric_log_density

from .. import bad_mechanisms as bad


def _optional(mechanism: object, **options: object) -> renyicert.CheckResult:
    return renyicert.check(mechanism, quick=True, checks=["optional-methods"], **options)["optional-methods"]  # type: ignore[arg-type]


def test_a_pixeldp_radius_missing_its_factor_fails_against_the_divergence() -> None:
    """Case 1: the factor sqrt(2 ln(1.25/delta)) dropped: 4.8x Lecuyer et al.'s radius, which certify(bound="best") picked."""
    result = _optional(bad.PixelDPWithoutItsFactorGaussian)
    assert result.verdict is Verdict.FAIL, str(result)
    assert (
        result.evidence["method"] == "_pixeldp_radius"
        and "above what the verified divergence proves" in result.evidence["problem"]
    )
    assert result.evidence["claimed radius"] > result.evidence["radius the divergence proves"]


def test_a_laplace_pixeldp_radius_one_percent_too_large_fails() -> None:
    """For Laplace the derivation is exact (pure DP): an inflation of 1% is past the 0.1% tolerance."""

    class Inflated(bad.Laplace):
        name = "bad-inflated-pixeldp-laplace"

        def _pixeldp_radius(self, p1, p2, delta):  # type: ignore[no-untyped-def]
            return 1.01 * bad.Laplace._pixeldp_radius(self, p1, p2, delta)

    found = pixeldp_problem(Inflated(0.3))
    assert found is not None and "1.0% above what the verified divergence proves" in found["problem"], found


def test_the_pixeldp_derivation_is_pure_dp_for_laplace_and_dominates_lecuyers_gaussian() -> None:
    laplace = renyicert.get_mechanism("laplace", scale=0.5)
    for p1, p2 in ((0.9, 0.1), (0.7, 0.2), (0.6, 0.4)):
        assert pixeldp_from_divergence(laplace, p1, p2, 1e-5) == pytest.approx(0.25 * np.log(p1 / p2), rel=1e-9)
    gaussian = renyicert.get_mechanism("gaussian", scale=0.3)
    assert pixeldp_problem(gaussian) is None and pixeldp_problem(laplace) is None
    assert pixeldp_from_divergence(gaussian, 0.4, 0.45, 1e-5) == 0.0  # nothing where p1 < p2
    # Gaussian: eps = D + log(1/delta)/(a-1) + log(1-1/a) - log(a)/(a-1) at D = a L^2 / (2 sigma^2); check one order by hand
    radius = pixeldp_from_divergence(gaussian, 0.9, 0.1, 1e-5)
    eps = np.log(2 * (0.9 - 1e-5) / (1e-5 + np.sqrt(1e-10 + 4 * 0.1 * (0.9 - 1e-5))))
    orders = 1 + np.geomspace(1e-4, 1e4, 200_000)
    budget = eps - np.log(1e5) / (orders - 1) - np.log1p(-1 / orders) + np.log(orders) / (orders - 1)
    by_hand = np.max(0.3 * np.sqrt(2 * np.maximum(budget, 0) / orders))
    assert radius == pytest.approx(by_hand, rel=1e-4)


def test_a_one_coordinate_tight_radius_of_an_linf_plugin_fails_at_the_cube_vertex() -> None:
    """Case 2: Teng et al.'s one-coordinate radius as the tight radius of l_inf Laplace noise in 4 coordinates passed (only one
    axis was shifted); the vertex shift flips the worst-case prediction well inside it."""
    result = _optional(bad.LaplaceLinf, params={"d": 4})
    assert result.verdict is Verdict.FAIL, str(result)
    assert "Neyman-Pearson worst case over the norm ball" in result.method
    assert result.evidence["coordinates"] > 1 and "coordinate(s) at R" in result.evidence["shift"]
    assert (
        result.evidence["worst top-class probability under the shifted noise (upper bound)"]
        < result.evidence["worst runner-up probability (lower bound)"]
    )


def test_the_vertex_shift_flips_the_prediction_inside_the_claimed_radius() -> None:
    """For l_inf Laplace in d = 4 at p1 = 0.9 (p2 = 0.1) the claimed radius is b log 5 = 1.61 b; shifting all four
    coordinates by it lets the runner-up overtake the Neyman-Pearson classifier's top class (found with only the vertex tried)."""
    mechanism = bad.LaplaceLinf(1.0, d=4)
    claimed = float(mechanism._eval_tight_radius(np.array([0.9]), np.array([0.1]))[0])
    assert claimed == pytest.approx(np.log(5.0))
    vertex = [np.ones(4)]
    found, tested = tight_radius_problem(
        mechanism, numeric_log_density(mechanism), 1, vertex, False, 0
    )  # dimension 1: the axis, then the given vertex
    assert found is not None and found["coordinates"] == 4 and "worst shift" in found["shift"], found


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_the_builtin_tight_radii_hold_over_the_norm_ball(name: str) -> None:
    mechanism = renyicert.get_mechanism(name, scale=0.3)
    for dimension, quick in ((None, True), (16, False)):
        found, tested = tight_radius_problem(mechanism, numeric_log_density(mechanism), dimension, [], quick, 3)
        assert found is None, found
        assert tested >= 16


def test_a_tight_radius_ten_percent_too_large_fails_off_the_axis_too() -> None:
    """The Monte Carlo comparison has the power to catch a 10% inflation of Cohen et al.'s radius along a shift spread over
    16 coordinates (the axis alone is checked exactly, to 1e-7, by the other test)."""

    class Inflated(bad.Gaussian):
        name = "bad-ten-percent-tight-gaussian"

        def _tight_radius(self, p1, p2):  # type: ignore[no-untyped-def]
            return 1.1 * bad.Gaussian._tight_radius(self, p1, p2)

    spread = [np.full(16, 0.25)]  # ||u||_2 = 1 over 16 coordinates
    found, _ = tight_radius_problem(Inflated(0.3), numeric_log_density(Inflated(0.3)), None, spread, True, 0)
    assert found is not None, "a 10% inflation went unseen"


def test_best_takes_only_verified_comparison_bounds() -> None:
    """The PixelDP radius without its factor was picked by certify(bound="best"); unverified, it is reported but never the certificate."""
    import torch

    from renyicert.checker import verify_comparison_bounds
    from renyicert.radii import best_bounds, best_radii

    bad_pixeldp = bad.PixelDPWithoutItsFactorGaussian(0.5)
    assert best_bounds(bad_pixeldp) == ("renyi",)
    still, report = verify_comparison_bounds(bad_pixeldp)
    assert report["optional-methods"].verdict is Verdict.FAIL and best_bounds(still) == ("renyi",)
    p1, p2 = (
        np.array([0.5]),
        np.array([0.4]),
    )  # near a tie the factor-less PixelDP radius beats the Rényi one, and even Neyman-Pearson's
    pixeldp, tight = float(renyicert.pixeldp_radius(still, p1, p2)[0]), float(renyicert.tight_radius(still, p1, p2)[0])
    radius, _, winner = best_radii(still, p1, p2, np.array([True]))
    assert tight > pixeldp > radius[0]  # what "best" would have taken
    assert winner.tolist() == ["renyi"] and radius[0] == pytest.approx(
        float(renyicert.certified_radius(still, p1, p2).radius[0])
    )

    class MyGaussian(bad.Gaussian):  # a correct third-party subclass: verified, its bounds count
        name = "my-gaussian"

    mine = MyGaussian(0.5)
    assert best_bounds(mine) == ("renyi",)
    verified, report = verify_comparison_bounds(mine)
    assert report.passed and best_bounds(verified) == ("renyi", "tight", "pixeldp") and verified == mine
    assert best_bounds(renyicert.get_mechanism("gaussian", scale=0.5)) == ("renyi", "tight", "pixeldp")  # built in


def test_records_of_an_unverified_bound_keep_it_out_of_the_best_and_say_so(tmp_path: object) -> None:
    import json
    from pathlib import Path

    import torch

    from renyicert.workflow.records import settings_path
    from renyicert.workflow.certify import certify_dataset

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    smoothed = renyicert.Smoothed(model, bad.PixelDPWithoutItsFactorGaussian(0.5), 2, progress=False)
    x, y = torch.rand(6, 4), torch.zeros(6, dtype=torch.int64)
    path = Path(str(tmp_path)) / "r.jsonl"
    records = certify_dataset(smoothed, (x, y), path, n0=10, n=200, progress=False)
    assert all(r["best_bound"] in ("renyi",) for r in records)
    settings = json.loads(settings_path(path).read_text())
    assert settings["best_of"] == ["renyi"] and "divergence_verifiable" not in settings
    nodensity = renyicert.Smoothed(model, bad.NoDensityHalfGaussian(0.5), 2, progress=False)
    certify_dataset(nodensity, (x, y), Path(str(tmp_path)) / "n.jsonl", n0=10, n=200, progress=False)
    assert json.loads(settings_path(Path(str(tmp_path)) / "n.jsonl").read_text())["divergence_verifiable"] is False
