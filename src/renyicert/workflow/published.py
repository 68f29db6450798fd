"""Checkpoints of the field read as their code saved them: Cohen et al.'s ``train.py`` files, with the architecture they name.

See :mod:`renyicert.workflow.zoo` for the architectures and the file format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .weights import describe_key_mismatch, load_weights_file, state_dict_of, strip_wrapper_prefixes
from .zoo import PUBLISHED_ARCHITECTURES, published_model

__all__ = ["load_published_checkpoint", "published_checkpoint_or_none"]


def _is_published(content: Any) -> bool:
    """Whether what a file held is a checkpoint of Cohen et al.'s ``train.py``: a dict with ``arch`` and ``state_dict``."""
    return (
        isinstance(content, dict)
        and isinstance(content.get("arch"), str)
        and isinstance(content.get("state_dict"), dict)
    )


def published_checkpoint_or_none(path: str | Path) -> tuple[Any, dict[str, Any]] | None:
    """:func:`load_published_checkpoint` of ``path`` if it is a file of Cohen et al.'s ``train.py``, else ``None`` (the file read once)."""
    try:
        content = load_weights_file(Path(path))
    except ValueError:
        return None  # not a weights file at all (or a decompression bomb): the caller's own error says what it expected
    return _from_content(content, Path(path)) if _is_published(content) else None


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
    return _from_content(load_weights_file(path), path, arch)


def _from_content(content: Any, path: Path, arch: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The model and its ``info`` from what the checkpoint ``path`` held."""
    named = content.get("arch") if isinstance(content, dict) else None
    chosen = arch or named
    if not isinstance(chosen, str) or chosen not in PUBLISHED_ARCHITECTURES:
        raise ValueError(
            f"{str(path)!r} names architecture {named!r}; renyicert knows Cohen et al.'s {sorted(PUBLISHED_ARCHITECTURES)} "
            "(or give --model with --weights for your own)"
        )
    state = strip_wrapper_prefixes(state_dict_of(content, path, unwrap=True))
    model = published_model(chosen)
    mismatch = describe_key_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(f"the weights in {str(path)!r} do not fit {chosen!r}: {mismatch}")
    model.load_state_dict(state)
    dataset, shape, classes, _ = PUBLISHED_ARCHITECTURES[chosen]
    epoch = content.get("epoch") if isinstance(content, dict) else None
    return model.eval(), {
        "arch": chosen,
        "dataset": dataset,
        "input_shape": shape,
        "num_classes": classes,
        "epoch": epoch if isinstance(epoch, int) else None,
    }
