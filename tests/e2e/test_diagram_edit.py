"""Editing the network on its diagram in a real browser: neurons, layers, features, a weight."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import MakeRun, PageProblems, api_run
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

# A playing spiral, paced so it keeps running through the test without eating a core.
SPIRAL: dict[str, Any] = {
    "dataset": {"kind": "spiral", "n_samples": 200},
    "hidden_layers": [8, 8],
    "epochs": 100_000,
    "max_epochs_per_second": 20,
}


def epoch_at_least(n: int) -> re.Pattern[str]:
    """data-epoch ≥ n (n < 100), as a pattern for expect()."""
    return re.compile(rf"^(?:[1-9]\d{{2,}}|{'|'.join(str(k) for k in range(n, 100))})$")


def test_edit_layers_features_and_a_weight_on_the_diagram(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="diagram edits", **SPIRAL)
    page.goto(f"/runs/{run['id']}")
    status, epoch = page.locator("#status"), page.locator("#epoch")
    network = page.locator("#network")
    expect(status).to_have_attribute("data-status", "running")
    expect(epoch).to_have_attribute("data-epoch", epoch_at_least(20))
    layer_1 = network.locator('g.neuron[data-key^="1-"]')
    expect(layer_1).to_have_count(8)

    # "+" over layer 1: one more neuron; the run re-initialises and keeps playing from epoch 0.
    page.get_by_role("button", name="One more neuron in layer 1").click()
    expect(layer_1).to_have_count(9)
    expect(page.locator("#diagram-message")).to_contain_text("2\u20139\u20138\u20131")
    after = api_run(api, run["id"])
    assert after["layer_sizes"] == [2, 9, 8, 1] and after["status"] == "running"
    assert after["epoch"] < 20
    expect(status).to_have_attribute("data-status", "running")
    expect(epoch).to_have_attribute("data-epoch", epoch_at_least(3))

    # "+" of the layer count: one more column (a copy of the last hidden layer's size).
    heads = network.locator(".net-head")
    expect(heads).to_have_count(4)
    page.get_by_role("button", name="Add a hidden layer").click()
    expect(heads).to_have_count(5)
    expect(network.locator(".net-count")).to_have_text("3 hidden layers")
    assert api_run(api, run["id"])["layer_sizes"] == [2, 9, 8, 8, 1]

    # Toggle x1²: it becomes an input (linked to layer 1) and the network's output changes.
    x1_sq = network.locator('[data-focus-key="feature-x1_sq"]')
    expect(x1_sq).to_have_attribute("aria-pressed", "false")
    first_links = network.locator('path[data-w^="1."]')
    expect(first_links).to_have_count(2 * 9)
    output = page.locator("#output-heatmap image.map-continuous")
    before = output.get_attribute("href")
    x1_sq.click()
    expect(x1_sq).to_have_attribute("aria-pressed", "true")
    expect(first_links).to_have_count(3 * 9)
    expect(output).not_to_have_attribute("href", before or "")
    assert api_run(api, run["id"])["config"]["features"] == ["x1", "x2", "x1_sq"]
    expect(status).to_have_attribute("data-status", "running")

    # While it runs, a link's popover shows the value but refuses to set it.
    popover = page.locator("#weight-popover")
    network.locator('path[data-w="2.0.0"]').dispatch_event("click")
    expect(popover).to_be_visible()
    expect(popover.locator(".wp-set")).to_be_disabled()
    expect(popover.locator(".wp-note")).to_have_text("Pause the run to edit a weight")
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()

    # Stopped: click a link, set its weight, and the diagram shows it.
    page.click("#start-stop")
    expect(status).to_have_attribute("data-status", "stopped")
    link = network.locator('path[data-w^="2."]').nth(3)
    key = link.get_attribute("data-w")
    box = link.bounding_box()
    assert key and box
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(popover).to_be_visible()
    clicked = popover.locator("form").get_attribute("data-key")  # the link under the mouse
    assert clicked and clicked.startswith("2.")
    target = network.locator(f'path[data-w="{clicked}"]')
    shown = popover.locator(".wp-value").inner_text()
    title = target.locator("title").text_content() or ""
    assert title == f"w = {shown}"  # the popover shows the exact value
    value_input = popover.locator("input[name=value]")
    expect(value_input).to_be_focused()
    value_input.fill("-2.5")
    popover.get_by_role("button", name="Set").click()
    expect(popover).to_be_hidden()
    expect(target.locator("title")).to_have_text(re.compile(r"^w = -2\.5$"))
    expect(target).to_have_attribute("stroke", "#f59322")  # full orange: strongly negative
    layer, row, col = (int(p) for p in clicked.split("."))
    weights = api.get(f"/api/runs/{run['id']}/weights").json()["layers"]
    assert weights[layer - 1]["weights"][row][col] == -2.5

    # Escape closes the popover (refusals are covered in tests/ui/test_edit_routes.py: a 4xx
    # response is a console error, which these tests treat as a failure).
    target.dispatch_event("click")
    expect(popover).to_be_visible()
    expect(popover.locator(".wp-value")).to_have_text("-2.5")
    page.keyboard.press("Escape")
    expect(popover).to_be_hidden()


def test_ten_layers_fit_a_phone_with_readable_text(
    new_context: Callable[..., tuple[BrowserContext, PageProblems]],
    server: LiveServer,
    make_run: MakeRun,
) -> None:
    run = make_run(
        name="deep",
        dataset={"kind": "spiral", "n_samples": 100},
        hidden_layers=[6] * 10,
        start=False,
    )
    context, _ = new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"/runs/{run['id']}")
    network = page.locator("#network")
    expect(network.locator(".net-head")).to_have_count(12)
    expect(network.locator(".net-count")).to_have_text("10 hidden layers")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    svg = network.locator("svg.net").bounding_box()
    assert svg and svg["x"] >= 0 and svg["x"] + svg["width"] <= 390
    smallest = page.evaluate(
        """() => Math.min(...Array.from(document.querySelectorAll('#network *'))
            .filter(e => e.childElementCount === 0 && e.textContent.trim()
                    && e.getClientRects().length && e.tagName !== 'title')
            .map(e => parseFloat(getComputedStyle(e).fontSize)))"""
    )
    assert smallest >= 10, smallest
    assert network.locator("text").count() == 0  # no SVG text that would shrink with the drawing
    page.screenshot(path="artifacts/e2e/diagram_phone_10_layers.png", full_page=True)
