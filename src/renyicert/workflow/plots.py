"""Certified-accuracy curves as PNG files, and how plots and tables name bounds and norms.

matplotlib with the Agg backend (no display needed); the legend sits outside
the axes so that it never covers a curve.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BOUND_LABELS", "TENG_NOTE", "bound_label", "norm_name", "plot_certified_accuracy"]


BOUND_LABELS = {
    "renyi": "Rényi (Li et al. 2019)",
    "tight": "tight (Cohen 2019 / Teng 2020)",
    "pixeldp": "PixelDP (Lecuyer 2019)",
    "best": "best of the bounds (their maximum, same alpha)",
}


def norm_name(norm: float) -> str:
    """A mechanism's norm as tables and plots name it.

    Examples
    --------
    >>> from renyicert.workflow.plots import norm_name
    >>> norm_name(2.0), norm_name(1), norm_name(float("inf"))
    ('l2', 'l1', 'linf')
    """
    return "linf" if math.isinf(norm) else f"l{float(norm):g}"


def bound_label(bound: str, mechanism: str | None = None) -> str:
    """How a plot or table names ``bound`` for ``mechanism``: Teng et al.'s Laplace bound says that it uses p1 only.

    Examples
    --------
    >>> from renyicert.workflow.plots import bound_label
    >>> bound_label("tight", "laplace")
    'Teng 2020 (p1 only)'
    """
    if bound == "tight" and mechanism == "laplace":
        return "Teng 2020 (p1 only)"
    if bound == "tight" and mechanism == "gaussian":
        return "tight (Cohen 2019)"
    return BOUND_LABELS.get(bound, bound)


#: The caption of a plot holding Teng et al.'s Laplace curve beside the Rényi one.
TENG_NOTE = (
    "Teng et al.'s Laplace certificate uses the top class's bound p1 only (it takes p2 = 1 - p1); the Rényi bound here also uses the "
    "runner-up's upper bound p2, so it can certify more from the same counts. A lower Teng curve is that, not an error."
)


def _zero_from(radii: Any, accuracy: Any) -> float:
    """The radius from which a curve stays at zero (its last radius if it never does)."""
    radii, accuracy = np.asarray(radii, dtype=float), np.asarray(accuracy, dtype=float)
    if radii.size == 0:
        return 0.0
    nonzero = np.flatnonzero(accuracy > 0)
    if nonzero.size == 0:
        return float(radii[0])
    last = int(nonzero[-1])
    return float(radii[min(last + 1, radii.size - 1)])


def plot_certified_accuracy(
    curves: dict[str, tuple[Any, Any]],
    path: str | Path,
    *,
    title: str,
    norm: str,
    empirical: dict[str, tuple[Any, Any]] | None = None,
    note: str | None = None,
    dashed: Sequence[str] = (),
) -> Path:
    """Plot certified accuracy against radius, one line per entry of ``curves`` (``label -> (radii, accuracies)``), to a PNG.

    ``empirical`` adds dashed lines with markers (``label -> (eps, robust accuracy)``),
    the ``i``-th in the colour of the ``i``-th curve.  The x axis runs to where
    every curve has reached zero (give radii past the largest certified one:
    :func:`curve_radii`), the legend sits outside the axes so that it never
    covers a curve, and ``note`` is printed under the plot as its caption.
    The curves labelled in ``dashed`` are drawn dashed, on top, so that a curve
    they coincide with (the best bound over the one that gave it) stays visible.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9.0, 4.5), dpi=120)
    right = 0.0
    for i, (label, (radii, accuracy)) in enumerate(curves.items()):
        style = {"linestyle": (0, (4, 3)), "linewidth": 2.0, "zorder": 3} if label in dashed else {"linewidth": 1.8}
        axes.step(radii, accuracy, where="post", label=label, color=f"C{i % 10}", **style)
        right = max(right, _zero_from(radii, accuracy))
    for i, (label, (eps, accuracy)) in enumerate(
        (empirical or {}).items()
    ):  # the i-th empirical line pairs with the i-th curve
        axes.plot(eps, accuracy, linestyle="--", marker="o", markersize=4, label=label, color=f"C{i % 10}")
        right = max(right, float(np.max(eps)) if len(eps) else 0.0)
    axes.set_xlabel(f"radius r ({norm} norm, in the units of the inputs: [0, 1])")
    axes.set_ylabel("accuracy on the test set")
    axes.set_ylim(0.0, 1.02)
    axes.set_xlim(0.0, right * 1.04 if right > 0 else 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    if note:
        axes.text(
            0.0, -0.16, "\n".join(textwrap.wrap(note, 120)), transform=axes.transAxes, fontsize=7.5, va="top", ha="left"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, bbox_inches="tight")
    plt.close(figure)
    return path
