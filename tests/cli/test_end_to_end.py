"""The commands in sequence on a few digits: train, certify (fixed n, sequential, lattice), attack, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from renyicert.cli import main
from .helpers import one_line_error


@pytest.fixture
def linf_registered() -> object:
    import renyicert

    from ..bad_mechanisms import LinfGaussian

    renyicert.register(LinfGaussian)
    yield LinfGaussian
    renyicert.unregister(LinfGaussian.name)


def test_train_certify_attack_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, std, records = tmp_path / "m.pt", tmp_path / "std.pt", tmp_path / "r.jsonl"
    assert main(["train", "--method", "augmentation", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    assert main(["train", "--method", "standard", "--epochs", "3", "--out", str(std), "--quiet"]) == 0
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {
        "name": "gaussian",
        "scale": 0.25,
        "parameters": {},
    }
    assert (
        main(
            ["certify", "--checkpoint", str(model), "--limit", "6", "--n", "200", "--records", str(records), "--quiet"]
        )
        == 0
    )
    assert len(records.read_text().splitlines()) == 6
    assert (
        main(
            [
                "attack",
                "--checkpoint",
                str(model),
                "--undefended",
                str(std),
                "--limit",
                "4",
                "--eps",
                "0.5",
                "--attacks",
                "pgd,transfer",
                "--vote-samples",
                "100",
                "--json",
                "--quiet",
            ]
        )
        == 0
    )
    capsys.readouterr()
    argv = [
        "attack",
        "--checkpoint",
        str(model),
        "--limit",
        "3",
        "--eps",
        "0.5",
        "--attacks",
        "pgd-long",
        "--long-steps",
        "4",
        "--long-restarts",
        "2",
        "--vote-samples",
        "50",
        "--json",
        "--quiet",
    ]
    assert main(argv) == 0
    assert set(json.loads(capsys.readouterr().out)["accuracy"]) == {"pgd-long", "all"}
    assert main([*argv[:-4], "--long-restarts", "0", "--quiet"]) == 2
    assert "long_restarts must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["report", str(records), "--all-bounds", "--plot", str(tmp_path / "p.png")]) == 0
    out = capsys.readouterr().out
    assert "renyi" in out and "pixeldp" in out and (tmp_path / "p.png").exists()


def test_mechanism_parameters_go_through_train_certify_and_attack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], linf_registered: object
) -> None:
    model, records = tmp_path / "m.pt", tmp_path / "r.jsonl"
    argv = [
        "train",
        "--mechanism",
        "test-linf-gaussian",
        "--scale",
        "0.02",
        "-o",
        "d=64",
        "--epochs",
        "2",
        "--out",
        str(model),
        "--quiet",
    ]
    assert main(argv) == 0
    assert json.loads(model.with_suffix(".json").read_text())["mechanism"] == {
        "name": "test-linf-gaussian",
        "scale": 0.02,
        "parameters": {"d": 64},
    }
    # certify takes the checkpoint's parameters with its mechanism, and keeps them in the run's settings
    assert (
        main(
            ["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(records), "--quiet"]
        )
        == 0
    )
    settings = json.loads(records.with_name(records.name + ".settings.json").read_text())
    assert settings["parameters"] == {"d": 64} and settings["mechanism"] == "test-linf-gaussian"
    capsys.readouterr()
    # -o overrides the checkpoint's value: a formula for 16 coordinates is refused on 64-element inputs
    assert main(["certify", "--checkpoint", str(model), "--limit", "2", "--n", "100", "-o", "d=16", "--quiet"]) == 2
    assert "states its divergence for 16 coordinates, but the inputs have 64" in capsys.readouterr().err
    capsys.readouterr()
    assert (
        main(
            [
                "attack",
                "--checkpoint",
                str(model),
                "--limit",
                "2",
                "--eps",
                "0.01",
                "--attacks",
                "pgd",
                "--vote-samples",
                "50",
                "-o",
                "d=64",
                "--json",
                "--quiet",
            ]
        )
        == 2
    )
    assert "not linf (test-linf-gaussian)" in capsys.readouterr().err  # the attack saw the mechanism and its norm


def test_certify_at_radii_sequentially_and_report_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, records, fixed = tmp_path / "m.pt", tmp_path / "s.jsonl", tmp_path / "f.jsonl"
    assert main(["train", "--epochs", "3", "--out", str(model), "--quiet"]) == 0
    argv = [
        "certify",
        "--checkpoint",
        str(model),
        "--limit",
        "6",
        "--radii",
        "0,0.25",
        "--budget",
        "2000",
        "--records",
        str(records),
        "--quiet",
    ]
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "decided sequentially" in out and "undecided" in out and "mean forward passes per input" in out
    assert len(records.read_text().splitlines()) == 6
    assert json.loads((tmp_path / "s.jsonl.settings.json").read_text())["radii"] == [0.0, 0.25]
    assert main(["report", str(records)]) == 0
    assert "certified" in capsys.readouterr().out
    assert (
        main(["certify", "--checkpoint", str(model), "--limit", "3", "--n", "100", "--records", str(fixed), "--quiet"])
        == 0
    )
    capsys.readouterr()
    assert main(["report", str(records), str(fixed)]) == 2
    assert "cannot report fixed-n records" in capsys.readouterr().err
    assert main(["report", str(records), "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot draws curves" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--budget", "100", "--quiet"]) == 2
    assert "--budget applies to sequential certification: give --radii too" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--radii", "0.1", "--n", "100", "--quiet"]) == 2
    assert "--n belongs to fixed-n certification" in capsys.readouterr().err
    assert main(["certify", "--checkpoint", str(model), "--limit", "3", "--radii", "0.3,0.1", "--quiet"]) == 2
    assert "radii must be strictly increasing" in capsys.readouterr().err


def test_lattice_mode_on_the_command_line_records_says_and_keeps_its_mode(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--checkpoint", str(trained), "--limit", "12", "--samples", "300", "--quiet"]
    assert main(["certify", *common, "--records", str(tmp_path / "float.jsonl")]) == 0
    assert main(["certify", *common, "--grid", "16", "--records", str(tmp_path / "lattice.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
    records = [json.loads(line) for line in (tmp_path / "lattice.jsonl").read_text().splitlines()]
    assert all(r["failed"] == 0 and sum(r["counts"]) == r["n"] for r in records)
    assert json.loads((tmp_path / "lattice.jsonl.settings.json").read_text())["grid"] == 16
    assert main(["report", str(tmp_path / "lattice.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
    one_line_error(
        capsys,
        ["report", str(tmp_path / "float.jsonl"), str(tmp_path / "lattice.jsonl")],
        "certified in different modes (float, lattice (grid 1/16))",
    )
    one_line_error(
        capsys,
        ["recertify", str(tmp_path / "float.jsonl"), "--alpha", "0.01", "--grid", "16"],
        "was certified in float mode",
    )
    assert (
        main(
            [
                "recertify",
                str(tmp_path / "lattice.jsonl"),
                "--alpha",
                "0.001",
                "--grid",
                "16",
                "--out",
                str(tmp_path / "again.jsonl"),
            ]
        )
        == 0
    )
    again = [json.loads(line) for line in (tmp_path / "again.jsonl").read_text().splitlines()]
    assert [r["radius_renyi"] for r in again] == [
        r["radius_renyi"] for r in records
    ]  # at the records' own alpha: unchanged
    one_line_error(capsys, ["certify", *common, "--grid", "255"], "off the grid k / 255")
    one_line_error(capsys, ["certify", *common, "--grid", "0"], "--grid: must be an integer in [1, 65536]")
    assert (
        main(
            [
                "predict",
                "--checkpoint",
                str(trained),
                "--limit",
                "3",
                "--samples",
                "200",
                "--grid",
                "16",
                "--quiet",
                "--json",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "certify",
                *common[:4],
                "--grid",
                "16",
                "--radii",
                "0,0.2",
                "--budget",
                "500",
                "--quiet",
                "--records",
                str(tmp_path / "seq.jsonl"),
            ]
        )
        == 0
    )
    assert all("failed" in json.loads(line) for line in (tmp_path / "seq.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert main(["report", str(tmp_path / "seq.jsonl")]) == 0
    assert "lattice (grid 1/16) mode" in capsys.readouterr().out
