"""The Rényi divergence derived from a mechanism's density, symbolically (sympy) or by quadrature (mpmath).

For one coordinate with density ``p`` and the shifted copy ``q(x) = p(x - d)``,
``D_order(P || Q) = log( integral p^order q^(1-order) dx ) / (order - 1)``.
:func:`derive_divergence` integrates that with sympy, splitting the real line
at the kinks of any ``Abs`` in the log-density so that sympy sees smooth
pieces; where sympy cannot integrate, the divergence is evaluated by mpmath
quadrature instead, and the result says which route was taken.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DerivedDivergence", "derive_divergence", "log_density_expression", "symbols"]

#: Working precision (decimal digits) of the mpmath evaluations.
MP_DIGITS = 40


def symbols() -> dict[str, Any]:
    """The sympy symbols of the derivation: ``x`` (real), ``d``, ``scale``, ``t = order - 1`` (positive)."""
    import sympy

    return {
        "x": sympy.Symbol("x", real=True),
        "d": sympy.Symbol("d", positive=True),
        "scale": sympy.Symbol("scale", positive=True),
        "t": sympy.Symbol("t", positive=True),
    }


def log_density_expression(mechanism: Any) -> Any:
    """The mechanism's one-coordinate log-density as a sympy expression in ``x`` and ``scale``."""
    import sympy

    sym = symbols()
    expression = sympy.sympify(mechanism._eval_symbolic_log_density(sym["x"], sym["scale"]))
    extra = expression.free_symbols - {sym["x"], sym["scale"]}
    if extra:
        raise ValueError(
            f"{type(mechanism).__name__}._symbolic_log_density may use only x and scale, got symbols {sorted(map(str, extra))}"
        )
    return expression


@dataclass(frozen=True)
class DerivedDivergence:
    """The true one-coordinate Rényi divergence of a mechanism, derived from its density.

    Attributes
    ----------
    expression
        ``D(order, d)`` as a sympy expression in the symbols of :func:`symbols`
        (``order = 1 + t``), or ``None`` where sympy could not integrate.
    method
        How the divergence was obtained, for the report.
    log_density
        The log-density it was derived from.
    normalised
        Whether the density was shown to integrate to 1 (``None``: undecided).
    """

    expression: Any
    method: str
    log_density: Any
    normalised: bool | None

    def at(self, order: float, distance: float, scale: float) -> Any:
        """``D(order, distance)`` at ``scale`` as an mpmath number (``MP_DIGITS`` digits)."""
        import mpmath
        import sympy

        sym = symbols()
        with mpmath.workdps(MP_DIGITS):
            if self.expression is not None:
                value = self.expression.subs(
                    {
                        sym["t"]: sympy.Float(order - 1.0, MP_DIGITS),
                        sym["d"]: sympy.Float(distance, MP_DIGITS),
                        sym["scale"]: sympy.Float(scale, MP_DIGITS),
                    }
                )
                return mpmath.mpf(sympy.N(value, MP_DIGITS))
            return _quadrature_divergence(self.log_density, order, distance, scale)

    def vectorised(self, scale: float) -> Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]:
        """A float64 numpy function ``(order, distance) -> D`` at ``scale``.

        Uses the derived expression through ``sympy.lambdify``; entries where that
        is not finite (overflow) or where there is no expression are evaluated
        with mpmath instead.
        """
        import sympy

        sym = symbols()
        fast = None
        if self.expression is not None:
            fast = sympy.lambdify((sym["t"], sym["d"]), self.expression.subs(sym["scale"], scale), modules="numpy")

        def divergence(order: NDArray[np.float64], distance: NDArray[np.float64]) -> NDArray[np.float64]:
            a, r = np.broadcast_arrays(np.asarray(order, dtype=np.float64), np.asarray(distance, dtype=np.float64))
            out = np.zeros(a.shape)
            positive = r > 0.0
            if fast is not None:
                with np.errstate(all="ignore"):
                    out[positive] = np.broadcast_to(fast(a[positive] - 1.0, r[positive]), a[positive].shape)
            slow = positive & ~np.isfinite(out) if fast is not None else positive
            for index in zip(*np.nonzero(slow)):
                out[index] = float(self.at(float(a[index]), float(r[index]), scale))
            return out

        return divergence


def _split_points(expression: Any, x: Any) -> list[Any]:
    """The kinks of ``Abs(...)`` terms of ``expression`` in ``x``, ordered (``d > 0``)."""
    import sympy

    points: set[Any] = set()
    for term in expression.atoms(sympy.Abs):
        points.update(sympy.solve(term.args[0], x))
    d = symbols()["d"]
    return sorted(points, key=lambda p: float(p.subs(d, 1)))


def _integrate_real_line(integrand_log: Any, x: Any) -> Any:
    """``integral exp(integrand_log) dx`` over the real line, piece by piece between kinks; ``None`` if sympy fails."""
    import sympy

    edges = [-sympy.oo, *_split_points(integrand_log, x), sympy.oo]
    total = sympy.Integer(0)
    for lower, upper in zip(edges[:-1], edges[1:]):
        if lower == -sympy.oo and upper == sympy.oo:
            inside = sympy.Integer(0)
        elif lower == -sympy.oo:
            inside = upper - 1
        elif upper == sympy.oo:
            inside = lower + 1
        else:
            inside = (lower + upper) / 2
        smooth = integrand_log.xreplace(
            {term: sympy.sign(term.args[0].subs(x, inside)) * term.args[0] for term in integrand_log.atoms(sympy.Abs)}
        )
        # manual=False: sympy's Meijer-G and Risch methods integrate the densities whose divergence has a closed form
        # (the Gaussian and Laplace plugins, the examples) in under a second; its rule-based "manual" integrator adds nothing
        # for those and spends 15-70 s failing on densities without one (logistic, sech), which the quadrature handles.
        piece = sympy.integrate(sympy.exp(sympy.expand(smooth)), (x, lower, upper), conds="none", manual=False)
        if piece.has(sympy.Integral) or piece.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan):
            return None
        total += piece
    return sympy.simplify(total)


def derive_divergence(mechanism: Any) -> DerivedDivergence:
    """Derive the one-coordinate Rényi divergence of ``mechanism`` from its density.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.checker.derivation import derive_divergence
    >>> derived = derive_divergence(renyicert.get_mechanism("gaussian", scale=1.0))
    >>> derived.expression
    d**2*(t + 1)/(2*scale**2)
    >>> float(derived.at(2.0, 1.0, 0.5))
    4.0
    """
    import sympy

    sym = symbols()
    x, d, t = sym["x"], sym["d"], sym["t"]
    log_p = log_density_expression(mechanism)
    try:
        mass = _integrate_real_line(log_p, x)
        normalised = None if mass is None else bool(sympy.simplify(mass - 1) == 0)
        if normalised is False and mass.free_symbols == set() and abs(float(mass) - 1.0) < 1e-12:
            normalised = True
    except Exception:  # sympy raises many kinds of errors on integrals it cannot do
        normalised = None
    order = 1 + t
    integrand = order * log_p + (1 - order) * log_p.subs(x, x - d)
    try:
        integral = _integrate_real_line(integrand, x)
    except Exception:
        integral = None
    if integral is None:
        return DerivedDivergence(
            None, f"mpmath quadrature at {MP_DIGITS} digits (sympy could not integrate)", log_p, normalised
        )
    expression = sympy.log(integral) / t
    return DerivedDivergence(expression, "sympy: integral of p^order q^(1-order) over the real line", log_p, normalised)


def _quadrature_divergence(log_density: Any, order: float, distance: float, scale: float) -> Any:
    """``D(order, distance)`` by mpmath quadrature, split at 0 and ``distance``."""
    import mpmath
    import sympy

    sym = symbols()
    log_p = sympy.lambdify(sym["x"], log_density.subs(sym["scale"], scale), modules="mpmath")
    with mpmath.workdps(MP_DIGITS):
        a = mpmath.mpf(order)
        shift = mpmath.mpf(distance)

        def integrand(z: Any) -> Any:
            return mpmath.exp(a * log_p(z) + (1 - a) * log_p(z - shift))

        integral = mpmath.quad(integrand, [-mpmath.inf, 0, shift, mpmath.inf])
        return mpmath.log(integral) / (a - 1)
