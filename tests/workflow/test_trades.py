"""TRADES through adversarial-robustness-toolbox: it trains to a stated accuracy, resists PGD better than standard training, stays quiet."""

from __future__ import annotations

import pytest
import torch

from renyicert.workflow.attacks import empirical_robustness
from renyicert.workflow.data import load_digits
from renyicert.workflow.models import DigitsMLP
from renyicert.workflow.trades import train_trades
from renyicert.workflow.training import train

#: The clean test accuracy TRADES reaches in the test's budget (8 epochs, 3 PGD steps at l2 eps 0.5, seed 0; measured 0.914).
STATED_CLEAN_ACCURACY = 0.88


def test_trades_trains_to_its_stated_accuracy_and_resists_pgd_better_than_standard_training(
    capsys: pytest.CaptureFixture[str],
) -> None:
    train_data, test_data = load_digits(seed=0)
    torch.manual_seed(0)
    robust = DigitsMLP()
    result = train_trades(robust, train_data, norm=2, eps=0.5, epochs=8, attack_steps=3, progress=False)
    torch.manual_seed(0)
    standard = DigitsMLP()
    train(standard, train_data, method="standard", epochs=8, progress=False)
    with torch.no_grad():
        clean = float((robust(test_data.x).argmax(1) == test_data.y).float().mean())
    assert clean >= STATED_CLEAN_ACCURACY
    assert result.method == "trades" and len(result.accuracies) == 8 and result.seconds > 0
    assert not robust.training
    data = test_data.subset(60)
    attacked = {
        name: empirical_robustness(model, data, [0.5, 1.0], norm=2, attacks=["pgd"], progress=False).accuracy["pgd"]
        for name, model in (("trades", robust), ("standard", standard))
    }
    assert all(t > s for t, s in zip(attacked["trades"], attacked["standard"])), attacked
    assert "Adversarial Training TRADES" not in capsys.readouterr().err  # ART's own bar is off


def test_trades_in_l1_trains_and_art_is_left_as_it_was() -> None:
    from art.defences.trainer import adversarial_trainer_trades_pytorch as module

    original = module.trange
    train_data, _ = load_digits(seed=0)
    result = train_trades(
        DigitsMLP(), train_data.subset(200), norm=1, eps=1.0, epochs=2, attack_steps=2, progress=False
    )
    assert len(result.accuracies) == 2
    assert module.trange is original


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"norm": 3, "eps": 0.5}, "norm must be 1 or 2, got 3"),
        ({"norm": 2, "eps": 0.0}, "eps must be finite and > 0, got 0.0"),
        ({"norm": 2, "eps": float("nan")}, "eps must be finite and > 0, got nan"),
        ({"norm": 2, "eps": 0.5, "beta": -1.0}, "beta must be finite and >= 0, got -1.0"),
        ({"norm": 2, "eps": 0.5, "lr": 0}, "lr must be > 0, got 0"),
        ({"norm": 2, "eps": 0.5, "attack_steps": 0}, "attack_steps must be a positive integer, got 0"),
        ({"norm": 2, "eps": 0.5, "epochs": 1.5}, "epochs must be a positive integer, got 1.5"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        train_trades(DigitsMLP(), (torch.rand(4, 1, 8, 8), torch.arange(4)), progress=False, **options)
