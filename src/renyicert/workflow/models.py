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

from .._torch import torch_nn
from .records import atomic_write

__all__ = [
    "CifarResNet", "DigitsCNN", "DigitsMLP", "build_model", "file_sha256", "config_sha256", "load_checkpoint", "load_weights", "mechanism_parameters",
    "model_sha256", "resnet20", "save_checkpoint",
]  # fmt: skip



class DigitsMLP(torch_nn().Module):  # type: ignore[misc]
    """Two hidden layers of 256 ReLUs on the flattened input.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.models import DigitsMLP
    >>> DigitsMLP()(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(self, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10, hidden: int = 256) -> None:
        nn = torch_nn()
        super().__init__()
        self.layers = nn.Sequential(
            nn.Flatten(), nn.Linear(math.prod(input_shape), hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: Any) -> Any:
        return self.layers(x)


class DigitsCNN(torch_nn().Module):  # type: ignore[misc]
    """Two 3x3 convolutions (32 and 64 channels, padding 1), a 2x2 max-pool and two linear layers.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.models import DigitsCNN
    >>> DigitsCNN()(torch.zeros(5, 1, 8, 8)).shape
    torch.Size([5, 10])
    """

    def __init__(self, input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10) -> None:
        nn = torch_nn()
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


class _BasicBlock(torch_nn().Module):  # type: ignore[misc]
    """Two 3x3 convolutions with batch norm, and a shortcut (a 1x1 convolution where the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        nn = torch_nn()
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs),
        )  # fmt: skip
        self.shortcut = (
            nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs)) if stride != 1 or inputs != outputs else nn.Identity()
        )

    def forward(self, x: Any) -> Any:
        return torch_nn().functional.relu(self.residual(x) + self.shortcut(x))


class CifarResNet(torch_nn().Module):  # type: ignore[misc]
    """The ResNet of He et al. (2016, section 4.2) for 32x32 images: depth 6k + 2, three stages of 16, 32 and 64 channels.

    Cohen et al. (2019) certified CIFAR-10 with depth 110 (``CifarResNet(depth=110)``);
    ``resnet20`` is the same code at depth 20 (0.27 M parameters).  The shortcuts
    that change shape are 1x1 convolutions (He et al.'s option B); global average
    pooling makes any image size work.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.models import CifarResNet
    >>> model = CifarResNet((3, 32, 32), 10, depth=20).eval()
    >>> model(torch.zeros(2, 3, 32, 32)).shape, sum(p.numel() for p in model.parameters())
    (torch.Size([2, 10]), 272474)
    """

    def __init__(self, input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10, depth: int = 20) -> None:
        nn = torch_nn()
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"CifarResNet needs images (channels, height, width), got input_shape {tuple(input_shape)}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth must be 6k + 2 with k >= 1 (20, 32, 44, 56, 110), got {depth!r}")
        blocks = (depth - 2) // 6
        layers: list[Any] = [nn.Conv2d(input_shape[0], 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        channels = 16
        for stage, width in enumerate((16, 32, 64)):
            for block in range(blocks):
                layers.append(_BasicBlock(channels, width, stride=2 if stage > 0 and block == 0 else 1))
                channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Any) -> Any:
        return self.layers(x)


def resnet20(input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10) -> Any:
    """:class:`CifarResNet` of depth 20 (the model zoo's ``"resnet20"``)."""
    return CifarResNet(input_shape, num_classes, depth=20)


def _published(arch: str) -> Any:
    """A factory of the model zoo for Cohen et al.'s ``arch`` (:mod:`renyicert.workflow.zoo`), with their normalisation in front."""

    def build(input_shape: tuple[int, ...] = (3, 32, 32), num_classes: int = 10) -> Any:
        from .zoo import PUBLISHED_ARCHITECTURES, published_model

        _, shape, classes, _ = PUBLISHED_ARCHITECTURES[arch]
        if (tuple(input_shape) != shape and arch != "resnet50") or num_classes != classes:  # ResNet-50 pools any image size
            raise ValueError(f"{arch} takes {shape} images and scores {classes} classes, got input_shape {tuple(input_shape)} and {num_classes} classes")
        return published_model(arch)

    build.__name__ = arch
    return build


BUILT_IN_MODELS = {
    "mlp": DigitsMLP, "cnn": DigitsCNN, "resnet20": resnet20,
    "cifar_resnet20": _published("cifar_resnet20"), "cifar_resnet110": _published("cifar_resnet110"), "resnet50": _published("resnet50"),
}  # fmt: skip


def build_model(spec: str, input_shape: tuple[int, ...], num_classes: int, device: Any = None, output: Any = None) -> Any:
    """A fresh model for ``spec`` (``"mlp"``, ``"cnn"`` or ``"module:callable"``), checked to map ``(B, *input_shape)`` to ``(B, num_classes)``.

    ``device="meta"`` builds it with shapes only and no memory (what a checkpoint's weights are checked against first);
    ``output`` says where its logits are when it returns more than a tensor (as ``Smoothed(output=...)``).

    Examples
    --------
    >>> from renyicert.workflow.models import build_model
    >>> type(build_model("renyicert.workflow.models:DigitsCNN", (1, 8, 8), 10)).__name__
    'DigitsCNN'
    """
    import torch

    if not isinstance(spec, str) or not spec:
        raise ValueError(f"model must be one of {sorted(BUILT_IN_MODELS)} or 'module:callable', got {spec!r}")
    if spec in BUILT_IN_MODELS:
        factory: Any = BUILT_IN_MODELS[spec]
    elif ":" in spec:
        module_name, _, attribute = spec.partition(":")
        try:
            factory = getattr(_import_user_module(module_name), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"cannot load model {spec!r}: {type(error).__name__}: {error}") from error
    else:
        raise ValueError(f"model must be one of {sorted(BUILT_IN_MODELS)} or 'module:callable', got {spec!r}")
    if not callable(factory):
        raise ValueError(f"model {spec!r} is not callable")
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}  # type: ignore[assignment]
    kwargs = {k: v for k, v in (("input_shape", tuple(input_shape)), ("num_classes", num_classes)) if k in parameters}
    if device is None:
        model = factory(**kwargs)
    else:
        with torch.device(device):
            model = factory(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    check_model_shapes(model, input_shape, num_classes, spec, output)
    return model


def _import_user_module(name: str) -> Any:
    """Import ``name`` as ``python -m`` would find it: from the working directory first, then the installed packages.

    The ``renyicert`` script's own folder is on ``sys.path``, not the working
    directory, so ``--model mymodels:Net`` beside ``mymodels.py`` would not be
    found; the working directory is put first for this one import only.
    """
    import os
    import sys

    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


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
    >>> from renyicert.workflow.models import load_weights
    >>> path = Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    >>> type(load_weights(torch.nn.Linear(2, 2), path)).__name__
    'Linear'
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist")
    state = _read_state_dict(path, unwrap=True)
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
    >>> from renyicert.workflow.models import strip_wrapper_prefixes
    >>> sorted(strip_wrapper_prefixes({"1.module.fc.weight": 0, "1.module.fc.bias": 1}))
    ['1.fc.bias', '1.fc.weight']
    """
    import re

    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module."):]: value for key, value in state.items()}
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


def _read_state_dict(path: Path, unwrap: bool = False) -> dict[str, Any]:
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
        state = next((state[key] for key in ("state_dict", "model_state_dict") if isinstance(state.get(key), dict)), state)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise ValueError(f"{str(path)!r} holds a {type(state).__name__}, not a state dict of tensors (save one with torch.save(model.state_dict(), path))")
    if any(v.is_sparse or v.device.type == "meta" for v in state.values()):
        raise ValueError(f"{str(path)!r} holds sparse or meta tensors, not a model's weights")
    if unwrap and state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def check_model_shapes(model: Any, input_shape: tuple[int, ...], num_classes: int, name: str = "the model", how: Any = None) -> None:
    """``ValueError`` unless ``model`` maps ``(2, *input_shape)`` to ``(2, num_classes)`` logits (found in its output as ``Smoothed(output=how)`` finds them).

    The forward pass runs on torch's ``meta`` device (shapes only, nothing
    allocated), so that a large or hostile ``input_shape`` costs no memory; a
    model whose forward the meta device cannot run is tried on real zeros.
    """
    import torch

    from .._logits import logits_of

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            output = _meta_forward(model, input_shape)
            if output is None:
                device = next((p.device for p in model.parameters()), torch.device("cpu"))
                output = model(torch.zeros((2, *input_shape), device=device))
    except Exception as error:
        raise ValueError(f"{name} does not accept inputs of shape (B, *{tuple(input_shape)}): {type(error).__name__}: {error}") from error
    finally:
        model.train(was_training)
    try:
        logits = logits_of(output, how)  # a tensor, or a LogitsNotFound naming what the model returned
    except TypeError as error:
        raise ValueError(f"{name}: {error}") from None
    if tuple(logits.shape) != (2, num_classes):
        raise ValueError(f"{name} maps inputs of shape (2, *{tuple(input_shape)}) to {tuple(logits.shape)}; expected (2, {num_classes}) logits")


def _meta_forward(model: Any, input_shape: tuple[int, ...]) -> Any:
    """``model``'s output on a meta batch ``(2, *input_shape)`` with meta copies of its weights; ``None`` if the meta device cannot run it."""
    import itertools

    import torch

    try:
        meta = {name: torch.empty_like(value, device="meta") for name, value in itertools.chain(model.named_parameters(), model.named_buffers())}
        return torch.func.functional_call(model, meta, (torch.zeros((2, *input_shape), device="meta"),))
    except NotImplementedError:
        return None
    except Exception as error:
        if "meta" in str(error).lower():  # .item(), numpy() or an op without a meta kernel: run it for real
            return None
        raise


def describe_key_mismatch(expected: dict[str, Any], found: dict[str, Any]) -> str | None:
    """A few lines on how the state dict ``found`` differs from a model's ``expected`` one (keys and shapes), or ``None`` if it fits.

    It counts the missing, unexpected and reshaped keys, names up to three of each,
    and the likely cause: a prefix to strip or add (a ``Sequential(NormalizeLayer, net)``
    or ``DataParallel`` wrapper), or another architecture's naming.

    Examples
    --------
    >>> from renyicert.workflow.models import describe_key_mismatch
    >>> print(describe_key_mismatch({"fc.weight": 0, "fc.bias": 0}, {"1.fc.weight": 0, "1.fc.bias": 0}))
    2 keys missing (fc.bias, fc.weight), 2 unexpected (1.fc.bias, 1.fc.weight); likely cause: every key in the file starts with '1.', which the model's keys lack (a wrapper such as Sequential(NormalizeLayer, net)): strip it
    """
    shape = lambda value: tuple(getattr(value, "shape", ()))  # noqa: E731
    missing = sorted(key for key in expected if key not in found)
    unexpected = sorted(key for key in found if key not in expected)
    reshaped = sorted(f"{key} {shape(found[key])} (the model's is {shape(expected[key])})" for key in expected if key in found and shape(found[key]) != shape(expected[key]))
    if not (missing or unexpected or reshaped):
        return None

    def few(keys: list[str]) -> str:
        return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

    parts = [f"{len(keys)} {label} ({few(keys)})" for label, keys in (("keys missing", missing), ("unexpected", unexpected), ("of another shape", reshaped)) if keys]
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
        if len({k[len(prefix):] for k in found} & wanted) * 2 >= len(wanted):
            return f"every key in the file starts with {prefix!r}, which the model's keys lack (a wrapper such as Sequential(NormalizeLayer, net)): strip it"
    for prefix in _shared_prefixes(expected):
        if len({prefix + k for k in found} & wanted) * 2 >= len(wanted) and not given & wanted:
            return f"every key of the model starts with {prefix!r}, which the file's keys lack: the file holds the inner network's weights"
    naming = {"layer1.0.conv1.weight": "torchvision's or Cohen et al.'s ResNet naming (layer1.0.conv1): try --model cifar_resnet110 or resnet50",
              "layers.3.residual.0.weight": "renyicert's own CifarResNet naming (layers.3.residual.0): try --model resnet20"}  # fmt: skip
    for key, hint in naming.items():
        if any(k.endswith(key) for k in found) and not any(k.endswith(key) for k in expected):
            return "the file uses " + hint
    return None


def _check_state_fits(model: Any, state: dict[str, Any], path: Path, spec: str) -> None:
    """``ValueError`` unless ``state`` has exactly ``model``'s keys and shapes (:func:`describe_key_mismatch` says how it differs)."""
    mismatch = describe_key_mismatch(model.state_dict(), state)
    if mismatch is not None:
        raise ValueError(f"checkpoint {str(path)!r} does not fit the architecture {spec!r}: {mismatch}")


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
_MAX_ELEMENTS = 1 << 28
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
        raise ValueError(f"{where}: 'input_shape' must be a list of positive integers with at most 2^28 elements in all, got {shape!r}")
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
    state = _read_state_dict(path)
    try:
        probe = build_model(spec, input_shape, num_classes, device="meta")  # shapes first: nothing allocated
    except Exception:  # a factory that the meta device cannot build (it reads values): checked when built for real
        probe = None
    if probe is not None:
        _check_state_fits(probe, state, path, spec)
    model = build_model(spec, input_shape, num_classes)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"checkpoint {str(path)!r} does not fit the architecture {spec!r}: {error}") from error
    return model.eval(), config
