"""Retake the README's screenshots: a server on a temporary database, runs made with
fixed seeds and stepped to a fixed epoch (so a retake shows the same numbers), and
Debian Chromium at 1280 px wide.

    .venv/bin/python docs/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_serving import server  # noqa: E402 -- after the path it lives on

LOOP_RUN = {
    "name": "spiral, with x₁x₂",
    "dataset": {"kind": "spiral", "noise": 0.02},
    "hidden_layers": [8, 8],
    "features": ["x1", "x2", "x1_x2"],
    "epochs": 3000,
    "start": False,
}
EARLY_RUN = {
    "name": "xor, early stopping",
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.5},
    "hidden_layers": [16],
    "learning_rate": 0.5,
    "epochs": 3000,
    "early_stopping": {"patience": 40, "min_delta": 0.001},
    "start": False,
}
DRAWN_RUN = {
    "name": "drawn by hand",
    "dataset": {"kind": "xor", "n_samples": 40, "noise": 0.05},
    "hidden_layers": [4],
    "start": False,
}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, server(Path(tmp) / "shots.db") as (url, _):
        api = httpx.Client(base_url=url, timeout=120)
        loop = api.post("/api/runs", json=LOOP_RUN).json()
        api.post(f"/api/runs/{loop['id']}/step", json={"epochs": 1200})
        drawn = api.post("/api/runs", json=DRAWN_RUN).json()
        early = api.post("/api/runs", json=EARLY_RUN).json()
        api.post(f"/api/runs/{early['id']}/step", json={"epochs": 3000})
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{url}/runs/{loop['id']}")
            page.wait_for_timeout(1500)
            bottom = "document.querySelector('.live-grid').getBoundingClientRect().bottom"
            page.screenshot(
                path=str(ROOT / "docs" / "screenshot-live.png"),
                full_page=True,
                clip={"x": 0, "y": 0, "width": 1280, "height": page.evaluate(bottom) + 16},
            )
            # Early stopping's best epoch marked on the loss chart of a run that stopped early.
            page.goto(f"{url}/runs/{early['id']}")
            page.wait_for_timeout(1200)
            card = page.locator(".loss-card").bounding_box()
            charts_end = page.locator("#loss-chart").bounding_box()
            assert card is not None and charts_end is not None
            bottom = charts_end["y"] + charts_end["height"] + 12 - card["y"]
            page.screenshot(
                path=str(ROOT / "docs" / "screenshot-early-stopping.png"),
                clip={**card, "height": bottom},
            )
            page.goto(f"{url}/runs/{drawn['id']}/draw")
            page.wait_for_timeout(800)
            page.screenshot(path=str(ROOT / "docs" / "screenshot-draw.png"))
            # The weight history at a kept epoch part-way through the run.
            page.goto(f"{url}/runs/{loop['id']}/history")
            page.wait_for_timeout(800)
            page.screenshot(path=str(ROOT / "docs" / "screenshot-history.png"), full_page=True)
            # The inspector's gradients: the gradient check and a weight's chain rule.
            page.goto(f"{url}/runs/{loop['id']}/inspect?batch=3&sample=2&layer=2&row=0&col=1")
            page.wait_for_timeout(1200)
            page.locator("#stage-gradients").screenshot(
                path=str(ROOT / "docs" / "screenshot-inspect.png")
            )
            browser.close()
    print("docs/screenshot-{live,early-stopping,draw,history,inspect}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
