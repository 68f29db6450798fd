"""The main job on the embedded default: train with noise, certify the test set, attack it, report.

:func:`run_demo` trains an undefended model, and for each noise setting a
noise-augmented and a stability-trained one, on scikit-learn's digits; it
certifies the test set under every bound, attacks the smoothed classifiers,
and writes ``results/``:

* ``records/<noise>-<method>.jsonl`` (and ``.csv``): one certification record per test input;
* ``models/<noise>-<method>.pt`` + ``.json``: the trained models;
* ``certified-<noise>.png``, ``bounds-<noise>.png``, ``empirical-<noise>.png``: the curves;
* ``records/<noise>-<method>-sequential.jsonl``: sequential certification at the table's radii (``certify_at``);
* ``report.md``: the tables, the claims of Li et al. (2019) as they came out, and the checks;
* ``summary.json``: every number in the report.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..._json import dumps
from ..._progress import progress_bar
from ...radii import RECORD_BOUNDS
from ...registry import get_mechanism
from ...smoothing import Smoothed
from ..attacks import empirical_robustness
from ..certify import certify_dataset, certify_dataset_at
from ..data import load_digits
from ..models import build_model
from ..records import write_csv
from ..summary import certified_accuracy, radius_grid, summarize_sequential
from ..training import DEFAULT_GAMMA, train
from .report import write_report

__all__ = ["DemoSettings", "run_demo", "table_radii"]


def table_radii(entries: list[dict[str, Any]], points: int = 6) -> list[float]:
    """The radii of one noise's table: :func:`~renyicert.workflow.summary.radius_grid` over all its methods' fixed-n records."""
    return radius_grid([r for e in entries for r in e["_records"]], points)


@dataclass(frozen=True)
class DemoSettings:
    """What the demo runs; :meth:`quick` is the one-minute version the tests use."""

    noises: tuple[tuple[str, float], ...] = (("gaussian", 0.25), ("gaussian", 0.5), ("laplace", 0.25))
    methods: tuple[str, ...] = ("standard", "augmentation", "stability")
    model: str = "mlp"
    epochs: int = 30
    test_inputs: int | None = None  # all 360
    n0: int = 100
    n: int = 10_000
    alpha: float = 0.001
    attack_inputs: int = (
        60  # the first 60 test images, as `renyicert compare` attacks; 100 took the demo past 10 minutes
    )
    eps_multiples: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)  # eps = multiple * scale
    attacks: tuple[str, ...] = ("pgd", "pgd-strong", "transfer", "boundary")
    vote_samples: int = 1000
    boundary_iterations: int = 50
    batch_size: int = 4096
    seed: int = 0
    sequential_budget: int = 100_000  # certify_at at the table's radii: most estimation samples per input
    sequential_extended_budget: int | None = None  # and where the estimate is above a threshold
    sequential_p2_mode: str = (
        "complement"  # the threshold form: ordered one-sided tests per radius at the full alpha (issue 27)
    )

    @classmethod
    def quick(cls, **changes: Any) -> DemoSettings:
        """A version that finishes in about a minute on 2 cores."""
        settings = dict(
            noises=(("gaussian", 0.25), ("laplace", 0.25)),
            epochs=12,
            test_inputs=80,
            n=1000,
            attack_inputs=30,
            eps_multiples=(0.5, 1.0, 2.0),
            vote_samples=300,
            boundary_iterations=30,
            sequential_budget=5000,
        )
        settings.update(changes)
        return cls(**settings)  # type: ignore[arg-type]


@dataclass
class DemoResult:
    """Paths of what the demo wrote and the numbers behind the report (each result's records under ``"_records"``)."""

    report: Path
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def noise_key(name: str, scale: float) -> str:
    return f"{name}-{scale:g}"


def run_demo(
    out_dir: str | Path = "results", settings: DemoSettings | None = None, *, progress: bool | None = None
) -> DemoResult:
    """Run the whole job and write ``out_dir``; returns the report's path and the numbers.

    Examples
    --------
    >>> from renyicert.workflow.jobs.demo import DemoSettings
    >>> DemoSettings.quick().noises
    (('gaussian', 0.25), ('laplace', 0.25))
    """
    settings = settings or DemoSettings()
    out = Path(out_dir)
    (out / "records").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_data, test_data = load_digits(seed=settings.seed)
    test_data = test_data.subset(settings.test_inputs)
    jobs = [(noise, method) for noise in settings.noises for method in settings.methods]
    stage_seconds = {"train": 0.0, "certify": 0.0, "attack": 0.0, "sequential": 0.0}
    summary: dict[str, Any] = {
        "settings": asdict(settings),
        "gamma": DEFAULT_GAMMA,
        "train_size": len(train_data),
        "test_size": len(test_data),
        "results": {},
    }
    summary["stage_seconds"] = stage_seconds
    with progress_bar(4 * len(jobs), "demo", "stage", progress, leave=True) as stages:
        # 1. Training: one undefended model, and per noise one model per noise-trained method.
        models = _train_models(jobs, settings, train_data, out, stage_seconds, stages, progress)
        undefended = models.get(("none", "standard"))
        # 2. Certification and 3. attacks, per (noise, method).
        for noise, method in jobs:
            model = models[("none", "standard") if method == "standard" else (noise, method)]
            entry = _certify_and_attack(
                model, noise, method, undefended, settings, train_data, test_data, out, stage_seconds, stages, progress
            )
            summary["results"][f"{noise_key(*noise)}/{method}"] = entry
        # 4. Sequential certification at the table's radii (those of each noise's fixed-n records), per (noise, method).
        for noise, method in jobs:
            model = models[("none", "standard") if method == "standard" else (noise, method)]
            entries = [e for k, e in summary["results"].items() if k.startswith(f"{noise_key(*noise)}/")]
            entry = summary["results"][f"{noise_key(*noise)}/{method}"]
            entry["sequential"] = _certify_sequentially(
                model, noise, method, table_radii(entries), settings, test_data, out, stage_seconds, progress
            )
            if stages is not None:
                stages.update(1)
    report = write_report(out, summary)
    summary["seconds"] = time.perf_counter() - start
    without_records = dict(
        summary, results={k: {f: v for f, v in e.items() if f != "_records"} for k, e in summary["results"].items()}
    )
    (out / "summary.json").write_text(dumps(without_records, indent=2, default=float) + "\n")
    return DemoResult(report=report, summary=summary, seconds=summary["seconds"])


def _train_models(
    jobs: list[tuple[Any, str]],
    settings: DemoSettings,
    train_data: Any,
    out: Path,
    stage_seconds: dict[str, float],
    stages: Any,
    progress: bool | None,
) -> dict[tuple[Any, str], Any]:
    """One model per noise-trained (noise, method), and one undefended model, each trained once and checkpointed."""
    import torch

    models: dict[tuple[Any, str], Any] = {}
    for noise, method in jobs:
        key = ("none", method) if method == "standard" else (noise, method)
        if key not in models:
            tick = time.perf_counter()
            torch.manual_seed(settings.seed)
            model = build_model(settings.model, train_data.input_shape, train_data.num_classes)
            mechanism = get_mechanism(noise[0], scale=noise[1])
            name = "standard" if method == "standard" else f"{noise_key(*noise)}-{method}"
            config = {
                "model": settings.model,
                "input_shape": list(train_data.input_shape),
                "num_classes": train_data.num_classes,
            }
            train(
                model,
                train_data,
                mechanism,
                method=method,
                epochs=settings.epochs,
                seed=settings.seed,
                progress=progress,
                checkpoint=out / "models" / f"{name}.pt",
                config=config,
            )
            models[key] = model
            stage_seconds["train"] += time.perf_counter() - tick
        if stages is not None:
            stages.update(1)
    return models


def _smoothed(model: Any, mechanism: Any, data: Any, settings: DemoSettings, progress: bool | None) -> Smoothed:
    """``model`` smoothed by ``mechanism`` for inputs shaped as ``data``'s, at the demo's batch size."""
    return Smoothed(
        model,
        mechanism,
        data.num_classes,
        input_shape=data.input_shape,
        batch_size=settings.batch_size,
        progress=progress,
    )


def _certify_and_attack(
    model: Any,
    noise: tuple[str, float],
    method: str,
    undefended: Any,
    settings: DemoSettings,
    train_data: Any,
    test_data: Any,
    out: Path,
    stage_seconds: dict[str, float],
    stages: Any,
    progress: bool | None,
) -> dict[str, Any]:
    """Certify the test set and attack its first inputs with one smoothed model; its entry of the summary."""
    mechanism = get_mechanism(noise[0], scale=noise[1])
    smoothed = _smoothed(model, mechanism, train_data, settings, progress)
    path = out / "records" / f"{noise_key(*noise)}-{method}.jsonl"
    tick = time.perf_counter()
    records = certify_dataset(
        smoothed,
        test_data,
        path,
        n0=settings.n0,
        n=settings.n,
        alpha=settings.alpha,
        seed=settings.seed,
        overwrite=True,
        progress=progress,
    )
    write_csv(records, path.with_suffix(".csv"))
    if stages is not None:
        stages.update(1)
    stage_seconds["certify"] += time.perf_counter() - tick
    tick = time.perf_counter()
    eps, robustness = _attack(smoothed, noise, undefended, settings, test_data, progress)
    stage_seconds["attack"] += time.perf_counter() - tick
    if stages is not None:
        stages.update(1)
    attacked = records[: robustness.inputs]
    return {
        "noise": noise[0],
        "scale": noise[1],
        "norm": mechanism.norm,
        "method": method,
        "records": str(path.relative_to(out)),
        "clean_accuracy": float(certified_accuracy(records, [0.0])[0]),
        "empirical": {
            "eps": eps,
            "inputs": robustness.inputs,
            "clean_vote_accuracy": robustness.clean_accuracy,
            "accuracy": robustness.accuracy,
        },
        "certified_on_attacked": {
            b: certified_accuracy(attacked, eps, b).tolist()
            for b in RECORD_BOUNDS
            if attacked and attacked[0][f"radius_{b}"] is not None
        },
        "_records": records,
    }


def _attack(
    smoothed: Smoothed,
    noise: tuple[str, float],
    undefended: Any,
    settings: DemoSettings,
    test_data: Any,
    progress: bool | None,
) -> tuple[list[float], Any]:
    """The attacks on the first ``settings.attack_inputs`` test inputs at ``eps`` = multiples of the noise scale."""
    attack_data = test_data.subset(min(settings.attack_inputs, len(test_data)))
    eps = [round(m * noise[1], 6) for m in settings.eps_multiples]
    attacks = [a for a in settings.attacks if a != "transfer" or undefended is not None]
    robustness = empirical_robustness(
        smoothed,
        attack_data,
        eps,
        attacks=attacks,
        undefended=undefended,
        vote_samples=settings.vote_samples,
        boundary_iterations=settings.boundary_iterations,
        seed=settings.seed,
        progress=progress,
    )
    return eps, robustness


def _certify_sequentially(
    model: Any,
    noise: tuple[str, float],
    method: str,
    radii: list[float],
    settings: DemoSettings,
    test_data: Any,
    out: Path,
    stage_seconds: dict[str, float],
    progress: bool | None,
) -> dict[str, Any]:
    """Sequential certification of the test set at ``radii``; the summary entry (its records are written beside the fixed-n ones)."""
    mechanism = get_mechanism(noise[0], scale=noise[1])
    smoothed = _smoothed(model, mechanism, test_data, settings, progress)
    path = out / "records" / f"{noise_key(*noise)}-{method}-sequential.jsonl"
    tick = time.perf_counter()
    records = certify_dataset_at(
        smoothed,
        test_data,
        radii,
        path,
        alpha=settings.alpha,
        budget=settings.sequential_budget,
        extended_budget=settings.sequential_extended_budget,
        n0=settings.n0,
        seed=settings.seed,
        overwrite=True,
        progress=progress,
        p2_mode=settings.sequential_p2_mode,
    )
    seconds = time.perf_counter() - tick
    stage_seconds["sequential"] += seconds
    summary = summarize_sequential(records, radii, str(path))
    return {
        "records": str(path.relative_to(out)),
        "radii": list(summary.radii),
        "certified_accuracy": list(summary.certified_accuracy),
        "undecided": list(summary.undecided),
        "forward_passes": summary.forward_passes,
        "seconds": seconds,
        "budget": settings.sequential_budget,
        "extended_budget": settings.sequential_extended_budget,
        "max_forward_passes": max((r["n0"] + r["samples"] for r in records), default=0),
    }
