"""The fused sampler: the same noise on every path, independent of packing, with the right law."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from scipy import stats

import renyicert
from renyicert._engine.native import native_ops
from renyicert._engine.sampler import FusedSampler, noisy_rows_reference


def _rows(inputs: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(inputs).repeat_interleave(samples), torch.arange(samples).repeat(inputs)


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_compiled_and_eager_paths_draw_the_same_noise(name: str) -> None:
    mechanism = renyicert.get_mechanism(name, scale=0.7)
    x = torch.rand(3, 1, 5, 7)
    row_input, row_sample = _rows(3, 8)
    seeds = torch.tensor([5, 6, 2**62 + 3])
    eager = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
    compiled = FusedSampler(mechanism, backend="compiled").noisy(x, row_input, row_sample, seeds)
    assert torch.allclose(eager, compiled, atol=2e-6)


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
@pytest.mark.parametrize("numel", [1, 5, 64, 3071, 2 * 1024 + 3])
def test_native_and_eager_paths_draw_the_same_noise(name: str, numel: int) -> None:
    """The C++ kernel: partial groups of four, several tiles, offsets past 2**32 and 64-bit seeds."""
    mechanism = renyicert.get_mechanism(name, scale=0.7)
    generator = torch.Generator().manual_seed(numel)
    x = torch.rand(3, numel, generator=generator)
    row_input = torch.randint(0, 3, (40,), generator=generator)
    row_sample = torch.randint(0, 2**40, (40,), generator=generator)
    seeds = torch.tensor([5, 2**40 + 6, 2**62 + 3])
    eager = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
    native = FusedSampler(mechanism, backend="native").noisy(x, row_input, row_sample, seeds)
    assert torch.allclose(eager, native, atol=2e-6)


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
@pytest.mark.parametrize("numel", [12, 64, 1040])
@pytest.mark.parametrize("order", ["input-major", "shared, sample-major", "shared, input-major"])
def test_native_counter_streams_and_shared_draws_match_the_reference(name: str, numel: int, order: str) -> None:
    """Runs of consecutive samples are drawn as one counter stream; rows sharing a draw compute it once."""
    mechanism = renyicert.get_mechanism(name, scale=0.4)
    x = torch.rand(3, numel, generator=torch.Generator().manual_seed(numel))
    samples = torch.arange(40) + 2**33  # offsets above 2**32: the stream crosses into the counter's high word
    if order == "input-major":
        row_input, row_sample, seeds = torch.arange(3).repeat_interleave(40), samples.repeat(3), torch.tensor([7, 8, 9])
    elif order == "shared, sample-major":
        row_input, row_sample, seeds = torch.arange(3).repeat(40), samples.repeat_interleave(3), torch.tensor([7, 7, 7])
    else:
        row_input, row_sample, seeds = torch.arange(3).repeat_interleave(40), samples.repeat(3), torch.tensor([7, 7, 7])
    eager = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
    native = FusedSampler(mechanism, backend="native").noisy(x, row_input, row_sample, seeds)
    assert torch.allclose(eager, native, atol=2e-6)
    if order.startswith("shared"):
        noise = native - x[row_input]
        assert torch.allclose(noise[row_input == 0], noise[row_input == 2], atol=2e-6)


_PORTABLE_NATIVE_CHECK = textwrap.dedent(
    """
    import sys, torch, renyicert, renyicert._engine.native as native
    assert [f for f in native.native_build_flags() if f.startswith("-DCPU_CAPABILITY")] == sys.argv[1:], native.native_build_flags()
    ops = native.native_ops()
    assert ops is not None
    from renyicert._engine.sampler import FusedSampler
    g = torch.Generator().manual_seed(0)
    for name in ("gaussian", "laplace"):
        mechanism = renyicert.get_mechanism(name, scale=0.7)
        for numel in (5, 64, 1040):
            x = torch.rand(3, numel, generator=g)
            cases = [(torch.randint(0, 3, (40,), generator=g), torch.randint(0, 2**40, (40,), generator=g), torch.tensor([5, 2**40 + 6, 2**62 + 3])),
                     (torch.arange(3).repeat(40), (torch.arange(40) + 2**32 - 3).repeat_interleave(3), torch.tensor([7, 7, 7]))]
            for row_input, row_sample, seeds in cases:
                eager = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
                assert torch.allclose(eager, FusedSampler(mechanism, backend="native").noisy(x, row_input, row_sample, seeds), atol=2e-6)
    from renyicert._engine.lattice_sampler import LatticeSampler
    from renyicert.lattice import lattice_noise
    for name, scale, grid, tail in (("gaussian", 0.25, 255, 2.0**-66), ("laplace", 0.5, 16, 0.02)):  # 2% tails: failed rows, wide buckets
        noise = lattice_noise(renyicert.get_mechanism(name, scale=scale), grid, tail=tail)
        for numel in (5, 64, 1040):
            x = torch.randint(0, grid + 1, (3, numel), generator=g).float() / grid
            row_input, row_sample, seeds = torch.randint(0, 3, (200,), generator=g), torch.randint(0, 2**40, (200,), generator=g), torch.tensor([5, 2**40 + 6, 2**62 + 3])
            copies = {}
            for path in ("eager", "native"):
                out = torch.empty(200, numel)
                writer = LatticeSampler(noise, backend=path).bind(out, x, seeds)
                writer(row_input, row_sample)
                copies[path] = (out, writer.failed.clone())
            assert torch.equal(copies["eager"][0], copies["native"][0]) and torch.equal(copies["eager"][1], copies["native"][1]), (name, numel)
            assert tail < 0.01 or int(copies["native"][1].sum()) > 0, (name, numel)
    for classes, dtype in ((1, torch.float32), (10, torch.float32), (37, torch.float32), (10, torch.float64)):
        logits = torch.randint(-2, 3, (1003, classes), generator=g).to(dtype)  # many ties: the first class wins
        row_input = torch.randint(0, 4, (1003,), generator=g)
        counts, expected = torch.zeros(4 * classes, dtype=torch.int64), torch.zeros(4 * classes, dtype=torch.int64)
        assert ops.count_votes(logits, row_input, counts, 1001)
        expected.index_add_(0, row_input[:1001] * classes + logits[:1001].argmax(1), torch.ones(1001, dtype=torch.int64))
        assert torch.equal(counts, expected), classes
    print("ok")
    """
)


def test_native_kernels_at_avx2_and_without_simd_match_the_reference() -> None:
    """The AVX2 and the portable (no SIMD) builds of the C++ kernels, chosen as torch's are by ATEN_CPU_CAPABILITY,
    each in its own process, against the eager sampler and torch's argmax."""
    if native_ops() is None:
        pytest.skip("no C++ compiler: the native kernels cannot be built")
    builds = {"avx2": ["-DCPU_CAPABILITY_AVX2"], "default": []}
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        del builds["avx2"]
    processes = {
        level: subprocess.Popen(
            [sys.executable, "-c", _PORTABLE_NATIVE_CHECK, *define],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "ATEN_CPU_CAPABILITY": level},
        )
        for level, define in builds.items()
    }
    for level, process in processes.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0 and out.strip() == "ok", (level, err[-3000:])


def test_auto_backend_uses_the_native_kernel_for_float32_on_the_cpu_only() -> None:
    gaussian = FusedSampler(renyicert.get_mechanism("gaussian", scale=0.5))
    x32, x64 = torch.rand(2, 6), torch.rand(2, 6, dtype=torch.float64)
    assert gaussian.path(torch.empty(3, 6), x32) == "native"
    assert gaussian.path(torch.empty(3, 6, dtype=torch.float64), x64) == "compiled"
    with pytest.raises(ValueError, match="native path writes float32 normal or Laplace noise.*float64"):
        FusedSampler(gaussian.mechanism, backend="native").noisy(
            x64, torch.tensor([0]), torch.tensor([0]), torch.tensor([1])
        )


def test_without_a_compiler_the_sampler_falls_back_and_says_so(tmp_path: object) -> None:
    """No C++ compiler: the native build and torch.compile both fail, each warns once, and the eager path draws the same noise."""
    script = textwrap.dedent(
        """
        import warnings, torch, renyicert
        from renyicert._engine.sampler import FusedSampler
        mechanism = renyicert.get_mechanism("laplace", scale=0.5)
        x, rows, seeds = torch.rand(2, 9), (torch.tensor([0, 1, 1]), torch.tensor([0, 0, 7])), torch.tensor([3, 4])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = FusedSampler(mechanism).noisy(x, *rows, seeds)
            again = FusedSampler(mechanism).noisy(x, *rows, seeds)
        expected = FusedSampler(mechanism, backend="eager").noisy(x, *rows, seeds)
        assert torch.equal(out, again) and torch.allclose(out, expected, atol=2e-6)
        model = torch.nn.Linear(9, 3)  # certification runs its generic batch loop, with torch counting the votes
        certificates = [renyicert.Smoothed(model, mechanism, 3, backend=b, progress=False).certify(x, n0=10, n=60, seed=1) for b in ("auto", "eager")]
        assert [c.counts for c in certificates[0]] == [c.counts for c in certificates[1]] and sum(certificates[0][0].counts) == 60
        messages = [str(w.message) for w in caught if "renyicert:" in str(w.message)]
        print("|".join(messages))
        """
    )
    environment = {
        **os.environ,
        "CXX": "/nonexistent/c++",
        "CC": "/nonexistent/cc",
        "RENYICERT_NATIVE_DIR": str(tmp_path) + "/ext",
    }
    environment["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path) + "/inductor"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    messages = result.stdout.strip().split("|")
    assert sum("could not build the native CPU kernels" in m for m in messages) == 1, messages
    assert sum("torch.compile of the fused sampler failed" in m for m in messages) == 1, messages


@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_noise_does_not_depend_on_packing(name: str) -> None:
    mechanism = renyicert.get_mechanism(name, scale=0.3)
    x = torch.rand(4, 10)
    row_input, row_sample = _rows(4, 6)
    seeds = torch.tensor([1, 2, 3, 4])
    sampler = FusedSampler(mechanism, backend="eager")
    together = sampler.noisy(x, row_input, row_sample, seeds)
    shuffled = torch.randperm(row_input.shape[0])
    apart = sampler.noisy(x, row_input[shuffled], row_sample[shuffled], seeds)
    assert torch.equal(together[shuffled], apart)
    alone = sampler.noisy(x[2:3], torch.zeros(6, dtype=torch.int64), torch.arange(6), seeds[2:3])
    assert torch.equal(alone, together[12:18])


@pytest.mark.parametrize("backend", ["compiled", "native"])
@pytest.mark.parametrize("name,law", [("gaussian", stats.norm(scale=0.5)), ("laplace", stats.laplace(scale=0.5))])
def test_fused_noise_has_the_mechanism_law(name: str, law: object, backend: str) -> None:
    if backend == "native" and native_ops() is None:
        pytest.skip("no C++ compiler: the native kernels cannot be built")
    mechanism = renyicert.get_mechanism(name, scale=0.5)
    x = torch.zeros(1, 50_001)  # odd size: the last group of four is partial
    noise = FusedSampler(mechanism, backend=backend).noisy(
        x, torch.zeros(4, dtype=torch.int64), torch.arange(4), torch.tensor([99])
    )
    values = noise.double().numpy()
    assert stats.kstest(values.ravel(), law.cdf).pvalue > 1e-4  # type: ignore[attr-defined]
    lanes = values[:, :50_000].reshape(-1, 4)
    corr = np.corrcoef(lanes, rowvar=False)[np.triu_indices(4, 1)]
    assert np.abs(corr).max() < 5 / np.sqrt(lanes.shape[0])  # the four lanes of one Philox call are independent
    assert np.isfinite(values).all()


def test_mechanism_without_elementwise_noise_is_rejected_by_the_fused_sampler() -> None:
    from ..bad_mechanisms import NoDensityGaussian

    class Plain(NoDensityGaussian):
        fused_noise = None

    with pytest.raises(ValueError, match="no elementwise noise"):
        FusedSampler(Plain(1.0))
    with pytest.raises(ValueError, match="backend must be"):
        FusedSampler(renyicert.get_mechanism("gaussian", scale=1.0), backend="cuda")


TRITON_SCRIPT = textwrap.dedent(
    """
    import os, sys
    os.environ["TRITON_INTERPRET"] = "1"   # before triton is imported
    import torch, triton, triton.language as tl
    from scipy import stats
    import renyicert
    from renyicert._engine.philox import randint4x
    from renyicert._engine.sampler import FusedSampler

    @triton.jit
    def bits(out_ptr, seed, start, n, BLOCK: tl.constexpr):
        i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        a, b, c, d = tl.randint4x(seed, i.to(tl.int64) + start)
        m = i < n
        tl.store(out_ptr + 4 * i, a.to(tl.int64) & 0xFFFFFFFF, mask=m)
        tl.store(out_ptr + 4 * i + 1, b.to(tl.int64) & 0xFFFFFFFF, mask=m)
        tl.store(out_ptr + 4 * i + 2, c.to(tl.int64) & 0xFFFFFFFF, mask=m)
        tl.store(out_ptr + 4 * i + 3, d.to(tl.int64) & 0xFFFFFFFF, mask=m)

    n, seed, start = 777, 2**40 + 12345, 2**32 - 100   # offsets cross 2**32
    out = torch.zeros(4 * n, dtype=torch.int64)
    bits[(triton.cdiv(n, 128),)](out, seed, start, n, BLOCK=128)
    ours = torch.stack(randint4x(torch.tensor(seed), torch.arange(n) + start), 1).reshape(-1)
    assert torch.equal(ours, out), "torch Philox differs from tl.randint4x"
    compiled = torch.compile(lambda s, o: torch.stack(randint4x(s, o), 1).reshape(-1))
    assert torch.equal(compiled(torch.tensor(seed), torch.arange(n) + start), out), "compiled Philox differs"

    for name in ("gaussian", "laplace"):
        mechanism = renyicert.get_mechanism(name, scale=0.5)
        x = torch.rand(3, 2, 3, 7)   # 42 elements: a partial last group of four
        row_input = torch.tensor([0, 2, 1, 2, 0])
        row_sample = torch.tensor([0, 9, 3, 2**33, 1])
        seeds = torch.tensor([3, 4, 2**50])
        triton_out = FusedSampler(mechanism, backend="triton").noisy(x, row_input, row_sample, seeds)
        eager_out = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
        assert torch.allclose(triton_out, eager_out, atol=2e-6), (name, (triton_out - eager_out).abs().max())
        assert torch.equal(triton_out[1] - x[2], FusedSampler(mechanism, backend="triton").noisy(x[2:], torch.tensor([0]), torch.tensor([9]), seeds[2:])[0] - x[2])
        # The law of the kernel's own output: 2 rows x 20,001 noise values (a partial last group).
        noise = FusedSampler(mechanism, backend="triton").noisy(torch.zeros(1, 20_001), torch.tensor([0, 0]), torch.tensor([0, 1]), torch.tensor([5]))
        law = stats.norm(scale=0.5) if name == "gaussian" else stats.laplace(scale=0.5)
        assert stats.kstest(noise.double().numpy().ravel(), law.cdf).pvalue > 1e-4, name
    print("ok")
    """
)


def test_triton_kernel_under_the_interpreter_matches_the_torch_sampler() -> None:
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1")
    result = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stdout + result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("name", ["gaussian", "laplace"])
def test_triton_on_cuda_matches_the_cpu_sampler(name: str) -> None:
    mechanism = renyicert.get_mechanism(name, scale=0.5)
    x = torch.rand(2, 3, 8, 8)
    row_input, row_sample = _rows(2, 16)
    seeds = torch.tensor([10, 11])
    cpu = FusedSampler(mechanism, backend="eager").noisy(x, row_input, row_sample, seeds)
    gpu = FusedSampler(mechanism).noisy(x.cuda(), row_input.cuda(), row_sample.cuda(), seeds.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)


def test_reference_matches_the_documented_counter_layout() -> None:
    from renyicert._engine.philox import randint4x

    x = torch.zeros(1, 9)  # 3 groups of four
    out = noisy_rows_reference(x, torch.tensor([0]), torch.tensor([2]), torch.tensor([77]), "laplace", 1.0)
    bits = randint4x(torch.tensor(77), torch.tensor(2 * 3 + 1))  # element 5 = group 1, lane 1 of sample 2
    a = int(bits[1])
    magnitude = -np.log((np.float32(a >> 1) + np.float32(0.5)) * np.float32(2.0**-31))
    assert float(out[0, 5]) == pytest.approx(-magnitude if a & 1 else magnitude, rel=1e-6)


def test_compiled_sampler_reuses_its_graph_across_scales_without_falling_back() -> None:
    import warnings

    x = torch.rand(2, 5)
    rows = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    seeds = torch.tensor([3, 4])
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="renyicert:")  # a fallback to the eager sampler warns
        for scale in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.1):
            mechanism = renyicert.get_mechanism("gaussian", scale=scale)
            compiled = FusedSampler(mechanism, backend="compiled").noisy(x, *rows, seeds)
            eager = FusedSampler(mechanism, backend="eager").noisy(x, *rows, seeds)
            assert torch.allclose(compiled, eager, atol=2e-6), scale


def test_compiled_sampler_does_not_recompile_after_its_probe() -> None:
    import torch._dynamo

    mechanism = renyicert.get_mechanism("laplace", scale=0.3)
    sampler = FusedSampler(mechanism, backend="compiled")
    x, out = torch.rand(2, 6), torch.empty(5, 6)
    rows = torch.tensor([0, 0, 1, 1, 1]), torch.tensor([0, 1, 0, 1, 2])
    sampler.write(out, x, *rows, torch.tensor([1, 2]))  # compiles this shape (the probe)
    with torch._dynamo.config.patch(error_on_recompile=True):
        for seed in range(3):
            sampler.write(out, x, *rows, torch.tensor([seed, seed + 1]))
    assert sampler._compiled and all(function is not None for function in sampler._compiled.values())
