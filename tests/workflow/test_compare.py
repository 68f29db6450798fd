"""`renyicert compare`: the tables, plots and claims are written, certified <= empirical holds, and the verdicts say what the numbers say."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from renyicert.cli import main
from renyicert.workflow.jobs.compare import CompareSettings
from renyicert.workflow.jobs.compare_report import comparison_table, consistency_failures, median_ratio, verdict


@pytest.fixture(scope="module")
def quick_comparison(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("results")
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["compare", "--quick", "--attack-inputs", "12", "--long-steps", "20", "--out", str(out), "--quiet"])
    assert code == 0
    return out, printed.getvalue()


def test_the_comparison_writes_its_tables_plots_records_and_claims(quick_comparison: tuple[Path, str]) -> None:
    out, printed = quick_comparison
    report = (out / "compare.md").read_text()
    for noise in ("gaussian-0.5", "laplace-0.25"):
        assert (out / f"compare-{noise}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"## {noise}" in report and noise in printed
        for method in ("standard", "augmentation", "stability"):
            assert len((out / "compare-records" / f"{noise}-{method}.jsonl").read_text().splitlines()) == 360
    for row in (
        "| undefended (best bound) |",
        "| noise augmentation (best bound) |",
        "| stability training (best bound) |",
        "| TRADES | none (empirical defence) |",
        "| 1-Lipschitz | deterministic |",
    ):
        assert report.count(row) == 2 and row in printed  # one row per noise, in the report and on the terminal
    assert "PGD with 4 random starts of 20 steps" in report
    claims = report.split("## The paper's claims, as they came out here")[1].split("## Consistency check")[0]
    for claim in (
        "higher certified accuracy than noise augmentation",
        "empirically competitive with TRADES",
        "certifies more than a deterministic certifier",
        "cheaper to train than TRADES",
        "No gradient masking",
    ):
        assert claim in claims
    assert (
        len(
            re.findall(r"\*\*(held|did not hold|held at some (radii|eps) \(\d+ of \d+\)|held in part[^*]*)\*\*", claims)
        )
        == 11
    )  # per noise four, the cost per noise, and one on gradient masking
    assert "- Passed: certified <= empirical" in report
    summary = json.loads((out / "compare.json").read_text())
    assert "_records" not in json.dumps(summary) and "_certificates" not in json.dumps(summary)
    assert summary["results"]["gaussian-0.5"]["models"]["lipschitz"]["lipschitz_bound"] == pytest.approx(1.0, abs=1e-3)


def test_certified_accuracy_never_exceeds_empirical_in_the_comparison(quick_comparison: tuple[Path, str]) -> None:
    out, _ = quick_comparison
    results = json.loads((out / "compare.json").read_text())["results"]
    assert consistency_failures(results) == []
    checked = 0
    for noise_result in results.values():
        for method, entry in noise_result["models"].items():
            assert set(entry["empirical"]["accuracy"]) >= {"pgd", "pgd-long", "boundary", "all"}
            for values in entry.get("certified", {}).values():
                checked += 1
                assert all(c <= e + 1e-12 for c, e in zip(values, entry["empirical"]["accuracy"]["all"]))
        assert "certified" not in noise_result["models"]["trades"]
    assert checked == 2 * (
        3 * 3 + 1
    )  # per noise: three smoothed models under Rényi, tight (or PixelDP) and best, and the 1-Lipschitz one


def test_a_certificate_above_the_attack_is_reported_as_a_failure() -> None:
    results = {
        "g": {
            "eps": [0.5],
            "models": {"stability": {"certified": {"best": [0.7]}, "empirical": {"accuracy": {"all": [0.6]}}}},
        }
    }
    assert consistency_failures(results) == [
        "- **FAILED** g/stability training, best bound, eps 0.5: certified 70.0% > empirical 60.0%"
    ]
    results["g"]["models"]["stability"]["certified"]["best"] = [0.6]
    assert consistency_failures(results) == []


def test_the_table_marks_models_without_a_certificate() -> None:
    entry = {"kind": "deterministic", "clean_accuracy": 0.9, "empirical": {"accuracy": {"all": [0.5, 0.25]}}}
    table = comparison_table(
        {"eps": [0.25, 0.5], "norm": 2.0, "models": {"trades": entry}},
        {"trades": {"l2": [3.0, 1.0, 2.0]}},
        "gaussian-0.5",
    )
    assert "| TRADES | none (empirical defence) | 90.0% | none | none | 50.0% | 25.0% | 2.0 (median of 3) |" in table


def test_verdicts() -> None:
    assert verdict([0.5, 0.5], [0.5, 0.5]) == "did not hold"
    assert verdict([0.5, 0.0], [0.4, 0.0]) == "held"
    assert verdict([0.5, 0.0, 0.3], [0.4, 0.1, 0.3]) == "held at some radii (1 of 3)"
    assert verdict([0.5, 0.2], [0.52, 0.4], "eps", within=0.05) == "held at some eps (1 of 2)"
    assert verdict([0.5, 0.36], [0.52, 0.4], "eps", within=0.05) == "held"
    assert verdict([0.1], [0.52], "eps", within=0.05) == "did not hold"
    with pytest.raises(ValueError, match=r"two rows of the same non-zero length, got shapes \(2,\) and \(1,\)"):
        verdict([0.1, 0.2], [0.3])
    with pytest.raises(ValueError, match="within must be >= 0, got -0.1"):
        verdict([0.1], [0.3], within=-0.1)
    assert median_ratio([10.0, 30.0, 20.0], [2.0, 1.0, 4.0]) == 10.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"long_steps": 0}, "long_steps must be an integer >= 1, got 0"),
        ({"attack_inputs": 2.5}, "attack_inputs must be an integer >= 1, got 2.5"),
        ({"alpha": 1.0}, r"alpha must be in \(0, 1\), got 1.0"),
        ({"trades_eps": float("inf")}, "trades_eps must be finite and > 0, got inf"),
        ({"lipschitz_tau": 0}, "lipschitz_tau must be finite and > 0, got 0"),
        ({"trades_beta": float("nan")}, "trades_beta must be >= 0, got nan"),
        ({"eps_multiples": (1.0, -1.0)}, "positive eps multiples"),
        ({"attacks": ("pgd", "fgsm")}, "attacks must be some of"),
    ],
)
def test_bad_settings_are_refused(changes: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        CompareSettings(**changes)


def test_the_command_line_refuses_bad_numbers(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["compare", "--long-restarts", "0", "--out", str(tmp_path)]) == 2
    assert "long_restarts must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
