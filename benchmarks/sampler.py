"""Noisy elements per second of the fused sampler against the usual torch idioms, in the same run.

For each shape (rows, *input_shape) it times, writing x + noise for `rows` copies of one input:

* ours:        renyicert._engine.sampler.FusedSampler's default path (the C++ kernel on CPU, Triton on CUDA), into a preallocated buffer;
* compiled:    (CPU) the same sampler's torch.compile path, which the C++ kernel must beat to be the default;
* cohen:       locuslab/smoothing's `x.repeat(rows, 1, 1, 1) + torch.randn_like(batch) * sigma`;
* dist-laplace: `torch.distributions.Laplace(0, b).sample(shape) + x`;
* eager-rng:   `out.normal_(0, s).add_(x)` / `out.uniform_()` Laplace (torch's own RNG, in place);
* fill:        `out.fill_(1.0)` of the same buffer (the memory-bandwidth limit).

Every variant runs once per round, in turn, and its best round counts. Prints a table and one
JSON line. Ratios compare with the baseline of the same kind.
Usage: python benchmarks/sampler.py [--device cpu|cuda] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

import renyicert
from timing import interleaved_best
from renyicert._engine.sampler import FusedSampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20, help="interleaved rounds; each variant's best round counts")
    args = parser.parse_args()
    device = args.device
    results = []
    for shape in [(400, 3, 32, 32), (1000, 1, 28, 28)]:
        rows, input_shape = shape[0], shape[1:]
        x = torch.rand(1, *input_shape, device=device)
        out = torch.empty(shape, device=device)
        elements = out.numel()
        row_input = torch.zeros(rows, dtype=torch.int64, device=device)
        row_sample = torch.arange(rows, dtype=torch.int64, device=device)
        seeds = torch.tensor([1234], dtype=torch.int64, device=device)
        synchronize = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        functions, first_call = {}, {}
        row_sample_next = row_sample + rows
        for name in ("gaussian", "laplace"):
            mechanism = renyicert.get_mechanism(name, scale=0.5)
            sampler = FusedSampler(mechanism)
            start = time.perf_counter()
            sampler.write(out, x, row_input, row_sample, seeds)  # builds the kernel (once per machine) or compiles
            synchronize()
            first_call[name] = time.perf_counter() - start
            functions[f"ours-{name}"] = lambda sampler=sampler: sampler.write(out, x, row_input, row_sample_next, seeds)
            if device == "cpu":
                compiled = FusedSampler(mechanism, backend="compiled")
                compiled.write(out, x, row_input, row_sample, seeds)
                functions[f"torchcompile-{name}"] = lambda compiled=compiled: compiled.write(
                    out, x, row_input, row_sample_next, seeds
                )
        xs = x[0]
        functions["cohen-gaussian"] = lambda: (
            xs.repeat((rows, 1, 1, 1)) + torch.randn_like(xs.repeat((rows, 1, 1, 1))) * 0.5
        )
        laplace = torch.distributions.Laplace(torch.tensor(0.0, device=device), torch.tensor(0.5, device=device))
        functions["dist-laplace"] = lambda: laplace.sample(shape) + x
        functions["eager-rng-gaussian"] = lambda: out.normal_(0.0, 0.5).add_(x)
        functions["fill"] = lambda: out.fill_(1.0)
        for function in functions.values():  # warm-up: allocations, kernel selection
            function()
        timings = interleaved_best(functions, args.repeats, synchronize)
        timings.update({f"compile-{name}": seconds for name, seconds in first_call.items()})
        row = {"shape": list(shape), "device": device, "elements": elements}
        for key, seconds in timings.items():
            if key.startswith("compile"):
                row[f"{key}_s"] = round(seconds, 2)
            else:
                row[f"{key}_Gps"] = round(elements / seconds / 1e9, 3)
        row["ours/cohen-gaussian"] = round(timings["cohen-gaussian"] / timings["ours-gaussian"], 2)
        row["ours/dist-laplace"] = round(timings["dist-laplace"] / timings["ours-laplace"], 2)
        if device == "cpu":
            row["ours/compiled-gaussian"] = round(timings["torchcompile-gaussian"] / timings["ours-gaussian"], 2)
            row["ours/compiled-laplace"] = round(timings["torchcompile-laplace"] / timings["ours-laplace"], 2)
        row["ours-gaussian/fill"] = round(timings["fill"] / timings["ours-gaussian"], 3)
        results.append(row)
    print(
        f"{'shape':<18}{'ours-g':>8}{'ours-l':>8}{'cohen':>8}{'dist-l':>8}{'eagerg':>8}{'fill':>8}  (G elements/s)  ratios"
    )
    for r in results:
        print(
            f"{str(tuple(r['shape'])):<18}{r['ours-gaussian_Gps']:>8}{r['ours-laplace_Gps']:>8}{r['cohen-gaussian_Gps']:>8}"
            f"{r['dist-laplace_Gps']:>8}{r['eager-rng-gaussian_Gps']:>8}{r['fill_Gps']:>8}  "
            f"vs cohen {r['ours/cohen-gaussian']}x, vs dist-laplace {r['ours/dist-laplace']}x, "
            f"first call (build or compile) {r['compile-gaussian_s']}/{r['compile-laplace_s']} s"
            + (
                f", vs own compiled path {r['ours/compiled-gaussian']}x/{r['ours/compiled-laplace']}x"
                if "ours/compiled-gaussian" in r
                else ""
            )
        )
    print(
        json.dumps(
            {"benchmark": "sampler", "torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}
        )
    )


if __name__ == "__main__":
    main()
