"""Live line charts that grow by appending: the live view's loss and accuracy charts.

A chart's x axis runs from the first epoch over a span that doubles as the run
goes on (MIN_SPAN, 2·MIN_SPAN, 4·MIN_SPAN, … epochs), cut into N_BUCKETS equal
buckets; every complete bucket draws its min and its max (in x order, so spikes
survive), and the bucket the last epoch is in is the "tail". The y axis is
charts.y_domain_of the values. While both axes hold, a frame only appends the
buckets completed since the last frame (a short path from the last point drawn,
``hx-swap-oob="beforeend:…"``) and replaces the tail; when the epochs outgrow
the span, the y domain changes or the history is rewound, the chart is redrawn.
The appended paths draw exactly the points a full redraw draws.

A chart may carry one ``charts.Mark`` (the loss chart: early stopping's best epoch so far): a
vertical line, a dot and a label drawn in the chart, which a frame that only appends
moves by sending a small hidden element with its new place (``mark_markup``), never by
redrawing the chart; app.js copies that place onto the drawn mark.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from markupsafe import Markup, escape

from app.ui import charts, render

N_BUCKETS = 120
MIN_SPAN = 16
HOVER_INTERVAL = 1.0  # seconds between refreshes of the hover read-out rows


@dataclass
class LiveSeries:
    """One curve as the template draws it: the complete buckets, then the tail."""

    gid: str  # id of the <g> the complete buckets' paths are in; the tail's is gid + "-tail"
    body: Markup  # the complete buckets' <path>
    tail: Markup  # the tail's bare <path> (with the last value in its <title>)
    tail_style: Markup  # class and stroke of the tail's <g>, which its path inherits


@dataclass
class LiveChartView:
    chart: charts.Chart  # axes and domains (its own series list stays empty)
    chart_id: str
    series: list[LiveSeries] = field(default_factory=list)
    hover: str = ""
    mark: charts.PlacedMark | None = None

    @property
    def mark_data(self) -> Markup:
        """The hidden element that says where the mark is (app.js places the drawn one)."""
        return Markup(mark_markup(self.chart_id, self.mark)) if self.mark else Markup("")


def mark_markup(chart_id: str, mark: charts.PlacedMark, oob: bool = False) -> str:
    """The hidden element with a chart's mark's place; ``oob`` swaps it in out of band."""
    swap = ' hx-swap-oob="true"' if oob else ""
    return (
        f'<div id="{chart_id}-mark-at"{swap} hidden data-mark-for="{chart_id}-mark"'
        f' data-epoch="{mark.epoch}" data-x="{mark.x}" data-y="{mark.y}" data-tx="{mark.tx}"'
        f' data-ty="{mark.ty}" data-anchor="{mark.anchor}" data-label="{escape(mark.label)}"></div>'
    )


def series_style(s: charts.SeriesIn) -> Markup:
    """The class and stroke attributes that draw a series (app.css styles `.series.<css>`)."""
    css = f"series {s.css}{' dashed' if s.dashed else ''}"
    stroke = f' stroke="{escape(s.color)}"' if s.color else ""
    return Markup(f'class="{escape(css)}"{stroke}')


def path_markup(s: charts.SeriesIn | None, d: str, title: str | None = None) -> Markup:
    """A series' <path>; bare (``s`` None) for a tail, which its <g> styles. The page has
    one `path.<css>` per curve (its complete buckets)."""
    if not d:
        return Markup("")
    style = f" {series_style(s)}" if s is not None else ""
    inner = f"<title>{escape(title)}</title>" if title else ""
    return Markup(f'<path{style} d="{d}">{inner}</path>')


def bucket_points(
    xs: np.ndarray, y: np.ndarray, buckets: np.ndarray, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """The points of buckets [start, stop): each bucket's min and max in x order (one if
    they are the same point); a bucket with epochs but no finite value is a gap (NaN).

    ``buckets`` (n,) is the bucket of each x, non-decreasing.
    """
    px: list[float] = []
    py: list[float] = []
    lo = int(np.searchsorted(buckets, start, side="left"))
    hi = int(np.searchsorted(buckets, stop, side="left"))
    ids = buckets[lo:hi]
    edges = np.flatnonzero(np.diff(ids)) + 1 if ids.size else np.zeros(0, dtype=np.int64)
    for part in np.split(np.arange(lo, hi), edges) if ids.size else []:
        ys = y[part]
        finite = np.isfinite(ys)
        if not finite.any():
            px.append(math.nan)
            py.append(math.nan)
            continue
        i_min = int(np.argmin(np.where(finite, ys, np.inf)))
        i_max = int(np.argmax(np.where(finite, ys, -np.inf)))
        for i in sorted({i_min, i_max}):
            px.append(float(xs[part[i]]))
            py.append(float(ys[i]))
    return np.array(px), np.array(py)


class LiveChart:
    """One chart of one run's live view, kept between frames (see the module docstring)."""

    def __init__(
        self,
        chart_id: str,
        *,
        width: int = 520,
        height: int = 220,
        log: bool = False,
        y_domain: tuple[float, float] | None = None,
        hover: bool = True,
    ) -> None:
        self.chart_id = chart_id
        self.size = (width, height)
        self.log = log
        self.fixed_y = y_domain
        self.with_hover = hover
        self.key: tuple[object, ...] | None = None
        self.done = 0  # buckets [0, done) are drawn
        self.last_x = -math.inf
        self.points: list[tuple[list[float], list[float]]] = []  # pixels drawn, per series
        self.tails: list[str] = []
        self.hover_at = -math.inf
        self.hover_rows = ""
        self.mark: charts.PlacedMark | None = None  # where the last frame put the mark

    def _empty(self) -> charts.Chart:
        width, height = self.size
        return charts.Chart(width, height, 46, width - 10, 10, height - 24, self.log, empty=True)

    def update(
        self,
        x: np.ndarray,
        series: Sequence[charts.SeriesIn],
        now: float,
        mark: charts.Mark | None = None,
    ) -> tuple[LiveChartView, str | None]:
        """The chart for these epochs (with ``mark`` marked), and the out-of-band HTML that
        turns the previous frame's chart into it ('' for no change; None when redrawn)."""
        xs = np.asarray(x, dtype=np.float64).ravel()
        ys = [render._as_float(s.y).ravel() for s in series]
        chart = self._empty()
        extent = render.finite_extent(*ys, positive=self.log) if xs.size else None
        if extent is None:
            redrawn = self.key != ("empty",)
            self.key = ("empty",)
            return LiveChartView(chart, self.chart_id), None if redrawn else ""
        x0, last = float(xs[0]), float(xs[-1])
        span = MIN_SPAN
        while x0 + span < last:
            span *= 2
        lo, hi = charts.place_axes(
            chart, (x0, x0 + span), self.fixed_y or charts.y_domain_of(extent, self.log)
        )
        names = tuple((s.name, s.css, s.color) for s in series)
        # A mark that comes or goes redraws the chart (it is drawn in it); one that moves does not.
        key = (x0, span, lo, hi, names, mark is not None)
        buckets = np.floor((xs - x0) * N_BUCKETS / span).astype(np.int64)
        current = int(buckets[-1])
        redraw = key != self.key or last < self.last_x or current < self.done
        if redraw:
            self.key, self.done, self.hover_at = key, 0, now  # the view has the rows
            self.points = [([], []) for _ in series]
            self.tails = ["" for _ in series]
        self.last_x = last
        scale_y = render.log_scale if self.log else render.linear_scale
        x_dom, y_dom = (x0, x0 + span), (lo, hi)

        def pixels(px: np.ndarray, py: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sx = render.linear_scale(px, x_dom, (chart.left, chart.right))
            sy = scale_y(py, y_dom, (chart.bottom, chart.top))
            return sx, (sy if self.log else np.clip(sy, chart.top, chart.bottom))

        view = LiveChartView(chart, self.chart_id)
        delta: list[str] = []
        for i, (s, y) in enumerate(zip(series, ys, strict=True)):
            gid = f"{self.chart_id}-s{i}"
            done_x, done_y = self.points[i]
            join_x, join_y = (done_x[-1:], done_y[-1:]) if done_x else ([], [])
            nx, ny = pixels(*bucket_points(xs, y, buckets, self.done, current))
            if nx.size:
                segment = render.svg_path(np.r_[join_x, nx], np.r_[join_y, ny])
                delta.append(f'<svg hx-swap-oob="beforeend:#{gid}">{path_markup(s, segment)}</svg>')
                done_x += nx.tolist()
                done_y += ny.tolist()
            tx, ty = pixels(*bucket_points(xs, y, buckets, current, current + 1))
            ends_x, ends_y = (done_x[-1:], done_y[-1:]) if done_x else ([], [])
            tail_d = render.svg_path(np.r_[ends_x, tx], np.r_[ends_y, ty])
            finite = y[np.isfinite(y)]
            title = f"{s.name}: {render.format_number(float(finite[-1]))}" if finite.size else None
            tail = path_markup(None, tail_d, title)
            if tail_d != self.tails[i]:
                delta.append(f'<svg hx-swap-oob="innerHTML:#{gid}-tail">{tail}</svg>')
                self.tails[i] = tail_d
            body = path_markup(s, render.svg_path(np.array(done_x), np.array(done_y)))
            view.series.append(LiveSeries(gid, body, tail, series_style(s)))
        self.done = current
        if mark is not None:
            view.mark = charts.place_mark(chart, mark)
            if view.mark != self.mark and not redraw:
                delta.append(mark_markup(self.chart_id, view.mark, oob=True))
        self.mark = view.mark
        if self.with_hover:
            # The read-out rows (~100, formatted) are made only when they are sent.
            due = bool(delta) and now - self.hover_at >= HOVER_INTERVAL
            if redraw or due or not self.hover_rows:
                self.hover_rows = charts.hover_data(xs, ys)
            view.hover = self.hover_rows
            if due and not redraw:
                self.hover_at = now
                delta.append(hover_markup(self.chart_id, view.hover, oob=True))
        return view, None if redraw else "".join(delta)


def hover_markup(chart_id: str, rows: str, oob: bool = False) -> str:
    """The hidden element whose rows app.js reads for a chart's hover read-out."""
    swap = ' hx-swap-oob="true"' if oob else ""
    return f'<div id="{chart_id}-hover"{swap} hidden data-hover="{escape(rows)}"></div>'


class LiveCharts:
    """The live charts of one run, and what the last frame changed in each fragment."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.charts: dict[str, LiveChart] = {}
        self.deltas: dict[str, str | None] = {}  # chart id -> its last update's delta
        self.captions: dict[str, object] = {}  # fragment -> what it shows besides charts

    def update(
        self,
        chart_id: str,
        x: np.ndarray,
        series: Sequence[charts.SeriesIn],
        mark: charts.Mark | None = None,
        **options: object,
    ) -> LiveChartView:
        chart = self.charts.get(chart_id)
        if chart is None:
            chart = self.charts[chart_id] = LiveChart(chart_id, **options)  # type: ignore[arg-type]
        view, delta = chart.update(x, series, self.clock(), mark)
        self.deltas[chart_id] = delta
        return view
