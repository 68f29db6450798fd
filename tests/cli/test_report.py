"""The report and recertify commands: what they read from records and what they refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from renyicert.cli import main
from .helpers import one_line_error


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"correct": True, "radius_renyi": "inf"}, "radius_renyi must be a finite number >= 0, got 'inf'"),
        ({"correct": True, "radius_renyi": -0.5}, "radius_renyi must be a finite number >= 0, got -0.5"),
        ({"correct": True, "radius_renyi": "nan"}, "radius_renyi must be a finite number >= 0, got 'nan'"),
        ({"correct": True}, "the record has no 'radius_renyi'"),
        ({"radius_renyi": 0.1}, "'correct' must be true or false"),
    ],
)
def test_report_refuses_records_it_cannot_trust(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], record: dict[str, object], message: str
) -> None:
    # Before: Infinity gave a table with r=nan columns; NaN and negative radii were accepted; a missing key a traceback.
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"correct": True, "radius_renyi": 0.2}) + "\n" + json.dumps(record) + "\n")
    one_line_error(capsys, ["report", str(path)], f"{path} record 2: {message}")


def test_report_reads_the_norm_from_the_settings_and_refuses_to_mix_norms(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gauss, laplace = tmp_path / "g.jsonl", tmp_path / "l.jsonl"
    assert (
        main(
            ["certify", "--checkpoint", str(trained), "--limit", "6", "--n", "200", "--records", str(gauss), "--quiet"]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--mechanism",
                "laplace",
                "--limit",
                "6",
                "--n",
                "200",
                "--records",
                str(laplace),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    # Before: Laplace records were labelled l2, and records of both mechanisms shared one table.
    assert main(["report", str(laplace), "--all-bounds", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["mechanism"], r["norm"], r["bound"]) for r in rows] == [
        ("laplace", "l1", "renyi"),
        ("laplace", "l1", "tight"),
        ("laplace", "l1", "pixeldp"),
        ("laplace", "l1", "best"),
    ]
    assert all({"acr", "abstention_rate", "clean_accuracy", "certified_accuracy"} <= set(r) for r in rows)
    one_line_error(capsys, ["report", str(gauss), str(laplace)], "different norms (l1, l2)")
    one_line_error(capsys, ["report", str(laplace), "--norm", "l2"], "its records are l1 radii (laplace noise), not l2")
    assert main(["report", str(laplace), "--all-bounds", "--plot", str(tmp_path / "l.png")]) == 0
    out = capsys.readouterr().out
    assert "ACR" in out and "abstain" in out and "l1 radii" in out


def test_recertify_from_the_counts_without_the_model(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records, again = tmp_path / "r.jsonl", tmp_path / "r01.jsonl"
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "6",
                "--n",
                "200",
                "--records",
                str(records),
                "--quiet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "6",
                "--n",
                "200",
                "--alpha",
                "0.1",
                "--records",
                str(tmp_path / "direct.jsonl"),
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["recertify", str(records), "--alpha", "0.1", "--out", str(again), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["alpha"] == 0.1
    strip = lambda path: [
        {k: v for k, v in json.loads(line).items() if k != "seconds"} for line in path.read_text().splitlines()
    ]  # noqa: E731
    assert strip(again) == strip(tmp_path / "direct.jsonl")
    settings = json.loads((tmp_path / "r01.jsonl.settings.json").read_text())
    assert settings["alpha"] == 0.1 and settings["recertified_from"] == str(records)
    one_line_error(capsys, ["recertify", str(records), "--alpha", "0.1", "--out", str(again)], "already exists")
    one_line_error(capsys, ["recertify", str(records), "--alpha", "2"], "alpha must be in (0, 1)")
    (tmp_path / "bare.jsonl").write_text(records.read_text())
    one_line_error(
        capsys,
        ["recertify", str(tmp_path / "bare.jsonl"), "--alpha", "0.1"],
        "the mechanism and scale its counts were drawn with are unknown",
    )
    sequential = tmp_path / "s.jsonl"
    assert (
        main(
            [
                "certify",
                "--checkpoint",
                str(trained),
                "--limit",
                "2",
                "--radii",
                "0",
                "--budget",
                "200",
                "--records",
                str(sequential),
                "--quiet",
            ]
        )
        == 0
    )
    one_line_error(capsys, ["recertify", str(sequential), "--alpha", "0.1"], "holds sequential records")
