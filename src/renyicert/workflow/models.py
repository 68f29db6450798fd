"""Models: the small MLP and CNN for the embedded digits, user models, and checkpoints.

A model is named by a *spec*: ``"mlp"`` or ``"cnn"`` (the built-ins), or
``"package.module:callable"`` for a user's own (the callable is called with the
keyword arguments ``input_shape`` and ``num_classes`` when it accepts them, with
none otherwise).  A checkpoint is a state dict (``model.pt``, loaded with
``torch.load(weights_only=True)``, so it cannot run code) beside a JSON file
(``model.json``) holding the spec, the shapes, the mechanism, the
hyper-parameters and the state dict's SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import math
from pathlib import Path
from typing import Any

from .records import atomic_write

__all__ = ["DigitsCNN", "DigitsMLP", "build_model", "file_sha256", "config_sha256", "load_checkpoint", "mechanism_parameters", "model_sha256", "save_checkpoint"]


def _torch_nn() -> Any:
    import torch

    return torch.nn


class DigitsMLP(_torch_nn().Module):  # type: ignore[misc]
    """Two hidden layers of 256 ReLUs on the flattened input.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.models import DigitsMLP
    >>> DigitsMLP()(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(self, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10, hidden: int = 256) -> None:
        nn = _torch_nn()
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Any) -> Any:
        return self.layers(x)


class DigitsCNN(_torch_nn().Module):  # type: ignore[misc]
    """Two 3x3 convolutions (32 and 64 channels, padding 1), a 2x2 max-pool and two linear layers.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.models import DigitsCNN
    >>> DigitsCNN()(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(self, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> None:
        nn = _torch_nn()
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"DigitsCNN needs images (channels, height, width), got input_shape {tuple(input_shape)}")
        channels, height, width = input_shape
        self.layers = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (height // 2) * (width // 2), 128), nn.ReLU(), nn.Linear(128, num_classes),
        )  # fmt: skip

    def forward(self, x: Any) -> Any:
        return self.layers(x)


BUILT_IN_MODELS = {"mlp": DigitsMLP, "cnn": DigitsCNN}


def build_model(spec: str, input_shape: tuple[int, ...], num_classes: int) -> Any:
    """A fresh model for ``spec`` (``"mlp"``, ``"cnn"`` or ``"module:callable"``), checked to map ``(B, *input_shape)`` to ``(B, num_classes)``.

    Examples
    --------
    >>> from renyicert.workflow.models import build_model
    >>> type(build_model("renyicert.workflow.models:DigitsCNN", (1, 8, 8), 10)).__name__
    'DigitsCNN'
    """
    import torch

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model must be 'mlp', 'cnn' or 'module:callable', got {spec!r}")
    if spec in BUILT_IN_MODELS:
        factory: Any = BUILT_IN_MODELS[spec]
    elif ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot load model {spec!r}: {type(error).__name__}: {error}") from error
    else:
        raise ValueError(f"model must be 'mlp', 'cnn' or 'module:callable', got {spec!r}")
    if not callable(factory):
        raise ValueError(f"model {spec!r} is not callable")
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    kwargs = {k: v for k, v in (("input_shape", tuple(input_shape)), ("num_classes", num_classes)) if k in parameters}
    model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    check_model_shapes(model, input_shape, num_classes, spec)
    return model


def check_model_shapes(model: Any, input_shape: tuple[int, ...], num_classes: int, name: str = "the model") -> None:
    """``ValueError`` unless ``model`` maps ``(2, *input_shape)`` to ``(2, num_classes)``."""
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            device = next((p.device for p in model.parameters()), torch.device("cpu"))
            output = model(torch.zeros((2, *input_shape), device=device))
    except Exception as error:
        raise ValueError(f"{name} does not accept inputs of shape (B, *{tuple(input_shape)}): {type(error).__name__}: {error}") from error
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor) or tuple(output.shape) != (2, num_classes):
        shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"{name} maps inputs of shape (2, *{tuple(input_shape)}) to {shape}; expected (2, {num_classes}) logits")


def mechanism_parameters(mechanism: Any) -> dict[str, Any]:
    """A mechanism's parameters beyond its scale, as JSON values (for checkpoints and records settings).

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.workflow.models import mechanism_parameters
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
            raise ValueError(f"parameter {key!r} of {mechanism.label} is {value!r}, which cannot be stored as JSON") from None
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
    >>> from renyicert.workflow.models import model_sha256
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
        raise ValueError(f"checkpoint path {str(path)!r} is a directory (or its .json is); give a file name ending in .pt")
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
    atomic_write(json_path, lambda target: target.write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n"))
    return json_path


#: The largest input a checkpoint may describe (elements), and the most classes.
_MAX_ELEMENTS = 1 << 31
_MAX_CLASSES = 1 << 24


def _checked_description(config: Any, json_path: Path) -> tuple[str, tuple[int, ...], int]:
    """``(spec, input_shape, num_classes)`` of a checkpoint description, each checked for type and range."""
    where = f"{str(json_path)!r}"
    if not isinstance(config, dict):
        raise ValueError(f"{where} is not a renyicert checkpoint description: a JSON {type(config).__name__}, not an object")
    missing = [key for key in ("model", "input_shape", "num_classes") if key not in config]
    if missing:
        raise ValueError(f"{where} is not a renyicert checkpoint description: it lacks {missing}")
    spec, shape, classes = config["model"], config["input_shape"], config["num_classes"]
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"{where}: 'model' must be a non-empty string, got {spec!r}")
    if not isinstance(shape, list) or not shape or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in shape) or math.prod(shape) > _MAX_ELEMENTS:
        raise ValueError(f"{where}: 'input_shape' must be a list of positive integers with at most 2^31 elements in all, got {shape!r}")
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
            raise ValueError(f"{where}: the mechanism's 'parameters' must be an object, got {mechanism.get('parameters')!r}")
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
    import torch

    path = Path(path)
    json_path = path.with_suffix(".json")
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist")
    if not json_path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} has no {json_path.name} beside it (the architecture and settings)")
    try:
        config = json.loads(json_path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{str(json_path)!r} is not a renyicert checkpoint description: {type(error).__name__}: {error}") from error
    spec, input_shape, num_classes = _checked_description(config, json_path)
    if "config_sha256" in config and config["config_sha256"] != config_sha256(config):
        raise ValueError(f"{str(json_path)!r} does not match its own checksum: the description was edited after it was saved")
    if file_sha256(path) != config.get("state_dict_sha256"):
        raise ValueError(f"checkpoint {str(path)!r} does not match the checksum in {json_path.name}: the file was changed or replaced")
    if spec not in BUILT_IN_MODELS and spec not in trusted_models:
        raise ValueError(
            f"the checkpoint's model is {spec!r}, code that a file names: renyicert imports a module:callable only when you "
            f"name it yourself (--model {spec}, or load_checkpoint(..., trusted_models=({spec!r},))) and trust it"
        )
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a loadable state dict: {type(error).__name__}: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors")
    if any(v.is_sparse or v.device.type == "meta" for v in state.values()):
        raise ValueError(f"{str(path)!r} holds sparse or meta tensors, not a model's weights")
    model = build_model(spec, input_shape, num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {str(path)!r} does not fit the architecture {spec!r}: {error}") from error
    return model.eval(), config
