"""The example third-party plugins under examples/: installed, discovered, checked, used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "renyicert-gaussian-l1"
LINF_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "renyicert-gaussian-linf"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Install the examples into a fresh target directory; the environment that sees them."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-build-isolation",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(EXAMPLE),
            str(LINF_EXAMPLE),
        ],
        check=True,
        capture_output=True,
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")])
    env.pop("RENYICERT_DISABLE_PLUGIN_AUTOLOAD", None)
    return env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=300)


def test_example_plugin_is_discovered(installed_example: dict[str, str]) -> None:
    result = _run(installed_example, "-m", "renyicert.cli", "mechanisms", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    row = next(r for r in rows if r["name"] == "gaussian-l1")
    assert row["norm"] == 1.0 and "renyicert-gaussian-l1" in row["provider"]


def test_example_plugin_passes_renyicert_check(installed_example: dict[str, str]) -> None:
    result = _run(installed_example, "-m", "renyicert.cli", "check", "gaussian-l1", "--quick", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert [c["verdict"] for c in report["checks"]] == ["pass"] * 7


def test_example_plugin_certifies_through_the_solver(installed_example: dict[str, str]) -> None:
    code = (
        "import renyicert; m = renyicert.get_mechanism('gaussian-l1', scale=0.5); "
        "g = renyicert.get_mechanism('gaussian', scale=0.5); "
        "print(float(renyicert.certified_radius(m, 0.9, 0.1).radius), float(renyicert.certified_radius(g, 0.9, 0.1).radius))"
    )
    result = _run(installed_example, "-c", code)
    assert result.returncode == 0, result.stderr
    l1, l2 = map(float, result.stdout.split())
    assert l1 == pytest.approx(l2, rel=1e-12) and l1 > 0.0  # same divergence, so the same radius (now in l1)


def test_example_plugin_own_tests_pass(installed_example: dict[str, str]) -> None:
    result = _run(installed_example, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_linf_example_with_a_parameter_is_discovered_and_passes_at_several_dimensions(
    installed_example: dict[str, str],
) -> None:
    result = _run(installed_example, "-m", "renyicert.cli", "mechanisms", "--json")
    row = next(r for r in json.loads(result.stdout) if r["name"] == "gaussian-linf")
    assert row["norm"] == float("inf") and "renyicert-gaussian-linf" in row["provider"]
    for d in ("1", "4", "64"):
        result = _run(
            installed_example, "-m", "renyicert.cli", "check", "gaussian-linf", "-o", f"d={d}", "--quick", "--json"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert [c["verdict"] for c in report["checks"]] == ["pass"] * 7, result.stdout
        assert f"d = {d}" in report["checks"][1]["method"]


def test_linf_example_radius_on_the_command_line(installed_example: dict[str, str]) -> None:
    argv = [
        "-m",
        "renyicert.cli",
        "radius",
        "--mechanism",
        "gaussian-linf",
        "--scale",
        "0.5",
        "--p1",
        "0.9",
        "--p2",
        "0.1",
        "--json",
    ]
    d64 = json.loads(_run(installed_example, *argv, "-o", "d=64").stdout)
    l2 = json.loads(
        _run(
            installed_example,
            "-m",
            "renyicert.cli",
            "radius",
            "--mechanism",
            "gaussian",
            "--scale",
            "0.5",
            "--p1",
            "0.9",
            "--p2",
            "0.1",
            "--json",
        ).stdout
    )
    assert d64["d"] == 64 and d64["renyi"] == pytest.approx(l2["renyi"] / 8, rel=1e-12)


def test_linf_example_own_tests_pass(installed_example: dict[str, str]) -> None:
    result = _run(installed_example, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(LINF_EXAMPLE / "tests"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linf_example_at_cifar_size_is_checked_to_a_verdict(installed_example: dict[str, str]) -> None:
    """Case 5 of issue 25: at d >= 710, (order - 1) D passed 709 and math.exp overflowed in the sampler-divergence check;
    d = 3072 (CIFAR-10's size) now runs to a verdict, the moments compared in log space."""
    result = _run(
        installed_example, "-m", "renyicert.cli", "check", "gaussian-linf", "-o", "d=3072", "--quick", "--json"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["status"] == "passed" and report["mechanism"] == "gaussian-linf (d=3072)"
    assert {c["name"]: c["verdict"] for c in report["checks"]}["sampler-divergence"] == "pass"
