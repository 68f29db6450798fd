"""Plain weights: a state dict saved with ``torch.save``, read without running code, checked against the model it loads into.

Read with ``torch.load(weights_only=True)`` after the archive's sizes are
checked; the wrappers training scripts add (``module.``, ``_orig_mod.``, a
``state_dict`` key) are taken off, and a key mismatch is described in one line
(missing and unexpected keys, and the likely cause).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "check_state_fits",
    "describe_key_mismatch",
    "load_weights",
    "load_weights_file",
    "read_state_dict",
    "state_dict_of",
    "strip_wrapper_prefixes",
]


def load_weights(model: Any, path: str | Path) -> Any:
    """Load the weights in ``path`` into ``model`` (in place, returned): a plain ``state_dict`` saved with ``torch.save``.

    The file is read with ``torch.load(weights_only=True)``, so it cannot run code.
    Also accepted: a dict holding the state dict under ``"state_dict"`` or
    ``"model_state_dict"`` (what training scripts such as Cohen et al.'s save
    beside other fields), and keys prefixed by ``module.`` (``DataParallel``).
    The keys and shapes must match the model exactly; a ``ValueError`` names the
    missing and unexpected ones.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from renyicert.workflow.weights import load_weights
    >>> path = Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    >>> type(load_weights(torch.nn.Linear(2, 2), path)).__name__
    'Linear'
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist")
    state = read_state_dict(path, unwrap=True)
    expected = model.state_dict()
    mismatch = describe_key_mismatch(expected, state)
    if mismatch is not None:
        stripped = strip_wrapper_prefixes(state)  # Cohen et al.'s "1.module." and DataParallel's "module."
        if describe_key_mismatch(expected, stripped) is None:
            state, mismatch = stripped, None
    if mismatch is not None:
        raise ValueError(f"the weights in {str(path)!r} do not fit the model: {mismatch}")
    model.load_state_dict(state)
    return model


#: A weights archive may declare at most this many bytes beyond its own size (torch.save stores its entries uncompressed).
_ARCHIVE_SLACK = 64 << 20


def strip_wrapper_prefixes(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` without the prefixes wrappers add: ``module.`` (DataParallel) at the start, or right after a ``Sequential`` index (``1.module.``).

    Examples
    --------
    >>> from renyicert.workflow.weights import strip_wrapper_prefixes
    >>> sorted(strip_wrapper_prefixes({"1.module.fc.weight": 0, "1.module.fc.bias": 1}))
    ['1.fc.bias', '1.fc.weight']
    """
    import re

    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    pattern = re.compile(r"^(\d+)\.module\.")
    if state and any(pattern.match(key) for key in state):
        state = {pattern.sub(r"\1.", key): value for key, value in state.items()}
    return state


def _check_archive_sizes(path: Path) -> None:
    """``ValueError`` if the zip archive ``path`` declares entries far larger than itself (a decompression bomb), before any is read.

    ``torch.save`` writes its entries uncompressed, so a real weights file
    declares about its own size; a compressed archive may declare up to four
    times its size plus 64 MiB.
    """
    import zipfile

    try:
        if not zipfile.is_zipfile(path):
            return
        with zipfile.ZipFile(path) as archive:
            declared = sum(entry.file_size for entry in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # torch.load names what is wrong with it
    size = path.stat().st_size
    if declared > max(4 * size, size + _ARCHIVE_SLACK):
        raise ValueError(
            f"{str(path)!r} declares {declared:,} bytes of entries in a {size:,}-byte archive: not a weights file written by torch.save "
            "(a decompression bomb?); refused before reading it"
        )


def read_state_dict(path: Path, unwrap: bool = False) -> dict[str, Any]:
    """The tensors of the state dict in ``path``, read with ``torch.load(weights_only=True)`` (no code runs), dense and with values.

    With ``unwrap``, a state dict held under ``"state_dict"`` or ``"model_state_dict"``
    is taken from there, and a ``module.`` prefix on every key (``DataParallel``) is dropped.
    """
    return state_dict_of(load_weights_file(path), path, unwrap)


def load_weights_file(path: Path) -> Any:
    """What ``path`` holds, read with ``torch.load(weights_only=True)`` (no code runs) once its archive's declared sizes are bounded."""
    import torch

    _check_archive_sizes(path)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise ValueError(
            f"{str(path)!r} is not a loadable state dict (not a state dict that loads without running code, torch.load weights_only=True): "
            f"{type(error).__name__}: {error}"
        ) from error


def state_dict_of(content: Any, path: Path, unwrap: bool = False) -> dict[str, Any]:
    """The state dict in ``content`` (what :func:`load_weights_file` read from ``path``), checked: tensors by name, dense and with values."""
    import torch

    state = content
    if unwrap and isinstance(state, dict):
        state = next(
            (state[key] for key in ("state_dict", "model_state_dict") if isinstance(state.get(key), dict)), state
        )
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(
            f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors (save one with torch.save(model.state_dict(), path))"
        )
    if any(v.is_sparse or v.device.type == "meta" for v in state.values()):
        raise ValueError(f"{str(path)!r} holds sparse or meta tensors, not a model's weights")
    if unwrap and state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def describe_key_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """A few lines on how the state dict ``found`` differs from a model's ``expected`` one (keys and shapes), or ``None`` if it fits.

    It counts the missing, unexpected and reshaped keys, names up to three of each,
    and the likely cause: a prefix to strip or add (a ``Sequential(NormalizeLayer, net)``
    or ``DataParallel`` wrapper), or another architecture's naming.

    Examples
    --------
    >>> from renyicert.workflow.weights import describe_key_mismatch
    >>> print(describe_key_mismatch({"fc.weight": 0, "fc.bias": 0}, {"1.fc.weight": 0, "1.fc.bias": 0}))
    2 keys missing (fc.bias, fc.weight), 2 unexpected (1.fc.bias, 1.fc.weight); likely cause: every key in the file starts with '1.', which the model's keys lack (a wrapper such as Sequential(NormalizeLayer, net)): strip it
    """
    shape = lambda value: tuple(getattr(value, "shape", ()))  # noqa: E731
    missing = sorted(key for key in expected if key not in found)
    unexpected = sorted(key for key in found if key not in expected)
    reshaped = sorted(
        f"{key} {shape(found[key])} (the model's is {shape(expected[key])})"
        for key in expected
        if key in found and shape(found[key]) != shape(expected[key])
    )
    if not (missing or unexpected or reshaped):
        return None

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    parts = [
        f"{len(keys)} {label} ({few(keys)})"
        for label, keys in (("keys missing", missing), ("unexpected", unexpected), ("of another shape", reshaped))
        if keys
    ]
    text = ", ".join(parts)
    cause = _likely_cause(list(expected), list(found))
    return text + (f"; likely cause: {cause}" if cause else "")


def _shared_prefixes(keys: list[str]) -> list[str]:
    """The prefixes of one or two dotted components that every key has, longest first (``["1.module.", "1."]``)."""
    first = keys[0].split(".")
    found = [".".join(first[:n]) + "." for n in (2, 1) if len(first) > n]
    return [p for p in found if all(k.startswith(p) for k in keys)]


def _likely_cause(expected: list[str], found: list[str]) -> str | None:
    """A prefix one side has and the other lacks, or the naming of a known architecture."""
    if not expected or not found:
        return None
    wanted, given = set(expected), set(found)
    for prefix in _shared_prefixes(found):
        if len({k[len(prefix) :] for k in found} & wanted) * 2 >= len(wanted):
            return f"every key in the file starts with {prefix!r}, which the model's keys lack (a wrapper such as Sequential(NormalizeLayer, net)): strip it"
    for prefix in _shared_prefixes(expected):
        if len({prefix + k for k in found} & wanted) * 2 >= len(wanted) and not given & wanted:
            return f"every key of the model starts with {prefix!r}, which the file's keys lack: the file holds the inner network's weights"
    naming = {
        "layer1.0.conv1.weight": "torchvision's or Cohen et al.'s ResNet naming (layer1.0.conv1): try --model cifar_resnet110 or resnet50",
        "layers.3.residual.0.weight": "renyicert's own CifarResNet naming (layers.3.residual.0): try --model resnet20",
    }
    for key, hint in naming.items():
        if any(k.endswith(key) for k in found) and not any(k.endswith(key) for k in expected):
            return "the file uses " + hint
    return None


def check_state_fits(model: Any, state: dict[str, Any], path: Path, spec: str) -> None:
    """``ValueError`` unless ``state`` has exactly ``model``'s keys and shapes (:func:`describe_key_mismatch` says how it differs)."""
    mismatch = describe_key_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(f"checkpoint {str(path)!r} does not fit the architecture {spec!r}: {mismatch}")
