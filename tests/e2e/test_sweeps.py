"""A sweep from the new-run form, watched live on its page, in a real browser."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

SWEEP_URL = re.compile(r"/sweeps/([0-9a-f]+)$")


def test_sweep_from_the_form_trains_live_and_marks_the_best(
    page: Page, api: httpx.Client, clean_runs: None
) -> None:
    page.goto("/runs")
    page.click("#preset-xor")
    expect(page.locator("#f-dataset-kind")).to_have_value("xor")
    page.fill("#f-epochs", "300")
    page.click("#sweep-fields summary")
    page.select_option("#f-sweep-field1", "learning_rate")
    page.fill("#f-sweep-values1", "0.05, 0.5")
    page.select_option("#f-sweep-field2", "seed")
    page.fill("#f-sweep-values2", "1, 2")
    page.click("#create-sweep")
    page.wait_for_url(SWEEP_URL)
    match = SWEEP_URL.search(page.url)
    assert match is not None
    sweep_id = match.group(1)
    try:
        rows = page.locator("#sweep-table tbody tr")
        expect(rows).to_have_count(4)
        # live: the table polls until every run has completed
        expect(page.locator("#sweep-table .status-completed")).to_have_count(4)
        expect(page.locator("#sweep-table tr.best")).to_have_count(1)
        expect(page.locator("#compare-legend li")).to_have_count(4)
        sweep = api.get(f"/api/sweeps/{sweep_id}").json()
        best = min(sweep["runs"], key=lambda r: r["test_loss"])
        expect(page.locator("#sweep-table tr.best")).to_have_attribute("data-run-id", best["id"])
        # sort by test loss: the best run comes first
        page.click("#sweep-table th >> text=Test loss")
        expect(rows.first).to_have_attribute("data-run-id", best["id"])
        # the sweep is listed on /runs
        page.goto("/runs")
        expect(page.locator(f'#sweeps-list a[href="/sweeps/{sweep_id}"]')).to_be_visible()
    finally:
        api.delete(f"/api/sweeps/{sweep_id}")
