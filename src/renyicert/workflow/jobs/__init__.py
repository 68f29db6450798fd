"""The scripted runs on the embedded digits: the demo (the main job) and the paper's comparisons, with their reports.

``demo``, ``report``
    ``renyicert demo``: train, certify, attack; ``report.md`` and its plots.
``compare``, ``compare_report``
    ``renyicert compare``: smoothing against TRADES and a 1-Lipschitz network; ``compare.md``.

Only the ``jobs`` command (:mod:`renyicert.cli.jobs`) imports this package.
"""

from __future__ import annotations

from .compare import CompareSettings, run_comparison
from .compare_report import comparison_table, write_comparison_report
from .demo import DemoSettings, run_demo
from .report import main_table, write_report

__all__ = [
    "CompareSettings",
    "DemoSettings",
    "comparison_table",
    "main_table",
    "run_comparison",
    "run_demo",
    "write_comparison_report",
    "write_report",
]
