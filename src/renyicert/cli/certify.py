"""The commands on a smoothed classifier over a data set: ``certify`` (fixed n, or ``--radii`` sequentially), ``predict``, ``attack``.

Each handler loads the model, the data and the noise (:mod:`renyicert.workflow.inputs`),
calls one workflow function and prints its table (:mod:`renyicert.workflow.tables`).
``certify`` runs unchanged under ``torchrun``.
"""

from __future__ import annotations

import argparse
from typing import Any

from .. import workflow
from .arguments import (
    add_data_options,
    add_smoothing_options,
    float_list,
    mechanism_from_arguments,
    print_json,
    progress_of,
)

__all__ = ["add_commands"]


def _smoothed(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(smoothed classifier, test data)`` for ``certify``, ``predict`` and ``attack``."""
    model, data, trained_with = workflow.load_model_and_data(
        data=args.data,
        checkpoint=args.checkpoint,
        weights=args.weights,
        model=args.model,
        output_key=args.output_key,
        limit=args.limit,
        device=args.device,
        num_classes=args.num_classes,
        input_range=args.input_range,
        image_size=args.image_size,
    )
    name, scale, stored = workflow.noise_to_certify(
        trained_with, mechanism=args.mechanism, scale=args.scale, from_weights=bool(args.weights)
    )
    smoothed = workflow.smoothed_classifier(
        model,
        data,
        mechanism_from_arguments(name, scale, args.options, stored),
        verify_best=args.command == "certify",
        progress=progress_of(args),
        batch_size=args.batch_size,
        backend=args.backend,
        output=args.output_key,
        grid=args.grid,
        round_off_grid=args.round_to_grid,
    )
    return smoothed, data


#: Options of sequential certification only: refused without --radii (fixed n reports every bound at n samples).
_SEQUENTIAL_ONLY = ("budget", "extended_budget", "bound", "p2_mode", "inputs_at_once", "decision_test")


def _cmd_certify(args: argparse.Namespace) -> int:
    rank, world = workflow.join_torchrun()
    smoothed, data = _smoothed(args)
    if world > 1 and not args.records:
        raise ValueError("a distributed run needs --records (each rank writes a part of it)")
    if args.radii is not None:
        return _certify_at_radii(args, smoothed, data, rank)
    given = [f"--{name.replace('_', '-')}" for name in _SEQUENTIAL_ONLY if getattr(args, name) is not None]
    if given:
        raise ValueError(
            f"{given[0]} applies to sequential certification: give --radii too (fixed-n certification reports every "
            "bound, at n = --n samples)"
        )
    n = 10_000 if args.n is None else args.n
    records = workflow.certify_dataset(
        smoothed,
        data,
        args.records,
        n0=args.n0,
        n=n,
        alpha=args.alpha,
        seed=args.seed,
        inputs_per_call=args.inputs_per_call,
        resume=args.resume,
        progress=progress_of(args),
    )
    if rank != 0:
        return 0
    if args.csv:
        workflow.write_csv(records, args.csv)
    mechanism = smoothed.mechanism
    what = {
        "mechanism": mechanism.label,
        "scale": mechanism.scale,
        "norm": workflow.norm_name(mechanism.norm),
        "n0": args.n0,
        "n": n,
        "alpha": args.alpha,
        "mode": workflow.run_mode({"grid": args.grid}),
    }
    if args.json:
        print_json(workflow.fixed_n_summary(records, what, args.records))
    else:
        print(workflow.fixed_n_table(records, what, args.records))
    return 0


def _certify_at_radii(args: argparse.Namespace, smoothed: Any, data: Any, rank: int) -> int:
    """``certify --radii``: sequential certification at the given radii (fixed-n options refused, not ignored)."""
    if args.n is not None or args.csv:
        raise ValueError(
            f"{'--n' if args.n is not None else '--csv'} belongs to fixed-n certification; with --radii the samples "
            "per input are decided as they come, up to --budget"
        )
    bound, p2_mode = args.bound or "renyi", args.p2_mode or "runner-up"
    budget = 100_000 if args.budget is None else args.budget
    records = workflow.certify_dataset_at(
        smoothed,
        data,
        args.radii,
        args.records,
        alpha=args.alpha,
        budget=budget,
        extended_budget=args.extended_budget,
        n0=args.n0,
        bound=bound,
        p2_mode=p2_mode,
        seed=args.seed,
        inputs_per_call=args.inputs_per_call,
        inputs_at_once=128 if args.inputs_at_once is None else args.inputs_at_once,
        resume=args.resume,
        progress=progress_of(args),
        decision_test=args.decision_test or "ordered",
    )
    if rank != 0:
        return 0
    summary = workflow.summarize_sequential(records, args.radii)
    mechanism = smoothed.mechanism
    if args.json:
        print_json(
            {
                "mechanism": mechanism.label,
                "scale": mechanism.scale,
                "norm": workflow.norm_name(mechanism.norm),
                "bound": bound,
                "p2_mode": p2_mode,
                "alpha": args.alpha,
                "budget": budget,
                "n0": args.n0,
                "records": args.records,
                **workflow.sequential_json(summary),
            }
        )
        return 0
    what = f"{mechanism.name}, scale {mechanism.scale:g}, {bound} bound, p2 {p2_mode}, alpha = {args.alpha:g}"
    print(workflow.sequential_table(summary, what, budget, args.n0))
    if args.records:
        print(f"records: {args.records}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: the smoothed classifier's prediction per input (Cohen et al.'s PREDICT: abstain unless the top two counts differ significantly)."""
    smoothed, data = _smoothed(args)
    predictions = workflow.predict_dataset(
        smoothed, data, n=args.n, alpha=args.alpha, seed=args.seed, inputs_per_call=args.inputs_per_call
    )
    labels = data.y.tolist()
    if args.json:
        print_json(workflow.predictions_summary(predictions, labels, args.n, args.alpha))
    else:
        print(workflow.predictions_table(predictions, labels, args.n, args.alpha))
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    smoothed, data = _smoothed(args)
    default = [a for a in workflow.DEFAULT_ATTACKS if a != "transfer" or args.undefended]
    undefended = workflow.load_model(args.undefended, model=args.model, device=args.device) if args.undefended else None
    result = workflow.empirical_robustness(
        smoothed,
        data,
        args.eps,
        attacks=args.attacks.split(",") if args.attacks else default,
        undefended=undefended,
        vote_samples=args.vote_samples,
        long_steps=args.long_steps,
        long_restarts=args.long_restarts,
        seed=args.seed,
        progress=progress_of(args),
    )
    if args.json:
        print_json(
            {
                "eps": result.eps,
                "accuracy": result.accuracy,
                "clean_accuracy": result.clean_accuracy,
                "inputs": result.inputs,
            }
        )
    else:
        print(workflow.robustness_table(result))
    return 0


def _add_certify(sub: Any) -> None:
    """``certify``: fixed n, or sequentially with ``--radii``."""
    ce = sub.add_parser(
        "certify",
        help="certify a dataset",
        description="Certify every input of a dataset; records go to a JSONL file as they are produced. "
        "Runs unchanged under torchrun (gloo on CPU, nccl on CUDA): each rank certifies its chunks and rank 0 merges the records.",
    )
    add_data_options(ce)
    add_smoothing_options(ce)
    ce.add_argument("--n0", type=int, default=100, help="selection samples (default: 100)")
    ce.add_argument(
        "--n",
        "--samples",
        dest="n",
        type=int,
        help="estimation samples (default: 10000); under torchrun write --samples, as torchrun reads --n as its own option",
    )
    ce.add_argument(
        "--alpha",
        type=float,
        default=0.001,
        help="failure probability per input and per run (default: 0.001); choose it, and n, before looking at results: each retry with a new --seed spends it again",
    )
    ce.add_argument("--records", help="JSONL file for the records")
    ce.add_argument("--csv", help="also write the records as CSV")
    ce.add_argument(
        "--resume", action="store_true", help="continue an interrupted --records file (refused if its settings differ)"
    )
    ce.add_argument(
        "--inputs-per-call",
        type=int,
        default=32,
        help="inputs certified together, a chunk (default: 32); with --radii, the chunks shared out among torchrun's ranks",
    )
    _add_sequential_options(ce)
    ce.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ce.set_defaults(func=_cmd_certify)


def _add_sequential_options(parser: Any) -> None:
    """The options of ``certify --radii`` (sequential certification), in a help group of their own."""
    group = parser.add_argument_group(
        "sequential certification", "with --radii, each input draws samples until every radius is decided"
    )
    group.add_argument(
        "--radii",
        type=float_list,
        help="decide certification at these radii (comma-separated, increasing) sequentially: each input draws samples until a confidence sequence decides every radius, or --budget runs out",
    )
    group.add_argument("--budget", type=int, help="with --radii: most estimation samples per input (default: 100000)")
    group.add_argument(
        "--extended-budget",
        type=int,
        help="with --radii: inputs still undecided at --budget go on, up to this many samples, for the radii they would be certified at by then if their estimate were the truth (default: none)",
    )
    group.add_argument(
        "--bound",
        choices=["renyi", "tight"],
        help="with --radii: the certificate whose radius the thresholds come from (default: renyi)",
    )
    group.add_argument(
        "--p2-mode",
        choices=["runner-up", "complement"],
        help="with --radii: bound the runner-up class (default) or take p2 = 1 - p1",
    )
    group.add_argument(
        "--inputs-at-once", type=int, help="with --radii: undecided inputs sharing the model's batches (default: 128)"
    )
    group.add_argument(
        "--decision-test",
        choices=["ordered", "two-sided"],
        help="with --radii --p2-mode complement: one-sided e-processes per radius at the full alpha, certified in increasing order (default), "
        "or every radius from one two-sided confidence sequence (the rule before)",
    )


def _add_predict(sub: Any) -> None:
    """``predict``: the smoothed prediction per input."""
    pr = sub.add_parser(
        "predict",
        help="predict with the smoothed classifier",
        description="The smoothed classifier's prediction for each input (Cohen et al.'s PREDICT: it abstains unless the top two counts of n noisy copies differ significantly at level alpha).",
    )
    add_data_options(pr)
    add_smoothing_options(pr)
    pr.add_argument("--n", "--samples", dest="n", type=int, default=1000, help="noisy copies per input (default: 1000)")
    pr.add_argument(
        "--alpha",
        type=float,
        default=0.001,
        help="probability of returning a class other than the smoothed prediction (default: 0.001)",
    )
    pr.add_argument("--inputs-per-call", type=int, default=32, help="inputs predicted together (default: 32)")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=_cmd_predict)


def _add_attack(sub: Any) -> None:
    """``attack``: empirical robust accuracy."""
    at = sub.add_parser(
        "attack",
        help="attack a smoothed model",
        description="Empirical robust accuracy of the smoothed classifier under PGD, transfer and boundary attacks.",
    )
    add_data_options(at)
    add_smoothing_options(at)
    at.add_argument(
        "--eps", type=float_list, required=True, help="attack radii in the mechanism's norm, comma-separated"
    )
    at.add_argument(
        "--attacks",
        help="comma-separated subset of pgd,pgd-strong,transfer,boundary,pgd-long (default: all but pgd-long that apply; pgd-long is PGD with 20 random starts of 1000 steps)",
    )
    at.add_argument("--undefended", help="checkpoint of an undefended model, for the transfer attack")
    at.add_argument(
        "--vote-samples", type=int, default=1000, help="noise draws judging each adversarial example (default: 1000)"
    )
    at.add_argument("--long-steps", type=int, default=1000, help="steps of pgd-long (default: 1000)")
    at.add_argument("--long-restarts", type=int, default=20, help="random starts of pgd-long (default: 20)")
    at.add_argument("--json", action="store_true", help="print JSON")
    at.set_defaults(func=_cmd_attack)


def add_commands(sub: Any) -> None:
    """Register ``certify``, ``predict`` and ``attack`` on the CLI's subparsers."""
    _add_certify(sub)
    _add_predict(sub)
    _add_attack(sub)
