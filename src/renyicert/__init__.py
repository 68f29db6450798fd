"""renyicert: certified robustness by randomized smoothing with Rényi-divergence certificates.

Wrap noise into a :class:`Mechanism`, estimate the top-two class probabilities
of the smoothed classifier, and :func:`certified_radius` gives the radius
within which its prediction provably cannot change (Li et al., NeurIPS 2019).
New noise distributions are plugins (see :mod:`renyicert.hookspecs`).

Examples
--------
>>> import renyicert
>>> laplace = renyicert.get_mechanism("laplace", scale=0.5)
>>> radius, order = renyicert.certified_radius(laplace, p1=0.9, p2=0.1)
>>> round(float(radius), 6)
0.804719
"""

from __future__ import annotations

from .budget import renyi_budget
from .certificate import ABSTAIN, Certificate
from .checker import CheckReport, CheckResult, Verdict, check, verify_comparison_bounds
from .comparison_radii import pixeldp_radius, tight_radius
from .hookspecs import hookimpl
from .mechanism import Mechanism
from .radii import probability_threshold
from .registry import (
    DuplicateMechanismError,
    MechanismInfo,
    MechanismRegistry,
    PluginLoadError,
    UnknownMechanismError,
    available_mechanisms,
    get_mechanism,
    register,
    unregister,
)
from .sequential import SequentialCertificate
from .smoothing import Smoothed
from .solver import RadiusResult, certified_radius, radius_at_order

__version__ = "0.1.0"

__all__ = [
    "ABSTAIN",
    "Certificate",
    "CheckReport",
    "CheckResult",
    "DuplicateMechanismError",
    "Mechanism",
    "MechanismInfo",
    "MechanismRegistry",
    "PluginLoadError",
    "RadiusResult",
    "SequentialCertificate",
    "Smoothed",
    "UnknownMechanismError",
    "available_mechanisms",
    "certified_radius",
    "check",
    "get_mechanism",
    "hookimpl",
    "pixeldp_radius",
    "probability_threshold",
    "radius_at_order",
    "register",
    "renyi_budget",
    "tight_radius",
    "unregister",
    "Verdict",
    "verify_comparison_bounds",
]
