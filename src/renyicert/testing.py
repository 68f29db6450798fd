"""Tools for plugin authors' own test suites: hypothesis strategies and a one-call contract check.

Examples
--------
In a plugin's ``tests/test_contract.py``::

    from renyicert.testing import check_mechanism_contract
    from my_plugin import MyMechanism

    def test_my_mechanism_keeps_the_contract():
        check_mechanism_contract(MyMechanism, quick=True)

>>> import renyicert
>>> from renyicert.testing import check_mechanism_contract
>>> report = check_mechanism_contract("laplace", quick=True, checks=["closed-form"])
>>> report.passed
True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .checker import CheckReport, check
from .checker.strategies import distances, orders, probability_pairs, shift_vectors

__all__ = [
    "MechanismContractError",
    "check_mechanism_contract",
    "distances",
    "orders",
    "probability_pairs",
    "shift_vectors",
]


class MechanismContractError(AssertionError):
    """A mechanism failed :func:`check_mechanism_contract`; the message is the whole report."""

    def __init__(self, report: CheckReport) -> None:
        super().__init__(str(report))
        self.report = report


def check_mechanism_contract(
    mechanism: Any,
    *,
    scale: float = 0.3,
    params: dict[str, Any] | None = None,
    dimension: int | None = None,
    quick: bool = True,
    seed: int = 0,
    checks: Sequence[str] | None = None,
    allow_not_checked: bool = False,
) -> CheckReport:
    """Run :func:`renyicert.check` and raise :class:`MechanismContractError` (an ``AssertionError``) unless it passed.

    A check that could not run (no density to verify the divergence against, say)
    is not a pass: it breaks the contract too, unless ``allow_not_checked``, so a
    plugin whose divergence nothing verified cannot look verified in its own CI.

    Parameters
    ----------
    mechanism
        A mechanism instance, class or registered name.
    scale, params, dimension, quick, seed, checks
        As for :func:`renyicert.check` (``params``: the constructor's other arguments, ``{"d": 16}``).
    allow_not_checked
        With ``True``, checks that could not run or could not decide do not break the
        contract (failures still do): "passed what could be checked".

    Returns
    -------
    CheckReport
        The report, when the contract holds.
    """
    report = check(mechanism, scale=scale, params=params, dimension=dimension, quick=quick, seed=seed, checks=checks)
    if report.failures or (report.not_checked and not allow_not_checked):
        raise MechanismContractError(report)
    return report
