"""Certification throughput (inputs/s at n = 10,000): ours against Cohen et al.'s loop and the bare model, same run.

Models (random weights; speed does not depend on training):
* mlp: 64-256-256-10 on 8x8 digits-sized inputs;
* cnn: a small MNIST CNN (two conv layers, two linear) on 1x28x28;
* resnet20: He et al.'s CIFAR ResNet-20 (the model zoo's ``resnet20``; Cohen et al. used depth 110) on 3x32x32.
* resnet110 (only when asked for): Cohen et al.'s own CIFAR-10 model, ``Sequential(NormalizeLayer, cifar_resnet110)``
  (:mod:`renyicert.workflow.zoo`), with random weights.

For each model it times, over the same inputs and the same n0 + n samples each:
* ours:         renyicert.Smoothed(..., batch_size=1000).certify(batch of inputs): fused sampler, packed batches;
* ours+share:   the same with share_noise=True (one noise draw per sample, shared by the inputs of the call);
* ours+auto:    batch_size="auto" (the model as given, at the batch size it runs fastest per copy);
* ours+auto+share: both;
* ours+compile: Smoothed(..., compile=True) at batch 1000 (channels_last + torch.compile, freezing);
* ours+auto+lattice: batch_size="auto" in lattice mode (grid=255: the noise rounded to the grid, drawn in
                integers); "lattice cost" is its time over ours+auto's, minus one (the inputs are on the grid);
* cohen:        a faithful re-implementation of locuslab/smoothing core.py's certify loop at batch 1000
                (x.repeat + randn_like * sigma per batch, per input, numpy bincount, Clopper-Pearson);
* forward@B:    the model's bare forward passes over the same number of rows at batch B: 1000, and each
                size "auto" chose (the limits: certification cannot be faster than the model).

Two overheads per variant:
* "vs forward": its best round over the bare forward passes' best round at its batch size, minus one. Both
  are best-of-rounds on a shared machine, so this ratio moves by several percent from run to run;
* "in run": everything outside the model's forward calls over the time inside them, within each certify
  call (a timing wrapper around the model sums its calls; the wrapper's own cost counts as outside), the
  median over rounds. Machine drift cancels, as both sides are timed in the same call. Not for compile=True,
  whose wrapper would be compiled too.
Prints a table and one JSON line. Every variant runs once per round, in turn, for --rounds rounds, and its best round counts.
Inputs per call: 32 for the MLP (certify_dataset's default chunk, so the per-call costs weigh as they do
on a data set), 4 for the CNN and 1 for ResNet-20 (their runs are long enough). Both can be set with --inputs.
--device cuda runs the models, the noise (the Triton kernel) and Cohen's loop on the GPU; compile is then skipped
unless --compile-on-cuda is given (its setup is minutes).
Usage: python benchmarks/certify.py [--n 10000] [--inputs N] [--rounds N] [--models mlp,cnn,resnet20,resnet110] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from scipy.stats import beta
from timing import interleaved_best

import renyicert


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(64, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 10),
    )


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(32, 64, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64 * 12 * 12, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def cohen_certify(
    model: torch.nn.Module, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int, sigma: float
) -> tuple[int, float]:
    """locuslab/smoothing core.py Smooth.certify, with scipy's beta in place of statsmodels' proportion_confint."""

    def sample_noise(num: int) -> np.ndarray:
        with torch.no_grad():
            counts = np.zeros(10, dtype=int)
            remaining = num
            for _ in range(math.ceil(num / batch_size)):
                this_batch_size = min(batch_size, remaining)
                remaining -= this_batch_size
                batch = x.repeat((this_batch_size, *([1] * x.dim())))
                noise = torch.randn_like(batch) * sigma
                predictions = model(batch + noise).argmax(1)
                counts += np.bincount(predictions.cpu().numpy(), minlength=10)
            return counts

    model.eval()
    top = int(sample_noise(n0).argmax())
    counts = sample_noise(n)
    k = counts[top]
    p_lower = beta.ppf(alpha, k, n - k + 1) if k > 0 else 0.0
    if p_lower < 0.5:
        return -1, 0.0
    from scipy.stats import norm

    return top, sigma * norm.ppf(p_lower)


class ForwardTimer(torch.nn.Module):
    """The model, with the wall time of its forward calls summed in ``seconds``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seconds = 0.0

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        logits = self.model(batch)
        self.seconds += time.perf_counter() - start
        return logits


def resnet20() -> torch.nn.Module:
    from renyicert.workflow.models import resnet20 as build

    return build((3, 32, 32), 10)


def resnet110() -> torch.nn.Module:
    """Cohen et al.'s CIFAR-10 model as their checkpoints hold it: Sequential(NormalizeLayer, cifar_resnet110) (random weights)."""
    from renyicert.workflow.zoo import published_model

    return published_model("cifar_resnet110")


def forward_passes(model: torch.nn.Module, shape: tuple[int, ...], rows: int, batch_size: int, device: torch.device):
    """The bare forward passes over `rows` rows in batches of `batch_size` (a callable to time)."""
    buffer = torch.rand(batch_size, *shape, device=device)

    def forward_only() -> None:
        with torch.inference_mode():
            for _ in range(math.ceil(rows / batch_size)):
                model(buffer)
        synchronize(device)

    return forward_only


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


DEFAULT_ROUNDS = {"mlp": 10, "cnn": 3, "resnet20": 2, "resnet110": 1}
DEFAULT_INPUTS = {"mlp": 32, "cnn": 4, "resnet20": 1, "resnet110": 1}
VARIANTS = {
    "ours": ({}, {}),
    "ours+share": ({}, {"share_noise": True}),
    "ours+auto": ({"batch_size": "auto"}, {}),
    "ours+auto+share": ({"batch_size": "auto"}, {"share_noise": True}),
    "ours+compile": ({"compile": True}, {}),
    "ours+auto+lattice": ({"batch_size": "auto", "grid": 255}, {}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument(
        "--inputs",
        type=int,
        default=None,
        help="inputs per certify call (default: 32 for the MLP, as certify_dataset's chunks; 4 for the CNN, for time)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds (default: 10 for the MLP, 3 for the CNN); each variant's best round counts",
    )
    parser.add_argument("--models", default="mlp,cnn,resnet20")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--compile-on-cuda", action="store_true", help="also time compile=True on CUDA")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    sigma = 0.25
    results = []
    for name, make, shape in (
        ("mlp", mlp, (64,)),
        ("cnn", cnn, (1, 28, 28)),
        ("resnet20", resnet20, (3, 32, 32)),
        ("resnet110", resnet110, (3, 32, 32)),
    ):
        if name not in args.models.split(","):
            continue
        model = make().eval().to(device)
        inputs = args.inputs or DEFAULT_INPUTS[name]
        xs = (
            torch.randint(0, 256, (inputs, *shape), device=device).float() / 255
        )  # on the grid 1/255, for the lattice variant
        rows = inputs * (args.n0 + args.n)
        functions, setup, sizes, outside = {}, {}, {}, {}
        for variant, (options, call) in VARIANTS.items():
            if options.get("compile") and device.type == "cuda" and not args.compile_on_cuda:
                continue
            options = {"batch_size": args.batch_size, **options}
            timer = None if options.get("compile") else ForwardTimer(model).eval()
            smoothed = renyicert.Smoothed(
                timer or model, "gaussian", 10, scale=sigma, input_shape=shape, progress=False, **options
            )
            start = time.perf_counter()
            smoothed.certify(xs, n0=args.n0, n=args.batch_size, seed=0, **call)  # build kernels, tune, compile
            setup[variant] = time.perf_counter() - start
            outside[variant] = []

            def certify(smoothed=smoothed, call=call, timer=timer, shares=outside[variant]) -> None:
                if timer is not None:
                    timer.seconds = 0.0
                start = time.perf_counter()
                smoothed.certify(xs, n0=args.n0, n=args.n, seed=0, **call)
                synchronize(device)
                if timer is not None:
                    shares.append((time.perf_counter() - start - timer.seconds) / timer.seconds)

            functions[variant] = certify
            sizes[variant] = next(iter(smoothed.tuned_batch_sizes.values()), args.batch_size)
        functions["cohen"] = lambda: (
            [cohen_certify(model, x, args.n0, args.n, 0.001, args.batch_size, sigma) for x in xs],
            synchronize(device),
        )
        for size in sorted(set(sizes.values())):  # each variant's limit: the bare model at its batch size
            functions[f"forward@{size}"] = forward_passes(model, shape, rows, size, device)
        rounds = args.rounds or DEFAULT_ROUNDS[name]
        timings = interleaved_best(functions, rounds)
        row = {
            "model": name,
            "device": str(device),
            "inputs": inputs,
            "n": args.n,
            "n0": args.n0,
            "rounds": rounds,
            "batch_size": sizes,
        }
        row.update({f"setup_{k}_s": round(v, 2) for k, v in setup.items()})
        row.update({f"{k}_inputs_per_s": round(inputs / v, 3) for k, v in timings.items()})
        for variant in (v for v in VARIANTS if v in timings):
            row[f"{variant}/cohen"] = round(timings["cohen"] / timings[variant], 2)
            row[f"{variant}_overhead"] = round(timings[variant] / timings[f"forward@{sizes[variant]}"] - 1.0, 3)
            if outside[variant]:
                row[f"{variant}_overhead_in_run"] = round(statistics.median(outside[variant]), 3)
        if "ours+auto+lattice" in timings:
            row["lattice_cost"] = round(timings["ours+auto+lattice"] / timings["ours+auto"] - 1.0, 3)
        results.append(row)
    per_call = ", ".join(f"{r['model']} {r['inputs']}" for r in results)
    print(
        f"{'model':<10}{'variant':<17}{'batch':>6}{'inputs/s':>10}{'vs cohen':>10}{'overhead vs forward':>21}{'in run':>9}   (inputs per call: {per_call})"
    )
    for r in results:
        labels = [
            *(v for v in VARIANTS if f"{v}_inputs_per_s" in r),
            "cohen",
            *sorted((k.removesuffix("_inputs_per_s") for k in r if k.startswith("forward@")), key=lambda k: int(k[8:])),
        ]
        for label in labels:
            ratio = f"{r[f'{label}/cohen']}x" if f"{label}/cohen" in r else ""
            overhead = f"{r[f'{label}_overhead']:+.1%}" if f"{label}_overhead" in r else ""
            in_run = f"{r[f'{label}_overhead_in_run']:+.1%}" if f"{label}_overhead_in_run" in r else ""
            batch = r["batch_size"].get(label, "")
            print(
                f"{r['model']:<10}{label:<17}{batch:>6}{r[f'{label}_inputs_per_s']:>10}{ratio:>10}{overhead:>21}{in_run:>9}"
            )
    for r in results:
        if "lattice_cost" in r:
            print(
                f"{r['model']:<10}lattice mode (grid 1/255) costs {r['lattice_cost']:+.1%} against float mode at batch auto"
            )
    print(
        json.dumps(
            {"benchmark": "certify", "torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}
        )
    )


if __name__ == "__main__":
    main()
