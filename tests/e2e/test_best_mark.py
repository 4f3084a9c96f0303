"""Early stopping's best epoch on the live view's loss chart, in the browser: the mark
follows the best epoch so far while the run trains (moved in place when only it changed),
and stays at the kept epoch once the run has stopped early, also after a reload."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import MakeRun, PageProblems, api_run, screenshot_path
from tests.support import LiveServer, wait_until

pytestmark = pytest.mark.e2e

EARLY: dict[str, Any] = {
    "name": "early",
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.5},
    "hidden_layers": [16],
    "learning_rate": 0.5,
    "epochs": 3000,
    "dtype": "float64",
    "early_stopping": {"patience": 40, "min_delta": 0.001},
    "max_epochs_per_second": 6,
}

# One read of the page: the epoch shown, and per loss chart the marked epoch, the x of the
# mark's line, and the x its chart's axis puts that epoch at; `kept` says whether the
# linear chart's <svg> is the one a previous read tagged (not redrawn since).
READ = """() => {
  const out = {epoch: +document.querySelector('#epoch').dataset.epoch, charts: {}};
  for (const id of ['loss-lin', 'loss-log']) {
    const mark = document.getElementById(id + '-mark');
    if (!mark) continue;
    const svg = mark.closest('svg'), d = svg.dataset;
    const epoch = +mark.dataset.epoch;
    out.charts[id] = {
      epoch, x: +mark.querySelector('line').getAttribute('x1'),
      dot: +mark.querySelector('circle').getAttribute('cx'),
      label: mark.querySelector('text').textContent,
      at: +d.left + (epoch - +d.x0) / (+d.x1 - +d.x0) * (+d.right - +d.left),
    };
  }
  const svg = document.querySelector('#loss-chart svg.chart-linear');
  out.kept = !!(svg && svg._tagged);
  if (svg) svg._tagged = true;
  return out;
}"""


def reference_best(history: dict[str, Any], upto: int, min_delta: float) -> tuple[int, float]:
    """API.md's rule: an epoch improves when its test loss is below the best by > min_delta."""
    best, at = math.inf, 0
    for epoch, loss in zip(history["epoch"], history["test_loss"], strict=True):
        if epoch <= upto and loss < best - min_delta:
            best, at = loss, epoch
    return at, best


def check(read: dict[str, Any], history: dict[str, Any]) -> int:
    best, loss = reference_best(history, read["epoch"], 0.001)
    assert set(read["charts"]) == {"loss-lin", "loss-log"}, read
    for chart in read["charts"].values():
        assert chart["epoch"] == best, (read, best)
        assert chart["dot"] == chart["x"] and abs(chart["x"] - chart["at"]) < 0.06, read
        assert chart["label"].startswith(f"best: epoch {best:,}, loss "), chart
        assert math.isclose(float(chart["label"].rsplit(" ", 1)[1]), loss, rel_tol=1e-3)
    return best


def test_the_loss_chart_marks_the_best_epoch_during_and_after_training(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(**EARLY)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#loss-lin-mark")).to_have_count(1)
    epoch = page.locator("#epoch")
    marked: list[int] = []
    moved_in_place = 0
    while api_run(api, run["id"])["status"] == "running" and len(marked) < 40:
        seen = epoch.get_attribute("data-epoch") or ""
        wait_until(
            lambda seen=seen: (
                epoch.get_attribute("data-epoch") != seen
                or api_run(api, run["id"])["status"] != "running"
            ),
            timeout=20,
            interval=0.1,
            what="a new frame",
        )
        read = page.evaluate(READ)
        history = api.get(f"/api/runs/{run['id']}/metrics").json()
        best = check(read, history)
        if read["kept"] and marked and best != marked[-1]:
            moved_in_place += 1  # the same chart, its mark moved by the small element
        marked.append(best)
    assert len(set(marked)) >= 3, marked  # it followed the best while training
    assert moved_in_place > 0, marked

    # Stopped early: the weights are the best epoch's, and the mark is there.
    wait_until(
        lambda: api_run(api, run["id"])["status"] == "completed",
        timeout=60,
        what="the run to stop early",
    )
    done = api_run(api, run["id"])
    kept = int(done["message"].rsplit(" ", 1)[1])
    expect(page.locator("#status")).to_have_attribute("data-status", "completed")
    history = api.get(f"/api/runs/{run['id']}/metrics").json()
    assert check(page.evaluate(READ), history) == kept
    page.reload()
    expect(page.locator("#loss-lin-mark")).to_have_attribute("data-epoch", str(kept))
    assert check(page.evaluate(READ), history) == kept
    # The log view shows it too.
    page.check("#loss-log")
    expect(page.locator("#loss-log-mark")).to_be_visible()
    expect(page.locator("#loss-lin-mark")).to_be_hidden()


# The rendered size of each shown mark label (its font size times its SVG's on-screen scale).
LABEL_PX = """() => [...document.querySelectorAll('.chart-mark text')]
  .filter(t => t.getBoundingClientRect().width > 1)
  .map(t => {
    const ctm = t.getScreenCTM();
    return parseFloat(getComputedStyle(t).fontSize) * Math.hypot(ctm.b, ctm.d);
  })"""


# The label's box and its nearest <svg>'s, read together.
BOXES = """t => [t, t.closest('svg')].map(e => {
    const r = e.getBoundingClientRect(); return {x: r.x, width: r.width};
})"""


def test_the_mark_reads_on_a_phone(
    new_context: Callable[..., tuple[BrowserContext, PageProblems]],
    server: LiveServer,
    api: httpx.Client,
    make_run: MakeRun,
) -> None:
    run = make_run(**{**EARLY, "start": False})
    done = api.post(f"/api/runs/{run['id']}/step", json={"epochs": 3000}).json()
    kept = int(done["message"].rsplit(" ", 1)[1])
    context, _ = new_context(
        base_url=server.url, viewport={"width": 390, "height": 844}, is_mobile=True
    )
    phone = context.new_page()
    for path in (f"/runs/{run['id']}", f"/runs/{run['id']}/history"):
        phone.goto(path)
        label = phone.locator(".chart-mark text").filter(visible=True).first
        expect(label).to_have_text(re.compile(rf"^best: epoch {kept}, loss "))
        sizes = phone.evaluate(LABEL_PX)
        assert sizes and min(sizes) >= 10.0, (path, sizes)
        # The label and its chart measured in one step: the stream may redraw the chart
        # between two separate reads (a bounding box of a just-replaced element is None).
        box, frame = label.evaluate(BOXES)
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"]
        assert phone.evaluate("() => document.documentElement.scrollWidth") <= 390, path
        shot = screenshot_path(f"test_best_mark_390{path.replace('/', '_')}")
        phone.screenshot(path=shot, full_page=True)
