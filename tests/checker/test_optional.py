"""Every optional method is checked against the required ones."""

from __future__ import annotations

import pytest

import renyicert
from renyicert import Verdict

from .. import bad_mechanisms as bad


def _optional(mechanism: type) -> renyicert.CheckResult:
    return renyicert.check(mechanism, quick=True, checks=["optional-methods"])["optional-methods"]


def test_an_inverse_one_percent_too_large_fails() -> None:
    # Before: it passed every check and certified 1% too far.
    result = _optional(bad.InflatedInverseGaussian)
    assert result.verdict is Verdict.FAIL
    assert result.evidence["method"] == "_radius_at" and "over-certifies" in result.evidence["problem"]


def test_an_inverse_that_is_too_small_fails_as_not_the_inverse() -> None:
    class ShortInverse(bad.Gaussian):
        name = "bad-short-inverse"

        def _radius_at(self, order, budget):  # type: ignore[no-untyped-def]
            return 0.99 * super()._radius_at(order, budget)

    result = _optional(ShortInverse)
    assert result.verdict is Verdict.FAIL and "not the largest" in result.evidence["problem"]


def test_radius_per_order_too_large_fails() -> None:
    result = _optional(bad.InflatedPerOrderGaussian)
    assert result.verdict is Verdict.FAIL and result.evidence["method"] == "_radius_per_order"


def test_a_max_divergence_below_the_limit_breaks_the_laws() -> None:
    result = renyicert.check(bad.SmallMaxDivergenceLaplace, quick=True, checks=["laws"])["laws"]
    assert result.verdict is Verdict.FAIL and "D(inf" in result.evidence["law"]


def test_a_tight_radius_one_percent_too_large_fails_against_neyman_pearson() -> None:
    result = _optional(bad.InflatedTightGaussian)
    assert result.verdict is Verdict.FAIL
    assert result.evidence["worst runner-up probability"] > result.evidence["worst top-class probability at the radius"]


def test_a_tight_radius_below_the_renyi_one_fails() -> None:
    result = _optional(bad.LooseTightLaplace)
    assert result.verdict is Verdict.FAIL and result.evidence["tight"] < result.evidence["renyi"]


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_the_builtins_pass_and_say_what_is_not_covered(name: str) -> None:
    result = renyicert.check(name, quick=True, checks=["optional-methods"])["optional-methods"]
    assert result.verdict is Verdict.PASS and "_radius_at" in result.method and "Neyman-Pearson" in result.method
    assert "at most the PixelDP radius the divergence proves" in result.method and "over the norm ball" in result.method
    assert any("_pixeldp_radius" in limit for limit in result.limits)


def test_a_mechanism_without_optional_methods_has_nothing_to_check() -> None:
    """No optional method is nothing left unverified (the solver inverts the checked divergence): a pass that says so."""
    result = renyicert.check(bad.QuarterGaussian, quick=True, checks=["optional-methods"])["optional-methods"]
    assert result.verdict is Verdict.PASS and result.method.startswith("nothing to check")


def test_a_pixeldp_radius_above_zero_at_a_tie_fails() -> None:
    class TiePixelDP(bad.Gaussian):
        name = "bad-tie-pixeldp"

        def _pixeldp_radius(self, p1, p2, delta):  # type: ignore[no-untyped-def]
            return super()._pixeldp_radius(p1, p2, delta) + 0.01

    result = _optional(TiePixelDP)
    assert result.verdict is Verdict.FAIL and result.evidence["method"] == "_pixeldp_radius"
    assert "p1 <= p2" in result.evidence["problem"]
