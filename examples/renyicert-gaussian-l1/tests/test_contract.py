"""The plugin's own test: renyicert's contract suite in one call."""

from renyicert_gaussian_l1 import GaussianL1

import renyicert
from renyicert.testing import check_mechanism_contract


def test_gaussian_l1_keeps_the_mechanism_contract() -> None:
    check_mechanism_contract(GaussianL1, quick=True)


def test_gaussian_l1_is_registered() -> None:
    assert isinstance(renyicert.get_mechanism("gaussian-l1", scale=0.5), GaussianL1)
