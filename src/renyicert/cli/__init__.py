"""The ``renyicert`` command line, on top of every other layer.

``main``
    The top-level parser (:func:`main`, :func:`~renyicert.cli.main.build_parser`).
``arguments``
    The parser class, argument types and the options several commands share.
``mechanisms``, ``train``, ``certify``, ``report``, ``jobs``
    One module per command group, each pairing its parsers with their handlers.
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
