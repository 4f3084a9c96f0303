"""Helpers of the browser tests: console-error collection, screenshot paths, and the
small run helpers several test files share."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import ConsoleMessage, Error, Page

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"


@dataclass
class PageProblems:
    """Console errors and uncaught exceptions seen by one browser context."""

    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def page_error(self, error: Error) -> None:
        self.errors.append(f"pageerror: {error}")

    def watch(self, page: Page) -> None:
        page.on("console", self.console)
        page.on("pageerror", self.page_error)


def screenshot_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / (re.sub(r"[^\w.-]+", "_", name) + ".png")


MakeRun = Callable[..., dict[str, Any]]
# Small and slow enough to stay running for a whole test without eating a core.
PACED_RUN: dict[str, Any] = {
    "dataset": {"kind": "xor", "n_samples": 100},
    "hidden_layers": [4],
    "epochs": 100_000,
    "max_epochs_per_second": 20,
}


def api_run(api: httpx.Client, run_id: str) -> dict[str, Any]:
    response = api.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def page_epoch(page: Page) -> int:
    return int(page.locator("#epoch").get_attribute("data-epoch") or "-1")
