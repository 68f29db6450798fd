"""The checker: the built-ins pass everything, each known-bad mechanism fails the check meant for it."""

from __future__ import annotations

import json

import numpy as np
import pytest

import renyicert
from renyicert import Verdict

from .. import bad_mechanisms as bad


@pytest.fixture(scope="module")
def builtin_reports() -> dict[str, renyicert.CheckReport]:
    return {name: renyicert.check(name, quick=True) for name in ("gaussian", "laplace")}


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_builtin_mechanisms_pass_every_check(builtin_reports: dict[str, renyicert.CheckReport], name: str) -> None:
    report = builtin_reports[name]
    assert report.passed, str(report)
    assert [r.verdict for r in report.results] == [Verdict.PASS] * len(renyicert.checker.CHECKS), str(report)
    assert "proved equal" in report["closed-form"].method
    assert not any(r.warnings for r in report.results), str(report)


def test_seed_linear_l1_formula_fails_the_norm_ball_check_with_a_counterexample() -> None:
    report = renyicert.check(bad.SeedLinearLaplace, scale=1.0, quick=True, checks=["closed-form", "norm-ball"])
    ball = report["norm-ball"]
    assert ball.verdict is Verdict.FAIL
    shift = np.asarray(ball.evidence["shift"])
    assert np.isclose(np.abs(shift).sum(), ball.evidence["r"])  # a real point of the l1 sphere
    assert ball.evidence["true"] > ball.evidence["closed_form"]
    # The counterexample is genuine: recompute it from the correct 1-D divergence.
    laplace = renyicert.get_mechanism("laplace", scale=1.0)
    true = float(np.sum(laplace.divergence(ball.evidence["order"], np.abs(shift))))
    assert true == pytest.approx(ball.evidence["true"], rel=1e-9)
    assert report["closed-form"].verdict is Verdict.FAIL


def test_seed_linear_formula_counterexample_of_the_design_notes() -> None:
    # order = 2, b = 1, d = 3: true 2.5946, the linear formula 1.8574.
    assert float(bad.SeedLinearLaplace(1.0).divergence(2.0, 3.0)) == pytest.approx(1.8574, abs=1e-4)
    assert float(renyicert.get_mechanism("laplace", scale=1.0).divergence(2.0, 3.0)) == pytest.approx(2.5946, abs=1e-4)


def test_quarter_gaussian_fails_closed_form_and_norm_ball() -> None:
    report = renyicert.check(bad.QuarterGaussian, quick=True, checks=["closed-form", "norm-ball"])
    closed = report["closed-form"]
    assert closed.verdict is Verdict.FAIL
    assert closed.evidence["closed_form"] == pytest.approx(closed.evidence["true"] / 2, rel=1e-9)
    assert report["norm-ball"].verdict is Verdict.FAIL


def test_a_closed_form_below_what_the_samples_show_fails_the_sampler_divergence_check() -> None:
    result = renyicert.check(bad.QuarterGaussian, quick=True, checks=["sampler-divergence"])["sampler-divergence"]
    assert result.verdict is Verdict.FAIL and "the closed form is below what the samples show" in result.method
    assert result.evidence["closed-form log-moment"] < result.evidence["log-moment interval"][0]


def test_doubled_gaussian_is_sound_but_not_tight() -> None:
    report = renyicert.check(bad.DoubledGaussian, quick=True)
    assert report.passed, str(report)
    closed = report["closed-form"]
    assert closed.verdict is Verdict.PASS
    assert "proved >=" in closed.method
    assert any("not tight" in w for w in closed.warnings)


def test_sampler_using_variance_as_std_fails_with_a_diagnosis() -> None:
    report = renyicert.check(bad.VarianceGaussian, quick=True, checks=["sampler-density", "sampler-divergence"])
    result = report["sampler-density"]
    assert result.verdict is Verdict.FAIL
    assert result.evidence["std ratio"] == pytest.approx(0.3, rel=0.02)
    assert "scale**2" in result.evidence["likely cause"]
    assert report["sampler-divergence"].verdict is Verdict.FAIL


def test_laplace_sampler_with_std_b_fails_with_a_diagnosis() -> None:
    report = renyicert.check(bad.StdLaplace, quick=True, checks=["sampler-density"])
    result = report["sampler-density"]
    assert result.verdict is Verdict.FAIL
    assert result.evidence["std ratio"] == pytest.approx(2**-0.5, rel=0.02)
    assert "std = sqrt(2) b" in result.evidence["likely cause"]


def test_divergence_decreasing_in_order_breaks_a_law() -> None:
    report = renyicert.check(bad.DecreasingInAlphaGaussian, quick=True, checks=["laws"])
    result = report["laws"]
    assert result.verdict is Verdict.FAIL
    assert result.evidence["law"] == "non-decreasing in order"
    low, high = result.evidence["order"]
    assert low < high and result.evidence["D"][0] > result.evidence["D"][1]


def test_mechanism_without_density_is_not_checked_rather_than_passed() -> None:
    report = renyicert.check(bad.NoDensityGaussian, quick=True)
    assert report["closed-form"].verdict is Verdict.NOT_CHECKED
    assert "no density" in report["closed-form"].method
    assert report["norm-ball"].verdict is Verdict.NOT_CHECKED
    assert report["sampler-divergence"].verdict is Verdict.NOT_CHECKED
    assert report["laws"].verdict is Verdict.PASS


def test_a_half_divergence_without_a_density_is_not_verified_and_does_not_read_as_passed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Case 4: a plugin without a density whose divergence is half the truth passed with exit 0 and PASSED; now it is
    "passed what could be checked", exit 3 (0 only with --allow-not-checked), and the contract suite refuses it."""
    from renyicert.cli import main
    from renyicert.testing import MechanismContractError, check_mechanism_contract

    report = renyicert.check(bad.NoDensityHalfGaussian, quick=True)
    assert not report.failures and not report.passed
    assert report.status == "passed what could be checked"
    assert {r.name for r in report.not_checked} == {"closed-form", "norm-ball", "sampler-divergence"}
    assert str(report).splitlines()[-1].startswith("PASSED WHAT COULD BE CHECKED: 3 of 7 checks not checked")
    assert "this mechanism is not verified" in str(report)
    assert report.to_dict()["status"] == "passed what could be checked" and report.to_dict()["passed"] is False
    with pytest.raises(MechanismContractError, match="PASSED WHAT COULD BE CHECKED"):
        check_mechanism_contract(bad.NoDensityHalfGaussian)
    assert (
        check_mechanism_contract(bad.NoDensityHalfGaussian, allow_not_checked=True).status
        == "passed what could be checked"
    )
    from renyicert.registry import register, unregister

    register(bad.NoDensityHalfGaussian)
    try:
        assert (
            main(["check", "bad-no-density-half-gaussian", "--quick", "--only", "closed-form", "--only", "laws"]) == 3
        )
        assert (
            main(["check", "bad-no-density-half-gaussian", "--quick", "--only", "closed-form", "--allow-not-checked"])
            == 0
        )
        assert main(["check", "bad-no-density-half-gaussian", "--quick", "--only", "laws"]) == 0
    finally:
        unregister("bad-no-density-half-gaussian")
    capsys.readouterr()


def test_unnormalised_density_fails() -> None:
    report = renyicert.check(bad.UnnormalisedLaplace, quick=True, checks=["closed-form"])
    assert report["closed-form"].verdict is Verdict.FAIL
    assert "integrate to 1" in report["closed-form"].method


def test_a_float64_implementation_that_disagrees_with_its_own_formula_fails() -> None:
    class Drifting(bad.DoubledGaussian):
        name = "bad-drifting"

        def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
            return super()._divergence(order, distance) * (1 + 1e-6)

    report = renyicert.check(Drifting, quick=True, checks=["closed-form"])
    assert report["closed-form"].verdict is Verdict.FAIL
    assert "does not match" in report["closed-form"].method


def test_sampler_that_ignores_the_seed_fails_reproducibility() -> None:
    import torch

    class Unseeded(bad.Gaussian):
        name = "bad-unseeded"

        def _sample(self, shape, generator, dtype, device):  # type: ignore[no-untyped-def]
            return torch.randn(shape, dtype=dtype, device=device) * self.scale

    result = renyicert.check(Unseeded, quick=True, checks=["sampler-density"])["sampler-density"]
    assert result.verdict is Verdict.FAIL
    assert "seed" in result.evidence["problem"]


def test_report_is_json_and_text() -> None:
    report = renyicert.check("gaussian", quick=True, checks=["laws"])
    data = json.loads(report.to_json())
    assert data["passed"] is True and data["checks"][0]["name"] == "laws"
    assert "PASSED" in str(report)
    with pytest.raises(KeyError, match="no check named"):
        report["nope"]


def test_check_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown check"):
        renyicert.check("gaussian", checks=["bogus"])
    with pytest.raises(TypeError, match="mechanism must be"):
        renyicert.check(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scale must be finite and > 0, got -1.0"):
        renyicert.check("gaussian", scale=-1.0)
    with pytest.raises(renyicert.UnknownMechanismError):
        renyicert.check("no-such-mechanism")
