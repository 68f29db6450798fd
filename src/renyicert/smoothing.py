"""Randomized smoothing of any torch classifier: predictions with abstention and certificates with radii.

The algorithm is Cohen, Rosenfeld & Kolter (2019)'s ``predict``/``certify``
with Li et al. (2019)'s Rényi certificate: pick the top class from ``n0``
noisy copies, count classes over ``n`` fresh copies, bound the top-two class
probabilities with Clopper-Pearson intervals, and solve for the radius.
Speed lives in the vote engine (:mod:`renyicert._engine`): noisy copies of
several inputs written straight into the model's batch, full batches, native
vote counting; this module is only the algorithm, as in Cohen et al.'s ``core.py``.

Noise is counter-based: copy ``s`` of an input with seed ``k`` is the same
whatever the batch size, the packing or the device, so certifying a batch with
``seed=k`` gives exactly the certificates of certifying input ``i`` alone with
``seed=k + i``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._engine.engine import VoteEngine, noise_keys
from ._engine.tuning import AUTO_BATCH_SIZES
from ._torch import model_device
from ._validation import check_alpha, check_batch_size, check_flag, check_positive_int
from .certificate import ABSTAIN, Certificate, split_failures
from .confidence import P2_MODES, top_two_bounds
from .lattice import grid_integers, lattice_noise
from .mechanism import Mechanism
from .radii import best_radii, check_bound, radii_where_certified, require_offered
from .registry import resolve_mechanism
from .smoothing_sequential import SequentialMethods

__all__ = ["AUTO_BATCH_SIZES", "Smoothed"]


def _check_certificate_kind(mechanism: Mechanism, bound: str, p2_mode: str, interval: str) -> None:
    """Refuse a bound the mechanism does not offer, an unknown ``p2_mode`` or an interval other than Clopper-Pearson."""
    if check_bound(bound, ("renyi", "tight", "best")) != "best":
        require_offered(mechanism, bound)
    if p2_mode not in P2_MODES:
        raise ValueError(f"p2_mode must be one of {P2_MODES}, got {p2_mode!r}")
    if interval != "clopper-pearson":
        raise ValueError(f"interval must be 'clopper-pearson', got {interval!r}")


def _radii(
    mechanism: Mechanism,
    bound: str,
    p1_lower: NDArray[np.float64],
    p2_upper: NDArray[np.float64],
    certified: NDArray[np.bool_],
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.object_]]:
    """The radius, the order attaining it and the bound that gave it, per input (0 where not ``certified``)."""
    if bound == "best":
        return best_radii(mechanism, p1_lower, p2_upper, certified)
    radius, order = radii_where_certified(mechanism, p1_lower, p2_upper, certified, bound)
    return radius, order, np.full(len(radius), bound, dtype=object)


class Smoothed(SequentialMethods):
    """The smoothed classifier ``g(x) = argmax_c P(f(x + noise) = c)`` of a torch model.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` mapping ``(B, *input_shape)`` to logits ``(B, num_classes)``.
    mechanism
        A :class:`Mechanism`, or a registered name together with ``scale``.
    num_classes
        Number of classes the model scores.
    scale
        The noise scale when ``mechanism`` is a name.
    input_shape
        Shape of one input.  Without it, the first call infers it (a tensor the
        model accepts with a batch axis added is one input; otherwise a batch).
    batch_size
        Noisy copies per model call (default 1000), or ``"auto"``: on the first
        call for an input shape, time a batch's work (drawing noisy copies, the
        model, counting votes) at each size of :data:`~renyicert.smoothing.AUTO_BATCH_SIZES` (stopping
        once two in a row are slower per copy, a step takes over 0.25 s, or a
        buffer would pass 256 MiB), time the sizes tried twice more, and keep
        the fastest per copy, the largest of those within 2%. A small CNN on the
        CPU can run twice as fast per copy at 64 as at 1000 (caches).
        The noise does not depend on the batch size, but the model's float
        rounding may, so a copy whose logits tie to within rounding could vote
        differently under another size: give an int for bit-exact reproducibility.
        With ``compile=True`` the timing uses the eager model, since the compiled
        one would be compiled again for every size tried.
    compile
        Opt-in accelerated model: a copy in channels_last (4-D inputs) compiled
        with ``torch.compile`` (inductor, freezing).  Certificates are then for
        the *compiled* model; if compilation fails the eager model is used, with a warning.
    backend
        Sampler path: ``"auto"`` (Triton on CUDA; on the CPU the C++ kernel for float32
        normal and Laplace noise, else ``torch.compile``, else eager), or one of
        ``"triton"``, ``"native"``, ``"compiled"``, ``"eager"``.
    progress
        Show a tqdm bar: ``True``, ``False`` or ``None`` (only on a terminal).
    output
        Where the logits are in the model's output. ``None`` (the default): the output
        itself when it is a tensor, else a dict's ``"logits"``, an object's ``.logits``
        (Hugging Face) or a tuple's first element; a string names a dict key or an
        attribute; a callable takes the output and returns the logits. Anything else
        is a ``TypeError`` naming the type the model returned.
    grid
        Lattice mode (:mod:`renyicert.lattice`, ``docs/float-soundness.md``): the inputs
        are on the grid ``k / grid`` (255 for 8-bit images) and the noise is the
        mechanism's, rounded to the grid and drawn exactly in integers, so the
        certificates hold in floating point for every perturbation that keeps the
        input on the grid. ``None`` (the default): float mode, ``x + noise`` in the
        inputs' dtype. The mechanism must offer ``_coordinate_cdf``.
    round_off_grid
        In lattice mode, round inputs that are off the grid to the nearest grid
        point instead of refusing them; the certificate is then the rounded input's
        (it covers the inputs whose rounding is within the radius of it).

    Examples
    --------
    >>> import torch, renyicert
    >>> model = torch.nn.Linear(2, 2)
    >>> with torch.no_grad():
    ...     _ = model.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])); _ = model.bias.zero_()
    >>> smoothed = renyicert.Smoothed(model, "gaussian", num_classes=2, scale=0.5, backend="eager", progress=False)
    >>> cert = smoothed.certify(torch.tensor([1.0, 0.0]), n0=100, n=2000, seed=0)
    >>> cert.label, round(cert.radius, 2)
    (0, 0.72)
    """

    def __init__(
        self,
        model: Any,
        mechanism: Mechanism | str,
        num_classes: int,
        *,
        scale: float | None = None,
        input_shape: tuple[int, ...] | None = None,
        batch_size: int | str = 1000,
        compile: bool = False,
        backend: str = "auto",
        progress: bool | None = None,
        output: str | Callable[[Any], Any] | None = None,
        grid: int | None = None,
        round_off_grid: bool = False,
    ) -> None:
        import torch

        from ._logits import LogitsOf

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if output is not None and not (isinstance(output, str) and output) and not callable(output):
            raise TypeError(f"output must be None, a key (a non-empty string) or a callable, got {output!r}")
        self.model = model
        #: The module the votes and the attacks call: ``model`` with its logits taken from its output (see ``output``).
        self.scorer = LogitsOf(model, output)
        self.mechanism = resolve_mechanism(mechanism, scale)
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.batch_size = check_batch_size(batch_size)
        self.progress = progress
        lattice = None if grid is None else lattice_noise(self.mechanism, grid)
        #: The grid of lattice mode, or ``None`` (float mode).
        self.grid = None if lattice is None else lattice.grid
        self.round_off_grid = check_flag(round_off_grid, "round_off_grid")
        self._engine = VoteEngine(
            self.scorer, self.mechanism, self.num_classes, compile=compile, backend=backend, lattice=lattice
        )

    @property
    def tuned_batch_sizes(self) -> dict[tuple[Any, ...], int]:
        """The sizes ``batch_size="auto"`` chose, by (input shape, dtype, device)."""
        return self._engine.tuned_batch_sizes

    # ----------------------------------------------------------------- inputs
    def _as_batch(self, x: Any) -> tuple[Any, bool]:
        """``x`` as a batch ``(B, *input_shape)`` and whether it was a single input."""
        import torch

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        device = model_device(self.model)
        if device is not None and device != x.device:
            raise ValueError(f"model is on {device} but x is on {x.device}; move one of them")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        if self.input_shape is None:
            self.input_shape = self._infer_input_shape(x)
        self._check_dimension()
        if self.grid is not None:
            x = (grid_integers(x, self.grid, self.round_off_grid).to(x.dtype) / self.grid).to(x.device)
        shape = tuple(x.shape)
        if shape == self.input_shape:
            return x.unsqueeze(0), True
        if shape[1:] == self.input_shape and shape[0] > 0:
            return x, False
        raise ValueError(
            f"x has shape {shape}; expected one input of shape {self.input_shape} or a batch (B, *{self.input_shape})"
        )

    def _check_dimension(self) -> None:
        """Refuse inputs whose number of elements is not the dimension the mechanism's divergence assumes."""
        dimension = self.mechanism.dimension
        if dimension is not None and self.input_shape is not None and math.prod(self.input_shape) != dimension:
            raise ValueError(
                f"{self.mechanism!r} states its divergence for {dimension} coordinates, but the inputs have "
                f"{math.prod(self.input_shape)} (shape {self.input_shape}); build it for that dimension"
            )

    def _infer_input_shape(self, x: Any) -> tuple[int, ...]:
        """``x``'s shape if the model takes it as one input, else its shape less the batch axis if the model takes it as a batch."""
        if self._engine.accepts(x.unsqueeze(0)):
            return tuple(x.shape)
        if x.dim() > 0 and x.shape[0] > 0 and self._engine.accepts(x[:1]):
            return tuple(x.shape[1:])
        raise ValueError(
            f"the model accepts x of shape {tuple(x.shape)} neither as one input nor as a batch "
            f"with output (B, {self.num_classes}) (as a batch: {self._engine.last_error}); if x is right, pass input_shape= to Smoothed"
        )

    # ---------------------------------------------------------------- public
    def predict(
        self,
        x: Any,
        n: int,
        alpha: float = 0.001,
        *,
        batch_size: int | str | None = None,
        seed: int | None = None,
        generator: Any = None,
        share_noise: bool = False,
    ) -> Any:
        """The smoothed prediction, or :data:`ABSTAIN` (Cohen et al.'s two-sided binomial test of the top two counts).

        Returns an ``int`` for one input, a list of them for a batch.
        ``batch_size``, ``seed``, ``generator`` and ``share_noise`` are as in :meth:`certify`.
        """
        from scipy.stats import binomtest

        alpha = check_alpha(alpha)
        counts, failed, single = self._counts(x, n, batch_size, seed, generator, share_noise)
        labels = []
        for row, failures in zip(counts, failed):
            order = np.argsort(row, kind="stable")[::-1]
            # A failed lattice copy counts for the runner-up (for no class in the top class's count).
            top, second = int(row[order[0]]), (int(row[order[1]]) if len(row) > 1 else 0) + int(failures)
            significant = binomtest(top, top + second, 0.5).pvalue <= alpha if top + second > 0 else False
            labels.append(int(order[0]) if significant else ABSTAIN)
        return labels[0] if single else labels

    def class_counts(
        self,
        x: Any,
        n: int,
        *,
        batch_size: int | str | None = None,
        seed: int | None = None,
        generator: Any = None,
        share_noise: bool = False,
    ) -> Any:
        """How often the model picks each class over ``n`` noisy copies: ``(num_classes,)`` for one input, ``(B, num_classes)`` for a batch.

        The majority vote ``class_counts(x, n).argmax(-1)`` is the Monte Carlo
        estimate of the smoothed prediction without abstention.  Copies are drawn
        as in :meth:`predict` (the same seed gives the same counts).

        Examples
        --------
        >>> import torch, renyicert
        >>> smoothed = renyicert.Smoothed(torch.nn.Linear(2, 3), "laplace", num_classes=3, scale=0.5, progress=False)
        >>> smoothed.class_counts(torch.zeros(4, 2), n=100, seed=0).sum(axis=1).tolist()
        [100, 100, 100, 100]

        In lattice mode the copies whose noise draw failed are left out (almost never any).
        """
        counts, _, single = self._counts(x, n, batch_size, seed, generator, share_noise)
        return counts[0] if single else counts

    def _counts(
        self, x: Any, n: int, batch_size: int | str | None, seed: int | None, generator: Any, share_noise: bool
    ) -> tuple[Any, Any, bool]:
        """``(votes (B, num_classes), failed lattice copies (B,), single)`` over ``n`` copies of each input."""
        n = check_positive_int(n, "n")
        requested = self.batch_size if batch_size is None else check_batch_size(batch_size)
        share_noise = check_flag(share_noise, "share_noise")
        batch, single = self._as_batch(x)
        keys = noise_keys(batch.shape[0], seed, generator, share_noise)
        (counts,) = self._engine.count_votes(
            batch, keys, [n], batch_size=requested, share_noise=share_noise, progress=self.progress, description="count"
        )
        votes, failed = split_failures(counts, self.num_classes)
        return votes, failed, single

    def _selection_and_estimation(
        self, batch: Any, keys: Any, n0: int, n: int, batch_size: int | str, share_noise: bool
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """The class counts of ``n0`` selection copies and of ``n`` estimation copies (new ones), and the failed estimation copies.

        Failed lattice copies are skipped: their votes are in no class's count.
        """
        selection, estimation = self._engine.count_votes(
            batch,
            keys,
            [n0, n],
            batch_size=batch_size,
            share_noise=share_noise,
            progress=self.progress,
            description="certify",
        )
        selection, _ = split_failures(selection, self.num_classes)
        estimation, failed = split_failures(estimation, self.num_classes)
        return selection, estimation, failed

    def certify(
        self,
        x: Any,
        n0: int = 100,
        n: int = 100_000,
        alpha: float = 0.001,
        *,
        batch_size: int | str | None = None,
        bound: str = "renyi",
        p2_mode: str = "runner-up",
        interval: str = "clopper-pearson",
        seed: int | None = None,
        generator: Any = None,
        share_noise: bool = False,
    ) -> Any:
        """Certify one input or a batch: a :class:`Certificate` or a list of them.

        Parameters
        ----------
        x
            One input ``input_shape`` or a batch ``(B, *input_shape)``; input ``i``
            of a batch is certified exactly as it would be alone with ``seed + i``.
        n0, n
            Selection and estimation samples per input.
        alpha
            Failure probability of the certificate (of the intervals, jointly), for this
            one run: re-running with a new seed until an input certifies spends it again
            each time (20 tries: up to 1 - (1 - alpha)^20; see "Spending alpha once" in
            ``docs/certify.md``). To spend more samples, choose a larger ``n`` up front.
        bound
            ``"renyi"`` (Li et al. 2019, maximised over the order), ``"tight"``
            (the mechanism's tight certificate, when it has one) or ``"best"``:
            the largest radius of the Rényi bound and every *verified* comparison
            bound (tight, PixelDP: see :func:`~renyicert.radii.best_bounds`), at no extra alpha (see
            :func:`~renyicert.radii.best_radii`); the certificate's ``bound`` says which one gave it.
        p2_mode
            How ``p2_upper`` is bounded: ``"runner-up"`` (Bonferroni upper bounds on
            every other class) or ``"complement"`` (``1 - p1_lower``, Cohen et al.).
        interval
            ``"clopper-pearson"`` (the only one offered; see :mod:`renyicert.confidence`).
        batch_size
            Noisy copies per model call: an int, ``"auto"`` (see :class:`Smoothed`),
            or ``None`` for the ``Smoothed``'s own.
        seed, generator
            Reproducibility: the same seed gives the same counts and certificates.
        share_noise
            Opt-in speed-up for a batch: every input gets the *same* noise draws,
            those it would get alone with ``seed`` (not ``seed + i``), drawn once
            and added to each input. Each certificate keeps its guarantee, since
            its own copies are still independent draws; the certificates of
            different inputs are no longer independent of one another, so a
            dataset's certified accuracy is still unbiased but varies more
            between seeds.
        """
        n0, n, alpha = check_positive_int(n0, "n0"), check_positive_int(n, "n"), check_alpha(alpha)
        requested = self.batch_size if batch_size is None else check_batch_size(batch_size)
        share_noise = check_flag(share_noise, "share_noise")
        _check_certificate_kind(self.mechanism, bound, p2_mode, interval)
        batch, single = self._as_batch(x)
        keys = noise_keys(batch.shape[0], seed, generator, share_noise)
        start = time.perf_counter()
        # Select the top class from n0 copies and estimate from n fresh ones: never from the same copies.
        selection, estimation, failed = self._selection_and_estimation(batch, keys, n0, n, requested, share_noise)
        top = selection.argmax(axis=1)
        # Bound p1 (the selected class) and p2 from the estimation counts, jointly at level 1 - alpha
        # (in lattice mode, failed copies count for no class in p1's bound and for every other one in p2's).
        p1_lower, p2_upper = top_two_bounds(estimation, top, alpha, p2_mode, failed)
        # Certify only where the bounds separate the top class; solve for the radius there.
        certified = p1_lower > p2_upper
        radius, order, winners = _radii(self.mechanism, bound, p1_lower, p2_upper, certified)
        seconds = (time.perf_counter() - start) / batch.shape[0]
        results = [
            Certificate(
                label=int(top[i]) if certified[i] else ABSTAIN,
                radius=float(radius[i]),
                p1_lower=float(p1_lower[i]),
                p2_upper=float(p2_upper[i]),
                counts=tuple(int(c) for c in estimation[i]),
                order=float(order[i]),
                n0=n0,
                n=n,
                seconds=seconds,
                selected=int(top[i]),
                bound=str(winners[i]),
                failed=int(failed[i]),
                grid=self.grid,
            )
            for i in range(batch.shape[0])
        ]
        return results[0] if single else results
