"""The models of :func:`~renyicert.workflow.jobs.compare.run_comparison`, trained from the same initial weights, and their timings.

Per noise, noise augmentation and stability training (stability ``timing_runs``
times, for its timing); per norm, TRADES (``timing_runs`` times); one
1-Lipschitz network for every norm; and the undefended model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...registry import get_mechanism
from ..lipschitz import lipschitz_mlp, train_lipschitz
from ..models import build_model
from ..plots import norm_name
from ..trades import train_trades
from ..training import train
from .demo import noise_key

if TYPE_CHECKING:
    from .compare import CompareSettings

__all__ = ["train_all"]


def train_all(
    settings: CompareSettings, train_data: Any, norms: list[float], progress: bool | None, bar: Any
) -> tuple[dict[tuple[str, Any], Any], dict[str, Any]]:
    """Every model, keyed ``(method, noise key)`` for the smoothed ones and ``(method, norm)`` for TRADES and 1-Lipschitz; and the timings."""
    import torch

    models: dict[tuple[str, Any], Any] = {("standard", None): _fresh_model(settings, train_data)}
    times: dict[str, Any] = {"stability": {}, "trades": {}, "augmentation": {}, "standard": None, "lipschitz": None}
    times["standard"] = train(
        models[("standard", None)],
        train_data,
        method="standard",
        epochs=settings.epochs,
        seed=settings.seed,
        progress=progress,
    ).seconds
    _train_noise_models(settings, train_data, progress, models, times)
    if bar is not None:
        bar.update(1)
    _train_trades_models(settings, train_data, norms, progress, models, times)
    torch.manual_seed(settings.seed)
    lipschitz, seconds = train_lipschitz(
        lipschitz_mlp(train_data.input_shape, train_data.num_classes),
        train_data,
        epochs=settings.epochs,
        tau=settings.lipschitz_tau,
        seed=settings.seed,
        progress=progress,
    )
    times["lipschitz"] = seconds
    for norm in norms:  # one network: its l2 radius is also an l1 radius
        models[("lipschitz", norm)] = lipschitz
    if bar is not None:
        bar.update(1)
    return models, times


def _fresh_model(settings: CompareSettings, train_data: Any) -> Any:
    """A new ``settings.model``, initialised from ``settings.seed`` (every method starts from the same weights)."""
    import torch

    torch.manual_seed(settings.seed)
    return build_model(settings.model, train_data.input_shape, train_data.num_classes)


def _timed_runs(settings: CompareSettings, train_data: Any, count: int, train_one: Any) -> tuple[Any, list[float]]:
    """``count`` trainings from fresh weights (``train_one(model)`` returns its seconds): the first model, every run's seconds."""
    kept, seconds = None, []
    for run in range(count):
        model = _fresh_model(settings, train_data)
        seconds.append(train_one(model))
        if run == 0:
            kept = model
    return kept, seconds


def _train_noise_models(
    settings: CompareSettings,
    train_data: Any,
    progress: bool | None,
    models: dict[tuple[str, Any], Any],
    times: dict[str, Any],
) -> None:
    """Noise augmentation and stability training per noise (stability ``settings.timing_runs`` times, for its timing)."""
    for name, scale in settings.noises:
        key, mechanism = noise_key(name, scale), get_mechanism(name, scale=scale)
        for method in ("augmentation", "stability"):

            def train_one(model: Any, mechanism: Any = mechanism, method: str = method) -> float:
                return train(
                    model,
                    train_data,
                    mechanism,
                    method=method,
                    epochs=settings.epochs,
                    seed=settings.seed,
                    progress=progress,
                ).seconds

            count = settings.timing_runs if method == "stability" else 1
            models[(method, key)], times[method][key] = _timed_runs(settings, train_data, count, train_one)


def _train_trades_models(
    settings: CompareSettings,
    train_data: Any,
    norms: list[float],
    progress: bool | None,
    models: dict[tuple[str, Any], Any],
    times: dict[str, Any],
) -> None:
    """TRADES per norm, ``settings.timing_runs`` times for its timing (the first run's model is kept)."""
    for norm in norms:

        def train_one(model: Any, norm: float = norm) -> float:
            return train_trades(
                model,
                train_data,
                norm=norm,
                eps=settings.trades_eps,
                epochs=settings.epochs,
                beta=settings.trades_beta,
                attack_steps=settings.trades_attack_steps,
                seed=settings.seed,
                progress=progress,
            ).seconds

        models[("trades", norm)], times["trades"][norm_name(norm)] = _timed_runs(
            settings, train_data, settings.timing_runs, train_one
        )
