"""Attacks and the main job: adversarial examples stay in the ball, and certified accuracy never exceeds empirical robust accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import renyicert
from renyicert.workflow.attacks import empirical_robustness
from renyicert.workflow.pgd import SmoothedSoftClassifier, SmoothedVoteClassifier
from renyicert.workflow.data import as_labelled_data, load_digits
from renyicert.workflow.jobs.demo import DemoSettings, run_demo
from renyicert.workflow.models import DigitsMLP


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("results")
    # The quick job with a lighter attack budget (the attacks took 48 of its 59 s): every stage and file still runs.
    result = run_demo(
        out, DemoSettings.quick(attack_inputs=12, vote_samples=200, boundary_iterations=15), progress=False
    )
    return out, result.summary


def test_quick_demo_writes_the_report_plots_and_records(quick_demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    out, summary = quick_demo
    report = (out / "report.md").read_text()
    for heading in (
        "## Certified accuracy (Rényi bound)",
        "## The paper's claims",
        "## Consistency check",
        "stability training",
        "PixelDP",
    ):
        assert heading in report
    for noise in ("gaussian-0.25", "laplace-0.25"):
        for kind in ("certified", "bounds", "empirical"):
            assert (out / f"{kind}-{noise}.png").read_bytes()[:4] == b"\x89PNG"
        for method in ("standard", "augmentation", "stability"):
            lines = (out / "records" / f"{noise}-{method}.jsonl").read_text().splitlines()
            assert len(lines) == 80 and all(json.loads(line)["n"] == 1000 for line in lines)
    assert json.loads((out / "summary.json").read_text())["results"]


def test_certified_accuracy_never_exceeds_empirical_robust_accuracy(quick_demo: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    _, summary = quick_demo
    for key, entry in summary["results"].items():
        empirical = entry["empirical"]["accuracy"]["all"]
        for bound, certified in entry["certified_on_attacked"].items():
            for eps, c, e in zip(entry["empirical"]["eps"], certified, empirical):
                assert c <= e, f"{key} {bound} eps={eps}: certified {c} > empirical {e}"
        assert entry["clean_accuracy"] >= 0.85, (key, entry["clean_accuracy"])  # the quick budget still learns digits


def _standard_model(epochs: int) -> DigitsMLP:
    """The digits MLP trained without noise (seed 0)."""
    from renyicert.workflow.training import train

    torch.manual_seed(0)
    model = DigitsMLP()
    train(model, load_digits()[0], method="standard", epochs=epochs, progress=False)
    return model


def test_attacks_hurt_an_undefended_model_and_stay_in_the_ball() -> None:
    _, test = load_digits()
    data = test.subset(12)
    model = _standard_model(epochs=8)
    smoothed = renyicert.Smoothed(model, "gaussian", 10, scale=0.1, progress=False)
    result = empirical_robustness(
        smoothed, data, [0.0, 1.0, 3.0], attacks=["pgd", "transfer"], undefended=model, vote_samples=200, progress=False
    )
    assert result.accuracy["pgd"][0] == result.clean_accuracy >= 0.8
    assert result.accuracy["all"][2] < result.clean_accuracy  # l2 = 3 breaks a 8x8 digit classifier
    assert all(np.diff(result.accuracy["all"]) <= 0)


def test_smoothed_modules_are_what_the_attacks_see() -> None:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    mechanism = renyicert.get_mechanism("laplace", scale=0.5)
    soft = SmoothedSoftClassifier(model, mechanism, samples=8)
    x = torch.rand(2, 4, requires_grad=True)
    out = soft(x)
    assert out.shape == (2, 3) and torch.allclose(out.exp().sum(1), torch.ones(2))
    out[:, 0].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    vote = SmoothedVoteClassifier(model, mechanism, (4,), samples=16)
    assert torch.equal(vote(x.detach()), vote(x.detach())) and torch.allclose(vote(x.detach()).sum(1), torch.ones(2))


def test_bad_attack_arguments_get_clear_errors() -> None:
    _, test = load_digits()
    smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    with pytest.raises(ValueError, match="unknown attack 'fgsm'"):
        empirical_robustness(smoothed, test.subset(2), [0.1], attacks=["fgsm"])
    with pytest.raises(ValueError, match="needs the undefended model"):
        empirical_robustness(smoothed, test.subset(2), [0.1], attacks=["transfer"])
    with pytest.raises(ValueError, match="eps must be finite and >= 0"):
        empirical_robustness(smoothed, test.subset(2), [-1.0], attacks=["pgd"])


def test_l1_projection_is_the_closest_point_of_the_ball() -> None:
    from renyicert.workflow.pgd import project_l1_ball

    torch.manual_seed(0)
    delta = torch.randn(200, 30) * torch.rand(200, 1) * 0.5
    eps = 2.0
    projected = project_l1_ball(delta, eps)
    norms = projected.abs().sum(1)
    assert (norms <= eps * (1 + 1e-5)).all()
    outside = delta.abs().sum(1) > eps
    assert torch.allclose(norms[outside], torch.full_like(norms[outside], eps), rtol=1e-5)
    assert torch.equal(projected[~outside], delta[~outside])
    # Optimality: soft thresholding at the tau found by bisection.
    low, high = torch.zeros(int(outside.sum())), delta[outside].abs().max(1).values
    for _ in range(60):
        tau = (low + high) / 2
        too_big = (delta[outside].abs() - tau[:, None]).clamp_min(0).sum(1) > eps
        low, high = torch.where(too_big, tau, low), torch.where(too_big, high, tau)
    reference = torch.sign(delta[outside]) * (delta[outside].abs() - high[:, None]).clamp_min(0)
    assert torch.allclose(projected[outside], reference, atol=1e-5)


def test_sparse_l1_pgd_stays_in_the_ball_and_the_box_and_beats_dense_steps() -> None:
    from renyicert.workflow.pgd import sparse_l1_pgd

    train_data, test = load_digits()
    torch.manual_seed(0)
    model = DigitsMLP()
    from renyicert.workflow.training import train

    train(model, train_data, method="standard", epochs=8, progress=False)
    x, y = test.x[:40], test.y[:40]
    adversarial = sparse_l1_pgd(model, x, y, 2.0, steps=30, restarts=1)
    assert ((adversarial - x).abs().flatten(1).sum(1) <= 2.0 * (1 + 1e-5)).all()
    assert adversarial.min() >= 0.0 and adversarial.max() <= 1.0
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean()
        attacked = (model(adversarial).argmax(1) == y).float().mean()
    assert attacked < clean - 0.2, (clean, attacked)  # l1 = 2 (a few pixels) breaks an undefended MLP often


def _linear_model(weight: torch.Tensor, bias: float) -> torch.nn.Module:
    """Two logits (0, w.x + b): its exact l2 distance to the decision boundary is |w.x + b| / ||w||_2."""
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(weight.numel(), 2))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([torch.zeros_like(weight), weight]))
        model[1].bias.copy_(torch.tensor([0.0, bias]))
    return model


def test_pgd_with_restarts_finds_the_exact_boundary_of_a_linear_model_in_l2_and_l1() -> None:
    from renyicert.workflow.pgd import pgd_with_restarts

    weight = torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = _linear_model(weight, -0.5)
    x = torch.full((1, 1, 2, 2), 0.5)  # w.x + b = 0.75: class 1
    y = torch.tensor([1])
    distance = {
        2.0: 0.75 / float(weight.norm()),
        1.0: 0.75 / float(weight.abs().max()),
    }  # l1: move the largest |w_i| alone
    for norm, d in distance.items():
        adversarial = pgd_with_restarts(model, x, y, [0.9 * d, 1.1 * d], norm, steps=200, restarts=3, seed=0)
        with torch.no_grad():
            predicted = [int(model(a).argmax()) for a in adversarial]
        assert predicted == [1, 0], (norm, predicted)  # cannot cross inside the distance, does cross just past it
        sizes = (adversarial - x).flatten(2).norm(p=norm, dim=2)[:, 0]
        assert (sizes <= torch.tensor([0.9 * d, 1.1 * d]) * (1 + 1e-5)).all()
        assert ((adversarial >= 0) & (adversarial <= 1)).all()


def test_pgd_with_restarts_refuses_bad_settings() -> None:
    from renyicert.workflow.pgd import pgd_with_restarts

    model, x, y = _linear_model(torch.ones(4), 0.0), torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="supports the l1 and l2 norms, got linf"):
        pgd_with_restarts(model, x, y, [0.1], float("inf"))
    with pytest.raises(ValueError, match=r"eps must be finite and > 0, got \[0.0\]"):
        pgd_with_restarts(model, x, y, [0.0], 2.0)
    with pytest.raises(ValueError, match="steps must be a positive integer, got 0"):
        pgd_with_restarts(model, x, y, [0.1], 2.0, steps=0)
    with pytest.raises(ValueError, match="restarts must be a positive integer, got -1"):
        pgd_with_restarts(model, x, y, [0.1], 2.0, restarts=-1)


def test_deterministic_models_are_attacked_in_the_norm_given_and_judged_by_their_argmax() -> None:
    weight = torch.tensor([1.0, -2.0, 0.5, 3.0])
    model = _linear_model(weight, -0.5)
    x = torch.full((3, 1, 2, 2), 0.5)
    data = as_labelled_data((x, torch.tensor([1, 1, 0])))  # the third label is wrong: broken at every eps
    d = 0.75 / float(weight.norm())
    result = empirical_robustness(
        model,
        data,
        [0.0, 0.9 * d, 1.1 * d],
        norm=2,
        attacks=["pgd-long", "boundary"],
        long_steps=100,
        long_restarts=2,
        boundary_iterations=10,
        progress=False,
    )
    assert result.clean_accuracy == pytest.approx(2 / 3)
    assert result.accuracy["pgd-long"] == pytest.approx([2 / 3, 2 / 3, 0.0])
    assert result.accuracy["all"][2] == 0.0
    with pytest.raises(ValueError, match=r"give norm= \(1 or 2\) to attack a deterministic model"):
        empirical_robustness(model, data, [0.1], attacks=["pgd"], progress=False)
    smoothed = renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, progress=False)
    _, test = load_digits()
    with pytest.raises(ValueError, match="norm 1 contradicts the mechanism's norm 2"):
        empirical_robustness(smoothed, test.subset(2), [0.1], norm=1, attacks=["pgd"], progress=False)
    with pytest.raises(TypeError, match="must be a Smoothed classifier or a torch.nn.Module, got str"):
        empirical_robustness("model", data, [0.1], norm=2, attacks=["pgd"], progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="long_steps must be a positive integer, got 0"):
        empirical_robustness(model, data, [0.1], norm=2, attacks=["pgd-long"], long_steps=0, progress=False)


def test_the_long_pgd_attacks_a_smoothed_classifier_within_the_ball() -> None:
    _, test = load_digits()
    data = test.subset(6)
    smoothed = renyicert.Smoothed(DigitsMLP(), "laplace", 10, scale=0.25, progress=False)
    result = empirical_robustness(
        smoothed, data, [0.0, 0.5], attacks=["pgd-long"], long_steps=5, long_restarts=2, vote_samples=50, progress=False
    )
    assert set(result.accuracy) == {"pgd-long", "all"}
    assert result.accuracy["pgd-long"][1] <= result.accuracy["pgd-long"][0] == pytest.approx(result.clean_accuracy)


def test_an_attacks_result_does_not_depend_on_what_ran_before_it_nor_moves_numpys_generator() -> None:
    _, test = load_digits()
    data = test.subset(20)
    model = _standard_model(epochs=3)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    alone = empirical_robustness(model, data, [0.5, 1.0], norm=2, attacks=["pgd-strong"], progress=False)
    assert (np.random.get_state()[1] == before).all()
    after_others = empirical_robustness(
        model,
        data,
        [0.5, 1.0],
        norm=2,
        attacks=["boundary", "pgd", "pgd-strong"],
        boundary_iterations=5,
        progress=False,
    )
    assert after_others.accuracy["pgd-strong"] == alone.accuracy["pgd-strong"]
