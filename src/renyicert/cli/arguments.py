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

__all__ = ["Parser", "add_option_argument", "float_list", "mechanism_from_arguments", "mechanism_options", "parameter_value"]


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


_SCALAR_TYPES: dict[Any, type] = {int: int, float: float, bool: bool, str: str, "int": int, "float": float, "bool": bool, "str": str}


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
            raise ValueError(f"parameter {name!r} of {label} expects {'an int' if kind is int else 'a float'}, got {text!r}") from None
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
        "-o", "--option", dest="options", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the mechanism beyond its scale, e.g. -o d=64 (repeatable; typed as the constructor declares)",
    )  # fmt: skip


def mechanism_from_arguments(name: str, scale: float, options: list[str] | None, defaults: dict[str, Any] | None = None) -> Any:
    """The mechanism ``name`` at ``scale`` with the ``-o`` parameters ``options``, over ``defaults`` (a checkpoint's)."""
    from ..registry import build_mechanism, mechanism_class

    cls = mechanism_class(name)
    return build_mechanism(cls, scale, {**(defaults or {}), **mechanism_options(cls, options)})
