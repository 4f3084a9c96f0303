"""The runs page and its "New run" form, in a real browser against real training."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Dialog, Page, expect

pytestmark = pytest.mark.e2e

RUN_URL = re.compile(r"/runs/([0-9A-Za-z_-]+)$")


def run_ids(api: httpx.Client) -> set[str]:
    return {run["id"] for run in api.get("/api/runs").json()["runs"]}


def test_create_run_from_form_trains_live(page: Page, api: httpx.Client) -> None:
    page.goto("/runs")
    expect(page.locator("#runs-empty")).to_be_visible()
    page.click("#preset-xor")
    # The preset re-renders the form (htmx outerHTML): wait for its values, then edit them.
    expect(page.locator("#f-name")).to_have_value("xor")
    expect(page.locator("#f-dataset-kind")).to_have_value("xor")
    page.fill("#f-name", "e2e form run")
    page.fill("#f-dataset-n_samples", "200")
    # A speed limit keeps the run going for the whole test on a busy machine.
    page.select_option("#f-max_epochs_per_second", "20")
    expect(page.locator("#f-start")).to_be_checked()
    page.click("#create-run")

    page.wait_for_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    run_id = match.group(1)
    expect(page.locator("#run-name")).to_have_text("e2e form run")
    expect(page.locator("#status")).to_have_attribute("data-status", "running")
    expect(page.locator("#start-stop")).to_have_attribute("data-running", "true")

    # The epoch counter climbs and the loss curve is redrawn, frame by frame.
    epoch = page.locator("#epoch")
    expect(epoch).to_have_attribute("data-epoch", re.compile(r"^[1-9]\d*$"))
    first_epoch = int(epoch.get_attribute("data-epoch") or "0")
    train_path = page.locator("#loss-chart svg.chart-linear path.train")
    expect(train_path).to_have_count(1)
    first_d = train_path.get_attribute("d")
    assert first_d
    expect(epoch).not_to_have_attribute("data-epoch", str(first_epoch))
    expect(train_path).not_to_have_attribute("d", first_d)
    assert int(epoch.get_attribute("data-epoch") or "0") > first_epoch

    run = api.get(f"/api/runs/{run_id}").json()
    assert run["name"] == "e2e form run"
    assert run["status"] == "running"
    assert run["config"]["dataset"]["kind"] == "xor"
    assert run["config"]["dataset"]["n_samples"] == 200
    assert run["config"]["hidden_layers"] == [4]
    assert run["config"]["max_epochs_per_second"] == 20
    assert run["epoch"] >= first_epoch


@pytest.mark.parametrize("rate", ["0", "11"])
def test_form_validation_error_creates_nothing(page: Page, api: httpx.Client, rate: str) -> None:
    before = run_ids(api)
    page.goto("/runs")
    page.fill("#f-name", f"invalid rate {rate}")
    page.fill("#f-learning_rate", rate)
    page.click("#create-run")

    error = page.locator("#error-learning_rate")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    # The form comes back with the typed values and stays on the home page.
    expect(page.locator("#f-learning_rate")).to_have_value(rate)
    expect(page.locator("#f-name")).to_have_value(f"invalid rate {rate}")
    assert urlsplit(page.url).path == "/runs"
    assert run_ids(api) == before


def test_run_name_is_shown_as_text_not_markup(
    page: Page, make_run: Callable[..., dict[str, Any]]
) -> None:
    name = "<img src=x onerror=alert(1)>"
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    run = make_run(name=name, dataset={"kind": "xor", "n_samples": 100}, start=False)

    page.goto("/runs")
    row = page.locator(f'#runs-table tr[data-run-id="{run["id"]}"]')
    expect(row.locator("td.name a")).to_have_text(name)
    expect(page.locator("img[src=x]")).to_have_count(0)
    # The runs list refreshes itself every 2 s: the re-rendered table is escaped too.
    page.wait_for_event("requestfinished", lambda r: "/ui/runs-table" in r.url)
    expect(row.locator("td.name a")).to_have_text(name)
    expect(page.locator("img[src=x]")).to_have_count(0)

    page.goto(f"/runs/{run['id']}")
    expect(page.locator("#run-name")).to_have_text(name)
    expect(page).to_have_title(re.compile(re.escape(name)))
    expect(page.locator("img[src=x]")).to_have_count(0)

    page.goto(f"/compare?runs={run['id']}")
    expect(page.locator("#compare-legend")).to_contain_text(name)
    expect(page.locator("img[src=x]")).to_have_count(0)
    assert dialogs == []


def test_dataset_preview_and_architecture_editor(page: Page, api: httpx.Client) -> None:
    page.goto("/runs")
    preview = page.locator("#dataset-preview")
    expect(preview.locator("svg.preview-svg circle")).not_to_have_count(0)
    first_point = preview.locator("svg.preview-svg circle").first
    spiral_cx = first_point.get_attribute("cx") or ""

    # Changing a data field re-draws the preview from the same generator the run will use.
    page.select_option("#f-dataset-kind", "circle")
    expect(first_point).not_to_have_attribute("cx", spiral_cx)
    page.fill("#f-dataset-n_samples", "100")
    page.locator("#f-dataset-n_samples").press("Tab")
    expect(preview).to_contain_text("80 train · 20 test")
    expect(preview.locator("svg.preview-svg circle")).to_have_count(100)

    # The architecture editor: [8, 8] → add → [8, 8, 8] → inc 0, dec 1 → remove → [9, 7].
    expect(page.locator("#hidden-1")).to_have_value("8")
    page.click("#add-layer")
    expect(page.locator("#hidden-2")).to_have_value("8")
    page.click('button[value="inc:0"]')
    expect(page.locator("#hidden-0")).to_have_value("9")
    page.click('button[value="dec:1"]')
    expect(page.locator("#hidden-1")).to_have_value("7")
    page.click("#remove-layer")
    expect(page.locator("#hidden-2")).to_have_count(0)
    expect(page.locator("#arch-editor .arch-count")).to_have_text("2 hidden layers")

    page.fill("#f-name", "edited architecture")
    page.uncheck("#f-start")
    page.click("#create-run")
    page.wait_for_url(RUN_URL)
    expect(page.locator("#status")).to_have_attribute("data-status", "created")
    expect(page.locator("#run-architecture")).to_have_text("\u2013".join(["2", "9", "7", "1"]))
    match = RUN_URL.search(page.url)
    assert match is not None
    run = api.get(f"/api/runs/{match.group(1)}").json()
    assert run["config"]["hidden_layers"] == [9, 7]
    assert run["config"]["dataset"]["kind"] == "circle"
    assert run["config"]["dataset"]["n_samples"] == 100
    assert (run["status"], run["epoch"]) == ("created", 0)


def test_create_run_from_your_own_csv_data(page: Page, api: httpx.Client) -> None:
    page.goto("/runs")
    data = page.locator("#f-dataset-data")
    expect(data).to_be_hidden()
    page.select_option("#f-dataset-kind", "custom")
    expect(data).to_be_visible()
    page.fill("#f-name", "my own points")
    rows = "0.5, 0.5, 1\n-0.5, -0.5, 0\n0.4, 0.6, 1\n-0.6, -0.4, 0\n"
    page.fill("#f-dataset-data", rows + "0.3, x, 1")
    page.locator("#f-dataset-data").press("Tab")
    page.uncheck("#f-start")
    page.click("#create-run")
    # A cell that is not a number: the message names its row and column, nothing is made.
    expect(page.locator("#error-dataset-data")).to_contain_text(
        "row 5, column 2: 'x' is not a number"
    )
    assert "my own points" not in {r["name"] for r in api.get("/api/runs").json()["runs"]}

    # A CSV file (with a header row) loads into the box, and the preview follows it.
    csv = "x1,x2,label\n" + rows + "0.3, 0.1, 1\n"
    page.set_input_files(
        "#f-dataset-file",
        files=[{"name": "points.csv", "mimeType": "text/csv", "buffer": csv.encode()}],
    )
    expect(page.locator("#f-dataset-data")).to_have_value(csv)
    preview = page.locator("#dataset-preview svg.preview-svg circle")
    expect(preview).to_have_count(5)
    page.click("#create-run")
    page.wait_for_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    run = api.get(f"/api/runs/{match.group(1)}").json()
    assert run["name"] == "my own points"
    assert run["config"]["dataset"]["kind"] == "custom" and run["layer_sizes"][0] == 2
    data_back = api.get(f"/api/runs/{match.group(1)}/data").json()
    assert len(data_back["train"]["x"]) + len(data_back["test"]["x"]) == 5
