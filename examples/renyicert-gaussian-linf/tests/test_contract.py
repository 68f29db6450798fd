"""The plugin's own tests: renyicert's contract suite at several dimensions, and its parameter."""

import pickle

import pytest
from renyicert_gaussian_linf import GaussianLinf

import renyicert
from renyicert.testing import check_mechanism_contract


@pytest.mark.parametrize("d", [1, 4, 16, 64])
def test_gaussian_linf_keeps_the_mechanism_contract(d: int) -> None:
    check_mechanism_contract(GaussianLinf, params={"d": d}, quick=True)


def test_the_parameter_is_part_of_the_mechanism() -> None:
    m4, m16 = (
        renyicert.get_mechanism("gaussian-linf", scale=0.5, d=4),
        renyicert.get_mechanism("gaussian-linf", scale=0.5, d=16),
    )
    assert m4 != m16 and hash(m4) != hash(m16) and repr(m4) == "GaussianLinf(scale=0.5, d=4)"
    assert pickle.loads(pickle.dumps(m16)) == m16 and m4.replace(d=16) == m16


def test_radius_is_the_l2_radius_over_sqrt_d() -> None:
    gaussian = renyicert.get_mechanism("gaussian", scale=0.5)
    l2 = float(renyicert.certified_radius(gaussian, 0.9, 0.1).radius)
    assert float(renyicert.certified_radius(GaussianLinf(0.5, d=16), 0.9, 0.1).radius) == pytest.approx(
        l2 / 4, rel=1e-12
    )
