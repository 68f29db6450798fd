"""The native build never hangs: a killed build leaves nothing that blocks, a live one is waited for with a message and a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from renyicert._engine import native

_RUN = textwrap.dedent(
    """
    import torch, renyicert
    from renyicert._engine.native import native_ops
    print("native" if native_ops() is not None else "eager")
    model = torch.nn.Linear(4, 3)
    certificate = renyicert.Smoothed(model, "gaussian", 3, scale=0.5, progress=False).certify(torch.rand(4), n0=10, n=50)
    assert sum(certificate.counts) == 50
    print("certified")
    """
)


def _environment(folder: Path, **extra: str) -> dict[str, str]:
    # torch's own cache is pointed at the same folder, so that a build in either place is a build in this test's folder
    return {
        **os.environ,
        "RENYICERT_NATIVE_DIR": str(folder),
        "TORCH_EXTENSIONS_DIR": str(folder),
        "RENYICERT_NATIVE": "1",
        **extra,
    }


def _library_folder(root: Path) -> Path:
    return root / native._library_name(native.native_build_flags())


def test_a_build_killed_half_way_does_not_block_the_next_process(tmp_path: Path) -> None:
    """SIGKILL a process while it builds (torch's plain ``lock`` file is then left behind): the next process builds and certifies within 240 s."""
    if native.native_ops() is None:
        pytest.skip("no C++ compiler: the native kernels cannot be built")
    name = _library_folder(
        tmp_path
    ).name  # torch's own build folder has the same name, under TORCH_EXTENSIONS_DIR/<python and cpu>/

    def leftovers() -> list[Path]:
        return list(tmp_path.rglob(f"{name}/lock"))

    builder = subprocess.Popen(
        [sys.executable, "-c", _RUN],
        env=_environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not leftovers() and builder.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(builder.pid, signal.SIGKILL)  # the compiler too
    builder.wait()
    if not leftovers():
        pytest.skip("the build finished before it could be killed")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", _RUN], env=_environment(tmp_path), capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["native", "certified"], (result.stdout, result.stderr[-2000:])
    assert time.monotonic() - started < 240
    assert not leftovers()


def test_a_live_build_is_waited_for_with_a_message_then_certification_goes_on_without_the_kernels(
    tmp_path: Path,
) -> None:
    from filelock import FileLock

    folder = _library_folder(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    lock = FileLock(str(folder) + ".lock")
    lock.acquire()
    Path(str(folder) + ".lock.holder").write_text("pid 4242, since 2026-01-01 00:00:00\n")
    try:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-W", "always", "-c", _RUN],
            env=_environment(tmp_path, RENYICERT_NATIVE_TIMEOUT="2"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        elapsed = time.monotonic() - started
    finally:
        lock.release()
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["eager", "certified"]
    assert "another process (pid 4242, since 2026-01-01 00:00:00) is building the native CPU kernels" in result.stderr
    assert "waiting at most 2 s" in result.stderr
    assert "not using the native CPU kernels" in result.stderr and "RENYICERT_NATIVE=0" in result.stderr
    assert elapsed < 60


@pytest.mark.parametrize("text", ["-1", "soon", "inf", "nan"])
def test_a_bad_build_timeout_is_named(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RENYICERT_NATIVE_TIMEOUT", text)
    with pytest.raises(ValueError, match=f"RENYICERT_NATIVE_TIMEOUT must be a number of seconds >= 0, got '{text}'"):
        native._build_timeout()


def test_the_build_timeout_defaults_and_reads_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RENYICERT_NATIVE_TIMEOUT", raising=False)
    assert native._build_timeout() == native.DEFAULT_BUILD_TIMEOUT == 300.0
    monkeypatch.setenv("RENYICERT_NATIVE_TIMEOUT", "0")
    assert native._build_timeout() == 0.0


def test_the_locked_build_removes_torchs_leftover_lock_and_releases(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "lock").write_text("")
    seen = []
    assert native._locked_build(folder, lambda: seen.append((folder / "lock").exists()) or "built") == "built"
    assert seen == [False]
    assert not Path(str(folder) + ".lock.holder").exists()
    from filelock import FileLock

    FileLock(str(folder) + ".lock").acquire(timeout=0)  # released: free at once
