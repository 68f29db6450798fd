"""Dataset certification: per-index seeds, every bound from the same counts, resumable files, accuracy curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import renyicert
from renyicert.workflow.data import load_digits
from renyicert.workflow.certify import certify_dataset
from renyicert.workflow.plots import plot_certified_accuracy
from renyicert.workflow.records import write_csv
from renyicert.workflow.summary import certified_accuracy, radius_grid
from renyicert.workflow.models import DigitsMLP


@pytest.fixture(scope="module")
def smoothed() -> renyicert.Smoothed:
    torch.manual_seed(0)
    return renyicert.Smoothed(DigitsMLP(), "gaussian", 10, scale=0.25, backend="eager", progress=False)


def test_records_match_certifying_each_input_alone(smoothed: renyicert.Smoothed, tmp_path: Path) -> None:
    _, test = load_digits()
    data = test.subset(5)
    records = certify_dataset(
        smoothed, data, tmp_path / "r.jsonl", n0=20, n=300, seed=7, inputs_per_call=2, progress=False
    )
    assert [r["index"] for r in records] == list(range(5))
    for r in records:
        alone = smoothed.certify(data.x[r["index"]], n0=20, n=300, seed=7 + r["index"])
        assert (alone.counts, alone.radius) == (tuple(r["counts"]), r["radius_renyi"])
        assert r["correct"] == (alone.label == int(data.y[r["index"]]))
        p1, p2 = r["p1_lower"], r["p2_upper"]
        if not alone.abstained:  # every bound from the same (p1_lower, p2_upper)
            assert r["radius_tight"] == pytest.approx(float(renyicert.tight_radius(smoothed.mechanism, p1, p2)))
            assert r["radius_pixeldp"] == pytest.approx(float(renyicert.pixeldp_radius(smoothed.mechanism, p1, p2)))
    with pytest.raises(ValueError, match="already holds records"):
        certify_dataset(smoothed, data, tmp_path / "r.jsonl", progress=False)
    with pytest.raises(ValueError, match="it was made with n = 300, this run has n = 400"):
        certify_dataset(
            smoothed,
            test.subset(7),
            tmp_path / "r.jsonl",
            n0=20,
            n=400,
            seed=7,
            inputs_per_call=2,
            resume=True,
            progress=False,
        )
    # Other data (here: two more inputs) is refused: the settings hold the data's size and SHA-256.
    with pytest.raises(ValueError, match="it was made with inputs = 5, this run has inputs = 7"):
        certify_dataset(
            smoothed,
            test.subset(7),
            tmp_path / "r.jsonl",
            n0=20,
            n=300,
            seed=7,
            inputs_per_call=2,
            resume=True,
            progress=False,
        )
    lines = (tmp_path / "r.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "r.jsonl").write_text("".join(lines[:3]))  # an interrupted run
    again = certify_dataset(
        smoothed, data, tmp_path / "r.jsonl", n0=20, n=300, seed=7, inputs_per_call=2, resume=True, progress=False
    )
    untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in run] for run in (again, records)]
    assert untimed[0] == untimed[1]  # the same records, whatever was interrupted
    csv = write_csv(again, tmp_path / "r.csv").read_text().splitlines()
    assert len(csv) == 6 and csv[0].startswith("index,label,prediction,correct,radius_renyi")


def test_certified_accuracy_curve_is_non_increasing_and_starts_at_clean_accuracy() -> None:
    rng = np.random.default_rng(0)
    records = [{"correct": bool(c), "radius_renyi": float(r)} for c, r in zip(rng.random(50) < 0.8, rng.random(50))]
    grid = np.linspace(0, 1.2, 30)
    curve = certified_accuracy(records, grid)
    assert curve[0] == pytest.approx(np.mean([r["correct"] for r in records])) and curve[-1] == 0.0
    assert np.all(np.diff(curve) <= 0)
    grid5 = radius_grid(records, 5)
    largest = max(r["radius_renyi"] for r in records if r["correct"])
    assert len(grid5) == 5 and 0.5 * largest <= grid5[-1] <= largest
    assert radius_grid([{"correct": False, "radius_renyi": 1.0}]) == [0.0]
    with pytest.raises(ValueError, match="bound must be one of"):
        certified_accuracy(records, grid, "cohen")
    with pytest.raises(ValueError, match="no 'tight' radius"):
        certified_accuracy([{"correct": True, "radius_tight": None}], grid, "tight")


def test_plot_is_written(tmp_path: Path) -> None:
    path = plot_certified_accuracy(
        {"a": ([0, 1], [1.0, 0.5])}, tmp_path / "p.png", title="t", norm="l2", empirical={"b": ([0, 1], [1.0, 0.7])}
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_class_mismatch_is_a_clear_error(smoothed: renyicert.Smoothed) -> None:
    from renyicert.workflow.data import LabelledData

    with pytest.raises(ValueError, match="the data has 3 classes but the smoothed model scores 10"):
        certify_dataset(smoothed, LabelledData(torch.zeros(2, 1, 8, 8), torch.tensor([0, 2]), 3), progress=False)


def test_sequential_records_match_certify_at_alone_resume_and_refuse_other_settings(
    smoothed: renyicert.Smoothed, tmp_path: Path
) -> None:
    from renyicert.workflow.certify import certify_dataset_at
    from renyicert.workflow.summary import summarize_sequential

    _, test = load_digits()
    data = test.subset(7)
    path = tmp_path / "s.jsonl"
    radii = [0.0, 0.1, 0.2]
    records = certify_dataset_at(
        smoothed, data, radii, path, budget=800, seed=3, inputs_per_call=2, inputs_at_once=3, progress=False
    )
    assert [r["index"] for r in records] == list(range(7))
    for r in records:
        alone = smoothed.certify_at(data.x[r["index"]], radii, budget=800, seed=3 + r["index"])
        assert (r["certified"], r["undecided"], r["samples"], r["selected"]) == (
            list(alone.certified),
            list(alone.undecided),
            alone.samples,
            alone.label,
        )
        assert r["prediction"] == (alone.label if alone.certified[0] else -1) and r["label"] == int(data.y[r["index"]])
    # Other chunking and pool sizes give the same records; an interrupted file resumes to the same records.
    assert (
        certify_dataset_at(
            smoothed, data, radii, budget=800, seed=3, inputs_per_call=5, inputs_at_once=1, progress=False
        )
        == records
    )
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]) + lines[3][:10])  # three records and a torn line
    with pytest.warns(RuntimeWarning, match="torn last line"):
        resumed = certify_dataset_at(
            smoothed, data, radii, path, budget=800, seed=3, inputs_per_call=2, resume=True, progress=False
        )
    assert resumed == records
    with pytest.raises(
        ValueError, match=r"it was made with radii = \[0.0, 0.1, 0.2\], this run has radii = \[0.0, 0.1\]"
    ):
        certify_dataset_at(
            smoothed, data, [0.0, 0.1], path, budget=800, seed=3, inputs_per_call=2, resume=True, progress=False
        )
    with pytest.raises(ValueError, match="it was made with budget = 800, this run has budget = 900"):
        certify_dataset_at(
            smoothed, data, radii, path, budget=900, seed=3, inputs_per_call=2, resume=True, progress=False
        )
    with pytest.raises(ValueError, match="radii must be strictly increasing"):
        certify_dataset_at(smoothed, data, [0.2, 0.1], tmp_path / "bad.jsonl", progress=False)
    assert not (tmp_path / "bad.jsonl").exists()
    summary = summarize_sequential(records, radii)
    assert summary.inputs == 7 and summary.certified_accuracy[0] >= summary.certified_accuracy[2]
    assert summary.forward_passes == pytest.approx(np.mean([r["n0"] + r["samples"] for r in records]))


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (
            {"label": 1, "selected": 1, "certified": [True], "undecided": [False], "samples": 5, "n0": 1},
            "must hold 2 true/false values",
        ),
        (
            {"label": 1, "selected": 1, "certified": [True, "yes"], "undecided": [False, False], "samples": 5, "n0": 1},
            "must hold 2 true/false values",
        ),
        (
            {"label": 1, "selected": 1, "certified": [True, True], "undecided": [False, False], "samples": -5, "n0": 1},
            "must be integers",
        ),
        ({"label": 1, "radius_renyi": 0.3}, "needs lists 'certified' and 'undecided'"),
    ],
)
def test_sequential_summary_refuses_records_that_do_not_fit(record: dict, match: str) -> None:
    from renyicert.workflow.summary import summarize_sequential

    with pytest.raises(ValueError, match=match):
        summarize_sequential([record], [0.0, 0.5], "s.jsonl")


def test_recertify_at_the_records_alpha_gives_them_back_and_at_another_alpha_what_certify_gives(
    smoothed: renyicert.Smoothed,
) -> None:
    from renyicert.workflow.certify import recertify_records

    test = load_digits()[1].subset(24)
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # noqa: E731
    at_001 = certify_dataset(smoothed, test, n0=20, n=60, alpha=0.001, progress=False)
    assert strip(recertify_records(at_001, smoothed.mechanism, 0.001)) == strip(at_001)
    # The same seed draws the same counts: certifying at alpha = 0.2 is recertifying the 0.001 records at 0.2.
    at_02 = certify_dataset(smoothed, test, n0=20, n=60, alpha=0.2, progress=False)
    assert strip(recertify_records(at_001, smoothed.mechanism, 0.2)) == strip(at_02)
    assert sum(r["prediction"] == -1 for r in at_001) > sum(
        r["prediction"] == -1 for r in at_02
    )  # abstentions came back certified
    complement = recertify_records(at_001, smoothed.mechanism, 0.001, p2_mode="complement")
    assert all(r["p2_upper"] == pytest.approx(1 - r["p1_lower"]) for r in complement)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"counts": [1, -1]}, r"record 1 \(index 3\): 'counts' must be a list of non-negative integers"),
        ({"counts": "12"}, "'counts' must be a list"),
        ({"counts": [], "n": None}, "'counts' must be a list of non-negative integers, got \\[\\]"),
        (
            {"selected": None, "prediction": -1},
            r"record 1 \(index 3\): the class the selection chose is not recorded.*got selected = None, prediction = -1",
        ),
        ({"selected": 5}, "the class the selection chose is not recorded.*got selected = 5, prediction = 0"),
        ({"selected": 2}, "the class the selection chose is not recorded"),
        ({"selected": True}, "the class the selection chose is not recorded"),
        ({"selected": "0"}, "the class the selection chose is not recorded"),
        ({"n": 7}, "its counts sum to 10, its n is 7"),
        *(
            (
                {key: value},
                r"record 1 \(index 3\) is a sequential record .*depended on them, so no fixed-n Clopper-Pearson bound "
                r"holds for them; certify again \(at a new alpha, with new noise\)$",
            )
            for key, value in (("certified", [True]), ("undecided", [False]), ("samples", 10), ("successes", 9))
        ),
        ({"failed": True}, r"'failed' \(lattice copies whose draw failed\) must be a non-negative integer, got True"),
        ({"failed": -1}, "'failed' .* must be a non-negative integer, got -1"),
        ({"failed": "1"}, "'failed' .* must be a non-negative integer, got '1'"),
        ({"failed": 1}, "its counts sum to 10 and 1 failed, its n is 10"),
    ],
)
def test_recertify_refuses_records_it_cannot_recompute(change: dict, match: str) -> None:  # type: ignore[type-arg]
    from renyicert.workflow.certify import recertify_records

    record = {"index": 3, "label": 0, "prediction": 0, "selected": 0, "counts": [9, 1], "n": 10}
    record.update(change)
    if change.get("selected", 0) is None:
        del record["selected"]
    with pytest.raises(ValueError, match=match):
        recertify_records([record], renyicert.get_mechanism("gaussian", scale=0.25), 0.01)
    with pytest.raises(ValueError, match="alpha must be in"):
        recertify_records([record], renyicert.get_mechanism("gaussian", scale=0.25), 1.5)


def test_recertify_refuses_a_record_that_is_not_a_dict() -> None:
    from renyicert.workflow.certify import recertify_records

    with pytest.raises(ValueError, match=r"^record 2 \(index None\): a record must be a dict, got a list$"):
        recertify_records(
            [{"index": 3, "selected": 0, "counts": [9, 1]}, [9, 1]],
            renyicert.get_mechanism("gaussian", scale=0.25),
            0.01,
        )


def test_recertify_counts_a_lattice_records_failed_copies_against_every_other_class() -> None:
    from renyicert.confidence import top_two_bounds
    from renyicert.workflow.certify import recertify_records

    gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    record = {"index": 0, "label": 0, "prediction": 0, "selected": 0, "counts": [90, 3, 2], "failed": 5, "n": 100}
    (again,) = recertify_records([record], gaussian, 0.01)
    p1, p2 = top_two_bounds(np.array([[90, 3, 2]]), np.array([0]), 0.01, "runner-up", np.array([5]))
    assert (again["p1_lower"], again["p2_upper"]) == (float(p1[0]), float(p2[0]))
    (none_failed,) = recertify_records([dict(record, failed=0, n=95)], gaussian, 0.01)
    assert again["p2_upper"] > none_failed["p2_upper"] and again["radius_renyi"] < none_failed["radius_renyi"]


def test_recertify_reads_older_records_and_mechanisms_without_comparison_bounds() -> None:
    from renyicert.workflow.certify import recertify_records
    from tests.test_mechanism import (
        Minimal,
    )  # the Gaussian's two required methods only: no tight or PixelDP certificate

    gaussian = renyicert.get_mechanism("gaussian", scale=0.25)
    older = {"index": 0, "label": 1, "prediction": 1, "counts": [3, 97], "n": 100}  # written before 'selected' was kept
    (again,) = recertify_records([older], gaussian, 0.001)
    assert again["selected"] == 1 and again["prediction"] == 1 and again["correct"] and again["radius_renyi"] > 0

    (plain,) = recertify_records([older], Minimal(scale=0.25), 0.001)
    assert plain["radius_tight"] is None and plain["radius_pixeldp"] is None
    assert plain["radius_renyi"] == pytest.approx(again["radius_renyi"], rel=1e-12)
    with pytest.raises(ValueError, match="^the records' counts have different numbers of classes$"):
        recertify_records([older, dict(older, counts=[1, 2, 97])], gaussian, 0.001)


def test_the_summary_gives_acr_and_the_abstention_rate(smoothed: renyicert.Smoothed) -> None:
    from renyicert.workflow.summary import summarize_certified

    records = certify_dataset(smoothed, load_digits()[1].subset(20), n0=20, n=100, progress=False)
    summary = summarize_certified(records)
    radii = np.linspace(0, 10, 200_001)
    area = float(np.sum(certified_accuracy(records, radii)[1:]) * (radii[1] - radii[0]))
    assert summary.average_certified_radius == pytest.approx(
        area, abs=1e-3
    )  # ACR = area under the certified accuracy curve
    assert summary.clean_accuracy == certified_accuracy(records, [0.0])[0]
    assert summary.abstention_rate == sum(r["prediction"] == -1 for r in records) / 20
    with pytest.raises(ValueError, match="bound must be one of"):
        summarize_certified(records, "worst")


def test_plots_run_to_where_every_curve_is_zero_and_keep_the_legend_off_the_data(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from renyicert.workflow.summary import curve_radii

    records = [{"correct": True, "radius_renyi": r} for r in (0.1, 0.4, 1.7)] + [
        {"correct": False, "radius_renyi": 5.0}
    ]
    radii = curve_radii([records])
    assert (
        radii[-1] > 1.7 and certified_accuracy(records, radii)[-1] == 0.0
    )  # the longest curve reaches zero inside the axis
    captured = {}
    original = plt.Figure.savefig

    def keep(figure, *args, **kwargs):  # type: ignore[no-untyped-def]
        captured["figure"] = figure
        return original(figure, *args, **kwargs)

    matplotlib.figure.Figure.savefig = keep
    try:
        curves = {f"curve {k}": (radii, certified_accuracy(records, radii) * (1 - k / 10)) for k in range(9)}
        plot_certified_accuracy(curves, tmp_path / "p.png", title="t", norm="l1", note="a caption", dashed=["curve 0"])
    finally:
        matplotlib.figure.Figure.savefig = original
    figure = captured["figure"]
    axes = figure.axes[0]
    assert axes.get_xlim()[1] >= 1.7 * 1.04
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    legend, frame = axes.get_legend().get_window_extent(renderer), axes.get_window_extent(renderer)
    assert legend.x0 >= frame.x1  # beside the axes, never over a curve
    assert "l1 norm" in axes.get_xlabel()
    assert any("a caption" in text.get_text() for text in axes.texts)
    assert (
        axes.lines[0].get_linestyle() == "--" and axes.lines[1].get_linestyle() == "-"
    )  # a coinciding curve stays visible


def test_bound_labels_say_when_a_bound_uses_p1_only() -> None:
    from renyicert.workflow.plots import TENG_NOTE, bound_label

    assert "p1 only" in bound_label("tight", "laplace") and "Cohen" in bound_label("tight", "gaussian")
    assert bound_label("renyi", "laplace").startswith("Rényi") and "p2" in TENG_NOTE


def test_records_hold_the_best_radius_and_refuse_a_forged_one(smoothed: renyicert.Smoothed) -> None:
    from renyicert.workflow.records import best_of_record, checked_record
    from renyicert.workflow.summary import summarize_certified

    records = certify_dataset(smoothed, load_digits()[1].subset(12), n0=20, n=200, progress=False)
    for record in records:
        radii = {b: record[f"radius_{b}"] for b in ("renyi", "tight", "pixeldp")}
        assert record["radius_best"] == max(radii.values()) and radii[record["best_bound"]] == record["radius_best"]
        assert checked_record(dict(record), "r") == record
    assert all(
        certified_accuracy(records, [0.1], "best") >= certified_accuracy(records, [0.1], b)
        for b in ("renyi", "tight", "pixeldp")
    )
    assert (
        summarize_certified(records, "best").average_certified_radius
        >= summarize_certified(records, "tight").average_certified_radius
    )
    certified = next(r for r in records if r["radius_best"] > 0)
    with pytest.raises(ValueError, match=r"r: radius_best = .* is not the largest of its bounds' radii"):
        checked_record(dict(certified, radius_best=certified["radius_best"] * 2), "r")
    with pytest.raises(ValueError, match="is not the largest"):
        checked_record(dict(certified, best_bound="pixeldp" if certified["best_bound"] != "pixeldp" else "renyi"), "r")
    older = {
        k: v for k, v in certified.items() if k not in ("radius_best", "best_bound")
    }  # written before the best bound was kept
    assert checked_record(older, "r")["radius_best"] == certified["radius_best"]
    assert best_of_record({"radius_renyi": 0.0, "radius_tight": None, "radius_pixeldp": None}) == (0.0, "renyi")


GOOD = {"correct": True, "radius_renyi": 0.5, "radius_tight": None, "radius_pixeldp": 0.25}


@pytest.mark.parametrize(
    "record,message",
    [
        ([1, 2], "r: a record must be a JSON object, got a list"),
        ({"radius_renyi": 0.5}, "r: 'correct' must be true or false, got 'nothing'"),
        ({"correct": 1, "radius_renyi": 0.5}, "r: 'correct' must be true or false, got 1"),
        ({"correct": True}, "r: the record has no 'radius_renyi'; is this a renyicert records file\\?"),
        ({"correct": True, "radius_renyi": None}, "r: radius_renyi must be a finite number >= 0, got None"),
        (dict(GOOD, radius_pixeldp=float("nan")), "r: radius_pixeldp must be a finite number >= 0, got nan"),
        (dict(GOOD, radius_pixeldp=True), "r: radius_pixeldp must be a finite number >= 0, got True"),
        (dict(GOOD, radius_renyi=float("inf")), "r: radius_renyi must be a finite number >= 0, got inf"),
        (dict(GOOD, radius_renyi=-0.1), "r: radius_renyi must be a finite number >= 0, got -0.1"),
        (dict(GOOD, radius_renyi="0.5"), "r: radius_renyi must be a finite number >= 0, got '0.5'"),
        (
            dict(GOOD, radius_best=0.5, best_bound="tight"),
            r"r: radius_best = 0.5 \('tight'\) is not the largest of its bounds' radii, 0.5 \('renyi'\)",
        ),
    ],
)
def test_checked_record_names_what_is_wrong(record: object, message: str) -> None:
    from renyicert.workflow.records import checked_record

    with pytest.raises(ValueError, match=f"^{message}$"):
        checked_record(record, "r")


def test_checked_record_accepts_missing_comparison_bounds_and_adds_the_best() -> None:
    from renyicert.workflow.records import best_of_record, checked_record

    assert checked_record(dict(GOOD), "r") == dict(GOOD, radius_best=0.5, best_bound="renyi")
    assert checked_record({"correct": False, "radius_renyi": 0.0}, "r")["best_bound"] == "renyi"
    # A tie goes to the earlier bound, as in best_radii; nothing recorded at all reads as 0 from the Rényi bound.
    assert best_of_record({"radius_renyi": 0.3, "radius_tight": 0.3, "radius_pixeldp": 0.3}) == (0.3, "renyi")
    assert best_of_record({}) == (0.0, "renyi")


def test_best_radii_keeps_the_shape_of_scalar_inputs() -> None:
    from renyicert.radii import best_radii

    radius, order, bound = best_radii(renyicert.get_mechanism("laplace", scale=0.25), 0.9, 0.01, True)
    assert np.shape(radius) == np.shape(order) == np.shape(bound) == () and bound == "renyi" and float(radius) > 0.6


def test_the_radius_grid_of_tiny_radii_has_no_nan_column() -> None:
    """Radii near the smallest normal float (a tiny scale) gave r=nan columns, and rounding to 6 decimals all-zero ones."""
    assert radius_grid([{"correct": True, "radius_renyi": 3e-308}]) == [
        0.0,
        5.5e-309,
        1.1e-308,
        1.65e-308,
        2.2e-308,
        2.75e-308,
    ]
    for largest in (3e-320, 5e-324, 1e-9):
        grid = radius_grid([{"correct": True, "radius_renyi": largest}])
        assert grid[0] == 0.0 and all(b > a for a, b in zip(grid, grid[1:])) and grid[-1] <= largest, (largest, grid)


def test_recertify_takes_a_plugins_comparison_bound_as_best_only_once_it_is_verified() -> None:
    from renyicert.workflow.certify import recertify_records

    class ThirdParty(type(renyicert.get_mechanism("gaussian", scale=1.0))):  # type: ignore[misc]
        name = "third-party-gaussian-recertified"

    record = {"index": 0, "label": 0, "prediction": 0, "selected": 0, "counts": [990, 10], "n": 1000}
    built_in = recertify_records([record], renyicert.get_mechanism("gaussian", scale=0.25), 0.001)[0]
    assert built_in["radius_tight"] > built_in["radius_renyi"] and built_in["best_bound"] == "tight"
    mechanism = ThirdParty(0.25)
    (unverified,) = recertify_records([record], mechanism, 0.001)
    assert unverified["radius_tight"] == built_in["radius_tight"]  # computed and reported ...
    assert (
        unverified["best_bound"] == "renyi" and unverified["radius_best"] == unverified["radius_renyi"]
    )  # ... not taken
    mechanism._verified_bounds = frozenset({"tight"})
    (verified,) = recertify_records([record], mechanism, 0.001)
    assert verified["best_bound"] == "tight" and verified["radius_best"] == built_in["radius_tight"]


def test_checked_record_takes_the_best_only_from_the_bounds_the_settings_name() -> None:
    from renyicert.workflow.records import checked_record

    # A plugin's unverified tight radius is recorded but was not taken as the best (best_of = ("renyi",)).
    record = {"correct": True, "radius_renyi": 0.4, "radius_tight": 0.6, "radius_best": 0.4, "best_bound": "renyi"}
    assert checked_record(dict(record), "r", best_of=("renyi",)) == record
    with pytest.raises(ValueError, match=r"^r: radius_best = 0\.4 \('renyi'\) is not the largest .*0\.6 \('tight'\)$"):
        checked_record(dict(record), "r")
