"""The live view's Download menu and the runs list's Import button, as a person uses them."""

from __future__ import annotations

import io
import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import MakeRun, screenshot_path

pytestmark = pytest.mark.e2e


def test_download_then_import_makes_the_same_run(
    page: Page, api: httpx.Client, make_run: MakeRun, tmp_path: Path
) -> None:
    run = make_run(
        name="export me", start=False, dataset={"kind": "xor", "n_samples": 80}, hidden_layers=[3]
    )
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 5}).status_code == 200
    page.goto(f"/runs/{run['id']}")
    page.click("#download-menu summary")
    for link in ("#download-npz", "#download-metrics", "#download-data"):
        expect(page.locator(link)).to_be_visible()
    page.screenshot(path=str(screenshot_path("download_menu_open")))
    with page.expect_download() as info:
        page.click("#download-npz")
    download = info.value
    expect(page.locator("#download-menu[open]")).to_have_count(0)  # choosing closes it
    page.click("#download-menu summary")
    expect(page.locator("#download-npz")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#download-npz")).to_be_hidden()
    assert download.suggested_filename == "export me-epoch5.npz"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with np.load(io.BytesIO(saved.read_bytes()), allow_pickle=False) as npz:
        assert npz["layer_sizes"].tolist() == [2, 3, 1]

    page.goto("/runs")
    page.set_input_files("#import-file", str(saved))
    page.wait_for_url(re.compile(r"/runs/(?!" + run["id"] + r")[0-9a-f]+$"))
    new_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#run-summary")).to_contain_text("export me (imported)")
    old = api.get(f"/api/runs/{run['id']}/weights").json()["layers"]
    assert api.get(f"/api/runs/{new_id}/weights").json()["layers"] == old
