"""The ``renyicert`` command line, on top of every other layer.

``main``
    The top-level parser and the mechanism commands (``mechanisms``, ``radius``, ``table``, ``check``).
``workflow``
    The workflow commands (``train``, ``certify``, ``attack``, ``report``, ``demo``).
"""

from __future__ import annotations

from .main import main, radius_table

__all__ = ["main", "radius_table"]
