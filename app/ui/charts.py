# ruff: noqa: RUF002 -- UI text uses real typography (times sign, en dash, minus)
"""Line-chart geometry (axes, ticks, downsampled paths, hover data) for the templates.

The templates only place what this module computes; every number that ends up
in an SVG attribute is produced here from floats, so nothing user-controlled
reaches markup unescaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from app.ui import render

# A chart is ~500 px wide: 120 buckets -> <= 240 points per curve, about one per 2 px
# (min/max per bucket keeps every spike); it keeps a live frame's fragments small.
DEFAULT_BUCKETS = 120
HOVER_POINTS = 100


@dataclass(frozen=True)
class SeriesIn:
    """One curve to draw: y (n,) aligned with the chart's x; NaN = gap."""

    name: str
    css: str  # class on the <path>, e.g. "train"
    y: np.ndarray
    color: str | None = None  # explicit stroke colour (compare chart, gradient norms)
    dashed: bool = False


@dataclass
class Tick:
    pos: float
    label: str


@dataclass
class SeriesOut:
    name: str
    css: str
    d: str
    color: str | None
    dashed: bool
    last: str  # the last finite value, formatted


@dataclass
class Chart:
    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    log: bool
    empty: bool
    x_ticks: list[Tick] = field(default_factory=list)
    y_ticks: list[Tick] = field(default_factory=list)
    series: list[SeriesOut] = field(default_factory=list)
    hover: str = ""  # "epoch,v1,v2;…" for app.js read-outs
    x_domain: tuple[float, float] = (0.0, 1.0)
    y_domain: tuple[float, float] = (0.0, 1.0)

    @property
    def plot_width(self) -> int:
        return self.right - self.left

    @property
    def plot_height(self) -> int:
        return self.bottom - self.top


def line_chart(
    x: np.ndarray | Sequence[float],
    series: Sequence[SeriesIn],
    *,
    width: int = 520,
    height: int = 220,
    log: bool = False,
    y_domain: tuple[float, float] | None = None,
    n_buckets: int = DEFAULT_BUCKETS,
    x_min_span: float = 10.0,
    hover: bool = True,
    smooth: bool = False,
) -> Chart:
    """Lay out ``series`` over ``x`` (n,) in a width × height SVG box.

    Linear charts start their y axis at the data's nice lower bound (0 for
    losses); log charts span whole decades and skip values ≤ 0. Each curve is
    min/max-downsampled to ≤ 2·n_buckets points. ``hover=False`` leaves out the
    read-out rows (a twin chart of the same data, e.g. the log view, shares them).
    ``smooth`` draws bucket means (geometric on a log chart) instead of the
    min/max envelope: for per-step noise where the trend is the message.
    """
    left, right, top, bottom = 46, width - 10, 10, height - 24
    xs = np.asarray(x, dtype=np.float64).ravel()
    chart = Chart(width, height, left, right, top, bottom, log, empty=True)
    if xs.size == 0:
        return chart
    ys = [render._as_float(s.y).ravel() for s in series]
    extent = render.finite_extent(*ys, positive=log)
    if extent is None:
        return chart
    x0 = float(xs[0])
    x1 = max(float(xs[-1]), x0 + x_min_span)
    lo, hi = place_axes(chart, (x0, x1), y_domain or y_domain_of(extent, log))
    scale_y = render.log_scale if log else render.linear_scale
    for s, y in zip(series, ys, strict=True):
        if smooth:
            dx, dy = render.downsample_mean(xs, y, n_buckets, geometric=log)
        else:
            dx, dy = render.downsample_minmax(xs, y, n_buckets)
        px = render.linear_scale(dx, (x0, x1), (left, right))
        py = scale_y(dy, (lo, hi), (bottom, top))
        if not log:
            py = np.clip(py, top, bottom)
        finite = y[np.isfinite(y)]
        chart.series.append(
            SeriesOut(
                s.name,
                s.css,
                render.svg_path(px, py),
                s.color,
                s.dashed,
                render.format_number(float(finite[-1])) if finite.size else "—",
            )
        )
    if hover:
        chart.hover = hover_data(xs, ys)
    return chart


def y_domain_of(extent: tuple[float, float], log: bool) -> tuple[float, float]:
    """The y axis of a chart of values in ``extent``: whole decades on a log chart; on a
    linear one nice round bounds from min(0, low)."""
    if log:
        return render.log_domain(*extent)
    return render.nice_domain(min(0.0, extent[0]), extent[1], 4)


def place_axes(
    chart: Chart, x_domain: tuple[float, float], y_domain: tuple[float, float]
) -> tuple[float, float]:
    """Set the chart's domains and ticks (it is no longer empty); returns the y domain."""
    chart.empty = False
    left, right, top, bottom = chart.left, chart.right, chart.top, chart.bottom
    x0, x1 = x_domain
    lo, hi = y_domain
    chart.x_domain = (x0, x1)
    chart.y_domain = (lo, hi)
    if chart.log:
        chart.y_ticks = [
            Tick(float(render.log_scale(t, (lo, hi), (bottom, top))), render.format_tick(t))
            for t in render.log_ticks(lo, hi)
        ]
    else:
        chart.y_ticks = [
            Tick(float(render.linear_scale(t, (lo, hi), (bottom, top))), render.format_tick(t))
            for t in render.nice_ticks(lo, hi, 4)
        ]
    chart.x_ticks = [
        Tick(float(render.linear_scale(t, (x0, x1), (left, right))), render.format_tick(t))
        for t in render.nice_ticks(x0, x1, 5)
    ]
    return lo, hi


def pixel_of(chart: Chart, x: float, y: float) -> tuple[float, float]:
    """Where the point (x, y) is drawn on a placed chart (y clipped to the plot on a linear
    chart, as its curves are)."""
    px = float(render.linear_scale(x, chart.x_domain, (chart.left, chart.right)))
    scale = render.log_scale if chart.log else render.linear_scale
    py = float(scale(y, chart.y_domain, (chart.bottom, chart.top)))
    return px, py if chart.log else min(max(py, chart.top), chart.bottom)


@dataclass(frozen=True)
class Mark:
    """A point to mark on a chart, in data units, and its label."""

    x: float
    y: float
    label: str


@dataclass(frozen=True)
class PlacedMark:
    """A Mark in the chart's pixels: its line at x, its dot at (x, y), its label at (tx, ty)."""

    epoch: int
    x: float
    y: float
    tx: float
    ty: float
    anchor: str  # the label's text-anchor: start, end or middle
    label: str


MARK_FONT = 16.0  # viewBox units of a mark's label (as the axes' labels: >= 10 px on a phone)
MARK_CHAR = 0.6 * MARK_FONT  # the width of one character of the (monospace) label


def place_mark(chart: Chart, mark: Mark) -> PlacedMark:
    """A mark on a placed chart: its line and dot at its point, its label beside the dot on
    the side it fits (after it, else before it, else centred in the plot) and below it,
    where the curve it marks the minimum of never is (above it if that is off the plot)."""
    x, y = pixel_of(chart, mark.x, mark.y)
    y = y if math.isfinite(y) else chart.bottom  # a loss of 0 on a log chart
    width = MARK_CHAR * len(mark.label)
    if x + 6 + width <= chart.right:
        tx, anchor = x + 6, "start"
    elif x - 6 - width >= chart.left:
        tx, anchor = x - 6, "end"
    else:
        tx, anchor = (chart.left + chart.right) / 2, "middle"
    ty = y + 4 + MARK_FONT if y + 4 + MARK_FONT <= chart.bottom - 2 else y - 8
    x, y, tx, ty = (round(float(v), 1) for v in (x, y, tx, ty))
    return PlacedMark(int(mark.x), x, y, tx, ty, anchor, mark.label)


def hover_data(xs: np.ndarray, ys: Sequence[np.ndarray], limit: int = HOVER_POINTS) -> str:
    """Compact 'x,y1,y2;…' rows (≤ ``limit``) that app.js reads for the hover read-out."""
    idx = render.subsample_indices(xs.size, limit)
    rows = []
    for i in idx.tolist():
        vals = [f"{float(xs[i]):.10g}"]
        for y in ys:
            v = float(y[i])
            vals.append(f"{v:.4g}" if np.isfinite(v) else "")
        rows.append(",".join(vals))
    return ";".join(rows)


def sparkline(y: np.ndarray | Sequence[float | None], width: int = 120, height: int = 28) -> str:
    """An SVG path for a tiny loss curve, or ''.

    Log scale when every finite value is positive (losses span decades), else
    linear; either way from the min to the max of the finite values.
    """
    ys = render._as_float(y).ravel()
    finite = ys[np.isfinite(ys)]
    if finite.size and (finite > 0).all():
        with np.errstate(divide="ignore", invalid="ignore"):
            ys = np.log10(ys)
    extent = render.finite_extent(ys)
    if extent is None or ys.size < 2:
        return ""
    xs = np.arange(ys.size, dtype=np.float64)
    dx, dy = render.downsample_minmax(xs, ys, width // 2)
    lo, hi = extent
    px = render.linear_scale(dx, (0, ys.size - 1), (1, width - 1))
    py = (
        render.linear_scale(dy, (lo, hi), (height - 2, 2))
        if hi > lo
        else np.full(dy.shape, height / 2)
    )
    return render.svg_path(px, py)
