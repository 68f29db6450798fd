"""Data read from disk a batch at a time: :class:`StreamedData`, the labels in memory and the inputs read when asked for.

What CIFAR-10's batches (:mod:`renyicert.workflow.cifar`) and image folders
(:mod:`renyicert.workflow.datasets`) return: float32 in ``[0, 1]``, channels
first, fingerprinted by the SHA-256 of the files it reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.typing import NDArray

from .._validation import check_positive_int

__all__ = ["StreamedData", "files_digest"]


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
    >>> from renyicert.workflow.streamed import StreamedData
    >>> pixels = np.arange(12, dtype=np.float32).reshape(3, 1, 2, 2) / 11
    >>> data = StreamedData(lambda at: pixels[at], torch.tensor([0, 1, 1]), 2, (1, 2, 2), lambda: "abc", "three images")
    >>> len(data), data.input_shape, data.inputs(slice(1, 3)).shape
    (3, (1, 2, 2), torch.Size([2, 1, 2, 2]))
    """

    def __init__(
        self,
        read: Callable[[NDArray[np.int64]], NDArray[np.float32]],
        labels: Any,
        num_classes: int,
        input_shape: tuple[int, ...],
        source_digest: Callable[[], str],
        description: str,
        positions: NDArray[np.int64] | None = None,
    ) -> None:
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
        self._positions = (
            np.arange(len(labels), dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
        )
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
            raise ValueError(
                f"{self.description}: read inputs of shape {batch.shape[1:]}, expected {self._input_shape}"
            )
        tensor = torch.from_numpy(np.ascontiguousarray(batch))
        return tensor[0] if single else tensor

    def subset(self, count: int | None) -> StreamedData:
        """The first ``count`` inputs (all of them for ``None``)."""
        if count is None:
            return self
        count = check_positive_int(count, "count")
        return StreamedData(
            self._read,
            self._labels,
            self.num_classes,
            self._input_shape,
            self._digest,
            self.description,
            self._positions[:count],
        )

    def fingerprint(self) -> str:
        """SHA-256 of the source's bytes, the positions of this view, its labels and the number of classes: what a records file certifies."""
        digest = hashlib.sha256()
        digest.update(f"streamed:{self._digest()};classes:{self.num_classes};shape:{self._input_shape};".encode())
        digest.update(self._positions.tobytes())
        digest.update(self.y.numpy().tobytes())
        return digest.hexdigest()


def files_digest(paths: list[Path]) -> Callable[[], str]:
    """A function returning the SHA-256 of ``paths``' names and bytes (computed once, when first asked)."""
    cached: list[str] = []

    from .checkpoints import file_sha256

    def digest() -> str:
        if not cached:
            total = hashlib.sha256()
            for path in paths:
                total.update(f"{path.name}:{file_sha256(path)};".encode())
            cached.append(total.hexdigest())
        return cached[0]

    return digest
