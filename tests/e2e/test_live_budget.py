"""The live view's budget in a browser: charts built by appended paths show what a page
drawn in full shows, and the page keeps updating."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import PageProblems, screenshot_path
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

POINT = re.compile(r"[ML](-?[\d.]+) (-?[\d.]+)")
CHARTS = {
    "loss-lin": ("#loss-chart svg.chart-linear", 2),
    "loss-log": ("#loss-chart svg.chart-log", 2),
    "acc": ("#accuracy-chart svg.chart-accuracy", 2),
}


def drawn(page: Page) -> dict[str, list[tuple[str, str]]]:
    """The points of every curve as the page draws them: the appended paths in order (each
    starts where the last ended), then the tail."""
    out: dict[str, list[tuple[str, str]]] = {}
    for chart_id, (_, n_series) in CHARTS.items():
        for i in range(n_series):
            gid = f"{chart_id}-s{i}"
            points: list[tuple[str, str]] = []
            paths = page.locator(f"#{gid} > path").all() + page.locator(f"#{gid}-tail > path").all()
            for path in paths:
                # app.js joins the appended paths into one: "M a L b M b L c"
                for pt in POINT.findall(path.get_attribute("d") or ""):
                    if not points or pt != points[-1]:
                        points.append(pt)
            out[gid] = points
    return out


def test_appended_charts_look_like_a_full_redraw(
    page: Page,
    api: httpx.Client,
    make_run: Callable[..., dict[str, Any]],
    new_context: Callable[..., tuple[BrowserContext, PageProblems]],
    server: LiveServer,
) -> None:
    run = make_run(
        name="budget",
        dataset={"kind": "spiral"},
        hidden_layers=[8, 8],
        batch_size=10,
        epochs=1_000_000,
    )
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    page.wait_for_timeout(5000)  # five seconds of training, watched: the charts grow by appends
    # app.js joins each frame's appended path into the curve's one path: the DOM stays put.
    assert page.locator("#loss-lin-s0 > path").count() == 1
    response = api.post(f"/api/runs/{run['id']}/stop")
    assert response.status_code == 200, response.text
    expect(page.locator("#status")).to_have_attribute("data-status", "stopped")
    epoch = str(api.get(f"/api/runs/{run['id']}").json()["epoch"])
    expect(page.locator("#epoch")).to_have_attribute("data-epoch", epoch)
    page.screenshot(path=screenshot_path("live_budget_appended"))
    appended = drawn(page)

    context, _ = new_context(base_url=server.url)
    fresh = context.new_page()
    fresh.goto(f"/runs/{run['id']}")
    expect(fresh.locator("#epoch")).to_have_attribute("data-epoch", epoch)
    fresh.screenshot(path=screenshot_path("live_budget_full_redraw"))
    full = drawn(fresh)
    assert all(full.values())
    assert appended == full
    # The hover read-out rows are in the page (a hidden element per chart).
    assert fresh.locator("#loss-lin-hover").get_attribute("data-hover")
