"""Argument types and the parser class every ``renyicert`` command shares.

A usage error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import typing
from typing import Any

from .._json import dumps
from .._validation import check_batch_size
from ..lattice import check_grid
from ..registry import build_mechanism, mechanism_class

__all__ = [
    "Parser",
    "add_data_options",
    "add_grid_option",
    "add_option_argument",
    "add_smoothing_options",
    "batch_size_value",
    "float_list",
    "mechanism_from_arguments",
    "mechanism_options",
    "grid_value",
    "parameter_value",
    "print_json",
    "progress_of",
]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors end the program with one line (exit 2) instead of its own exit.

    Abbreviated long options are refused (``allow_abbrev=False``): ``--d 4`` must
    not be read as ``--delta 4``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # argparse's own exit code is 2 as well
        self.print_usage(sys.stderr)
        raise SystemExit(f"{self.prog}: error: {message}")


def float_list(text: str) -> list[float]:
    """``"0.1,0.2"`` -> ``[0.1, 0.2]``; an ``argparse.ArgumentTypeError`` naming the text otherwise."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from error
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    return values


_SCALAR_TYPES: dict[Any, type] = {
    int: int,
    float: float,
    bool: bool,
    str: str,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
}


def _declared_type(cls: type, name: str) -> type | None:
    """The type of constructor parameter ``name``: its annotation when that is int, float, bool or str, else its default's."""
    parameter = inspect.signature(cls.__init__).parameters[name]  # type: ignore[misc]
    try:
        hint = typing.get_type_hints(cls.__init__).get(name)  # type: ignore[misc]
    except Exception:  # an annotation that does not resolve: fall back to the raw text
        hint = parameter.annotation
    if hint in _SCALAR_TYPES:
        return _SCALAR_TYPES[hint]
    default = parameter.default
    if default is not inspect.Parameter.empty and default is not None and type(default) in _SCALAR_TYPES:
        return type(default)
    return None


def parameter_value(cls: type, name: str, text: str) -> Any:
    """The text of ``-o name=text`` as the type ``cls`` declares for ``name`` (annotation or default), else as JSON, else as text."""
    kind = _declared_type(cls, name)
    label = getattr(cls, "name", "") or cls.__name__
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
        raise ValueError(f"parameter {name!r} of {label} expects true or false, got {text!r}")
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise ValueError(
                f"parameter {name!r} of {label} expects {'an int' if kind is int else 'a float'}, got {text!r}"
            ) from None
    if kind is str:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def mechanism_options(cls: type, items: list[str] | None) -> dict[str, Any]:
    """``["d=4", "bias=0.1"]`` (from repeated ``-o``) as constructor arguments of ``cls``, each typed; ``ValueError`` naming a bad item.

    Examples
    --------
    >>> import renyicert
    >>> from renyicert.cli.arguments import mechanism_options
    >>> mechanism_options(type(renyicert.get_mechanism("gaussian", scale=1.0)), [])
    {}
    """
    params: dict[str, Any] = {}
    names = cls.parameter_names()  # type: ignore[attr-defined]
    label = getattr(cls, "name", "") or cls.__name__
    for item in items or []:
        key, equals, text = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise ValueError(f"-o expects KEY=VALUE, got {item!r}")
        if key == "scale":
            raise ValueError("give the scale with --scale, not -o scale=...")
        if key not in names:
            raise ValueError(f"{label} has no parameter {key!r}; its parameters are {list(names)}")
        if key in params:
            raise ValueError(f"-o {key}= given twice")
        params[key] = parameter_value(cls, key, text)
    return params


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """``-o KEY=VALUE`` (repeatable): a mechanism parameter beyond the scale."""
    parser.add_argument(
        "-o",
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the mechanism beyond its scale, e.g. -o d=64 (repeatable; typed as the constructor declares)",
    )


def mechanism_from_arguments(
    name: str, scale: float, options: list[str] | None, defaults: dict[str, Any] | None = None
) -> Any:
    """The mechanism ``name`` at ``scale`` with the ``-o`` parameters ``options``, over ``defaults`` (a checkpoint's)."""
    cls = mechanism_class(name)
    return build_mechanism(cls, scale, {**(defaults or {}), **mechanism_options(cls, options)})


def print_json(value: Any, **options: Any) -> None:
    """Print ``value`` as strict JSON (non-finite numbers as strings: :mod:`renyicert._json`)."""
    print(dumps(value, **options))


def add_data_options(parser: argparse.ArgumentParser, data_default: str = "digits") -> None:
    parser.add_argument(
        "--data",
        default=data_default,
        help="'digits' (embedded, default); a .npz/.pt file with arrays x (values in [0, 1], or see --input-range) and y; a cifar-10-batches-py "
        "folder; or an image folder (one sub-folder per class, or train/ and val/ holding them)",
    )
    parser.add_argument(
        "--num-classes",
        type=int,
        help="number of classes (default: the checkpoint's model's, else the data set's, else the largest label + 1)",
    )
    parser.add_argument(
        "--input-range",
        metavar="LOW,HIGH",
        help="the range the values of a .npz/.pt file span, mapped onto [0, 1], e.g. 0,255 (default: they must lie in [0, 1])",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        help="image folders: resize each image's shorter side to this and crop the centre (default: all images must have one size)",
    )
    parser.add_argument(
        "--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N (default: auto)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of everything random (default: 0); re-running certify with new seeds until an input certifies spends alpha once per run (docs/certify.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def batch_size_value(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    try:
        return check_batch_size(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}") from None


def add_smoothing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        help="a model saved by 'renyicert train' (FILE.pt beside FILE.json), or a checkpoint of Cohen et al.'s train.py "
        "(its 'arch' picks cifar_resnet20, cifar_resnet110 or resnet50; give --mechanism and --scale, which it does not record)",
    )
    parser.add_argument(
        "--model",
        help="your model, with --weights: a built-in (mlp, cnn, resnet20, and Cohen et al.'s cifar_resnet20, cifar_resnet110, resnet50) or module:callable, found from the working directory as "
        "'python -m' finds modules; with --checkpoint, the module:callable it names (only code you name is imported, never code a file names)",
    )
    parser.add_argument(
        "--weights", help="a state dict for --model (torch.save(model.state_dict(), FILE)), read without running code"
    )
    parser.add_argument(
        "--output-key",
        help="where the model's output holds the logits when it returns a dict or an object (default: the tensor itself, else 'logits', else a tuple's first element)",
    )
    parser.add_argument("--mechanism", help="noise (default: the one the checkpoint was trained with)")
    parser.add_argument("--scale", type=float, help="noise scale (default: the checkpoint's)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT inputs")
    parser.add_argument(
        "--batch-size",
        type=batch_size_value,
        default=4096,
        help="noisy copies per model call, or 'auto' to time the model and pick (default: 4096)",
    )
    parser.add_argument(
        "--backend",
        "--sampler",
        dest="backend",
        choices=["auto", "triton", "native", "compiled", "eager"],
        default="auto",
        help="the noise sampler's path, Smoothed(backend=...); --sampler is the old spelling (default: auto; all draw the same noise)",
    )
    add_grid_option(parser)
    parser.add_argument(
        "--round-to-grid",
        action="store_true",
        help="with --grid: round inputs off the grid to the nearest grid point instead of refusing them (the certificate is then the rounded input's)",
    )
    add_option_argument(parser)


def add_grid_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grid",
        type=grid_value,
        help="lattice mode: the inputs are k / GRID (255 for 8-bit images, 16 for the digits) and the noise is drawn on that grid in integers, "
        "so the certificates hold in floating point (docs/float-soundness.md; default: float mode)",
    )


def grid_value(text: str) -> int:
    """``--grid``: an integer in [1, 65536]."""
    try:
        return check_grid(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be an integer in [1, 65536] (grid points per unit), got {text!r}"
        ) from None


def progress_of(args: argparse.Namespace) -> bool | None:
    """``--quiet`` as a progress setting: ``False`` (no bars), else ``None`` (bars on a terminal)."""
    return False if args.quiet else None
