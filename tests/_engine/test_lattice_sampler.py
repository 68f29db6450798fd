"""The lattice sampler: every path draws the same atoms for the same key, the documented layout, failures routed out of the votes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import renyicert
from renyicert._engine.engine import VoteEngine, noise_keys
from renyicert._engine.lattice_sampler import LatticeSampler, lattice_rows_reference
from renyicert._engine.native import native_ops
from renyicert._engine.philox import randint4x
from renyicert.lattice import lattice_noise

PATHS = ["eager", "compiled"] + (["native"] if native_ops() is not None else [])


def _rows() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.tensor([0, 2, 1, 2, 0, 1]), torch.tensor([0, 9, 3, 2**33, 1, 5]), torch.tensor([3, 4, 2**50])


@pytest.mark.parametrize("name,scale,grid", [("gaussian", 0.25, 16), ("laplace", 0.5, 255)])
def test_every_path_writes_the_documented_atoms(name: str, scale: float, grid: int) -> None:
    noise = lattice_noise(renyicert.get_mechanism(name, scale=scale), grid)
    x = torch.randint(0, grid + 1, (3, 37), generator=torch.Generator().manual_seed(0)).float() / grid
    row_input, row_sample, seeds = _rows()
    # The definition: element e of sample s takes U = (w[2(e%2)] << 32) | w[2(e%2)+1] of counter s ceil(numel/2) + e//2.
    groups = 19
    offsets = row_sample[:, None] * groups + torch.arange(groups)[None]
    w = [t.numpy().astype(np.uint64) for t in randint4x(seeds[row_input][:, None], offsets)]
    high = np.stack([w[0], w[2]], -1).reshape(6, -1)[:, :37]
    low = np.stack([w[1], w[3]], -1).reshape(6, -1)[:, :37]
    atoms, failed = noise.draw((high << np.uint64(32)) | low)
    k = np.rint(x.numpy() * grid).astype(np.int64)[row_input.numpy()]
    expected = (k + atoms).astype(np.float32) / np.float32(grid)
    for path in PATHS:
        out = torch.empty(6, 37)
        writer = LatticeSampler(noise, backend=path).bind(out, x, seeds)
        writer(row_input, row_sample)
        assert np.array_equal(out.numpy(), expected), path
        assert writer.failed.tolist() == failed.any(axis=1).astype(int).tolist(), path


def test_draws_in_the_buckets_of_many_atoms_and_of_one_edge_match_on_every_path() -> None:
    """The C++ search has three cases per bucket: none of the thresholds inside (almost every draw), a few (at an
    atom's edge) and many (the far tails, where it bisects). Draws picked from the Philox stream to land in the rare
    two, 16 values per row so that the SIMD lanes, not only the scalar rest, meet them."""
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 255)
    width = np.diff(np.append(noise.guide, len(noise.ends)))
    seed, numel = 11, 16
    offsets = torch.arange(1 << 19)
    w = [t.numpy().astype(np.uint64) for t in randint4x(torch.tensor(seed), offsets)]
    u = (w[0] << np.uint64(32)) | w[1]  # element 0 of a row whose counters start at the offset
    bucket_width = width[(u >> np.uint64(48)).astype(np.int64)]
    many = np.flatnonzero(bucket_width > 4)
    edge = np.flatnonzero((bucket_width >= 1) & (bucket_width <= 4))[:64]
    assert len(many) >= 2 and len(edge) == 64
    groups = numel // 2  # a row of sample s starts at counter s * groups: choose s so that it starts at the offset
    starts = np.concatenate([many, edge])
    starts = starts[starts % groups == 0] // groups
    assert len(starts) >= 8
    x = torch.randint(0, 256, (1, numel), generator=torch.Generator().manual_seed(1)).float() / 255
    row_sample = torch.from_numpy(starts)
    row_input = torch.zeros_like(row_sample)
    results = {}
    for path in PATHS:
        out = torch.empty(len(starts), numel)
        writer = LatticeSampler(noise, backend=path).bind(out, x, torch.tensor([seed]))
        writer(row_input, row_sample)
        results[path] = (out, writer.failed.clone())
    for path in PATHS:
        assert torch.equal(results[path][0], results["eager"][0]) and torch.equal(
            results[path][1], results["eager"][1]
        ), path


def test_failures_flag_the_same_rows_on_every_path() -> None:
    noise = lattice_noise(
        renyicert.get_mechanism("gaussian", scale=0.25), 16, tail=0.02
    )  # tails of 2%: failures on purpose
    x = torch.full((1, 5), 0.5)
    row_input, row_sample = torch.zeros(300, dtype=torch.int64), torch.arange(300)
    flags = {}
    for path in PATHS:
        out = torch.empty(300, 5)
        writer = LatticeSampler(noise, backend=path).bind(out, x, torch.tensor([1]))
        writer(row_input, row_sample)
        flags[path] = writer.failed.clone()
    reference = lattice_rows_reference(
        torch.full((1, 5), 8),
        row_input,
        row_sample,
        torch.tensor([1]),
        torch.from_numpy(noise.ends),
        noise.start,
        noise.lowest,
        16,
        torch.float32,
    )[1]
    assert 10 < int(reference.sum()) < 60  # 1 - 0.96^5 of 300
    for path, flag in flags.items():
        assert torch.equal(flag, reference), path


class _FirstCoordinateSign(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = x[:, :1] - 0.5
        return torch.cat([v, -v, torch.zeros_like(v)], dim=1)


@pytest.mark.parametrize("path", PATHS)
def test_failed_copies_leave_the_votes_for_the_failure_column(path: str) -> None:
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 16, tail=0.01)
    engine = VoteEngine(_FirstCoordinateSign(), noise.mechanism, 3, backend=path, lattice=noise)
    x = torch.full((2, 5), 0.5)
    keys = noise_keys(2, 3, None)
    selection, estimation = engine.count_votes(x, keys, [10, 300], batch_size=64)
    assert estimation.shape == (2, 4) and (estimation.sum(axis=1) == 300).all()
    k = torch.full((2, 5), 8)
    row_input, row_sample = torch.repeat_interleave(torch.arange(2), 300), torch.arange(300).repeat(2) + 10
    _, failed = lattice_rows_reference(
        k, row_input, row_sample, keys, torch.from_numpy(noise.ends), noise.start, noise.lowest, 16, torch.float32
    )
    assert estimation[:, 3].tolist() == failed.view(2, 300).sum(dim=1).tolist()
    assert estimation[:, 3].min() > 0


def test_counts_do_not_depend_on_batch_size_packing_or_shared_noise_in_lattice_mode() -> None:
    model = torch.nn.Linear(6, 3)
    smoothed = renyicert.Smoothed(model, "laplace", 3, scale=0.3, grid=255, progress=False, backend="eager")
    x = torch.randint(0, 256, (3, 6), generator=torch.Generator().manual_seed(1)).float() / 255
    together = smoothed.class_counts(x, 500, seed=7, batch_size=64)
    for i in range(3):
        assert (smoothed.class_counts(x[i], 500, seed=7 + i, batch_size=1000) == together[i]).all()
    shared = smoothed.class_counts(x, 500, seed=7, share_noise=True, batch_size=100)
    assert (shared[0] == together[0]).all()
    native = renyicert.Smoothed(model, "laplace", 3, scale=0.3, grid=255, progress=False)
    assert (native.class_counts(x, 500, seed=7, batch_size=77) == together).all()


TRITON_SCRIPT = textwrap.dedent(
    """
    import os
    os.environ["TRITON_INTERPRET"] = "1"
    import torch, renyicert
    from renyicert.lattice import lattice_noise
    from renyicert._engine.lattice_sampler import LatticeSampler
    for name, scale, grid, tail in [("gaussian", 0.25, 16, 2**-66), ("laplace", 0.5, 255, 2**-66), ("gaussian", 0.25, 16, 0.02)]:
        noise = lattice_noise(renyicert.get_mechanism(name, scale=scale), grid, tail=tail)
        x = torch.randint(0, grid + 1, (3, 37)).float() / grid
        rows = torch.tensor([0, 2, 1, 2, 0, 1]), torch.tensor([0, 9, 3, 2**33, 1, 5])
        seeds = torch.tensor([3, 4, 2**50])
        outs = {}
        for path in ("eager", "triton"):
            out = torch.empty(6, 37)
            writer = LatticeSampler(noise, backend=path).bind(out, x, seeds)
            writer(*rows)
            outs[path] = (out, writer.failed.clone())
        assert torch.equal(outs["eager"][0], outs["triton"][0]), name
        assert torch.equal(outs["eager"][1], outs["triton"][1]), name
    print("ok")
    """
)


def test_triton_lattice_kernel_under_the_interpreter_matches_the_eager_path() -> None:
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_triton_lattice_on_cuda_matches_the_cpu_path() -> None:
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.5), 255)
    x = torch.randint(0, 256, (3, 3, 8, 8)).float() / 255
    row_input, row_sample, seeds = _rows()
    cpu = torch.empty(6, 3, 8, 8)
    LatticeSampler(noise, backend="eager").bind(cpu, x, seeds)(row_input, row_sample)
    gpu = torch.empty(6, 3, 8, 8, device="cuda")
    LatticeSampler(noise).bind(gpu, x.cuda(), seeds.cuda())(row_input.cuda(), row_sample.cuda())
    assert torch.equal(cpu, gpu.cpu())


def test_rows_longer_than_a_tile_and_odd_lengths_match_on_every_path() -> None:
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.5), 255)
    x = (
        torch.randint(0, 256, (2, 3, 17, 13), generator=torch.Generator().manual_seed(4)).float() / 255
    )  # 663 values: 332 counters, past one tile of 256
    row_input, row_sample, seeds = torch.tensor([0, 1, 1, 0]), torch.tensor([0, 0, 7, 2**40]), torch.tensor([5, 2**62])
    outs = {}
    for path in PATHS:
        out = torch.empty(4, 3, 17, 13)
        LatticeSampler(noise, backend=path).bind(out, x, seeds)(row_input, row_sample)
        outs[path] = out
    for path, out in outs.items():
        assert torch.equal(out, outs["eager"]), path
    atoms = torch.round(outs["eager"] * 255) - torch.round(x[row_input] * 255)
    assert abs(float(atoms.std()) - 0.5 * 255) < 0.05 * 127.5  # the rounded noise's spread


@pytest.mark.skipif(native_ops() is None, reason="no C++ compiler: the native kernels cannot be built")
def test_the_native_kernel_refuses_a_guide_it_cannot_trust() -> None:
    """The C++ kernel reads ends[guide[b]] .. ends[guide[b + 1] - 1]: a guide of the wrong size, not closed by the
    number of atoms, decreasing or negative would read outside the thresholds, so each is refused by name."""
    noise = lattice_noise(renyicert.get_mechanism("gaussian", scale=0.25), 16)
    ends, guide = LatticeSampler(noise, backend="native").tables(torch.device("cpu"))
    k = torch.zeros(1, 4, dtype=torch.int64)
    args = (torch.zeros(1, dtype=torch.int64), torch.zeros(1, dtype=torch.int64), torch.tensor([3]))

    def run(table: torch.Tensor) -> None:
        native_ops().lattice_rows(
            torch.empty(1, 4), torch.zeros(1, dtype=torch.int32), k, *args, ends, table, noise.start, noise.lowest, 16.0
        )

    run(guide)  # the sampler's own table passes
    with pytest.raises(RuntimeError, match=r"a guide of 2\^16 \+ 1 entries"):
        run(guide[:-1].contiguous())  # the unclosed table of renyicert.lattice
    for position, value in [(-1, len(ends) - 1), (-1, len(ends) + 1), (0, -1), (30000, int(guide[29999]) - 1)]:
        bad = guide.clone()
        bad[position] = value
        with pytest.raises(
            RuntimeError, match="the guide must be non-decreasing entries in \\[0, atoms\\], its last entry atoms"
        ):
            run(bad)
