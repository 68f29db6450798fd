"""Data: the embedded digits and user files, with clear errors for what does not fit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from renyicert.workflow.data import LabelledData, as_labelled_data, load_data, load_digits


def test_digits_split_is_fixed_stratified_and_scaled() -> None:
    train, test = load_digits()
    assert (len(train), len(test)) == (1437, 360)
    assert train.input_shape == test.input_shape == (1, 8, 8)
    assert float(train.x.min()) == 0.0 and float(train.x.max()) == 1.0
    counts = torch.bincount(test.y, minlength=10)
    assert int(counts.min()) >= 35 and int(counts.max()) <= 37  # stratified: 10 classes of ~36
    again = load_digits()[1]
    assert torch.equal(again.x, test.x) and torch.equal(again.y, test.y)


def test_npz_and_pt_files_load(tmp_path: Path) -> None:
    x, y = np.random.rand(6, 3).astype("float32"), np.array([0, 1, 2, 0, 1, 2])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, tmp_path / "d.pt")
    for name in ("d.npz", "d.pt"):
        data = load_data(tmp_path / name)
        assert data.num_classes == 3 and data.input_shape == (3,) and len(data) == 6


@pytest.mark.parametrize(
    "content,match",
    [
        ({"x": np.zeros((4, 2), "float32"), "y": np.zeros(3, "int64")}, "N = len\\(y\\) = 3"),
        ({"x": np.zeros((4, 2), "float32"), "y": np.array([0, 1, 5, 1])}, r"labels must be in \[0, 3\), got 5"),
        ({"x": np.zeros((4, 2), "float32")}, "must hold 'x' and 'y'"),
        ({"x": np.full((2, 2), np.nan, "float32"), "y": np.array([0, 1])}, "NaN or inf"),
    ],
)
def test_bad_data_files_get_clear_errors(tmp_path: Path, content: dict, match: str) -> None:  # type: ignore[type-arg]
    np.savez(tmp_path / "bad.npz", **content)
    with pytest.raises(ValueError, match=match):
        load_data(tmp_path / "bad.npz", num_classes=3)


def test_unreadable_or_missing_files_get_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a tensor file")
    with pytest.raises(ValueError, match="could not read data file"):
        load_data(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="does not exist"):
        load_data(tmp_path / "missing.npz")
    (tmp_path / "d.csv").write_text("1,2")
    with pytest.raises(ValueError, match="must end in .npz or .pt"):
        load_data(tmp_path / "d.csv")


def test_a_torch_dataset_becomes_labelled_data() -> None:
    dataset = torch.utils.data.TensorDataset(torch.rand(5, 2, 2), torch.tensor([0, 1, 1, 0, 1]))
    data = as_labelled_data(dataset)
    assert data.input_shape == (2, 2) and data.num_classes == 2
    assert data.subset(2).y.tolist() == [0, 1]
    with pytest.raises(ValueError, match="count must be a positive integer, got 0"):
        data.subset(0)
    with pytest.raises(TypeError, match="expected a torch Dataset"):
        as_labelled_data([1, 2, 3])
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        LabelledData(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), 1)


def test_the_fingerprint_follows_values_labels_and_size() -> None:
    from renyicert.workflow.data import LabelledData, load_digits

    test = load_digits()[1]
    base = test.subset(5).fingerprint()
    assert base == test.subset(5).fingerprint()
    assert base != test.subset(4).fingerprint()
    assert base != LabelledData(test.x[:5] + 1e-7, test.y[:5], 10).fingerprint()
    assert base != LabelledData(test.x[:5], (test.y[:5] + 1) % 10, 10).fingerprint()


def test_a_huge_label_asks_for_the_number_of_classes() -> None:
    import torch

    from renyicert.workflow.data import as_labelled_data

    x, y = torch.zeros(2, 3), torch.tensor([0, 2**62])
    # Before: "data has 4611686018427387905 classes".
    with pytest.raises(ValueError, match="the largest label is 4611686018427387904.*give num_classes"):
        as_labelled_data((x, y))
    with pytest.raises(ValueError, match="labels must be in \\[0, 5\\), got 4611686018427387904"):
        as_labelled_data((x, y), num_classes=5)
    assert as_labelled_data((x, torch.tensor([0, 1])), num_classes=7).num_classes == 7


@pytest.mark.parametrize("make", ["sparse", "meta"])
def test_sparse_or_meta_tensors_are_refused(tmp_path: Path, make: str) -> None:
    import torch

    from renyicert.workflow.data import load_data

    x = torch.zeros(4, 3).to_sparse() if make == "sparse" else torch.empty(4, 3, device="meta")
    torch.save({"x": x, "y": torch.tensor([0, 1, 0, 1])}, tmp_path / "d.pt")
    with pytest.raises(ValueError, match="must be a dense tensor with values"):
        load_data(tmp_path / "d.pt")


def test_inputs_outside_0_1_are_refused_with_their_range_or_mapped_from_the_one_given(tmp_path: Path) -> None:
    # Before: a uint8 file holding 0-254 was certified as is, its radii in 0-255 units under plots saying [0, 1].
    np.savez(tmp_path / "pixels.npz", x=np.array([[0, 254], [3, 17]], dtype=np.uint8), y=np.array([0, 1]))
    with pytest.raises(ValueError, match=r"holds values in \[0, 254\], outside \[0, 1\].*--input-range 0,255"):
        load_data(tmp_path / "pixels.npz")
    data = load_data(tmp_path / "pixels.npz", input_range=(0.0, 255.0))
    assert data.x.dtype == torch.float32 and data.x.tolist() == [
        [0.0, pytest.approx(254 / 255)],
        [pytest.approx(3 / 255), pytest.approx(17 / 255)],
    ]
    with pytest.raises(ValueError, match=r"holds values in \[0, 254\], outside \[0, 100\]: .*give the range they span"):
        load_data(tmp_path / "pixels.npz", input_range=(0.0, 100.0))
    np.savez(tmp_path / "negative.npz", x=np.array([[-0.5, 0.5]], dtype=np.float32), y=np.array([0]))
    with pytest.raises(ValueError, match=r"values in \[-0.5, 0.5\]"):
        load_data(tmp_path / "negative.npz", num_classes=2)


@pytest.mark.parametrize(
    "text,match",
    [
        ("0", "two numbers LOW,HIGH"),
        ("a,b", "two numbers"),
        ("1,1", "finite LOW < HIGH"),
        ("0,inf", "finite LOW < HIGH"),
    ],
)
def test_bad_input_ranges_are_refused(text: str, match: str) -> None:
    from renyicert.workflow.data import parse_input_range

    with pytest.raises(ValueError, match=match):
        parse_input_range(text)
