"""Checkpoints of ``renyicert train``: a state dict (``model.pt``) beside a JSON description (``model.json``).

The description holds the model's spec, the shapes, the mechanism it was
trained with, the hyper-parameters and the state dict's SHA-256; loading checks
the description, the hash and the shapes before the weights are read, and
imports no code but the built-in models and the ``module:callable`` the user names.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from .models import BUILT_IN_MODELS, build_model
from .records import atomic_write
from .weights import check_state_fits, read_state_dict

__all__ = ["config_sha256", "file_sha256", "load_checkpoint", "mechanism_parameters", "model_sha256", "save_checkpoint"]


def mechanism_parameters(mechanism: Any) -> dict[str, Any]:
    """A mechanism's parameters beyond its scale, as JSON values (for checkpoints and records settings).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.workflow.checkpoints import mechanism_parameters
    >>> mechanism_parameters(renyicert.get_mechanism("gaussian", scale=0.5))
    {}
    """
    parameters = {key: value for key, value in mechanism.get_params().items() if key != "scale"}
    for key, value in parameters.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"parameter {key!r} of {mechanism.label} is {value!r}, which strict JSON cannot store")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise ValueError(
                f"parameter {key!r} of {mechanism.label} is {value!r}, which cannot be stored as JSON"
            ) from None
    return parameters


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(model: Any) -> str:
    """SHA-256 of a model's state dict (names, dtypes, shapes and values, in order): what a certificate was computed for.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.checkpoints import model_sha256
    >>> model = torch.nn.Linear(2, 2)
    >>> before = model_sha256(model)
    >>> with torch.no_grad():
    ...     _ = model.bias.add_(1.0)
    >>> model_sha256(model) == before
    False
    """
    import torch

    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)}".encode())
        digest.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()


def config_sha256(config: dict[str, Any]) -> str:
    """SHA-256 of a checkpoint description without its own ``config_sha256`` key (canonical JSON)."""
    body = {key: value for key, value in config.items() if key != "config_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, allow_nan=False).encode()).hexdigest()


def save_checkpoint(path: str | Path, model: Any, config: dict[str, Any]) -> Path:
    """Save ``model``'s state dict to ``path`` (``.pt``) and ``config`` plus both checksums to ``path`` with ``.json``.

    ``config`` must hold ``model`` (the spec), ``input_shape`` and ``num_classes``;
    anything else JSON-serialisable (mechanism, hyper-parameters) is kept as is.
    Both files are written atomically (temporary file, fsync, rename); the
    description holds the weights' SHA-256 and its own. Returns the JSON file's path.
    """
    import torch

    path = Path(path)
    if path.suffix != ".pt":
        raise ValueError(f"checkpoint path must end in .pt, got {str(path)!r}")
    if path.is_dir() or path.with_suffix(".json").is_dir():
        raise ValueError(
            f"checkpoint path {str(path)!r} is a directory (or its .json is); give a file name ending in .pt"
        )
    missing = [key for key in ("model", "input_shape", "num_classes") if key not in config]
    if missing:
        raise ValueError(f"checkpoint config lacks {missing}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(error.errno, f"cannot create the folder of {str(path)!r}: {error.strerror or error}") from None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(path, lambda target: torch.save(state, target))
    meta = dict(config, input_shape=list(config["input_shape"]), state_dict_sha256=file_sha256(path))
    meta["config_sha256"] = config_sha256(meta)
    json_path = path.with_suffix(".json")
    atomic_write(
        json_path, lambda target: target.write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
    )
    return json_path


#: The largest input a checkpoint may describe (elements), and the most classes.
_MAX_ELEMENTS = 1 << 28


_MAX_CLASSES = 1 << 24


def _checked_description(config: Any, json_path: Path) -> tuple[str, tuple[int, ...], int]:
    """``(spec, input_shape, num_classes)`` of a checkpoint description, each checked for type and range."""
    where = f"{str(json_path)!r}"
    if not isinstance(config, dict):
        raise ValueError(
            f"{where} is not a renyicert checkpoint description: a JSON {type(config).__name__}, not an object"
        )
    missing = [key for key in ("model", "input_shape", "num_classes") if key not in config]
    if missing:
        raise ValueError(f"{where} is not a renyicert checkpoint description: it lacks {missing}")
    spec, shape, classes = config["model"], config["input_shape"], config["num_classes"]
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"{where}: 'model' must be a non-empty string, got {spec!r}")
    if (
        not isinstance(shape, list)
        or not shape
        or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape)
        or math.prod(shape) > _MAX_ELEMENTS
    ):
        raise ValueError(
            f"{where}: 'input_shape' must be a list of positive integers with at most 2^28 elements in all, got {shape!r}"
        )
    if isinstance(classes, bool) or not isinstance(classes, int) or not 2 <= classes <= _MAX_CLASSES:
        raise ValueError(f"{where}: 'num_classes' must be an integer in [2, 2^24], got {classes!r}")
    mechanism = config.get("mechanism")
    if mechanism is not None:
        if not isinstance(mechanism, dict) or not isinstance(mechanism.get("name"), str):
            raise ValueError(f"{where}: 'mechanism' must be null or an object with a string 'name', got {mechanism!r}")
        scale = mechanism.get("scale")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise ValueError(f"{where}: the mechanism's 'scale' must be a number, got {scale!r}")
        if not isinstance(mechanism.get("parameters", {}), dict):
            raise ValueError(
                f"{where}: the mechanism's 'parameters' must be an object, got {mechanism.get('parameters')!r}"
            )
    return spec, tuple(shape), classes


def load_checkpoint(path: str | Path, trusted_models: tuple[str, ...] = ()) -> tuple[Any, dict[str, Any]]:
    """``(model, config)`` from a checkpoint written by :func:`save_checkpoint` (``model.pt`` beside ``model.json``).

    A checkpoint cannot run code: the state dict is read with
    ``torch.load(weights_only=True)`` and must match the checksum in the JSON
    file (which covers itself too); a built-in architecture (``"mlp"``, ``"cnn"``)
    is built by name, and a ``module:callable`` one is imported only when the
    caller names that spec in ``trusted_models`` (the command line's ``--model``),
    never because the file says so.  See ``docs/security.md``.
    """
    path = Path(path)
    json_path = path.with_suffix(".json")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    if not json_path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} has no {json_path.name} beside it (the architecture and settings)")
    try:
        config = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{str(json_path)!r} is not a renyicert checkpoint description: {type(error).__name__}: {error}"
        ) from error
    spec, input_shape, num_classes = _checked_description(config, json_path)
    if "config_sha256" in config and config["config_sha256"] != config_sha256(config):
        raise ValueError(
            f"{str(json_path)!r} does not match its own checksum: the description was edited after it was saved"
        )
    if file_sha256(path) != config.get("state_dict_sha256"):
        raise ValueError(
            f"checkpoint {str(path)!r} does not match the checksum in {json_path.name}: the file was changed or replaced"
        )
    if spec not in BUILT_IN_MODELS and spec not in trusted_models:
        raise ValueError(
            f"the checkpoint's model is {spec!r}, code that a file names: renyicert imports a module:callable only when you "
            f"name it yourself (--model {spec}, or load_checkpoint(..., trusted_models=({spec!r},))) and trust it"
        )
    state = read_state_dict(path)
    try:
        probe = build_model(spec, input_shape, num_classes, device="meta")  # shapes first: nothing allocated
    except Exception:  # a factory that the meta device cannot build (it reads values): checked when built for real
        probe = None
    if probe is not None:
        check_state_fits(probe, state, path, spec)
    model = build_model(spec, input_shape, num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {str(path)!r} does not fit the architecture {spec!r}: {error}") from error
    return model.eval(), config
