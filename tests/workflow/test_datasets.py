"""CIFAR-10's python batches and image folders, on small files written here in those exact formats."""

from __future__ import annotations

import functools
import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from renyicert.workflow import cifar
from renyicert.workflow.cifar import load_cifar10
from renyicert.workflow.datasets import load_image_folder, open_data
from renyicert.workflow.streamed import StreamedData


def _write_cifar(folder: Path, sizes: dict[str, int], seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 batch files as the dataset ships them: protocol-2 pickles of dicts with bytes keys, data (N, 3072) uint8 row-major RGB."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written = {}
    for name, count in sizes.items():
        labels = rng.integers(0, 10, count)
        pixels = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
        batch = {
            b"batch_label": name.encode(),
            b"labels": labels.tolist(),
            b"data": pixels,
            b"filenames": [b"f.png"] * count,
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = (pixels, labels)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2))
    return written


TRAIN = {f"data_batch_{k}": 3 + k for k in range(1, 6)}


def test_cifar_batches_load_in_label_order_as_channels_first_pixels_over_255(tmp_path: Path) -> None:
    written = _write_cifar(tmp_path, {**TRAIN, "test_batch": 7})
    test = load_cifar10(tmp_path, "test")
    pixels, labels = written["test_batch"]
    assert (len(test), test.input_shape, test.num_classes) == (7, (3, 32, 32), 10)
    assert test.y.tolist() == labels.tolist()
    x = test.inputs(slice(None))
    assert x.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy(pixels.reshape(7, 3, 32, 32).astype(np.float32) / np.float32(255)))
    assert float(x[2, 0, 0, 0]) == pixels[2, 0] / np.float32(255) and float(x[2, 1, 0, 0]) == pixels[
        2, 1024
    ] / np.float32(255)  # red plane, then green
    train = load_cifar10(tmp_path, "train")
    assert len(train) == sum(TRAIN.values())
    # Positions across files, in any order, read the right images.
    everything = np.concatenate([written[name][0] for name in TRAIN]).reshape(-1, 3, 32, 32).astype(
        np.float32
    ) / np.float32(255)
    order = torch.tensor([24, 0, 4, 5, 12, 23, 3])
    assert torch.equal(train.inputs(order), torch.from_numpy(everything[order.numpy()]))


def test_cifar_reads_only_the_files_it_needs_when_it_needs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_cifar(tmp_path, {**TRAIN, "test_batch": 5})
    opened: list[str] = []
    original = cifar._read_batch
    monkeypatch.setattr(cifar, "_read_batch", lambda path: (opened.append(path.name), original(path))[1])
    test = load_cifar10(tmp_path, "test")
    assert opened == ["test_batch"]  # the labels, up front; never a training file
    train = load_cifar10(tmp_path, "train")
    opened.clear()
    train.inputs(slice(0, 2))
    assert opened == ["data_batch_1"]
    train.inputs(slice(0, 3))
    assert opened == ["data_batch_1"]  # kept once read
    assert len(test) == 5


def test_a_cifar_file_naming_code_is_refused_not_run(tmp_path: Path) -> None:
    _write_cifar(tmp_path, {"test_batch": 2})
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {marker}",))

    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}, protocol=2))
    with pytest.raises(
        ValueError, match="is not a CIFAR-10 python batch: UnpicklingError: refused to load posix.system"
    ):
        load_cifar10(tmp_path, "test")
    assert not marker.exists()


@pytest.mark.parametrize(
    "batch,match",
    [
        ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "'data' must be a uint8 array"),
        ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "'data' must be a uint8 array"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "'labels' must be 2 integers"),
        ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, r"labels must be in \[0, 10\), got 10"),
        ([1, 2], "holds a list, not a dict"),
    ],
)
def test_bad_cifar_batches_get_clear_errors(tmp_path: Path, batch: object, match: str) -> None:
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=match):
        load_cifar10(tmp_path, "test")


def test_a_folder_without_cifar_files_names_what_is_missing(tmp_path: Path) -> None:
    _write_cifar(tmp_path, {"test_batch": 2})
    with pytest.raises(ValueError, match=r"lacks \['data_batch_1'"):
        load_cifar10(tmp_path, "train")
    with pytest.raises(ValueError, match="part must be 'train' or 'test'"):
        load_cifar10(tmp_path, "validation")


def _image(path: Path, size: tuple[int, int], value: int, mode: str = "RGB") -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    array = (np.arange(size[0] * size[1] * channels).reshape(size[1], size[0], channels) + value) % 256
    array = array.astype(np.uint8)
    Image.fromarray(array if channels == 3 else array[:, :, 0], mode=None).save(path)
    return array.transpose(2, 0, 1)


def test_image_folders_number_classes_in_sorted_order_and_read_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _image(tmp_path / "zebra" / "b.png", (5, 4), 7)
    second = _image(tmp_path / "apple" / "a.png", (5, 4), 100)
    third = _image(tmp_path / "apple" / "c.bmp", (5, 4), 3)
    (tmp_path / "apple" / "notes.txt").write_text("not an image")
    import PIL.Image

    data = load_image_folder(tmp_path)
    assert (len(data), data.input_shape, data.num_classes, data.y.tolist()) == (3, (3, 4, 5), 2, [0, 0, 1])
    assert "apple, zebra" in data.description
    opened: list[str] = []
    original = PIL.Image.open
    monkeypatch.setattr(
        PIL.Image, "open", lambda path, *a, **k: (opened.append(Path(path).name), original(path, *a, **k))[1]
    )
    x = data.inputs(torch.tensor([2, 0]))
    assert opened == ["b.png", "a.png"]  # only the images asked for, when asked
    assert torch.equal(x[0], torch.from_numpy(first / np.float32(255)).float())
    assert torch.equal(x[1], torch.from_numpy(second / np.float32(255)).float())
    assert torch.equal(data.inputs(1), torch.from_numpy(third / np.float32(255)).float())


def test_grey_images_give_one_channel_and_sizes_must_agree_unless_resized(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.png", (6, 6), 0, mode="L")
    _image(tmp_path / "b" / "2.png", (8, 10), 0, mode="L")
    data = load_image_folder(tmp_path)
    assert data.input_shape == (1, 6, 6)
    with pytest.raises(ValueError, match=r"2.png' is 8x10, the first is 6x6: give an image size"):
        data.inputs(slice(None))
    for size in (0, -3, True):
        with pytest.raises(ValueError, match="image_size must be a positive integer"):
            load_image_folder(tmp_path, image_size=size)
    resized = load_image_folder(tmp_path, image_size=4)
    assert resized.input_shape == (1, 4, 4) and resized.inputs(slice(None)).shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    "layout,match",
    [
        ({"only": ["x.png"]}, r"one folder per class \(at least 2\)"),
        ({"a": ["x.png"], "b": ["y.txt"]}, "holds no images"),
    ],
)
def test_bad_image_folders_get_clear_errors(tmp_path: Path, layout: dict[str, list[str]], match: str) -> None:
    for folder, files in layout.items():
        for name in files:
            if name.endswith(".png"):
                _image(tmp_path / folder / name, (2, 2), 0)
            else:
                (tmp_path / folder).mkdir(parents=True, exist_ok=True)
                (tmp_path / folder / name).write_text("x")
    with pytest.raises(ValueError, match=match):
        load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        load_image_folder(tmp_path / "missing")


def test_a_corrupt_image_is_named(tmp_path: Path) -> None:
    _image(tmp_path / "a" / "1.png", (2, 2), 0)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.png").write_bytes(b"not a png")
    data = load_image_folder(tmp_path)
    with pytest.raises(ValueError, match=r"cannot read image .*2.png"):
        data.inputs(slice(None))


def test_open_data_finds_cifar_split_folders_or_one_folder(tmp_path: Path) -> None:
    assert open_data(tmp_path / "file.npz", "test") is None
    _write_cifar(tmp_path / "cifar", {**TRAIN, "test_batch": 2})
    assert len(open_data(tmp_path / "cifar", "test")) == 2 and len(open_data(tmp_path / "cifar", "train")) == sum(
        TRAIN.values()
    )
    for split, count in (("train", 3), ("val", 1)):
        for k in range(count):
            _image(tmp_path / "imagenet" / split / "a" / f"{k}.png", (2, 2), k)
            _image(tmp_path / "imagenet" / split / "b" / f"{k}.png", (2, 2), k)
    assert len(open_data(tmp_path / "imagenet", "train")) == 6 and len(open_data(tmp_path / "imagenet", "test")) == 2
    assert len(open_data(tmp_path / "imagenet" / "val", "train")) == 2  # a plain image folder serves both parts


def test_the_fingerprint_follows_the_files_the_view_and_the_labels(tmp_path: Path) -> None:
    _write_cifar(tmp_path, {"test_batch": 4})
    base = load_cifar10(tmp_path).fingerprint()
    assert base == load_cifar10(tmp_path).fingerprint()
    assert base != load_cifar10(tmp_path).subset(3).fingerprint()
    raw = bytearray((tmp_path / "test_batch").read_bytes())
    raw[-200] ^= 1  # one pixel bit
    (tmp_path / "test_batch").write_bytes(bytes(raw))
    assert load_cifar10(tmp_path).fingerprint() != base


def test_streamed_data_checks_its_labels_and_the_shapes_it_reads() -> None:
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\), got 2"):
        StreamedData(lambda at: np.zeros((len(at), 1)), torch.tensor([0, 2]), 2, (1,), lambda: "", "two")
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        StreamedData(lambda at: np.zeros((len(at), 1)), torch.tensor([0, 0]), 1, (1,), lambda: "", "two")
    wrong = StreamedData(lambda at: np.zeros((len(at), 2)), torch.tensor([0, 1]), 2, (1,), lambda: "", "two")
    with pytest.raises(ValueError, match=r"read inputs of shape \(2,\), expected \(1,\)"):
        wrong.inputs(slice(None))


def test_streamed_data_trains_and_certifies_like_the_same_data_in_memory(tmp_path: Path) -> None:
    import renyicert
    from renyicert.workflow.data import LabelledData
    from renyicert.workflow.certify import certify_dataset
    from renyicert.workflow.models import build_model
    from renyicert.workflow.training import train

    _write_cifar(tmp_path, {**TRAIN, "test_batch": 3})
    streamed = load_cifar10(tmp_path, "train")
    memory = LabelledData(streamed.inputs(slice(None)), streamed.y, 10)
    models = []
    for data in (streamed, memory):
        torch.manual_seed(0)
        model = build_model("resnet20", (3, 32, 32), 10)
        train(model, data, renyicert.get_mechanism("gaussian", scale=0.25), epochs=1, batch_size=8, progress=False)
        models.append(model)
    for a, b in zip(models[0].state_dict().values(), models[1].state_dict().values()):
        assert torch.equal(a, b)
    test = load_cifar10(tmp_path, "test")
    smoothed = renyicert.Smoothed(models[0], "gaussian", 10, scale=0.25, progress=False)
    from_disk = certify_dataset(smoothed, test, n0=10, n=50, progress=False)
    in_memory = certify_dataset(
        smoothed, LabelledData(test.inputs(slice(None)), test.y, 10), n0=10, n=50, progress=False
    )
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in from_disk] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in in_memory
    ]


class _Reduce:
    """An object that pickles as ``function(*arguments)`` (with ``state`` as its BUILD, if given): how a forged batch is written."""

    def __init__(self, function: object, arguments: tuple, state: object = None) -> None:
        self.reduced = (function, arguments) if state is None else (function, arguments, state)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return self.reduced


_RECONSTRUCT = np._core.multiarray._reconstruct  # what numpy's own array pickles call, as a file names it


def _forged_batch(tmp_path: Path, data: object = None, labels: object = None, protocol: int = 2) -> Path:
    batch = {
        b"data": np.zeros((2, 3072), np.uint8) if data is None else data,
        b"labels": [0, 1] if labels is None else labels,
    }
    (tmp_path / "test_batch").write_bytes(pickle.dumps(batch, protocol=protocol))
    return tmp_path


@pytest.mark.parametrize(
    "field,forged,match",
    [
        # An array with an object field over the file's bytes: numpy would read 0x4141414141414141 as a pointer (a segfault).
        ("labels", _Reduce(np.ndarray, ((4,), np.dtype([("a", "O")]), b"A" * 32, 0, None)), "refused dtype 'V8'"),
        ("data", _Reduce(np.ndarray, ((2, 3072), np.dtype("u1"), b"\0" * 6144, 0, None)), "not callable"),
        # 10^9 images over one byte with zero strides: 7.45 GB asked for by a 300-byte file.
        ("data", _Reduce(np.ndarray, ((10**9, 3072), np.dtype("u1"), b"\0", 0, (0, 0))), "not callable"),
        # _reconstruct without its BUILD: numpy would hand out uninitialised memory as pixels.
        ("data", _Reduce(_RECONSTRUCT, (np.ndarray, (2, 3072), b"B")), r"refused numpy _reconstruct"),
        ("data", _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b")), "an array without its data"),
        # A BUILD whose declared shape needs more bytes than the file holds: refused before any allocation.
        (
            "data",
            _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (10**9, 3072), np.dtype("u1"), False, b"\0" * 10)),
            r"declares shape \(1000000000, 3072\)",
        ),
        (
            "data",
            _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (2, 3072), np.dtype("O"), False, [None] * 6144)),
            "refused dtype 'O8'",
        ),
        (
            "data",
            _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (2, -3072), np.dtype("u1"), False, b"\0" * 6144)),
            "refused array shape",
        ),
        (
            "data",
            _Reduce(_RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (2, 3072), np.dtype("u1"), False, "text")),
            "array data of type str",
        ),
        (
            "labels",
            functools.reduce(lambda inner, _: [inner], range(26), [0]),
            "'labels' must be a flat list or a 1-D array of integers",
        ),
        ("labels", [0, True], "'labels' must be a flat list or a 1-D array of integers"),
        ("labels", [0, 2**70], "a label does not fit in 64 bits"),
        ("labels", np.zeros((2, 1), np.int64), "'labels' must be a flat list or a 1-D array"),
    ],
)
def test_forged_cifar_batches_are_refused_before_numpy_touches_them(
    tmp_path: Path, field: str, forged: object, match: str
) -> None:
    """Every forged pickle of the audit: object fields, buffers, strides, uninitialised memory, sizes past the file, deep labels."""
    folder = _forged_batch(tmp_path, **{field: forged})
    started = time.monotonic()
    with pytest.raises(ValueError, match=match):
        load_cifar10(folder, "test")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("order", ["C", "F"])
def test_cifar_batches_pickled_with_any_protocol_and_order_load_the_same_pixels(
    tmp_path: Path, protocol: int, order: str
) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (3, 3072), dtype=np.uint8)
    labels = np.array([4, 0, 9], dtype=">i4")  # a big-endian label array, as another machine may write it
    folder = _forged_batch(tmp_path, np.asarray(pixels, order=order), labels, protocol)
    data = load_cifar10(folder, "test")
    assert data.y.tolist() == [4, 0, 9]
    assert torch.equal(data.inputs(slice(0, 3)), torch.from_numpy(pixels.reshape(3, 3, 32, 32) / np.float32(255.0)))


def _folder_with(tmp_path: Path, image: Image.Image, suffix: str = ".png") -> Path:
    for name in ("a", "b"):
        (tmp_path / name).mkdir(parents=True, exist_ok=True)
        image.save(tmp_path / name / f"x{suffix}")
    return tmp_path


def test_sixteen_bit_grey_images_are_scaled_by_their_range_not_clipped(tmp_path: Path) -> None:
    """A 16-bit grey PNG of mean 0.48 reaches the model at mean 0.48 (8-bit conversion clipped it to 0.98)."""
    pixels = np.linspace(0, 65535 * 0.96, 64).reshape(8, 8).astype(np.uint16)
    data = load_image_folder(_folder_with(tmp_path, Image.fromarray(pixels)))
    assert data.input_shape == (1, 8, 8)
    got = data.inputs(0)[0].numpy()
    np.testing.assert_allclose(got, pixels / 65535.0, rtol=0, atol=1e-7)
    assert abs(float(got.mean()) - 0.48) < 1e-4
    resized = load_image_folder(tmp_path, image_size=4).inputs(0)
    assert resized.shape == (1, 4, 4) and abs(float(resized.mean()) - 0.48) < 0.02


def test_float_images_in_the_unit_range_are_read_as_they_are_and_others_refused(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).random((6, 6), dtype=np.float32)
    data = load_image_folder(_folder_with(tmp_path / "ok", Image.fromarray(pixels, mode="F"), ".tif"))
    assert torch.equal(data.inputs(0)[0], torch.from_numpy(pixels))  # was all zeros
    bad = _folder_with(tmp_path / "bad", Image.fromarray(pixels * 300, mode="F"), ".tif")
    with pytest.raises(ValueError, match=r"holds floating-point pixels in \[0.*, 29.*\]; .* needs them in \[0, 1\]"):
        load_image_folder(bad).inputs(0)


def test_a_wide_grey_image_in_an_rgb_folder_is_repeated_over_the_channels(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / name / "0.png")
    Image.fromarray(np.full((4, 4), 65535 // 4, np.uint16)).save(tmp_path / "b" / "1.png")
    data = load_image_folder(tmp_path)
    assert data.input_shape == (3, 4, 4)
    np.testing.assert_allclose(data.inputs(2).numpy(), (65535 // 4) / 65535.0, atol=1e-7)


def test_images_of_unknown_range_are_refused_naming_the_mode(tmp_path: Path) -> None:
    pixels = np.arange(16, dtype=np.int32).reshape(4, 4) * 1000
    folder = _folder_with(tmp_path, Image.fromarray(pixels, mode="I"), ".tif")
    with pytest.raises(ValueError, match=r"has mode 'I' \(TIFF\), whose range renyicert cannot tell"):
        load_image_folder(folder)


def test_a_decompression_bomb_is_a_one_line_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder_with(tmp_path, Image.fromarray(np.zeros((64, 64), np.uint8)))
    monkeypatch.setattr(
        Image, "MAX_IMAGE_PIXELS", 100
    )  # 64 x 64 = 4096 > 2 x 100: Pillow's bomb error, as for 20000 x 20000 at its default
    with pytest.raises(ValueError, match=r"cannot read image '.*a/x.png': Image size \(4096 pixels\) exceeds limit"):
        load_image_folder(folder)
