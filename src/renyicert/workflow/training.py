"""Training with noise, for any registered mechanism: noise augmentation and stability training.

``"standard"``
    Cross-entropy on clean inputs (the undefended baseline).
``"augmentation"``
    Cross-entropy on ``x + noise`` (Cohen et al. 2019; Lecuyer et al. 2019).
``"stability"``
    Zheng, Song, Leung & Goodfellow (2016)'s stability training with the
    mechanism's noise, as Li et al. (2019) use it: cross-entropy on the clean
    input plus ``gamma`` times ``KL(p(x) || p(x + noise))`` between the output
    distributions on the clean and the noisy input (gradients through both).

The losses are plain functions (:func:`noise_augmentation_loss`,
:func:`stability_loss`) for users' own loops; :func:`train` is a small loop
with seed control, a progress bar and an optional checkpoint.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._progress import progress_bar
from .._torch import model_device
from .._validation import check_positive_int
from ..mechanism import Mechanism
from .data import LabelledData, as_labelled_data

__all__ = [
    "DEFAULT_GAMMA",
    "METHODS",
    "TrainingResult",
    "noise_augmentation_loss",
    "stability_loss",
    "train",
    "train_new_model",
]

METHODS = ("standard", "augmentation", "stability")
#: Default weight of the stability term.  Chosen on digits by
#: ``docs/experiments/gamma_sweep.py`` (one seed, MLP, 30 epochs, n = 2000): among
#: gamma in {0.5, 1, 2, 4, 8}, 4 gave the best mean certified accuracy over
#: r in [0, 3 sigma] for both sigma = 0.25 (0.527; augmentation 0.495) and
#: sigma = 0.5 (0.300; augmentation 0.287).  The differences are small.
DEFAULT_GAMMA = 4.0


def noise_augmentation_loss(model: Any, x: Any, y: Any, noise: Any) -> Any:
    """Cross-entropy of ``model`` on ``x + noise`` (noise augmentation).

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.training import noise_augmentation_loss
    >>> model = torch.nn.Linear(3, 2)
    >>> loss = noise_augmentation_loss(model, torch.zeros(4, 3), torch.tensor([0, 1, 0, 1]), torch.randn(4, 3))
    >>> loss.shape, bool(loss > 0)
    (torch.Size([]), True)
    """
    import torch.nn.functional as F

    return F.cross_entropy(model(x + noise), y)


def stability_loss(model: Any, x: Any, y: Any, noise: Any, gamma: float = DEFAULT_GAMMA) -> Any:
    """Zheng et al. (2016)'s stability loss: ``CE(f(x), y) + gamma * KL(softmax f(x) || softmax f(x + noise))``.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.training import stability_loss
    >>> model = torch.nn.Linear(3, 2)
    >>> x, y = torch.zeros(4, 3), torch.tensor([0, 1, 0, 1])
    >>> bool(torch.isclose(stability_loss(model, x, y, torch.zeros(4, 3)), torch.nn.functional.cross_entropy(model(x), y)))
    True
    """
    import torch
    import torch.nn.functional as F

    if not gamma >= 0.0:
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")
    logits = model(torch.cat([x, x + noise]))
    clean, noisy = logits[: x.shape[0]], logits[x.shape[0] :]
    kl = F.kl_div(F.log_softmax(noisy, dim=1), F.log_softmax(clean, dim=1), log_target=True, reduction="batchmean")
    return F.cross_entropy(clean, y) + gamma * kl


@dataclass
class TrainingResult:
    """What :func:`train` did: the trained model, per-epoch mean loss and clean training accuracy."""

    model: Any
    method: str
    losses: list[float] = field(default_factory=list)
    accuracies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    checkpoint: Path | None = None


def train(
    model: Any,
    data: LabelledData | Any,
    mechanism: Mechanism | None = None,
    *,
    method: str = "augmentation",
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    gamma: float = DEFAULT_GAMMA,
    seed: int = 0,
    progress: bool | None = None,
    checkpoint: str | Path | None = None,
    config: dict[str, Any] | None = None,
) -> TrainingResult:
    """Train ``model`` in place with Adam under ``method`` (``"standard"``, ``"augmentation"`` or ``"stability"``).

    Parameters
    ----------
    data
        :class:`~renyicert.workflow.data.LabelledData`, a torch ``Dataset`` of ``(x, y)`` or an ``(x, y)`` pair.
    mechanism
        The noise for ``"augmentation"`` and ``"stability"`` (ignored by ``"standard"``).
    seed
        Seeds the shuffling, the noise and the model's initial weights' use of torch's
        generator: the same seed gives the same model.
    checkpoint
        If given, a ``.pt`` path: the state dict is saved there with a JSON of
        ``config``, the method, the mechanism and these hyper-parameters beside it.
    config
        Extra fields for the checkpoint's JSON (``model``, ``input_shape`` and
        ``num_classes`` are needed to load it back; ``model`` defaults to the class name).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.workflow.data import load_digits
    >>> from renyicert.workflow.models import DigitsMLP
    >>> from renyicert.workflow.training import train
    >>> train_data, _ = load_digits()
    >>> result = train(DigitsMLP(), train_data, renyicert.get_mechanism("gaussian", scale=0.25), epochs=3, progress=False)
    >>> result.losses[-1] < result.losses[0]
    True
    """
    import torch

    _check_training_options(method, mechanism, lr, gamma)
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    data = as_labelled_data(data)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    result = TrainingResult(model=model, method=method)
    start = time.perf_counter()
    model.train()
    steps = epochs * ((len(data) + batch_size - 1) // batch_size)
    with progress_bar(steps, f"train {method}", "step", progress) as bar:
        for _ in range(epochs):
            loss, accuracy = _train_epoch(model, data, mechanism, method, gamma, batch_size, optimizer, generator, bar)
            result.losses.append(loss)
            result.accuracies.append(accuracy)
    model.eval()
    result.seconds = time.perf_counter() - start
    if checkpoint is not None:
        hyperparameters = {
            "method": method,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "gamma": gamma if method == "stability" else None,
            "seed": seed,
        }
        _save_trained(checkpoint, model, data, mechanism if method != "standard" else None, hyperparameters, config)
        result.checkpoint = Path(checkpoint)
    return result


def _check_training_options(method: str, mechanism: Any, lr: Any, gamma: Any) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method != "standard" and not isinstance(mechanism, Mechanism):
        raise ValueError(f"method {method!r} needs a Mechanism for its noise, got {mechanism!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not (isinstance(gamma, (int, float)) and gamma >= 0):
        raise ValueError(f"gamma must be >= 0, got {gamma!r}")


def _train_epoch(
    model: Any,
    data: LabelledData,
    mechanism: Mechanism | None,
    method: str,
    gamma: float,
    batch_size: int,
    optimizer: Any,
    generator: Any,
    bar: Any,
) -> tuple[float, float]:
    """One pass over ``data`` in a random order: the mean loss and the accuracy on the clean inputs."""
    import torch

    device = model_device(model)
    order = torch.randperm(len(data), generator=generator)
    total_loss, correct = 0.0, 0
    for begin in range(0, len(data), batch_size):
        index = order[begin : begin + batch_size]
        x, y = data.inputs(index), data.y[index]
        if device is not None:
            x, y = x.to(device), y.to(device)
        loss, logits = _step_loss(model, x, y, mechanism, method, gamma, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(index)
        correct += int((logits.argmax(1) == y).sum())
        if bar is not None:
            bar.update(1)
    return total_loss / len(data), correct / len(data)


def _step_loss(
    model: Any, x: Any, y: Any, mechanism: Mechanism | None, method: str, gamma: float, generator: Any
) -> tuple[Any, Any]:
    """The training loss of one batch under ``method``, and the clean logits (for the accuracy)."""
    import torch

    if method == "standard":
        logits = model(x)
        return torch.nn.functional.cross_entropy(logits, y), logits
    assert mechanism is not None
    # Drawn from the CPU generator whatever the model's device, so that a seed trains the same model on every device.
    noise = mechanism.sample(tuple(x.shape), generator=generator, dtype=x.dtype).to(x.device)
    loss = (
        noise_augmentation_loss(model, x, y, noise)
        if method == "augmentation"
        else stability_loss(model, x, y, noise, gamma)
    )
    with torch.no_grad():
        logits = model(x)
    return loss, logits


def _save_trained(
    path: str | Path,
    model: Any,
    data: LabelledData,
    mechanism: Mechanism | None,
    hyperparameters: dict[str, Any],
    config: dict[str, Any] | None,
) -> None:
    """The checkpoint: the weights, and beside them the model's description, the noise and the hyper-parameters."""
    from .checkpoints import mechanism_parameters, save_checkpoint

    meta = {"model": type(model).__name__, "input_shape": list(data.input_shape), "num_classes": data.num_classes}
    meta.update(config or {})
    noise = (
        None
        if mechanism is None
        else {"name": mechanism.label, "scale": mechanism.scale, "parameters": mechanism_parameters(mechanism)}
    )
    meta.update(hyperparameters, mechanism=noise)
    save_checkpoint(path, model, meta)


def train_new_model(
    model: str,
    data: LabelledData,
    mechanism: Mechanism | None,
    *,
    checkpoint: str | Path,
    data_name: str,
    device: Any = None,
    seed: int = 0,
    **options: Any,
) -> TrainingResult:
    """Build ``model`` (a built-in name or ``module:callable``) for ``data`` with torch seeded by ``seed``, train it, save it.

    ``options`` are :func:`train`'s; the checkpoint records the architecture,
    the shapes and ``data_name`` beside the noise, so that ``renyicert certify
    --checkpoint`` needs nothing else.
    """
    import torch

    from .models import build_model  # torch at import: the models are torch modules

    torch.manual_seed(seed)
    network = build_model(model, data.input_shape, data.num_classes).to(device)
    config = {"model": model, "input_shape": list(data.input_shape), "num_classes": data.num_classes, "data": data_name}
    return train(network, data, mechanism, seed=seed, checkpoint=checkpoint, config=config, **options)
