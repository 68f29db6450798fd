"""Checkpoints of the field read as their code saved them: Cohen et al.'s ``train.py`` files, with the architecture they name.

See :mod:`renyicert.workflow.zoo` for the architectures and the file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .models import _read_state_dict, describe_key_mismatch, strip_wrapper_prefixes
from .zoo import PUBLISHED_ARCHITECTURES, published_model

__all__ = ["is_published_checkpoint", "load_published_checkpoint"]


def is_published_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint saved by Cohen et al.'s ``train.py`` (a dict with ``arch`` and ``state_dict``), read without running code."""
    import torch

    try:
        content = torch.load(path, weights_only=True, map_location="meta")
    except Exception:
        return False
    return isinstance(content, dict) and isinstance(content.get("arch"), str) and isinstance(content.get("state_dict"), dict)


def load_published_checkpoint(path: str | Path, arch: str | None = None) -> tuple[Any, dict[str, Any]]:
    """``(model, info)`` from a checkpoint saved as Cohen et al.'s ``train.py`` saves it: ``{"arch", "state_dict", ...}``.

    The file is read with ``torch.load(weights_only=True)`` (no code runs); ``arch``
    (default: the file's own) picks the architecture; the wrappers' prefixes are
    stripped.  ``info`` holds ``arch``, ``dataset``, ``input_shape``, ``num_classes``
    and the file's ``epoch``.  The noise level is not in the file: certify with the
    one the model was trained at (Cohen et al.'s file names say it, ``noise_0.25``).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    import torch

    try:
        content = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a checkpoint that loads without running code (torch.load weights_only=True): {type(error).__name__}: {error}") from None
    named = content.get("arch") if isinstance(content, dict) else None
    chosen = arch or named
    if not isinstance(chosen, str) or chosen not in PUBLISHED_ARCHITECTURES:
        raise ValueError(
            f"{str(path)!r} names architecture {named!r}; renyicert knows Cohen et al.'s {sorted(PUBLISHED_ARCHITECTURES)} "
            "(or give --model with --weights for your own)"
        )
    state = strip_wrapper_prefixes(_read_state_dict(path, unwrap=True))
    model = published_model(chosen)
    mismatch = describe_key_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(f"the weights in {str(path)!r} do not fit {chosen!r}: {mismatch}")
    model.load_state_dict(state)
    dataset, shape, classes, _ = PUBLISHED_ARCHITECTURES[chosen]
    epoch = content.get("epoch") if isinstance(content, dict) else None
    return model.eval(), {"arch": chosen, "dataset": dataset, "input_shape": shape, "num_classes": classes, "epoch": epoch if isinstance(epoch, int) else None}
