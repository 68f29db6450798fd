"""The scripted runs: ``demo`` (the main job on the embedded digits) and ``compare`` (the paper's comparisons).

The only command module that imports :mod:`renyicert.workflow.jobs`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .arguments import progress_of

__all__ = ["add_commands"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..workflow import jobs  # here, not at the top: the jobs import torch, and `renyicert --help` need not

    settings = (
        jobs.DemoSettings.quick(model=args.model, seed=args.seed)
        if args.quick
        else jobs.DemoSettings(model=args.model, seed=args.seed)
    )
    print(
        f"renyicert demo{' (quick)' if args.quick else ''}: training, certifying and attacking on scikit-learn's "
        f"digits; writing {args.out}/",
        file=sys.stderr,
    )
    result = jobs.run_demo(args.out, settings, progress=progress_of(args))
    print(jobs.main_table(result.summary))
    print(f"\nfinished in {result.seconds:.0f} s; report: {result.report} (plots and records beside it)")
    print("TRADES, a 1-Lipschitz network and PGD with 20 random starts of 1000 steps: renyicert compare (make compare)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..workflow import jobs  # here, not at the top: the jobs import torch, and `renyicert --help` need not

    changes: dict[str, Any] = {"seed": args.seed}
    for option in ("long_steps", "long_restarts", "attack_inputs"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    settings = jobs.CompareSettings.quick(**changes) if args.quick else jobs.CompareSettings(**changes)
    print(
        f"renyicert compare{' (quick)' if args.quick else ''}: smoothing vs TRADES vs a 1-Lipschitz network on "
        f"scikit-learn's digits, PGD with {settings.long_restarts} random starts of {settings.long_steps} steps; "
        f"writing {args.out}/",
        file=sys.stderr,
    )
    result = jobs.run_comparison(args.out, settings, progress=progress_of(args))
    for noise, noise_result in result.summary["results"].items():
        print(f"\n{noise}\n\n" + jobs.comparison_table(noise_result, result.summary["training_seconds"], noise))
    print(f"\nfinished in {result.seconds:.0f} s; report: {result.report} (plots and records beside it)")
    return 0


def add_commands(sub: Any) -> None:
    """Register ``demo`` and ``compare`` on the CLI's subparsers."""
    de = sub.add_parser(
        "demo",
        help="the main job on the embedded digits",
        description="Train undefended, noise-augmented and stability-trained models, certify the test set, attack it and write results/ with a report and plots.",
    )
    de.add_argument("--quick", action="store_true", help="the one-minute version")
    de.add_argument("--out", default="results", help="output folder (default: results)")
    de.add_argument("--model", default="mlp", choices=["mlp", "cnn"], help="architecture (default: mlp)")
    de.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    de.add_argument("--quiet", action="store_true", help="no progress bars")
    de.set_defaults(func=_cmd_demo)

    co = sub.add_parser(
        "compare",
        help="the paper's comparisons: smoothing vs TRADES vs a 1-Lipschitz network",
        description="On the embedded digits: train the demo's smoothed models, TRADES (adversarial-robustness-toolbox) and a 1-Lipschitz network "
        "(deel-torchlip); certify, attack them all with PGD of 20 random starts and 1000 steps among others, and write compare.md, plots and records "
        "into the output folder.",
    )
    co.add_argument("--quick", action="store_true", help="the one-minute version")
    co.add_argument("--out", default="results", help="output folder (default: results)")
    co.add_argument("--long-steps", type=int, help="steps of the long PGD (default: 1000)")
    co.add_argument("--long-restarts", type=int, help="random starts of the long PGD (default: 20)")
    co.add_argument("--attack-inputs", type=int, help="test images attacked (default: 60)")
    co.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    co.add_argument("--quiet", action="store_true", help="no progress bars")
    co.set_defaults(func=_cmd_compare)
