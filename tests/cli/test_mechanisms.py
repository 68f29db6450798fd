from __future__ import annotations

import json
import subprocess
import sys

import pytest

from renyicert.cli import main


def test_mechanisms_lists_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mechanisms"]) == 0
    out = capsys.readouterr().out
    assert "gaussian" in out and "laplace" in out
    assert main(["mechanisms", "--json"]) == 0
    names = {m["name"] for m in json.loads(capsys.readouterr().out)}
    assert {"gaussian", "laplace"} <= names


def test_radius_json_all_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "radius",
            "--mechanism",
            "gaussian",
            "--scale",
            "0.25",
            "--p1",
            "0.99",
            "--p2",
            "0.01",
            "--bound",
            "all",
            "--json",
        ]
    )
    assert code == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) >= {"renyi", "tight", "pixeldp", "order", "p1", "p2"}
    assert row["pixeldp"] < row["renyi"] < row["tight"]


def test_radius_table_with_several_p1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["radius", "--mechanism", "laplace", "--scale", "1", "--p1", "0.9,0.8", "--p2", "0.1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "renyi" in lines[0]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["radius", "--mechanism", "gauss", "--scale", "1", "--p1", "0.9", "--p2", "0.1"], "unknown mechanism 'gauss'"),
        (
            ["radius", "--mechanism", "gaussian", "--scale", "-1", "--p1", "0.9", "--p2", "0.1"],
            "scale must be finite and > 0, got -1.0",
        ),
        (
            ["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "1.2", "--p2", "0.1"],
            "p1 must be in [0, 1], got 1.2",
        ),
        (
            ["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "x", "--p2", "0.1"],
            "expected comma-separated numbers",
        ),
        (
            ["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "0.9,0.8,0.7", "--p2", "0.1,0.1"],
            "give one --p2",
        ),
        (["radius", "--mechanism", "gaussian", "--scale", "1"], "required"),
        (["bogus"], "invalid choice"),
    ],
)
def test_errors_go_to_stderr_with_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_help_exits_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["--help"],
        ["radius", "--help"],
        ["mechanisms", "--help"],
        ["table", "--help"],
        ["demo", "--help"],
        ["train", "--help"],
        ["certify", "--help"],
        ["attack", "--help"],
        ["report", "--help"],
    ):
        assert main(argv) == 0
        assert "usage:" in capsys.readouterr().out


def test_table_prints_the_radius_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["table"]) == 0
    out = capsys.readouterr().out
    assert "gaussian (l2), scale 0.25" in out and "laplace (l1), scale 0.5" in out
    assert "pixeldp" in out and "tight" in out


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "renyicert.cli",
            "radius",
            "--mechanism",
            "laplace",
            "--scale",
            "1",
            "--p1",
            "0.9",
            "--p2",
            "0.1",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["renyi"] == pytest.approx(1.6094379124341003, rel=1e-12)


def test_check_command_passes_for_a_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "gaussian", "--quick", "--only", "laws", "--only", "closed-form"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "laws" in out and "norm-ball" not in out


def test_check_command_exits_nonzero_on_failure(registered_mechanism, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    from ..bad_mechanisms import QuarterGaussian

    registered_mechanism(QuarterGaussian)
    assert main(["check", QuarterGaussian.name, "--quick", "--only", "closed-form", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["passed"] is False and data["checks"][0]["verdict"] == "fail"


def test_check_command_reports_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "gaussian", "--only", "bogus"]) == 2
    assert "unknown check" in capsys.readouterr().err


def _every_parser() -> list[tuple[str, object]]:
    import argparse

    from renyicert.cli.main import build_parser

    parser = build_parser()
    found = [("renyicert", parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found += sorted(action.choices.items())
    return found


def test_every_parser_refuses_abbreviations() -> None:
    parsers = _every_parser()
    assert len(parsers) >= 9
    for name, parser in parsers:
        assert parser.allow_abbrev is False, name  # type: ignore[attr-defined]


def test_an_abbreviated_option_is_an_error_not_another_option(capsys: pytest.CaptureFixture[str]) -> None:
    # Before: --d 4 was read as --delta 4 and the command exited 0 with an answer for other settings.
    code = main(["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "0.9", "--p2", "0.1", "--d", "4"])
    assert code == 2 and "unrecognized arguments: --d 4" in capsys.readouterr().err
    assert (
        main(["radius", "--mechanism", "gaussian", "--scale", "1", "--p1", "0.9", "--p2", "0.1", "--del", "0.1"]) == 2
    )


@pytest.fixture
def linf_registered() -> object:
    import renyicert

    from ..bad_mechanisms import LinfGaussian

    renyicert.register(LinfGaussian)
    yield LinfGaussian
    renyicert.unregister(LinfGaussian.name)


def test_radius_and_check_take_mechanism_parameters(
    capsys: pytest.CaptureFixture[str], linf_registered: object
) -> None:
    argv = ["radius", "--mechanism", "test-linf-gaussian", "--scale", "0.5", "--p1", "0.9", "--p2", "0.1", "--json"]
    assert main([*argv, "-o", "d=4"]) == 0
    d4 = json.loads(capsys.readouterr().out)
    assert main([*argv, "-o", "d=16"]) == 0
    d16 = json.loads(capsys.readouterr().out)
    assert d4["d"] == 4 and d16["d"] == 16 and d4["renyi"] == pytest.approx(2 * d16["renyi"], rel=1e-12)
    assert main(["check", "test-linf-gaussian", "-o", "d=4", "--quick", "--only", "norm-ball", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and "d=4" in report["mechanism"]
    assert main(["check", "test-linf-gaussian", "-o", "d=4", "--dimension", "5", "--quick", "--only", "laws"]) == 2
    assert "dimension=5 disagrees" in capsys.readouterr().err


def test_radius_with_the_best_bound_names_the_winner(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(
            [
                "radius",
                "--mechanism",
                "laplace",
                "--scale",
                "0.25",
                "--p1",
                "0.9,0.9",
                "--p2",
                "0.01,0.002",
                "--bound",
                "all",
                "--json",
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in rows:
        assert row["best"] == max(row["renyi"], row["tight"], row["pixeldp"]) and row[row["best_bound"]] == row["best"]
    assert (
        main(
            ["radius", "--mechanism", "gaussian", "--scale", "0.25", "--p1", "0.99", "--p2", "0.001", "--bound", "best"]
        )
        == 0
    )
    assert "tight" in capsys.readouterr().out  # Cohen's bound is the Gaussian's best
