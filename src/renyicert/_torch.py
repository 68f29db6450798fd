"""Small torch helpers shared by the layers: ``torch.nn`` imported on demand, the model's device, and results returned in the caller's array type."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._validation import is_torch

__all__ = ["like_inputs", "model_device", "torch_nn"]


def torch_nn() -> Any:
    """``torch.nn``, imported when first asked for: the base of the modules defined at import time of modules that import torch lazily.

    Examples
    --------
    >>> from renyicert._torch import torch_nn
    >>> torch_nn().Linear.__name__
    'Linear'
    """
    import torch

    return torch.nn


def model_device(model: Any) -> Any:
    """The device of ``model``'s first parameter (or buffer); ``None`` for a model with neither.

    Examples
    --------
    >>> import torch
    >>> from renyicert._torch import model_device
    >>> model_device(torch.nn.Linear(2, 2)), model_device(torch.nn.ReLU())
    (device(type='cpu'), None)
    """
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return None


def like_inputs(result: NDArray[np.float64], *inputs: Any) -> Any:
    """``result`` as a float64 torch tensor (on the first tensor input's device) if any input was a tensor, else as it is."""
    for value in inputs:
        if is_torch(value):
            import torch

            return torch.as_tensor(result, dtype=torch.float64, device=value.device)
    return result
