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

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import check_positive_int
from .cifar import load_cifar10
from .streamed import StreamedData, files_digest

__all__ = ["IMAGE_SUFFIXES", "load_image_folder", "open_data"]

#: The file suffixes an image folder's images may have (case-insensitive).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


#: Pillow's 8-bit image modes: converted to grey ("L") or "RGB" by Pillow and divided by 255.
_EIGHT_BIT_MODES = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"}
)
#: Grey modes of more than 8 bits and the value that stands for white in each.
_WIDE_GREY_RANGES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0}
#: The modes whose images give one grey channel when they come first in a folder.
_GREY_MODES = frozenset({"1", "L", "I", "F", *_WIDE_GREY_RANGES})


def _wide_grey(image: Any, path: Path) -> NDArray[np.float32]:
    """A grey image of more than 8 bits as float32 in ``[0, 1]``, scaled by its mode's true range (never clipped to 8 bits)."""
    mode = image.mode
    white = _WIDE_GREY_RANGES.get(
        mode, 65535.0 if mode == "I" and image.format == "PNG" else None
    )  # PNG holds at most 16 bits; Pillow may open it as "I"
    if white is not None:
        return (np.asarray(image, dtype=np.float64) / white).astype(np.float32)
    if mode == "F":
        array = np.asarray(image, dtype=np.float32)
        if not np.isfinite(array).all() or array.size and (array.min() < 0.0 or array.max() > 1.0):
            low, high = float(np.nanmin(array)), float(np.nanmax(array))
            raise ValueError(
                f"image {str(path)!r} holds floating-point pixels in [{low:g}, {high:g}]; renyicert reads them as they are and needs them in [0, 1]"
            )
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
                    grey = np.asarray(_resized(Image.fromarray(grey, mode="F"), image_size), dtype=np.float32).clip(
                        0.0, 1.0
                    )
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
    image = image.resize(
        (max(image_size, round(width * factor)), max(image_size, round(height * factor))), Image.Resampling.BILINEAR
    )
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

    return StreamedData(
        read,
        np.array(labels),
        len(classes),
        shape,
        files_digest(paths),
        f"image folder {folder} (classes {', '.join(classes)})",
    )


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
            raise ValueError(
                f"an image size applies to image folders; {str(folder)!r} holds CIFAR-10's batches, whose images are 32x32"
            )
        return load_cifar10(folder, part)
    split = folder / ("train" if part == "train" else "val")
    if part != "train" and not split.is_dir():
        split = folder / "test"
    if (folder / "train").is_dir() and split.is_dir():
        return load_image_folder(split, image_size)
    return load_image_folder(folder, image_size)
