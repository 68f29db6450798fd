from __future__ import annotations

import mpmath as mp
import numpy as np

from renyicert.special import expm1mx


def test_expm1mx_matches_mpmath_over_its_range() -> None:
    z = np.concatenate([np.logspace(-15, 2.8, 200), -np.logspace(-15, 2.8, 200), [0.5, -0.5, 0.4999999]])
    got = expm1mx(z)
    with mp.workdps(40):
        expected = np.array([float(mp.expm1(mp.mpf(v)) - mp.mpf(v)) for v in z])
    np.testing.assert_allclose(got, expected, rtol=2e-15)


def test_expm1mx_is_nonnegative() -> None:
    assert np.all(expm1mx(np.linspace(-50, 50, 10001)) >= 0)
