"""Sequential certification against fixed n: certified accuracy and forward passes per input, same models, same run.

On the demo's stability-trained digits MLPs (Gaussian sigma 0.25 and 0.5, Laplace b = 0.25; loaded from
results/models/ when `make demo` has written them, else trained here with the demo's settings and seed), on all
360 test digits, alpha = 0.001, n0 = 100, and for each radius of a grid from 0 to the largest radius fixed n
certifies (7 radii):

* (a) fixed n = 100,000 as Cohen et al. do it: Smoothed.certify(n0=100, n=100_000, p2_mode="complement"),
      certified at r where the bound's radius at (p1_lower, 1 - p1_lower) reaches r;
* (b) the union-bound sequential test of Voráček (NeurIPS 2024, vvoracek/RS_conf_seq, its
      get_thresholds_union_bound, re-implemented here): binomial tests at sample counts 1.1^k with
      alpha_k = 5 alpha / ((k + 4)(k + 5)), stopped at the first sample where a test decides; it tests the class
      our selection chose, from the same n0 = 100 selection copies, and draws its own copies one by one;
* (c) ours for that single radius: certify_dataset_at(radii=[r], p2_mode="complement"), the same p2 = 1 - p1 as (a);
* (c+) the same with extended_budget (--extended-budget, default 400,000): inputs undecided at the budget go on
       where the sequence would certify them by then if their estimate were the truth;
* (d), (d+) ours for the whole grid at once: certify_dataset_at(radii=grid), without and with the extension.

(c) and (d) use the threshold form's default test since issue 27: one-sided e-processes per radius at the full
alpha, radii certified in increasing order (decision_test="ordered"), a radius given up (undecided) once the
predicted chance that its test crosses by the budget is below renyicert.sequential_rule.FUTILITY. Beside them, in the same run:
* (c2), (d2): the rule before, every radius from one two-sided confidence sequence (decision_test="two-sided");
* (dr): the runner-up form (p2_mode="runner-up", the demo's and certify_at's default) for the whole grid.

Every method gets the same budget of estimation samples (--budget, default 100,000); an input still undecided
there counts as not certified (and (c+)/(d+) are the "budget above 100,000 for the few inputs still undecided"). Forward passes per input include the n0 selection copies. Wall time is measured
for (a) and (c) (and (d)); (b) is counted, not timed (its per-sample loop is the benchmark's, not a product).
The certified answers must agree with (a) where both decide; the goals are in issue 15.
Prints a table per model and one JSON line.
Usage: python benchmarks/sequential.py [--budget 100000] [--inputs 360] [--models gaussian-0.25,gaussian-0.5,laplace-0.25]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binom

import renyicert
from renyicert.sequential_rule import radius_thresholds
from renyicert.workflow.data import load_digits
from renyicert.workflow.jobs.demo import DemoSettings
from renyicert.workflow.certify import certify_dataset_at
from renyicert.workflow.checkpoints import load_checkpoint
from renyicert.workflow.models import build_model
from renyicert.workflow.training import train

ALPHA = 0.001
N0 = 100


def demo_model(noise: str, scale: float, train_data: object) -> torch.nn.Module:
    """The demo's stability-trained model for this noise: results/models/ if there, else trained as the demo trains it."""
    settings = DemoSettings()
    path = Path("results/models") / f"{noise}-{scale:g}-stability.pt"
    if path.exists():
        return load_checkpoint(path)[0]
    torch.manual_seed(settings.seed)
    model = build_model(settings.model, train_data.input_shape, train_data.num_classes)
    train(
        model,
        train_data,
        renyicert.get_mechanism(noise, scale=scale),
        method="stability",
        epochs=settings.epochs,
        seed=settings.seed,
        progress=False,
    )
    return model


def union_bound_thresholds(p: float, alpha: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Voráček's get_thresholds_union_bound(p, alpha, n): (lower, upper) success counts per sample count that stop the test."""

    def upper(q: float) -> np.ndarray:
        growth, first = 1.1, 11
        up = np.arange(n) + 100  # out of reach (more successes than samples) except where set
        k = first
        for i in range(1, n):
            if i > growth**k:
                k += 1
                j = k - first
                up[i] = binom.ppf(1 - 5 * alpha / (j + 4) / (j + 5), i, q) + 1
        return np.minimum.accumulate(up[::-1])[::-1]

    hi = upper(p)
    lo = np.maximum.accumulate(np.arange(n) - upper(1 - p))
    return lo, hi


class EstimationVotes:
    """Votes for one class on the estimation copies ``certify_dataset_at(seed=0)`` gives input ``i`` (key ``i``, copies ``n0, n0 + 1, ...``).

    The copies come from the engine's own entry point (``VoteEngine.draw_copies``, what ``renyicert.check`` draws
    from), so (b) tests the same noise stream as (c): an input near a threshold cannot be certified by one stream and
    refused by the other. The votes are drawn on demand, in prefixes that double, and kept for the next radius.
    """

    def __init__(self, smoothed: renyicert.Smoothed, x: torch.Tensor, key: int, candidate: int, budget: int) -> None:
        self.smoothed, self.x, self.key, self.candidate, self.budget = smoothed, x, key, candidate, budget
        self.votes = np.zeros(0, dtype=bool)

    def first(self, samples: int) -> np.ndarray:
        """The votes of estimation copies 0 ... samples - 1 (at most the budget)."""
        samples = min(samples, self.budget)
        if samples > len(self.votes):
            drawn = max(samples, min(2 * len(self.votes), self.budget), 256)
            batch, _ = self.smoothed._as_batch(self.x.unsqueeze(0))
            with torch.inference_mode():
                copies = self.smoothed._engine.draw_copies(batch, self.key, N0 + min(drawn, self.budget))[N0:]
                self.votes = torch.cat(
                    [self.smoothed.model(part).argmax(1) == self.candidate for part in copies.split(16384)]
                ).numpy()
        return self.votes[:samples]


def union_bound_run(stream: EstimationVotes, budget: int, lo: np.ndarray, hi: np.ndarray) -> tuple[bool, int]:
    """(b) on one input: the shared estimation copies counted one by one until a test decides; (certified, samples)."""
    drawn, chunk = 0, 256
    while drawn < budget - 1:
        size = min(chunk, budget - 1 - drawn)
        counts = np.cumsum(stream.first(drawn + size))[drawn:]
        steps = np.arange(drawn + 1, drawn + size + 1)
        stop = np.nonzero((counts >= hi[steps]) | (counts <= lo[steps]))[0]
        if stop.size:
            k = stop[0]
            return bool(counts[k] >= hi[steps[k]]), int(steps[k])
        drawn, chunk = drawn + size, min(chunk * 2, 16384)
    return False, budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=100_000)
    parser.add_argument(
        "--extended-budget",
        type=int,
        default=400_000,
        help="(c+)/(d+): inputs undecided at --budget go on up to this where it would decide them",
    )
    parser.add_argument("--inputs", type=int, default=360)
    parser.add_argument("--models", default="gaussian-0.25,gaussian-0.5,laplace-0.25")
    parser.add_argument("--radii", type=int, default=7)
    parser.add_argument("--no-extended", action="store_true", help="skip (c+) and (d+) (they take most of the run)")
    args = parser.parse_args()
    configs = [("c", None, "ordered"), ("c2", None, "two-sided")] + (
        [] if args.no_extended else [("c+", args.extended_budget, "ordered")]
    )
    torch.manual_seed(0)
    train_data, test_data = load_digits(seed=0)
    test_data = test_data.subset(args.inputs)
    labels = test_data.y.numpy()
    out: dict[str, object] = {
        "budget": args.budget,
        "extended_budget": args.extended_budget,
        "inputs": len(test_data),
        "alpha": ALPHA,
        "n0": N0,
        "models": {},
    }
    for name in args.models.split(","):
        noise, scale = name.rsplit("-", 1)
        model = demo_model(noise, float(scale), train_data)
        model.eval()
        smoothed = renyicert.Smoothed(
            model, noise, 10, scale=float(scale), input_shape=train_data.input_shape, batch_size=4096, progress=False
        )
        mechanism = smoothed.mechanism
        # (a) fixed n, timed.
        start = time.perf_counter()
        fixed = smoothed.certify(test_data.x, n0=N0, n=args.budget, alpha=ALPHA, p2_mode="complement", seed=0)
        fixed_seconds = time.perf_counter() - start
        p1 = np.array([c.p1_lower for c in fixed])
        top = np.array([c.label for c in fixed])
        fixed_radius = np.where(
            top >= 0,
            np.asarray(
                renyicert.certified_radius(mechanism, np.where(top >= 0, p1, 1.0), np.where(top >= 0, 1 - p1, 0.0))[0]
            ),
            -1.0,
        )
        largest = float(fixed_radius[top == labels].max())
        grid = [round(largest * k / (args.radii - 1), 3) for k in range(args.radii)]
        grid[-1] = float(np.floor(largest * 1000) / 1000)
        thresholds = radius_thresholds(mechanism, grid, "renyi")
        # (d) ours for the whole grid, timed, with the budget alone and with the extension.
        whole: dict[str, list] = {}
        whole_seconds: dict[str, float] = {}
        for config, extended, test in configs:
            start = time.perf_counter()
            whole[config] = certify_dataset_at(
                smoothed,
                test_data,
                grid,
                alpha=ALPHA,
                budget=args.budget,
                extended_budget=extended,
                n0=N0,
                p2_mode="complement",
                seed=0,
                progress=False,
                decision_test=test,
            )
            whole_seconds[config] = time.perf_counter() - start
        start = time.perf_counter()
        runner_up = certify_dataset_at(
            smoothed,
            test_data,
            grid,
            alpha=ALPHA,
            budget=args.budget,
            n0=N0,
            p2_mode="runner-up",
            seed=0,
            progress=False,
        )
        whole_seconds["r"] = time.perf_counter() - start
        rows = []
        streams: dict[int, EstimationVotes] = {}
        for j, radius in enumerate(grid):
            row: dict[str, object] = {"radius": radius, "threshold": float(thresholds[j])}
            accuracy = {"a": float(((top == labels) & (fixed_radius >= radius)).mean())}
            passes = {"a": float(N0 + args.budget)}
            accuracy["dr"] = float(np.mean([r["certified"][j] and r["selected"] == r["label"] for r in runner_up]))
            for config, extended, test in configs:
                # (c) ours for this radius alone, timed.
                start = time.perf_counter()
                single = certify_dataset_at(
                    smoothed,
                    test_data,
                    [radius],
                    alpha=ALPHA,
                    budget=args.budget,
                    extended_budget=extended,
                    n0=N0,
                    p2_mode="complement",
                    seed=0,
                    progress=False,
                    decision_test=test,
                )
                if config == "c":
                    ordered_single = single
                row[f"seconds_{config}"] = time.perf_counter() - start
                accuracy[config] = float(np.mean([r["certified"][0] and r["selected"] == r["label"] for r in single]))
                passes[config] = float(np.mean([r["n0"] + r["samples"] for r in single]))
                accuracy[f"d{config[1:]}"] = float(
                    np.mean([r["certified"][j] and r["selected"] == r["label"] for r in whole[config]])
                )
                row[f"undecided_{config}"] = int(sum(r["undecided"][0] for r in single))
            # (b) union bound on the class our selection chose.
            lo, hi = union_bound_thresholds(float(thresholds[j]), ALPHA, args.budget + 1)
            union_ok, union_passes = [], []
            for i, record in enumerate(ordered_single):
                if i not in streams:
                    streams[i] = EstimationVotes(smoothed, test_data.x[i], i, record["selected"], args.budget)
                stream = streams[i]
                if record["samples"]:  # the shared stream is the engine's: its count at (c)'s stop is (c)'s
                    assert int(stream.first(record["samples"]).sum()) == record["successes"], (name, radius, i)
                ok, samples = (False, 0) if thresholds[j] >= 1.0 else union_bound_run(stream, args.budget, lo, hi)
                union_ok.append(ok and record["selected"] == record["label"])
                union_passes.append(N0 + samples)
            accuracy["b"], passes["b"] = float(np.mean(union_ok)), float(np.mean(union_passes))
            row["accuracy"], row["passes"] = accuracy, passes
            rows.append(row)
        print(
            f"\n{name}: {len(test_data)} inputs, alpha = {ALPHA}, n0 = {N0}, budget {args.budget:,} (c+ and d+: extended to {args.extended_budget:,}); "
            f"(a) fixed n took {fixed_seconds:.1f} s"
        )
        names = [config for config, _, _ in configs]
        accuracy_columns = ["a", "b", *names, *(f"d{c[1:]}" for c in names), "dr"]
        print(
            f"{'radius':>7} {'thresh':>9} | "
            + " ".join(f"{'acc ' + c:>7}" for c in accuracy_columns)
            + " | "
            + " ".join(f"{'pass ' + c:>8}" for c in ["a", "b", *names])
            + f" {'b/c':>6} {'b/c2':>6} | "
            + " ".join(f"{'und ' + c:>6}" for c in names)
        )
        for row in rows:
            acc, passes = row["accuracy"], row["passes"]
            print(
                f"{row['radius']:>7.3f} {row['threshold']:>9.6f} | "
                + " ".join(f"{acc[c]:>7.1%}" for c in accuracy_columns)
                + " | "
                + " ".join(f"{passes[c]:>8,.0f}" for c in ["a", "b", *names])
                + f" {passes['b'] / passes['c']:>6.2f} {passes['b'] / passes['c2']:>6.2f} | "
                + " ".join(f"{row['undecided_' + c]:>6d}" for c in names)
            )
        summary: dict[str, object] = {"grid": grid, "rows": rows, "fixed_seconds": fixed_seconds}
        summary["runner_up_whole_grid"] = {
            "passes": float(np.mean([r["n0"] + r["samples"] for r in runner_up])),
            "seconds": whole_seconds["r"],
            "accuracy": [r["accuracy"]["dr"] for r in rows],
        }
        for config in names:
            mean_passes = float(np.mean([r["passes"][config] for r in rows]))
            whole_passes = float(np.mean([r["n0"] + r["samples"] for r in whole[config]]))
            seconds = float(np.mean([r[f"seconds_{config}"] for r in rows]))
            summary[config] = {
                "a_over_mean_passes": (N0 + args.budget) / mean_passes,
                "a_over_passes_worst_radius": min((N0 + args.budget) / r["passes"][config] for r in rows),
                "worst_accuracy_loss_points": max(100 * (r["accuracy"]["a"] - r["accuracy"][config]) for r in rows),
                "fewer_passes_than_b_at": sum(r["passes"][config] < r["passes"]["b"] for r in rows),
                "accuracy_at_least_b_at": sum(r["accuracy"][config] >= r["accuracy"]["b"] for r in rows),
                "b_over_mean_passes": float(np.mean([r["passes"]["b"] for r in rows])) / mean_passes,
                "whole_grid_passes": whole_passes,
                "whole_grid_seconds": whole_seconds[config],
                "whole_grid_over_sum_of_singles": whole_passes / sum(r["passes"][config] for r in rows),
                "a_over_mean_wall_time": fixed_seconds / seconds,
            }
            result = summary[config]
            result["accuracy_at_least_b_everywhere"] = result["accuracy_at_least_b_at"] == len(rows)
            print(
                f"({config}) averaged over the grid: (a)/({config}) passes {result['a_over_mean_passes']:.1f}x, worst radius {result['a_over_passes_worst_radius']:.1f}x; "
                f"worst accuracy loss against (a) {result['worst_accuracy_loss_points']:.2f} points; fewer passes than (b) at {result['fewer_passes_than_b_at']}/{len(rows)} radii "
                f"(mean (b)/({config}) {result['b_over_mean_passes']:.2f}), accuracy >= (b) at {result['accuracy_at_least_b_at']}/{len(rows)}; the whole grid at once: "
                f"{result['whole_grid_passes']:,.0f} passes/input, {result['whole_grid_over_sum_of_singles']:.2f} of one run per radius, {result['whole_grid_seconds']:.1f} s; "
                f"wall time (a) / mean ({config}) = {result['a_over_mean_wall_time']:.1f}x"
            )
        best = summary["runner_up_whole_grid"]
        print(
            f"(dr) the runner-up form for the whole grid: {best['passes']:,.0f} passes/input (d: {summary['c']['whole_grid_passes']:,.0f}), "  # type: ignore[index]
            f"accuracy {' '.join(f'{a:.1%}' for a in best['accuracy'])}"
        )  # type: ignore[index]
        out["models"][name] = summary  # type: ignore[index]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
