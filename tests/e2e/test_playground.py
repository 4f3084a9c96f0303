"""The playground loop in a browser: / opens on a run that learns, drawn data trains,
and the predict box refuses an empty field."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

RUN_URL = re.compile(r"/runs/([0-9A-Za-z_-]+)$")


def delete_all_runs(api: httpx.Client) -> None:
    for run in api.get("/api/runs").json()["runs"]:
        api.delete(f"/api/runs/{run['id']}")


def epoch_of(page: Page) -> int:
    return int(page.locator("#epoch").get_attribute("data-epoch") or "0")


def test_home_on_an_empty_database_opens_a_run_that_trains(page: Page, api: httpx.Client) -> None:
    delete_all_runs(api)
    start = time.monotonic()
    page.goto("/")
    page.wait_for_url(RUN_URL)
    epoch = page.locator("#epoch")
    expect(epoch).to_have_attribute("data-epoch", re.compile(r"^[1-9]\d*$"))
    first_epoch_after = time.monotonic() - start
    first = epoch_of(page)
    expect(epoch).not_to_have_attribute("data-epoch", str(first))
    assert epoch_of(page) > first
    runs = api.get("/api/runs").json()["runs"]
    assert len(runs) == 1 and runs[0]["config"]["dataset"]["kind"] == "spiral"
    assert runs[0]["status"] == "running"
    # Within a second on an idle machine; the bound leaves room for a busy shared one.
    assert first_epoch_after < 5, f"first epoch shown after {first_epoch_after:.1f} s"
    # A second visit opens the same run.
    page.goto("/")
    page.wait_for_url(RUN_URL)
    assert len(api.get("/api/runs").json()["runs"]) == 1


def click_plane(page: Page, plane: Locator, x: float, y: float, **options: Any) -> None:
    """Click the drawing plane at data coordinates (x, y) in [-1, 1]²."""
    box = plane.bounding_box()
    assert box is not None
    page.mouse.click(
        box["x"] + (x + 1) / 2 * box["width"], box["y"] + (1 - y) / 2 * box["height"], **options
    )


def data_rows(api: httpx.Client, run_id: str) -> list[tuple[float, float, int]]:
    data = api.get(f"/api/runs/{run_id}/data").json()
    return sorted(
        (round(x[0], 1), round(x[1], 1), y)
        for part in ("train", "test")
        for x, y in zip(data[part]["x"], data[part]["y"], strict=True)
    )


def test_draw_three_points_in_the_new_run_form_and_train(
    page: Page, api: httpx.Client, clean_runs: None
) -> None:
    page.goto("/runs#new-run")
    page.select_option("#f-dataset-kind", "draw")
    widget = page.locator("#draw-fields .draw-widget")
    expect(widget).to_be_visible()
    expect(page.locator("#dataset-preview")).to_be_hidden()
    plane = widget.locator("svg.draw-plane")
    click_plane(page, plane, -0.5, 0.5)
    click_plane(page, plane, 0.5, 0.5)
    expect(widget.locator("[data-draw-error]")).to_contain_text("Every point is class 0")
    widget.locator('[data-draw-class="1"]').click()
    click_plane(page, plane, 0.5, -0.5)
    expect(widget.locator("[data-draw-count]")).to_have_text("3 points")
    expect(widget.locator("circle.draw-point")).to_have_count(3)
    expect(widget.locator("[data-draw-error]")).to_be_hidden()
    page.fill("#f-name", "drawn in the form")
    page.click("#create-run")
    page.wait_for_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    assert data_rows(api, match.group(1)) == [(-0.5, 0.5, 0), (0.5, -0.5, 1), (0.5, 0.5, 0)]


def test_draw_page_moves_removes_and_trains_on_the_points(
    page: Page, api: httpx.Client, make_run: Callable[..., dict[str, Any]]
) -> None:
    run = make_run(dataset={"kind": "xor", "n_samples": 10}, max_epochs_per_second=20)
    page.goto(f"/runs/{run['id']}/draw")
    widget = page.locator(".draw-widget")
    points = widget.locator("circle.draw-point")
    expect(points).to_have_count(10)  # the run's own train + test points
    widget.locator('[data-draw-action="clear"]').click()
    expect(points).to_have_count(0)
    plane = widget.locator("svg.draw-plane")
    click_plane(page, plane, -0.5, -0.5)
    click_plane(page, plane, 0.0, 0.0)
    widget.locator('[data-draw-class="1"]').click()
    click_plane(page, plane, 0.5, 0.5)
    # Drag the first point from (-0.5, -0.5) to (-0.5, 0.5).
    box = plane.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.75 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.25 * box["width"], box["y"] + 0.25 * box["height"], steps=5)
    page.mouse.up()
    # Right-click removes the middle one; then a class-0 point at (0.5, -0.5).
    click_plane(page, plane, 0.0, 0.0, button="right")
    expect(points).to_have_count(2)
    widget.locator('[data-draw-class="0"]').click()
    click_plane(page, plane, 0.5, -0.5)
    expect(widget.locator("[data-draw-count]")).to_have_text("3 points")

    page.click("#draw-train")
    page.wait_for_url(re.compile(rf"/runs/{run['id']}$"))
    assert data_rows(api, run["id"]) == [(-0.5, 0.5, 0), (0.5, -0.5, 0), (0.5, 0.5, 1)]
    expect(page.locator("#status")).to_have_attribute("data-status", "running")


def test_draw_page_refuses_a_single_point_in_words(
    page: Page, api: httpx.Client, make_run: Callable[..., dict[str, Any]]
) -> None:
    run = make_run(dataset={"kind": "xor", "n_samples": 10}, start=False)
    page.goto(f"/runs/{run['id']}/draw")
    page.locator('[data-draw-action="clear"]').click()
    click_plane(page, page.locator("svg.draw-plane"), 0.2, 0.2)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/draw" in r.url else None)
    page.click("#draw-train")
    expect(page.locator("[data-draw-error]")).to_have_text("Draw at least 2 points (there is 1).")
    assert requests == []  # refused before any request
    assert api.get(f"/api/runs/{run['id']}").json()["config"]["dataset"]["kind"] == "xor"


def test_predict_box_refuses_an_empty_field(
    page: Page, make_run: Callable[..., dict[str, Any]]
) -> None:
    run = make_run(dataset={"kind": "xor", "n_samples": 20}, start=False)
    page.goto(f"/runs/{run['id']}")
    page.fill("#predict-x0", "0.5")
    page.fill("#predict-x1", "")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/predict" in r.url else None)
    page.press("#predict-x0", "Enter")
    expect(page.locator("#predict-result")).to_contain_text("input 2")
    expect(page.locator("#predict-result")).to_contain_text("empty")
    assert requests == []
