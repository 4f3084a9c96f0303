# ruff: noqa: RUF001, RUF002, RUF003 -- UI text uses real typography (times sign, en dash, minus)
"""Weight histograms over time (TensorBoard's "offset" view) as server SVG geometry.

One stack per layer: a histogram of the layer's weights at each chosen kept
epoch, all on the same bins, drawn as ridges offset downwards with time (the
oldest at the back and faded, the newest in front). Pure functions on arrays:
the page supplies the snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.ui import render

MAX_EPOCHS = 40  # ridges per stack; more kept epochs are subsampled evenly
N_BINS = 30  # at most; a small layer gets fewer (bins_for), so its ridges are not all spikes
MIN_BINS = 8


@dataclass
class Ridge:
    epoch: int
    d: str  # closed SVG path of the histogram's outline over its baseline
    opacity: float  # older ridges fade
    label: str  # the epoch ("1,200") on some ridges, else ""
    label_y: float


@dataclass
class Tick:
    pos: float
    label: str


@dataclass
class HistogramStack:
    layer: int  # 1-based
    shape: str  # "8×2"
    width: int
    height: int
    color: str
    ridges: list[Ridge] = field(default_factory=list)
    x_ticks: list[Tick] = field(default_factory=list)
    axis_y: float = 0.0
    left: float = 0.0
    right: float = 0.0


def subsample_epochs(epochs: Sequence[int], limit: int = MAX_EPOCHS) -> list[int]:
    """At most ``limit`` of ``epochs`` (ascending), evenly spread, first and last kept."""
    epochs = list(epochs)
    if len(epochs) <= limit:
        return epochs
    idx = np.unique(np.round(np.linspace(0, len(epochs) - 1, max(limit, 2))).astype(np.int64))
    return [epochs[i] for i in idx.tolist()]


def shared_edges(arrays: Sequence[np.ndarray], n_bins: int = N_BINS) -> np.ndarray:
    """Bin edges (n_bins + 1,) spanning every finite value of every array.

    The same convention as ``numpy.histogram(a, bins=n_bins, range=(lo, hi))`` with
    lo, hi the overall min and max: equal lo and hi widen to lo − 0.5, hi + 0.5; no
    finite value at all gives [−1, 1].
    """
    finite = [a[np.isfinite(a)] for a in (np.asarray(x, dtype=np.float64).ravel() for x in arrays)]
    values = np.concatenate(finite) if finite else np.zeros(0)
    if values.size == 0:
        lo, hi = -1.0, 1.0
    else:
        lo, hi = float(values.min()), float(values.max())
        if lo == hi:
            lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def layer_counts(arrays: Sequence[np.ndarray], edges: np.ndarray) -> np.ndarray:
    """(len(arrays), n_bins) counts of each array's finite values on the shared ``edges``."""
    rows = []
    for a in arrays:
        flat = np.asarray(a, dtype=np.float64).ravel()
        rows.append(np.histogram(flat[np.isfinite(flat)], bins=edges)[0])
    return np.array(rows, dtype=np.int64).reshape(len(rows), len(edges) - 1)


def bins_for(n_weights: int) -> int:
    """Bins for a layer of ``n_weights`` weights: about 2·√n, between MIN_BINS and N_BINS."""
    return int(min(N_BINS, max(MIN_BINS, round(2 * np.sqrt(max(n_weights, 0))))))


def _label_rows(n: int) -> set[int]:
    """Which ridges carry their epoch: first, last and about three between."""
    if n == 0:
        return set()
    return {round(k * (n - 1) / 4) for k in range(5)}


def stacked_histogram(
    layer: int,
    epochs: Sequence[int],
    arrays: Sequence[np.ndarray],
    *,
    width: int = 340,
    height: int = 220,
    n_bins: int | None = None,
) -> HistogramStack:
    """The stack of one layer: a ridge per (epoch, weight array), oldest first.

    Each ridge is the outline through its bins' counts (tops at the bin centres,
    closed on its baseline); counts share one scale across the stack, so a
    ridge's area shows the same number of weights at every epoch. ``n_bins``: None picks
    bins_for(the layer's size).
    """
    shape = "×".join(str(n) for n in np.asarray(arrays[0]).shape) if len(arrays) else ""
    color = render.CATEGORICAL[(layer - 1) % len(render.CATEGORICAL)]
    left, right, top, bottom = 8.0, width - 56.0, 6.0, height - 22.0
    stack = HistogramStack(
        layer, shape, width, height, color, axis_y=bottom, left=left, right=right
    )
    if not len(arrays):
        return stack
    edges = shared_edges(arrays, n_bins or bins_for(np.asarray(arrays[0]).size))
    counts = layer_counts(arrays, edges)
    n = len(arrays)
    ridge_h = (bottom - top) * (0.5 if n > 1 else 1.0)
    step = (bottom - top - ridge_h) / (n - 1) if n > 1 else 0.0
    peak = max(int(counts.max()), 1)
    centres = (edges[:-1] + edges[1:]) / 2
    px = render.linear_scale(centres, (edges[0], edges[-1]), (left, right))
    labelled = _label_rows(n)
    for k, (epoch, row) in enumerate(zip(epochs, counts, strict=True)):
        base = top + ridge_h + k * step
        py = base - row / peak * ridge_h
        points = "".join(f"L{x:.1f} {y:.1f}" for x, y in zip(px, py, strict=True))
        d = f"M{left:.1f} {base:.1f}{points}L{right:.1f} {base:.1f}Z"
        opacity = 1.0 if n == 1 else round(0.25 + 0.75 * k / (n - 1), 2)
        label = f"{epoch:,}" if k in labelled else ""
        stack.ridges.append(Ridge(int(epoch), d, opacity, label, round(base, 1)))
    stack.x_ticks = [
        Tick(
            float(render.linear_scale(t, (edges[0], edges[-1]), (left, right))),
            render.format_tick(t),
        )
        for t in render.nice_ticks(float(edges[0]), float(edges[-1]), 4)
        if edges[0] <= t <= edges[-1]
    ]
    return stack
