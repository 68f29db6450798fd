"""The data sets of the field, read from disk in batches: CIFAR-10's python batches and image folders.

Nothing is downloaded: point these at files you already have.  Both return a
:class:`StreamedData`, which holds the labels in memory and reads the inputs
only when a batch of them is asked for (:meth:`StreamedData.inputs`), as
float32 in ``[0, 1]`` (8-bit pixels divided by 255, 16-bit ones by 65535), channels first.

``cifar-10-batches-py/``
    The python version of CIFAR-10 (``data_batch_1`` ... ``data_batch_5``,
    ``test_batch``, ``batches.meta``).  These files are pickles; they are read
    with an unpickler that builds nothing but numpy arrays, lists, dicts and
    strings, so a file that names any other code is refused instead of run.
    A batch file, once read, is kept as its 8-bit pixels (30 MB).
Image folders
    One folder per class (``root/cat/0001.png``, ...), classes numbered in the
    sorted order of their folder names, as torchvision's ``ImageFolder`` does.
    Each image is opened with Pillow when its batch is read.  All images must
    have one size, or give ``image_size`` to resize each (shorter side) and
    crop its centre.
"""

from __future__ import annotations

import hashlib
import io
import math
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

__all__ = ["CIFAR10_CLASSES", "IMAGE_SUFFIXES", "StreamedData", "load_cifar10", "load_image_folder", "open_data"]

#: The class names of CIFAR-10, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: The file suffixes an image folder's images may have (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")
_CIFAR_TRAIN = tuple(f"data_batch_{k}" for k in range(1, 6))
_CIFAR_TEST = ("test_batch",)


class StreamedData:
    """Labelled inputs read from disk a batch at a time: the interface of :class:`~renyicert.workflow.data.LabelledData` without ``x``.

    Parameters
    ----------
    read
        ``read(positions)`` -> float32 array ``(len(positions), *input_shape)`` of the inputs at those positions (of the whole source).
    labels
        The label of every input of the source (int64).
    num_classes
        Classes the labels index.
    input_shape
        The shape of one input.
    source_digest
        ``source_digest()`` -> a hex digest of the source's bytes (the files), for :meth:`fingerprint`.
    description
        What the source is, for messages.
    positions
        The source positions this view holds (all of them for ``None``).

    Examples
    --------
    >>> import numpy as np, torch
    >>> from renyicert.workflow.datasets import StreamedData
    >>> pixels = np.arange(12, dtype=np.float32).reshape(3, 1, 2, 2) / 11
    >>> data = StreamedData(lambda at: pixels[at], torch.tensor([0, 1, 1]), 2, (1, 2, 2), lambda: "abc", "three images")
    >>> len(data), data.input_shape, data.inputs(slice(1, 3)).shape
    (3, (1, 2, 2), torch.Size([2, 1, 2, 2]))
    """

    def __init__(
        self, read: Callable[[NDArray[np.int64]], NDArray[np.float32]], labels: Any, num_classes: int, input_shape: tuple[int, ...],
        source_digest: Callable[[], str], description: str, positions: NDArray[np.int64] | None = None,
    ) -> None:  # fmt: skip
        import torch

        labels = torch.as_tensor(labels, dtype=torch.int64)
        if labels.dim() != 1:
            raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
            bad = int(labels.min()) if int(labels.min()) < 0 else int(labels.max())
            raise ValueError(f"labels must be in [0, {num_classes}), got {bad} ({description})")
        self._read = read
        self._labels = labels
        self._positions = np.arange(len(labels), dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
        self._digest = source_digest
        self.num_classes = num_classes
        self.description = description
        self._input_shape = tuple(int(s) for s in input_shape)

    @property
    def y(self) -> Any:
        """The labels of this view (int64, in memory)."""
        return self._labels[self._positions]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input."""
        return self._input_shape

    def __len__(self) -> int:
        return len(self._positions)

    def inputs(self, index: Any) -> Any:
        """The inputs at ``index`` (a slice, an int, or a tensor/list/array of positions in this view), read now, as a float32 tensor."""
        import torch

        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        chosen = self._positions[index]
        single = np.ndim(chosen) == 0
        batch = np.asarray(self._read(np.atleast_1d(chosen)), dtype=np.float32)
        if batch.shape[1:] != self._input_shape:
            raise ValueError(f"{self.description}: read inputs of shape {batch.shape[1:]}, expected {self._input_shape}")
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        return tensor[0] if single else tensor

    def subset(self, count: int | None) -> StreamedData:
        """The first ``count`` inputs (all of them for ``None``)."""
        from .._validation import check_positive_int

        if count is None:
            return self
        count = check_positive_int(count, "count")
        return StreamedData(self._read, self._labels, self.num_classes, self._input_shape, self._digest, self.description, self._positions[:count])

    def fingerprint(self) -> str:
        """SHA-256 of the source's bytes, the positions of this view, its labels and the number of classes: what a records file certifies."""
        digest = hashlib.sha256()
        digest.update(f"streamed:{self._digest()};classes:{self.num_classes};shape:{self._input_shape};".encode())
        digest.update(self._positions.tobytes())
        digest.update(self.y.numpy().tobytes())
        return digest.hexdigest()


#: The dtypes a CIFAR batch's arrays may have: plain numbers (no object fields, records or strings).
_NUMERIC_CODES = frozenset(f"{kind}{size}" for kind, sizes in (("b", (1,)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)), ("f", (2, 4, 8))) for size in sizes)
_LATIN_1 = ("latin1", "latin-1", "iso-8859-1")


class _NumericDtype:
    """A ``numpy.dtype`` a pickle asks for, before its BUILD: only a plain numeric code and a byte order are accepted."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        code = spec.lstrip("<>=|") if isinstance(spec, str) else None
        if code not in _NUMERIC_CODES:
            raise pickle.UnpicklingError(f"refused dtype {spec!r}: a CIFAR batch's arrays hold plain numbers ({', '.join(sorted(_NUMERIC_CODES))})")
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", ">", "|", "=") or any(part is not None for part in state[2:5]):
            raise pickle.UnpicklingError(f"refused dtype state {state!r}: only a plain numeric dtype and its byte order")
        if state[1] in ("<", ">") and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(state[1])


def _numeric(dtype: Any) -> np.dtype[Any]:
    if not isinstance(dtype, _NumericDtype):
        raise pickle.UnpicklingError(f"refused an array of dtype {type(dtype).__name__}: only plain numeric dtypes")
    return dtype.dtype


def _array_from_bytes(raw: Any, dtype: Any, shape: Any, fortran: bool = False) -> NDArray[Any]:
    """An array over ``raw`` (bytes from the file), after checking that the declared shape and dtype need exactly its length."""
    dtype = _numeric(dtype)
    if isinstance(raw, pickle.PickleBuffer):
        raw = raw.raw()
    if isinstance(raw, (bytearray, memoryview)):  # protocol 5 writes a writable buffer in band as a bytearray
        raw = bytes(raw)
    if not isinstance(raw, bytes):
        raise pickle.UnpicklingError(f"refused array data of type {type(raw).__name__}: an array's data must be its bytes")
    if not isinstance(shape, tuple) or not all(type(side) is int and side >= 0 for side in shape):
        raise pickle.UnpicklingError(f"refused array shape {shape!r}: it must be a tuple of integers >= 0")
    count = math.prod(shape)  # Python integers: a declared size cannot overflow
    if count * dtype.itemsize != len(raw):
        raise pickle.UnpicklingError(f"an array declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes) over {len(raw)} bytes of data")
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


class _PendingArray:
    """What ``numpy``'s ``_reconstruct`` returns here: an empty placeholder, filled by its BUILD from the file's bytes (and nothing else)."""

    def __init__(self) -> None:
        self.array: NDArray[Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if self.array is not None or not isinstance(state, tuple) or len(state) != 5 or state[0] != 1 or type(state[3]) is not bool:
            raise pickle.UnpicklingError("refused an array state that is not (1, shape, dtype, fortran order, bytes)")
        self.array = _array_from_bytes(state[4], state[2], state[1], state[3])


class _NdarrayClass:
    """``numpy.ndarray`` as a pickle names it: accepted only as ``_reconstruct``'s first argument, never called."""


_NDARRAY = _NdarrayClass()


def _reconstruct(cls: Any, shape: Any, code: Any) -> _PendingArray:
    if cls is not _NDARRAY or shape != (0,) or code not in (b"b", "b"):
        raise pickle.UnpicklingError(f"refused numpy _reconstruct{(cls, shape, code)!r}: only a plain ndarray, built from its bytes")
    return _PendingArray()


def _scalar(dtype: Any, raw: Any = None) -> Any:
    if not isinstance(raw, bytes):
        raise pickle.UnpicklingError(f"refused a numpy scalar over {type(raw).__name__}: only plain numbers from their bytes")
    return _array_from_bytes(raw, dtype, (1,))[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> NDArray[Any]:
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"refused array order {order!r}")
    return _array_from_bytes(buffer, dtype, shape, order == "F")


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in _LATIN_1:
        raise pickle.UnpicklingError(f"refused _codecs.encode of {type(text).__name__} as {encoding!r}: only a Python 2 byte string (latin-1)")
    return text.encode("latin-1")


class _ArraysOnly(pickle.Unpickler):
    """An unpickler that builds plain numeric numpy arrays from the file's bytes, and plain containers; it refuses anything else.

    numpy's own pickle functions are never called: the globals a file may name
    are replaced by the checked stand-ins above, so a file cannot give an array
    object fields (pointers the file chooses), a buffer or strides of its own,
    uninitialised memory (a ``_reconstruct`` without its BUILD), or a size
    larger than the bytes that it holds.
    """

    _STAND_INS: dict[tuple[str, str], Any] = {
        **{(module, "_reconstruct"): _reconstruct for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(module, "scalar"): _scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
        **{(module, "_frombuffer"): _frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
        ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _NumericDtype, ("_codecs", "encode"): _encode,
    }  # fmt: skip

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._STAND_INS:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: a CIFAR batch holds only arrays, lists and strings")
        return self._STAND_INS[module, name]


def _built(value: Any, path: Path, field: str) -> Any:
    """``value`` with a placeholder array replaced by its array; a ``ValueError`` if the file never gave it its data."""
    if isinstance(value, _PendingArray):
        if value.array is None:
            raise ValueError(f"{str(path)!r}: {field!r} is an array without its data (a _reconstruct with no BUILD)")
        return value.array
    return value


def _checked_labels(labels: Any, count: int, path: Path) -> NDArray[np.int64]:
    """``labels`` as int64, checked *before* numpy sees them: a flat list of integers or a 1-D integer array, one per image."""
    flat = isinstance(labels, list) and all((type(v) is int) or isinstance(v, np.integer) for v in labels)
    array_ok = isinstance(labels, np.ndarray) and labels.ndim == 1 and np.issubdtype(labels.dtype, np.integer)
    if not (flat or array_ok):
        raise ValueError(f"{str(path)!r}: 'labels' must be a flat list or a 1-D array of integers, got {type(labels).__name__}")
    if len(labels) != count:
        raise ValueError(f"{str(path)!r}: 'labels' must be {count} integers, one per image, got {len(labels)}")
    if flat and any(not -(2**63) <= int(v) < 2**63 for v in labels):
        raise ValueError(f"{str(path)!r}: a label does not fit in 64 bits")
    return np.asarray(labels, dtype=np.int64)


def _read_batch(path: Path) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """``(pixels (N, 3, 32, 32) uint8, labels (N,))`` of one CIFAR-10 python batch file, every field checked."""
    try:
        content = _ArraysOnly(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as error:
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 python batch: {type(error).__name__}: {error}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{str(path)!r} is not a CIFAR-10 python batch: it holds a {type(content).__name__}, not a dict")
    fields = {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}
    pixels, labels = _built(fields.get("data"), path, "data"), _built(fields.get("labels"), path, "labels")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        shape = getattr(pixels, "shape", None)
        raise ValueError(f"{str(path)!r}: 'data' must be a uint8 array (N, 3072) of 32x32 RGB images, got {type(pixels).__name__} {shape}")
    return pixels.reshape(-1, 3, 32, 32), _checked_labels(labels, pixels.shape[0], path)


def _files_digest(paths: list[Path]) -> Callable[[], str]:
    """A function returning the SHA-256 of ``paths``' names and bytes (computed once, when first asked)."""
    cached: list[str] = []

    from .models import file_sha256

    def digest() -> str:
        if not cached:
            total = hashlib.sha256()
            for path in paths:
                total.update(f"{path.name}:{file_sha256(path)};".encode())
            cached.append(total.hexdigest())
        return cached[0]

    return digest


def load_cifar10(folder: str | Path, part: str = "test") -> StreamedData:
    """The ``"train"`` (50,000 images) or ``"test"`` (10,000) part of CIFAR-10's python batches in ``folder``.

    Parameters
    ----------
    folder
        The ``cifar-10-batches-py`` folder (as unpacked from ``cifar-10-python.tar.gz``).
    part
        ``"train"`` reads ``data_batch_1`` to ``data_batch_5``, ``"test"`` reads ``test_batch``.

    Examples
    --------
    >>> import pickle, tempfile, numpy as np
    >>> from pathlib import Path
    >>> from renyicert.workflow.datasets import load_cifar10
    >>> folder = Path(tempfile.mkdtemp())
    >>> batch = {b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 9]}
    >>> _ = (folder / "test_batch").write_bytes(pickle.dumps(batch, protocol=2))
    >>> test = load_cifar10(folder)
    >>> len(test), test.input_shape, test.num_classes, float(test.inputs(slice(0, 2)).max())
    (4, (3, 32, 32), 10, 0.0)
    """
    folder = Path(folder)
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    names = _CIFAR_TRAIN if part == "train" else _CIFAR_TEST
    paths = [folder / name for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"{str(folder)!r} is not a CIFAR-10 python folder: it lacks {missing} (the files of cifar-10-python.tar.gz)")
    labels, starts = [], [0]
    for path in paths:  # the labels are read up front; the pixels are kept as they are read
        batch_labels = _read_batch(path)[1]
        labels.append(batch_labels)
        starts.append(starts[-1] + len(batch_labels))
    cache: OrderedDict[int, NDArray[np.uint8]] = OrderedDict()
    ends = np.array(starts[1:])

    def read(positions: NDArray[np.int64]) -> NDArray[np.float32]:
        out = np.empty((len(positions), 3, 32, 32), dtype=np.float32)
        files = np.searchsorted(ends, positions, side="right")
        for file in np.unique(files):
            if file not in cache:
                cache[int(file)] = _read_batch(paths[file])[0]
            chosen = files == file
            out[chosen] = cache[int(file)][positions[chosen] - starts[file]] / np.float32(255.0)
        return out

    return StreamedData(read, np.concatenate(labels), 10, (3, 32, 32), _files_digest(paths), f"CIFAR-10 {part} ({folder})")


#: Pillow's 8-bit image modes: converted to grey ("L") or "RGB" by Pillow and divided by 255.
_EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
#: Grey modes of more than 8 bits and the value that stands for white in each.
_WIDE_GREY_RANGES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0}
#: The modes whose images give one grey channel when they come first in a folder.
_GREY_MODES = frozenset({"1", "L", "I", "F", *_WIDE_GREY_RANGES})


def _wide_grey(image: Any, path: Path) -> NDArray[np.float32]:
    """A grey image of more than 8 bits as float32 in ``[0, 1]``, scaled by its mode's true range (never clipped to 8 bits)."""
    mode = image.mode
    white = _WIDE_GREY_RANGES.get(mode, 65535.0 if mode == "I" and image.format == "PNG" else None)  # PNG holds at most 16 bits; Pillow may open it as "I"
    if white is not None:
        return (np.asarray(image, dtype=np.float64) / white).astype(np.float32)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all() or array.size and (array.min() < 0.0 or array.max() > 1.0):
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            raise ValueError(f"image {str(path)!r} holds floating-point pixels in [{low:g}, {high:g}]; renyicert reads them as they are and needs them in [0, 1]")
        return array
    raise ValueError(
        f"image {str(path)!r} has mode {mode!r} ({image.format or 'unknown format'}), whose range renyicert cannot tell; "
        "save it as 8-bit or 16-bit grey or RGB, or as floating-point grey in [0, 1]"
    )


def _image_array(path: Path, mode: str, image_size: int | None) -> NDArray[np.float32]:
    """One image as ``(channels, height, width)`` float32 in ``[0, 1]``, grey (``mode`` "L") or "RGB", resized and centre-cropped to ``image_size`` if given.

    8-bit images are converted by Pillow and divided by 255; grey images of 16
    bits are divided by 65535 and floating-point grey ones taken as they are (in
    ``[0, 1]``, else refused), so no pixel is clipped; any other mode is refused, naming it.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.mode in _EIGHT_BIT_MODES:
                image = image.convert(mode)
                if image_size is not None:
                    image = _resized(image, image_size)
                array = np.asarray(image, dtype=np.uint8) / np.float32(255.0)
            else:
                grey = _wide_grey(image, path)
                if image_size is not None:
                    grey = np.asarray(_resized(Image.fromarray(grey, mode="F"), image_size), dtype=np.float32).clip(0.0, 1.0)
                array = grey if mode == "L" else np.repeat(grey[..., None], 3, axis=2)
    except (OSError, Image.DecompressionBombError) as error:  # a bomb is no OSError
        raise ValueError(f"cannot read image {str(path)!r}: {error}") from None
    array = array.astype(np.float32, copy=False)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _resized(image: Any, image_size: int) -> Any:
    """``image`` with its shorter side resized to ``image_size`` (bilinear) and its centre cropped to a square."""
    from PIL import Image

    width, height = image.size
    factor = image_size / min(width, height)
    image = image.resize((max(image_size, round(width * factor)), max(image_size, round(height * factor))), Image.Resampling.BILINEAR)
    left, top = (image.size[0] - image_size) // 2, (image.size[1] - image_size) // 2
    return image.crop((left, top, left + image_size, top + image_size))


def load_image_folder(folder: str | Path, image_size: int | None = None) -> StreamedData:
    """Images in one folder per class (``folder/<class>/<image>``), classes numbered in sorted order of their names.

    Parameters
    ----------
    folder
        The root: its sub-folders are the classes; files with one of :data:`IMAGE_SUFFIXES` are the images.
    image_size
        If given, each image's shorter side is resized to this and its centre cropped to a square;
        otherwise every image must have the size of the first.

    The channels are RGB, or one grey channel when the first image is grey.
    The class names are in ``StreamedData.description``.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from renyicert.workflow.datasets import load_image_folder
    >>> root = Path(tempfile.mkdtemp())
    >>> for name in ("cat", "dog"):
    ...     (root / name).mkdir()
    ...     Image.fromarray(np.full((6, 6, 3), 255, np.uint8)).save(root / name / "a.png")
    >>> data = load_image_folder(root)
    >>> len(data), data.input_shape, data.y.tolist(), float(data.inputs(slice(0, 1)).min())
    (2, (3, 6, 6), [0, 1], 1.0)
    """
    from PIL import Image

    from .._validation import check_positive_int

    folder = Path(folder)
    if image_size is not None:
        image_size = check_positive_int(image_size, "image_size")
    if not folder.is_dir():
        raise ValueError(f"image folder {str(folder)!r} does not exist")
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ValueError(f"{str(folder)!r} must hold one folder per class (at least 2), found {classes}")
    paths: list[Path] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        images = sorted(p for p in (folder / name).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise ValueError(f"class folder {str(folder / name)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        paths += images
        labels += [label] * len(images)
    try:
        with Image.open(paths[0]) as first:
            mode = "L" if first.mode in _GREY_MODES else "RGB"
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {str(paths[0])!r}: {error}") from None
    shape = _image_array(paths[0], mode, image_size).shape

    def read(positions: NDArray[np.int64]) -> NDArray[np.float32]:
        out = np.empty((len(positions), *shape), dtype=np.float32)
        for k, position in enumerate(positions):
            array = _image_array(paths[position], mode, image_size)
            if array.shape != shape:
                raise ValueError(
                    f"image {str(paths[position])!r} is {array.shape[2]}x{array.shape[1]}, the first is {shape[2]}x{shape[1]}: "
                    "give an image size (--image-size) to resize them all"
                )
            out[k] = array
        return out

    return StreamedData(read, np.array(labels), len(classes), shape, _files_digest(paths), f"image folder {folder} (classes {', '.join(classes)})")


def open_data(path: str | Path, part: str, *, image_size: int | None = None) -> StreamedData | None:
    """The ``part`` of a data set folder, or ``None`` when ``path`` is not a folder.

    A folder holding ``test_batch`` or ``data_batch_1`` is CIFAR-10's python
    batches; one holding ``train/`` and ``val/`` (or ``test/``) image folders
    gives those for ``"train"`` and ``"test"``; any other folder is one image
    folder, the same for both parts.
    """
    folder = Path(path)
    if not folder.is_dir():
        return None
    if (folder / "test_batch").is_file() or (folder / "data_batch_1").is_file():
        if image_size is not None:
            raise ValueError(f"an image size applies to image folders; {str(folder)!r} holds CIFAR-10's batches, whose images are 32x32")
        return load_cifar10(folder, part)
    split = folder / ("train" if part == "train" else "val")
    if part != "train" and not split.is_dir():
        split = folder / "test"
    if (folder / "train").is_dir() and split.is_dir():
        return load_image_folder(split, image_size)
    return load_image_folder(folder, image_size)
