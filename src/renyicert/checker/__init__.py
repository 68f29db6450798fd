"""Checks of a mechanism plugin: its divergence formula, its laws, and the noise its samplers draw.

The layer between the core (mechanism, solver) and the workflow. One module per job:

``results``
    :class:`Verdict`, :class:`CheckResult`, :class:`CheckReport`, :class:`CheckContext`.
``suite``
    :func:`check`, which runs the checks in :data:`CHECKS` order, and :func:`verify_comparison_bounds`.
``optional``, ``comparison``
    The optional methods against the divergence; the comparison bounds where ``bound="best"`` uses them.
``formula``
    The closed form against the derived divergence, the worst shift of the norm ball, the laws.
``sampler``
    The sampler against the density and the divergence (statistics).
``derivation``
    The divergence derived from a density (sympy, mpmath).
``strategies``
    The hypothesis strategies the checks and :mod:`renyicert.testing` share.
"""

from __future__ import annotations

from .results import CheckContext, CheckReport, CheckResult, Verdict
from .suite import CHECKS, check, verify_comparison_bounds

__all__ = ["CHECKS", "CheckContext", "CheckReport", "CheckResult", "Verdict", "check", "verify_comparison_bounds"]
