"""Browser fixtures: one real server and one Debian chromium for the whole e2e session.

Every test gets a fresh browser context (1280x800) whose console errors and
page errors are collected; the test fails on any (a CSP violation arrives as
a console error). A screenshot of each test's last state is written to
``artifacts/e2e/<test-name>.png``. Runs are made through the JSON API and all
of them are deleted after each test, so tests stay independent while sharing
the server.

The pages run under a strict CSP, so nothing here uses ``wait_for_function``
(its polling is eval-based); waits go through Playwright's ``expect``, which
polls locators from the driver side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from app.config import Settings
from app.main import create_app
from tests.e2e.browser import PageProblems, screenshot_path
from tests.support import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}
# The machine is small and shared: give live updates time before calling a wait failed.
EXPECT_TIMEOUT_MS = 20_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        message = "Debian chromium not installed (apt-get install chromium)"
        if _in_ci():
            pytest.fail(f"CI must run the browser tests: {message}", pytrace=False)
        pytest.skip(message)
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One uvicorn server on a temporary database for every browser test."""
    db = tmp_path_factory.mktemp("e2e") / "e2e.db"
    settings = Settings.from_env({}, db=db, checkpoint_interval=0.5, sse_ping_interval=1.0)
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture(scope="session")
def api(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture
def clean_runs(api: httpx.Client) -> Iterator[None]:
    """Delete every run after the test (the page is closed first: it depends on this)."""
    yield
    for run in api.get("/api/runs").json()["runs"]:
        api.delete(f"/api/runs/{run['id']}")


@pytest.fixture
def make_run(api: httpx.Client, clean_runs: None) -> Callable[..., dict[str, Any]]:
    """``make_run(name=..., dataset={...}, ...)`` → the created Run (201 checked)."""

    def create(**body: Any) -> dict[str, Any]:
        response = api.post("/api/runs", json=body)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    return create


@pytest.fixture
def new_context(
    browser: Browser, clean_runs: None
) -> Iterator[Callable[..., tuple[BrowserContext, PageProblems]]]:
    """Open more browser contexts (other viewport, colour scheme), checked like ``page``."""
    opened: list[tuple[BrowserContext, PageProblems]] = []

    def open_context(**options: Any) -> tuple[BrowserContext, PageProblems]:
        options.setdefault("viewport", VIEWPORT)
        context = browser.new_context(**options)
        problems = PageProblems()
        context.on("page", problems.watch)
        opened.append((context, problems))
        return context, problems

    yield open_context
    errors = [e for _, problems in opened for e in problems.errors]
    for context, _ in opened:
        context.close()
    assert not errors, "browser errors:\n" + "\n".join(errors)


@pytest.fixture
def page(
    new_context: Callable[..., tuple[BrowserContext, PageProblems]],
    server: LiveServer,
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """A fresh 1280x800 page with ``base_url`` set to the server; screenshot at the end."""
    context, _ = new_context(base_url=server.url)
    page = context.new_page()
    yield page
    if not page.is_closed():
        page.screenshot(path=screenshot_path(request.node.name), full_page=True)
