"""Randomized smoothing of any torch classifier: predictions with abstention and certificates with radii.

The algorithm is Cohen, Rosenfeld & Kolter (2019)'s ``predict``/``certify``
with Li et al. (2019)'s Rényi certificate: pick the top class from ``n0``
noisy copies, count classes over ``n`` fresh copies, bound the top-two class
probabilities with Clopper-Pearson intervals, and solve for the radius.
Speed lives in :class:`renyicert.sampling.FusedSampler` (noisy copies of
several inputs written straight into the model's batch) and in packing the
copies of many inputs into each model batch.

Noise is counter-based: copy ``s`` of an input with seed ``k`` is the same
whatever the batch size, the packing or the device, so certifying a batch with
``seed=k`` gives exactly the certificates of certifying input ``i`` alone with
``seed=k + i``.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_positive_int
from .confidence import P2_MODES, top_two_bounds
from .mechanism import Mechanism
from .sampling import FusedSampler, fused_noise_kind

__all__ = ["ABSTAIN", "Certificate", "Smoothed"]

#: The label of an abstention.
ABSTAIN = -1


@dataclass(frozen=True)
class Certificate:
    """The result of :meth:`Smoothed.certify` for one input.

    Attributes
    ----------
    label
        The smoothed prediction, or :data:`ABSTAIN` (then ``radius`` is 0).
    radius
        Certified radius in the mechanism's norm.
    p1_lower, p2_upper
        The confidence bounds the radius was computed from.
    counts
        Class counts of the ``n`` estimation samples.
    order
        The Rényi order ``alpha`` at which the radius is attained (``nan`` for ``bound="tight"`` or an abstention).
    n0, n
        Selection and estimation samples.
    seconds
        Wall time spent on this input (its share of a batch).
    """

    label: int
    radius: float
    p1_lower: float
    p2_upper: float
    counts: tuple[int, ...]
    order: float
    n0: int
    n: int
    seconds: float

    @property
    def abstained(self) -> bool:
        """Whether the smoothed classifier abstained."""
        return self.label == ABSTAIN


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def _next_power_of_two(value: int) -> int:
    return 1 << max(int(value) - 1, 0).bit_length()


def _round_rows(value: int) -> int:
    """``value`` rounded up to a multiple of an eighth of the power of two below it: 8 sizes per octave, at most 12.5% padding."""
    step = max((1 << (int(value).bit_length() - 1)) // 8, 1)
    return -(-int(value) // step) * step


class Smoothed:
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
        Noisy copies per model call (default 1000).
    compile
        Opt-in accelerated model: a copy in channels_last (4-D inputs) compiled
        with ``torch.compile`` (inductor, freezing).  Certificates are then for
        the *compiled* model; if compilation fails the eager model is used, with a warning.
    backend
        Sampler path, see :class:`renyicert.sampling.FusedSampler`.
    progress
        Show a tqdm bar: ``True``, ``False`` or ``None`` (only on a terminal).

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
        batch_size: int = 1000,
        compile: bool = False,
        backend: str = "auto",
        progress: bool | None = None,
    ) -> None:
        import torch

        from .registry import get_mechanism

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(mechanism, str):
            if scale is None:
                raise ValueError(f"give scale= with the mechanism name {mechanism!r}")
            mechanism = get_mechanism(mechanism, scale=scale)
        elif not isinstance(mechanism, Mechanism):
            raise TypeError(f"mechanism must be a Mechanism or a registered name, got {mechanism!r}")
        elif scale is not None and scale != mechanism.scale:
            raise ValueError(f"scale={scale!r} disagrees with the mechanism's scale {mechanism.scale!r}")
        self.model = model
        self.mechanism = mechanism
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.progress = progress
        self._sampler = FusedSampler(mechanism, backend) if fused_noise_kind(mechanism) is not None else None
        self._compile = bool(compile)
        self._compiled_model: Any = None

    # ----------------------------------------------------------------- inputs
    def _device(self) -> Any:
        for tensor in self.model.parameters():
            return tensor.device
        for tensor in self.model.buffers():
            return tensor.device
        return None

    def _as_batch(self, x: Any) -> tuple[Any, bool]:
        """``x`` as a batch ``(B, *input_shape)`` and whether it was a single input."""
        import torch

        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got dtype {x.dtype}")
        device = self._device()
        if device is not None and device != x.device:
            raise ValueError(f"model is on {device} but x is on {x.device}; move one of them")
        if not torch.isfinite(x).all():
            raise ValueError("x contains NaN or inf")
        if self.input_shape is None:
            with self._evaluation():
                self.input_shape = self._infer_input_shape(x)
        shape = tuple(x.shape)
        if shape == self.input_shape:
            return x.unsqueeze(0), True
        if shape[1:] == self.input_shape and shape[0] > 0:
            return x, False
        raise ValueError(f"x has shape {shape}; expected one input of shape {self.input_shape} or a batch (B, *{self.input_shape})")

    def _infer_input_shape(self, x: Any) -> tuple[int, ...]:
        for candidate, shape in ((x.unsqueeze(0), tuple(x.shape)), (x[:1], tuple(x.shape[1:]))):
            try:
                logits = self._forward(self.model, candidate)
            except Exception:
                continue
            if tuple(logits.shape) == (1, self.num_classes):
                return shape
        raise ValueError(
            f"the model accepts x of shape {tuple(x.shape)} neither as one input nor as a batch "
            f"with output (B, {self.num_classes}); pass input_shape= to Smoothed"
        )

    @staticmethod
    def _forward(model: Any, batch: Any) -> Any:
        import torch

        with torch.inference_mode():
            return model(batch)

    # ------------------------------------------------------------------ model
    def _runner(self) -> Any:
        if not self._compile:
            return self.model
        if self._compiled_model is None:
            self._compiled_model = self._build_compiled_model()
        return self._compiled_model

    def _build_compiled_model(self) -> Any:
        import torch

        eager = self.model
        try:
            model = copy.deepcopy(self.model).eval()
            channels_last = self.input_shape is not None and len(self.input_shape) == 3
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            # Static shapes: one compilation per batch shape (the sampler keeps the shape fixed).
            compiled = torch.compile(model, dynamic=False)
        except Exception as error:
            return self._compile_failed(error)

        def run(batch: Any) -> Any:
            if not self._compile:
                return eager(batch)
            try:
                with torch._inductor.config.patch(freezing=True):
                    return compiled(batch.contiguous(memory_format=torch.channels_last) if channels_last else batch)
            except Exception as error:  # compilation happens on the first call of each shape
                return self._compile_failed(error)(batch)

        return run

    def _compile_failed(self, error: Exception) -> Any:
        warnings.warn(f"renyicert: compiling the model failed ({type(error).__name__}: {error}); using the eager model", RuntimeWarning, stacklevel=4)
        self._compile = False
        self._compiled_model = None
        return self.model

    # --------------------------------------------------------------- counting
    def _seeds(self, count: int, seed: int | None, generator: Any) -> Any:
        import torch

        if seed is not None and generator is not None:
            raise ValueError("give either seed or generator, not both")
        if seed is None:
            base = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        else:
            base = int(seed)
        return torch.tensor([(base + i) % 2**63 for i in range(count)], dtype=torch.int64)

    def _counts(self, x: Any, samples: int, first_sample: int, seeds: Any, batch_size: int, bar: Any) -> Any:
        """Class counts ``(B, num_classes)`` of ``samples`` noisy copies of each input (copies ``first_sample...``)."""
        import torch

        inputs = x.shape[0]
        device = x.device
        total = inputs * samples
        row_input_all = torch.arange(inputs, device=device).repeat_interleave(samples)
        row_sample_all = torch.arange(samples, device=device).repeat(inputs) + first_sample
        seeds = seeds.to(device)
        counts = torch.zeros(inputs * self.num_classes, dtype=torch.int64, device=device)
        # Few distinct shapes, so few compilations of the sampler (and of a compiled model): the buffer's
        # rows are rounded up (at most 12.5% more) and the inputs padded to a power of two; padding is never counted.
        rows = min(batch_size, _round_rows(total))
        padded = _next_power_of_two(inputs)
        if padded > inputs:
            x = torch.cat([x, x[:1].expand(padded - inputs, *x.shape[1:])])
            seeds = torch.cat([seeds, seeds[:1].expand(padded - inputs)])
        buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=device)
        runner = self._runner()
        for start in range(0, total, rows):
            stop = min(start + rows, total)
            valid = stop - start
            row_input = row_input_all[start:stop]
            row_sample = row_sample_all[start:stop]
            if valid < rows:  # keep one buffer shape (one compilation); the padding rows are not counted
                pad = rows - valid
                row_input = torch.cat([row_input, row_input[:1].expand(pad)])
                row_sample = torch.cat([row_sample, row_sample[:1].expand(pad)])
            self._fill(buffer, x, row_input, row_sample, seeds, start)
            logits = runner(buffer)
            if not (logits.dim() == 2 and logits.shape == (rows, self.num_classes)):
                raise ValueError(f"model output has shape {tuple(logits.shape)}; expected ({rows}, {self.num_classes}) = (batch, num_classes)")
            predictions = logits[:valid].argmax(dim=1)
            if not torch.isfinite(logits[:valid]).all():
                raise ValueError("model returned non-finite logits (NaN or inf) on noisy inputs")
            counts.index_add_(0, row_input[:valid] * self.num_classes + predictions, torch.ones_like(predictions))
            if bar is not None:
                bar.update(valid)
        return counts.view(inputs, self.num_classes).cpu().numpy()

    def _fill(self, buffer: Any, x: Any, row_input: Any, row_sample: Any, seeds: Any, start: int) -> None:
        import torch

        if self._sampler is not None:
            self._sampler.write(buffer, x, row_input, row_sample, seeds)
            return
        # No elementwise noise: the mechanism's own sampler, seeded by the batch's first row.
        generator = torch.Generator(device=buffer.device)
        generator.manual_seed(int(seeds[row_input[0]].item() * 1_000_003 + start) % 2**63)
        noise = self.mechanism.sample(tuple(buffer.shape), generator=generator, dtype=buffer.dtype, device=buffer.device)
        torch.index_select(x, 0, row_input, out=buffer)
        buffer.add_(noise)

    def _progress_bar(self, total: int, description: str) -> Any:
        from tqdm.auto import tqdm

        disable = None if self.progress is None else not self.progress
        return tqdm(total=total, desc=description, unit="sample", unit_scale=True, disable=disable, leave=False)

    # ---------------------------------------------------------------- public
    def predict(
        self, x: Any, n: int, alpha: float = 0.001, *, batch_size: int | None = None, seed: int | None = None, generator: Any = None
    ) -> Any:
        """The smoothed prediction, or :data:`ABSTAIN` (Cohen et al.'s two-sided binomial test of the top two counts).

        Returns an ``int`` for one input, a list of them for a batch.
        """
        from scipy.stats import binomtest

        alpha = _check_alpha(alpha)
        counts = self.class_counts(x, n, batch_size=batch_size, seed=seed, generator=generator)
        single = counts.ndim == 1
        counts = counts.reshape(-1, self.num_classes)
        labels = []
        for row in counts:
            order = np.argsort(row, kind="stable")[::-1]
            top, second = int(row[order[0]]), int(row[order[1]]) if len(row) > 1 else 0
            significant = binomtest(top, top + second, 0.5).pvalue <= alpha if top + second > 0 else False
            labels.append(int(order[0]) if significant else ABSTAIN)
        return labels[0] if single else labels

    def class_counts(
        self, x: Any, n: int, *, batch_size: int | None = None, seed: int | None = None, generator: Any = None
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
        """
        n = check_positive_int(n, "n")
        batch_size = self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size")
        batch, single = self._as_batch(x)
        seeds = self._seeds(batch.shape[0], seed, generator)
        with self._evaluation(), self._progress_bar(batch.shape[0] * n, "count") as bar:
            counts = self._counts(batch, n, 0, seeds, batch_size, bar)
        return counts[0] if single else counts

    def certify(
        self,
        x: Any,
        n0: int = 100,
        n: int = 100_000,
        alpha: float = 0.001,
        *,
        batch_size: int | None = None,
        bound: str = "renyi",
        p2: str = "runner-up",
        interval: str = "clopper-pearson",
        seed: int | None = None,
        generator: Any = None,
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
            Failure probability of the certificate (of the intervals, jointly).
        bound
            ``"renyi"`` (Li et al. 2019, maximised over the order) or ``"tight"``
            (the mechanism's tight certificate, when it has one).
        p2
            ``"runner-up"`` (Bonferroni upper bounds on every other class) or
            ``"complement"`` (``1 - p1_lower``, Cohen et al.).
        interval
            ``"clopper-pearson"`` (the only one offered; see :mod:`renyicert.confidence`).
        seed, generator
            Reproducibility: the same seed gives the same counts and certificates.
        """
        from .solver import certified_radius, tight_radius

        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        alpha = _check_alpha(alpha)
        batch_size = self.batch_size if batch_size is None else check_positive_int(batch_size, "batch_size")
        if bound not in ("renyi", "tight"):
            raise ValueError(f"bound must be 'renyi' or 'tight', got {bound!r}")
        if bound == "tight" and not self.mechanism.has_tight_radius:
            raise ValueError(f"bound='tight' needs a tight certificate, which {self.mechanism.name or type(self.mechanism).__name__} does not provide")
        if p2 not in P2_MODES:
            raise ValueError(f"p2 must be one of {P2_MODES}, got {p2!r}")
        if interval != "clopper-pearson":
            raise ValueError(f"interval must be 'clopper-pearson', got {interval!r}")
        batch, single = self._as_batch(x)
        inputs = batch.shape[0]
        seeds = self._seeds(inputs, seed, generator)
        start = time.perf_counter()
        with self._evaluation(), self._progress_bar(inputs * (n0 + n), "certify") as bar:
            selection = self._counts(batch, n0, 0, seeds, batch_size, bar)
            estimation = self._counts(batch, n, n0, seeds, batch_size, bar)
        top = selection.argmax(axis=1)
        p1_lower, p2_upper = top_two_bounds(estimation, top, alpha, p2)
        certified = p1_lower > p2_upper
        p1c, p2c = np.where(certified, p1_lower, 1.0), np.where(certified, p2_upper, 0.0)
        if bound == "renyi":
            radius, order = certified_radius(self.mechanism, p1c, p2c)
        else:
            radius, order = tight_radius(self.mechanism, p1c, p2c), np.full(inputs, np.nan)
        radius = np.where(certified, np.asarray(radius, dtype=np.float64), 0.0)
        order = np.where(certified, np.asarray(order, dtype=np.float64), np.nan)
        seconds = (time.perf_counter() - start) / inputs
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
            )
            for i in range(inputs)
        ]
        return results[0] if single else results

    def _evaluation(self) -> Any:
        """Context: eval mode and inference mode, restoring the model's previous mode."""
        import contextlib

        import torch

        model = self.model

        @contextlib.contextmanager
        def scope() -> Any:
            was_training = model.training
            model.eval()
            try:
                with torch.inference_mode():
                    yield
            finally:
                model.train(was_training)

        return scope()
