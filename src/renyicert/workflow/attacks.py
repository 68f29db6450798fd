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

An adversarial example counts as a success when the smoothed classifier's
majority vote on it (fresh noise, ``n`` samples, no abstention) is not the
label.  Inputs the smoothed classifier already gets wrong count as broken.
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
from .data import LabelledData
from ..mechanism import Mechanism
from ..smoothing import Smoothed

__all__ = ["ATTACKS", "RobustnessResult", "SmoothedSoftClassifier", "SmoothedVoteClassifier", "empirical_robustness", "project_l1_ball", "sparse_l1_pgd"]

ATTACKS = ("pgd", "pgd-strong", "transfer", "boundary")


def _nn() -> Any:
    import torch

    return torch.nn


class SmoothedSoftClassifier(_nn().Module):  # type: ignore[misc]
    """``log E[softmax f(x + noise)]`` over ``samples`` draws: differentiable, for gradient attacks.

    Fresh noise at every call (from ``seed``'s generator), so a gradient attack
    sees the expectation over the noise, not one draw.
    """

    def __init__(self, model: Any, mechanism: Mechanism, samples: int = 32, seed: int = 0) -> None:
        import torch

        super().__init__()
        self.model, self.mechanism, self.samples = model, mechanism, int(samples)
        self._generator = torch.Generator().manual_seed(seed)

    def forward(self, x: Any) -> Any:
        import torch

        x = x.to(torch.float32)
        noise = self.mechanism.sample((x.shape[0], self.samples, *x.shape[1:]), generator=self._generator, dtype=x.dtype)
        logits = self.model((x[:, None] + noise.to(x.device)).reshape(-1, *x.shape[1:]))
        probabilities = torch.softmax(logits, dim=1).reshape(x.shape[0], self.samples, -1).mean(dim=1)
        return torch.log(probabilities.clamp_min(1e-12))


class SmoothedVoteClassifier(_nn().Module):  # type: ignore[misc]
    """Vote shares of the hard smoothed classifier over ``samples`` *fixed* noise draws (deterministic, for decision-based attacks)."""

    def __init__(self, model: Any, mechanism: Mechanism, input_shape: tuple[int, ...], samples: int = 64, seed: int = 0) -> None:
        super().__init__()
        self.model, self.samples = model, int(samples)
        self.register_buffer("noise", mechanism.sample((self.samples, *input_shape), seed=seed))

    def forward(self, x: Any) -> Any:
        import torch

        x = x.to(torch.float32)
        with torch.no_grad():
            logits = self.model((x[:, None] + self.noise[None]).reshape(-1, *x.shape[1:]))
            votes = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).reshape(x.shape[0], self.samples, -1)
        return votes.float().mean(dim=1)


def project_l1_ball(delta: Any, eps: float) -> Any:
    """Euclidean projection of each row of ``delta`` onto the l1 ball of radius ``eps`` (Duchi et al. 2008, sort-based).

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.attacks import project_l1_ball
    >>> project_l1_ball(torch.tensor([[3.0, 1.0, 0.0], [0.5, -0.25, 0.0]]), 2.0).tolist()
    [[2.0, 0.0, 0.0], [0.5, -0.25, 0.0]]
    """
    import torch

    flat = delta.reshape(delta.shape[0], -1)
    magnitude = flat.abs()
    inside = magnitude.sum(dim=1) <= eps
    ordered, _ = torch.sort(magnitude, dim=1, descending=True)
    cumulative = ordered.cumsum(dim=1) - eps
    ranks = torch.arange(1, flat.shape[1] + 1, device=flat.device, dtype=flat.dtype)
    count = (ordered * ranks > cumulative).sum(dim=1, keepdim=True).clamp_min(1)
    threshold = cumulative.gather(1, count - 1) / count
    projected = torch.sign(flat) * (magnitude - threshold).clamp_min(0.0)
    return torch.where(inside[:, None], flat, projected).reshape(delta.shape)


def sparse_l1_pgd(
    module: Any, x: Any, y: Any, eps: float, *, steps: int = 50, restarts: int = 2, step_fraction: float = 0.1, quantile: float = 0.97, seed: int = 0
) -> Any:
    """PGD in l1 with sparse steps (Tramèr & Boneh 2019's SLIDE): each step moves the coordinates whose gradient is
    in the top ``1 - quantile`` (and that the box [0, 1] lets move), then projects onto the l1 ball and the box.

    Maximises the cross-entropy of ``module`` (e.g. :class:`SmoothedSoftClassifier`); keeps, per input, the
    restart with the highest loss.  Returns adversarial inputs with ``||x_adv - x||_1 <= eps`` in ``[0, 1]``.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = x.detach().float()
    best, best_loss = x.clone(), torch.full((x.shape[0],), -math.inf)
    step = step_fraction * eps
    for restart in range(restarts + 1):
        if restart == 0:
            delta = torch.zeros_like(x)
        else:  # a random start inside the ball
            start = torch.empty_like(x).exponential_(generator=generator) * torch.where(torch.rand(x.shape, generator=generator) < 0.5, -1.0, 1.0)
            delta = project_l1_ball(start * (eps * torch.rand(x.shape[0], generator=generator) / start.abs().flatten(1).sum(1).clamp_min(1e-12)).view(-1, *[1] * (x.dim() - 1)), eps)
            delta = (x + delta).clamp(0.0, 1.0) - x
        for _ in range(steps):
            delta.requires_grad_(True)
            loss = torch.nn.functional.cross_entropy(module(x + delta), y, reduction="sum")
            (grad,) = torch.autograd.grad(loss, delta)
            with torch.no_grad():
                point = x + delta
                movable = ~(((point >= 1.0) & (grad > 0)) | ((point <= 0.0) & (grad < 0)))
                score = (grad.abs() * movable).flatten(1)
                cut = torch.quantile(score, quantile, dim=1, keepdim=True)
                direction = (torch.sign(grad).flatten(1) * ((score >= cut) & (score > 0))).float()
                direction = direction / direction.abs().sum(dim=1, keepdim=True).clamp_min(1.0)
                delta = project_l1_ball(delta + step * direction.view_as(delta), eps)
                delta = (x + delta).clamp(0.0, 1.0) - x
        with torch.no_grad():
            final = torch.nn.functional.cross_entropy(module(x + delta), y, reduction="none")
            better = final > best_loss
            best[better], best_loss[better] = (x + delta)[better], final[better]
    return best.detach()


def _art_classifier(module: Any, input_shape: tuple[int, ...], num_classes: int) -> Any:
    import torch

    from art.estimators.classification import PyTorchClassifier

    device = model_device(module)
    # ART moves the module to its own device: the current CUDA device for "gpu", so the attack runs where the model is.
    device_type = "gpu" if device is not None and device.type == "cuda" else "cpu"
    if device_type == "gpu" and device.index is not None:
        torch.cuda.set_device(device.index)
    return PyTorchClassifier(
        model=module, loss=torch.nn.CrossEntropyLoss(), input_shape=tuple(input_shape), nb_classes=num_classes, clip_values=(0.0, 1.0), device_type=device_type
    )


def _norm(delta: NDArray[np.float64], p: float) -> NDArray[np.float64]:
    """The l_p norm of each row of ``delta``."""
    flat = delta.reshape(delta.shape[0], -1)
    return np.asarray(np.linalg.norm(flat, ord=p, axis=1), dtype=np.float64)


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


def empirical_robustness(
    smoothed: Smoothed,
    data: LabelledData,
    eps: Sequence[float],
    *,
    attacks: Sequence[str] = ATTACKS,
    undefended: Any = None,
    vote_samples: int = 1000,
    soft_samples: int = 32,
    boundary_iterations: int = 200,
    seed: int = 0,
    progress: bool | None = None,
) -> RobustnessResult:
    """Empirical robust accuracy of ``smoothed`` on ``data`` under each attack at each ``eps`` (mechanism's norm).

    Parameters
    ----------
    undefended
        The undefended model the ``transfer`` attack is crafted on (required for it).
    vote_samples
        Noise draws of the majority vote that judges each adversarial example.
    soft_samples
        Noise draws per forward pass of the soft classifier the PGD attacks differentiate.
    """
    import torch

    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack {unknown[0]!r}; expected some of {ATTACKS}")
    if "transfer" in attacks and undefended is None:
        raise ValueError("the 'transfer' attack needs the undefended model (undefended=...)")
    eps = [float(e) for e in eps]
    if any(not (math.isfinite(e) and e >= 0) for e in eps):
        raise ValueError(f"eps must be finite and >= 0, got {eps}")
    norm = float(smoothed.mechanism.norm)
    if norm not in (1.0, 2.0):
        raise ValueError(f"the attacks support the l1 and l2 norms, not l{norm:g} ({smoothed.mechanism.label})")
    x = data.inputs(slice(None)).detach().cpu().float()
    y = data.y.detach().cpu().numpy()
    classes = data.num_classes

    def vote(batch: NDArray[np.float32], salt: int) -> NDArray[np.int64]:
        """The smoothed classifier's majority vote on ``batch`` (seeded by ``salt``)."""
        counts = smoothed.class_counts(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)), vote_samples, seed=seed * 1_000_003 + salt)
        return np.asarray(counts.reshape(len(batch), classes).argmax(axis=1))

    clean_correct = vote(x.numpy(), 0) == y
    result = RobustnessResult(eps=eps, clean_accuracy=float(clean_correct.mean()), inputs=len(y))
    broken_any = np.zeros((len(eps), len(y)), dtype=bool)
    steps = sum(len(eps) if a != "boundary" else 1 for a in attacks)
    with progress_bar(steps, "attacks", "run", progress) as bar:
        for attack_name in attacks:
            if attack_name == "boundary":
                broken = _boundary_broken(smoothed, data, x, y, eps, vote, boundary_iterations, seed)
                if bar is not None:
                    bar.update(1)
            else:
                broken = _gradient_broken(attack_name, smoothed, data, x, y, eps, vote, undefended, soft_samples, seed, bar)
            broken |= ~clean_correct[None, :]
            broken_any |= broken
            result.accuracy[attack_name] = [float(1.0 - b.mean()) for b in broken]
    result.accuracy["all"] = [float(1.0 - b.mean()) for b in broken_any]
    return result


def _boundary_broken(smoothed: Smoothed, data: LabelledData, x: Any, y: Any, eps: list[float], vote: Any, iterations: int, seed: int) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where ART's boundary attack on the vote classifier fooled the smoothed vote within ``eps``."""
    from art.attacks.evasion import BoundaryAttack

    x_np = x.numpy()
    vote_module = SmoothedVoteClassifier(smoothed.model, smoothed.mechanism, data.input_shape, samples=64, seed=seed + 1).eval()
    classifier = _art_classifier(vote_module, data.input_shape, data.num_classes)
    attack = BoundaryAttack(classifier, targeted=False, max_iter=iterations, num_trial=10, sample_size=10, init_size=50, verbose=False)
    np.random.seed(seed)  # ART draws the boundary attack's random starts from numpy's global generator
    adversarial = attack.generate(x_np, y=y)
    distance = _norm((adversarial - x_np).astype(np.float64), float(smoothed.mechanism.norm))
    fooled = vote(adversarial, 7) != y
    return np.stack([fooled & (distance <= e * (1 + 1e-6)) for e in eps])


def _gradient_broken(
    attack_name: str, smoothed: Smoothed, data: LabelledData, x: Any, y: Any, eps: list[float], vote: Any, undefended: Any, soft_samples: int, seed: int, bar: Any
) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where a gradient attack (PGD on the soft classifier, sparse l1 PGD, or transfer) fooled the smoothed vote."""
    import torch
    from art.attacks.evasion import ProjectedGradientDescent

    mechanism, shape, classes = smoothed.mechanism, data.input_shape, data.num_classes
    norm = float(mechanism.norm)
    art_norm = 1 if norm == 1.0 else 2
    x_np = x.numpy()
    if attack_name == "transfer":
        target = _art_classifier(undefended.eval(), shape, classes)
        settings = {"max_iter": 40, "step": 0.1, "restarts": 0}
    else:
        target = _art_classifier(SmoothedSoftClassifier(smoothed.model, mechanism, samples=soft_samples, seed=seed + 2), shape, classes)
        settings = {"max_iter": 20, "step": 0.1, "restarts": 0} if attack_name == "pgd" else {"max_iter": 50, "step": 0.05, "restarts": 2}
    broken = np.zeros((len(eps), len(y)), dtype=bool)
    for i, e in enumerate(eps):
        if e > 0 and attack_name == "pgd-strong" and art_norm == 1:
            soft = SmoothedSoftClassifier(smoothed.model, mechanism, samples=soft_samples, seed=seed + 3)
            device = model_device(smoothed.model) or torch.device("cpu")
            adversarial = sparse_l1_pgd(soft, x.to(device), torch.from_numpy(y).to(device), e, steps=50, restarts=2, seed=seed).cpu().numpy()
        elif e > 0:
            attack = ProjectedGradientDescent(
                target, norm=art_norm, eps=e, eps_step=settings["step"] * e, max_iter=settings["max_iter"],
                num_random_init=settings["restarts"], batch_size=128, verbose=False,
            )  # fmt: skip
            adversarial = attack.generate(x_np, y=y).astype(np.float32)
        if e > 0:
            over = _norm((adversarial - x_np).astype(np.float64), norm) > e * (1 + 1e-5)
            if over.any():  # never count a step outside the ball
                raise RuntimeError(f"{attack_name} left the eps = {e} ball on {int(over.sum())} inputs")
            broken[i] = vote(adversarial, 100 + i) != y
        if bar is not None:
            bar.update(1)
    return broken
