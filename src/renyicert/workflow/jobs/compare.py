"""The paper's comparisons: smoothing against TRADES and a deterministic certifier, under the promised PGD-1000.

:func:`run_comparison` trains, on the demo's digits and architecture, for each noise
the undefended, noise-augmented and stability-trained models (smoothed), and per norm
a TRADES model (:mod:`~renyicert.workflow.trades`) and one 1-Lipschitz network
(:mod:`~renyicert.workflow.lipschitz`, its l2 radius also an l1 radius).  It certifies
the smoothed models on the test set (every bound), the 1-Lipschitz one
deterministically, attacks every model on the first test images with the demo's
attacks and ``pgd-long`` (20 random starts of 1,000 steps), and writes into ``out``:

* ``compare.md``: one table per noise (clean accuracy, certified accuracy at the
  radii, empirical robust accuracy under the strongest attack at eps = radius,
  training time), the training-cost ratio, the paper's claims as they came out,
  and the check that certified <= empirical accuracy everywhere;
* ``compare-<noise>.png``: certified accuracy of the smoothed models (Rényi and
  tight) and of the 1-Lipschitz network on one plot;
* ``compare.json``: every number; ``compare-records/``: the smoothed models' records.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..._json import dumps
from ..._progress import progress_bar
from ...registry import get_mechanism
from ...smoothing import Smoothed
from ..attacks import ATTACKS, empirical_robustness
from ..certify import certify_dataset
from ..data import load_digits
from ..lipschitz import deterministic_certify
from ..summary import certified_accuracy
from .compare_report import write_comparison_report
from .compare_training import train_all
from .demo import noise_key

__all__ = ["CompareSettings", "ComparisonResult", "run_comparison"]


@dataclass(frozen=True)
class CompareSettings:
    """What the comparison runs; :meth:`quick` is the version the tests use."""

    noises: tuple[tuple[str, float], ...] = (("gaussian", 0.25), ("gaussian", 0.5), ("laplace", 0.25))
    model: str = "mlp"
    epochs: int = 30
    n0: int = 100
    n: int = 10_000
    alpha: float = 0.001
    attack_inputs: int = 60
    eps_multiples: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0)  # eps = multiple * scale
    attacks: tuple[str, ...] = ("pgd", "pgd-strong", "transfer", "boundary", "pgd-long")
    vote_samples: int = 1000
    boundary_iterations: int = 50
    long_steps: int = 1000
    long_restarts: int = 20
    long_soft_samples: int = 1
    trades_eps: float = 0.5  # TRADES trains against PGD of this radius, in each noise's norm
    trades_beta: float = 6.0
    trades_attack_steps: int = 10
    lipschitz_tau: float = 2.0
    timing_runs: int = 3  # TRADES and stability training timed this many times each (the first run's models are used)
    batch_size: int = 4096
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "epochs",
            "n0",
            "n",
            "attack_inputs",
            "vote_samples",
            "boundary_iterations",
            "long_steps",
            "long_restarts",
            "long_soft_samples",
            "trades_attack_steps",
            "timing_runs",
            "batch_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        for name in ("trades_eps", "lipschitz_tau"):
            if not (isinstance(getattr(self, name), (int, float)) and 0.0 < getattr(self, name) < float("inf")):
                raise ValueError(f"{name} must be finite and > 0, got {getattr(self, name)!r}")
        if not self.trades_beta >= 0.0:
            raise ValueError(f"trades_beta must be >= 0, got {self.trades_beta!r}")
        if not self.noises or not self.eps_multiples or any(not m > 0 for m in self.eps_multiples):
            raise ValueError(
                f"give at least one noise and positive eps multiples, got noises={self.noises!r}, eps_multiples={self.eps_multiples!r}"
            )
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown or not self.attacks:
            raise ValueError(f"attacks must be some of {ATTACKS}, got {self.attacks!r}")

    @classmethod
    def quick(cls, **changes: Any) -> CompareSettings:
        """A version that finishes in about a minute on 2 cores."""
        settings = dict(
            noises=(("gaussian", 0.5), ("laplace", 0.25)),
            epochs=8,
            n=1000,
            attack_inputs=20,
            eps_multiples=(1.0, 2.0),
            vote_samples=300,
            boundary_iterations=20,
            long_steps=40,
            long_restarts=4,
            trades_attack_steps=3,
            timing_runs=1,
        )
        settings.update(changes)
        return cls(**settings)  # type: ignore[arg-type]


@dataclass
class ComparisonResult:
    """The report's path and every number behind it."""

    report: Path
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run_comparison(
    out_dir: str | Path = "results", settings: CompareSettings | None = None, *, progress: bool | None = None
) -> ComparisonResult:
    """Train, certify and attack every model of the comparison and write the report into ``out_dir``.

    Examples
    --------
    >>> from renyicert.workflow.jobs.compare import CompareSettings
    >>> CompareSettings().long_steps, CompareSettings().long_restarts
    (1000, 20)
    """
    settings = settings or CompareSettings()
    out = Path(out_dir)
    (out / "compare-records").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_data, test_data = load_digits(seed=settings.seed)
    attack_data = test_data.subset(min(settings.attack_inputs, len(test_data)))
    norms = sorted({float(get_mechanism(name, scale=scale).norm) for name, scale in settings.noises})
    eps_by_noise = {
        noise_key(*noise): [round(m * noise[1], 6) for m in settings.eps_multiples] for noise in settings.noises
    }
    summary: dict[str, Any] = {
        "settings": asdict(settings),
        "train_size": len(train_data),
        "test_size": len(test_data),
        "attack_inputs": len(attack_data),
    }
    stages = 2 + 3 * len(settings.noises) + 2 * len(norms)
    with progress_bar(stages, "compare", "stage", progress, leave=True) as bar:
        models, times = train_all(settings, train_data, norms, progress, bar)
        summary["training_seconds"] = times
        undefended = models[("standard", None)]
        data = (train_data, test_data, attack_data)
        results = _smoothed_results(models, undefended, settings, data, eps_by_noise, out, progress, bar)
        _add_deterministic_results(results, models, undefended, settings, data, norms, progress, bar)
    summary["results"] = results
    summary["seconds"] = time.perf_counter() - start
    report = write_comparison_report(out, summary)
    (out / "compare.json").write_text(dumps(_public(summary), indent=2, default=float) + "\n")
    return ComparisonResult(report=report, summary=summary, seconds=summary["seconds"])


def _smoothed_results(
    models: dict[tuple[str, Any], Any],
    undefended: Any,
    settings: CompareSettings,
    data: tuple[Any, Any, Any],
    eps_by_noise: dict[str, list[float]],
    out: Path,
    progress: bool | None,
    bar: Any,
) -> dict[str, dict[str, Any]]:
    """Per noise, the entries of the three smoothed models (standard, augmentation, stability), certified and attacked."""
    train_data, test_data, attack_data = data
    results: dict[str, dict[str, Any]] = {}
    for noise in settings.noises:
        key, mechanism = noise_key(*noise), get_mechanism(noise[0], scale=noise[1])
        results[key] = {
            "noise": noise[0],
            "scale": noise[1],
            "norm": float(mechanism.norm),
            "eps": eps_by_noise[key],
            "models": {},
        }
        for method in ("standard", "augmentation", "stability"):
            model = models[(method, None if method == "standard" else key)]
            results[key]["models"][method] = _smoothed_entry(
                model, mechanism, method, key, undefended, settings, train_data, test_data, attack_data, out, progress
            )
            if bar is not None:
                bar.update(1)
    return results


def _add_deterministic_results(
    results: dict[str, dict[str, Any]],
    models: dict[tuple[str, Any], Any],
    undefended: Any,
    settings: CompareSettings,
    data: tuple[Any, Any, Any],
    norms: list[float],
    progress: bool | None,
    bar: Any,
) -> None:
    """Add TRADES and the 1-Lipschitz network, certified once per norm, to every noise of that norm in ``results``."""
    _, test_data, attack_data = data
    for norm in norms:
        keys = [k for k in results if results[k]["norm"] == norm]
        eps = sorted({e for k in keys for e in results[k]["eps"]})
        for method in ("trades", "lipschitz"):
            entry = _deterministic_entry(
                models[(method, norm)], method, norm, eps, undefended, settings, test_data, attack_data, progress
            )
            for k in keys:
                results[k]["models"][method] = _restricted(entry, results[k]["eps"])
            if bar is not None:
                bar.update(1)


def _attack(
    classifier: Any,
    data: Any,
    eps: list[float],
    norm: float | None,
    undefended: Any,
    settings: CompareSettings,
    progress: bool | None,
) -> dict[str, Any]:
    """The empirical robustness of ``classifier`` under the comparison's attacks, as a plain dict."""
    result = empirical_robustness(
        classifier,
        data,
        eps,
        norm=norm,
        attacks=settings.attacks,
        undefended=undefended,
        vote_samples=settings.vote_samples,
        boundary_iterations=settings.boundary_iterations,
        long_steps=settings.long_steps,
        long_restarts=settings.long_restarts,
        long_soft_samples=settings.long_soft_samples,
        seed=settings.seed,
        progress=progress,
    )
    return {
        "eps": list(result.eps),
        "accuracy": result.accuracy,
        "clean_accuracy": result.clean_accuracy,
        "inputs": result.inputs,
    }


def _smoothed_entry(
    model: Any,
    mechanism: Any,
    method: str,
    key: str,
    undefended: Any,
    settings: CompareSettings,
    train_data: Any,
    test_data: Any,
    attack_data: Any,
    out: Path,
    progress: bool | None,
) -> dict[str, Any]:
    """Certify the test set with the smoothed ``model`` and attack its first inputs."""
    smoothed = Smoothed(
        model,
        mechanism,
        train_data.num_classes,
        input_shape=train_data.input_shape,
        batch_size=settings.batch_size,
        progress=progress,
    )
    path = out / "compare-records" / f"{key}-{method}.jsonl"
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
    eps = [round(m * mechanism.scale, 6) for m in settings.eps_multiples]
    empirical = _attack(smoothed, attack_data, eps, None, undefended, settings, progress)
    attacked = records[: len(attack_data)]
    return {
        "kind": "smoothed",
        "records": str(path.relative_to(out)),
        "clean_accuracy": float(certified_accuracy(records, [0.0])[0]),
        "certified": {
            b: certified_accuracy(attacked, eps, b).tolist()
            for b in ("renyi", "tight", "best")
            if records[0][f"radius_{b}"] is not None
        },
        "empirical": empirical,
        "_records": records,
    }


def _deterministic_entry(
    model: Any,
    method: str,
    norm: float,
    eps: list[float],
    undefended: Any,
    settings: CompareSettings,
    test_data: Any,
    attack_data: Any,
    progress: bool | None,
) -> dict[str, Any]:
    """Attack a deterministic model (and certify the 1-Lipschitz one) at ``eps``."""
    import torch

    with torch.no_grad():
        predictions = model(test_data.inputs(slice(None))).argmax(dim=1)
    entry: dict[str, Any] = {
        "kind": "deterministic",
        "clean_accuracy": float((predictions == test_data.y).float().mean()),
    }
    if method == "lipschitz":
        on_test = deterministic_certify(model, test_data)
        entry["certified"] = {
            "deterministic": on_test.first(len(attack_data)).certified_accuracy(eps).tolist()
        }  # the attacked images lead the test set
        entry["lipschitz_bound"] = on_test.lipschitz
        entry["_certificates"] = on_test
    entry["empirical"] = _attack(model, attack_data, eps, norm, undefended, settings, progress)
    return entry


def _public(value: Any) -> Any:
    """``value`` without the keys that start with ``_`` (records and certificate objects), at every depth."""
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    return value


def _restricted(entry: dict[str, Any], eps: list[float]) -> dict[str, Any]:
    """``entry`` (attacked at a norm's union of eps) at one noise's ``eps`` only."""
    index = [entry["empirical"]["eps"].index(e) for e in eps]
    restricted = dict(entry)
    restricted["empirical"] = dict(
        entry["empirical"],
        eps=list(eps),
        accuracy={a: [v[i] for i in index] for a, v in entry["empirical"]["accuracy"].items()},
    )
    if "certified" in entry:
        restricted["certified"] = {b: [v[i] for i in index] for b, v in entry["certified"].items()}
    return restricted
