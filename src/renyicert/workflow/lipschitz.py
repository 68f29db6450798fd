"""A deterministic l2 certifier: a 1-Lipschitz network (deel-torchlip) and its logit-margin certificate.

The comparison the paper draws (Li et al. 2019, against Wong et al. 2018's
deterministic certificates) needs a certifier that holds for *every* input,
not with probability ``1 - alpha``.  A network whose logits ``f`` are
L-Lipschitz from l2 to l2 gives one from a single forward pass:

* for classes ``y`` and ``j``, ``f_y - f_j = (e_y - e_j)^T f`` is
  ``||e_y - e_j||_2 L = sqrt(2) L``-Lipschitz, so if the margin
  ``m = f_y(x) - max_{j != y} f_j(x)`` is positive, no ``x'`` with
  ``||x' - x||_2 < m / (sqrt(2) L)`` changes the prediction (Tsuzuku et al. 2018);
* ``L`` is bounded by the product of the layers' Lipschitz constants: the
  exact spectral norm (largest singular value, by SVD in float64) of each
  linear layer, and 1 for the group-sort activation (a permutation of each pair).

deel-torchlip's :class:`~deel.torchlip.SpectralLinear` keeps each weight's
singular values near 1 while training (power iteration and Björck
orthonormalisation), but only to a tolerance; the certificate therefore never
trusts it: :func:`lipschitz_bound` recomputes the bound from the exported
weights, and :func:`deterministic_certify` evaluates the margin in float64.
An l2 radius also certifies the same l1 radius (``||d||_2 <= ||d||_1``), which
is how the comparison puts this model beside Laplace noise.

The architecture mirrors :class:`~renyicert.workflow.models.DigitsMLP` (two
hidden layers of 256) with spectrally normalised layers and GroupSort2 in place
of ReLU.  It trains with deel-torchlip's temperature-scaled cross-entropy
(``TauCrossEntropyLoss``): a lower temperature widens the margins at some
cost in clean accuracy.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._progress import progress_bar
from .._validation import check_positive_int
from .data import LabelledData, as_labelled_data

__all__ = [
    "DEFAULT_TAU",
    "DeterministicCertificates",
    "deterministic_certify",
    "export_lipschitz",
    "lipschitz_bound",
    "lipschitz_mlp",
    "train_lipschitz",
]

#: deel-torchlip's temperature for the cross-entropy.  Chosen on a validation split of the digits' training set
#: (the first 80% trains, the last 20% certifies; 30 epochs, seed 0): mean certified accuracy over l2 radii in
#: [0, 1] was 0.556, 0.592, 0.562 and 0.470 for tau = 1, 2, 4 and 8; clean accuracy 91.7%, 95.8%, 97.2% and 98.3%.
DEFAULT_TAU = 2.0


def lipschitz_mlp(input_shape: tuple[int, ...] = (1, 8, 8), num_classes: int = 10, hidden: int = 256) -> Any:
    """The digits MLP's shape made 1-Lipschitz in l2: spectrally normalised linear layers and GroupSort2.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.lipschitz import lipschitz_mlp
    >>> lipschitz_mlp()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """
    import torch
    from deel import torchlip

    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torchlip.SpectralLinear(math.prod(input_shape), hidden),
        torchlip.GroupSort2(),
        torchlip.SpectralLinear(hidden, hidden),
        torchlip.GroupSort2(),
        torchlip.SpectralLinear(hidden, num_classes),
    )


def export_lipschitz(model: Any) -> Any:
    """A plain-torch copy of a deel-torchlip model (its constrained weights frozen), in eval mode; ``model`` is untouched."""
    from deel.torchlip import vanilla_model

    exported = vanilla_model(model, in_place=False)
    for parameter in exported.parameters():
        parameter.requires_grad_(False)
    return exported.eval()


def lipschitz_bound(model: Any) -> float:
    """An upper bound on the l2 -> l2 Lipschitz constant of a sequential model: the product of its layers' constants.

    Linear layers count with their exact spectral norm (SVD in float64), flatten and
    identity layers and ReLU with 1, group-sort with its coefficient.  Any other layer
    is refused, since its constant is not known here.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.lipschitz import lipschitz_bound
    >>> layer = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 0.5]]))
    >>> lipschitz_bound(torch.nn.Sequential(torch.nn.Flatten(), layer, torch.nn.ReLU()))
    3.0
    """
    import torch
    from deel.torchlip import GroupSort

    bound = 1.0
    for name, layer in _layers(model):
        if isinstance(layer, torch.nn.Linear):
            bound *= float(torch.linalg.matrix_norm(layer.weight.detach().to(torch.float64), ord=2))
        elif isinstance(layer, GroupSort):
            bound *= abs(float(layer._coefficient_lip))
        elif not isinstance(layer, (torch.nn.Flatten, torch.nn.Identity, torch.nn.ReLU)):
            raise ValueError(
                f"layer {name!r} ({type(layer).__name__}) has no Lipschitz constant known here; "
                "expected a sequence of Linear, Flatten, Identity, ReLU and GroupSort layers (export deel-torchlip layers with export_lipschitz)"
            )
    return bound


def _layers(model: Any) -> list[tuple[str, Any]]:
    """The leaf layers of a (possibly nested) ``Sequential``, in order; anything else is refused."""
    import torch

    if not isinstance(model, torch.nn.Sequential):
        raise ValueError(f"a Lipschitz bound needs a torch.nn.Sequential model, got {type(model).__name__}")
    leaves: list[tuple[str, Any]] = []
    for name, layer in model.named_children():
        leaves += (
            [(f"{name}.{n}", m) for n, m in _layers(layer)]
            if isinstance(layer, torch.nn.Sequential)
            else [(name, layer)]
        )
    return leaves


@dataclass(frozen=True)
class DeterministicCertificates:
    """Per input: the predicted class, whether it is right, and the certified l2 radius ``margin / (sqrt(2) L)``."""

    prediction: NDArray[np.int64]
    correct: NDArray[np.bool_]
    radius: NDArray[np.float64]
    lipschitz: float

    def first(self, count: int) -> DeterministicCertificates:
        """The certificates of the first ``count`` inputs."""
        return DeterministicCertificates(
            self.prediction[:count], self.correct[:count], self.radius[:count], self.lipschitz
        )

    def certified_accuracy(self, radii: Any) -> NDArray[np.float64]:
        """The share of inputs predicted correctly with a certified radius >= each of ``radii``."""
        radii = np.asarray(radii, dtype=np.float64)
        return np.array([float(np.mean(self.correct & (self.radius >= r))) for r in radii.ravel()]).reshape(radii.shape)


def deterministic_certify(model: Any, data: LabelledData | Any, *, batch_size: int = 1024) -> DeterministicCertificates:
    """Certify every input of ``data`` with the logit margin of an exported 1-Lipschitz ``model`` (float64 throughout).

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.lipschitz import deterministic_certify
    >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2, 2, bias=False))
    >>> with torch.no_grad():
    ...     _ = model[1].weight.copy_(torch.eye(2))
    >>> certificates = deterministic_certify(model, (torch.tensor([[1.0, 0.0], [0.25, 0.5]]), torch.tensor([0, 0])))
    >>> [round(r, 6) for r in certificates.radius.tolist()], certificates.correct.tolist()
    ([0.707107, 0.176777], [True, False])
    """
    import torch

    data = as_labelled_data(data)
    batch_size = check_positive_int(batch_size, "batch_size")
    lipschitz = lipschitz_bound(model)
    if not (math.isfinite(lipschitz) and lipschitz > 0):
        raise ValueError(f"the model's Lipschitz bound must be finite and > 0, got {lipschitz}")
    exact = copy.deepcopy(model).to(device="cpu", dtype=torch.float64).eval()
    logits = []
    with torch.no_grad():
        for begin in range(0, len(data), batch_size):
            logits.append(exact(data.inputs(slice(begin, begin + batch_size)).to(torch.float64)))
    scores = torch.cat(logits).numpy()
    top2 = np.sort(scores, axis=1)[:, -2:]
    prediction = scores.argmax(axis=1)
    radius = (top2[:, 1] - top2[:, 0]) / (math.sqrt(2.0) * lipschitz)
    return DeterministicCertificates(
        prediction=prediction, correct=prediction == data.y.numpy(), radius=radius, lipschitz=lipschitz
    )


def train_lipschitz(
    model: Any,
    data: LabelledData | Any,
    *,
    epochs: int = 30,
    batch_size: int = 64,
    lr: float = 1e-3,
    tau: float = DEFAULT_TAU,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[Any, float]:
    """Train a deel-torchlip ``model`` in place with Adam on ``TauCrossEntropyLoss(tau)``; returns its export and the seconds taken.

    Examples
    --------
    >>> from renyicert.workflow.data import load_digits
    >>> from renyicert.workflow.lipschitz import lipschitz_mlp, train_lipschitz
    >>> train_data, _ = load_digits()
    >>> exported, seconds = train_lipschitz(lipschitz_mlp(), train_data, epochs=1, progress=False)
    >>> type(exported[1]).__name__
    'Linear'
    """
    import torch
    from deel.torchlip import TauCrossEntropyLoss

    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be finite and > 0, got {tau!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be > 0, got {lr!r}")
    epochs, batch_size = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    data = as_labelled_data(data)
    generator = torch.Generator().manual_seed(seed)
    loss_function = TauCrossEntropyLoss(tau=float(tau))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    model.train()
    with progress_bar(
        epochs * ((len(data) + batch_size - 1) // batch_size), "train 1-Lipschitz", "step", progress
    ) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(data), generator=generator)
            for begin in range(0, len(data), batch_size):
                index = order[begin : begin + batch_size]
                loss = loss_function(model(data.inputs(index)), data.y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if bar is not None:
                    bar.update(1)
    model.eval()
    return export_lipschitz(model), time.perf_counter() - start
