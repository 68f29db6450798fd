"""Lattice mode against float mode on the demo's models: certified radii and certification time, same inputs, same run.

On the demo's stability-trained digits MLPs (Gaussian sigma 0.25 and 0.5, Laplace b = 0.25; loaded from
results/models/ when `make demo` has written them, else trained here with the demo's settings and seed), on the
360 test digits (pixels k / 16, so the grid is 16), n0 = 100, n = 10,000, alpha = 0.001, the same seed:

* float:   Smoothed(...).certify (x + noise in float32: the certificate holds in real arithmetic only);
* lattice: Smoothed(..., grid=16).certify (the noise rounded to the grid and drawn in integers: the certificate
           holds in floating point for every perturbation that keeps the input on the grid).

Reports, per model and bound (Rényi, best): the mean certified radius of each mode and their ratio, the
certified accuracy at the demo's radii, abstentions, copies whose lattice draw failed, and the wall time of
each mode (its best of --rounds interleaved rounds; ratio lattice / float). benchmarks/certify.py has the
throughput rows (grid 1/255) on the MLP and ResNet-20. Prints a table and one JSON line.
Usage: python benchmarks/lattice.py [--n 10000] [--rounds 3] [--models gaussian-0.25,gaussian-0.5,laplace-0.25]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from sequential import demo_model

import renyicert
from renyicert.lattice import lattice_noise, log2_failure
from renyicert.workflow.data import load_digits
from renyicert.workflow.certify import certify_dataset
from renyicert.workflow.summary import certified_accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--models", default="gaussian-0.25,gaussian-0.5,laplace-0.25")
    args = parser.parse_args()
    train_data, test_data = load_digits()
    results = []
    for spec in args.models.split(","):
        noise, scale = spec.rsplit("-", 1)
        model = demo_model(noise, float(scale), train_data).eval()
        mechanism = renyicert.get_mechanism(noise, scale=float(scale))
        records, seconds = {}, {"float": [], "lattice": []}
        for _ in range(args.rounds):
            for mode, grid in (("float", None), ("lattice", 16)):
                smoothed = renyicert.Smoothed(
                    model, mechanism, 10, input_shape=test_data.input_shape, batch_size=4096, progress=False, grid=grid
                )
                start = time.perf_counter()
                records[mode] = certify_dataset(
                    smoothed, test_data, n0=100, n=args.n, alpha=0.001, seed=0, progress=False
                )
                seconds[mode].append(time.perf_counter() - start)
        row = {"model": spec, "inputs": len(test_data), "n": args.n, "grid": 16, "rounds": args.rounds}
        radii = [0.0, 0.25, 0.5, 0.75, 1.0] if noise == "gaussian" else [0.0, 0.25, 0.5, 0.75]
        for bound in ("renyi", "best"):
            mean = {mode: float(np.mean([r[f"radius_{bound}"] for r in records[mode]])) for mode in records}
            row[f"mean_radius_{bound}"] = {mode: round(value, 5) for mode, value in mean.items()}
            row[f"lattice/float_{bound}"] = round(mean["lattice"] / mean["float"], 4)
            row[f"certified_accuracy_{bound}"] = {
                mode: [round(float(a), 4) for a in certified_accuracy(records[mode], radii, bound)] for mode in records
            }
        row["radii"] = radii
        row["abstained"] = {mode: int(sum(r["prediction"] == -1 for r in records[mode])) for mode in records}
        row["failed_copies"] = int(sum(r.get("failed", 0) for r in records["lattice"]))
        row["log2_failure_per_coordinate"] = round(log2_failure(lattice_noise(mechanism, 16)), 2)
        row["seconds"] = {mode: round(min(values), 3) for mode, values in seconds.items()}
        row["time_lattice/float"] = round(min(seconds["lattice"]) / min(seconds["float"]), 3)
        results.append(row)
    print(
        f"{'model':<14}{'bound':<7}{'mean radius float':>18}{'lattice':>10}{'ratio':>8}{'time float':>12}{'lattice':>9}{'ratio':>7}{'failed':>8}"
    )
    for r in results:
        for bound in ("renyi", "best"):
            means = r[f"mean_radius_{bound}"]
            print(
                f"{r['model']:<14}{bound:<7}{means['float']:>18.4f}{means['lattice']:>10.4f}{r[f'lattice/float_{bound}']:>8.4f}"
                f"{r['seconds']['float']:>11.2f}s{r['seconds']['lattice']:>8.2f}s{r['time_lattice/float']:>7.3f}{r['failed_copies']:>8}"
            )
    ratios = [r[f"lattice/float_{b}"] for r in results for b in ("renyi", "best")]
    print(
        f"lattice radii over float radii: {min(ratios):.4f} to {max(ratios):.4f} (mean radius over the {results[0]['inputs'] if results else 0} test digits)"
    )
    print(
        json.dumps(
            {"benchmark": "lattice", "torch": torch.__version__, "threads": torch.get_num_threads(), "results": results}
        )
    )


if __name__ == "__main__":
    main()
