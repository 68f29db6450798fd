"""Models: the small MLP and CNN for the embedded digits, ResNet-20, user models named by a spec, their shape check.

A model is named by a *spec*: ``"mlp"`` or ``"cnn"`` (the built-ins), or
``"package.module:callable"`` for a user's own (the callable is called with the
keyword arguments ``input_shape`` and ``num_classes`` when it accepts them, with
none otherwise).  A checkpoint is a state dict (``model.pt``, loaded with
``torch.load(weights_only=True)``, so it cannot run code) beside a JSON file
(``model.json``) holding the spec, the shapes, the mechanism, the
hyper-parameters and the state dict's SHA-256 (:mod:`renyicert.workflow.checkpoints`);
plain weights are :mod:`renyicert.workflow.weights`.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any

from .._logits import logits_of
from .._torch import torch_nn
from .zoo import PUBLISHED_ARCHITECTURES, published_model

__all__ = ["CifarResNet", "DigitsCNN", "DigitsMLP", "BUILT_IN_MODELS", "build_model", "check_model_shapes", "resnet20"]


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
            nn.Flatten(),
            nn.Linear(math.prod(input_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
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
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (height // 2) * (width // 2), 128),
            nn.ReLU(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: Any) -> Any:
        return self.layers(x)


class _BasicBlock(torch_nn().Module):  # type: ignore[misc]
    """Two 3x3 convolutions with batch norm, and a shortcut (a 1x1 convolution where the shape changes)."""

    def __init__(self, inputs: int, outputs: int, stride: int) -> None:
        nn = torch_nn()
        super().__init__()
        self.residual = nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
            nn.ReLU(),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=False),
            nn.BatchNorm2d(outputs),
        )
        self.shortcut = (
            nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride=stride, bias=False), nn.BatchNorm2d(outputs))
            if stride != 1 or inputs != outputs
            else nn.Identity()
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
            raise ValueError(
                f"CifarResNet needs images (channels, height, width), got input_shape {tuple(input_shape)}"
            )
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
        _, shape, classes, _ = PUBLISHED_ARCHITECTURES[arch]
        if (
            tuple(input_shape) != shape and arch != "resnet50"
        ) or num_classes != classes:  # ResNet-50 pools any image size
            raise ValueError(
                f"{arch} takes {shape} images and scores {classes} classes, got input_shape {tuple(input_shape)} and {num_classes} classes"
            )
        return published_model(arch)

    build.__name__ = arch
    return build


BUILT_IN_MODELS = {
    "mlp": DigitsMLP,
    "cnn": DigitsCNN,
    "resnet20": resnet20,
    "cifar_resnet20": _published("cifar_resnet20"),
    "cifar_resnet110": _published("cifar_resnet110"),
    "resnet50": _published("resnet50"),
}


def build_model(
    spec: str, input_shape: tuple[int, ...], num_classes: int, device: Any = None, output: Any = None
) -> Any:
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


def check_model_shapes(
    model: Any, input_shape: tuple[int, ...], num_classes: int, name: str = "the model", how: Any = None
) -> None:
    """``ValueError`` unless ``model`` maps ``(2, *input_shape)`` to ``(2, num_classes)`` logits (found in its output as ``Smoothed(output=how)`` finds them).

    The forward pass runs on torch's ``meta`` device (shapes only, nothing
    allocated), so that a large or hostile ``input_shape`` costs no memory; a
    model whose forward the meta device cannot run is tried on real zeros.
    """
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            output = _meta_forward(model, input_shape)
            if output is None:
                device = next((p.device for p in model.parameters()), torch.device("cpu"))
                output = model(torch.zeros((2, *input_shape), device=device))
    except Exception as error:
        raise ValueError(
            f"{name} does not accept inputs of shape (B, *{tuple(input_shape)}): {type(error).__name__}: {error}"
        ) from error
    finally:
        model.train(was_training)
    try:
        logits = logits_of(output, how)  # a tensor, or a LogitsNotFound naming what the model returned
    except TypeError as error:
        raise ValueError(f"{name}: {error}") from None
    if tuple(logits.shape) != (2, num_classes):
        raise ValueError(
            f"{name} maps inputs of shape (2, *{tuple(input_shape)}) to {tuple(logits.shape)}; expected (2, {num_classes}) logits"
        )


def _meta_forward(model: Any, input_shape: tuple[int, ...]) -> Any:
    """``model``'s output on a meta batch ``(2, *input_shape)`` with meta copies of its weights; ``None`` if the meta device cannot run it."""
    import itertools

    import torch

    try:
        meta = {
            name: torch.empty_like(value, device="meta")
            for name, value in itertools.chain(model.named_parameters(), model.named_buffers())
        }
        return torch.func.functional_call(model, meta, (torch.zeros((2, *input_shape), device="meta"),))
    except NotImplementedError:
        return None
    except Exception as error:
        if "meta" in str(error).lower():  # .item(), numpy() or an op without a meta kernel: run it for real
            return None
        raise
