"""The boundary checks: counts capped at 2^62 (what the engine's int64 counters hold), subnormal scales refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import renyicert
from renyicert._validation import MAX_COUNT, check_positive_int, check_scale
from renyicert.cli import main


@pytest.mark.parametrize("value", [2**62 + 1, 2**63, 2**64, 10**20])
def test_counts_past_two_to_the_62_are_refused_naming_the_value(value: int) -> None:
    with pytest.raises(ValueError, match=f"n must be a positive integer of at most 2\\^62, got {value}"):
        check_positive_int(value, "n")


def test_counts_up_to_two_to_the_62_pass() -> None:
    assert check_positive_int(MAX_COUNT, "n") == 2**62
    assert check_positive_int(np.int64(7), "n") == 7
    for bad in (0, -1, True, 1.0, "3"):
        with pytest.raises(ValueError, match="n must be a positive integer, got"):
            check_positive_int(bad, "n")


def test_certify_refuses_an_n_past_two_to_the_62_before_drawing() -> None:
    smoothed = renyicert.Smoothed(torch.nn.Linear(3, 2), "gaussian", 2, scale=0.5, progress=False)
    with pytest.raises(ValueError, match="at most 2\\^62, got 9223372036854775808"):
        smoothed.certify(torch.zeros(3), n=2**63)


@pytest.mark.parametrize("scale", [5e-324, 1e-310])
def test_a_subnormal_scale_is_refused(scale: float, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=f"got the subnormal {scale!r}"):
        check_scale(scale)
    assert main(["radius", "--mechanism", "gaussian", "--scale", repr(scale), "--p1", "0.9", "--p2", "0.1"]) == 2
    assert "scale must be at least the smallest normal float64" in capsys.readouterr().err


def test_the_smallest_normal_scale_certifies_a_finite_radius() -> None:
    mechanism = renyicert.get_mechanism("gaussian", scale=2.2250738585072014e-308)
    radius = float(renyicert.certified_radius(mechanism, 0.9, 0.1).radius)
    assert 0 < radius < 1e-300
