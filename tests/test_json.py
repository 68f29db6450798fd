"""Strict JSON: no NaN or Infinity in anything renyicert writes."""

from __future__ import annotations

import json
import math

import numpy as np

from renyicert._json import dumps, number, strict


def _strict_loads(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_are_strings_everywhere() -> None:
    value = {
        "a": float("inf"),
        "b": [float("-inf"), np.float64("nan"), 1.5],
        "c": np.float32(2.0),
        "d": "text",
        "e": None,
    }
    text = dumps(value)
    assert _strict_loads(text) == {"a": "inf", "b": ["-inf", "nan", 1.5], "c": 2.0, "d": "text", "e": None}
    assert math.isinf(number("inf")) and math.isnan(number("nan")) and number("text") == "text" and number(3) == 3
    assert strict((1.0, float("nan"))) == [1.0, "nan"]


def test_radius_json_is_strict(capsys) -> None:  # type: ignore[no-untyped-def]
    from renyicert.cli import main

    # Before: p1 = 1 gave "Infinity" and the order of an abstention "NaN".
    assert main(["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "1,0.4", "--p2", "0,0.4", "--json"]) == 0
    rows = [_strict_loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["renyi"] == "inf" and rows[1]["order"] == "nan" and rows[1]["renyi"] == 0.0
