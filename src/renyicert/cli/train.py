"""The ``train`` command: a model trained with noise (augmentation or stability training), saved as a checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import workflow
from .arguments import add_data_options, add_option_argument, mechanism_from_arguments, progress_of

__all__ = ["add_commands"]


def _cmd_train(args: argparse.Namespace) -> int:
    workflow.check_checkpoint_path(args.out)
    data = workflow.load_split(
        args.data, "train", num_classes=args.num_classes, input_range=args.input_range, image_size=args.image_size
    )
    noise = None if args.method == "standard" else mechanism_from_arguments(args.mechanism, args.scale, args.options)
    device = workflow.resolve_device(args.device)
    result = workflow.train_new_model(
        args.model,
        data,
        noise,
        checkpoint=args.out,
        data_name=args.data,
        device=device,
        seed=args.seed,
        method=args.method,
        epochs=args.epochs,
        batch_size=args.train_batch_size,
        lr=args.lr,
        gamma=args.gamma,
        progress=progress_of(args),
    )
    print(
        f"trained {args.model} ({args.method}) on {device} for {args.epochs} epochs in {result.seconds:.1f} s: "
        f"loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}, training accuracy {result.accuracies[-1]:.1%}; "
        f"saved {args.out} and {Path(args.out).with_suffix('.json')}"
    )
    return 0


def add_commands(sub: Any) -> None:
    """Register ``train`` on the CLI's subparsers."""
    METHODS, DEFAULT_GAMMA = workflow.METHODS, workflow.DEFAULT_GAMMA
    tr = sub.add_parser(
        "train",
        help="train a model with noise",
        description="Train a model (standard, noise augmentation or stability training) and save a checkpoint.",
    )
    add_data_options(tr)
    tr.add_argument(
        "--model",
        default="mlp",
        help="'mlp', 'cnn', 'resnet20' (32x32 images) or module:callable, found from the working directory (default: mlp)",
    )
    tr.add_argument("--method", choices=METHODS, default="augmentation", help="training method (default: augmentation)")
    tr.add_argument("--mechanism", default="gaussian", help="noise for augmentation/stability (default: gaussian)")
    tr.add_argument("--scale", type=float, default=0.25, help="noise scale (default: 0.25)")
    add_option_argument(tr)
    tr.add_argument("--epochs", type=int, default=30, help="epochs (default: 30)")
    tr.add_argument("--train-batch-size", type=int, default=64, help="training batch size (default: 64)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    tr.add_argument(
        "--gamma", type=float, default=DEFAULT_GAMMA, help=f"weight of the stability term (default: {DEFAULT_GAMMA:g})"
    )
    tr.add_argument("--out", default="model.pt", help="checkpoint path, .pt (default: model.pt)")
    tr.set_defaults(func=_cmd_train)
