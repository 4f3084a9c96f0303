"""Early stopping's best epoch marked on the live view's loss chart (charts.Mark): drawn
on the curve at the best epoch, moved by a small out-of-band element while the chart
only grows, and on the finished run at the epoch whose weights it kept."""

from __future__ import annotations

import math
import re
from typing import Any

from fastapi.testclient import TestClient

from app.ui import charts
from app.ui.frames import Rendered
from app.ui.livechart import LiveChart, LiveChartView
from tests.support import TINY_RUN, strict_json
from tests.ui.test_livechart import losses, points

MARK_AT = re.compile(r'<div id="([\w-]+)-mark-at"( hx-swap-oob="true")? hidden ([^>]*)></div>')


def attrs(text: str) -> dict[str, str]:
    return dict(re.findall(r'data-([\w-]+)="([^"]*)"', text))


def marks_sent(html: str) -> dict[str, dict[str, str]]:
    """chart id -> the data of its mark's hidden element, for each one in ``html``."""
    return {cid: attrs(rest) for cid, _, rest in MARK_AT.findall(html)}


def x_pixel(view: LiveChartView, epoch: float) -> float:
    """Where an epoch is on a chart's x axis, from its domain and plot edges."""
    (x0, x1), c = view.chart.x_domain, view.chart
    return c.left + (epoch - x0) / (x1 - x0) * (c.right - c.left)


def drawn_points(view: LiveChartView, i: int) -> list[tuple[str, str]]:
    found = re.findall(r' d="([^"]*)"', str(view.series[i].body) + str(view.series[i].tail))
    return [p for d in found for p in points(d)]


def best_mark_of(test: Any, upto: int) -> charts.Mark:
    """The lowest test loss of the first ``upto`` epochs (min_delta 0: strictly lower)."""
    i = min(range(upto), key=lambda k: (test[k], k))
    return charts.Mark(i + 1, float(test[i]), f"best: epoch {i + 1}, loss {test[i]:.4g}")


def test_the_mark_is_drawn_on_the_curve_at_its_epoch() -> None:
    x, series = losses(200)
    for log in (False, True):
        mark = best_mark_of(series[1].y, 200)
        view, delta = LiveChart("c", log=log).update(x, series, 0.0, mark)
        assert delta is None and view.mark is not None
        assert view.mark.epoch == mark.x
        assert math.isclose(view.mark.x, x_pixel(view, mark.x), abs_tol=0.06)
        # The dot is a point of the drawn test curve (its bucket's minimum).
        assert (f"{view.mark.x:.1f}", f"{view.mark.y:.1f}") in drawn_points(view, 1)
        c = view.chart
        assert c.top <= view.mark.ty - 16 and view.mark.ty <= c.bottom
        assert not view.mark.ty - 16 < view.mark.y < view.mark.ty  # the label clears the dot
        assert view.mark.label == mark.label
        # The hidden element a frame sends says the same.
        sent = marks_sent(str(view.mark_data))["c"]
        assert sent["mark-for"] == "c-mark" and sent["epoch"] == str(mark.x)
        assert float(sent["x"]) == view.mark.x and float(sent["y"]) == view.mark.y


def test_a_moving_mark_is_sent_alone_and_a_new_one_redraws() -> None:
    x, series = losses(200)
    test = series[1].y

    def upto(
        n: int, mark: charts.Mark | None, chart: LiveChart
    ) -> tuple[LiveChartView, str | None]:
        part = [charts.SeriesIn(s.name, s.css, s.y[:n]) for s in series]
        return chart.update(x[:n], part, 0.0, mark)

    live = LiveChart("c")
    upto(150, None, live)
    # Early stopping switched on: the mark is drawn with the chart.
    view, delta = upto(151, best_mark_of(test, 151), live)
    assert delta is None and view.mark is not None
    # The same best a frame later: nothing about the mark is sent.
    _, delta = upto(152, best_mark_of(test, 151), live)
    assert delta is not None and "mark-at" not in delta
    # A new best: only its hidden element, swapped out of band, at the new epoch's x.
    moved = charts.Mark(152, float(test[151]), "best: epoch 152, loss 0.1")
    view, delta = upto(152, moved, live)
    assert delta is not None and view.mark is not None
    sent = marks_sent(delta)
    assert list(sent) == ["c"] and 'id="c-mark-at" hx-swap-oob="true"' in delta
    assert sent["c"]["epoch"] == "152" and sent["c"]["label"] == "best: epoch 152, loss 0.1"
    assert math.isclose(float(sent["c"]["x"]), x_pixel(view, 152), abs_tol=0.06)
    assert len(delta) < 400, delta
    # Switched off again: redrawn without it.
    view, delta = upto(152, None, live)
    assert delta is None and view.mark is None and view.mark_data == ""


def test_the_label_stays_inside_the_plot() -> None:
    x, series = losses(200)
    chart = LiveChart("c")
    long_label = "best: epoch 1,234,567, loss 0.0001234"
    for epoch in (1, 60, 120, 200):
        view, _ = chart.update(
            x, series, 0.0, charts.Mark(epoch, float(series[1].y[0]), long_label)
        )
        m, c = view.mark, view.chart
        assert m is not None
        width = 0.6 * 16 * len(long_label)
        lo = {"start": m.tx, "end": m.tx - width, "middle": m.tx - width / 2}[m.anchor]
        assert c.left <= lo and lo + width <= c.right, (epoch, m)


# ---- through the app: the frames of a run that stops early ------------------------------

EARLY = {
    **TINY_RUN,
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.5},
    "hidden_layers": [16],
    "learning_rate": 0.5,
    "epochs": 3000,
    "early_stopping": {"patience": 40, "min_delta": 0.001},
    "dtype": "float64",
}


def frame(client: TestClient, run_id: str) -> Rendered:
    app: Any = client.app
    manager, frames = app.state.manager, app.state.ui.frames

    async def render() -> Rendered:
        return await frames.current_async(manager, run_id)

    return client.portal.call(render)  # type: ignore[union-attr]


def step(client: TestClient, run_id: str, epochs: int) -> dict[str, Any]:
    response = client.post(f"/api/runs/{run_id}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    return dict(strict_json(response.text))


def reference_best(client: TestClient, run_id: str, min_delta: float) -> int:
    """API.md's rule over the run's own history: an epoch improves when its test loss is
    below the best so far by more than min_delta."""
    history = strict_json(client.get(f"/api/runs/{run_id}/metrics").text)
    best, at = math.inf, 0
    for epoch, loss in zip(history["epoch"], history["test_loss"], strict=True):
        if loss < best - min_delta:
            best, at = loss, epoch
    return at


def drawn_mark(fragment: str, chart_id: str) -> tuple[int, float, float]:
    """(epoch, x of its line, x the chart's axis puts that epoch at) of a drawn mark."""
    svg = re.search(
        rf'<svg class="chart chart-\w+"[^>]*>(?:(?!</svg>).)*id="{chart_id}-mark"', fragment, re.S
    )
    assert svg is not None, fragment
    box = attrs(svg.group(0).split(">", 1)[0])
    found = re.search(rf'id="{chart_id}-mark" data-epoch="(\d+)"><line x1="([\d.]+)"', fragment)
    assert found is not None
    epoch = int(found.group(1))
    x0, x1, left, right = (float(box[k]) for k in ("x0", "x1", "left", "right"))
    return epoch, float(found.group(2)), left + (epoch - x0) / (x1 - x0) * (right - left)


def test_the_live_loss_chart_marks_the_best_epoch_while_training_and_after(
    client: TestClient,
) -> None:
    response = client.post("/api/runs", json=EARLY)
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    step(client, run_id, 20)
    seen = frame(client, run_id)
    for chart_id in ("loss-lin", "loss-log"):
        epoch, x, expected = drawn_mark(seen.fragments["loss"], chart_id)
        assert epoch == reference_best(client, run_id, 0.001)
        assert math.isclose(x, expected, abs_tol=0.06)
    # Epoch by epoch: every frame's message keeps the viewer's mark at the best so far,
    # by a small element when only that moved.
    moved = 0
    for _ in range(12):  # within the chart's first span (epochs 1 to 33)
        step(client, run_id, 1)
        rendered = frame(client, run_id)
        message = (rendered.frame_message(seen.version) or b"").decode()
        best = reference_best(client, run_id, 0.001)
        if 'id="loss-chart"' in message:  # the chart was redrawn: the mark is in it
            assert drawn_mark(message, "loss-lin")[0] == best
        elif sent := marks_sent(message):
            moved += 1
            assert {cid: a["epoch"] for cid, a in sent.items()} == {
                "loss-lin": str(best),
                "loss-log": str(best),
            }
        assert drawn_mark(rendered.fragments["loss"], "loss-lin")[0] == best
        assert len(message) < 80_000
        seen = rendered
    assert moved > 0, "no frame moved the mark without a redraw"
    # Finished: stopped early, with the best epoch's weights, and marked there.
    done = step(client, run_id, 3000)
    assert done["status"] == "completed" and "stopped early" in done["message"]
    kept = int(done["message"].rsplit(" ", 1)[1])
    rendered = frame(client, run_id)
    for chart_id in ("loss-lin", "loss-log"):
        epoch, x, expected = drawn_mark(rendered.fragments["loss"], chart_id)
        assert epoch == kept == reference_best(client, run_id, 0.001)
        assert math.isclose(x, expected, abs_tol=0.06)
    assert f"best: epoch {kept:,}, loss " in rendered.fragments["loss"]
    assert len(rendered.snapshot_message()) < 100_000
    # A reload, the watch page and the history page draw it there too.
    for path in (f"/runs/{run_id}", f"/watch/{run_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert drawn_mark(page.text, "loss-lin")[0] == kept, path
    history = client.get(f"/runs/{run_id}/history").text
    chart = re.search(r'<svg class="chart history-loss-chart".*?</svg>', history, re.S)
    overlay = re.search(r'<svg class="history-marker".*?</svg>', history, re.S)
    assert chart is not None and overlay is not None
    box = attrs(chart.group(0).split(">", 1)[0])
    found = re.search(
        r'class="chart-mark" data-epoch="(\d+)"><line x1="([\d.]+)"', overlay.group(0)
    )
    assert found is not None and int(found.group(1)) == kept
    x0, x1, left, right = (float(box[k]) for k in ("x0", "x1", "left", "right"))
    expected = left + (kept - x0) / (x1 - x0) * (right - left)
    assert math.isclose(float(found.group(2)), expected, abs_tol=0.06)
    panel = client.get(f"/ui/runs/{run_id}/history-panel").text  # the live view's History card
    assert f'class="chart-mark" data-epoch="{kept}"><line x1="{found.group(2)}"' in panel


def test_a_run_without_early_stopping_has_no_mark(client: TestClient) -> None:
    response = client.post("/api/runs", json={**EARLY, "early_stopping": None})
    run_id = response.json()["id"]
    step(client, run_id, 20)
    assert "chart-mark" not in frame(client, run_id).fragments["loss"]
    assert "mark-at" not in frame(client, run_id).fragments["loss"]
    assert "chart-mark" not in client.get(f"/runs/{run_id}/history").text
