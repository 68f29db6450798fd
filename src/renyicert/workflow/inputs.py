"""What a run certifies: the model, the data, the device and the noise, from plain keywords.

The command line's workflow commands (``renyicert certify``, ``predict``,
``attack``, ``train``, ``report``, ``recertify``) turn their flags into these
keywords, one for one, so the errors name the flags: ``data`` is ``--data``,
``checkpoint`` is ``--checkpoint``, and so on (``docs/your-model.md``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..checker import verify_comparison_bounds
from ..mechanism import Mechanism
from ..radii import best_bounds, offered_bounds
from ..registry import build_mechanism, mechanism_class
from ..smoothing import Smoothed
from .checkpoints import load_checkpoint
from .data import LabelledData, load_data, load_digits, parse_input_range
from .datasets import open_data
from .models import build_model
from .plots import norm_name
from .published import published_checkpoint_or_none
from .weights import load_weights

__all__ = [
    "check_checkpoint_path",
    "load_model",
    "load_model_and_data",
    "load_split",
    "noise_to_certify",
    "recorded_norm",
    "resolve_device",
    "settings_mechanism",
    "smoothed_classifier",
    "stored_mechanism",
]


def load_split(
    data: str,
    part: str,
    classes: int | None = None,
    *,
    num_classes: int | None = None,
    input_range: str | None = None,
    image_size: int | None = None,
) -> LabelledData:
    """The ``part`` ("train" or "test") of ``data``: the digits split, a data set folder's part, or the whole user file.

    The number of classes is ``num_classes``, else ``classes`` (a checkpoint's),
    else the data set's own (CIFAR-10: 10; image folders: one per folder), else
    the largest label + 1.
    """
    classes = num_classes if num_classes is not None else classes
    value_range = parse_input_range(input_range) if input_range else None
    folder = None if data == "digits" else open_data(data, part, image_size=image_size)
    if folder is None and image_size is not None:
        raise ValueError(f"--image-size applies to image folders; {data!r} is not one")
    if (data == "digits" or folder is not None) and value_range is not None:
        raise ValueError(f"--input-range applies to .npz/.pt files; {data!r} is read as 8-bit pixels scaled to [0, 1]")
    if data != "digits" and folder is None:
        return load_data(data, num_classes=classes, input_range=value_range)
    found = load_digits()[0 if part == "train" else 1] if folder is None else folder
    if classes is not None and classes != found.num_classes:
        what = "the digits have" if folder is None else f"{data!r} has"
        raise ValueError(
            f"{what} {found.num_classes} classes, got --num-classes {classes}"
            if num_classes is not None
            else f"the checkpoint's model scores {classes} classes, {what} {found.num_classes}"
        )
    return found


def resolve_device(device: str | None = "auto") -> Any:
    """``device`` as a torch device: ``auto`` is CUDA when there is one, else the CPU; an absent CUDA device is refused."""
    import torch

    text = device or "auto"
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {text!r}") from None
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {text!r}")
    if resolved.type == "cuda":
        count = torch.cuda.device_count()
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {text}: torch sees no CUDA device here (torch.cuda.is_available() is False); use --device cpu"
            )
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"--device {text}: there are {count} CUDA devices (cuda:0 to cuda:{count - 1})")
    return resolved


def load_model_and_data(
    *,
    data: str = "digits",
    checkpoint: str | None = None,
    weights: str | None = None,
    model: str | None = None,
    output_key: str | None = None,
    limit: int | None = None,
    device: str | None = "auto",
    **split: Any,
) -> tuple[Any, LabelledData, dict[str, Any]]:
    """``(model on device, test data, the noise it was trained with)``: a checkpoint, or ``model`` with ``weights``.

    With a checkpoint the model is read first, so that the data's classes default
    to its model's; with plain weights the data come first and give the shapes.
    ``split`` are :func:`load_split`'s keywords. Only the ``module:callable`` named
    by ``model`` may be imported for a checkpoint (never code a file names).
    """
    if checkpoint and weights:
        raise ValueError(
            "give --checkpoint (a model saved by 'renyicert train') or --model with --weights (your own), not both"
        )
    published = None
    if checkpoint and not Path(checkpoint).with_suffix(".json").is_file():
        published = published_checkpoint_or_none(checkpoint)  # Cohen et al.'s train.py file, or None to refuse below
    if published is not None:
        network, info = published
        test = load_split(data, "test", info["num_classes"], **split).subset(limit)
        _check_published(checkpoint, info, test)
        trained_with: dict[
            str, Any
        ] = {}  # their files do not record the noise level: --mechanism gaussian --scale SIGMA
    elif checkpoint:
        network, config = load_checkpoint(checkpoint, trusted_models=(model,) if model else ())
        test = load_split(data, "test", int(config["num_classes"]), **split).subset(limit)
        if tuple(config["input_shape"]) != test.input_shape:
            raise ValueError(
                f"the checkpoint's model takes inputs of shape {tuple(config['input_shape'])}, the data has {test.input_shape}"
            )
        if int(config["num_classes"]) != test.num_classes:
            raise ValueError(
                f"the checkpoint's model scores {config['num_classes']} classes, the data has {test.num_classes}"
            )
        trained_with = config.get("mechanism") or {}
    elif weights:
        if not model:
            raise ValueError(
                "--weights needs --model: the architecture to load them into (a built-in name or module:callable)"
            )
        test = load_split(data, "test", **split).subset(limit)
        built = build_model(model, test.input_shape, test.num_classes, output=output_key)
        network, trained_with = load_weights(built, weights).eval(), {}
    else:
        raise ValueError(
            "give the model: --checkpoint FILE.pt (saved by 'renyicert train'), or --model SPEC --weights FILE.pt "
            "(your own; see docs/your-model.md)"
        )
    return network.to(resolve_device(device)), test, trained_with


def load_model(checkpoint: str, *, model: str | None = None, device: str | None = "auto") -> Any:
    """The model of a checkpoint saved by ``renyicert train``, on ``device`` (``model``: the only ``module:callable`` it may use)."""
    return load_checkpoint(checkpoint, trusted_models=(model,) if model else ())[0].to(resolve_device(device))


def _check_published(checkpoint: Any, info: dict[str, Any], data: LabelledData) -> None:
    """Refuse data that Cohen et al.'s published model ``checkpoint`` was not made for (3-channel images of its size and classes)."""
    shape_differs = info["dataset"] == "cifar10" and data.input_shape != info["input_shape"]
    if data.input_shape[0] != 3 or shape_differs or data.num_classes != info["num_classes"]:
        raise ValueError(
            f"{checkpoint!r} is Cohen et al.'s {info['arch']} for {info['dataset']} ({info['num_classes']} classes, "
            f"images {info['input_shape']}); the data has {data.num_classes} classes and inputs {data.input_shape}"
        )


def noise_to_certify(
    trained_with: dict[str, Any],
    *,
    mechanism: str | None = None,
    scale: float | None = None,
    from_weights: bool = False,
) -> tuple[str, float, dict[str, Any]]:
    """``(name, scale, parameters)`` of the noise to certify with: ``mechanism``/``scale`` where given, the checkpoint's where not.

    The checkpoint's parameters (beyond the scale) are used only with its own
    mechanism; the caller's options replace them one by one.
    """
    name = mechanism if mechanism is not None else trained_with.get("name")
    level = scale if scale is not None else trained_with.get("scale")
    if name is None or level is None:
        source = (
            "plain weights do not record it"
            if from_weights
            else "the checkpoint does not record one: it was saved without a mechanism"
        )
        missing = " and ".join(flag for flag, value in (("--mechanism", name), ("--scale", level)) if value is None)
        raise ValueError(
            f"give {missing}: the noise to certify with, normally the one the model was trained with ({source})"
        )
    stored = (trained_with.get("parameters") or {}) if name == trained_with.get("name") else {}
    if not isinstance(stored, dict):
        raise ValueError(f"the checkpoint's mechanism parameters must be a JSON object, got {stored!r}")
    return name, float(level), stored


def _verified_for_best(mechanism: Mechanism) -> Mechanism:
    """``mechanism``, with its comparison bounds verified first when it is not one renyicert ships (so that the best radius may use them)."""
    if best_bounds(mechanism) == offered_bounds(mechanism):
        return mechanism
    print(
        f"renyicert: checking {mechanism.label}'s comparison bounds (renyicert check, quick), which the best radius "
        "uses only if they pass",
        file=sys.stderr,
    )
    verified, report = verify_comparison_bounds(mechanism)
    if best_bounds(verified) == offered_bounds(verified):
        print("renyicert: they passed: the best radius is taken over every bound", file=sys.stderr)
    else:
        print(
            f"renyicert: not verified ({report.summary}): the best radius is the Rényi one; "
            f"'renyicert check {mechanism.label}' says why",
            file=sys.stderr,
        )
    return verified


def smoothed_classifier(
    model: Any,
    data: LabelledData,
    mechanism: Mechanism,
    *,
    verify_best: bool = False,
    progress: bool | None = None,
    **options: Any,
) -> Smoothed:
    """The smoothed classifier of ``model`` for ``data``'s classes and shape; ``options`` are :class:`~renyicert.Smoothed`'s.

    With ``verify_best`` a plugin's comparison bounds are verified first (on
    stderr), so that the best radius may use them. The per-call progress bars
    show only on a terminal: in a log, a data set's own bar says enough.
    """
    if verify_best:
        mechanism = _verified_for_best(mechanism)
    inner = progress if sys.stderr.isatty() else False
    return Smoothed(model, mechanism, data.num_classes, input_shape=data.input_shape, progress=inner, **options)


def check_checkpoint_path(out: str) -> None:
    """Refuse, before any training, a checkpoint path that cannot be written."""
    path = Path(out)
    if path.suffix != ".pt":
        raise ValueError(f"--out must end in .pt, got {out!r}")
    if path.is_dir() or path.with_suffix(".json").is_dir():
        raise ValueError(f"--out {out!r} is a directory (or its .json is); give a file name ending in .pt")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {out!r}: the folder {str(folder)!r} is not writable")


def recorded_norm(settings: dict[str, Any]) -> str | None:
    """The norm of the radii in records made with ``settings``: the norm of their mechanism (installed), or the one stored."""
    name = settings.get("mechanism")
    if isinstance(name, str):
        try:
            return norm_name(float(mechanism_class(name).norm))
        except (ValueError, LookupError):
            pass
    stored = settings.get("norm")
    return stored if isinstance(stored, str) else None


def stored_mechanism(path: str, settings: dict[str, Any]) -> Mechanism:
    """The mechanism a records file's settings name, with its scale and parameters; a ``ValueError`` names what is missing or ill-typed."""
    name, scale = settings.get("mechanism"), settings.get("scale")
    if not isinstance(name, str) or isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(
            f"{path!r}: its settings name no mechanism and scale, got mechanism = {name!r}, scale = {scale!r}"
        )
    parameters = settings.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"{path!r}: its settings' 'parameters' must be an object, got {parameters!r}")
    return build_mechanism(mechanism_class(name), float(scale), parameters)


def settings_mechanism(path: str, settings: dict[str, Any]) -> Mechanism | None:
    """:func:`stored_mechanism` for a report (to re-derive the radii): ``None`` without settings, and ``None`` with a note when it cannot be built here."""
    if "mechanism" not in settings:
        return None
    try:
        return stored_mechanism(path, settings)
    except (ValueError, TypeError, LookupError) as error:
        print(
            f"renyicert: note: {path}: its radii are not re-derived from its counts, since its mechanism cannot be "
            f"built here ({error})",
            file=sys.stderr,
        )
        return None
