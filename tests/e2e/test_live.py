"""The live view of one run: controls, prediction, live settings, delete, and keeping up."""

from __future__ import annotations

import math
import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import PACED_RUN, MakeRun, api_run, page_epoch
from tests.support import wait_until

pytestmark = pytest.mark.e2e

NUMBER = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"


def test_stop_step_reset_and_space_key(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(name="controls", **PACED_RUN)
    page.goto(f"/runs/{run['id']}")
    status, epoch = page.locator("#status"), page.locator("#epoch")
    expect(status).to_have_attribute("data-status", "running")
    expect(epoch).to_have_attribute("data-epoch", re.compile(r"^[1-9]\d*$"))

    # Stop: the epoch freezes, and the page shows the API's final epoch.
    page.click("#start-stop")
    expect(status).to_have_attribute("data-status", "stopped")
    expect(page.locator("#start-stop")).to_have_attribute("data-running", "false")
    stopped = api_run(api, run["id"])
    assert stopped["status"] == "stopped"
    expect(epoch).to_have_attribute("data-epoch", str(stopped["epoch"]))
    assert api_run(api, run["id"])["epoch"] == stopped["epoch"]
    assert page_epoch(page) == stopped["epoch"]

    # Step: exactly one more epoch, still stopped.
    page.click("#step")
    expect(epoch).to_have_attribute("data-epoch", str(stopped["epoch"] + 1))
    # The epoch's metrics arrive a moment before the step ends (status running meanwhile).
    expect(status).to_have_attribute("data-status", "stopped")
    stepped = api_run(api, run["id"])
    assert (stepped["epoch"], stepped["status"]) == (stopped["epoch"] + 1, "stopped")
    expect(status).to_have_attribute("data-status", "stopped")

    # Reset: back to epoch 0 and "created"; the loss chart empties.
    page.click("#reset")
    expect(epoch).to_have_attribute("data-epoch", "0")
    expect(status).to_have_attribute("data-status", "created")
    expect(page.locator("#loss-chart svg.chart-linear path.train")).to_have_count(0)
    reset = api_run(api, run["id"])
    assert (reset["epoch"], reset["status"]) == (0, "created")

    # Space toggles start/stop when the focus is not in a control.
    page.click("#run-name")
    assert page.evaluate("() => document.activeElement === document.body")
    page.keyboard.press("Space")
    expect(status).to_have_attribute("data-status", "running")
    expect(epoch).not_to_have_attribute("data-epoch", "0")
    page.keyboard.press("Space")
    expect(status).to_have_attribute("data-status", "stopped")
    assert api_run(api, run["id"])["status"] == "stopped"

    # ... but not while typing in an input: a space there starts nothing, so the
    # step that follows it (refused while running) goes through.
    before = api_run(api, run["id"])["epoch"]
    expect(epoch).to_have_attribute("data-epoch", str(before))
    page.click("#predict-x0")
    page.keyboard.press("Space")
    page.click("#step")
    expect(epoch).to_have_attribute("data-epoch", str(before + 1))
    expect(status).to_have_attribute("data-status", "stopped")
    expect(page.locator("#control-feedback")).to_have_count(0)
    after = api_run(api, run["id"])
    assert (after["epoch"], after["status"]) == (before + 1, "stopped")


def parse_prediction(text: str) -> tuple[list[float], list[float], int | None]:
    """'(x0, x1) → o1, o2 · class k' → inputs, outputs, label."""
    match = re.fullmatch(
        r"\((?P<x>[^)]*)\) → (?P<out>[^·]*?)(?: · class (?P<label>\d+))?", text.strip()
    )
    assert match is not None, f"unexpected prediction text {text!r}"
    inputs = [float(v) for v in match["x"].split(", ")]
    outputs = [float(v) for v in match["out"].split(", ")]
    return inputs, outputs, int(match["label"]) if match["label"] is not None else None


def check_prediction(page: Page, api: httpx.Client, run_id: str, n_inputs: int = 2) -> None:
    """The page's prediction equals POST /predict for the inputs the page used."""
    result = page.locator("#predict-result")
    numbers = ", ".join([NUMBER] * n_inputs)
    expect(result).to_have_text(re.compile(rf"^\({numbers}\) → "))
    x = [float(page.locator(f"#predict-x{i}").input_value()) for i in range(n_inputs)]
    shown_x, shown_out, shown_label = parse_prediction(result.inner_text())
    assert shown_x == pytest.approx(x, rel=1e-3, abs=1e-12)
    truth = api.post(f"/api/runs/{run_id}/predict", json={"inputs": [x]}).json()
    assert shown_out == pytest.approx(truth["outputs"][0], rel=1e-3, abs=1e-6)
    assert shown_label == (truth["labels"][0] if "labels" in truth else None)


def test_predict_by_clicking_the_output_map(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(
        name="predict",
        dataset={"kind": "xor", "n_samples": 200, "noise": 0.0},
        hidden_layers=[4],
        learning_rate=0.3,
        start=False,
    )
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 60}).status_code == 200
    page.goto(f"/runs/{run['id']}")
    stack = page.locator("#output-stack")
    expect(stack).to_have_attribute("data-kind", "plane")
    expect(page.locator("#output-heatmap image.map-continuous")).to_have_count(1)
    expect(page.locator("#predict-result")).to_have_text("click the map")

    box = stack.bounding_box()
    assert box is not None
    # Upper right quarter of the map: x0 > 0, x1 > 0 (the map's y axis points up).
    stack.click(position={"x": box["width"] * 0.75, "y": box["height"] * 0.25})
    expect(page.locator("#predict-x0")).not_to_have_value("0")
    x0 = float(page.locator("#predict-x0").input_value())
    x1 = float(page.locator("#predict-x1").input_value())
    bound = float(stack.get_attribute("data-bound") or "nan")
    assert 0 < x0 < bound and 0 < x1 < bound
    assert x0 == pytest.approx(bound / 2, abs=0.05 * bound)
    assert x1 == pytest.approx(bound / 2, abs=0.05 * bound)
    check_prediction(page, api, run["id"])

    # Typed inputs and the Predict button take the same path.
    page.fill("#predict-x0", "-0.5")
    page.fill("#predict-x1", "0.25")
    page.click("#predict-button")
    expect(page.locator("#predict-result")).to_have_text(re.compile(r"^\(-0\.5, 0\.25\) → "))
    check_prediction(page, api, run["id"])


def test_predict_on_a_regression_curve(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(
        name="sine",
        dataset={"kind": "sine", "n_samples": 100},
        hidden_layers=[8],
        optimizer="adam",
        learning_rate=0.01,
        start=False,
    )
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 30}).status_code == 200
    page.goto(f"/runs/{run['id']}")
    stack = page.locator("#output-stack")
    expect(stack).to_have_attribute("data-kind", "curve")
    expect(page.locator("#output-heatmap path.prediction")).to_have_count(1)
    expect(page.locator("#predict-x1")).to_have_count(0)
    expect(page.locator("#train-accuracy")).to_have_count(0)  # regression: no accuracy

    box = stack.bounding_box()
    assert box is not None
    stack.click(position={"x": box["width"] * 0.3, "y": box["height"] * 0.5})
    lo = float(stack.get_attribute("data-x0") or "nan")
    hi = float(stack.get_attribute("data-x1") or "nan")
    expect(page.locator("#predict-x0")).not_to_have_value("0")
    x0 = float(page.locator("#predict-x0").input_value())
    assert x0 == pytest.approx(lo + 0.3 * (hi - lo), abs=0.02 * (hi - lo))
    check_prediction(page, api, run["id"], n_inputs=1)


def test_view_toggles_and_hover_survive_live_frames(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="toggles", **(PACED_RUN | {"max_epochs_per_second": 5}))
    page.goto(f"/runs/{run['id']}")
    epoch = page.locator("#epoch")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    expect(page.locator("#loss-chart svg.chart-linear path.train")).to_have_count(1)

    def next_frame() -> None:
        seen = epoch.get_attribute("data-epoch") or ""
        expect(epoch).not_to_have_attribute("data-epoch", seen)

    # Each toggle only restyles; the swapped-in fragments keep following it.
    toggles = {
        "#loss-log": ("#loss-chart svg.chart-log", "#loss-chart svg.chart-linear"),
        "#discretize": (
            "#output-heatmap image.map-discrete",
            "#output-heatmap image.map-continuous",
        ),
        "#weights-delta": ("#weights img.w-delta >> nth=0", "#weights img.w-now >> nth=0"),
    }
    for box, (shown, hidden) in toggles.items():
        expect(page.locator(shown)).to_be_hidden()
        expect(page.locator(hidden)).to_be_visible()
        page.check(box)
        expect(page.locator(shown)).to_be_visible()
        expect(page.locator(hidden)).to_be_hidden()
    test_points = page.locator("#output-points .pts.test circle").first
    expect(test_points).to_be_hidden()
    page.check("#show-test")
    expect(test_points).to_be_visible()
    next_frame()
    for shown, hidden in toggles.values():
        expect(page.locator(shown)).to_be_visible()
        expect(page.locator(hidden)).to_be_hidden()
    page.uncheck("#loss-log")

    # Live frames keep replacing the hovered elements, so the mouse is moved to where
    # they are (Playwright's hover() would retry on every detached element).
    def move_to(selector: str) -> None:
        box = page.locator(selector).bounding_box()
        assert box is not None, selector
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

    # Hovering the loss chart prints the nearest epoch's values under it.
    move_to("#loss-chart svg.chart-linear")
    expect(page.locator("#loss-readout")).to_have_text(
        re.compile(rf"^epoch \d+ · train {NUMBER} · test {NUMBER}$")
    )

    # Hovering a hidden neuron shows its map over the output plot, kept across frames.
    neuron = page.locator('#network g.neuron[data-key="1-0"]')
    expect(neuron.locator("image")).to_have_count(1)
    move_to('#network g.neuron[data-key="1-0"] rect.frame')
    preview = page.locator("#neuron-preview")
    expect(preview).to_be_visible()
    next_frame()
    expect(preview).to_be_visible()
    # Once the weights stop changing, the preview is the hovered neuron's latest map.
    assert api.post(f"/api/runs/{run['id']}/stop").json()["status"] == "stopped"
    expect(page.locator("#status")).to_have_attribute("data-status", "stopped")
    image = neuron.locator("image")
    wait_until(
        lambda: preview.get_attribute("src") == image.get_attribute("href"),
        timeout=20,
        what="the neuron preview to show the neuron's final map",
    )
    # The head is above the network: bring it into view first (mouse.move does not scroll).
    page.locator("#run-name").scroll_into_view_if_needed()
    move_to("#run-name")
    expect(preview).to_be_hidden()


def test_live_learning_rate_and_speed_change(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="live settings", **PACED_RUN)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    # The stream's first snapshot has been swapped in (frames with epochs follow it), so
    # nothing re-draws the panel under the typing below.
    expect(page.locator("#epoch")).not_to_have_attribute("data-epoch", "0")
    rate = page.locator("#learning-rate")
    expect(rate).to_have_value("0.03")

    rate.fill("0.1")
    rate.press("Tab")  # the change event fires on blur
    feedback = page.locator("#control-feedback")
    expect(feedback).to_have_attribute("data-error", "false")
    expect(feedback).to_contain_text("learning rate 0.1")
    config = api_run(api, run["id"])["config"]
    assert config["learning_rate"] == 0.1
    assert config["max_epochs_per_second"] == 20

    page.select_option("#speed", "5")
    expect(feedback).to_contain_text("≤ 5 epochs/s")
    config = api_run(api, run["id"])["config"]
    assert (config["learning_rate"], config["max_epochs_per_second"]) == (0.1, 5)

    # A rate the API refuses (it wants 0 < lr <= 10) is reported next to the controls;
    # the run keeps its rate.
    rate.fill("0")
    rate.press("Tab")
    expect(feedback).to_have_attribute("data-error", "true")
    expect(feedback).to_contain_text("Learning rate: must be more than 0")
    assert api_run(api, run["id"])["config"]["learning_rate"] == 0.1
    assert api_run(api, run["id"])["status"] == "running"


def test_learning_rate_above_the_maximum_is_reported(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="rate too high", dataset={"kind": "xor", "n_samples": 100}, start=False)
    page.goto(f"/runs/{run['id']}")
    rate = page.locator("#learning-rate")
    expect(rate).to_have_value("0.03")
    rate.fill("11")
    rate.press("Tab")
    expect(page.locator("#control-feedback")).to_have_attribute("data-error", "true", timeout=3000)


def test_enter_in_the_learning_rate_box_stays_on_the_page(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="enter key", dataset={"kind": "xor", "n_samples": 100}, start=False)
    page.goto(f"/runs/{run['id']}")
    documents: list[str] = []
    page.on("request", lambda r: documents.append(r.url) if r.resource_type == "document" else None)
    rate = page.locator("#learning-rate")
    expect(rate).to_have_value("0.03")
    rate.fill("0.2")
    rate.press("Enter")
    expect(page.locator("#control-feedback")).to_contain_text("learning rate 0.2", timeout=3000)
    assert api_run(api, run["id"])["config"]["learning_rate"] == 0.2
    assert documents == []


def test_delete_from_live_view(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(name="to delete", dataset={"kind": "xor", "n_samples": 100}, start=False)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-name")).to_have_text("to delete")
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#delete")
    page.wait_for_url(re.compile(r"/runs$"))
    assert messages == ["Delete this run and its data?"]
    assert api.get(f"/api/runs/{run['id']}").status_code == 404
    expect(page.locator(f'tr[data-run-id="{run["id"]}"]')).to_have_count(0)
    expect(page.locator("#runs-empty")).to_be_visible()


def test_dismissing_the_delete_dialog_keeps_the_run(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="kept", dataset={"kind": "xor", "n_samples": 100}, start=False)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-name")).to_have_text("kept")
    messages: list[str] = []

    def dismiss(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#delete")
    assert messages == ["Delete this run and its data?"]
    expect(page.locator("#run-name")).to_have_text("kept")
    assert api.get(f"/api/runs/{run['id']}").status_code == 200
    assert page.url.endswith(f"/runs/{run['id']}")


def dom_size(page: Page) -> int:
    return int(page.evaluate("() => document.getElementsByTagName('*').length"))


def test_page_keeps_up_with_a_fast_run(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(
        name="fast spiral",
        dataset={"kind": "spiral", "n_samples": 400},
        hidden_layers=[8, 8],
        epochs=1_000_000,
    )
    page.goto(f"/runs/{run['id']}")
    epoch = page.locator("#epoch")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")

    # Sample the DOM size on every new frame for about 5 s (frames are the events awaited).
    samples: list[tuple[float, int, int]] = []
    start = time.monotonic()
    seen = page_epoch(page)
    while (elapsed := time.monotonic() - start) < 5.0:
        expect(epoch).not_to_have_attribute("data-epoch", str(seen))
        seen = page_epoch(page)
        samples.append((elapsed, seen, dom_size(page)))
    assert len(samples) >= 5, samples
    at_2s = min(samples, key=lambda s: abs(s[0] - 2.0))
    last = samples[-1]
    assert last[1] > at_2s[1] > 0, samples
    # Frames replace the charts and maps in place: the page does not grow with the epochs.
    assert abs(last[2] - at_2s[2]) <= max(25, math.ceil(0.03 * at_2s[2])), samples

    # After a stop the page shows exactly the API's final epoch.
    stopped = api.post(f"/api/runs/{run['id']}/stop").json()
    assert stopped["status"] == "stopped"
    expect(page.locator("#status")).to_have_attribute("data-status", "stopped")
    expect(epoch).to_have_attribute("data-epoch", str(stopped["epoch"]))


LINK_OFFSET = (
    "() => getComputedStyle(document.querySelector('#network .links path')).strokeDashoffset"
)
AFTER_FRAMES = """n => new Promise(done => {
  const tick = left => left ? requestAnimationFrame(() => tick(left - 1)) : done();
  tick(n);
})"""


def test_links_flow_while_the_run_trains_and_rest_when_it_stops(
    page: Page, make_run: MakeRun
) -> None:
    """As in the Playground, the links' dashes move while the run trains. The network is
    re-rendered every frame, so the motion must survive new paths; it stops with the run,
    and never starts for a reader who asked for reduced motion."""
    run = make_run(name="flow", **PACED_RUN)
    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    start = page.evaluate(LINK_OFFSET)
    # moves on, across several re-rendered frames (epochs keep arriving meanwhile)
    epoch = page_epoch(page)
    page.wait_for_function(f"o => ({LINK_OFFSET})() !== o", arg=start)
    expect(page.locator("#epoch")).not_to_have_attribute("data-epoch", str(epoch))
    page.wait_for_function(f"o => ({LINK_OFFSET})() !== o", arg=page.evaluate(LINK_OFFSET))

    page.click("#start-stop")
    expect(page.locator("#status")).to_have_attribute("data-status", "stopped")
    page.evaluate(AFTER_FRAMES, 3)  # a pause takes hold on the next animation frame
    resting = page.evaluate(LINK_OFFSET)
    page.evaluate(AFTER_FRAMES, 30)
    assert page.evaluate(LINK_OFFSET) == resting

    page.emulate_media(reduced_motion="reduce")
    page.click("#start-stop")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    expect(page.locator("#epoch")).not_to_have_attribute("data-epoch", str(page_epoch(page)))
    page.evaluate(AFTER_FRAMES, 30)
    assert page.evaluate(LINK_OFFSET) == "0px"
