"""Gradient attacks on the smoothed classifier: PGD with random restarts, sparse l1 PGD, the soft smoothed classifier.

:class:`SmoothedSoftClassifier` is the differentiable ``log E[softmax f(x + noise)]``
(fresh noise at every call: Salman et al. 2019's SmoothAdv objective) that the
gradient attacks of :mod:`renyicert.workflow.attacks` climb;
:class:`SmoothedVoteClassifier` the hard majority vote with its noise draws
fixed (for the decision-based attack). :func:`pgd_with_restarts` runs every
start and radius as one batch; :func:`sparse_l1_pgd` takes the sparse steps l1
needs (ART's l1 steps are dense).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._progress import progress_bar
from .._torch import torch_nn
from .._validation import check_positive_int
from ..mechanism import Mechanism

__all__ = [
    "SmoothedSoftClassifier",
    "SmoothedVoteClassifier",
    "norms",
    "pgd_with_restarts",
    "project_l1_ball",
    "sparse_l1_pgd",
]


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
        noise = self.mechanism.sample(
            (x.shape[0], self.samples, *x.shape[1:]), generator=self._generator, dtype=x.dtype
        )
        logits = self.model((x[:, None] + noise.to(x.device)).reshape(-1, *x.shape[1:]))
        probabilities = torch.softmax(logits, dim=1).reshape(x.shape[0], self.samples, -1).mean(dim=1)
        return torch.log(probabilities.clamp_min(1e-12))


class SmoothedVoteClassifier(torch_nn().Module):  # type: ignore[misc]
    """Vote shares of the hard smoothed classifier over ``samples`` *fixed* noise draws (deterministic, for decision-based attacks)."""

    def __init__(
        self, model: Any, mechanism: Mechanism, input_shape: tuple[int, ...], samples: int = 64, seed: int = 0
    ) -> None:
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
    >>> from renyicert.workflow.pgd import project_l1_ball
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
    module: Any,
    x: Any,
    y: Any,
    eps: float,
    *,
    steps: int = 50,
    restarts: int = 2,
    step_fraction: float = 0.1,
    quantile: float = 0.97,
    seed: int = 0,
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
            start = torch.empty_like(x).exponential_(generator=generator) * torch.where(
                torch.rand(x.shape, generator=generator) < 0.5, -1.0, 1.0
            )
            delta = project_l1_ball(
                start
                * (
                    eps * torch.rand(x.shape[0], generator=generator) / start.abs().flatten(1).sum(1).clamp_min(1e-12)
                ).view(-1, *[1] * (x.dim() - 1)),
                eps,
            )
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
        start = torch.empty(x.shape).exponential_(generator=generator) * torch.where(
            torch.rand(x.shape, generator=generator) < 0.5, -1.0, 1.0
        )
        delta = project_l1_ball(
            start
            * (eps * torch.rand(x.shape[0], generator=generator) / start.flatten(1).abs().sum(1).clamp_min(1e-12)).view(
                shape
            ),
            eps,
        )
    return (x + delta.to(x.device)).clamp(0.0, 1.0) - x


def pgd_with_restarts(
    module: Any,
    x: Any,
    y: Any,
    eps: Sequence[float],
    norm: float,
    *,
    steps: int = 1000,
    restarts: int = 20,
    quantile: float = 0.97,
    seed: int = 0,
    batch_size: int = 8192,
    progress: bool | None = False,
) -> Any:
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
    >>> from renyicert.workflow.pgd import pgd_with_restarts
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
            adversarial[rows], losses[rows] = _pgd_rows(
                module, all_x[rows], all_y[rows], all_eps[rows], norm, steps, quantile, generator, bar
            )
    shape = (len(eps_values), restarts, inputs)
    best = losses.reshape(shape).argmax(dim=1)  # (eps, inputs)
    chosen = adversarial.reshape(*shape, *x.shape[1:])
    return chosen[torch.arange(len(eps_values))[:, None], best, torch.arange(inputs)[None, :]]


def _pgd_rows(
    module: Any, x: Any, y: Any, eps: Any, norm: float, steps: int, quantile: float, generator: Any, bar: Any
) -> tuple[Any, Any]:
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


def norms(delta: NDArray[np.float64], p: float) -> NDArray[np.float64]:
    """The l_p norm of each row of ``delta``."""
    flat = delta.reshape(delta.shape[0], -1)
    return np.asarray(np.linalg.norm(flat, ord=p, axis=1), dtype=np.float64)
