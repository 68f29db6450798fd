"""Divergences derived from densities, against the published closed forms."""

from __future__ import annotations

import mpmath
import pytest
import sympy

import renyicert
from renyicert.checker.derivation import derive_divergence, symbols

from .. import reference


def test_gaussian_derivation_is_the_closed_form() -> None:
    derived = derive_divergence(renyicert.get_mechanism("gaussian", scale=1.0))
    s = symbols()
    assert sympy.simplify(derived.expression - (1 + s["t"]) * s["d"] ** 2 / (2 * s["scale"] ** 2)) == 0
    assert derived.normalised is True


@pytest.mark.parametrize("alpha,y", [(1.5, 0.1), (2.0, 3.0), (10.0, 0.5), (1.01, 7.0)])
def test_laplace_derivation_matches_the_mpmath_reference(alpha: float, y: float) -> None:
    derived = derive_divergence(renyicert.get_mechanism("laplace", scale=1.0))
    assert derived.normalised is True
    expected = reference.laplace_divergence(alpha, y)
    assert float(derived.at(alpha, 0.7 * y, 0.7)) == pytest.approx(float(expected), rel=1e-12)


def test_quadrature_is_used_when_sympy_cannot_integrate() -> None:
    class Logistic(renyicert.Mechanism):
        """Logistic noise: sympy finds no closed form for its Rényi divergence."""

        name = "logistic-test"

        def _sample(self, shape, generator, dtype, device):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
            raise NotImplementedError

        def _symbolic_log_density(self, x, scale):  # type: ignore[no-untyped-def]
            return -x / scale - 2 * sympy.log(1 + sympy.exp(-x / scale)) - sympy.log(scale)

    derived = derive_divergence(Logistic(1.0))
    assert derived.expression is None
    assert "quadrature" in derived.method
    # KL limit check against direct quadrature of the definition.
    with mpmath.workdps(30):

        def logpdf(z):  # type: ignore[no-untyped-def]
            return -z - 2 * mpmath.log1p(mpmath.exp(-z))

        a, d = mpmath.mpf(2), mpmath.mpf("0.5")
        direct = mpmath.log(
            mpmath.quad(lambda z: mpmath.exp(a * logpdf(z) + (1 - a) * logpdf(z - d)), [-mpmath.inf, 0, d, mpmath.inf])
        ) / (a - 1)
    assert float(derived.at(2.0, 0.5, 1.0)) == pytest.approx(float(direct), rel=1e-12)


def test_log_density_with_foreign_symbols_is_rejected() -> None:
    class Odd(renyicert.Mechanism):
        name = "odd-test"

        def _symbolic_log_density(self, x, scale):  # type: ignore[no-untyped-def]
            return -(x**2) * sympy.Symbol("k")

    with pytest.raises(ValueError, match="only x and scale"):
        derive_divergence(Odd(1.0))
