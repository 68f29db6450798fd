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

import contextlib
import copy
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import check_batch_size, check_flag, check_positive_int
from .batches import count_phase_votes, count_votes
from .confidence import P2_MODES, top_two_bounds
from .mechanism import Mechanism
from .native import native_ops
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


#: The batch sizes ``batch_size="auto"`` tries, smallest first.
AUTO_BATCH_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
#: ``batch_size="auto"`` tries no batch whose noisy copies take more memory than this.
_AUTO_BUFFER_BYTES = 256 * 2**20
#: ``batch_size="auto"``: sizes this close in time per copy tie, and the larger wins.
_AUTO_TIE = 0.02
#: ``batch_size="auto"``: passes over the sizes (each size's fastest step counts), the least time a size is
#: timed for in one pass, and the step time beyond which no larger size is tried.
_AUTO_PASSES = 3
_AUTO_WINDOW = 0.02
_AUTO_LONG_STEP = 0.25
#: Mixes an input's key with a batch's first sample number into the seed of a mechanism's own sampler.
_OWN_SAMPLER_MIX = 0x9E3779B97F4A7C15


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
        batch_size: int | str = 1000,
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
        self.batch_size = check_batch_size(batch_size)
        #: The sizes ``batch_size="auto"`` chose, by (input shape, dtype, device).
        self.tuned_batch_sizes: dict[tuple[Any, ...], int] = {}
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

    # ------------------------------------------------------------- batch size
    def _resolve_batch_size(self, requested: int | str, x: Any) -> int:
        """``requested``, or for ``"auto"`` the size chosen (once per input shape, dtype and device) by timing."""
        if requested != "auto":
            return int(requested)
        key = (tuple(x.shape[1:]), x.dtype, x.device)
        if key not in self.tuned_batch_sizes:
            self.tuned_batch_sizes[key] = self._tune_batch_size(x)
        return self.tuned_batch_sizes[key]

    def _tune_batch_size(self, x: Any) -> int:
        """The size in :data:`AUTO_BATCH_SIZES` with the least time per noisy copy of ``x[0]``.

        A timed step is what :meth:`_counts` does per batch: draw the copies, run
        the model (the eager one), count the votes; a size's time is its fastest
        step. The first pass goes up from the smallest size and stops after two
        sizes in a row slower than the best so far, a step over
        :data:`_AUTO_LONG_STEP` seconds or a buffer over :data:`_AUTO_BUFFER_BYTES`.
        Further passes time every size tried again (:data:`_AUTO_PASSES` in all),
        so that a moment's slowdown of a shared machine during one pass cannot
        decide. A size within :data:`_AUTO_TIE` of the fastest ties with it, and
        the largest such wins (fewer calls).
        """
        import torch

        device = x.device
        synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        row_bytes = x[0].numel() * x.element_size()
        seeds = torch.zeros(1, dtype=torch.int64, device=device)
        votes = torch.zeros(self.num_classes, dtype=torch.int64, device=device)
        ops = native_ops() if device.type == "cpu" else None
        costs: dict[int, float] = {}  # seconds per copy, the best seen

        def measure(rows: int) -> float:
            """Time steps of ``rows`` copies (at least two, and for at least :data:`_AUTO_WINDOW` s); the fastest step's seconds."""
            buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=device)
            row_input = torch.zeros(rows, dtype=torch.int64, device=device)
            row_sample = torch.arange(rows, device=device)
            fill = self._batch_writer(buffer, x[:1], seeds)

            def step() -> None:
                fill(row_input, row_sample)
                logits = self.model(buffer)
                if logits.dim() == 2 and logits.shape == (rows, self.num_classes):  # else counting will say so
                    count_votes(logits, row_input, rows, votes, ops)

            step()  # warm-up: allocations, kernel selection
            synchronize()
            fastest, calls, start = math.inf, 0, time.perf_counter()
            while calls < 2 or time.perf_counter() - start < _AUTO_WINDOW:
                begin = time.perf_counter()
                step()
                synchronize()
                fastest = min(fastest, time.perf_counter() - begin)
                calls += 1
            costs[rows] = min(costs.get(rows, math.inf), fastest / rows)
            return fastest

        leader, slower = math.inf, 0
        for rows in AUTO_BATCH_SIZES:
            if rows > AUTO_BATCH_SIZES[0] and rows * row_bytes > _AUTO_BUFFER_BYTES:
                break
            seconds = measure(rows)
            if costs[rows] <= leader * (1.0 + _AUTO_TIE):
                leader, slower = min(leader, costs[rows]), 0
            else:
                slower += 1
                if slower == 2:
                    break
            if seconds > _AUTO_LONG_STEP:  # larger sizes would take long to try
                break
        for _ in range(_AUTO_PASSES - 1):
            for rows in list(costs):
                measure(rows)
        fastest = min(costs.values())
        return max(rows for rows, cost in costs.items() if cost <= fastest * (1.0 + _AUTO_TIE))

    # --------------------------------------------------------------- counting
    def _seeds(self, count: int, seed: int | None, generator: Any, share_noise: bool = False) -> Any:
        import torch

        if seed is not None and generator is not None:
            raise ValueError("give either seed or generator, not both")
        if seed is None:
            base = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        else:
            base = int(seed)
        return torch.tensor([base if share_noise else (base + i) % 2**63 for i in range(count)], dtype=torch.int64)

    def _counts(self, x: Any, samples: int, first_sample: int, seeds: Any, batch_size: int, bar: Any, share_noise: bool = False) -> Any:
        """Class counts ``(B, num_classes)`` of ``samples`` noisy copies of each input (copies ``first_sample...``).

        With ``share_noise`` the rows go sample by sample (the inputs' copies of
        one draw side by side, so that the native sampler draws it once); the
        counts do not depend on the order.
        """
        import torch

        inputs = x.shape[0]
        device = x.device
        total = inputs * samples
        if share_noise:
            row_input_all = torch.arange(inputs, device=device).repeat(samples)
            row_sample_all = torch.arange(samples, device=device).repeat_interleave(inputs) + first_sample
        else:
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
        tail = -total % rows  # the last batch's padding rows (its first row again): drawn, for one buffer shape, never counted
        if tail:
            last = total - total % rows
            row_input_all = torch.cat([row_input_all, row_input_all[last : last + 1].expand(tail)])
            row_sample_all = torch.cat([row_sample_all, row_sample_all[last : last + 1].expand(tail)])
        buffer = torch.empty((rows, *x.shape[1:]), dtype=x.dtype, device=device)
        native_step = self._sampler.native_step(buffer, x, seeds, row_input_all, row_sample_all, counts, self.num_classes) if self._sampler is not None else None
        fill = None if native_step is not None else self._batch_writer(buffer, x, seeds)
        ops = native_ops() if device.type == "cpu" else None
        count_phase_votes(self._runner(), buffer, row_input_all, row_sample_all, total, counts, self.num_classes, fill, native_step, ops, bar)
        return counts.view(inputs, self.num_classes).cpu().numpy()

    def _batch_writer(self, buffer: Any, x: Any, seeds: Any) -> Any:
        """``fill(row_input, row_sample)``: write a batch's noisy copies (input ``row_input[j]``, sample ``row_sample[j]``) into ``buffer``."""
        import torch

        if self._sampler is not None:
            return self._sampler.bind(buffer, x, seeds)

        def fill_with_own_sampler(row_input: Any, row_sample: Any) -> None:
            # No elementwise noise: the mechanism's own sampler, seeded by the batch's first row (its input's
            # key and its sample number, so that no two batches of a certification, selection or estimation,
            # start from one seed).
            generator = torch.Generator(device=buffer.device)
            generator.manual_seed((int(seeds[row_input[0]]) * _OWN_SAMPLER_MIX + int(row_sample[0])) % 2**63)
            noise = self.mechanism.sample(tuple(buffer.shape), generator=generator, dtype=buffer.dtype, device=buffer.device)
            torch.index_select(x, 0, row_input, out=buffer)
            buffer.add_(noise)

        return fill_with_own_sampler

    def _progress_bar(self, total: int, description: str) -> Any:
        from tqdm.auto import tqdm

        if self.progress is False:  # not even a disabled bar: building one costs ~0.1 ms a call
            return contextlib.nullcontext(None)
        return tqdm(total=total, desc=description, unit="sample", unit_scale=True, disable=None if self.progress is None else not self.progress, leave=False)

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

        alpha = _check_alpha(alpha)
        counts = self.class_counts(x, n, batch_size=batch_size, seed=seed, generator=generator, share_noise=share_noise)
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
        """
        n = check_positive_int(n, "n")
        requested = self.batch_size if batch_size is None else check_batch_size(batch_size)
        share_noise = check_flag(share_noise, "share_noise")
        batch, single = self._as_batch(x)
        seeds = self._seeds(batch.shape[0], seed, generator, share_noise)
        with self._evaluation(), self._progress_bar(batch.shape[0] * n, "count") as bar:
            rows = self._resolve_batch_size(requested, batch)
            counts = self._counts(batch, n, 0, seeds, rows, bar, share_noise)
        return counts[0] if single else counts

    def certify(
        self,
        x: Any,
        n0: int = 100,
        n: int = 100_000,
        alpha: float = 0.001,
        *,
        batch_size: int | str | None = None,
        bound: str = "renyi",
        p2: str = "runner-up",
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
            Failure probability of the certificate (of the intervals, jointly).
        bound
            ``"renyi"`` (Li et al. 2019, maximised over the order) or ``"tight"``
            (the mechanism's tight certificate, when it has one).
        p2
            ``"runner-up"`` (Bonferroni upper bounds on every other class) or
            ``"complement"`` (``1 - p1_lower``, Cohen et al.).
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
        from .solver import certified_radius, tight_radius

        n0 = check_positive_int(n0, "n0")
        n = check_positive_int(n, "n")
        alpha = _check_alpha(alpha)
        requested = self.batch_size if batch_size is None else check_batch_size(batch_size)
        share_noise = check_flag(share_noise, "share_noise")
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
        seeds = self._seeds(inputs, seed, generator, share_noise)
        start = time.perf_counter()
        with self._evaluation(), self._progress_bar(inputs * (n0 + n), "certify") as bar:
            rows = self._resolve_batch_size(requested, batch)
            selection = self._counts(batch, n0, 0, seeds, rows, bar, share_noise)
            estimation = self._counts(batch, n, n0, seeds, rows, bar, share_noise)
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
        import torch

        model = self.model

        @contextlib.contextmanager
        def scope() -> Any:
            # A model already in eval mode throughout is left alone (eval() and train() walk every module).
            switch = any(module.training for module in model.modules())
            was_training = model.training
            if switch:
                model.eval()
            try:
                with torch.inference_mode():
                    yield
            finally:
                if switch:
                    model.train(was_training)

        return scope()
