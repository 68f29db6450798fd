"""Argument types and the parser class every ``renyicert`` command shares.

A usage error is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["Parser", "float_list"]


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors end the program with one line (exit 2) instead of its own exit."""

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
