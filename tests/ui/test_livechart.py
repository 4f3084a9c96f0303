"""Live charts that grow by appending (app.ui.livechart): the appended paths draw exactly
what a full redraw draws, and the chart is redrawn when its axes must change."""

from __future__ import annotations

import re

import numpy as np

from app.ui import charts
from app.ui.livechart import MIN_SPAN, N_BUCKETS, LiveChart, LiveChartView

POINT = re.compile(r"[ML](-?[\d.]+) (-?[\d.]+)")


def points(d: str) -> list[tuple[str, str]]:
    return POINT.findall(d)


def body_d(view: LiveChartView, i: int) -> str:
    found = re.search(r' d="([^"]*)"', str(view.series[i].body))
    return found.group(1) if found else ""


def tail_d(view: LiveChartView, i: int) -> str:
    found = re.search(r' d="([^"]*)"', str(view.series[i].tail))
    return found.group(1) if found else ""


def appended(delta: str, gid: str) -> list[str]:
    return re.findall(rf'beforeend:#{gid}"><path [^>]*? d="([^"]*)"', delta)


def losses(n: int) -> tuple[np.ndarray, list[charts.SeriesIn]]:
    """A noisy decreasing loss (max at epoch 1, so the linear y axis holds) with gaps."""
    rng = np.random.default_rng(3)
    x = np.arange(1, n + 1)
    train = 1.0 / np.sqrt(x) * (1 + 0.2 * rng.random(n))
    train[0] = 2.0
    test = train * 1.1
    test[40:47] = np.nan  # an evaluation gap
    return x, [charts.SeriesIn("train", "train", train), charts.SeriesIn("test", "test", test)]


def test_appended_segments_draw_the_points_of_a_full_redraw() -> None:
    x, series = losses(4000)
    live = LiveChart("c")
    # Within one span (4096 epochs after epoch 1), in uneven chunks as frames come.
    cuts = [2100, 2101, 2150, 2600, 3000, 3001, 3500, 3999, 4000]
    view, delta = live.update(
        x[: cuts[0]], [charts.SeriesIn(s.name, s.css, s.y[: cuts[0]]) for s in series], 0.0
    )
    assert delta is None  # the first frame draws the chart
    drawn = [points(body_d(view, i)) for i in range(2)]
    for cut in cuts[1:]:
        part = [charts.SeriesIn(s.name, s.css, s.y[:cut]) for s in series]
        view, delta = live.update(x[:cut], part, 0.0)
        assert delta is not None, f"redrawn at {cut}"
        for i in range(2):
            for d in appended(delta, f"c-s{i}"):
                pts = points(d)
                # Each segment starts at the last point drawn (when there is one).
                if drawn[i] and pts and pts[0] == drawn[i][-1]:
                    pts = pts[1:]
                drawn[i] += pts
    full, _ = LiveChart("c").update(x, series, 0.0)
    for i in range(2):
        assert drawn[i] == points(body_d(full, i))
        assert tail_d(view, i) == tail_d(full, i)
        assert body_d(view, i) == body_d(full, i)
    assert full.chart.x_domain == (1.0, 1.0 + 4096)
    assert len(points(body_d(full, 0))) <= 2 * N_BUCKETS


def test_the_chart_is_redrawn_when_the_x_range_must_grow() -> None:
    x, series = losses(200)
    live = LiveChart("c")

    def upto(n: int) -> tuple[LiveChartView, str | None]:
        return live.update(x[:n], [charts.SeriesIn(s.name, s.css, s.y[:n]) for s in series], 0.0)

    view, delta = upto(MIN_SPAN + 1)  # epochs 1..17: the span is 16
    assert delta is None and view.chart.x_domain == (1.0, 1.0 + MIN_SPAN)
    view, delta = upto(MIN_SPAN + 1)
    assert delta == ""  # nothing new: nothing to send
    view, delta = upto(MIN_SPAN + 2)  # epoch 18 is past 1 + 16: the span doubles
    assert delta is None and view.chart.x_domain == (1.0, 1.0 + 2 * MIN_SPAN)
    view, delta = upto(30)
    assert delta and "beforeend:#c-s0" in delta
    view, delta = upto(2 * MIN_SPAN + 2)
    assert delta is None and view.chart.x_domain == (1.0, 1.0 + 4 * MIN_SPAN)


def test_the_chart_is_redrawn_when_the_y_range_changes_or_the_history_is_rewound() -> None:
    live = LiveChart("c")
    x = np.arange(1, 11)
    y = np.full(10, 0.5)
    _, delta = live.update(x, [charts.SeriesIn("train", "train", y)], 0.0)
    assert delta is None
    y2 = np.r_[y, 0.5, 3.0]  # a spike above the axis: the linear y domain grows
    view, delta = live.update(np.arange(1, 13), [charts.SeriesIn("train", "train", y2)], 0.0)
    assert delta is None and view.chart.y_ticks[-1].label == "3"
    _, delta = live.update(np.arange(1, 14), [charts.SeriesIn("train", "train", np.r_[y2, 2])], 0.0)
    assert delta is not None
    _, delta = live.update(np.arange(1, 6), [charts.SeriesIn("train", "train", y2[:5])], 0.0)
    assert delta is None  # rewound to epoch 5


def test_the_hover_rows_are_refreshed_at_most_once_a_second() -> None:
    x, series = losses(300)
    live = LiveChart("c")

    def at(n: int, now: float) -> str | None:
        part = [charts.SeriesIn(s.name, s.css, s.y[:n]) for s in series]
        return live.update(x[:n], part, now)[1]

    assert at(140, 0.0) is None  # drawn in full, with the rows
    assert 'id="c-hover"' not in (at(170, 0.5) or "x")
    assert 'id="c-hover"' in (at(200, 1.1) or "")
    assert 'id="c-hover"' not in (at(230, 1.5) or "x")
    assert 'id="c-hover"' in (at(250, 2.2) or "")
