from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import renyicert
from renyicert import Mechanism


class Minimal(Mechanism):
    """Only the two required methods."""

    name = "minimal-test"
    norm = 2

    def _sample(self, shape, generator, dtype, device):  # type: ignore[no-untyped-def]
        return self.scale * torch.randn(shape, generator=generator, dtype=dtype, device=device)

    def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
        return order * distance**2 / (2 * self.scale**2)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_scale_must_be_finite_and_positive(scale: float) -> None:
    with pytest.raises(ValueError, match=f"scale must be finite and > 0, got {scale!r}"):
        Minimal(scale)


def test_scale_must_be_a_number() -> None:
    with pytest.raises(TypeError, match="scale must be a real number"):
        Minimal("big")  # type: ignore[arg-type]


def test_optional_parts_are_detected() -> None:
    minimal = Minimal(1.0)
    assert not minimal.has_max_divergence and not minimal.has_closed_form_inverse
    assert not minimal.has_tight_radius and not minimal.has_linear_order
    gaussian = renyicert.get_mechanism("gaussian", scale=1.0)
    assert gaussian.has_linear_order and gaussian.has_tight_radius and gaussian.has_pixeldp_radius


def test_generic_root_find_matches_the_closed_form() -> None:
    # Minimal has the Gaussian's divergence but no inverse: the generic solver must agree.
    p1 = np.array([0.6, 0.9, 0.99, 0.999999, 0.5 + 1e-6])
    p2 = np.array([0.4, 0.05, 0.01, 1e-9, 0.5 - 1e-6])
    generic = renyicert.certified_radius(Minimal(0.5), p1, p2).radius
    closed = renyicert.certified_radius(renyicert.get_mechanism("gaussian", scale=0.5), p1, p2).radius
    np.testing.assert_allclose(generic, closed, rtol=1e-9)


def test_sampling_is_reproducible_from_a_seed() -> None:
    mechanism = Minimal(2.0)
    a = mechanism.sample((3, 4), seed=7)
    b = mechanism.sample((3, 4), seed=7)
    assert a.shape == (3, 4) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, mechanism.sample((3, 4), seed=8))
    generator = torch.Generator().manual_seed(7)
    assert torch.equal(a, mechanism.sample((3, 4), generator=generator))
    assert mechanism.sample(5, seed=0, dtype=torch.float64).dtype == torch.float64


def test_sampling_rejects_bad_arguments() -> None:
    mechanism = Minimal(1.0)
    with pytest.raises(ValueError, match="not both"):
        mechanism.sample(3, seed=1, generator=torch.Generator())
    with pytest.raises(ValueError, match="non-negative sizes"):
        mechanism.sample((2, -1))
    with pytest.raises(TypeError, match="floating-point"):
        mechanism.sample(3, dtype=torch.int64)


def test_divergence_validates_and_preserves_the_array_type() -> None:
    mechanism = Minimal(1.0)
    assert isinstance(mechanism.divergence(np.array([2.0]), 1.0), np.ndarray)
    out = mechanism.divergence(torch.tensor([2.0, 3.0]), 1.0)
    assert isinstance(out, torch.Tensor)
    torch.testing.assert_close(out, torch.tensor([1.0, 1.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="order must be in \\[1, inf\\], got 0.5"):
        mechanism.divergence(0.5, 1.0)
    with pytest.raises(ValueError, match="distance must be >= 0, got -1.0"):
        mechanism.divergence(2.0, -1.0)
    with pytest.raises(ValueError, match="max-divergence"):
        mechanism.divergence(math.inf, 1.0)


def test_missing_required_methods_say_what_to_implement() -> None:
    class Empty(Mechanism):
        name = "empty"

    with pytest.raises(NotImplementedError, match="_divergence"):
        Empty(1.0).divergence(2.0, 1.0)
    with pytest.raises(NotImplementedError, match="_sample"):
        Empty(1.0).sample(3)


def test_mechanisms_compare_by_type_and_scale() -> None:
    assert Minimal(1.0) == Minimal(1.0) and Minimal(1.0) != Minimal(2.0)
    assert len({Minimal(1.0), Minimal(1.0)}) == 1
    assert repr(Minimal(0.5)) == "Minimal(scale=0.5)"


# ------------------------------------------------------------------ parameters
def test_parameters_are_part_of_equality_hash_and_repr() -> None:
    from .bad_mechanisms import LinfGaussian

    d4, d16 = LinfGaussian(0.5, d=4), LinfGaussian(0.5, d=16)
    # Before: d = 4 and d = 16 compared equal and printed the same.
    assert d4 != d16 and hash(d4) != hash(d16)
    assert repr(d4) == "LinfGaussian(scale=0.5, d=4)" and repr(d16) == "LinfGaussian(scale=0.5, d=16)"
    assert d4 == LinfGaussian(0.5, d=4) and hash(d4) == hash(LinfGaussian(0.5, d=4))
    assert d4.get_params() == {"scale": 0.5, "d": 4}
    assert LinfGaussian.parameter_names() == ("scale", "d")


def test_replace_keeps_the_other_parameters_and_refuses_unknown_ones() -> None:
    from .bad_mechanisms import LinfGaussian

    m = LinfGaussian(0.5, d=4)
    assert m.replace(scale=1.0) == LinfGaussian(1.0, d=4)
    assert m.replace(d=8).get_params() == {"scale": 0.5, "d": 8}
    with pytest.raises(ValueError, match="has no parameter 'sigma'; its parameters are \\['scale', 'd'\\]"):
        m.replace(sigma=2.0)


def test_mechanisms_pickle_with_their_parameters() -> None:
    import pickle

    from .bad_mechanisms import LinfGaussian

    m = LinfGaussian(0.25, d=7)
    assert pickle.loads(pickle.dumps(m)) == m
    laplace = renyicert.get_mechanism("laplace", scale=0.5)
    assert pickle.loads(pickle.dumps(laplace)) == laplace


def test_a_parameter_that_is_not_stored_is_named() -> None:
    class Forgetful(Minimal):
        name = "forgetful"

        def __init__(self, scale: float, width: int = 3) -> None:
            super().__init__(scale)

    with pytest.raises(TypeError, match="does not store it: set self.width"):
        Forgetful(1.0).get_params()


def test_get_mechanism_names_unknown_and_missing_parameters() -> None:
    from renyicert.registry import build_mechanism

    from .bad_mechanisms import RequiredParameterLinf

    with pytest.raises(ValueError, match="gaussian has no parameter 'd'; its parameters are \\['scale'\\]"):
        renyicert.get_mechanism("gaussian", scale=0.5, d=4)
    with pytest.raises(ValueError, match="needs the parameter 'd'"):
        build_mechanism(RequiredParameterLinf, 0.5)
    assert build_mechanism(RequiredParameterLinf, 0.5, {"d": 3}).d == 3


def test_the_builtins_have_only_a_scale_and_no_dimension() -> None:
    for name in ("gaussian", "laplace"):
        m = renyicert.get_mechanism(name, scale=0.5)
        assert m.get_params() == {"scale": 0.5} and m.dimension is None
