"""Distributed certification on this machine: inputs/s with 1 and 2 ranks (torchrun, gloo), and the cost of fsync per record.

Both runs go through the same command, ``torchrun --nproc_per_node=K -m renyicert.cli certify``,
so start-up is paid alike, after one untimed warm-up run of each (torch.compile's caches);
each rank gets ``cores // K`` threads.  The fsync cost is
the time to append one record with and without ``fsync``, set against the time to
certify one input.  Prints a table and one JSON line.

Usage: python benchmarks/scaling.py [--inputs 96] [--samples 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from renyicert.workflow.checkpoints import save_checkpoint
from renyicert.workflow.models import DigitsMLP
from renyicert.workflow.records import RecordWriter


def run(ranks: int, checkpoint: Path, records: Path, inputs: int, samples: int) -> float:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nproc_per_node={ranks}",
        "--master_port=29533",
        "-m",
        "renyicert.cli",
        "certify",
        "--checkpoint",
        str(checkpoint),
        "--mechanism",
        "gaussian",
        "--scale",
        "0.25",
        "--limit",
        str(inputs),
        "--samples",
        str(samples),
        "--records",
        str(records),
        "--quiet",
    ]
    start = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        capture_output=True,
        env=dict(os.environ, OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 1) // ranks))),
    )
    return time.perf_counter() - start


def append_cost(folder: Path, fsync: bool, count: int = 2000) -> float:
    record = {
        "index": 0,
        "label": 3,
        "prediction": 3,
        "correct": True,
        "radius_renyi": 0.41,
        "radius_tight": 0.5,
        "radius_pixeldp": 0.01,
        "p1_lower": 0.99,
        "p2_upper": 0.003,
        "order": 1.4,
        "counts": [0] * 9 + [10000],
        "n0": 100,
        "n": 10000,
        "seconds": 0.1,
    }
    path = folder / f"append-{fsync}.jsonl"
    with RecordWriter(path, fsync=fsync) as writer:
        start = time.perf_counter()
        for i in range(count):
            writer.write(dict(record, index=i))
        return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=96)
    parser.add_argument("--samples", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder_path = Path(folder)
        torch.manual_seed(0)
        checkpoint = folder_path / "mlp.pt"
        save_checkpoint(checkpoint, DigitsMLP(), {"model": "mlp", "input_shape": [1, 8, 8], "num_classes": 10})
        for ranks in (1, 2):  # warm torch.compile's on-disk caches, so that neither timed run pays for compiling
            run(ranks, checkpoint, folder_path / f"warm{ranks}.jsonl", 64, args.samples)
        seconds = {
            ranks: run(ranks, checkpoint, folder_path / f"r{ranks}.jsonl", args.inputs, args.samples)
            for ranks in (1, 2)
        }
        same = [json.loads(a) | {"seconds": 0} for a in (folder_path / "r1.jsonl").read_text().splitlines()] == [
            json.loads(b) | {"seconds": 0} for b in (folder_path / "r2.jsonl").read_text().splitlines()
        ]
        with_fsync, without = append_cost(folder_path, True), append_cost(folder_path, False)
    per_input = seconds[1] / args.inputs
    row = {
        "inputs": args.inputs,
        "samples": args.samples,
        "cores": os.cpu_count(),
        "ranks1_inputs_per_s": round(args.inputs / seconds[1], 2),
        "ranks2_inputs_per_s": round(args.inputs / seconds[2], 2),
        "speedup_2_over_1": round(seconds[1] / seconds[2], 3),
        "records_identical": same,
        "append_fsync_us": round(with_fsync * 1e6, 1),
        "append_no_fsync_us": round(without * 1e6, 1),
        "fsync_overhead_share_of_one_input": round((with_fsync - without) / per_input, 5),
    }
    print(f"{'ranks':<6}{'inputs/s':>10}")
    print(f"{1:<6}{row['ranks1_inputs_per_s']:>10}")
    print(f"{2:<6}{row['ranks2_inputs_per_s']:>10}   speedup {row['speedup_2_over_1']}x, records identical: {same}")
    print(
        f"append one record: {row['append_fsync_us']} us with fsync, {row['append_no_fsync_us']} us without "
        f"({row['fsync_overhead_share_of_one_input']:.3%} of certifying one input)"
    )
    print(json.dumps({"benchmark": "scaling", "torch": torch.__version__, **row}))


if __name__ == "__main__":
    main()
