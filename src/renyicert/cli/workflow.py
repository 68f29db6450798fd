"""The workflow commands of the ``renyicert`` CLI: ``train``, ``certify``, ``attack``, ``report`` and ``demo``.

Each defaults to the embedded digits; ``--data FILE`` (``.npz`` or ``.pt`` with
``x`` and ``y``) and ``--model module:callable`` or ``--checkpoint FILE.pt``
bring the user's own.  :mod:`renyicert.cli` registers them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .._json import dumps
from .._validation import check_batch_size
from .arguments import add_option_argument, float_list, mechanism_from_arguments

__all__ = ["add_workflow_commands"]


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None


def _split(args: argparse.Namespace, part: str, classes: int | None = None) -> Any:
    """The ``part`` ("train" or "test") of ``--data``: the digits split, or the whole user file.

    The number of classes is ``--num-classes``, else ``classes`` (a checkpoint's),
    else the largest label + 1.
    """
    from ..workflow.data import load_data, load_digits

    classes = args.num_classes if args.num_classes is not None else classes
    if args.data == "digits":
        if classes is not None and classes != 10:
            raise ValueError(f"the digits have 10 classes, got --num-classes {classes}" if args.num_classes is not None else f"the checkpoint's model scores {classes} classes, the digits have 10")
        return load_digits()[0 if part == "train" else 1]
    return load_data(args.data, num_classes=classes)


def _smoothed(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(smoothed classifier, test data)``: the checkpoint first, so that the data's classes default to its model's."""
    from ..workflow.models import load_checkpoint
    from ..smoothing import Smoothed

    model, config = load_checkpoint(args.checkpoint, trusted_models=_trusted(args))
    data = _split(args, "test", int(config["num_classes"])).subset(args.limit)
    if tuple(config["input_shape"]) != data.input_shape:
        raise ValueError(f"the checkpoint's model takes inputs of shape {tuple(config['input_shape'])}, the data has {data.input_shape}")
    if int(config["num_classes"]) != data.num_classes:
        raise ValueError(f"the checkpoint's model scores {config['num_classes']} classes, the data has {data.num_classes}")
    mechanism = _certifying_mechanism(args, config.get("mechanism") or {})
    smoothed = Smoothed(model, mechanism, data.num_classes, input_shape=data.input_shape, batch_size=args.batch_size, backend=args.sampler, progress=_progress(args))
    return smoothed, data


def _trusted(args: argparse.Namespace) -> tuple[str, ...]:
    """The ``module:callable`` model the user named with ``--model`` (the only code a checkpoint may use)."""
    return (args.model,) if getattr(args, "model", None) else ()


def _certifying_mechanism(args: argparse.Namespace, trained_with: dict[str, Any]) -> Any:
    """The noise to certify with: ``--mechanism``/``--scale``/``-o`` where given, the checkpoint's where not.

    The checkpoint's parameters (beyond the scale) are used only with its own
    mechanism; ``-o`` replaces them one by one.
    """
    name = args.mechanism if args.mechanism is not None else trained_with.get("name")
    scale = args.scale if args.scale is not None else trained_with.get("scale")
    if name is None or scale is None:
        raise ValueError("give --mechanism and --scale (the checkpoint's configuration names no noise)")
    stored = (trained_with.get("parameters") or {}) if name == trained_with.get("name") else {}
    if not isinstance(stored, dict):
        raise ValueError(f"the checkpoint's mechanism parameters must be a JSON object, got {stored!r}")
    return mechanism_from_arguments(name, scale, args.options, stored)


def _check_output(out: str) -> None:
    """Refuse, before any training, a checkpoint path that cannot be written."""
    import os

    path = Path(out)
    if path.suffix != ".pt":
        raise ValueError(f"--out must end in .pt, got {out!r}")
    if path.is_dir() or path.with_suffix(".json").is_dir():
        raise ValueError(f"--out {out!r} is a directory (or its .json is); give a file name ending in .pt")
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"cannot write {out!r}: the folder {str(folder)!r} is not writable")


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from ..workflow.models import build_model
    from ..workflow.training import train

    _check_output(args.out)
    data = _split(args, "train")
    mechanism = None if args.method == "standard" else mechanism_from_arguments(args.mechanism, args.scale, args.options)
    torch.manual_seed(args.seed)
    model = build_model(args.model, data.input_shape, data.num_classes)
    config = {"model": args.model, "input_shape": list(data.input_shape), "num_classes": data.num_classes, "data": args.data}
    result = train(
        model, data, mechanism, method=args.method, epochs=args.epochs, batch_size=args.train_batch_size, lr=args.lr, gamma=args.gamma,
        seed=args.seed, progress=_progress(args), checkpoint=args.out, config=config,
    )  # fmt: skip
    print(f"trained {args.model} ({args.method}) for {args.epochs} epochs in {result.seconds:.1f} s: loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}, "
          f"training accuracy {result.accuracies[-1]:.1%}; saved {args.out} and {Path(args.out).with_suffix('.json')}")  # fmt: skip
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from ..workflow.evaluation import BOUNDS, certified_accuracy, certify_dataset, radius_grid, write_csv

    from ..workflow import distributed

    if distributed.init_from_environment():
        import atexit

        import torch.distributed as dist

        atexit.register(dist.destroy_process_group)
    rank, world = distributed.rank_and_world()
    smoothed, data = _smoothed(args)
    if world > 1 and not args.records:
        raise ValueError("a distributed run needs --records (each rank writes a part of it)")
    if args.radii is not None:
        return _certify_at_radii(args, smoothed, data, rank)
    sequential_only = [
        name for name, value in (
            ("--budget", args.budget), ("--extended-budget", args.extended_budget), ("--bound", args.bound), ("--p2-mode", args.p2_mode),
            ("--inputs-at-once", args.inputs_at_once),
        )
        if value is not None
    ]  # fmt: skip
    if sequential_only:
        raise ValueError(f"{sequential_only[0]} applies to sequential certification: give --radii too (fixed-n certification reports every bound, at n = --n samples)")
    args.n = 10_000 if args.n is None else args.n
    records = certify_dataset(
        smoothed, data, args.records, n0=args.n0, n=args.n, alpha=args.alpha, seed=args.seed, inputs_per_call=args.inputs_per_call,
        resume=args.resume, progress=_progress(args),
    )  # fmt: skip
    if rank != 0:
        return 0
    if args.csv:
        write_csv(records, args.csv)
    grid = radius_grid(records)
    bounds = [b for b in BOUNDS if records and records[0][f"radius_{b}"] is not None]
    print(f"certified accuracy of {len(records)} inputs ({smoothed.mechanism.name}, scale {smoothed.mechanism.scale:g}, n = {args.n}, alpha = {args.alpha:g})")
    print(f"{'bound':<10}" + "".join(f"{f'r={r:g}':>10}" for r in grid))
    for bound in bounds:
        print(f"{bound:<10}" + "".join(f"{a:>10.1%}" for a in certified_accuracy(records, grid, bound)))
    if args.records:
        print(f"records: {args.records}")
    return 0


def _certify_at_radii(args: argparse.Namespace, smoothed: Any, data: Any, rank: int) -> int:
    """``certify --radii``: sequential certification at the given radii (fixed-n options refused, not ignored)."""
    from ..workflow.evaluation import certify_dataset_at, summarize_sequential

    if args.n is not None or args.csv:
        raise ValueError(f"{'--n' if args.n is not None else '--csv'} belongs to fixed-n certification; with --radii the samples per input are decided as they come, up to --budget")
    bound = args.bound or "renyi"
    budget = 100_000 if args.budget is None else args.budget
    records = certify_dataset_at(
        smoothed, data, args.radii, args.records, alpha=args.alpha, budget=budget, extended_budget=args.extended_budget, n0=args.n0, bound=bound,
        p2_mode=args.p2_mode or "runner-up", seed=args.seed,
        inputs_per_call=args.inputs_per_call, inputs_at_once=128 if args.inputs_at_once is None else args.inputs_at_once,
        resume=args.resume, progress=_progress(args),
    )  # fmt: skip
    if rank != 0:
        return 0
    _print_sequential(summarize_sequential(records, args.radii), f"{smoothed.mechanism.name}, scale {smoothed.mechanism.scale:g}, {bound} bound, p2 {args.p2_mode or 'runner-up'}, alpha = {args.alpha:g}", budget, args.n0)
    if args.records:
        print(f"records: {args.records}")
    return 0


def _print_sequential(summary: Any, what: str, budget: Any, n0: Any) -> None:
    """The table of a sequential run: certified accuracy and undecided inputs per radius, and the copies spent."""
    print(f"certified accuracy of {summary.inputs} inputs at the given radii, decided sequentially ({what})")
    print(f"{'radius':<12}" + "".join(f"{r:>10g}" for r in summary.radii))
    print(f"{'certified':<12}" + "".join(f"{a:>10.1%}" for a in summary.certified_accuracy))
    print(f"{'undecided':<12}" + "".join(f"{u:>10d}" for u in summary.undecided))
    spent = f"mean forward passes per input: {summary.forward_passes:,.0f}"
    if isinstance(budget, int) and isinstance(n0, int) and summary.forward_passes > 0:
        spent += f" (fixed n = {budget:,} spends {budget + n0:,} with n0 = {n0}: {(budget + n0) / summary.forward_passes:.1f}x as many)"
    print(spent)


def _cmd_attack(args: argparse.Namespace) -> int:
    from ..workflow.attacks import ATTACKS, empirical_robustness
    from ..workflow.models import load_checkpoint

    smoothed, data = _smoothed(args)
    attacks = args.attacks.split(",") if args.attacks else [a for a in ATTACKS if a != "transfer" or args.undefended]
    undefended = load_checkpoint(args.undefended, trusted_models=_trusted(args))[0] if args.undefended else None
    result = empirical_robustness(smoothed, data, args.eps, attacks=attacks, undefended=undefended, vote_samples=args.vote_samples, seed=args.seed, progress=_progress(args))
    if args.json:
        print(dumps({"eps": result.eps, "accuracy": result.accuracy, "clean_accuracy": result.clean_accuracy, "inputs": result.inputs}))
        return 0
    print(f"empirical robust accuracy of {result.inputs} inputs (clean majority-vote accuracy {result.clean_accuracy:.1%})")
    print(f"{'attack':<12}" + "".join(f"{f'eps={e:g}':>11}" for e in result.eps))
    for name, values in result.accuracy.items():
        print(f"{name:<12}" + "".join(f"{v:>11.1%}" for v in values))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ..workflow.evaluation import BOUNDS, certified_accuracy, checked_record, plot_certified_accuracy, radius_grid
    from ..workflow.records import read_records

    sequential = [_sequential_settings(path) for path in args.records]
    if any(sequential):
        return _report_sequential(args, sequential)
    curves = {}
    runs = []
    for path in args.records:
        found = read_records(path)
        if not found.records:
            raise ValueError(f"{path!r} holds no records")
        runs.append((Path(path).stem, [checked_record(record, f"{path} record {k}") for k, record in enumerate(found.records, start=1)]))
    grid = radius_grid([r for _, records in runs for r in records])
    largest = max(grid[-1] * 1.25, 1e-9)
    print(f"{'records':<28}{'bound':<9}" + "".join(f"{f'r={r:g}':>9}" for r in grid))
    for name, records in runs:
        for bound in BOUNDS:
            if records[0].get(f"radius_{bound}") is None or (bound != "renyi" and not args.all_bounds):
                continue
            print(f"{name:<28}{bound:<9}" + "".join(f"{a:>9.1%}" for a in certified_accuracy(records, grid, bound)))
            radii = np.linspace(0.0, largest, 400)
            curves[f"{name} ({bound})"] = (radii, certified_accuracy(records, radii, bound))
    if args.plot:
        plot_certified_accuracy(curves, args.plot, title=args.title, norm=args.norm)
        print(f"plot: {args.plot}")
    return 0


def _sequential_settings(path: str) -> dict[str, Any] | None:
    """The settings of ``path`` when its records come from ``certify --radii``, else ``None``."""
    import json

    from ..workflow.distributed import settings_path

    stored = settings_path(Path(path))
    if not stored.exists():
        return None
    try:
        settings = json.loads(stored.read_text())
    except ValueError as error:
        raise ValueError(f"{str(stored)!r} is not JSON ({error})") from None
    return settings if isinstance(settings, dict) and settings.get("method") == "sequential" else None


def _report_sequential(args: argparse.Namespace, settings: list[dict[str, Any] | None]) -> int:
    """``report`` on records of ``certify --radii``: one table per file (mixing them with fixed-n records is refused)."""
    from ..workflow.evaluation import summarize_sequential
    from ..workflow.records import read_records

    if not all(settings):
        fixed = [p for p, s in zip(args.records, settings) if not s]
        raise ValueError(f"cannot report fixed-n records ({', '.join(fixed)}) together with sequential ones (certify --radii): their radii are not comparable; report them apart")
    if args.plot:
        raise ValueError("--plot draws curves over radii from fixed-n records; sequential records hold answers at their own radii only")
    for path, stored in zip(args.records, settings):
        assert stored is not None
        radii = stored.get("radii")
        if not isinstance(radii, list) or not radii or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in radii):
            raise ValueError(f"{path}: its settings hold no list of radii, got {radii!r}")
        records = read_records(path).records
        if not records:
            raise ValueError(f"{path!r} holds no records")
        what = f"{Path(path).stem}: {stored.get('mechanism')}, scale {stored.get('scale')}, {stored.get('bound')} bound, alpha = {stored.get('alpha')}"
        _print_sequential(summarize_sequential(records, radii, path), what, stored.get("budget"), stored.get("n0"))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..workflow.demo import DemoSettings, run_demo
    from ..workflow.report import main_table

    settings = DemoSettings.quick(model=args.model, seed=args.seed) if args.quick else DemoSettings(model=args.model, seed=args.seed)
    print(f"renyicert demo{' (quick)' if args.quick else ''}: training, certifying and attacking on scikit-learn's digits; writing {args.out}/", file=sys.stderr)
    result = run_demo(args.out, settings, progress=_progress(args))
    print(main_table(result.summary))
    print(f"\nfinished in {result.seconds:.0f} s; report: {result.report} (plots and records beside it)")
    return 0


def _common(parser: argparse.ArgumentParser, data_default: str = "digits") -> None:
    parser.add_argument("--data", default=data_default, help="'digits' (embedded, default) or a .npz/.pt file with arrays x and y")
    parser.add_argument("--num-classes", type=int, help="number of classes (default: the checkpoint's model's, else the largest label + 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _batch_size(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    try:
        return check_batch_size(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}") from None


def _smoothing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="a model saved by 'renyicert train' (FILE.pt beside FILE.json)")
    parser.add_argument("--model", help="module:callable of the checkpoint's architecture, when it is not built in: only code you name here is imported, never code a checkpoint names")
    parser.add_argument("--mechanism", help="noise (default: the one the checkpoint was trained with)")
    parser.add_argument("--scale", type=float, help="noise scale (default: the checkpoint's)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT inputs")
    parser.add_argument("--batch-size", type=_batch_size, default=4096, help="noisy copies per model call, or 'auto' to time the model and pick (default: 4096)")
    parser.add_argument("--sampler", choices=["auto", "triton", "native", "compiled", "eager"], default="auto", help="noise sampler path (default: auto; all draw the same noise)")
    add_option_argument(parser)


def add_workflow_commands(sub: Any) -> None:
    """Register ``train``, ``certify``, ``attack``, ``report`` and ``demo`` on the CLI's subparsers."""
    from ..workflow.training import DEFAULT_GAMMA, METHODS

    tr = sub.add_parser("train", help="train a model with noise", description="Train a model (standard, noise augmentation or stability training) and save a checkpoint.")
    _common(tr)
    tr.add_argument("--model", default="mlp", help="'mlp', 'cnn' or module:callable (default: mlp)")
    tr.add_argument("--method", choices=METHODS, default="augmentation", help="training method (default: augmentation)")
    tr.add_argument("--mechanism", default="gaussian", help="noise for augmentation/stability (default: gaussian)")
    tr.add_argument("--scale", type=float, default=0.25, help="noise scale (default: 0.25)")
    add_option_argument(tr)
    tr.add_argument("--epochs", type=int, default=30, help="epochs (default: 30)")
    tr.add_argument("--train-batch-size", type=int, default=64, help="training batch size (default: 64)")
    tr.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    tr.add_argument("--gamma", type=float, default=DEFAULT_GAMMA, help=f"weight of the stability term (default: {DEFAULT_GAMMA:g})")
    tr.add_argument("--out", default="model.pt", help="checkpoint path, .pt (default: model.pt)")
    tr.set_defaults(func=_cmd_train)

    ce = sub.add_parser(
        "certify",
        help="certify a dataset",
        description="Certify every input of a dataset; records go to a JSONL file as they are produced. "
        "Runs unchanged under torchrun (gloo on CPU, nccl on CUDA): each rank certifies its chunks and rank 0 merges the records.",
    )
    _common(ce)
    _smoothing_options(ce)
    ce.add_argument("--n0", type=int, default=100, help="selection samples (default: 100)")
    ce.add_argument("--n", "--samples", dest="n", type=int, help="estimation samples (default: 10000); under torchrun write --samples, as torchrun reads --n as its own option")
    ce.add_argument("--alpha", type=float, default=0.001, help="failure probability (default: 0.001)")
    ce.add_argument("--records", help="JSONL file for the records")
    ce.add_argument("--csv", help="also write the records as CSV")
    ce.add_argument("--resume", action="store_true", help="continue an interrupted --records file (refused if its settings differ)")
    ce.add_argument("--inputs-per-call", type=int, default=32, help="inputs certified together, a chunk (default: 32); with --radii, the chunks shared out among torchrun's ranks")
    ce.add_argument("--radii", type=float_list, help="decide certification at these radii (comma-separated, increasing) sequentially: each input draws samples until a confidence sequence decides every radius, or --budget runs out")
    ce.add_argument("--budget", type=int, help="with --radii: most estimation samples per input (default: 100000)")
    ce.add_argument("--extended-budget", type=int, help="with --radii: inputs still undecided at --budget go on, up to this many samples, for the radii they would be certified at by then if their estimate were the truth (default: none)")
    ce.add_argument("--bound", choices=["renyi", "tight"], help="with --radii: the certificate whose radius the thresholds come from (default: renyi)")
    ce.add_argument("--p2-mode", choices=["runner-up", "complement"], help="with --radii: bound the runner-up class (default) or take p2 = 1 - p1")
    ce.add_argument("--inputs-at-once", type=int, help="with --radii: undecided inputs sharing the model's batches (default: 128)")
    ce.set_defaults(func=_cmd_certify)

    at = sub.add_parser("attack", help="attack a smoothed model", description="Empirical robust accuracy of the smoothed classifier under PGD, transfer and boundary attacks.")
    _common(at)
    _smoothing_options(at)
    at.add_argument("--eps", type=float_list, required=True, help="attack radii in the mechanism's norm, comma-separated")
    at.add_argument("--attacks", help="comma-separated subset of pgd,pgd-strong,transfer,boundary (default: all that apply)")
    at.add_argument("--undefended", help="checkpoint of an undefended model, for the transfer attack")
    at.add_argument("--vote-samples", type=int, default=1000, help="noise draws judging each adversarial example (default: 1000)")
    at.add_argument("--json", action="store_true", help="print JSON")
    at.set_defaults(func=_cmd_attack)

    rp = sub.add_parser("report", help="certified accuracy of records files", description="Certified accuracy against radius from 'renyicert certify' records, as a table and a plot.")
    rp.add_argument("records", nargs="+", help="JSONL records files")
    rp.add_argument("--all-bounds", action="store_true", help="every bound, not only the Rényi one")
    rp.add_argument("--plot", help="PNG file for the plot")
    rp.add_argument("--title", default="Certified accuracy", help="plot title")
    rp.add_argument("--norm", default="l2", help="norm name on the x axis (default: l2)")
    rp.set_defaults(func=_cmd_report)

    de = sub.add_parser("demo", help="the main job on the embedded digits", description="Train undefended, noise-augmented and stability-trained models, certify the test set, attack it and write results/ with a report and plots.")
    de.add_argument("--quick", action="store_true", help="the one-minute version")
    de.add_argument("--out", default="results", help="output folder (default: results)")
    de.add_argument("--model", default="mlp", choices=["mlp", "cnn"], help="architecture (default: mlp)")
    de.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    de.add_argument("--quiet", action="store_true", help="no progress bars")
    de.set_defaults(func=_cmd_demo)
