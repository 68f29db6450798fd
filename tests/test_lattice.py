"""Lattice noise: thresholds that never give an atom more than its mass, the draw definition, grid inputs, failures."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import torch

import renyicert
from renyicert.checker.lattice import _threshold_problems
from renyicert.confidence import top_two_bounds
from renyicert.lattice import (
    GUIDE_BITS,
    MAX_ATOMS,
    check_grid,
    failure_adjusted,
    grid_integers,
    lattice_noise,
    log2_failure,
)

SCALES = {"gaussian": (0.12, 0.25, 1.0), "laplace": (0.12, 0.25, 1.0)}


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
@pytest.mark.parametrize("grid", [16, 255])
def test_every_atom_gets_at_most_its_true_mass_exactly_at_three_scales(
    name: str, grid: int, capsys: pytest.CaptureFixture[str]
) -> None:
    for scale in SCALES[name]:
        noise = lattice_noise(renyicert.get_mechanism(name, scale=scale), grid)
        problem, evidence = _threshold_problems(noise)  # exact comparison at 80 digits, margin 2^-40
        assert problem is None, problem
        assert evidence["smallest_slack_integers"] > 0
        failure = noise.failure_mass
        assert 0 < failure < Fraction(noise.atoms + 1, 2**64) + Fraction(2 * noise.tail)
        with capsys.disabled():
            print(
                f"\n{name} scale {scale} grid 1/{grid}: {noise.atoms} atoms, failure mass per coordinate {float(failure):.3e} = 2^{log2_failure(noise):.2f}"
            )


def test_the_exact_check_catches_one_integer_too_many() -> None:
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 16)
    ends = noise.ends.copy()
    middle = noise.atoms // 2
    ends[middle:] += 1  # the middle atom one integer heavier: more than its true mass?
    heavier = type(noise)(noise.mechanism, noise.grid, noise.tail, noise.lowest, noise.start, ends, noise.guide)
    # Rounding down left under one integer of slack, so one more must fail the exact comparison (or the guide check first).
    problem, _ = _threshold_problems(heavier)
    assert problem is not None


def test_masses_match_the_rounded_pmf_to_float_precision() -> None:
    noise = lattice_noise(renyicert.get_mechanism("laplace", scale=0.25), 255)
    j = np.arange(noise.lowest, noise.highest + 1)
    b = 0.25

    def cdf(t: np.ndarray) -> np.ndarray:
        return np.where(t < 0, 0.5 * np.exp(t / b), 1 - 0.5 * np.exp(-t / b))

    true = cdf((j + 0.5) / 255) - cdf((j - 0.5) / 255)
    central = true > 1e-8  # numpy's 1 - F cancels in the tails, which the exact test above covers
    assert np.allclose(noise.masses()[central], true[central], rtol=1e-9)
    assert noise.masses().sum() == pytest.approx(1.0, abs=1e-14)


def test_draw_is_inversion_with_failures_at_both_ends() -> None:
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 16)
    start = noise.start + 2**63
    last = int(noise.ends[-1]) + 2**63
    words = np.array([0, start - 1, start, 2**63, last - 1, last, 2**64 - 1], dtype=np.uint64)
    atoms, failed = noise.draw(words)
    assert failed.tolist() == [True, True, False, False, False, True, True]
    masses = noise.integer_masses()
    first = noise.lowest + next(
        a for a, m in enumerate(masses) if m > 0
    )  # the tail's outermost atoms may get no integer at all
    last_atom = noise.lowest + max(a for a, m in enumerate(masses) if m > 0)
    assert atoms[2] == first and atoms[4] == last_atom and atoms[3] == 0


def test_guide_table_gives_each_bucket_its_first_candidate() -> None:
    noise = lattice_noise(renyicert.get_mechanism("laplace", scale=0.5), 255)
    assert GUIDE_BITS == 16 and noise.guide.shape == (1 << 16,)  # the C++ kernel's kGuideBits
    buckets = (np.arange(1 << 16, dtype=np.uint64) << np.uint64(48)) ^ np.uint64(2**63)
    assert np.array_equal(noise.guide, np.searchsorted(noise.ends, buckets.view(np.int64), side="right"))
    assert (np.diff(noise.guide) >= 0).all()


def test_grid_inputs_pass_and_off_grid_ones_are_refused_or_rounded() -> None:
    x = torch.arange(256, dtype=torch.float32) / 255
    assert torch.equal(grid_integers(x, 255), torch.arange(256))
    with pytest.raises(
        ValueError,
        match=r"1 of 3 input values are off the grid k / 255 \(the largest is 0\.5 grid steps away, at 0\.5\)",
    ):
        grid_integers(torch.tensor([0.0, 0.5, 1.0]), 255)
    assert grid_integers(torch.tensor([0.0, 0.5, 0.51]), 255, round_off_grid=True).tolist() == [0, 128, 130]
    with pytest.raises(
        ValueError, match=r"1 of 1 input values are off the grid k / 255 \(the largest is 0\.1 grid steps away"
    ):
        grid_integers(torch.tensor([(76 + 0.1) / 255]), 255)  # a tenth of a step is not float32 rounding
    with pytest.raises(ValueError, match="no longer exact in float32"):
        grid_integers(torch.tensor([1e6]), 255)


@pytest.mark.parametrize("bad", [0, -1, 2**16 + 1, 255.0, True, "255"])
def test_bad_grids_are_refused_naming_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=f"grid must be an integer in \\[1, 65536\\].*got {bad!r}"):
        check_grid(bad)


class NoCdfGaussian(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
    """A correct Gaussian that offers no CDF: no lattice mode."""

    name = "no-cdf-gaussian"
    _coordinate_cdf = renyicert.Mechanism._coordinate_cdf


def test_a_mechanism_without_a_cdf_is_refused_naming_the_method() -> None:
    assert not NoCdfGaussian(0.5).has_coordinate_cdf
    with pytest.raises(ValueError, match=r"NoCdfGaussian\._coordinate_cdf\(t\).*docs/writing-plugins.md"):
        lattice_noise(NoCdfGaussian(0.5), 255)
    with pytest.raises(ValueError, match="_coordinate_cdf"):
        renyicert.Smoothed(torch.nn.Linear(2, 2), NoCdfGaussian(0.5), 2, grid=255)


def test_a_cdf_that_is_not_a_probability_or_decreases_is_refused() -> None:
    gaussian = type(renyicert.get_mechanism("gaussian", scale=1.0))

    class Above(gaussian):  # type: ignore[misc, valid-type]
        name = "above-one"

        def _coordinate_cdf(self, t):  # type: ignore[no-untyped-def]
            return mpmath.ncdf(t, 0, self.scale) * 2

    with pytest.raises(ValueError, match="not a probability"):
        lattice_noise(Above(0.5), 16)


def test_too_many_atoms_are_refused() -> None:
    with pytest.raises(ValueError, match=f"more than {MAX_ATOMS} atoms"):
        lattice_noise(renyicert.get_mechanism("laplace", scale=1000.0), 2**16)


def test_failed_copies_count_against_the_top_class_only() -> None:
    counts, top, failed = np.array([[90, 7, 1]]), np.array([0]), np.array([2])
    assert failure_adjusted(counts, top, failed).tolist() == [[90, 9, 3]]
    # top_two_bounds with the failures: p1 from 90 of 100, the runner-up from 7 + 2 of 100.
    p1, p2 = top_two_bounds(counts, top, 0.01, "runner-up", failed)
    same_p1, _ = top_two_bounds(np.array([[90, 10]]), top, 0.01, "runner-up")
    _, same_p2 = top_two_bounds(
        np.array([[90, 9, 1]]), np.array([0]), 0.01, "runner-up"
    )  # three classes, n = 100, the runner-up at 9
    assert p1[0] == same_p1[0] and p2[0] == pytest.approx(min(same_p2[0], 1 - p1[0]))
    complement, _ = top_two_bounds(counts, top, 0.01, "complement", failed)
    assert complement[0] == top_two_bounds(np.array([[90, 10]]), top, 0.01, "complement")[0][0]
