"""Compare page, gradient-descent page, phone width and the dark theme."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from tests.e2e.browser import MakeRun, PageProblems, screenshot_path
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

NewContext = Callable[..., tuple[BrowserContext, PageProblems]]


def trained_run(api: httpx.Client, make_run: MakeRun, name: str, epochs: int, **body: Any) -> str:
    """A stopped run with ``epochs`` epochs of real training behind it; returns its id."""
    body.setdefault("dataset", {"kind": "xor", "n_samples": 120})
    body.setdefault("hidden_layers", [4])
    run = make_run(name=name, start=False, **body)
    response = api.post(f"/api/runs/{run['id']}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    assert response.json()["epoch"] == epochs
    return str(run["id"])


def test_compare_two_runs_from_the_runs_list(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    first = trained_run(api, make_run, "compare alpha", 30, learning_rate=0.3)
    second = trained_run(api, make_run, "compare beta", 20, learning_rate=0.03)
    page.goto("/runs")
    page.check(f"#cmp-{first}")
    page.check(f"#cmp-{second}")
    page.click("#compare-selected")
    page.wait_for_url(re.compile(r"/compare\?"))

    chart = page.locator("#compare-chart svg.chart-linear")
    paths = chart.locator("path.series")
    expect(paths).to_have_count(4)  # train (solid) and test (dashed) per run
    solid = chart.locator("path.series:not(.dashed)")
    expect(solid).to_have_count(2)
    colours = {solid.nth(i).get_attribute("stroke") for i in range(2)}
    assert len(colours) == 2 and None not in colours
    for i in range(2):
        assert len(re.findall(r"[ML]", solid.nth(i).get_attribute("d") or "")) >= 10

    legend = page.locator("#compare-legend li")
    expect(legend).to_have_count(2)
    # Listed in the runs list's order (newest first).
    expect(legend.locator("a")).to_have_text(["compare beta", "compare alpha"])
    expect(legend.nth(0).locator("a")).to_have_attribute("href", f"/runs/{second}")
    expect(legend.nth(1).locator("a")).to_have_attribute("href", f"/runs/{first}")
    expect(page.locator(f'#compare-pick input[value="{first}"]')).to_be_checked()
    expect(page.locator(f'#compare-pick input[value="{second}"]')).to_be_checked()

    # Log scale is on by default; the toggle swaps to the linear chart.
    log_chart = page.locator("#compare-chart svg.chart-log")
    expect(log_chart).to_be_visible()
    expect(chart).to_be_hidden()
    page.uncheck("#loss-log")
    expect(chart).to_be_visible()
    expect(log_chart).to_be_hidden()
    # The chart polls its fragment every 2 s; the re-rendered chart keeps both runs.
    page.wait_for_event("requestfinished", lambda r: "/ui/compare-chart" in r.url)
    expect(page.locator("#compare-legend li")).to_have_count(2)
    expect(chart.locator("path.series")).to_have_count(4)


def descent_x(page: Page) -> float:
    text = page.locator("#descent-readout").inner_text().replace("\u2212", "-")
    match = re.match(r"\s*x = ([-+0-9.e]+)", text)
    assert match is not None, text
    return float(match.group(1))


def pause_descent(page: Page) -> None:
    """Pause playback just after a frame arrived (the next one is 600 ms away).

    Pausing while a frame request is in flight loses against that frame (see
    test_descent_pause_wins_over_a_frame_in_flight), so the click waits for one.
    """
    with page.expect_response(lambda r: "/ui/descent/frame" in r.url and "play=1" in r.url):
        pass
    page.click("#descent-play")
    expect(page.locator("#descent-play")).to_have_attribute("aria-label", "Play")


def test_descent_page_steps_plays_and_judges_the_rate(page: Page) -> None:
    page.goto("/descent")
    count, verdict = page.locator("#descent-step-count"), page.locator("#descent-verdict")
    expect(count).to_have_text("0")
    expect(page.locator("#descent-lr")).to_have_value("0.05")
    assert descent_x(page) == pytest.approx(0.0)  # the article's start: slope 4

    # lr 0.05 from x0 = 0: each step keeps 90 % of the distance to the minimum at -2.
    for k in range(1, 6):
        page.click("#descent-step")
        expect(count).to_have_text(str(k))
        assert descent_x(page) == pytest.approx(-2 + 2 * 0.9**k, abs=1e-3)
    expect(verdict).to_have_text("descending")
    assert page.locator("circle.descent-past").count() == 5
    # The address bar follows the state, so the setup can be shared.
    assert page.url.endswith("/descent?lr=0.05&x0=0&step=5")

    # Play advances on its own; pause stops it.
    play = page.locator("#descent-play")
    play.click()
    expect(play).to_have_attribute("aria-label", "Pause")
    expect(count).to_have_text(re.compile(r"^(?:[7-9]|[1-9]\d+)$"))
    pause_descent(page)
    expect(verdict).to_have_text("descending")  # still far away: slow convergence
    assert abs(descent_x(page) + 2) > 0.1

    page.click("#descent-reset")
    expect(count).to_have_text("0")

    # lr 1.05 overshoots by more than it gains: each step lands farther away.
    page.click("#descent-lr-1_05")
    expect(page.locator("#descent-lr-1_05")).to_have_class(re.compile(r"\bactive\b"))
    expect(page.locator("#descent-lr")).to_have_value("1.05")
    expect(verdict).to_contain_text("diverging")
    pause_descent(page)
    assert abs(descent_x(page) + 2) > 2

    # lr 0.5 is exactly one step to the minimum of (x + 2)²; playback stops there.
    page.click("#descent-lr-0_5")
    expect(verdict).to_have_text("converged: within 1e-06 of the minimum after 1 step")
    assert descent_x(page) == pytest.approx(-2.0, abs=1e-3)
    expect(play).to_have_attribute("aria-label", "Play")

    # The start x = -4 mirrors x = 0, and a shared address opens the same state.
    page.click("#descent-start-m4")
    expect(page.locator("#descent-x0")).to_have_value("-4")
    page.click("#descent-step")
    expect(count).to_have_text("1")
    page.goto(page.url)
    expect(count).to_have_text("1")
    expect(page.locator("#descent-x0")).to_have_value("-4")
    assert descent_x(page) == pytest.approx(-2.0, abs=1e-3)


def test_descent_pause_wins_over_a_frame_in_flight(page: Page) -> None:
    held: list[Route] = []

    def hold_autoplay(route: Route) -> None:
        # Hold the frame requests playback makes on its own (step 2 on); let clicks through.
        step = re.search(r"[?&]step=(\d+)", route.request.url)
        if "play=1" in route.request.url and step is not None and int(step.group(1)) >= 2:
            held.append(route)
        else:
            route.continue_()

    page.route("**/ui/descent/frame?*", hold_autoplay)
    page.goto("/descent")
    count, play = page.locator("#descent-step-count"), page.locator("#descent-play")
    with page.expect_request(lambda r: "step=2" in r.url and "play=1" in r.url):
        play.click()
    expect(count).to_have_text("1")
    with page.expect_response(lambda r: "play=0" in r.url):
        play.click()  # pause, while the frame of step 2 is in flight
    expect(play).to_have_attribute("aria-label", "Play")
    assert len(held) == 1

    with page.expect_event("requestfinished", lambda r: "step=2" in r.url):
        held[0].continue_()
    # The late frame must not take over: still paused at step 1. (Waiting for the wrong
    # outcome returns at once when it happens; otherwise it gives the swap 2 s.)
    try:
        expect(count).to_have_text("2", timeout=2000)
    except AssertionError:
        resumed = False
    else:
        resumed = True
    assert not resumed, "the late frame took over: the page plays again from step 2"
    expect(play).to_have_attribute("aria-label", "Play")
    expect(page.locator("#descent-frame div[hx-trigger]")).to_have_count(0)


def overflow(page: Page) -> tuple[int, int]:
    """(document scroll width, viewport width) in CSS pixels."""
    sizes = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return int(sizes[0]), int(sizes[1])


def background_luminance(page: Page) -> float:
    colour = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    rgb = [int(v) for v in re.findall(r"\d+", colour)[:3]]
    return sum(rgb) / (3 * 255)


def test_phone_width_in_dark_theme(
    new_context: NewContext, server: LiveServer, api: httpx.Client, make_run: MakeRun
) -> None:
    run_id = trained_run(api, make_run, "phone run with a rather long name to wrap", 25)
    context, _ = new_context(
        base_url=server.url,
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    pages = {
        "home": ("/runs", "#runs-table"),
        "live": (f"/runs/{run_id}", "#loss-chart svg.chart-linear path.train"),
        "compare": (f"/compare?runs={run_id}", "#compare-legend"),
        "descent": ("/descent", "#descent-svg"),
    }
    for name, (url, ready) in pages.items():
        page.goto(url)
        expect(page.locator(ready)).to_be_attached()
        if name == "live":
            expect(page.locator("#epoch")).to_have_attribute("data-epoch", "25")
        assert page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches")
        assert background_luminance(page) < 0.2, name
        width, viewport = overflow(page)
        page.screenshot(path=screenshot_path(f"test_phone_dark_{name}"), full_page=True)
        assert viewport == 390
        assert width <= viewport + 1, f"{name}: horizontal overflow, {width} > {viewport}"

    # The toggle switches to light and remembers it across pages.
    page.click("#theme-toggle")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background_luminance(page) > 0.8
    page.goto("/runs")
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert background_luminance(page) > 0.8
    page.screenshot(path=screenshot_path("test_phone_light_home"), full_page=True)


def test_theme_toggle_on_the_live_view(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run_id = trained_run(api, make_run, "dark desktop", 25)
    page.goto(f"/runs/{run_id}")
    expect(page.locator("#epoch")).to_have_attribute("data-epoch", "25")
    assert not page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches")
    light = background_luminance(page)
    assert light > 0.8
    page.click("#theme-toggle")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background_luminance(page) < 0.2
    width, viewport = overflow(page)
    assert width <= viewport + 1
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    expect(page.locator("#epoch")).to_have_attribute("data-epoch", "25")
