"""The workflow commands of the ``renyicert`` CLI: ``train``, ``certify``, ``predict``, ``attack``, ``report``, ``recertify`` and ``demo``.

Each defaults to the embedded digits; ``--data`` (a ``.npz``/``.pt`` file with
``x`` and ``y``, CIFAR-10's python batches, or image folders) and ``--model
module:callable`` with ``--weights FILE`` or ``--checkpoint FILE.pt`` bring the
user's own (``docs/your-model.md``).  :mod:`renyicert.cli` registers them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .._json import dumps
from .._validation import check_batch_size
from .arguments import add_option_argument, float_list, mechanism_from_arguments

__all__ = ["add_workflow_commands"]


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.quiet else None


def _split(args: argparse.Namespace, part: str, classes: int | None = None) -> Any:
    """The ``part`` ("train" or "test") of ``--data``: the digits split, a data set folder's part, or the whole user file.

    The number of classes is ``--num-classes``, else ``classes`` (a checkpoint's),
    else the data set's own (CIFAR-10: 10; image folders: one per folder), else
    the largest label + 1.
    """
    from ..workflow.data import load_data, load_digits, parse_input_range
    from ..workflow.datasets import open_data

    classes = args.num_classes if args.num_classes is not None else classes
    input_range = parse_input_range(args.input_range) if getattr(args, "input_range", None) else None
    image_size = getattr(args, "image_size", None)
    folder = None if args.data == "digits" else open_data(args.data, part, image_size=image_size)
    if folder is None and image_size is not None:
        raise ValueError(f"--image-size applies to image folders; {args.data!r} is not one")
    if (args.data == "digits" or folder is not None) and input_range is not None:
        raise ValueError(f"--input-range applies to .npz/.pt files; {args.data!r} is read as 8-bit pixels scaled to [0, 1]")
    if args.data == "digits" or folder is not None:
        data = load_digits()[0 if part == "train" else 1] if folder is None else folder
        if classes is not None and classes != data.num_classes:
            what = "the digits have" if folder is None else f"{args.data!r} has"
            raise ValueError(f"{what} {data.num_classes} classes, got --num-classes {classes}" if args.num_classes is not None else f"the checkpoint's model scores {classes} classes, {what} {data.num_classes}")
        return data
    return load_data(args.data, num_classes=classes, input_range=input_range)


def _device(args: argparse.Namespace) -> Any:
    """``--device`` as a torch device: ``auto`` is CUDA when there is one, else the CPU; an absent CUDA device is refused."""
    import torch

    text = getattr(args, "device", None) or "auto"
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {text!r}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {text}: torch sees no CUDA device here (torch.cuda.is_available() is False); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {text}: there are {torch.cuda.device_count()} CUDA devices (cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    return device


def _model_and_data(args: argparse.Namespace) -> tuple[Any, Any, dict[str, Any]]:
    """``(model on --device, test data, the noise it was trained with)``: a checkpoint, or ``--model`` with ``--weights``.

    With a checkpoint the model is read first, so that the data's classes default
    to its model's; with plain weights the data come first and give the shapes.
    """
    from ..workflow.models import build_model, load_checkpoint, load_weights

    if args.checkpoint and args.weights:
        raise ValueError("give --checkpoint (a model saved by 'renyicert train') or --model with --weights (your own), not both")
    from ..workflow.published import published_checkpoint_or_none

    published = None
    if args.checkpoint and not Path(args.checkpoint).with_suffix(".json").is_file():
        published = published_checkpoint_or_none(args.checkpoint)  # Cohen et al.'s train.py file, or None for load_checkpoint to refuse
    if published is not None:
        model, info = published
        data = _split(args, "test", info["num_classes"]).subset(args.limit)
        if data.input_shape[0] != 3 or (info["dataset"] == "cifar10" and data.input_shape != info["input_shape"]) or data.num_classes != info["num_classes"]:
            raise ValueError(
                f"{args.checkpoint!r} is Cohen et al.'s {info['arch']} for {info['dataset']} ({info['num_classes']} classes, images {info['input_shape']}); "
                f"the data has {data.num_classes} classes and inputs {data.input_shape}"
            )
        trained_with = {}  # their files do not record the noise level: --mechanism gaussian --scale SIGMA
    elif args.checkpoint:
        model, config = load_checkpoint(args.checkpoint, trusted_models=_trusted(args))
        data = _split(args, "test", int(config["num_classes"])).subset(args.limit)
        if tuple(config["input_shape"]) != data.input_shape:
            raise ValueError(f"the checkpoint's model takes inputs of shape {tuple(config['input_shape'])}, the data has {data.input_shape}")
        if int(config["num_classes"]) != data.num_classes:
            raise ValueError(f"the checkpoint's model scores {config['num_classes']} classes, the data has {data.num_classes}")
        trained_with = config.get("mechanism") or {}
    elif args.weights:
        if not args.model:
            raise ValueError("--weights needs --model: the architecture to load them into (a built-in name or module:callable)")
        data = _split(args, "test").subset(args.limit)
        model = load_weights(build_model(args.model, data.input_shape, data.num_classes, output=getattr(args, "output_key", None)), args.weights).eval()
        trained_with = {}
    else:
        raise ValueError("give the model: --checkpoint FILE.pt (saved by 'renyicert train'), or --model SPEC --weights FILE.pt (your own; see docs/your-model.md)")
    return model.to(_device(args)), data, trained_with


def _smoothed(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(smoothed classifier, test data)`` for ``certify``, ``predict`` and ``attack``."""
    from ..smoothing import Smoothed

    model, data, trained_with = _model_and_data(args)
    mechanism = _certifying_mechanism(args, trained_with)
    if getattr(args, "command", None) == "certify":
        mechanism = _verified_for_best(mechanism)
    # The per-call bars of the smoothed classifier only on a terminal: in a log, the data set's lines say enough.
    inner = _progress(args) if sys.stderr.isatty() else False
    smoothed = Smoothed(
        model, mechanism, data.num_classes, input_shape=data.input_shape, batch_size=args.batch_size, backend=args.sampler, progress=inner,
        output=getattr(args, "output_key", None), grid=args.grid, round_off_grid=args.round_to_grid,
    )  # fmt: skip
    return smoothed, data


def _verified_for_best(mechanism: Any) -> Any:
    """``mechanism``, with its comparison bounds verified first when it is not one renyicert ships (so that the best radius may use them)."""
    from ..checker import verify_comparison_bounds
    from ..smoothing import best_bounds, offered_bounds

    if best_bounds(mechanism) == offered_bounds(mechanism):
        return mechanism
    print(f"renyicert: checking {mechanism.label}'s comparison bounds (renyicert check, quick), which the best radius uses only if they pass", file=sys.stderr)
    verified, report = verify_comparison_bounds(mechanism)
    if best_bounds(verified) == offered_bounds(verified):
        print("renyicert: they passed: the best radius is taken over every bound", file=sys.stderr)
    else:
        print(f"renyicert: not verified ({report.summary}): the best radius is the Rényi one; 'renyicert check {mechanism.label}' says why", file=sys.stderr)
    return verified


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
        source = "plain weights do not record it" if args.weights else "the checkpoint does not record one: it was saved without a mechanism"
        missing = " and ".join(flag for flag, value in (("--mechanism", name), ("--scale", scale)) if value is None)
        raise ValueError(f"give {missing}: the noise to certify with, normally the one the model was trained with ({source})")
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
    device = _device(args)
    torch.manual_seed(args.seed)
    model = build_model(args.model, data.input_shape, data.num_classes).to(device)
    config = {"model": args.model, "input_shape": list(data.input_shape), "num_classes": data.num_classes, "data": args.data}
    result = train(
        model, data, mechanism, method=args.method, epochs=args.epochs, batch_size=args.train_batch_size, lr=args.lr, gamma=args.gamma,
        seed=args.seed, progress=_progress(args), checkpoint=args.out, config=config,
    )  # fmt: skip
    print(f"trained {args.model} ({args.method}) on {device} for {args.epochs} epochs in {result.seconds:.1f} s: loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}, "
          f"training accuracy {result.accuracies[-1]:.1%}; saved {args.out} and {Path(args.out).with_suffix('.json')}")  # fmt: skip
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    from ..workflow.evaluation import certify_dataset, norm_name, write_csv

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
            ("--inputs-at-once", args.inputs_at_once), ("--decision-test", args.decision_test),
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
    mechanism = smoothed.mechanism
    what = {"mechanism": mechanism.label, "scale": mechanism.scale, "norm": norm_name(mechanism.norm), "n0": args.n0, "n": args.n, "alpha": args.alpha, "mode": _mode({"grid": args.grid})}
    _print_fixed_n(records, what, args.json, args.records)
    return 0


def _print_fixed_n(records: list[dict[str, Any]], what: dict[str, Any], as_json: bool, path: str | None) -> None:
    """Certified accuracy per bound at a grid of radii, with ACR and the abstention rate: a table, or one JSON object."""
    from ..workflow.evaluation import BOUNDS, certified_accuracy, radius_grid, summarize_certified

    grid = radius_grid(records)
    bounds = [b for b in BOUNDS if records and records[0].get(f"radius_{b}") is not None]
    summaries = {b: summarize_certified(records, b) for b in bounds}
    accuracy = {b: [float(a) for a in certified_accuracy(records, grid, b)] for b in bounds}
    if as_json:
        print(dumps({
            **what, "inputs": len(records), "records": path, "radii": grid, "certified_accuracy": accuracy,
            "acr": {b: s.average_certified_radius for b, s in summaries.items()},
            "clean_accuracy": summaries[bounds[0]].clean_accuracy if bounds else 0.0,
            "abstention_rate": summaries[bounds[0]].abstention_rate if bounds else 0.0,
        }))  # fmt: skip
        return
    print(f"certified accuracy of {len(records)} inputs ({what['mechanism']}, scale {what['scale']:g}, {what['norm']} radii, n = {what['n']}, alpha = {what['alpha']:g}, {what['mode']} mode)")
    print(f"{'bound':<10}" + "".join(f"{f'r={r:g}':>10}" for r in grid) + f"{'ACR':>10}")
    for bound in bounds:
        print(f"{bound:<10}" + "".join(f"{a:>10.1%}" for a in accuracy[bound]) + f"{summaries[bound].average_certified_radius:>10.4f}")
    if bounds:
        print(f"abstained on {summaries[bounds[0]].abstention_rate:.1%} of the inputs; ACR: average certified radius (0 where wrong or abstained)")
    if path:
        print(f"records: {path}")


def _certify_at_radii(args: argparse.Namespace, smoothed: Any, data: Any, rank: int) -> int:
    """``certify --radii``: sequential certification at the given radii (fixed-n options refused, not ignored)."""
    from ..workflow.evaluation import certify_dataset_at, norm_name, summarize_sequential

    if args.n is not None or args.csv:
        raise ValueError(f"{'--n' if args.n is not None else '--csv'} belongs to fixed-n certification; with --radii the samples per input are decided as they come, up to --budget")
    bound = args.bound or "renyi"
    budget = 100_000 if args.budget is None else args.budget
    records = certify_dataset_at(
        smoothed, data, args.radii, args.records, alpha=args.alpha, budget=budget, extended_budget=args.extended_budget, n0=args.n0, bound=bound,
        p2_mode=args.p2_mode or "runner-up", seed=args.seed,
        inputs_per_call=args.inputs_per_call, inputs_at_once=128 if args.inputs_at_once is None else args.inputs_at_once,
        resume=args.resume, progress=_progress(args), decision_test=args.decision_test or "ordered",
    )  # fmt: skip
    if rank != 0:
        return 0
    summary = summarize_sequential(records, args.radii)
    if args.json:
        mechanism = smoothed.mechanism
        print(dumps({
            "mechanism": mechanism.label, "scale": mechanism.scale, "norm": norm_name(mechanism.norm), "bound": bound, "p2_mode": args.p2_mode or "runner-up",
            "alpha": args.alpha, "budget": budget, "n0": args.n0, "records": args.records, **_sequential_json(summary),
        }))  # fmt: skip
        return 0
    _print_sequential(summary, f"{smoothed.mechanism.name}, scale {smoothed.mechanism.scale:g}, {bound} bound, p2 {args.p2_mode or 'runner-up'}, alpha = {args.alpha:g}", budget, args.n0)
    if args.records:
        print(f"records: {args.records}")
    return 0


def _sequential_json(summary: Any) -> dict[str, Any]:
    return {
        "inputs": summary.inputs, "radii": list(summary.radii), "certified_accuracy": list(summary.certified_accuracy),
        "undecided": list(summary.undecided), "forward_passes": summary.forward_passes,
    }  # fmt: skip


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


def _cmd_predict(args: argparse.Namespace) -> int:
    """``predict``: the smoothed classifier's prediction per input (Cohen et al.'s PREDICT: abstain unless the top two counts differ significantly)."""
    from .._validation import check_positive_int
    from ..smoothing import ABSTAIN

    per_call = check_positive_int(args.inputs_per_call, "--inputs-per-call")
    smoothed, data = _smoothed(args)
    device = _device(args)
    predictions: list[int] = []
    for start in range(0, len(data), per_call):
        x = data.inputs(slice(start, start + per_call)).to(device)
        batch = smoothed.predict(x, n=args.n, alpha=args.alpha, seed=args.seed + start)
        predictions += [int(p) for p in batch]
    labels = data.y.tolist()
    correct = sum(p == y for p, y in zip(predictions, labels))
    abstained = sum(p == ABSTAIN for p in predictions)
    if args.json:
        print(dumps({"inputs": len(labels), "n": args.n, "alpha": args.alpha, "accuracy": correct / len(labels), "abstention_rate": abstained / len(labels),
                     "predictions": predictions, "labels": labels}))  # fmt: skip
        return 0
    print(f"{'index':>7}{'label':>7}{'prediction':>12}")
    for index, (label, prediction) in enumerate(zip(labels, predictions)):
        print(f"{index:>7}{label:>7}{'abstain' if prediction == ABSTAIN else prediction:>12}")
    print(f"accuracy {correct / len(labels):.1%} of {len(labels)} inputs, abstained on {abstained / len(labels):.1%} (n = {args.n}, alpha = {args.alpha:g})")
    return 0


def _cmd_attack(args: argparse.Namespace) -> int:
    from ..workflow.attacks import DEFAULT_ATTACKS, empirical_robustness
    from ..workflow.models import load_checkpoint

    smoothed, data = _smoothed(args)
    attacks = args.attacks.split(",") if args.attacks else [a for a in DEFAULT_ATTACKS if a != "transfer" or args.undefended]
    undefended = load_checkpoint(args.undefended, trusted_models=_trusted(args))[0].to(_device(args)) if args.undefended else None
    result = empirical_robustness(
        smoothed, data, args.eps, attacks=attacks, undefended=undefended, vote_samples=args.vote_samples, long_steps=args.long_steps,
        long_restarts=args.long_restarts, seed=args.seed, progress=_progress(args),
    )  # fmt: skip
    if args.json:
        print(dumps({"eps": result.eps, "accuracy": result.accuracy, "clean_accuracy": result.clean_accuracy, "inputs": result.inputs}))
        return 0
    print(f"empirical robust accuracy of {result.inputs} inputs (clean majority-vote accuracy {result.clean_accuracy:.1%})")
    print(f"{'attack':<12}" + "".join(f"{f'eps={e:g}':>11}" for e in result.eps))
    for name, values in result.accuracy.items():
        print(f"{name:<12}" + "".join(f"{v:>11.1%}" for v in values))
    return 0


def _records_settings(path: str) -> dict[str, Any]:
    """The settings stored beside a records file (``{}`` when there are none)."""
    import json

    from ..workflow.distributed import settings_path

    stored = settings_path(Path(path))
    if not stored.exists():
        return {}
    try:
        settings = json.loads(stored.read_text())
    except ValueError as error:
        raise ValueError(f"{str(stored)!r} is not JSON ({error})") from None
    if not isinstance(settings, dict):
        raise ValueError(f"{str(stored)!r} holds a JSON {type(settings).__name__}, not the settings object")
    return settings


def _recorded_norm(settings: dict[str, Any]) -> str | None:
    """The norm of the radii in records made with ``settings``: the norm of their mechanism (installed), or the one stored."""
    from ..registry import mechanism_class
    from ..workflow.evaluation import norm_name

    name = settings.get("mechanism")
    if isinstance(name, str):
        try:
            return norm_name(float(mechanism_class(name).norm))
        except (ValueError, LookupError):
            pass
    stored = settings.get("norm")
    return stored if isinstance(stored, str) else None


def _stored_mechanism(path: str, settings: dict[str, Any]) -> Any:
    """The mechanism a records file's settings name, with its scale and parameters; a ``ValueError`` names what is missing or ill-typed."""
    name, scale = settings.get("mechanism"), settings.get("scale")
    if not isinstance(name, str) or isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise ValueError(f"{path!r}: its settings name no mechanism and scale, got mechanism = {name!r}, scale = {scale!r}")
    parameters = settings.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ValueError(f"{path!r}: its settings' 'parameters' must be an object, got {parameters!r}")
    return mechanism_from_arguments(name, float(scale), [], parameters)


def _settings_mechanism(path: str, settings: dict[str, Any]) -> Any:
    """:func:`_stored_mechanism` for ``report`` (to re-derive the radii): ``None`` without settings, and ``None`` with a note when it cannot be built here."""
    if "mechanism" not in settings:
        return None
    try:
        return _stored_mechanism(path, settings)
    except (ValueError, TypeError, LookupError) as error:
        print(f"renyicert: note: {path}: its radii are not re-derived from its counts, since its mechanism cannot be built here ({error})", file=sys.stderr)
        return None


def _note_unverified(path: str, settings: dict[str, Any]) -> None:
    """Say on stderr when a records file's mechanism could not be verified, or some of its bounds were left out of the best radius."""
    if settings.get("divergence_verifiable") is False:
        print(
            f"renyicert: note: {path}: {settings.get('mechanism')} has no density, so nothing verified its divergence (renyicert check "
            "says 'passed what could be checked'): these certificates rest on the plugin's formula (verified: false)",
            file=sys.stderr,
        )
    if isinstance(settings.get("best_of"), list):
        print(f"renyicert: note: {path}: the best radius is taken over {', '.join(map(str, settings['best_of']))} only: the other comparison bounds were not verified", file=sys.stderr)


def _warn_incomplete(path: str, settings: dict[str, Any], count: int) -> None:
    """Print on stderr what says that ``path`` is not a finished run (a live lock, part files, missing inputs)."""
    from ..workflow.record_checks import incomplete_warnings

    for warning in incomplete_warnings(path, settings, count):
        print(f"renyicert: warning: {warning}", file=sys.stderr)


def _cmd_report(args: argparse.Namespace) -> int:
    from ..workflow.evaluation import BOUNDS, bound_label, certified_accuracy, checked_record, curve_radii, plot_certified_accuracy, radius_grid, summarize_certified, TENG_NOTE
    from ..workflow.record_checks import verify_fixed_n
    from ..workflow.records import read_records

    stored = [_records_settings(path) for path in args.records]
    if any(settings.get("method") == "sequential" for settings in stored):
        return _report_sequential(args, [settings if settings.get("method") == "sequential" else None for settings in stored])
    runs = []
    for path, settings in zip(args.records, stored):
        found = read_records(path)
        if not found.records:
            raise ValueError(f"{path!r} holds no records")
        norm = _recorded_norm(settings)
        if norm is not None and args.norm is not None and args.norm != norm:
            raise ValueError(f"{path}: its records are {norm} radii ({settings.get('mechanism')} noise), not {args.norm}; drop --norm, which is only for records without settings")
        records = [checked_record(record, f"{path} record {k}", settings.get("best_of")) for k, record in enumerate(found.records, start=1)]
        verify_fixed_n(records, settings, path, _settings_mechanism(path, settings))
        _note_unverified(path, settings)
        _warn_incomplete(path, settings, len(records))
        runs.append({"path": path, "name": Path(path).stem, "settings": settings, "norm": norm or args.norm, "mechanism": settings.get("mechanism"), "records": records})
    _refuse_mixed_modes(runs)
    norms = sorted({str(run["norm"]) for run in runs})
    if len(norms) > 1:
        described = "; ".join(f"{run['path']}: {run['mechanism'] or 'unknown'} noise, {run['norm'] or 'norm not recorded'}" for run in runs)
        raise ValueError(f"these records certify radii in different norms ({', '.join(norms)}), which no table or plot can compare; report them apart ({described})")
    norm = runs[0]["norm"]
    grid = radius_grid([r for run in runs for r in run["records"]])
    rows, row_runs = [], []
    for run in runs:
        for bound in BOUNDS:
            if run["records"][0].get(f"radius_{bound}") is None or (bound != "renyi" and not args.all_bounds):
                continue
            summary = summarize_certified(run["records"], bound)
            rows.append({
                "records": run["path"], "mechanism": run["mechanism"], "scale": run["settings"].get("scale"), "norm": norm, "bound": bound,
                "alpha": run["settings"].get("alpha"), "n": run["settings"].get("n"), "radii": grid,
                "certified_accuracy": [float(a) for a in certified_accuracy(run["records"], grid, bound)], **summary.as_dict(),
                "divergence_verifiable": run["settings"].get("divergence_verifiable", True) if run["settings"] else None,
                "mode": _mode(run["settings"]),
            })  # fmt: skip
            row_runs.append(run)
    if args.json:
        for row in rows:
            print(dumps(row))
    else:
        print(f"certified accuracy ({norm or 'norm not recorded: give --norm'} radii, {_mode(runs[0]['settings'])} mode); ACR = average certified radius, 0 where wrong or abstained")
        print(f"{'records':<28}{'bound':<9}" + "".join(f"{f'r={r:g}':>9}" for r in grid) + f"{'ACR':>9}{'abstain':>9}")
        for row in rows:
            name = Path(row["records"]).stem
            print(f"{name:<28}{row['bound']:<9}" + "".join(f"{a:>9.1%}" for a in row["certified_accuracy"]) + f"{row['acr']:>9.4f}{row['abstention_rate']:>9.1%}")
    if args.plot:
        radii = curve_radii([run["records"] for run in runs], [row["bound"] for row in rows])
        curves = {}
        for row, run in zip(rows, row_runs):
            noise = f"{run['mechanism']} {run['settings'].get('scale'):g}" if run["mechanism"] and isinstance(run["settings"].get("scale"), (int, float)) else "noise not recorded"
            label = bound_label(row["bound"], run["mechanism"]) if len(runs) == 1 else f"{run['name']}: {noise}, {bound_label(row['bound'], run['mechanism'])}"
            curves[label] = (radii, certified_accuracy(run["records"], radii, row["bound"]))
        teng = any(row["bound"] == "tight" and row["mechanism"] == "laplace" for row in rows)
        dashed = [label for label, row in zip(curves, rows) if row["bound"] == "best"]
        title = args.title if len(runs) > 1 else f"{args.title}: {runs[0]['name']} ({noise})"
        plot_certified_accuracy(curves, args.plot, title=title, norm=norm or "norm not recorded", note=TENG_NOTE if teng else None, dashed=dashed)
        if not args.json:
            print(f"plot: {args.plot}")
    return 0


def _mode(settings: dict[str, Any] | None) -> str:
    """``"lattice (grid 1/255)"`` for lattice-mode records, ``"float"`` for the others."""
    grid = (settings or {}).get("grid")
    return "float" if grid is None else f"lattice (grid 1/{grid})"


def _refuse_mixed_modes(runs: list[dict[str, Any]]) -> None:
    """Refuse one table over float-mode and lattice-mode records (or lattices of different grids): their certificates cover different inputs."""
    modes = sorted({_mode(run["settings"]) for run in runs})
    if len(modes) > 1:
        described = "; ".join(f"{run['path']}: {_mode(run['settings'])}" for run in runs)
        raise ValueError(
            f"these records were certified in different modes ({', '.join(modes)}): a lattice certificate holds in floating point for grid inputs, "
            f"a float one in real arithmetic only, so one table would compare unlike claims; report them apart ({described})"
        )


def _report_sequential(args: argparse.Namespace, settings: list[dict[str, Any] | None]) -> int:
    """``report`` on records of ``certify --radii``: one table per file (mixing them with fixed-n records is refused)."""
    from ..workflow.evaluation import summarize_sequential
    from ..workflow.record_checks import verify_sequential
    from ..workflow.records import read_records

    if not all(settings):
        fixed = [p for p, s in zip(args.records, settings) if not s]
        raise ValueError(f"cannot report fixed-n records ({', '.join(fixed)}) together with sequential ones (certify --radii): their radii are not comparable; report them apart")
    if args.plot:
        raise ValueError("--plot draws curves over radii from fixed-n records; sequential records hold answers at their own radii only")
    _refuse_mixed_modes([{"path": path, "settings": stored} for path, stored in zip(args.records, settings)])
    for path, stored in zip(args.records, settings):
        assert stored is not None
        radii = stored.get("radii")
        if not isinstance(radii, list) or not radii or not all(isinstance(r, (int, float)) and not isinstance(r, bool) for r in radii):
            raise ValueError(f"{path}: its settings hold no list of radii, got {radii!r}")
        records = read_records(path).records
        if not records:
            raise ValueError(f"{path!r} holds no records")
        summary = summarize_sequential(records, radii, path)  # checks each record's fields and types
        verify_sequential(records, radii, stored, path)
        _warn_incomplete(path, stored, len(records))
        _note_unverified(path, stored)
        if args.json:
            print(dumps({
                "records": path, "mechanism": stored.get("mechanism"), "scale": stored.get("scale"), "norm": _recorded_norm(stored), "bound": stored.get("bound"),
                "alpha": stored.get("alpha"), "mode": _mode(stored), **_sequential_json(summary),
            }))  # fmt: skip
            continue
        what = f"{Path(path).stem}: {stored.get('mechanism')}, scale {stored.get('scale')}, {stored.get('bound')} bound, alpha = {stored.get('alpha')}, {_mode(stored)} mode"
        _print_sequential(summary, what, stored.get("budget"), stored.get("n0"))
    return 0


def _cmd_recertify(args: argparse.Namespace) -> int:
    """``recertify``: the certificates a fixed-n records file's counts give under another alpha or p2 mode, without the model."""
    from ..workflow.distributed import settings_path, write_settings
    from ..workflow.evaluation import checked_record, norm_name, recertify_records
    from ..workflow.record_checks import verify_fixed_n
    from ..workflow.records import RecordWriter, read_records

    settings = _records_settings(args.records)
    if not settings:
        raise ValueError(f"{args.records!r} has no {settings_path(Path(args.records)).name} beside it: the mechanism and scale its counts were drawn with are unknown")
    if settings.get("method") == "sequential":
        raise ValueError(f"{args.records!r} holds sequential records (certify --radii): their decisions depend on the alpha at every step, so they cannot be recomputed from the final counts; certify again")
    mechanism = _stored_mechanism(args.records, settings)
    if args.grid is not None and settings.get("grid") != args.grid:
        raise ValueError(f"--grid {args.grid}: {args.records!r} was certified in {_mode(settings)} mode; recertify keeps a file's mode (drop --grid, or certify again with --grid {args.grid})")
    found = read_records(args.records)
    if not found.records:
        raise ValueError(f"{args.records!r} holds no records")
    checked = [checked_record(r, f"{args.records} record {k}", settings.get("best_of")) for k, r in enumerate(found.records, start=1)]
    if not isinstance(settings.get("alpha"), float):
        raise ValueError(f"{args.records!r}: its settings hold no alpha, got {settings.get('alpha')!r}; the recorded radii cannot be re-derived before recomputing them")
    verify_fixed_n(checked, settings, args.records, mechanism)  # the recorded radii, re-derived at the recorded alpha, before anything changes
    _warn_incomplete(args.records, settings, len(checked))
    records = recertify_records(checked, mechanism, args.alpha, args.p2_mode)
    if args.out:
        out = Path(args.out)
        if out.exists() or settings_path(out).exists():
            raise ValueError(f"--out {args.out!r} already exists; choose a new file")
        with RecordWriter(out) as writer:
            for record in records:
                writer.write(record)
        write_settings(out, dict(settings, alpha=args.alpha, p2_mode=args.p2_mode, recertified_from=str(args.records)))
    what = {"mechanism": mechanism.label, "scale": mechanism.scale, "norm": norm_name(mechanism.norm), "n0": settings.get("n0"), "n": settings.get("n"), "alpha": args.alpha, "mode": _mode(settings)}
    _print_fixed_n(records, what, args.json, args.out)
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..workflow.demo import DemoSettings, run_demo
    from ..workflow.report import main_table

    settings = DemoSettings.quick(model=args.model, seed=args.seed) if args.quick else DemoSettings(model=args.model, seed=args.seed)
    print(f"renyicert demo{' (quick)' if args.quick else ''}: training, certifying and attacking on scikit-learn's digits; writing {args.out}/", file=sys.stderr)
    result = run_demo(args.out, settings, progress=_progress(args))
    print(main_table(result.summary))
    print(f"\nfinished in {result.seconds:.0f} s; report: {result.report} (plots and records beside it)")
    print("TRADES, a 1-Lipschitz network and PGD with 20 random starts of 1000 steps: renyicert compare (make compare)")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from ..workflow.compare import CompareSettings, run_comparison

    changes: dict[str, Any] = {"seed": args.seed}
    for option in ("long_steps", "long_restarts", "attack_inputs"):
        if getattr(args, option) is not None:
            changes[option] = getattr(args, option)
    settings = CompareSettings.quick(**changes) if args.quick else CompareSettings(**changes)
    print(
        f"renyicert compare{' (quick)' if args.quick else ''}: smoothing vs TRADES vs a 1-Lipschitz network on scikit-learn's digits, "
        f"PGD with {settings.long_restarts} random starts of {settings.long_steps} steps; writing {args.out}/",
        file=sys.stderr,
    )
    result = run_comparison(args.out, settings, progress=_progress(args))
    from ..workflow.compare_report import comparison_table

    for noise, noise_result in result.summary["results"].items():
        print(f"\n{noise}\n\n" + comparison_table(noise_result, result.summary["training_seconds"], noise))
    print(f"\nfinished in {result.seconds:.0f} s; report: {result.report} (plots and records beside it)")
    return 0


def _common(parser: argparse.ArgumentParser, data_default: str = "digits") -> None:
    parser.add_argument(
        "--data", default=data_default,
        help="'digits' (embedded, default); a .npz/.pt file with arrays x (values in [0, 1], or see --input-range) and y; a cifar-10-batches-py "
        "folder; or an image folder (one sub-folder per class, or train/ and val/ holding them)",
    )  # fmt: skip
    parser.add_argument("--num-classes", type=int, help="number of classes (default: the checkpoint's model's, else the data set's, else the largest label + 1)")
    parser.add_argument("--input-range", metavar="LOW,HIGH", help="the range the values of a .npz/.pt file span, mapped onto [0, 1], e.g. 0,255 (default: they must lie in [0, 1])")
    parser.add_argument("--image-size", type=int, help="image folders: resize each image's shorter side to this and crop the centre (default: all images must have one size)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when there is one), cpu, cuda or cuda:N (default: auto)")
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random (default: 0); re-running certify with new seeds until an input certifies spends alpha once per run (docs/certify.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _batch_size(text: str) -> int | str:
    """``--batch-size``: a positive integer or ``auto``."""
    try:
        return check_batch_size(text if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}") from None


def _smoothing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint", help="a model saved by 'renyicert train' (FILE.pt beside FILE.json), or a checkpoint of Cohen et al.'s train.py "
        "(its 'arch' picks cifar_resnet20, cifar_resnet110 or resnet50; give --mechanism and --scale, which it does not record)",
    )  # fmt: skip
    parser.add_argument(
        "--model",
        help="your model, with --weights: a built-in (mlp, cnn, resnet20, and Cohen et al.'s cifar_resnet20, cifar_resnet110, resnet50) or module:callable, found from the working directory as "
        "'python -m' finds modules; with --checkpoint, the module:callable it names (only code you name is imported, never code a file names)",
    )  # fmt: skip
    parser.add_argument("--weights", help="a state dict for --model (torch.save(model.state_dict(), FILE)), read without running code")
    parser.add_argument("--output-key", help="where the model's output holds the logits when it returns a dict or an object (default: the tensor itself, else 'logits', else a tuple's first element)")
    parser.add_argument("--mechanism", help="noise (default: the one the checkpoint was trained with)")
    parser.add_argument("--scale", type=float, help="noise scale (default: the checkpoint's)")
    parser.add_argument("--limit", type=int, help="only the first LIMIT inputs")
    parser.add_argument("--batch-size", type=_batch_size, default=4096, help="noisy copies per model call, or 'auto' to time the model and pick (default: 4096)")
    parser.add_argument("--sampler", choices=["auto", "triton", "native", "compiled", "eager"], default="auto", help="noise sampler path (default: auto; all draw the same noise)")
    _grid_option(parser)
    parser.add_argument(
        "--round-to-grid", action="store_true",
        help="with --grid: round inputs off the grid to the nearest grid point instead of refusing them (the certificate is then the rounded input's)",
    )  # fmt: skip
    add_option_argument(parser)


def _grid_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--grid", type=_grid_value,
        help="lattice mode: the inputs are k / GRID (255 for 8-bit images, 16 for the digits) and the noise is drawn on that grid in integers, "
        "so the certificates hold in floating point (docs/float-soundness.md; default: float mode)",
    )  # fmt: skip


def _grid_value(text: str) -> int:
    """``--grid``: an integer in [1, 65536]."""
    from ..lattice import check_grid

    try:
        return check_grid(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer in [1, 65536] (grid points per unit), got {text!r}") from None


def add_workflow_commands(sub: Any) -> None:
    """Register ``train``, ``certify``, ``attack``, ``report`` and ``demo`` on the CLI's subparsers."""
    from ..workflow.training import DEFAULT_GAMMA, METHODS

    tr = sub.add_parser("train", help="train a model with noise", description="Train a model (standard, noise augmentation or stability training) and save a checkpoint.")
    _common(tr)
    tr.add_argument("--model", default="mlp", help="'mlp', 'cnn', 'resnet20' (32x32 images) or module:callable, found from the working directory (default: mlp)")
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
    ce.add_argument("--alpha", type=float, default=0.001, help="failure probability per input and per run (default: 0.001); choose it, and n, before looking at results: each retry with a new --seed spends it again")
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
    ce.add_argument(
        "--decision-test", choices=["ordered", "two-sided"],
        help="with --radii --p2-mode complement: one-sided e-processes per radius at the full alpha, certified in increasing order (default), "
        "or every radius from one two-sided confidence sequence (the rule before)",
    )  # fmt: skip
    ce.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    ce.set_defaults(func=_cmd_certify)

    pr = sub.add_parser("predict", help="predict with the smoothed classifier", description="The smoothed classifier's prediction for each input (Cohen et al.'s PREDICT: it abstains unless the top two counts of n noisy copies differ significantly at level alpha).")
    _common(pr)
    _smoothing_options(pr)
    pr.add_argument("--n", "--samples", dest="n", type=int, default=1000, help="noisy copies per input (default: 1000)")
    pr.add_argument("--alpha", type=float, default=0.001, help="probability of returning a class other than the smoothed prediction (default: 0.001)")
    pr.add_argument("--inputs-per-call", type=int, default=32, help="inputs predicted together (default: 32)")
    pr.add_argument("--json", action="store_true", help="print JSON")
    pr.set_defaults(func=_cmd_predict)

    at = sub.add_parser("attack", help="attack a smoothed model", description="Empirical robust accuracy of the smoothed classifier under PGD, transfer and boundary attacks.")
    _common(at)
    _smoothing_options(at)
    at.add_argument("--eps", type=float_list, required=True, help="attack radii in the mechanism's norm, comma-separated")
    at.add_argument("--attacks", help="comma-separated subset of pgd,pgd-strong,transfer,boundary,pgd-long (default: all but pgd-long that apply; pgd-long is PGD with 20 random starts of 1000 steps)")
    at.add_argument("--undefended", help="checkpoint of an undefended model, for the transfer attack")
    at.add_argument("--vote-samples", type=int, default=1000, help="noise draws judging each adversarial example (default: 1000)")
    at.add_argument("--long-steps", type=int, default=1000, help="steps of pgd-long (default: 1000)")
    at.add_argument("--long-restarts", type=int, default=20, help="random starts of pgd-long (default: 20)")
    at.add_argument("--json", action="store_true", help="print JSON")
    at.set_defaults(func=_cmd_attack)

    rp = sub.add_parser("report", help="certified accuracy of records files", description="Certified accuracy against radius from 'renyicert certify' records, as a table and a plot.")
    rp.add_argument("records", nargs="+", help="JSONL records files")
    rp.add_argument("--all-bounds", action="store_true", help="every bound, not only the Rényi one")
    rp.add_argument("--plot", help="PNG file for the plot")
    rp.add_argument("--title", default="Certified accuracy", help="plot title")
    rp.add_argument("--norm", help="the norm of records without a settings file (default: read from the settings, the mechanism's norm)")
    rp.add_argument("--json", action="store_true", help="print one JSON object per row")
    rp.set_defaults(func=_cmd_report)

    rc = sub.add_parser(
        "recertify",
        help="recompute certificates from a records file's counts",
        description="Recompute every certificate of a fixed-n records file from its counts under another alpha or p2 mode, without the model "
        "(every bound, as certify computes them). Choose the alpha before looking: trying several and keeping the best spends more than one.",
    )  # fmt: skip
    rc.add_argument("records", help="a JSONL records file written by 'renyicert certify' (its settings file beside it)")
    rc.add_argument("--alpha", type=float, required=True, help="the failure probability to certify at; choose it before looking: trying several and keeping the best spends each")
    rc.add_argument("--p2-mode", choices=["runner-up", "complement"], default="runner-up", help="bound the runner-up class (default, as certify does) or take p2 = 1 - p1")
    rc.add_argument("--out", help="write the recomputed records (and their settings) here")
    _grid_option(rc)
    rc.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    rc.set_defaults(func=_cmd_recertify)

    de = sub.add_parser("demo", help="the main job on the embedded digits", description="Train undefended, noise-augmented and stability-trained models, certify the test set, attack it and write results/ with a report and plots.")
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
    )  # fmt: skip
    co.add_argument("--quick", action="store_true", help="the one-minute version")
    co.add_argument("--out", default="results", help="output folder (default: results)")
    co.add_argument("--long-steps", type=int, help="steps of the long PGD (default: 1000)")
    co.add_argument("--long-restarts", type=int, help="random starts of the long PGD (default: 20)")
    co.add_argument("--attack-inputs", type=int, help="test images attacked (default: 60)")
    co.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    co.add_argument("--quiet", action="store_true", help="no progress bars")
    co.set_defaults(func=_cmd_compare)
