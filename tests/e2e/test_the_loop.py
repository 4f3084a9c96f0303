"""Issue 9's loop, played as a newcomer would, in one go: open `/`, press play, change
the activation, add a neuron on the diagram, toggle a feature, draw three points — and
see the diagram and the output change each time, with the run playing throughout."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.test_playground import RUN_URL, click_plane, data_rows, delete_all_runs

pytestmark = pytest.mark.e2e


def snapshot(network: Locator, output: Locator) -> tuple[str, str]:
    """What the eye compares: the diagram's markup and the output image."""
    return network.inner_html(), output.get_attribute("href") or ""


def changed(page: Page, before: tuple[str, str]) -> tuple[str, str]:
    """Wait for both the diagram and the output to differ from `before`; the new pair."""
    network, output = page.locator("#network"), page.locator("#output-heatmap image").first
    expect(output).not_to_have_attribute("href", before[1])
    expect(network).not_to_have_js_property("innerHTML", before[0])
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    return snapshot(network, output)


def test_the_playground_loop(page: Page, api: httpx.Client) -> None:
    delete_all_runs(api)
    page.goto("/")
    page.wait_for_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    run_id = match.group(1)
    status, play = page.locator("#status"), page.locator("#start-stop")
    network, output = page.locator("#network"), page.locator("#output-heatmap image").first

    # It opens playing; pause, then press play.
    expect(status).to_have_attribute("data-status", "running")
    play.click()
    expect(status).to_have_attribute("data-status", "stopped")
    state = snapshot(network, output)
    play.click()
    expect(status).to_have_attribute("data-status", "running")
    state = changed(page, state)

    # The activation, from the settings panel: re-initialised in place, still playing.
    page.select_option("#s-activation", "relu")
    expect(page.locator("#run-summary")).to_contain_text("relu")
    state = changed(page, state)

    # A neuron more in layer 1, on the diagram itself.
    layer_1 = network.locator('g.neuron[data-key^="1-"]')
    expect(layer_1).to_have_count(8)
    page.get_by_role("button", name="One more neuron in layer 1").click()
    expect(layer_1).to_have_count(9)
    state = changed(page, state)

    # A feature, by clicking its input node.
    x1_x2 = network.locator('[data-focus-key="feature-x1_x2"]')
    x1_x2.click()
    expect(x1_x2).to_have_attribute("aria-pressed", "true")
    state = changed(page, state)

    # Three points of our own, drawn from the live view's Data group.
    page.locator("#s-group-data summary").click()
    page.get_by_role("link", name="Draw your own points…").click()
    page.wait_for_url(re.compile(rf"/runs/{run_id}/draw$"))
    widget = page.locator(".draw-widget")
    widget.locator('[data-draw-action="clear"]').click()
    plane = widget.locator("svg.draw-plane")
    click_plane(page, plane, -0.5, 0.5)
    click_plane(page, plane, 0.5, 0.5)
    widget.locator('[data-draw-class="1"]').click()
    click_plane(page, plane, 0.5, -0.5)
    expect(widget.locator("[data-draw-count]")).to_have_text("3 points")
    page.click("#draw-train")
    page.wait_for_url(re.compile(rf"/runs/{run_id}$"))
    expect(status).to_have_attribute("data-status", "running")
    expect(page.locator("#output-points circle")).not_to_have_count(0)
    changed(page, state)
    assert data_rows(api, run_id) == [(-0.5, 0.5, 0), (0.5, -0.5, 1), (0.5, 0.5, 0)]
    run = api.get(f"/api/runs/{run_id}").json()
    assert run["config"]["activation"] == "relu"
    assert run["config"]["features"] == ["x1", "x2", "x1_x2"]
    assert run["layer_sizes"] == [3, 9, 8, 1]
    api.delete(f"/api/runs/{run_id}")
