"""Adapters to IBM's adversarial-robustness-toolbox (ART): its classifier around a torch module, seeded numpy, float32.

ART draws its random starts from numpy's global generator and wraps models as
``PyTorchClassifier``; these make both reproducible and quiet for the attacks
(:mod:`renyicert.workflow.attacks`) and TRADES (:mod:`renyicert.workflow.trades`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._torch import model_device, torch_nn

__all__ = ["Float32Module", "art_classifier", "numpy_seeded"]


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block, and put its state back after.

    ART draws random starts (PGD, the boundary attack) and TRADES's shuffling from
    numpy's global generator; seeding it per attack makes each attack's result
    independent of what ran before it, and restoring it leaves the caller's
    generator as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.workflow.art_adapters import numpy_seeded
    >>> before = np.random.get_state()[1][:3].tolist()
    >>> with numpy_seeded(0):
    ...     first = np.random.rand()
    >>> with numpy_seeded(0):
    ...     again = np.random.rand()
    >>> first == again, np.random.get_state()[1][:3].tolist() == before
    (True, True)
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def art_classifier(module: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    import torch
    from art.estimators.classification import PyTorchClassifier

    device = model_device(module)
    # ART moves the module to its own device: the current CUDA device for "gpu", so the attack runs where the model is.
    device_type = "gpu" if device is not None and device.type == "cuda" else "cpu"
    if device_type == "gpu" and device.index is not None:
        torch.cuda.set_device(device.index)
    return PyTorchClassifier(
        model=module,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=num_classes,
        clip_values=(0.0, 1.0),
        device_type=device_type,
    )


class Float32Module(torch_nn().Module):  # type: ignore[misc]
    """``model`` on float32 inputs whatever their dtype (ART's boundary attack hands float64 arrays)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Any) -> Any:
        import torch

        return self.model(x.to(torch.float32))
