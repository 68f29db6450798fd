"""Empirical robustness of a smoothed classifier under real attacks (adversarial-robustness-toolbox).

Certified accuracy is a lower bound on accuracy under *any* attack within the
radius; attacks give an upper bound.  If certified accuracy at radius ``r`` ever
exceeds empirical robust accuracy at ``eps = r``, something is broken.

Attacks, all from IBM's adversarial-robustness-toolbox (ART: maintained, and it
installs without torchvision, unlike torchattacks), run on the smoothed model
wrapped as a ``torch.nn.Module``:

``pgd``
    PGD in the mechanism's norm (l2 for the Gaussian, l1 for Laplace) against the
    *soft* smoothed classifier ``log E[softmax f(x + noise)]``, estimated with
    fresh noise at every step (Salman et al. 2019's SmoothAdv objective): 20
    steps of ``eps / 10``.
``pgd-strong``
    The same with 50 steps of ``eps / 20`` and 2 random restarts (three runs,
    the best kept per input).  In l1 it is :func:`sparse_l1_pgd` instead: ART's
    l1 steps are dense (the gradient over its l1 norm), which is weak in l1,
    where the steepest direction is sparse.
``transfer``
    PGD (40 steps) crafted on an undefended model, replayed on the smoothed one.
``boundary``
    The decision-based boundary attack (Brendel et al. 2018) on the *hard*
    smoothed classifier with its noise draws fixed (so that it is
    deterministic); an input counts as broken at ``eps`` when the attack's
    example is within ``eps`` in the mechanism's norm.
``pgd-long``
    The attack Li et al. promise against gradient masking: PGD with 20 random
    starts and 1,000 steps (both settable) of ``2.5 eps / steps`` (Madry et
    al.'s rule), on the soft smoothed classifier with fresh noise at every
    step (sparse steps in l1), all starts and eps run as one batch
    (:func:`pgd_with_restarts`).  Not run by default: it costs about
    ``20 * 1000`` gradient passes per input and eps.

An adversarial example counts as a success when the smoothed classifier's
majority vote on it (fresh noise, ``n`` samples, no abstention) is not the
label.  Inputs the smoothed classifier already gets wrong count as broken.

The same attacks run against a deterministic ``torch.nn.Module`` (TRADES, a
1-Lipschitz network): the gradient attacks differentiate the model itself, the
boundary attack queries it, and an example succeeds when the model's argmax is
not the label.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._progress import progress_bar
from .._torch import model_device
from .._validation import check_positive_int
from ..smoothing import Smoothed
from .art_adapters import Float32Module, art_classifier, numpy_seeded
from .data import LabelledData
from .pgd import SmoothedSoftClassifier, SmoothedVoteClassifier, norms, pgd_with_restarts, sparse_l1_pgd

__all__ = ["ATTACKS", "DEFAULT_ATTACKS", "RobustnessResult", "empirical_robustness", "onto_grid"]

ATTACKS = ("pgd", "pgd-strong", "transfer", "boundary", "pgd-long")
#: What :func:`empirical_robustness` and ``renyicert attack`` run unless told: all but the costly ``pgd-long``.
DEFAULT_ATTACKS = ("pgd", "pgd-strong", "transfer", "boundary")


@dataclass
class RobustnessResult:
    """Empirical robust accuracy per attack and eps (``accuracy[attack][i]`` at ``eps[i]``), and over all attacks together."""

    eps: list[float]
    accuracy: dict[str, list[float]] = field(default_factory=dict)
    clean_accuracy: float = 0.0
    inputs: int = 0

    @property
    def worst(self) -> list[float]:
        """Accuracy when an input counts as broken if *any* attack broke it."""
        return self.accuracy.get("all", [])


@dataclass(frozen=True)
class _Target:
    """What the attacks need of a classifier: what gradients go through, what decisions are queried, and the verdict."""

    name: str
    norm: float
    soft: Any  # differentiated by pgd, pgd-strong and pgd-long
    hard: Any  # queried by the boundary attack
    vote: Any  # (batch, salt) -> predicted classes
    grid: int | None = None  # lattice mode: adversarial examples are judged at grid points inside the ball


def onto_grid(x: NDArray[np.float32], adversarial: NDArray[np.float32], grid: int) -> NDArray[np.float32]:
    """``adversarial`` moved to a grid point ``k / grid`` inside every l_p ball around ``x`` that it is in: each coordinate's perturbation rounded toward 0.

    ``x`` must be on the grid; the perturbation of each coordinate only shrinks, so
    the norm does too. What a lattice-mode classifier is attacked with: its
    certificates cover the perturbations that keep the input on the grid.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.workflow.attacks import onto_grid
    >>> onto_grid(np.array([0.5], np.float32), np.array([0.53], np.float32), 16).tolist()
    [0.5]
    """
    k = np.rint(np.asarray(x, dtype=np.float64) * grid)
    steps = np.trunc(np.asarray(adversarial, dtype=np.float64) * grid - k)
    return ((k + steps) / grid).astype(np.float32)


def _target(
    classifier: Any, data: LabelledData, norm: float | None, vote_samples: int, soft_samples: int, seed: int
) -> _Target:
    """Attack ``classifier``: a :class:`Smoothed` (its soft and vote classifiers, judged by its majority vote) or a plain module."""
    import torch

    if isinstance(classifier, Smoothed):
        mechanism = classifier.mechanism
        if norm is not None and float(norm) != float(mechanism.norm):
            raise ValueError(
                f"norm {norm!r} contradicts the mechanism's norm {mechanism.norm} ({mechanism.label}); leave it out for a Smoothed classifier"
            )
        classes = data.num_classes

        def vote(batch: NDArray[np.float32], salt: int) -> NDArray[np.int64]:
            """The smoothed classifier's majority vote on ``batch`` (seeded by ``salt``)."""
            counts = classifier.class_counts(
                torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)),
                vote_samples,
                seed=seed * 1_000_003 + salt,
            )
            return np.asarray(counts.reshape(len(batch), classes).argmax(axis=1))

        return _Target(
            name=mechanism.label,
            norm=float(mechanism.norm),
            soft=SmoothedSoftClassifier(classifier.scorer, mechanism, samples=soft_samples, seed=seed + 2),
            hard=SmoothedVoteClassifier(
                classifier.scorer, mechanism, data.input_shape, samples=64, seed=seed + 1
            ).eval(),
            vote=vote,
            grid=classifier.grid,
        )
    if not isinstance(classifier, torch.nn.Module):
        raise TypeError(
            f"the classifier to attack must be a Smoothed classifier or a torch.nn.Module, got {type(classifier).__name__}"
        )
    if norm is None:
        raise ValueError("give norm= (1 or 2) to attack a deterministic model: it has no mechanism to read it from")
    model = classifier.eval()
    device = model_device(model) or torch.device("cpu")

    def predict(batch: NDArray[np.float32], salt: int) -> NDArray[np.int64]:
        """The model's own prediction on ``batch`` (no noise; ``salt`` unused)."""
        with torch.no_grad():
            logits = torch.cat(
                [
                    model(torch.from_numpy(np.ascontiguousarray(batch[i : i + 4096], dtype=np.float32)).to(device))
                    for i in range(0, len(batch), 4096)
                ]
            )
        return np.asarray(logits.argmax(dim=1).cpu().numpy())

    as_float32 = Float32Module(model)
    return _Target(name=type(model).__name__, norm=float(norm), soft=as_float32, hard=as_float32, vote=predict)


def empirical_robustness(
    classifier: Smoothed | Any,
    data: LabelledData,
    eps: Sequence[float],
    *,
    norm: float | None = None,
    attacks: Sequence[str] = DEFAULT_ATTACKS,
    undefended: Any = None,
    vote_samples: int = 1000,
    soft_samples: int = 32,
    boundary_iterations: int = 200,
    long_steps: int = 1000,
    long_restarts: int = 20,
    long_soft_samples: int = 1,
    seed: int = 0,
    progress: bool | None = None,
) -> RobustnessResult:
    """Empirical robust accuracy of ``classifier`` on ``data`` under each attack at each ``eps``.

    Parameters
    ----------
    classifier
        A :class:`~renyicert.Smoothed` classifier (attacked in its mechanism's norm), or a
        deterministic ``torch.nn.Module`` (give ``norm``).
    norm
        1 or 2: the norm of ``eps`` for a deterministic model; for a smoothed one it must be
        left out or equal the mechanism's.
    undefended
        The undefended model the ``transfer`` attack is crafted on (required for it).
    vote_samples
        Noise draws of the majority vote that judges each adversarial example.
    soft_samples
        Noise draws per forward pass of the soft classifier the PGD attacks differentiate.
    long_steps, long_restarts, long_soft_samples
        ``pgd-long``'s steps, random starts, and noise draws per step.
    """
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack {unknown[0]!r}; expected some of {ATTACKS}")
    if "transfer" in attacks and undefended is None:
        raise ValueError("the 'transfer' attack needs the undefended model (undefended=...)")
    eps = [float(e) for e in eps]
    if any(not (math.isfinite(e) and e >= 0) for e in eps):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    if norm is not None and norm not in (1, 2):
        raise ValueError(f"norm must be 1 or 2, got {norm!r}")
    if isinstance(classifier, Smoothed) and float(classifier.mechanism.norm) not in (1.0, 2.0):
        raise ValueError(
            f"the attacks support the l1 and l2 norms, not l{float(classifier.mechanism.norm):g} ({classifier.mechanism.label})"
        )
    long_settings = (
        check_positive_int(long_steps, "long_steps"),
        check_positive_int(long_restarts, "long_restarts"),
        check_positive_int(long_soft_samples, "long_soft_samples"),
    )
    target = _target(classifier, data, norm, vote_samples, soft_samples, seed)
    x = data.inputs(slice(None)).detach().cpu().float()
    y = data.y.detach().cpu().numpy()
    clean_correct = target.vote(x.numpy(), 0) == y
    result = RobustnessResult(eps=eps, clean_accuracy=float(clean_correct.mean()), inputs=len(y))
    broken_any = np.zeros((len(eps), len(y)), dtype=bool)
    steps = sum(len(eps) if a != "boundary" else 1 for a in attacks)
    with progress_bar(steps, "attacks", "run", progress) as bar:
        for attack_name in attacks:
            if attack_name == "boundary":
                broken = _boundary_broken(target, data, x, y, eps, boundary_iterations, seed)
                if bar is not None:
                    bar.update(1)
            elif attack_name == "pgd-long":
                broken = _long_pgd_broken(classifier, target, x, y, eps, long_settings, seed, bar)
            else:
                broken = _gradient_broken(attack_name, target, data, x, y, eps, undefended, seed, bar)
            broken |= ~clean_correct[None, :]
            broken_any |= broken
            result.accuracy[attack_name] = [float(1.0 - b.mean()) for b in broken]
    result.accuracy["all"] = [float(1.0 - b.mean()) for b in broken_any]
    return result


def _checked_broken(
    attack_name: str,
    target: _Target,
    x_np: NDArray[np.float32],
    adversarial: NDArray[np.float32],
    y: Any,
    e: float,
    salt: int,
) -> NDArray[np.bool_]:
    """Where ``adversarial`` (within ``e`` of ``x``, or an error) fooled the target's verdict."""
    over = norms((adversarial - x_np).astype(np.float64), target.norm) > e * (1 + 1e-5)
    if over.any():  # never count a step outside the ball
        raise RuntimeError(f"{attack_name} left the eps = {e} ball on {int(over.sum())} inputs")
    if target.grid is not None:
        adversarial = onto_grid(x_np, adversarial, target.grid)
    return np.asarray(target.vote(adversarial, salt) != y)


def _boundary_broken(
    target: _Target, data: LabelledData, x: Any, y: Any, eps: list[float], iterations: int, seed: int
) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where ART's boundary attack on the hard classifier fooled the verdict within ``eps``."""
    from art.attacks.evasion import BoundaryAttack

    x_np = x.numpy()
    classifier = art_classifier(target.hard, data.input_shape, data.num_classes)
    attack = BoundaryAttack(
        classifier, targeted=False, max_iter=iterations, num_trial=10, sample_size=10, init_size=50, verbose=False
    )
    with numpy_seeded(seed):  # ART draws the boundary attack's random starts from numpy's global generator
        adversarial = attack.generate(x_np, y=y)
    if target.grid is not None:  # judged at the grid point inside its ball (lattice mode)
        adversarial = onto_grid(x_np, adversarial, target.grid)
    distance = norms((adversarial - x_np).astype(np.float64), target.norm)
    fooled = target.vote(adversarial, 7) != y
    return np.stack([fooled & (distance <= e * (1 + 1e-6)) for e in eps])


def _long_pgd_broken(
    classifier: Any,
    target: _Target,
    x: Any,
    y: Any,
    eps: list[float],
    settings: tuple[int, int, int],
    seed: int,
    bar: Any,
) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where :func:`pgd_with_restarts` (every positive eps in one batch) fooled the verdict."""
    import torch

    steps, restarts, soft_samples = settings
    module = target.soft
    if isinstance(classifier, Smoothed):
        module = SmoothedSoftClassifier(classifier.scorer, classifier.mechanism, samples=soft_samples, seed=seed + 5)
    device = model_device(classifier.model if isinstance(classifier, Smoothed) else classifier) or torch.device("cpu")
    positive = [i for i, e in enumerate(eps) if e > 0]
    broken = np.zeros((len(eps), len(y)), dtype=bool)
    if positive:
        adversarial = pgd_with_restarts(
            module,
            x.to(device),
            torch.from_numpy(y).to(device),
            [eps[i] for i in positive],
            target.norm,
            steps=steps,
            restarts=restarts,
            seed=seed,
        )
        x_np = x.numpy()
        for row, i in enumerate(positive):
            broken[i] = _checked_broken(
                "pgd-long", target, x_np, adversarial[row].cpu().numpy().astype(np.float32), y, eps[i], 300 + i
            )
    if bar is not None:
        bar.update(len(eps))
    return broken


def _gradient_broken(
    attack_name: str,
    target: _Target,
    data: LabelledData,
    x: Any,
    y: Any,
    eps: list[float],
    undefended: Any,
    seed: int,
    bar: Any,
) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where a gradient attack (PGD on the soft classifier, sparse l1 PGD, or transfer) fooled the verdict."""
    import torch
    from art.attacks.evasion import ProjectedGradientDescent

    shape, classes = data.input_shape, data.num_classes
    art_norm = 1 if target.norm == 1.0 else 2
    x_np = x.numpy()
    if attack_name == "transfer":
        art_target = art_classifier(undefended.eval(), shape, classes)
        settings = {"max_iter": 40, "step": 0.1, "restarts": 0}
    else:
        art_target = art_classifier(target.soft, shape, classes)
        settings = (
            {"max_iter": 20, "step": 0.1, "restarts": 0}
            if attack_name == "pgd"
            else {"max_iter": 50, "step": 0.05, "restarts": 2}
        )
    broken = np.zeros((len(eps), len(y)), dtype=bool)
    for i, e in enumerate(eps):
        if e > 0 and attack_name == "pgd-strong" and art_norm == 1:
            device = model_device(target.soft) or torch.device("cpu")
            adversarial = (
                sparse_l1_pgd(
                    target.soft, x.to(device), torch.from_numpy(y).to(device), e, steps=50, restarts=2, seed=seed
                )
                .cpu()
                .numpy()
            )
        elif e > 0:
            attack = ProjectedGradientDescent(
                art_target,
                norm=art_norm,
                eps=e,
                eps_step=settings["step"] * e,
                max_iter=settings["max_iter"],
                num_random_init=settings["restarts"],
                batch_size=128,
                verbose=False,
            )
            with numpy_seeded(
                seed * 1_000_003 + 17 * i + ATTACKS.index(attack_name)
            ):  # ART's random starts: the same whatever ran before
                adversarial = attack.generate(x_np, y=y).astype(np.float32)
        if e > 0:
            broken[i] = _checked_broken(attack_name, target, x_np, adversarial, y, e, 100 + i)
        if bar is not None:
            bar.update(1)
    return broken
