"""The sampler checks draw through every path certify can use, and fail a path whose noise is not the density's."""

from __future__ import annotations

import numpy as np
import pytest

import renyicert
from renyicert import Verdict
from renyicert.checker.paths import noise_paths

from .. import bad_mechanisms as bad


def test_the_paths_of_a_fused_mechanism_are_those_certify_can_take() -> None:
    paths, notes = noise_paths(renyicert.get_mechanism("gaussian", scale=0.3), include_interpreted_triton=False)
    names = [path.name for path in paths]
    assert names[0] == "sample()" and any("eager" in n for n in names)
    assert any("native" in n for n in names) or any("native" in n for n in notes)
    assert any("Triton" in n for n in notes) and any("compiled" in n for n in notes)


def test_a_fused_kind_other_than_the_density_fails_on_the_fused_paths() -> None:
    # Before: sample() was right, so every check passed, and certify drew Laplace noise.
    report = renyicert.check(bad.LaplaceFusedGaussian, quick=True, checks=["sampler-density", "sampler-divergence"])
    result = report["sampler-density"]
    assert result.verdict is Verdict.FAIL, str(report)
    assert "fused 'laplace'" in result.evidence["path"]
    assert report["sampler-divergence"].verdict is Verdict.FAIL


def test_a_transform_drawing_half_the_scale_fails_with_the_measured_difference() -> None:
    result = renyicert.check(bad.HalfTransformGaussian, scale=0.3, quick=True, checks=["sampler-density"])[
        "sampler-density"
    ]
    assert result.verdict is Verdict.FAIL
    assert "_transform_uniform" in result.evidence["path"]
    measured = result.evidence["measured"]
    std = float(measured.split("std ")[1].split(",")[0])
    assert std == pytest.approx(0.15, rel=0.02) and "density: 0.3" in measured
    assert result.evidence["std ratio"] == pytest.approx(0.5, rel=0.02)


def test_a_right_transform_passes_on_its_path() -> None:
    report = renyicert.check(bad.RightTransformGaussian, quick=True, checks=["sampler-density", "sampler-divergence"])
    assert report.passed, str(report)
    assert any("_transform_uniform" in name for name in report["sampler-density"].evidence["paths"])


def test_without_a_density_the_paths_are_compared_with_sample() -> None:
    class NoDensityLaplaceFused(bad.NoDensityGaussian):
        name = "bad-no-density-laplace-fused"
        fused_noise = "laplace"

    result = renyicert.check(NoDensityLaplaceFused, quick=True, checks=["sampler-density"])["sampler-density"]
    assert result.verdict is Verdict.FAIL
    assert "differs from sample()" in result.evidence["problem"]
    assert renyicert.check(bad.NoDensityGaussian, quick=True, checks=["sampler-density"]).passed


@pytest.mark.parametrize(
    "mechanism",
    [bad.BroadcastSampleGaussian, bad.ScalarSampleGaussian, bad.IntegerSampleGaussian, bad.NaNSampleGaussian],
)
def test_a_sampler_certify_would_misuse_fails_the_check(mechanism: type) -> None:
    result = renyicert.check(mechanism, quick=True, checks=["sampler-density"])["sampler-density"]
    assert result.verdict is Verdict.FAIL
    assert "path" in result.evidence or "problem" in result.evidence


def test_full_mode_draws_the_triton_kernel_under_the_interpreter() -> None:
    pytest.importorskip("triton")
    paths, _ = noise_paths(renyicert.get_mechanism("laplace", scale=0.3))
    triton_path = next(path for path in paths if "Triton" in path.name)
    noise = triton_path.draw(triton_path.sample_count(10_000, 4), 4, 3)
    eager = next(path for path in paths if "eager" in path.name).draw(noise.shape[0], 4, 3)
    assert noise.shape == eager.shape and abs(noise - eager).max() < 1e-5  # the same counter-based noise


@pytest.mark.parametrize(
    ("mechanism", "problem"),
    [
        (bad.AntitheticGaussian, "copies 1 apart are correlated"),
        (bad.RepeatedCopiesGaussian, "copies 1 apart are correlated"),
    ],
)
def test_copies_that_depend_on_each_other_fail_on_every_path(mechanism: type, problem: str) -> None:
    """Case 3: antithetic copies (row 2k+1 = -row 2k) passed, since independence was tested between coordinates only;
    the Clopper-Pearson bound then misses p1 far more often than alpha."""
    result = renyicert.check(mechanism, quick=True, checks=["sampler-density"])["sampler-density"]
    assert result.verdict is Verdict.FAIL, str(result)
    assert problem in result.evidence["problem"] and "independent draws" in result.evidence["problem"]
    assert result.evidence["path"].startswith("sample()")


def test_independent_copies_pass_the_copies_test() -> None:
    from renyicert.checker.sampler import _copies_dependence

    rng = np.random.default_rng(3)
    assert _copies_dependence(rng.normal(size=(50_000, 4)), 4.4) is None
    antithetic = rng.normal(size=(50_000, 4))
    antithetic[1::2] = -antithetic[::2]
    assert "copies 1 apart" in _copies_dependence(antithetic, 4.4)["problem"]
    repeated = rng.normal(size=(50_000, 4))
    repeated[40_000:] = repeated[:10_000]  # a generator whose stream restarts after 40,000 copies: no lag sees it
    assert "repeated exactly" in _copies_dependence(repeated, 4.4)["problem"]
