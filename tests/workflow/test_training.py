"""Training with noise: losses behave, training converges on digits within the quick budget, seeds reproduce."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import renyicert
from renyicert.workflow.data import load_digits
from renyicert.workflow.checkpoints import load_checkpoint
from renyicert.workflow.models import DigitsMLP
from renyicert.workflow.training import stability_loss, train


@pytest.mark.parametrize("method", ["standard", "augmentation", "stability"])
def test_training_reduces_loss_and_reaches_90_percent_on_digits(method: str, tmp_path: Path) -> None:
    train_data, test_data = load_digits()
    torch.manual_seed(0)
    model = DigitsMLP()
    mechanism = renyicert.get_mechanism("gaussian", scale=0.25)
    result = train(
        model,
        train_data,
        mechanism,
        method=method,
        epochs=12,
        progress=False,
        checkpoint=tmp_path / "m.pt",
        config={"model": "mlp"},
    )
    assert result.losses[-1] < 0.5 * result.losses[0]
    with torch.no_grad():
        accuracy = float((model(test_data.x).argmax(1) == test_data.y).float().mean())
    assert accuracy >= 0.90, accuracy  # the stated accuracy: >= 90% clean test accuracy after 12 epochs
    loaded, config = load_checkpoint(tmp_path / "m.pt")
    assert config["method"] == method and torch.equal(loaded(test_data.x[:4]), model(test_data.x[:4]))
    assert (config["mechanism"] is None) == (method == "standard")


def test_same_seed_same_model() -> None:
    train_data, _ = load_digits()
    mechanism = renyicert.get_mechanism("laplace", scale=0.25)
    weights = []
    for _ in range(2):
        torch.manual_seed(1)
        model = DigitsMLP()
        train(model, train_data.subset(200), mechanism, method="stability", epochs=2, seed=3, progress=False)
        weights.append(model.layers[1].weight.detach().clone())
    assert torch.equal(*weights)


def test_stability_loss_grows_with_the_output_change() -> None:
    torch.manual_seed(0)
    model, x, y = torch.nn.Linear(4, 3), torch.rand(8, 4), torch.randint(0, 3, (8,))
    small = stability_loss(model, x, y, 0.01 * torch.randn(8, 4), gamma=1.0)
    large = stability_loss(model, x, y, 3.0 * torch.randn(8, 4), gamma=1.0)
    assert large > small > torch.nn.functional.cross_entropy(model(x), y)


def test_bad_training_arguments_get_clear_errors() -> None:
    train_data, _ = load_digits()
    mechanism = renyicert.get_mechanism("gaussian", scale=0.25)
    with pytest.raises(ValueError, match="method must be one of"):
        train(DigitsMLP(), train_data, mechanism, method="adversarial")
    with pytest.raises(ValueError, match="needs a Mechanism"):
        train(DigitsMLP(), train_data, None, method="augmentation")
    with pytest.raises(ValueError, match="epochs must be a positive integer, got 0"):
        train(DigitsMLP(), train_data, mechanism, epochs=0)
    with pytest.raises(ValueError, match="gamma must be >= 0, got -1"):
        train(DigitsMLP(), train_data, mechanism, method="stability", gamma=-1)
