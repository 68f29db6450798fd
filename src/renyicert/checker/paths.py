"""The noise paths certification can draw through, each as a draw function the sampler checks test.

:class:`renyicert.Smoothed` never calls ``sample()`` for a mechanism with elementwise
noise: it draws through the fused sampler (``fused_noise`` or
``_transform_uniform``) on the native C++ kernel, the Triton kernel, a compiled or an
eager torch loop.  A checker that tests only ``sample()`` would let a plugin certify
with noise nobody checked, so the sampler checks draw through every path listed
here, from the engine's own entry point (:meth:`renyicert._engine.engine.VoteEngine.draw_copies`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._engine.engine import VoteEngine
from .._engine.native import native_ops
from .._engine.sampler import fused_noise_kind

__all__ = ["NoisePath", "noise_paths"]


@dataclass(frozen=True)
class NoisePath:
    """One way noise reaches a model: ``draw(count, coordinates, seed)`` gives ``(count, coordinates)`` float64 noise."""

    name: str
    draw: Callable[[int, int, int], NDArray[np.float64]]
    #: Noise values the path can afford in a check (the Triton interpreter runs about 100 programs of 1024 values a second).
    max_values: int | None = None

    def sample_count(self, count: int, coordinates: int) -> int:
        """The rows of ``coordinates`` values to draw on this path when a check wants ``count``."""
        if self.max_values is None:
            return count
        return max(1, min(count, self.max_values // coordinates))


def _sample_draw(mechanism: Any, device: str = "cpu") -> Callable[[int, int, int], NDArray[np.float64]]:
    import torch

    def draw(count: int, coordinates: int, seed: int) -> NDArray[np.float64]:
        noise = mechanism.sample((count, coordinates), seed=seed, dtype=torch.float64, device=device)
        if not isinstance(noise, torch.Tensor) or tuple(noise.shape) != (count, coordinates):
            raise ValueError(
                f"sample(({count}, {coordinates})) returned {tuple(getattr(noise, 'shape', ()))}, expected ({count}, {coordinates})"
            )
        return noise.cpu().numpy()

    return draw


def _engine_draw(mechanism: Any, backend: str, device: str = "cpu") -> Callable[[int, int, int], NDArray[np.float64]]:
    """Copies of a zero input through a vote engine on ``backend``: the noise itself, as certify adds it (float32)."""
    import torch

    def draw(count: int, coordinates: int, seed: int) -> NDArray[np.float64]:
        engine = VoteEngine(torch.nn.Identity(), mechanism, 1, backend=backend)
        x = torch.zeros((1, coordinates), dtype=torch.float32, device=device)
        return engine.draw_copies(x, seed, count).double().cpu().numpy()

    return draw


_TRITON_SCRIPT = """
import os, sys
os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
import numpy as np, torch
from renyicert._engine.sampler import FusedSampler

class Noise:  # the Triton kernel reads only the kind and the scale of a mechanism
    fused_noise, scale = sys.argv[1], float(sys.argv[2])

count, coordinates, seed = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
out = FusedSampler(Noise(), backend="triton").noisy(
    torch.zeros(1, coordinates), torch.zeros(count, dtype=torch.int64), torch.arange(count), torch.tensor([seed]))
np.save(sys.argv[6], out.double().numpy())
"""


def _triton_interpreted_draw(kind: str, scale: float) -> Callable[[int, int, int], NDArray[np.float64]]:
    """The Triton kernel under ``TRITON_INTERPRET=1`` in a fresh interpreter (triton reads the setting at import)."""

    def draw(count: int, coordinates: int, seed: int) -> NDArray[np.float64]:
        values = count * coordinates
        width = 1024  # one program per row of 1024 values
        rows = -(-values // width)
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "noise.npy"
            env = dict(os.environ, TRITON_INTERPRET="1")
            arguments = [kind, repr(float(scale)), str(rows), str(width), str(seed), str(target)]
            result = subprocess.run(
                [sys.executable, "-c", _TRITON_SCRIPT, *arguments], env=env, capture_output=True, text=True, timeout=600
            )
            if result.returncode != 0:
                raise RuntimeError(
                    f"the Triton kernel under TRITON_INTERPRET=1 failed: {result.stderr.strip().splitlines()[-1:]}"
                )
            return np.load(target).reshape(-1)[:values].reshape(count, coordinates)

    return draw


def noise_paths(mechanism: Any, include_interpreted_triton: bool = True) -> tuple[list[NoisePath], list[str]]:
    """The paths this machine can draw ``mechanism``'s noise through, and a note for each one not drawn.

    ``sample()`` comes first (training uses it, and certify uses it for a mechanism
    without elementwise noise); then every fused path certify can take.  The
    Triton kernel runs on CUDA when there is a GPU, else under ``TRITON_INTERPRET=1``
    in a fresh interpreter (a few seconds; left out with ``include_interpreted_triton=False``).
    """
    import torch

    paths = [NoisePath("sample()", _sample_draw(mechanism))]
    notes: list[str] = []
    kind = fused_noise_kind(mechanism)
    if kind is None:
        paths[0] = NoisePath("sample() (certify's path: no elementwise noise)", _engine_draw(mechanism, "auto"))
        if torch.cuda.is_available():
            paths.append(NoisePath("sample() on CUDA", _engine_draw(mechanism, "auto", "cuda")))
        return paths, notes
    label = "fused " + (f"'{kind}'" if kind != "uniform" else "_transform_uniform")
    paths.append(NoisePath(f"{label}, eager torch", _engine_draw(mechanism, "eager")))
    if kind in ("normal", "laplace"):
        if native_ops() is not None:
            paths.append(NoisePath(f"{label}, native C++ (certify's CPU path)", _engine_draw(mechanism, "auto")))
        else:
            notes.append(
                "native C++ path not drawn: the kernels could not be built here (certify then uses the compiled or eager path)"
            )
        if torch.cuda.is_available():
            paths.append(NoisePath(f"{label}, Triton on CUDA", _engine_draw(mechanism, "triton", "cuda")))
        elif not include_interpreted_triton:
            notes.append("Triton path not drawn in quick mode (no GPU: it runs under TRITON_INTERPRET=1 in full mode)")
        elif triton_importable():
            paths.append(
                NoisePath(
                    f"{label}, Triton (TRITON_INTERPRET=1)",
                    _triton_interpreted_draw(kind, float(mechanism.scale)),
                    max_values=65_536,
                )
            )
        else:
            notes.append("Triton path not drawn: triton is not installed (certify uses it on CUDA only)")
    notes.append(
        "compiled path not drawn: torch.compile of the eager path's ops (the test suite compares the two bit for bit)"
    )
    return paths, notes


def triton_importable() -> bool:
    import importlib.util

    return importlib.util.find_spec("triton") is not None
