"""Hostile input: the public API gives a correct result or a clear ValueError/TypeError, never NaN, a false inf, a hang or a traceback."""

from __future__ import annotations

import math
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import renyicert
from renyicert.cli import main

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
MECHANISMS = {name: renyicert.get_mechanism(name, scale=0.5) for name in ("gaussian", "laplace")}

weird_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, 1.0, 0.5, 1e-300, 1 - 1e-16, -0.0, 2.0, -1.0, float("nan"), float("inf")]),
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    elements=None,
)
anything = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(-10, 10),
    weird_floats,
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


def _radius_is_sane(radius: np.ndarray, p1: np.ndarray) -> None:
    radius = np.asarray(radius, dtype=np.float64)
    assert not np.isnan(radius).any(), "NaN radius"
    assert (radius >= 0).all()
    p1 = np.broadcast_to(np.asarray(p1, dtype=np.float64), radius.shape)
    assert np.isfinite(radius[p1 < 1]).all(), "infinite radius for p1 < 1"


@FUZZ
@given(name=st.sampled_from(sorted(MECHANISMS)), p1=st.one_of(arrays, weird_floats), p2=st.one_of(arrays, weird_floats))
def test_solver_on_any_array(name: str, p1: object, p2: object) -> None:
    mechanism = MECHANISMS[name]
    for solve in (renyicert.certified_radius, renyicert.tight_radius, renyicert.pixeldp_radius):
        try:
            result = solve(mechanism, p1, p2)
        except (ValueError, TypeError) as error:
            assert str(error)
            continue
        radius = result.radius if hasattr(result, "radius") else result
        _radius_is_sane(np.asarray(radius), np.broadcast_to(np.asarray(p1, dtype=np.float64), np.shape(radius)))


@FUZZ
@given(name=st.sampled_from(["gaussian", "laplace", "no-such", ""]), scale=st.one_of(weird_floats, anything))
def test_mechanism_parameters(name: str, scale: object) -> None:
    try:
        mechanism = renyicert.get_mechanism(name, scale=scale)
    except (ValueError, TypeError, renyicert.UnknownMechanismError) as error:
        assert str(error)
        return
    assert math.isfinite(mechanism.scale) and mechanism.scale > 0


certified: list[int] = []


@pytest.fixture(scope="module")
def smoothed() -> renyicert.Smoothed:
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    return renyicert.Smoothed(model, "gaussian", 3, scale=0.5, input_shape=(4,), backend="eager", progress=False)


@FUZZ
@given(
    n0=st.integers(1, 30),
    n=st.integers(1, 60),
    alpha=st.floats(1e-12, 0.999),
    batch_size=st.one_of(st.none(), st.integers(1, 70)),
    bound=st.sampled_from(["renyi", "tight"]),
    p2_mode=st.sampled_from(["runner-up", "complement"]),
    seed=st.one_of(st.none(), st.integers(0, 2**62)),
    x=hnp.arrays(np.float32, st.sampled_from([(4,), (2, 4), (1, 4)]), elements=st.floats(-3, 3, width=32)),
    # At most one field replaced by something hostile, so that most examples still reach the model.
    bad_field=st.sampled_from([None, None, None, "n0", "n", "alpha", "batch_size", "bound", "p2_mode", "seed", "x"]),
    bad_value=st.one_of(anything, st.sampled_from([float("nan"), (0, 4), (3,), (2, 2, 2)])),
)
def test_certify_arguments(
    smoothed: renyicert.Smoothed, bad_field: str | None, bad_value: object, **arguments: object
) -> None:
    if bad_field is not None:
        if bad_field == "x" and isinstance(bad_value, tuple):
            bad_value = np.zeros(bad_value, dtype=np.float32)
        arguments[bad_field] = bad_value
    x = arguments.pop("x")
    tensor = torch.from_numpy(x) if isinstance(x, np.ndarray) else torch.tensor(x) if isinstance(x, float) else x
    try:
        result = smoothed.certify(tensor, **arguments)  # type: ignore[arg-type]
    except (ValueError, TypeError) as error:
        assert str(error)
        return
    certified.append(1)
    for certificate in result if isinstance(result, list) else [result]:
        assert math.isfinite(certificate.radius) and certificate.radius >= 0
        assert 0 <= certificate.p1_lower <= 1 and 0 <= certificate.p2_upper <= 1


def test_the_certify_fuzz_reached_the_model() -> None:
    assert len(certified) >= 10, f"only {len(certified)} fuzzed certify calls got past validation"


TOKENS = [
    "radius",
    "table",
    "check",
    "certify",
    "report",
    "train",
    "attack",
    "mechanisms",
    "--mechanism",
    "gaussian",
    "laplace",
    "nope",
    "--scale",
    "0",
    "-1",
    "nan",
    "inf",
    "0.5",
    "--p1",
    "--p2",
    "1.2",
    "0.9",
    "0.1,0.2",
    "--bound",
    "all",
    "--json",
    "--n",
    "--samples",
    "--alpha",
    "2",
    "--checkpoint",
    "missing.pt",
    "--data",
    "missing.npz",
    "--eps",
    "x",
    "--limit",
    "-3",
    "--quick",
    "--only",
    "laws",
]


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(argv=st.lists(st.sampled_from(TOKENS), max_size=7))
def test_cli_never_shows_a_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    if argv[:1] in (["check"], ["train"], ["attack"]) and "--help" not in argv:
        argv = argv + ["--scale", "nan"]  # keep the slow commands on their error paths
    code = main(argv)
    captured = capsys.readouterr()
    assert code in (0, 1, 2), code
    assert "Traceback" not in captured.err + captured.out
    if code == 2:
        assert captured.err.strip()


@FUZZ
@given(content=st.binary(max_size=200), suffix=st.sampled_from([".npz", ".pt", ".json"]))
def test_malformed_data_and_checkpoint_files(
    tmp_path_factory: pytest.TempPathFactory, content: bytes, suffix: str
) -> None:
    from renyicert.workflow.data import load_data
    from renyicert.workflow.checkpoints import load_checkpoint

    folder = tmp_path_factory.mktemp("files")
    path = folder / f"file{suffix}"
    path.write_bytes(content)
    with pytest.raises(ValueError):
        load_data(path)
    if suffix == ".pt":
        with pytest.raises(ValueError):
            load_checkpoint(path)
        Path(folder / "file.json").write_bytes(content)
        with pytest.raises(ValueError):
            load_checkpoint(path)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from renyicert.workflow.checkpoints import save_checkpoint
    from renyicert.workflow.models import DigitsMLP

    path = tmp_path_factory.mktemp("checkpoint") / "m.pt"
    save_checkpoint(
        path,
        DigitsMLP(),
        {
            "model": "mlp",
            "input_shape": (1, 8, 8),
            "num_classes": 10,
            "mechanism": {"name": "gaussian", "scale": 0.25, "parameters": {}},
        },
    )
    return path


@FUZZ
@given(
    key=st.sampled_from(["model", "input_shape", "num_classes", "mechanism", "state_dict_sha256", "config_sha256"]),
    value=json_values,
    reseal=st.booleans(),
)
def test_hostile_checkpoint_descriptions_are_refused_or_harmless(
    saved_checkpoint: Path, key: str, value: object, reseal: bool
) -> None:
    """Any value in any key of a checkpoint's description, resealed with its checksum or not: a ValueError or a model, never code or a traceback."""
    import json
    import shutil

    from renyicert.workflow.checkpoints import config_sha256, load_checkpoint

    folder = saved_checkpoint.parent / "edited"
    folder.mkdir(exist_ok=True)
    shutil.copy(saved_checkpoint, folder / "m.pt")
    config = json.loads(saved_checkpoint.with_suffix(".json").read_text())
    config[key] = value
    if reseal and key != "config_sha256":
        config["config_sha256"] = config_sha256(config)
    (folder / "m.json").write_text(json.dumps(config))
    try:
        model, loaded = load_checkpoint(folder / "m.pt")
    except ValueError:
        return
    assert isinstance(model, torch.nn.Module) and loaded["model"] in ("mlp", "cnn")


@FUZZ
@given(settings_value=json_values, record=json_values)
def test_hostile_settings_and_record_files_are_refused_clearly(
    tmp_path_factory: pytest.TempPathFactory, settings_value: object, record: object
) -> None:
    """A resume over any settings file and any record line: a ValueError naming the problem, never a traceback."""
    import json

    from renyicert.workflow import records

    folder = tmp_path_factory.mktemp("records")
    path = folder / "r.jsonl"
    path.write_text(json.dumps(record) + "\n")
    records.settings_path(path).write_text(json.dumps(settings_value))
    try:
        records.check_settings(path, {"format": 2, "n": 10}, resume=True)
    except ValueError:
        pass
    try:
        records.recorded(path, repair=False, inputs=3)
    except ValueError:
        pass
    assert main(["report", str(path)]) in (0, 2)
