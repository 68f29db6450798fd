"""The opt-in accelerated model: a copy in channels_last (4-D inputs) compiled with ``torch.compile`` (inductor, freezing).

Certificates are then for the *compiled* model.  If compilation fails, at
construction or on the first call of a shape, the eager model is used from then
on, with one warning.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

__all__ = ["CompiledModel"]


class CompiledModel:
    """``model`` compiled on first use; called like the model.

    Parameters
    ----------
    model
        The eager ``torch.nn.Module``.
    input_shape
        One input's shape: 3-D inputs (images) run in channels_last.
    """

    def __init__(self, model: Any, input_shape: tuple[int, ...] | None) -> None:
        self.eager = model
        self.failed = False
        self._channels_last = input_shape is not None and len(input_shape) == 3
        self._compiled: Any = None

    def __call__(self, batch: Any) -> Any:
        if self.failed:
            return self.eager(batch)
        import torch

        try:
            if self._compiled is None:
                model = copy.deepcopy(self.eager).eval()
                if self._channels_last:
                    model = model.to(memory_format=torch.channels_last)
                # Static shapes: one compilation per batch shape (the engine keeps the shape fixed).
                self._compiled = torch.compile(model, dynamic=False)
            with torch._inductor.config.patch(freezing=True):
                return self._compiled(
                    batch.contiguous(memory_format=torch.channels_last) if self._channels_last else batch
                )
        except Exception as error:  # compilation happens on the first call of each shape
            warnings.warn(
                f"renyicert: compiling the model failed ({type(error).__name__}: {error}); using the eager model",
                RuntimeWarning,
                stacklevel=2,
            )
            self.failed = True
            self._compiled = None
            return self.eager(batch)
