"""The worst-shift search covers the dimension a formula assumes; the laws keep a mechanism's parameters."""

from __future__ import annotations

import numpy as np
import pytest

import renyicert
from renyicert import Verdict

from .. import bad_mechanisms as bad


@pytest.mark.parametrize("d", [1, 4, 16])
def test_a_correct_linf_mechanism_passes_at_its_dimension(d: int) -> None:
    # Before: d = 4 failed with an 8-coordinate counterexample, and the laws with "D = 2 vs D at scale 1 = 8".
    report = renyicert.check(bad.LinfGaussian, params={"d": d}, quick=True, checks=["norm-ball", "laws"])
    assert report.passed, str(report)
    assert f"d = {d}" in report["norm-ball"].method


def test_noise_in_16_dimensions_with_a_formula_for_8_fails_at_the_cube_vertex() -> None:
    result = renyicert.check(bad.HalfDimensionLinf, params={"d": 16}, quick=True, checks=["norm-ball"])["norm-ball"]
    assert result.verdict is Verdict.FAIL
    assert result.evidence["coordinates"] == 16
    assert result.evidence["true"] == pytest.approx(2 * result.evidence["closed_form"], rel=1e-6)


def test_a_formula_for_8_dimensions_stated_for_all_fails_beyond_8() -> None:
    result = renyicert.check(bad.UndeclaredLinf, quick=True, checks=["norm-ball"])["norm-ball"]
    assert result.verdict is Verdict.FAIL
    assert result.evidence["coordinates"] > 8 and "Mechanism.dimension" in result.evidence["hint"]


def test_the_dimension_can_be_given_to_the_checker() -> None:
    result = renyicert.check(bad.UndeclaredLinf, quick=True, checks=["norm-ball"], dimension=8)["norm-ball"]
    assert result.verdict is Verdict.PASS and "d = 8" in result.method
    result = renyicert.check(bad.UndeclaredLinf, quick=True, checks=["norm-ball"], dimension=64)["norm-ball"]
    assert result.verdict is Verdict.FAIL and result.evidence["coordinates"] == 64
    assert any("at most" in limit for limit in result.limits) or result.verdict is Verdict.FAIL
    with pytest.raises(ValueError, match="dimension=5 disagrees"):
        renyicert.check(bad.LinfGaussian, params={"d": 4}, dimension=5)
    with pytest.raises(ValueError, match="dimension must be a positive integer"):
        renyicert.check("gaussian", dimension=0)


def test_a_large_dimension_is_searched_with_structured_shifts_and_says_so() -> None:
    result = renyicert.check(bad.LinfGaussian, params={"d": 3072}, quick=True, checks=["norm-ball"])["norm-ball"]
    assert result.verdict is Verdict.PASS
    assert any("at most 8 of the 3072" in limit for limit in result.limits)


def test_a_required_parameter_is_asked_for_by_name() -> None:
    # Before: check(Class) raised a TypeError from the constructor.
    with pytest.raises(ValueError, match="needs the parameter 'd'"):
        renyicert.check(bad.RequiredParameterLinf, quick=True, checks=["laws"])
    assert renyicert.check(bad.RequiredParameterLinf, params={"d": 4}, quick=True, checks=["laws"]).passed


def test_the_structured_shifts_include_the_vertex_of_the_cube() -> None:
    from renyicert.checker.norm_ball import _structured_shifts

    shifts = _structured_shifts(16, np.inf, 0.5)
    assert any(np.allclose(row, 0.5) for row in shifts)
    assert np.allclose(np.abs(shifts).max(axis=1), 0.5)


def test_a_correct_plugin_with_divergence_r_over_b_passes_the_laws_in_full_mode() -> None:
    """Case 6 of issue 25: the location-scale law computed y * scale, which underflows to 0 at y = 5e-324, and then
    failed a correct D = r / b; distances where the law's own arithmetic loses the shift are left out."""
    from renyicert.checker.laws import location_scale_problem

    mechanism = bad.MaxDivergenceBoundLaplace(0.3)
    for y in (5e-324, 1e-310, 1e-300):  # hypothesis found the first in full mode
        assert location_scale_problem(mechanism, mechanism.replace(scale=1.0), 2.0, y) is None
    assert location_scale_problem(mechanism, mechanism.replace(scale=1.0), 2.0, 1e-250) is None
    report = renyicert.check(bad.MaxDivergenceBoundLaplace, quick=False, checks=["laws"])
    assert report["laws"].verdict is renyicert.Verdict.PASS, str(report)


def test_the_location_scale_law_still_fails_a_formula_that_ignores_the_scale() -> None:
    class NoScale(bad.MaxDivergenceBoundLaplace):
        name = "bad-no-scale-laplace"

        def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
            return distance / 0.3

    report = renyicert.check(NoScale, scale=0.7, quick=True, checks=["laws"])
    assert report["laws"].verdict is renyicert.Verdict.FAIL and "location-scale" in report["laws"].method
    from renyicert.checker.laws import location_scale_problem

    wrong = NoScale(0.7)
    for y in (1e-280, 1e-3, 2.0):  # small distances are still checked, down to where the product underflows
        assert location_scale_problem(wrong, wrong.replace(scale=1.0), 2.0, y) is not None, y
