"""CIFAR-10's python batches (``cifar-10-batches-py/``), read without running code.

``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta`` are
pickles; they are read with an unpickler that builds nothing but numpy arrays,
lists, dicts and strings, so a file that names any other code is refused
instead of run. A batch file, once read, is kept as its 8-bit pixels (30 MB).
Nothing is downloaded: point :func:`load_cifar10` at files you already have.
"""

from __future__ import annotations

import io
import math
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .streamed import StreamedData, files_digest

__all__ = ["CIFAR10_CLASSES", "load_cifar10"]

_LATIN_1 = ("latin1", "latin-1", "iso-8859-1")


#: The class names of CIFAR-10, in label order.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


_CIFAR_TRAIN = tuple(f"data_batch_{k}" for k in range(1, 6))


_CIFAR_TEST = ("test_batch",)


#: The dtypes a CIFAR batch's arrays may have: plain numbers (no object fields, records or strings).
_NUMERIC_CODES = frozenset(
    f"{kind}{size}"
    for kind, sizes in (("b", (1,)), ("i", (1, 2, 4, 8)), ("u", (1, 2, 4, 8)), ("f", (2, 4, 8)))
    for size in sizes
)


class _NumericDtype:
    """A ``numpy.dtype`` a pickle asks for, before its BUILD: only a plain numeric code and a byte order are accepted."""

    def __init__(self, spec: Any, align: Any = False, copy: Any = True) -> None:
        code = spec.lstrip("<>=|") if isinstance(spec, str) else None
        if code not in _NUMERIC_CODES:
            raise pickle.UnpicklingError(
                f"refused dtype {spec!r}: a CIFAR batch's arrays hold plain numbers ({', '.join(sorted(_NUMERIC_CODES))})"
            )
        self.dtype = np.dtype(code)

    def __setstate__(self, state: Any) -> None:
        if (
            not isinstance(state, tuple)
            or len(state) < 5
            or state[1] not in ("<", ">", "|", "=")
            or any(part is not None for part in state[2:5])
        ):
            raise pickle.UnpicklingError(
                f"refused dtype state {state!r}: only a plain numeric dtype and its byte order"
            )
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
        raise pickle.UnpicklingError(
            f"refused array data of type {type(raw).__name__}: an array's data must be its bytes"
        )
    if not isinstance(shape, tuple) or not all(type(side) is int and side >= 0 for side in shape):
        raise pickle.UnpicklingError(f"refused array shape {shape!r}: it must be a tuple of integers >= 0")
    count = math.prod(shape)  # Python integers: a declared size cannot overflow
    if count * dtype.itemsize != len(raw):
        raise pickle.UnpicklingError(
            f"an array declares shape {shape} of {dtype} ({count * dtype.itemsize} bytes) over {len(raw)} bytes of data"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


class _PendingArray:
    """What ``numpy``'s ``_reconstruct`` returns here: an empty placeholder, filled by its BUILD from the file's bytes (and nothing else)."""

    def __init__(self) -> None:
        self.array: NDArray[Any] | None = None

    def __setstate__(self, state: Any) -> None:
        if (
            self.array is not None
            or not isinstance(state, tuple)
            or len(state) != 5
            or state[0] != 1
            or type(state[3]) is not bool
        ):
            raise pickle.UnpicklingError("refused an array state that is not (1, shape, dtype, fortran order, bytes)")
        self.array = _array_from_bytes(state[4], state[2], state[1], state[3])


class _NdarrayClass:
    """``numpy.ndarray`` as a pickle names it: accepted only as ``_reconstruct``'s first argument, never called."""


_NDARRAY = _NdarrayClass()


def _reconstruct(cls: Any, shape: Any, code: Any) -> _PendingArray:
    if cls is not _NDARRAY or shape != (0,) or code not in (b"b", "b"):
        raise pickle.UnpicklingError(
            f"refused numpy _reconstruct{(cls, shape, code)!r}: only a plain ndarray, built from its bytes"
        )
    return _PendingArray()


def _scalar(dtype: Any, raw: Any = None) -> Any:
    if not isinstance(raw, bytes):
        raise pickle.UnpicklingError(
            f"refused a numpy scalar over {type(raw).__name__}: only plain numbers from their bytes"
        )
    return _array_from_bytes(raw, dtype, (1,))[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> NDArray[Any]:
    if order not in ("C", "F"):
        raise pickle.UnpicklingError(f"refused array order {order!r}")
    return _array_from_bytes(buffer, dtype, shape, order == "F")


def _encode(text: Any, encoding: Any = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in _LATIN_1:
        raise pickle.UnpicklingError(
            f"refused _codecs.encode of {type(text).__name__} as {encoding!r}: only a Python 2 byte string (latin-1)"
        )
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
        ("numpy", "ndarray"): _NDARRAY,
        ("numpy", "dtype"): _NumericDtype,
        ("_codecs", "encode"): _encode,
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._STAND_INS:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: a CIFAR batch holds only arrays, lists and strings"
            )
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
        raise ValueError(
            f"{str(path)!r}: 'labels' must be a flat list or a 1-D array of integers, got {type(labels).__name__}"
        )
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
        raise ValueError(
            f"{str(path)!r} is not a CIFAR-10 python batch: it holds a {type(content).__name__}, not a dict"
        )
    fields = {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}
    pixels, labels = _built(fields.get("data"), path, "data"), _built(fields.get("labels"), path, "labels")
    if not isinstance(pixels, np.ndarray) or pixels.dtype != np.uint8 or pixels.ndim != 2 or pixels.shape[1] != 3072:
        shape = getattr(pixels, "shape", None)
        raise ValueError(
            f"{str(path)!r}: 'data' must be a uint8 array (N, 3072) of 32x32 RGB images, got {type(pixels).__name__} {shape}"
        )
    return pixels.reshape(-1, 3, 32, 32), _checked_labels(labels, pixels.shape[0], path)


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
    >>> from renyicert.workflow.cifar import load_cifar10
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
        raise ValueError(
            f"{str(folder)!r} is not a CIFAR-10 python folder: it lacks {missing} (the files of cifar-10-python.tar.gz)"
        )
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

    return StreamedData(
        read, np.concatenate(labels), 10, (3, 32, 32), files_digest(paths), f"CIFAR-10 {part} ({folder})"
    )
