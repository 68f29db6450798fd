"""Strict JSON: every file and every ``--json`` output renyicert writes parses with any JSON parser.

Python's ``json`` writes ``NaN`` and ``Infinity``, which RFC 8259 does not allow.
renyicert writes a non-finite number as the string ``"nan"``, ``"inf"`` or
``"-inf"`` instead (one convention everywhere; ``float()`` reads each back), and
:func:`number` turns those strings back into floats where a number is expected.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "number", "strict"]


def strict(value: Any) -> Any:
    """``value`` with every non-finite float (numpy floats included) replaced by ``"nan"``, ``"inf"`` or ``"-inf"``.

    Examples
    --------
    >>> from renyicert._json import strict
    >>> strict({"radius": float("inf"), "order": [1.5, float("nan")]})
    {'radius': 'inf', 'order': [1.5, 'nan']}
    """
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(item) for item in value]
    if (
        isinstance(value, float)
        or type(value).__module__ == "numpy"
        and hasattr(value, "dtype")
        and value.dtype.kind == "f"
        and value.ndim == 0
    ):
        number = float(value)
        if math.isnan(number):
            return "nan"
        if math.isinf(number):
            return "inf" if number > 0 else "-inf"
        return number
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` of :func:`strict` ``(value)``; never writes ``NaN`` or ``Infinity``."""
    return json.dumps(strict(value), allow_nan=False, **options)


def number(value: Any) -> Any:
    """A JSON number as written by :func:`dumps`: ``"inf"``, ``"-inf"`` and ``"nan"`` back to floats; anything else unchanged."""
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value
