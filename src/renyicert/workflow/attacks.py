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

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._progress import progress_bar
from .._torch import model_device, torch_nn
from .._validation import check_positive_int
from .data import LabelledData
from ..mechanism import Mechanism
from ..smoothing import Smoothed

__all__ = [
    "ATTACKS", "DEFAULT_ATTACKS", "RobustnessResult", "numpy_seeded", "SmoothedSoftClassifier", "SmoothedVoteClassifier", "empirical_robustness", "pgd_with_restarts",
    "onto_grid", "project_l1_ball", "sparse_l1_pgd",
]  # fmt: skip

ATTACKS = ("pgd", "pgd-strong", "transfer", "boundary", "pgd-long")
#: What :func:`empirical_robustness` and ``renyicert attack`` run unless told: all but the costly ``pgd-long``.
DEFAULT_ATTACKS = ("pgd", "pgd-strong", "transfer", "boundary")


@contextlib.contextmanager
def numpy_seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global generator for the block, and put its state back after.

    ART draws random starts (PGD, the boundary attack) and TRADES's shuffling from
    numpy's global generator; seeding it per attack makes each attack's result
    independent of what ran before it, and restoring it leaves the caller's
    generator as it was.

    Examples
    --------
    >>> import numpy as np
    >>> from renyicert.workflow.attacks import numpy_seeded
    >>> before = np.random.get_state()[1][:3].tolist()
    >>> with numpy_seeded(0):
    ...     first = np.random.rand()
    >>> with numpy_seeded(0):
    ...     again = np.random.rand()
    >>> first == again, np.random.get_state()[1][:3].tolist() == before
    (True, True)
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)



class SmoothedSoftClassifier(torch_nn().Module):  # type: ignore[misc]
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


class SmoothedVoteClassifier(torch_nn().Module):  # type: ignore[misc]
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


def project_l1_ball(delta: Any, eps: Any) -> Any:
    """Euclidean projection of each row of ``delta`` onto the l1 ball of radius ``eps`` (Duchi et al. 2008, sort-based).

    ``eps`` is one radius, or one per row.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.attacks import project_l1_ball
    >>> project_l1_ball(torch.tensor([[3.0, 1.0, 0.0], [0.5, -0.25, 0.0]]), 2.0).tolist()
    [[2.0, 0.0, 0.0], [0.5, -0.25, 0.0]]
    """
    import torch

    flat = delta.reshape(delta.shape[0], -1)
    eps = torch.as_tensor(eps, dtype=flat.dtype, device=flat.device).reshape(-1, 1)
    magnitude = flat.abs()
    inside = magnitude.sum(dim=1) <= eps[:, 0]
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
                delta = _sparse_l1_step(x, delta, grad, step, eps, quantile)
        with torch.no_grad():
            final = torch.nn.functional.cross_entropy(module(x + delta), y, reduction="none")
            better = final > best_loss
            best[better], best_loss[better] = (x + delta)[better], final[better]
    return best.detach()


def _sparse_l1_step(x: Any, delta: Any, grad: Any, step: Any, eps: Any, quantile: float) -> Any:
    """One sparse l1 step: move the top ``1 - quantile`` of the coordinates the box lets move, project onto the ball and the box."""
    import torch

    point = x + delta
    movable = ~(((point >= 1.0) & (grad > 0)) | ((point <= 0.0) & (grad < 0)))
    score = (grad.abs() * movable).flatten(1)
    cut = torch.quantile(score, quantile, dim=1, keepdim=True)
    direction = (torch.sign(grad).flatten(1) * ((score >= cut) & (score > 0))).float()
    direction = direction / direction.abs().sum(dim=1, keepdim=True).clamp_min(1.0)
    step = torch.as_tensor(step, dtype=direction.dtype, device=direction.device).reshape(-1, 1)
    delta = project_l1_ball(delta + (step * direction).view_as(delta), eps)
    return (x + delta).clamp(0.0, 1.0) - x


def _random_start(x: Any, eps: Any, norm: float, generator: Any) -> Any:
    """A random point of the l``norm`` ball of radius ``eps`` (one per row) around ``x``, clipped to [0, 1]: uniform in l2."""
    import torch

    shape = (-1, *[1] * (x.dim() - 1))
    if norm == 2.0:
        direction = torch.randn(x.shape, generator=generator)
        direction = direction / direction.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
        radius = eps * torch.rand(x.shape[0], generator=generator) ** (1.0 / x[0].numel())
        delta = direction * radius.view(shape)
    else:
        start = torch.empty(x.shape).exponential_(generator=generator) * torch.where(torch.rand(x.shape, generator=generator) < 0.5, -1.0, 1.0)
        delta = project_l1_ball(start * (eps * torch.rand(x.shape[0], generator=generator) / start.flatten(1).abs().sum(1).clamp_min(1e-12)).view(shape), eps)
    return (x + delta.to(x.device)).clamp(0.0, 1.0) - x


def pgd_with_restarts(
    module: Any, x: Any, y: Any, eps: Sequence[float], norm: float, *, steps: int = 1000, restarts: int = 20, quantile: float = 0.97, seed: int = 0,
    batch_size: int = 8192, progress: bool | None = False,
) -> Any:  # fmt: skip
    """PGD in l2 or l1 from ``restarts`` random starts per input and eps, run as one batch; the strongest run of each.

    Each run takes ``steps`` steps of ``2.5 eps / steps`` (Madry et al. 2018's rule): the
    normalised gradient in l2, sparse steps in l1 (as :func:`sparse_l1_pgd`), each followed by
    the projection onto the ball and onto [0, 1].  It maximises the cross-entropy of ``module``;
    per ``(eps, input)`` the run with the highest final loss is kept.  Runs are split into
    batches of at most ``batch_size`` inputs.

    Returns
    -------
    torch.Tensor
        ``(len(eps), N, *x.shape[1:])``: adversarial inputs within ``eps`` of ``x``, in [0, 1].

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.attacks import pgd_with_restarts
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    >>> x, y = torch.full((3, 1, 2, 2), 0.5), torch.tensor([0, 1, 0])
    >>> adversarial = pgd_with_restarts(model, x, y, [0.1, 0.3], 2.0, steps=5, restarts=2)
    >>> adversarial.shape, bool(((adversarial - x).flatten(2).norm(dim=2) <= torch.tensor([[0.1], [0.3]]) + 1e-6).all())
    (torch.Size([2, 3, 1, 2, 2]), True)
    """
    import torch

    if norm not in (1.0, 2.0):
        raise ValueError(f"pgd_with_restarts supports the l1 and l2 norms, got l{norm:g}")
    steps, restarts = check_positive_int(steps, "steps"), check_positive_int(restarts, "restarts")
    batch_size = check_positive_int(batch_size, "batch_size")
    eps_values = [float(e) for e in eps]
    if any(not (math.isfinite(e) and e > 0) for e in eps_values):
        raise ValueError(f"eps must be finite and > 0, got {eps_values}")
    x, y = x.detach().float(), y.detach()
    runs, inputs = len(eps_values) * restarts, x.shape[0]
    # Run r of eps e on input i is row (e * restarts + r) * inputs + i.
    all_x = x.repeat(runs, *[1] * (x.dim() - 1))
    all_y = y.repeat(runs)
    all_eps = torch.tensor(eps_values, dtype=torch.float32).repeat_interleave(restarts * inputs)
    generator = torch.Generator().manual_seed(seed)
    adversarial = torch.empty_like(all_x)
    losses = torch.empty(all_x.shape[0])
    with progress_bar(steps * math.ceil(all_x.shape[0] / batch_size), "pgd with restarts", "step", progress) as bar:
        for begin in range(0, all_x.shape[0], batch_size):
            rows = slice(begin, begin + batch_size)
            adversarial[rows], losses[rows] = _pgd_rows(module, all_x[rows], all_y[rows], all_eps[rows], norm, steps, quantile, generator, bar)
    shape = (len(eps_values), restarts, inputs)
    best = losses.reshape(shape).argmax(dim=1)  # (eps, inputs)
    chosen = adversarial.reshape(*shape, *x.shape[1:])
    return chosen[torch.arange(len(eps_values))[:, None], best, torch.arange(inputs)[None, :]]


def _pgd_rows(module: Any, x: Any, y: Any, eps: Any, norm: float, steps: int, quantile: float, generator: Any, bar: Any) -> tuple[Any, Any]:
    """PGD on a batch of rows, each with its own eps: the final points and their losses."""
    import torch

    shape = (-1, *[1] * (x.dim() - 1))
    delta = _random_start(x, eps, norm, generator)
    eps = eps.to(x.device)
    step = 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(module(x + delta), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            if norm == 2.0:
                delta = delta + step.view(shape) * grad / grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(shape)
                delta = delta * (eps / delta.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0).view(shape)
                delta = (x + delta).clamp(0.0, 1.0) - x
            else:
                delta = _sparse_l1_step(x, delta, grad, step, eps, quantile)
        if bar is not None:
            bar.update(1)
    with torch.no_grad():
        final = torch.nn.functional.cross_entropy(module(x + delta), y, reduction="none")
    return (x + delta).detach(), final.detach().cpu()


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


class _Float32(torch_nn().Module):  # type: ignore[misc]
    """``model`` on float32 inputs whatever their dtype (ART's boundary attack hands float64 arrays)."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Any) -> Any:
        import torch

        return self.model(x.to(torch.float32))


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


def _target(classifier: Any, data: LabelledData, norm: float | None, vote_samples: int, soft_samples: int, seed: int) -> _Target:
    """Attack ``classifier``: a :class:`Smoothed` (its soft and vote classifiers, judged by its majority vote) or a plain module."""
    import torch

    if isinstance(classifier, Smoothed):
        mechanism = classifier.mechanism
        if norm is not None and float(norm) != float(mechanism.norm):
            raise ValueError(f"norm {norm!r} contradicts the mechanism's norm {mechanism.norm} ({mechanism.label}); leave it out for a Smoothed classifier")
        classes = data.num_classes

        def vote(batch: NDArray[np.float32], salt: int) -> NDArray[np.int64]:
            """The smoothed classifier's majority vote on ``batch`` (seeded by ``salt``)."""
            counts = classifier.class_counts(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)), vote_samples, seed=seed * 1_000_003 + salt)
            return np.asarray(counts.reshape(len(batch), classes).argmax(axis=1))

        return _Target(
            name=mechanism.label, norm=float(mechanism.norm), soft=SmoothedSoftClassifier(classifier.scorer, mechanism, samples=soft_samples, seed=seed + 2),
            hard=SmoothedVoteClassifier(classifier.scorer, mechanism, data.input_shape, samples=64, seed=seed + 1).eval(), vote=vote,
            grid=classifier.grid,
        )  # fmt: skip
    if not isinstance(classifier, torch.nn.Module):
        raise TypeError(f"the classifier to attack must be a Smoothed classifier or a torch.nn.Module, got {type(classifier).__name__}")
    if norm is None:
        raise ValueError("give norm= (1 or 2) to attack a deterministic model: it has no mechanism to read it from")
    model = classifier.eval()
    device = model_device(model) or torch.device("cpu")

    def predict(batch: NDArray[np.float32], salt: int) -> NDArray[np.int64]:
        """The model's own prediction on ``batch`` (no noise; ``salt`` unused)."""
        with torch.no_grad():
            logits = torch.cat([model(torch.from_numpy(np.ascontiguousarray(batch[i : i + 4096], dtype=np.float32)).to(device)) for i in range(0, len(batch), 4096)])
        return np.asarray(logits.argmax(dim=1).cpu().numpy())

    as_float32 = _Float32(model)
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
        raise ValueError(f"the attacks support the l1 and l2 norms, not l{float(classifier.mechanism.norm):g} ({classifier.mechanism.label})")
    long_settings = (check_positive_int(long_steps, "long_steps"), check_positive_int(long_restarts, "long_restarts"), check_positive_int(long_soft_samples, "long_soft_samples"))
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


def _checked_broken(attack_name: str, target: _Target, x_np: NDArray[np.float32], adversarial: NDArray[np.float32], y: Any, e: float, salt: int) -> NDArray[np.bool_]:
    """Where ``adversarial`` (within ``e`` of ``x``, or an error) fooled the target's verdict."""
    over = _norm((adversarial - x_np).astype(np.float64), target.norm) > e * (1 + 1e-5)
    if over.any():  # never count a step outside the ball
        raise RuntimeError(f"{attack_name} left the eps = {e} ball on {int(over.sum())} inputs")
    if target.grid is not None:
        adversarial = onto_grid(x_np, adversarial, target.grid)
    return np.asarray(target.vote(adversarial, salt) != y)


def _boundary_broken(target: _Target, data: LabelledData, x: Any, y: Any, eps: list[float], iterations: int, seed: int) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where ART's boundary attack on the hard classifier fooled the verdict within ``eps``."""
    from art.attacks.evasion import BoundaryAttack

    x_np = x.numpy()
    classifier = _art_classifier(target.hard, data.input_shape, data.num_classes)
    attack = BoundaryAttack(classifier, targeted=False, max_iter=iterations, num_trial=10, sample_size=10, init_size=50, verbose=False)
    with numpy_seeded(seed):  # ART draws the boundary attack's random starts from numpy's global generator
        adversarial = attack.generate(x_np, y=y)
    if target.grid is not None:  # judged at the grid point inside its ball (lattice mode)
        adversarial = onto_grid(x_np, adversarial, target.grid)
    distance = _norm((adversarial - x_np).astype(np.float64), target.norm)
    fooled = target.vote(adversarial, 7) != y
    return np.stack([fooled & (distance <= e * (1 + 1e-6)) for e in eps])


def _long_pgd_broken(classifier: Any, target: _Target, x: Any, y: Any, eps: list[float], settings: tuple[int, int, int], seed: int, bar: Any) -> NDArray[np.bool_]:
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
        adversarial = pgd_with_restarts(module, x.to(device), torch.from_numpy(y).to(device), [eps[i] for i in positive], target.norm, steps=steps, restarts=restarts, seed=seed)
        x_np = x.numpy()
        for row, i in enumerate(positive):
            broken[i] = _checked_broken("pgd-long", target, x_np, adversarial[row].cpu().numpy().astype(np.float32), y, eps[i], 300 + i)
    if bar is not None:
        bar.update(len(eps))
    return broken


def _gradient_broken(attack_name: str, target: _Target, data: LabelledData, x: Any, y: Any, eps: list[float], undefended: Any, seed: int, bar: Any) -> NDArray[np.bool_]:
    """``(len(eps), inputs)``: where a gradient attack (PGD on the soft classifier, sparse l1 PGD, or transfer) fooled the verdict."""
    import torch
    from art.attacks.evasion import ProjectedGradientDescent

    shape, classes = data.input_shape, data.num_classes
    art_norm = 1 if target.norm == 1.0 else 2
    x_np = x.numpy()
    if attack_name == "transfer":
        art_target = _art_classifier(undefended.eval(), shape, classes)
        settings = {"max_iter": 40, "step": 0.1, "restarts": 0}
    else:
        art_target = _art_classifier(target.soft, shape, classes)
        settings = {"max_iter": 20, "step": 0.1, "restarts": 0} if attack_name == "pgd" else {"max_iter": 50, "step": 0.05, "restarts": 2}
    broken = np.zeros((len(eps), len(y)), dtype=bool)
    for i, e in enumerate(eps):
        if e > 0 and attack_name == "pgd-strong" and art_norm == 1:
            device = model_device(target.soft) or torch.device("cpu")
            adversarial = sparse_l1_pgd(target.soft, x.to(device), torch.from_numpy(y).to(device), e, steps=50, restarts=2, seed=seed).cpu().numpy()
        elif e > 0:
            attack = ProjectedGradientDescent(
                art_target, norm=art_norm, eps=e, eps_step=settings["step"] * e, max_iter=settings["max_iter"],
                num_random_init=settings["restarts"], batch_size=128, verbose=False,
            )  # fmt: skip
            with numpy_seeded(seed * 1_000_003 + 17 * i + ATTACKS.index(attack_name)):  # ART's random starts: the same whatever ran before
                adversarial = attack.generate(x_np, y=y).astype(np.float32)
        if e > 0:
            broken[i] = _checked_broken(attack_name, target, x_np, adversarial, y, e, 100 + i)
        if bar is not None:
            bar.update(1)
    return broken
