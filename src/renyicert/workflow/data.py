"""Data: the embedded default (scikit-learn's digits) and user-supplied tensors.

Everything here returns a :class:`LabelledData`: float32 inputs ``x`` of shape
``(N, *input_shape)`` and int64 labels ``y`` in ``[0, num_classes)``.  The
default is scikit-learn's copy of the UCI handwritten digits (1,797 real 8x8
images, 10 classes), which ships inside the scikit-learn package: nothing is
downloaded.  Pixels (0 to 16) are scaled to ``[0, 1]`` and the images kept as
``(1, 8, 8)`` so that a CNN and an MLP both take them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validation import check_positive_int
from .streamed import StreamedData

__all__ = [
    "DIGITS_SHAPE",
    "LabelledData",
    "as_labelled_data",
    "check_input_range",
    "load_data",
    "load_digits",
    "parse_input_range",
]

#: The most classes the largest-label rule infers (beyond it, give the number of classes).
_MAX_DEFAULT_CLASSES = 100_000
#: Shape of one digits image.
DIGITS_SHAPE = (1, 8, 8)


@dataclass(frozen=True)
class LabelledData:
    """Inputs ``x`` ``(N, *input_shape)`` (float32) with labels ``y`` ``(N,)`` (int64).

    Examples
    --------
    >>> from renyicert.workflow.data import load_digits
    >>> train, test = load_digits()
    >>> len(train), len(test), test.input_shape, test.num_classes
    (1437, 360, (1, 8, 8), 10)
    """

    x: Any
    y: Any
    num_classes: int

    def __post_init__(self) -> None:
        import torch

        if not isinstance(self.x, torch.Tensor) or not self.x.dtype.is_floating_point:
            raise TypeError(
                f"x must be a floating-point torch.Tensor, got {type(self.x).__name__} {getattr(self.x, 'dtype', '')}".rstrip()
            )
        if not isinstance(self.y, torch.Tensor) or self.y.dtype.is_floating_point or self.y.dim() != 1:
            raise TypeError(
                f"y must be a 1-D integer torch.Tensor of labels, got {type(self.y).__name__} of shape {tuple(getattr(self.y, 'shape', ()))}"
            )
        if self.x.dim() < 2 or self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x must be (N, *input_shape) with N = len(y) = {self.y.shape[0]}, got shape {tuple(self.x.shape)}"
            )
        if not torch.isfinite(self.x).all():
            raise ValueError("x contains NaN or inf")
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise ValueError(f"num_classes must be an integer >= 2, got {self.num_classes!r}")
        if self.y.numel() and (int(self.y.min()) < 0 or int(self.y.max()) >= self.num_classes):
            bad = int(self.y.min()) if int(self.y.min()) < 0 else int(self.y.max())
            raise ValueError(f"labels must be in [0, {self.num_classes}), got {bad}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input."""
        return tuple(int(s) for s in self.x.shape[1:])

    def inputs(self, index: Any) -> Any:
        """The inputs at ``index`` (a slice, or a tensor or list of positions) as a float tensor: what every consumer reads.

        A streamed data set (:class:`~renyicert.workflow.streamed.StreamedData`) reads
        them from disk here; this in-memory one returns ``x[index]``.
        """
        return self.x[index]

    def fingerprint(self) -> str:
        """SHA-256 of the inputs and labels (values, dtypes, shapes) and the number of classes: what a records file certifies.

        Examples
        --------
        >>> from renyicert.workflow.data import load_digits
        >>> test = load_digits()[1]
        >>> test.fingerprint() == test.subset(360).fingerprint() != test.subset(10).fingerprint()
        True
        """
        import hashlib

        digest = hashlib.sha256()
        for name, tensor in (("x", self.x), ("y", self.y)):
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
            digest.update(array.tobytes())
        digest.update(f"classes:{self.num_classes}".encode())
        return digest.hexdigest()

    def subset(self, count: int | None) -> LabelledData:
        """The first ``count`` examples (all of them for ``None``)."""
        if count is None:
            return self
        count = check_positive_int(count, "count")
        return LabelledData(self.x[:count], self.y[:count], self.num_classes)


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """scikit-learn's digits as ``(train, test)``: a fixed stratified split, pixels in ``[0, 1]``.

    Parameters
    ----------
    test_fraction
        Share of the 1,797 images held out for testing, in ``(0, 1)``.
    seed
        Seed of the split (the default split is the one the docs report).
    """
    import torch
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    bunch = sklearn_digits()
    images = (bunch.images / 16.0).astype("float32")[:, None, :, :]
    x_train, x_test, y_train, y_test = train_test_split(
        images, bunch.target, test_size=test_fraction, stratify=bunch.target, random_state=seed
    )
    return (
        LabelledData(torch.from_numpy(x_train), torch.from_numpy(y_train).long(), 10),
        LabelledData(torch.from_numpy(x_test), torch.from_numpy(y_test).long(), 10),
    )


def as_labelled_data(source: Any, num_classes: int | None = None) -> LabelledData:
    """A ``torch.utils.data.Dataset`` of ``(x, y)`` pairs, or a pair of tensors/arrays, as :class:`LabelledData`.

    ``num_classes`` defaults to ``max(y) + 1``.
    """
    import numpy as np
    import torch

    if isinstance(source, (LabelledData, StreamedData)):
        return source  # type: ignore[return-value]
    if isinstance(source, tuple) and len(source) == 2:
        x, y = source
    elif isinstance(source, torch.utils.data.Dataset):
        try:
            pairs = [source[i] for i in range(len(source))]  # type: ignore[arg-type]
            x = torch.stack([torch.as_tensor(p[0]) for p in pairs])
            y = torch.tensor([int(p[1]) for p in pairs])
        except (TypeError, IndexError, ValueError, RuntimeError) as error:
            raise TypeError(f"the dataset must have a length and yield (x, y) pairs of one shape: {error}") from error
    else:
        raise TypeError(f"expected a torch Dataset or an (x, y) pair, got {type(source).__name__}")
    for name, value in (("x", x), ("y", y)):
        if isinstance(value, torch.Tensor) and (value.layout != torch.strided or value.device.type == "meta"):
            raise ValueError(
                f"{name} must be a dense tensor with values, got a {value.layout} tensor on {value.device}"
            )
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y)
    if not x.dtype.is_floating_point:
        x = x.float()
    if y.dtype.is_floating_point:
        if not torch.equal(y, y.round()):
            raise ValueError("labels y must be integers")
        y = y.long()
    if num_classes is None:
        largest = int(y.max()) if y.numel() else 1
        if largest >= _MAX_DEFAULT_CLASSES:
            raise ValueError(
                f"the largest label is {largest}; the number of classes is taken as the largest label + 1 only up to {_MAX_DEFAULT_CLASSES}: give num_classes (--num-classes)"
            )
        num_classes = max(largest + 1, 2)
    return LabelledData(x.float(), y.long(), num_classes)


def parse_input_range(text: str) -> tuple[float, float]:
    """``"0,255"`` -> ``(0.0, 255.0)``: the range an input file's values span, mapped onto ``[0, 1]``.

    Examples
    --------
    >>> from renyicert.workflow.data import parse_input_range
    >>> parse_input_range("0,255")
    (0.0, 255.0)
    """
    parts = [part.strip() for part in str(text).split(",")]
    try:
        low, high = (float(part) for part in parts)
    except ValueError:
        raise ValueError(f"an input range is two numbers LOW,HIGH (e.g. 0,255), got {text!r}") from None
    import math

    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"an input range needs finite LOW < HIGH, got {text!r}")
    return low, high


def check_input_range(x: Any, where: str, input_range: tuple[float, float] | None = None) -> Any:
    """``x`` mapped from ``input_range`` onto ``[0, 1]`` (unchanged for ``None``), after checking every value lies in that range.

    The noise's scale and every radius are in the units of the inputs; the
    library's plots, defaults and docs take them to be in ``[0, 1]``, as in
    Cohen et al. and Li et al.  A file outside its range is refused with the
    values it holds, never certified as is.

    Examples
    --------
    >>> import torch
    >>> from renyicert.workflow.data import check_input_range
    >>> check_input_range(torch.tensor([0.0, 127.5, 255.0]), "x", (0, 255)).tolist()
    [0.0, 0.5, 1.0]
    >>> check_input_range(torch.tensor([0.0, 254.0]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x holds values in [0, 254], outside [0, 1]: certificates are in the units of the inputs, which renyicert takes to be in [0, 1]; give the range the values span (--input-range 0,255, or input_range=(0, 255)) to map it onto [0, 1]
    """
    low, high = (0.0, 1.0) if input_range is None else input_range
    if x.numel():
        smallest, largest = float(x.min()), float(x.max())
        if smallest < low or largest > high:
            hint = (
                "give the range the values span (--input-range 0,255, or input_range=(0, 255)) to map it onto [0, 1]"
                if input_range is None
                else "give the range they span"
            )
            raise ValueError(
                f"{where} holds values in [{smallest:g}, {largest:g}], outside [{low:g}, {high:g}]: certificates are in the units of the inputs, "
                f"which renyicert takes to be in [0, 1]; {hint}"
            )
    if input_range is None:
        return x
    return ((x.double() - low) / (high - low)).clamp(0.0, 1.0).float()


def load_data(
    path: str | Path, num_classes: int | None = None, input_range: tuple[float, float] | None = None
) -> LabelledData:
    """Inputs and labels from a ``.npz`` (arrays ``x`` and ``y``) or ``.pt`` (a dict with tensors ``x`` and ``y``) file.

    ``.pt`` files are read with ``torch.load(weights_only=True)``: they cannot run code.
    The inputs must lie in ``[0, 1]``, or in ``input_range = (low, high)``, which
    is then mapped linearly onto ``[0, 1]`` (``(0, 255)`` for 8-bit pixels): a
    ``ValueError`` names the values found otherwise.
    """
    import numpy as np
    import torch

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"data file {str(path)!r} does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as arrays:
                content = {key: arrays[key] for key in arrays.files}
        elif path.suffix == ".pt":
            content = torch.load(path, weights_only=True, map_location="cpu")
        else:
            raise ValueError(f"data file must end in .npz or .pt, got {str(path)!r}")
    except ValueError:
        raise
    except Exception as error:  # a corrupt or foreign file: name it, no traceback from deep inside
        raise ValueError(f"could not read data file {str(path)!r}: {type(error).__name__}: {error}") from error
    if not isinstance(content, dict) or "x" not in content or "y" not in content:
        keys = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise ValueError(f"data file {str(path)!r} must hold 'x' and 'y'; found {keys}")
    data = as_labelled_data((content["x"], content["y"]), num_classes)
    return LabelledData(
        check_input_range(data.x, f"data file {str(path)!r}", input_range).float(), data.y, data.num_classes
    )
