"""TRADES (Zhang et al. 2019), the empirical defence the paper compares with, through adversarial-robustness-toolbox.

:func:`train_trades` trains a model with ART's ``AdversarialTrainerTRADESPyTorch``:
each batch minimises ``CE(f(x), y) + beta * KL(softmax f(x) || softmax f(x'))``,
with ``x'`` from PGD in the chosen norm (l2 for the Gaussian's comparison, l1 for
Laplace's).  What ART does differently from Zhang et al.'s reference code, and we
keep: its ``x'`` comes from the attack it is given (here PGD on the cross-entropy
with the true labels, from a random start), where Zhang et al. maximise the KL
term itself.  TRADES gives no certificate; the comparison reports its clean and
empirical robust accuracy and its training time.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._progress import progress_bar
from .._validation import check_positive_int
from .art_adapters import numpy_seeded
from .data import LabelledData, as_labelled_data
from .training import TrainingResult

__all__ = ["DEFAULT_BETA", "train_trades"]

#: Zhang et al.'s weight of the robustness term for CIFAR-10 (1/lambda = 6).
DEFAULT_BETA = 6.0


@contextlib.contextmanager
def _quiet_art_epochs() -> Iterator[None]:
    """ART's ``fit`` draws its own tqdm bar per call, outside our control (tqdm reads its settings at import); swap it for ``range``."""
    from art.defences.trainer import adversarial_trainer_trades_pytorch as module

    original = module.trange
    module.trange = lambda n, **_: range(n)
    try:
        yield
    finally:
        module.trange = original


def train_trades(
    model: Any,
    data: LabelledData | Any,
    *,
    norm: float,
    eps: float,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    beta: float = DEFAULT_BETA,
    attack_steps: int = 10,
    seed: int = 0,
    progress: bool | None = None,
) -> TrainingResult:
    """Train ``model`` in place with TRADES against PGD in l``norm`` (1 or 2) of radius ``eps``, Adam at ``lr``.

    The inner PGD takes ``attack_steps`` steps of ``2.5 eps / attack_steps`` (Madry et
    al.'s rule) from a random start in the ball, inside [0, 1].  ``seed`` seeds numpy's
    global generator, which ART draws its shuffling and random starts from, for the
    training only (its state is put back after).

    Examples
    --------
    >>> from renyicert.workflow.data import load_digits
    >>> from renyicert.workflow.models import DigitsMLP
    >>> from renyicert.workflow.trades import train_trades
    >>> train_data, _ = load_digits()
    >>> result = train_trades(DigitsMLP(), train_data, norm=2, eps=0.5, epochs=1, attack_steps=2, progress=False)
    >>> result.method, len(result.accuracies)
    ('trades', 1)
    """
    _check_trades_options(norm, eps, beta, lr)
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    attack_steps = check_positive_int(attack_steps, "attack_steps")
    data = as_labelled_data(data)
    x, y = data.inputs(slice(None)).cpu().numpy().astype(np.float32), data.y.cpu().numpy()
    trainer, classifier = _art_trainer(model, data, norm, eps, beta, lr, batch_size, attack_steps)
    result = TrainingResult(model=model, method="trades")
    start = time.perf_counter()
    with numpy_seeded(seed), _quiet_art_epochs(), progress_bar(epochs, "train TRADES", "epoch", progress) as bar:
        for _ in range(epochs):
            trainer.fit(x, y, nb_epochs=1, batch_size=batch_size)
            predictions = classifier.predict(x, batch_size=1024).argmax(axis=1)
            result.accuracies.append(float((predictions == y).mean()))
            if bar is not None:
                bar.update(1)
    result.seconds = time.perf_counter() - start
    model.eval()
    return result


def _check_trades_options(norm: float, eps: float, beta: float, lr: float) -> None:
    """Refuse a norm other than 1 or 2, a non-positive ``eps`` or ``lr``, a negative ``beta``."""
    if norm not in (1, 2):
        raise ValueError(f"norm must be 1 or 2, got {norm!r}")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be finite and >= 0, got {beta!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")


def _art_trainer(
    model: Any, data: LabelledData, norm: float, eps: float, beta: float, lr: float, batch_size: int, attack_steps: int
) -> tuple[Any, Any]:
    """ART's TRADES trainer around ``model`` (Adam at ``lr``, inputs in [0, 1]) against its PGD, and the classifier."""
    import torch
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import AdversarialTrainerTRADESPyTorch
    from art.estimators.classification import PyTorchClassifier

    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=lr),
        input_shape=tuple(data.input_shape),
        nb_classes=data.num_classes,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    attack = ProjectedGradientDescent(
        classifier,
        norm=int(norm),
        eps=float(eps),
        eps_step=2.5 * float(eps) / attack_steps,
        max_iter=attack_steps,
        num_random_init=1,
        batch_size=batch_size,
        verbose=False,
    )
    return AdversarialTrainerTRADESPyTorch(classifier, attack, beta=float(beta)), classifier
