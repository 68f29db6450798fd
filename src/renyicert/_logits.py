"""The logits of a model that returns more than a tensor: a dict with ``logits``, an object with ``.logits``, a tuple.

Hugging Face image classifiers return an object with ``.logits``; many research
wrappers return a dict or a tuple whose first element is the logits.
:class:`LogitsOf` wraps such a model so that the vote engine, the attacks and
the shape checks see a ``(batch, classes)`` tensor, and names the type it got
when it cannot find one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._torch import torch_nn

__all__ = ["LogitsNotFound", "LogitsOf", "logits_of"]


class LogitsNotFound(TypeError):
    """The model's output holds no tensor where the logits were looked for (the message names what it returned)."""


def logits_of(output: Any, how: str | Callable[[Any], Any] | None = None) -> Any:
    """The logits in ``output``: itself if a tensor; with ``how=None``, ``output["logits"]``, ``output.logits`` or ``output[0]``.

    ``how`` may be a key (a dict key or an attribute name) or a callable taking the output.
    A :class:`LogitsNotFound` (a ``TypeError``) names what was returned when no tensor can be found.

    Examples
    --------
    >>> import torch
    >>> from renyicert._logits import logits_of
    >>> logits_of({"logits": torch.ones(2, 3)}).shape, logits_of((torch.zeros(2, 4), "extra")).shape
    (torch.Size([2, 3]), torch.Size([2, 4]))
    >>> logits_of({"scores": torch.ones(2, 3)})
    Traceback (most recent call last):
    ...
    renyicert._logits.LogitsNotFound: the model returned a dict with keys ['scores'], not logits: give output='KEY' (Smoothed) or --output-key KEY to say which holds them
    """
    import torch

    if callable(how):
        found = how(output)
    elif isinstance(how, str):
        found = output.get(how) if isinstance(output, dict) else getattr(output, how, None)
        if found is None:
            raise LogitsNotFound(f"the model's output ({_described(output)}) has no {how!r} (the output key asked for)")
    elif isinstance(output, torch.Tensor):
        return output
    elif isinstance(output, dict):
        found = output.get("logits")
    elif isinstance(getattr(output, "logits", None), torch.Tensor):
        found = output.logits
    elif isinstance(output, (tuple, list)) and output:
        found = output[0]
    else:
        found = None
    if not isinstance(found, torch.Tensor):
        raise LogitsNotFound(
            f"the model returned {_described(output)}, not logits: give output='KEY' (Smoothed) or --output-key KEY to say which holds them"
        )
    return found


def _described(output: Any) -> str:
    if isinstance(output, dict):
        return f"a dict with keys {sorted(map(str, output))}"
    if isinstance(output, (tuple, list)):
        return f"a {type(output).__name__} of {len(output)} ({', '.join(type(v).__name__ for v in output[:4])})"
    return f"a {type(output).__module__}.{type(output).__qualname__}"


class LogitsOf(torch_nn().Module):  # type: ignore[misc]
    """``model`` whose forward returns :func:`logits_of` its output (``how`` as there).

    Examples
    --------
    >>> import torch
    >>> from renyicert._logits import LogitsOf
    >>> class HuggingFaceStyle(torch.nn.Module):
    ...     def forward(self, x):
    ...         return type("Output", (), {"logits": x[:, :3]})()
    >>> LogitsOf(HuggingFaceStyle())(torch.zeros(2, 5)).shape
    torch.Size([2, 3])
    """

    def __init__(self, model: Any, how: str | Callable[[Any], Any] | None = None) -> None:
        super().__init__()
        self.model = model
        self.how = how

    def forward(self, x: Any) -> Any:
        return logits_of(self.model(x), self.how)
