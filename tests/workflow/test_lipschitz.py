"""The deterministic certifier: the 1-Lipschitz network trains, its bound is exact, and no attack gets inside a certified radius."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from renyicert.workflow.pgd import pgd_with_restarts
from renyicert.workflow.data import load_digits
from renyicert.workflow.lipschitz import (
    DeterministicCertificates,
    deterministic_certify,
    export_lipschitz,
    lipschitz_bound,
    lipschitz_mlp,
    train_lipschitz,
)

#: The clean test accuracy the 1-Lipschitz MLP reaches in the test's budget (10 epochs, tau = 2, seed 0; measured 0.925).
STATED_CLEAN_ACCURACY = 0.90


@pytest.fixture(scope="module")
def trained() -> tuple[torch.nn.Module, object]:
    train_data, test_data = load_digits(seed=0)
    torch.manual_seed(0)
    exported, _ = train_lipschitz(lipschitz_mlp(), train_data, epochs=10, tau=2.0, progress=False)
    return exported, test_data


def test_the_network_trains_to_its_stated_clean_accuracy(trained: tuple[torch.nn.Module, object]) -> None:
    model, test_data = trained
    certificates = deterministic_certify(model, test_data)
    assert certificates.correct.mean() >= STATED_CLEAN_ACCURACY
    assert certificates.certified_accuracy([0.0])[0] == pytest.approx(certificates.correct.mean())
    assert (
        0.3 < certificates.certified_accuracy([0.5])[0] < certificates.certified_accuracy([0.25])[0]
    )  # real margins, not zero
    assert all(
        type(layer).__name__ in ("Flatten", "Linear", "GroupSort2") for layer in model
    )  # exported: no parametrisation left


def test_the_bound_is_the_product_of_exact_spectral_norms_not_the_training_estimate(
    trained: tuple[torch.nn.Module, object],
) -> None:
    model, _ = trained
    norms = [np.linalg.norm(layer.weight.double().numpy(), 2) for layer in model if isinstance(layer, torch.nn.Linear)]
    assert lipschitz_bound(model) == pytest.approx(math.prod(norms), rel=1e-12)
    assert abs(lipschitz_bound(model) - 1.0) < 1e-3  # deel-torchlip keeps each layer near 1, only to a tolerance
    doubled = torch.nn.Sequential(*model[:-1], torch.nn.Linear(256, 10))
    with torch.no_grad():
        doubled[-1].weight.copy_(2 * model[-1].weight)
        doubled[-1].bias.copy_(2 * model[-1].bias)
    assert lipschitz_bound(doubled) == pytest.approx(2 * lipschitz_bound(model), rel=1e-12)


def test_layers_without_a_known_constant_are_refused() -> None:
    with pytest.raises(
        ValueError,
        match=r"layer '1' \(Conv2d\) has no Lipschitz constant known here; expected a sequence of Linear, Flatten, Identity, ReLU and GroupSort layers",
    ):
        lipschitz_bound(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Conv2d(1, 1, 3)))
    with pytest.raises(ValueError, match=r"layer '0.1' \(Tanh\)"):
        lipschitz_bound(torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh())))
    with pytest.raises(ValueError, match="needs a torch.nn.Sequential model, got Linear"):
        lipschitz_bound(torch.nn.Linear(2, 2))
    zero = torch.nn.Sequential(torch.nn.Linear(2, 2))
    torch.nn.init.zeros_(zero[0].weight)
    with pytest.raises(ValueError, match="Lipschitz bound must be finite and > 0, got 0.0"):
        deterministic_certify(zero, (torch.zeros(1, 2), torch.tensor([0])))


def test_the_radius_is_the_margin_over_sqrt_2_l_in_float64() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 3, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.diag(torch.tensor([0.5, 0.25, 0.125])))
    x = torch.tensor([[1.0, 0.5, 0.25], [0.2, 0.9, 0.0]])
    certificates = deterministic_certify(model, (x, torch.tensor([0, 1])))
    logits = x.double() * torch.tensor([0.5, 0.25, 0.125], dtype=torch.float64)
    top = logits.sort(dim=1).values
    expected = (top[:, -1] - top[:, -2]) / (math.sqrt(2) * 0.5)
    assert certificates.lipschitz == 0.5
    np.testing.assert_allclose(certificates.radius, expected.numpy(), rtol=1e-15)
    assert certificates.prediction.tolist() == [0, 1] and certificates.correct.tolist() == [True, True]


def _fooled(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    adversarial = pgd_with_restarts(model, x, y, [eps], 2.0, steps=100, restarts=5, seed=1)[0]
    assert ((adversarial - x).flatten(1).norm(dim=1) <= eps * (1 + 1e-5)).all()
    with torch.no_grad():
        return model(adversarial).argmax(dim=1) != y


def test_no_attack_finds_an_adversarial_example_inside_a_certified_radius(
    trained: tuple[torch.nn.Module, object],
) -> None:
    model, test_data = trained
    data = test_data.subset(80)
    certificates = deterministic_certify(model, data)
    x, y = data.inputs(slice(None)), data.y
    for eps in (0.1, 0.25, 0.5, 0.75):
        certified = torch.from_numpy(certificates.correct & (certificates.radius >= eps))
        fooled = _fooled(model, x, y, eps)
        assert not (fooled & certified).any(), f"PGD broke {int((fooled & certified).sum())} inputs certified at {eps}"
    # The attack is real: at eps = 1 (past most radii) it breaks most inputs, so the check above can fail.
    assert _fooled(model, x, y, 1.0)[torch.from_numpy(certificates.correct)].float().mean() > 0.5


def test_a_bound_that_claims_too_little_is_caught_by_the_attack(trained: tuple[torch.nn.Module, object]) -> None:
    """Were the bound 4x too small (radii 4x too large), the attack would find examples inside the claimed radii."""
    model, test_data = trained
    data = test_data.subset(40)
    honest = deterministic_certify(model, data)
    inflated = DeterministicCertificates(honest.prediction, honest.correct, 4 * honest.radius, honest.lipschitz / 4)
    x, y = data.inputs(slice(None)), data.y
    claimed = torch.from_numpy(inflated.correct & (inflated.radius >= 0.75))
    assert claimed.any()
    assert (_fooled(model, x, y, 0.75) & claimed).any()


def test_training_options_are_checked() -> None:
    data = (torch.rand(8, 1, 8, 8), torch.arange(8) % 2)
    for tau in (0.0, -1.0, float("nan"), float("inf"), "2"):
        with pytest.raises(ValueError, match="tau must be finite and > 0"):
            train_lipschitz(lipschitz_mlp(num_classes=2), data, tau=tau, progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr must be > 0, got 0"):
        train_lipschitz(lipschitz_mlp(num_classes=2), data, lr=0, progress=False)
    with pytest.raises(ValueError, match="epochs"):
        train_lipschitz(lipschitz_mlp(num_classes=2), data, epochs=0, progress=False)


def test_export_copies_and_leaves_the_trained_model_as_it_was() -> None:
    model = lipschitz_mlp(input_shape=(4,), num_classes=3, hidden=8)
    exported = export_lipschitz(model)
    assert exported is not model
    assert type(model[1]).__name__ == "ParametrizedSpectralLinear" and type(exported[1]) is torch.nn.Linear
    assert not exported.training and not any(p.requires_grad for p in exported.parameters())
    assert all(p.requires_grad for p in model.parameters())
    x = torch.rand(5, 4)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), model.eval()(x))


def test_a_scaled_group_sort_counts_with_its_coefficient() -> None:
    from deel.torchlip import GroupSort2

    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.eye(2))
    assert lipschitz_bound(torch.nn.Sequential(layer, GroupSort2(k_coef_lip=2.0))) == 2.0
    assert lipschitz_bound(torch.nn.Sequential(layer, GroupSort2(k_coef_lip=0.5), torch.nn.ReLU())) == 0.5


def test_certified_accuracy_counts_a_radius_equal_to_r_and_keeps_the_shape_of_the_radii() -> None:
    certificates = DeterministicCertificates(np.array([0, 1]), np.array([True, True]), np.array([0.5, 0.25]), 1.0)
    assert certificates.certified_accuracy([0.25, 0.5, 0.75]).tolist() == [1.0, 0.5, 0.0]  # radius >= r: a tie counts
    assert certificates.certified_accuracy(0.5).shape == ()
    assert certificates.certified_accuracy([[0.0, 0.5]]).shape == (1, 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        deterministic_certify(
            torch.nn.Sequential(torch.nn.Linear(2, 2)), (torch.zeros(1, 2), torch.tensor([0])), batch_size=0
        )


def test_the_certificates_do_not_depend_on_the_batch_size() -> None:
    torch.manual_seed(0)
    model = export_lipschitz(lipschitz_mlp(input_shape=(6,), num_classes=3, hidden=8))
    data = (torch.rand(20, 6), torch.arange(20) % 3)
    whole, batched = deterministic_certify(model, data), deterministic_certify(model, data, batch_size=7)
    np.testing.assert_array_equal(whole.radius, batched.radius)
    np.testing.assert_array_equal(whole.prediction, batched.prediction)
    assert len(batched.radius) == 20
