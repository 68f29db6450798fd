"""Certification throughput (inputs/s at n = 10,000): ours against Cohen et al.'s loop and the bare model, same run.

Models (random weights; speed does not depend on training):
* mlp: 64-256-256-10 on 8x8 digits-sized inputs;
* cnn: a small MNIST CNN (two conv layers, two linear) on 1x28x28.

For each model it times, over the same inputs and the same n0 + n samples each:
* ours:        renyicert.Smoothed(...).certify(batch of inputs) (fused sampler, packed batches);
* ours+compile: the same with Smoothed(..., compile=True) (channels_last + torch.compile, freezing);
* cohen:       a faithful re-implementation of locuslab/smoothing core.py's certify loop
               (x.repeat + randn_like * sigma per batch, per input, numpy bincount, Clopper-Pearson);
* forward:     the model's bare forward passes over the same number of rows (the limit).

Prints a table and one JSON line.  Usage: python benchmarks/certify.py [--n 10000] [--inputs 4]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
from scipy.stats import beta

import renyicert


def mlp() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(64 * 12 * 12, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10),
    )  # fmt: skip


def cohen_certify(model: torch.nn.Module, x: torch.Tensor, n0: int, n: int, alpha: float, batch_size: int, sigma: float) -> tuple[int, float]:
    """locuslab/smoothing core.py Smooth.certify, with scipy's beta in place of statsmodels' proportion_confint."""

    def sample_noise(num: int) -> np.ndarray:
        with torch.no_grad():
            counts = np.zeros(10, dtype=int)
            remaining = num
            for _ in range(math.ceil(num / batch_size)):
                this_batch_size = min(batch_size, remaining)
                remaining -= this_batch_size
                batch = x.repeat((this_batch_size, 1, 1, 1)) if x.dim() == 3 else x.repeat((this_batch_size, 1))
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


def best_of(function, repeats: int) -> float:
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    sigma = 0.25
    results = []
    for name, make, shape in (("mlp", mlp, (64,)), ("cnn", cnn, (1, 28, 28))):
        model = make().eval()
        xs = torch.rand(args.inputs, *shape)
        rows = args.inputs * (args.n0 + args.n)
        smoothed = renyicert.Smoothed(model, "gaussian", 10, scale=sigma, input_shape=shape, batch_size=args.batch_size, progress=False)
        smoothed.certify(xs[:1], n0=args.n0, n=args.batch_size, seed=0)  # compile the sampler once
        timings = {"ours": best_of(lambda: smoothed.certify(xs, n0=args.n0, n=args.n, seed=0), args.repeats)}
        compiled = renyicert.Smoothed(model, "gaussian", 10, scale=sigma, input_shape=shape, batch_size=args.batch_size, progress=False, compile=True)
        start = time.perf_counter()
        compiled.certify(xs[:1], n0=args.n0, n=args.batch_size, seed=0)
        compile_s = time.perf_counter() - start
        timings["ours+compile"] = best_of(lambda: compiled.certify(xs, n0=args.n0, n=args.n, seed=0), args.repeats)
        timings["cohen"] = best_of(lambda: [cohen_certify(model, x, args.n0, args.n, 0.001, args.batch_size, sigma) for x in xs], args.repeats)
        buffer = torch.rand(args.batch_size, *shape)

        def forward_only() -> None:
            with torch.inference_mode():
                for _ in range(math.ceil(rows / args.batch_size)):
                    model(buffer)

        timings["forward"] = best_of(forward_only, args.repeats)
        row = {"model": name, "inputs": args.inputs, "n": args.n, "n0": args.n0, "batch_size": args.batch_size, "compile_s": round(compile_s, 1)}
        row.update({f"{k}_inputs_per_s": round(args.inputs / v, 3) for k, v in timings.items()})
        row["ours/cohen"] = round(timings["cohen"] / timings["ours"], 2)
        row["ours+compile/cohen"] = round(timings["cohen"] / timings["ours+compile"], 2)
        row["ours_overhead_over_forward"] = round(timings["ours"] / timings["forward"] - 1.0, 3)
        results.append(row)
    print(f"{'model':<6}{'ours':>9}{'ours+cmp':>10}{'cohen':>9}{'forward':>9}  inputs/s   ratios")
    for r in results:
        print(
            f"{r['model']:<6}{r['ours_inputs_per_s']:>9}{r['ours+compile_inputs_per_s']:>10}{r['cohen_inputs_per_s']:>9}{r['forward_inputs_per_s']:>9}"
            f"  ours/cohen {r['ours/cohen']}x, ours+compile/cohen {r['ours+compile/cohen']}x, "
            f"overhead over forward {r['ours_overhead_over_forward']:+.1%} (compile {r['compile_s']} s)"
        )
    print(json.dumps({"benchmark": "certify", "torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}))


if __name__ == "__main__":
    main()
