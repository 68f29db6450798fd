"""The ``renyicert`` command line: the top-level parser, and one module per command group.

``mechanisms`` (:mod:`renyicert.cli.mechanisms`: ``mechanisms``, ``radius``,
``check``, ``table``), ``train`` (:mod:`renyicert.cli.train`), ``certify``
(:mod:`renyicert.cli.certify`: ``certify``, ``predict``, ``attack``),
``report`` (:mod:`renyicert.cli.report`: ``report``, ``recertify``) and the
scripted runs (:mod:`renyicert.cli.jobs`: ``demo``, ``compare``). Each module
pairs its parsers with their handlers; a handler turns its arguments into
keywords, calls one workflow function and prints. Errors go to stderr with
exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import certify, jobs, mechanisms, report, train
from .arguments import Parser

__all__ = ["build_parser", "main"]

#: The command groups, in the order ``renyicert --help`` lists them.
COMMAND_GROUPS = (mechanisms, train, certify, report, jobs)


def build_parser() -> argparse.ArgumentParser:
    """The ``renyicert`` parser with every command group's subcommands."""
    parser = Parser(prog="renyicert", description="Rényi-divergence certificates for randomized smoothing.")
    parser.add_argument("--version", action="version", version=f"renyicert {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for group in COMMAND_GROUPS:
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for any usage or input error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args))
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            return 2
        return int(stop.code or 0)
    except (ValueError, TypeError, ImportError, OSError) as error:
        print(f"renyicert: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
