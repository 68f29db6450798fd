"""The smoothing wrapper: sound on models with known probabilities, reproducible, strict about input."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.stats import norm

import renyicert
from renyicert import ABSTAIN, Smoothed


def threshold_model() -> torch.nn.Module:
    """Logits (x0, -x0): class 0 exactly when the first coordinate is positive."""
    model = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    return model


@pytest.mark.parametrize(
    "name,p_true",
    [("gaussian", lambda x0, s: norm.cdf(x0 / s)), ("laplace", lambda x0, s: 1.0 - 0.5 * math.exp(-x0 / s))],
)
def test_certificates_are_sound_on_a_model_with_known_probabilities(name: str, p_true) -> None:  # type: ignore[no-untyped-def]
    scale, x0, alpha, runs = 0.5, 0.4, 0.05, 300
    p1 = p_true(x0, scale)
    smoothed = Smoothed(
        threshold_model(), name, num_classes=2, scale=scale, input_shape=(2,), backend="eager", progress=False
    )
    xs = torch.tensor([[x0, 0.0]]).repeat(runs, 1)
    certificates = smoothed.certify(xs, n0=20, n=300, alpha=alpha, seed=1)
    lower = np.array([c.p1_lower for c in certificates])
    misses = int((lower > p1).sum())
    # Each run covers with probability >= 1 - alpha: more than 2x the expected misses is a broken bound.
    assert misses <= 2 * alpha * runs, misses
    truth = float(renyicert.certified_radius(smoothed.mechanism, p1, 1 - p1).radius)
    for c in certificates:
        if c.p1_lower <= p1 and c.p2_upper >= 1 - p1:
            assert c.radius <= truth * (1 + 1e-12)
    assert all(c.label in (0, ABSTAIN) for c in certificates)
    assert np.mean([c.radius for c in certificates]) > 0.2 * truth


def test_batch_certification_equals_one_by_one_with_seed_plus_index() -> None:
    smoothed = Smoothed(
        threshold_model(), "laplace", num_classes=2, scale=0.3, backend="eager", progress=False, batch_size=37
    )
    xs = torch.tensor([[0.5, 0.0], [-0.2, 1.0], [0.05, 0.0]])
    together = smoothed.certify(xs, n0=50, n=500, seed=11)
    for i in range(3):
        alone = smoothed.certify(xs[i], n0=50, n=500, seed=11 + i, batch_size=64)
        assert (alone.counts, alone.label, alone.radius) == (together[i].counts, together[i].label, together[i].radius)


def test_same_seed_same_certificate_and_generator_reproducible() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=0.5, backend="eager", progress=False)
    x = torch.tensor([0.3, 0.0])
    a, b = smoothed.certify(x, n=400, seed=3), smoothed.certify(x, n=400, seed=3)
    assert (a.counts, a.radius, a.p1_lower) == (b.counts, b.radius, b.p1_lower)
    c = smoothed.certify(x, n=400, generator=torch.Generator().manual_seed(9))
    d = smoothed.certify(x, n=400, generator=torch.Generator().manual_seed(9))
    assert c.counts == d.counts
    assert smoothed.certify(x, n=400, seed=4).counts != a.counts


def test_abstains_on_the_decision_boundary() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=0.5, backend="eager", progress=False)
    x = torch.tensor([0.0, 0.0])
    cert = smoothed.certify(x, n=1000, seed=0)
    assert cert.label == ABSTAIN and cert.abstained and cert.radius == 0.0
    assert smoothed.predict(x, n=1000, seed=0) == ABSTAIN
    assert smoothed.predict(torch.tensor([2.0, 0.0]), n=200, seed=0) == 0


def test_runner_up_bound_beats_the_complement_with_many_classes() -> None:
    model = torch.nn.Linear(3, 4, bias=False)
    with torch.no_grad():  # class 0 wins at x = (1, 0, 0); the rest share what is left
        model.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, -1, -1]]))
    smoothed = Smoothed(model, "gaussian", num_classes=4, scale=1.0, backend="eager", progress=False)
    x = torch.tensor([2.0, 0.0, 0.0])
    runner_up = smoothed.certify(x, n=5000, seed=0, p2_mode="runner-up")
    complement = smoothed.certify(x, n=5000, seed=0, p2_mode="complement")
    assert runner_up.counts == complement.counts
    assert runner_up.radius > complement.radius > 0
    tight = smoothed.certify(x, n=5000, seed=0, p2_mode="complement", bound="tight")
    assert tight.radius >= complement.radius and math.isnan(tight.order)


def test_model_mode_is_eval_inside_and_restored_after() -> None:
    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = threshold_model()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append((self.training, torch.is_inference_mode_enabled()))
            return self.inner(x)

    model = Recorder().train()
    Smoothed(model, "gaussian", num_classes=2, scale=0.5, backend="eager", progress=False).certify(
        torch.tensor([1.0, 0.0]), n0=10, n=10, seed=0
    )
    assert model.training
    assert seen and all(mode == (False, True) for mode in seen)


def test_fallback_sampler_for_mechanisms_without_elementwise_noise() -> None:
    from .bad_mechanisms import NoDensityGaussian

    class Plain(NoDensityGaussian):
        name = "plain-gaussian"
        fused_noise = None

    smoothed = Smoothed(threshold_model(), Plain(0.5), num_classes=2, progress=False)
    a = smoothed.certify(torch.tensor([1.0, 0.0]), n=300, seed=5)
    assert a.label == 0 and a.counts == smoothed.certify(torch.tensor([1.0, 0.0]), n=300, seed=5).counts


def test_own_sampler_draws_fresh_noise_for_the_estimation_phase() -> None:
    """Selection and estimation must be independent: no batch of either may start from the other's seed."""
    from .bad_mechanisms import NoDensityGaussian

    seeds_used = []

    class Recorded(NoDensityGaussian):
        name = "recorded-gaussian"
        fused_noise = None

        def sample(self, shape, *, generator=None, dtype=None, device=None):  # type: ignore[no-untyped-def]
            seeds_used.append(generator.initial_seed())
            return super().sample(shape, generator=generator, dtype=dtype, device=device)

    smoothed = Smoothed(threshold_model(), Recorded(0.5), num_classes=2, progress=False, batch_size=64)
    smoothed.certify(torch.tensor([[1.0, 0.0], [0.5, 0.0]]), n0=30, n=300, seed=5)
    assert len(seeds_used) == 1 + 10 and len(set(seeds_used)) == len(
        seeds_used
    )  # 60 selection rows, then 600 estimation rows


def test_compile_falls_back_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("no compiler here")

    smoothed = Smoothed(
        threshold_model(),
        "gaussian",
        num_classes=2,
        scale=0.5,
        input_shape=(2,),
        compile=True,
        backend="eager",
        progress=False,
    )
    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="compiling the model failed"):
        cert = smoothed.certify(torch.tensor([1.0, 0.0]), n=200, seed=0)
    reference = Smoothed(threshold_model(), "gaussian", num_classes=2, scale=0.5, backend="eager", progress=False)
    assert cert.counts == reference.certify(torch.tensor([1.0, 0.0]), n=200, seed=0).counts


class _WrongOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(x.shape[0], 3)


class _NaNOutput(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((x.shape[0], 2), float("nan"))


@pytest.mark.parametrize(
    "make,call,error,match",
    [
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5, input_shape=(2,)),
            lambda s: s.certify(torch.zeros(3)),
            ValueError,
            r"x has shape \(3,\); expected one input of shape \(2,\)",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.tensor([float("nan"), 0.0])),
            ValueError,
            "NaN or inf",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.tensor([1, 0])),
            TypeError,
            "floating-point",
        ),
        (
            lambda: Smoothed(_WrongOutput(), "gaussian", 2, scale=0.5, input_shape=(2,)),
            lambda s: s.certify(torch.zeros(2), n=10),
            ValueError,
            r"expected \(\d+, 2\)",
        ),
        (
            lambda: Smoothed(_NaNOutput(), "gaussian", 2, scale=0.5, input_shape=(2,)),
            lambda s: s.certify(torch.zeros(2), n=10),
            ValueError,
            "non-finite logits",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), n0=0),
            ValueError,
            "n0 must be a positive integer, got 0",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), n=-5),
            ValueError,
            "n must be a positive integer, got -5",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), batch_size=0),
            ValueError,
            "batch_size must be a positive integer or 'auto', got 0",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), alpha=1.5),
            ValueError,
            r"alpha must be in \(0, 1\), got 1.5",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), batch_size="big"),
            ValueError,
            "batch_size must be a positive integer or 'auto', got 'big'",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5, batch_size=2.5),
            lambda s: None,
            ValueError,
            "batch_size must be a positive integer or 'auto', got 2.5",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), share_noise="yes"),
            TypeError,
            "share_noise must be True or False, got 'yes'",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.predict(torch.zeros(2), n=10, alpha=0.0),
            ValueError,
            r"alpha must be in \(0, 1\), got 0.0",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), bound="cohen"),
            ValueError,
            "bound must be",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), p2_mode="max"),
            ValueError,
            "p2_mode must be one of",
        ),
        (
            lambda: Smoothed(threshold_model(), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2), seed=-1),
            ValueError,
            "seed must be a non-negative integer, got -1",
        ),
        (
            lambda: Smoothed(threshold_model().to("meta"), "gaussian", 2, scale=0.5),
            lambda s: s.certify(torch.zeros(2)),
            ValueError,
            "model is on meta but x is on cpu",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(make, call, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        call(make())


def test_bad_construction_gets_a_clear_error() -> None:
    with pytest.raises(renyicert.UnknownMechanismError, match="no-such"):
        Smoothed(threshold_model(), "no-such", 2, scale=0.5)
    with pytest.raises(ValueError, match="give scale="):
        Smoothed(threshold_model(), "gaussian", 2)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        Smoothed(lambda x: x, "gaussian", 2, scale=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        Smoothed(threshold_model(), "gaussian", 0, scale=0.5)


def test_batch_rows_are_rounded_to_few_sizes_with_little_padding() -> None:
    from renyicert._engine.engine import round_rows

    sizes = [round_rows(v) for v in range(1, 70_000)]
    assert all(v <= s <= 1.125 * v for v, s in zip(range(1, 70_000), sizes))
    assert len({s for s in sizes if 4096 <= s < 8192}) <= 8  # few shapes per octave: few compilations


def test_shared_noise_gives_each_input_its_certificate_alone_with_the_base_seed() -> None:
    """share_noise: input i gets the draws it would get alone with `seed`; native and eager samplers agree."""
    xs = torch.tensor([[0.5, 0.0], [-0.2, 1.0], [0.05, 0.0], [0.3, -1.0], [0.0, 0.2]])
    for backend in ("auto", "eager"):
        smoothed = Smoothed(
            threshold_model(), "laplace", num_classes=2, scale=0.3, backend=backend, progress=False, batch_size=37
        )
        together = smoothed.certify(xs, n0=50, n=500, seed=11, share_noise=True)
        for i in range(len(xs)):
            alone = smoothed.certify(xs[i], n0=50, n=500, seed=11, batch_size=64)
            assert (alone.counts, alone.label, alone.radius) == (
                together[i].counts,
                together[i].label,
                together[i].radius,
            )
        counts = smoothed.class_counts(xs, 300, seed=5, share_noise=True)
        assert counts.tolist() == [smoothed.class_counts(x, 300, seed=5).tolist() for x in xs]
    assert smoothed.predict(xs, 300, seed=5, share_noise=True) == [smoothed.predict(x, 300, seed=5) for x in xs]


class _SlowAbove64(torch.nn.Module):
    """A fixed 2 ms per call, plus 50 us per row beyond 64 rows: cheapest per row at exactly 64."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import time

        time.sleep(0.002 + (50e-6 * x.shape[0] if x.shape[0] > 64 else 0.0))
        return torch.stack([x[:, 0], -x[:, 0]], dim=1)


def test_auto_batch_size_picks_the_fastest_size_per_copy_and_counts_as_that_size() -> None:
    from renyicert.smoothing import AUTO_BATCH_SIZES

    smoothed = Smoothed(_SlowAbove64(), "gaussian", 2, scale=0.5, input_shape=(2,), batch_size="auto", progress=False)
    x = torch.tensor([[0.2, 0.0], [-0.1, 0.0]])
    counts = smoothed.class_counts(x, 300, seed=1)
    assert list(smoothed.tuned_batch_sizes.values()) == [64] and 64 in AUTO_BATCH_SIZES
    assert counts.tolist() == smoothed.class_counts(x, 300, seed=1, batch_size=64).tolist()
    assert counts.tolist() == smoothed.class_counts(x, 300, seed=1, batch_size=1000).tolist()
    fast = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, input_shape=(2,), progress=False)
    fast.certify(x, n0=10, n=100, seed=0, batch_size="auto")
    assert set(fast.tuned_batch_sizes.values()) <= set(AUTO_BATCH_SIZES) and len(fast.tuned_batch_sizes) == 1


def test_progress_bar_over_samples_only_when_asked_or_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    x = torch.tensor([1.0, 0.0])
    Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=True).certify(
        x, n0=10, n=2000, seed=0, batch_size=500
    )
    shown = capsys.readouterr().err
    assert "certify" in shown and "2.01k" in shown  # a bar over the n0 + n samples
    for progress in (None, False):  # stderr is captured here, not a terminal
        Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=progress).certify(
            x, n0=10, n=2000, seed=0, batch_size=500
        )
        assert capsys.readouterr().err == ""


def _certify_from_counts(
    monkeypatch: pytest.MonkeyPatch, selection: list[int], estimation: list[int], **options: object
) -> renyicert.Certificate:
    """Certify with the engine's counts replaced by ``selection`` (n0 phase) and ``estimation`` (n phase)."""
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)

    def counts(x: object, keys: object, phases: list[int], **_: object) -> list[np.ndarray]:
        assert phases == [sum(selection), sum(estimation)]
        return [np.array([selection]), np.array([estimation])]

    monkeypatch.setattr(smoothed._engine, "count_votes", counts)
    return smoothed.certify(torch.zeros(2), n0=sum(selection), n=sum(estimation), **options)  # type: ignore[arg-type]


def test_certify_selects_the_class_from_the_selection_counts_only(monkeypatch: pytest.MonkeyPatch) -> None:
    # Selection says class 1; the estimation counts favour class 0. Taking the top class from the estimation
    # counts (the selection-bias error) would certify class 0; the algorithm bounds class 1 and abstains.
    cert = _certify_from_counts(monkeypatch, [10, 90], [900, 100])
    assert cert.label == ABSTAIN and cert.radius == 0.0
    assert cert.p1_lower < 0.12 < 0.88 < cert.p2_upper  # p1 is class 1's share of the estimation counts
    agreeing = _certify_from_counts(monkeypatch, [90, 10], [900, 100])
    assert agreeing.label == 0 and agreeing.radius > 0.0


def test_certify_abstains_when_the_bounds_touch(monkeypatch: pytest.MonkeyPatch) -> None:
    # p1_lower == p2_upper separates nothing: abstain (a ">=" would certify a tie).
    monkeypatch.setattr(
        renyicert.smoothing,
        "top_two_bounds",
        lambda counts, top, alpha, mode, failed: (np.array([0.4]), np.array([0.4])),
    )
    cert = _certify_from_counts(monkeypatch, [90, 10], [900, 100])
    assert cert.label == ABSTAIN and cert.radius == 0.0 and math.isnan(cert.order)
    monkeypatch.setattr(
        renyicert.smoothing,
        "top_two_bounds",
        lambda counts, top, alpha, mode, failed: (np.array([0.4 + 1e-12]), np.array([0.4])),
    )
    separated = _certify_from_counts(monkeypatch, [90, 10], [900, 100])
    assert separated.label == 0 and separated.radius > 0.0


def _predict_from_counts(monkeypatch: pytest.MonkeyPatch, counts: list[list[int]], alpha: float) -> object:
    smoothed = Smoothed(torch.nn.Linear(2, len(counts[0])), "gaussian", len(counts[0]), scale=0.5, progress=False)
    monkeypatch.setattr(
        smoothed, "_counts", lambda x, n, *options: (np.array(counts), np.zeros(len(counts), dtype=np.int64), False)
    )
    return smoothed.predict(torch.zeros(len(counts), 2), n=int(sum(counts[0])), alpha=alpha)


def test_predict_applies_cohens_binomial_test_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy.stats import binomtest

    at = binomtest(60, 100, 0.5).pvalue  # p-value <= alpha predicts; a larger one abstains
    assert _predict_from_counts(monkeypatch, [[60, 40, 0]], at) == [0]
    assert _predict_from_counts(monkeypatch, [[60, 40, 0]], at * (1 - 1e-9)) == [ABSTAIN]
    assert _predict_from_counts(monkeypatch, [[0, 0, 0]], 0.5) == [ABSTAIN]  # no votes at all
    assert _predict_from_counts(monkeypatch, [[10, 90, 0], [0, 3, 97]], 0.001) == [1, 2]
    # One class: no runner-up, so the test is of 20 votes against 0 (p = 2^-19), not 20 against 1 (p = 2.1e-5).
    assert _predict_from_counts(monkeypatch, [[20]], 1e-5) == [0]


def test_predict_counts_failed_lattice_copies_for_the_runner_up(monkeypatch: pytest.MonkeyPatch) -> None:
    smoothed = Smoothed(torch.nn.Linear(2, 2), "gaussian", 2, scale=0.5, progress=False)
    monkeypatch.setattr(smoothed, "_counts", lambda x, n, *options: (np.array([[60, 40]]), np.array([30]), True))
    assert smoothed.predict(torch.zeros(2), n=130, alpha=0.1) == ABSTAIN  # 60 against 40 + 30: no significant top class
    monkeypatch.setattr(smoothed, "_counts", lambda x, n, *options: (np.array([[60, 40]]), np.array([0]), True))
    assert smoothed.predict(torch.zeros(2), n=100, alpha=0.1) == 0  # binomtest(60, 100) = 0.057 <= 0.1


def test_predict_passes_its_sampling_options_on(monkeypatch: pytest.MonkeyPatch) -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)
    seen: dict[str, object] = {}

    def counts(
        x: object, n: int, batch_size: object, seed: object, generator: object, share_noise: object
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        seen.update(batch_size=batch_size, seed=seed, generator=generator, share_noise=share_noise)
        return np.array([[n, 0]]), np.zeros(1, dtype=np.int64), False

    monkeypatch.setattr(smoothed, "_counts", counts)
    generator = torch.Generator()
    smoothed.predict(torch.zeros(1, 2), n=50, batch_size=7, seed=None, generator=generator, share_noise=True)
    assert seen == {"batch_size": 7, "seed": None, "generator": generator, "share_noise": True}
    smoothed.predict(torch.zeros(1, 2), n=50)
    assert seen["share_noise"] is False and seen["batch_size"] is None


def test_class_counts_checks_its_arguments_and_draws_per_input(monkeypatch: pytest.MonkeyPatch) -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)
    for call, match in (
        (lambda: smoothed.class_counts(torch.zeros(2), n=0), "n must be a positive integer, got 0"),
        (
            lambda: smoothed.class_counts(torch.zeros(2), n=5, batch_size=0),
            "batch_size must be a positive integer or 'auto', got 0",
        ),
        (lambda: smoothed.class_counts(torch.zeros(2), n=5, share_noise=1), "share_noise must be True or False, got 1"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            call()
    # Three inputs of two coordinates: input i gets the keys it would get alone with seed + i, and by default its own noise.
    xs = torch.tensor([[0.1, 0.0], [0.1, 0.0], [0.1, 0.0]])
    together = smoothed.class_counts(xs, 300, seed=4)
    assert together.tolist() == [smoothed.class_counts(xs[i], 300, seed=4 + i).tolist() for i in range(3)]
    assert together.tolist() != smoothed.class_counts(xs, 300, seed=4, share_noise=True).tolist()
    # A generator makes the draw reproducible.
    first = smoothed.class_counts(xs, 300, generator=torch.Generator().manual_seed(9))
    assert first.tolist() == smoothed.class_counts(xs, 300, generator=torch.Generator().manual_seed(9)).tolist()


@pytest.mark.parametrize(
    "x", [torch.tensor(1.0), torch.zeros(2), torch.zeros(0, 3)], ids=["0-d", "wrong-width", "empty-batch"]
)
def test_an_input_the_model_cannot_take_is_refused_naming_its_shape(x: torch.Tensor) -> None:
    smoothed = Smoothed(torch.nn.Linear(3, 2), "gaussian", 2, scale=0.5, progress=False)
    with pytest.raises(
        ValueError,
        match=rf"the model accepts x of shape {re.escape(str(tuple(x.shape)))} neither as one input nor as a batch .*pass input_shape=",
    ):
        smoothed.certify(x, n0=5, n=5)


def test_a_batch_of_one_input_infers_the_input_shape() -> None:
    smoothed = Smoothed(torch.nn.Linear(2, 2), "gaussian", 2, scale=0.5, progress=False)
    smoothed.class_counts(torch.zeros(1, 2), 10, seed=0)
    assert smoothed.input_shape == (2,)


def test_certify_checks_alpha_bound_and_interval_naming_the_bad_value() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)
    for alpha in (1.0, 0.0, "0.01", True):
        with pytest.raises(ValueError, match=rf"alpha must be in \(0, 1\), got {re.escape(repr(alpha))}"):
            smoothed.certify(torch.zeros(2), n0=5, n=5, alpha=alpha)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="interval must be 'clopper-pearson', got 'wilson'"):
        smoothed.certify(torch.zeros(2), n0=5, n=5, interval="wilson")

    class NoTight(renyicert.Mechanism):
        name = "no-tight-for-smoothing"
        fused_noise = "normal"

        def _divergence(self, order, distance):  # type: ignore[no-untyped-def]
            return order * distance**2 / (2 * self.scale**2)

    plain = Smoothed(threshold_model(), NoTight(0.5), 2, progress=False)
    with pytest.raises(
        ValueError, match="bound='tight' needs a tight certificate, which no-tight-for-smoothing does not provide"
    ):
        plain.certify(torch.zeros(2), n0=5, n=5, bound="tight")
    assert plain.certify(torch.tensor([1.0, 0.0]), n0=5, n=50, seed=0).label == 0  # the Rényi bound needs no tight one


def test_certificates_report_their_samples_and_their_share_of_the_time() -> None:
    import time

    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)
    xs = torch.tensor([[1.0, 0.0], [0.5, 0.0], [2.0, 0.0]])
    start = time.perf_counter()
    certificates = smoothed.certify(xs, n0=20, n=300, seed=0)
    elapsed = time.perf_counter() - start
    assert [(c.n0, c.n) for c in certificates] == [(20, 300)] * 3
    assert all(0.0 < c.seconds <= elapsed / 3 for c in certificates)
    assert len({c.seconds for c in certificates}) == 1


def test_certify_passes_share_noise_on() -> None:
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, progress=False)
    xs = torch.tensor([[0.1, 0.0], [0.1, 0.0]])
    shared = smoothed.certify(xs, n0=10, n=300, seed=3, share_noise=True)
    assert shared[0].counts == shared[1].counts  # the same draws for both inputs
    assert smoothed.certify(xs, n0=10, n=300, seed=3)[0].counts != smoothed.certify(xs, n0=10, n=300, seed=3)[1].counts


def test_the_documented_defaults() -> None:
    import inspect

    certify = inspect.signature(Smoothed.certify).parameters
    assert (certify["n0"].default, certify["n"].default, certify["alpha"].default) == (
        100,
        100_000,
        0.001,
    )  # Cohen et al.'s
    assert (certify["bound"].default, certify["p2_mode"].default, certify["share_noise"].default) == (
        "renyi",
        "runner-up",
        False,
    )
    init = inspect.signature(Smoothed.__init__).parameters
    assert (init["batch_size"].default, init["compile"].default, init["backend"].default) == (1000, False, "auto")
    assert inspect.signature(Smoothed.class_counts).parameters["share_noise"].default is False
    assert inspect.signature(Smoothed.predict).parameters["share_noise"].default is False


def test_construction_and_batches_are_checked_at_the_boundary() -> None:
    with pytest.raises(TypeError, match="^model must be a torch.nn.Module, got int$"):
        Smoothed(3, "gaussian", 2, scale=0.5)  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="backend must be 'auto', 'triton', 'native', 'compiled' or 'eager', got 'gpu'"
    ):
        Smoothed(threshold_model(), "gaussian", 2, scale=0.5, backend="gpu")
    smoothed = Smoothed(threshold_model(), "gaussian", 2, scale=0.5, input_shape=(2,), progress=False)
    with pytest.raises(TypeError, match="^x must be a torch.Tensor, got list$"):
        smoothed.certify([1.0, 0.0], n0=5, n=5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^x contains NaN or inf$"):
        smoothed.certify(torch.tensor([float("inf"), 0.0]), n0=5, n=5)
    with pytest.raises(ValueError, match=r"x has shape \(0, 2\); expected one input of shape \(2,\) or a batch"):
        smoothed.certify(torch.zeros(0, 2), n0=5, n=5)
    assert len(smoothed.certify(torch.zeros(1, 2), n0=5, n=5, seed=0)) == 1  # a batch of one is a batch


# --------------------------------------------------- the noise at certify's boundary
@pytest.mark.parametrize(
    ("mechanism", "match"),
    [
        ("BroadcastSampleGaussian", "returned shape \\(1, 2\\), expected \\(\\d+, 2\\)"),
        ("ScalarSampleGaussian", "returned shape \\(\\), expected"),
        ("IntegerSampleGaussian", "returned torch.int64 on cpu, expected torch.float32"),
        ("NaNSampleGaussian", "non-finite noise"),
    ],
)
def test_certify_refuses_noise_of_the_wrong_shape_dtype_or_values(mechanism: str, match: str) -> None:
    # Before: a (1, *shape) or 0-d draw was broadcast (radii 0.443 for every digit), int64 zeros accepted,
    # and NaN noise reported as "the model returned non-finite logits".
    from . import bad_mechanisms as bad

    smoothed = Smoothed(
        threshold_model(), getattr(bad, mechanism)(0.5), num_classes=2, input_shape=(2,), progress=False
    )
    with pytest.raises((ValueError, TypeError), match=f"{smoothed.mechanism.label}.sample.*{match}"):
        smoothed.certify(torch.tensor([1.0, 0.0]), n0=10, n=100, seed=0)


def test_certify_refuses_a_transform_that_is_not_finite_on_the_samplers_range() -> None:
    from .bad_mechanisms import NaNTransformGaussian

    with pytest.raises(ValueError, match="_transform_uniform\\(u\\) is not finite at u = \\[1.0\\]"):
        Smoothed(threshold_model(), NaNTransformGaussian(0.5), num_classes=2, input_shape=(2,), progress=False)


def test_a_mechanism_for_d_coordinates_refuses_inputs_of_another_size() -> None:
    from .bad_mechanisms import LinfGaussian

    model = torch.nn.Linear(4, 2)
    assert (
        Smoothed(model, LinfGaussian(0.5, d=4), num_classes=2, progress=False)
        .certify(torch.zeros(4), n=50, seed=0)
        .counts
        is not None
    )
    smoothed = Smoothed(threshold_model(), LinfGaussian(0.5, d=4), num_classes=2, progress=False)
    with pytest.raises(ValueError, match="states its divergence for 4 coordinates, but the inputs have 2"):
        smoothed.certify(torch.tensor([1.0, 0.0]), n=50, seed=0)


def test_a_model_error_unrelated_to_shape_is_named() -> None:
    class Broken(torch.nn.Module):
        def forward(self, x):  # type: ignore[no-untyped-def]
            raise RuntimeError("CUDA out of memory (simulated)")

    # Before: the message said only "pass input_shape= to Smoothed".
    smoothed = Smoothed(Broken(), "gaussian", num_classes=2, scale=0.5, progress=False)
    with pytest.raises(ValueError, match="RuntimeError: CUDA out of memory \\(simulated\\)"):
        smoothed.certify(torch.zeros(3), n=10, seed=0)


def test_certify_with_the_best_bound_takes_the_maximum_from_the_same_counts() -> None:
    from renyicert.radii import radii_where_certified

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    smoothed = Smoothed(model, "laplace", 3, scale=0.25, input_shape=(4,), progress=False)
    x = torch.rand(8, 4)
    best = smoothed.certify(x, n0=100, n=2000, seed=0, bound="best")
    renyi = smoothed.certify(x, n0=100, n=2000, seed=0)
    for b, r in zip(best, renyi):
        assert b.counts == r.counts and b.label == r.label and b.p1_lower == r.p1_lower
        certified = np.array([not r.abstained])
        radii = {
            k: float(
                radii_where_certified(smoothed.mechanism, np.array([r.p1_lower]), np.array([r.p2_upper]), certified, k)[
                    0
                ][0]
            )
            for k in ("renyi", "tight", "pixeldp")
        }
        assert b.radius == max(radii.values()) and radii[b.bound] == b.radius
    assert {c.bound for c in renyi} == {"renyi"}
    with pytest.raises(ValueError, match=r"bound must be one of \('renyi', 'tight', 'best'\), got 'pixel'"):
        smoothed.certify(x, n=10, bound="pixel")
