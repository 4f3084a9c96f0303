"""The weight history page in a browser: the scrubber redraws the frame from that epoch's
snapshot, "Play back" walks the kept epochs, "Live again" returns to the live view."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import MakeRun, PageProblems, screenshot_path
from tests.e2e.test_phone import MIN_TEXT_PX, PHONE, SMALL_TEXT, scroll_width, wide_elements
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

RUN = {
    "dataset": {"kind": "xor", "n_samples": 60},
    "hidden_layers": [3],
    "activation": "tanh",
    "batch_size": 10,
    "learning_rate": 0.5,
    "epochs": 100,
    "start": False,
}


def _first_weight(page: Page) -> str:
    return page.locator("#history-network .links path title").first.text_content() or ""


def test_scrub_play_back_and_live_again(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(name="history e2e", **RUN)
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 30}).status_code == 200
    kept = api.get(f"/api/runs/{run['id']}/snapshots").json()["epochs"]
    page.goto(f"/runs/{run['id']}/history")
    shown = page.locator("#history-shown-epoch")
    expect(shown).to_have_text(str(kept[-1]))
    last = _first_weight(page)

    # move the scrubber to the start: the diagram shows epoch 0's weights
    scrubber = page.locator("#history-range")
    scrubber.fill("0")
    expect(shown).to_have_text("0")
    first = api.get(f"/api/runs/{run['id']}/weights", params={"epoch": 0}).json()
    w0 = first["layers"][0]["weights"][0][0]
    expect(page.locator("#history-network .links path title").first).to_have_text(
        re.compile(rf"^w = {re.escape(repr(w0))}$")
    )
    assert _first_weight(page) != last
    assert "epoch=0" in page.url

    # Play back steps forward through the kept epochs to the last, then stops
    page.locator("#history-play").click()
    expect(page.locator("#history-play")).to_have_text("Pause")
    expect(shown).not_to_have_text("0")  # it moves on by itself
    expect(shown).to_have_text(str(kept[-1]))
    expect(page.locator("#history-play")).to_have_text("Play back")
    assert scrubber.input_value() == str(len(kept) - 1)

    # Live again: one click back to the live view
    page.locator("#live-again").click()
    expect(page).to_have_url(re.compile(rf"/runs/{run['id']}$"))
    expect(page.locator("#history-link")).to_be_visible()


def test_history_and_teacher_pages_fit_a_phone(
    new_context: Callable[..., tuple[BrowserContext, PageProblems]],
    server: LiveServer,
    api: httpx.Client,
    make_run: MakeRun,
    request: pytest.FixtureRequest,
) -> None:
    """At 390 px: no sideways scroll and no text under 10 px on either page."""
    body = RUN | {"dataset": {"kind": "teacher", "teacher_layers": [2, 4, 1]}, "name": "phone"}
    run = make_run(**body)
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 30}).status_code == 200
    context, _ = new_context(base_url=server.url, viewport=PHONE)
    page = context.new_page()
    for path in (f"/runs/{run['id']}/history", f"/runs/{run['id']}/teacher"):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        assert scroll_width(page) <= PHONE["width"], wide_elements(page)
        assert page.evaluate(SMALL_TEXT, MIN_TEXT_PX) == []
    page.screenshot(path=screenshot_path(request.node.name), full_page=True)


def test_the_live_views_history_card_scrubs_and_goes_live_again(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="history on the live view", **RUN)
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 30}).status_code == 200
    kept = api.get(f"/api/runs/{run['id']}/snapshots").json()["epochs"]
    page.goto(f"/runs/{run['id']}")
    card = page.locator("#live-history")
    card.locator("summary").click()
    shown = page.locator("#history-shown-epoch")
    expect(shown).to_have_text(str(kept[-1]))
    last = _first_weight(page)
    page.locator("#history-range").fill("0")
    expect(shown).to_have_text("0")
    assert _first_weight(page) != last  # the diagram is the epoch-0 snapshot's
    expected = api.get(f"/api/runs/{run['id']}/weights", params={"epoch": 0}).json()
    w = expected["layers"][0]["weights"][0][0]
    assert _first_weight(page) == f"w = {w!r}" or str(w)[:8] in _first_weight(page)
    page.locator("#history-live").click()
    expect(card).not_to_have_attribute("open", "")
    expect(page.locator("#network")).to_be_visible()  # the live diagram, as it was
