"""The classroom in a browser, on a server with a token: a student opens the watch link in a
fresh context (no cookie) and sees the run learn without any control; the teacher's share
dialog shows the link and its QR code."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from app.config import Settings
from app.main import create_app
from app.security import SESSION_COOKIE, session_value
from tests.e2e.browser import PageProblems, screenshot_path
from tests.e2e.conftest import VIEWPORT
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

TOKEN = "a classroom token"
RUN: dict[str, Any] = {
    "name": "xor for the class",
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 100},
    "hidden_layers": [4],
    "epochs": 100_000,
    "max_epochs_per_second": 20,
}
POSITIVE = re.compile(r"^[1-9]\d*$")
OpenPage = Callable[..., Page]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A second server, with a token (the shared e2e server has none)."""
    db = tmp_path_factory.mktemp("e2e-watch") / "watch.db"
    settings = Settings.from_env(
        {}, db=db, token=TOKEN, checkpoint_interval=0.5, sse_ping_interval=1.0
    )
    with LiveServer(create_app(settings)) as live:
        yield live


@pytest.fixture
def teacher_api(secured: LiveServer) -> Iterator[httpx.Client]:
    with secured.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client
        for run in client.get("/api/runs").json()["runs"]:
            client.delete(f"/api/runs/{run['id']}")


@pytest.fixture
def open_page(
    browser: Browser, secured: LiveServer, request: pytest.FixtureRequest
) -> Iterator[OpenPage]:
    """``open_page(signed_in=False, **context options)``: a page in a new context (no
    cookie unless signed in); console errors fail the test; screenshots at the end."""
    opened: list[tuple[Any, PageProblems, Page]] = []

    def open_one(signed_in: bool = False, **options: Any) -> Page:
        options.setdefault("viewport", VIEWPORT)
        context = browser.new_context(base_url=secured.url, **options)
        if signed_in:
            cookie = {"name": SESSION_COOKIE, "value": session_value(TOKEN), "url": secured.url}
            context.add_cookies([cookie])
        problems = PageProblems()
        context.on("page", problems.watch)
        page = context.new_page()
        opened.append((context, problems, page))
        return page

    yield open_one
    for i, (_, _, page) in enumerate(opened):
        if not page.is_closed():
            page.screenshot(path=screenshot_path(f"{request.node.name}-{i}"), full_page=True)
    errors = [e for _, problems, _ in opened for e in problems.errors]
    for context, _, _ in opened:
        context.close()
    assert not errors, "browser errors:\n" + "\n".join(errors)


def font_size(page: Page, selector: str) -> float:
    # Found and measured in one script: a live frame may replace the element between a
    # locator's lookup and its evaluation (a detached element has no computed size).
    script = "s => parseFloat(getComputedStyle(document.querySelector(s)).fontSize)"
    return float(page.evaluate(script, selector))


def test_a_student_watches_without_controls(teacher_api: httpx.Client, open_page: OpenPage) -> None:
    run = teacher_api.post("/api/runs", json=RUN).json()
    url = teacher_api.get(f"/api/runs/{run['id']}/viewer-key").json()["url"]
    student = open_page()
    # Without the key the page asks to sign in; with it, it opens.
    student.goto(f"/watch/{run['id']}")
    expect(student).to_have_url(re.compile(r"/login\?next="))
    student.goto(url)
    expect(student.locator("#run-name")).to_have_text("xor for the class")
    expect(student.locator("#epoch")).to_have_attribute("data-epoch", "0")
    # It updates live: the teacher starts the run and the student's epoch moves.
    assert teacher_api.post(f"/api/runs/{run['id']}/start").status_code == 200
    expect(student.locator("#epoch")).to_have_attribute("data-epoch", POSITIVE)
    expect(student.locator("#status")).to_have_attribute("data-status", "running")
    first = int(student.locator("#epoch").get_attribute("data-epoch") or "0")
    expect(student.locator("#epoch")).not_to_have_attribute("data-epoch", str(first))
    # The stream carried the controls and settings fragments: none entered the page.
    for control in ("#start-stop", "#step", "#reset", "#delete", "#duplicate", "#share"):
        assert student.locator(control).count() == 0, control
    expect(student.locator("#controls")).to_be_empty()
    expect(student.locator("#live-settings")).to_be_empty()
    assert student.locator("#predict-form").count() == 0
    assert student.locator("#network .net-btn").count() > 0  # drawn by the shared fragment...
    for button in student.locator("#network .net-btn").all():
        expect(button).to_be_hidden()  # ...and hidden on the watch page
    assert student.locator("nav.nav").count() == 0


def test_the_projector_toggle_enlarges_the_type_and_is_remembered(
    teacher_api: httpx.Client, open_page: OpenPage
) -> None:
    run = teacher_api.post("/api/runs", json=RUN).json()
    url = teacher_api.get(f"/api/runs/{run['id']}/viewer-key").json()["url"]
    student = open_page()
    student.goto(url)
    toggle = student.locator("#projector-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "false")
    normal = font_size(student, "#epoch"), font_size(student, "#h-loss")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    large = font_size(student, "#epoch"), font_size(student, "#h-loss")
    assert large[0] >= 1.4 * normal[0] and large[1] >= 1.4 * normal[1], (normal, large)
    student.reload()
    expect(student.locator("html")).to_have_class(re.compile(r"\bprojector\b"))
    expect(student.locator("#projector-toggle")).to_have_attribute("aria-pressed", "true")
    student.locator("#projector-toggle").click()
    expect(student.locator("html")).not_to_have_class(re.compile(r"\bprojector\b"))


def test_the_share_dialog_shows_the_link_and_a_qr_code(
    teacher_api: httpx.Client, secured: LiveServer, open_page: OpenPage
) -> None:
    run = teacher_api.post("/api/runs", json=RUN).json()
    url = teacher_api.get(f"/api/runs/{run['id']}/viewer-key").json()["url"]
    teacher = open_page(signed_in=True)
    teacher.goto(f"/runs/{run['id']}")
    teacher.locator("#share").click()
    dialog = teacher.locator("#share-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("svg.qr path.qr-dark")).to_be_visible()
    box = dialog.locator("svg.qr").bounding_box()
    assert box is not None and box["width"] >= 150  # big enough to scan from a phone
    expect(dialog.locator("#share-url")).to_have_value(secured.url + url)
    dialog.locator("#share-copy").click()
    expect(dialog.locator("#share-copied")).to_have_text(re.compile(r"Copied|Selected"))
    teacher.screenshot(path=screenshot_path("share-dialog"))
    dialog.locator("#share-close").click()
    expect(dialog).to_be_hidden()
    # The link the dialog shows opens the watch page for someone without the token.
    student = open_page()
    student.goto(dialog.locator("#share-url").input_value())
    expect(student.locator("#epoch")).to_have_attribute("data-epoch", "0")


def test_the_watch_page_on_a_phone(teacher_api: httpx.Client, open_page: OpenPage) -> None:
    """At 390 px, in both modes: nothing scrolls sideways and no text is under 10 px."""
    from tests.e2e.test_phone import MIN_TEXT_PX, PHONE, SMALL_TEXT, scroll_width

    run = teacher_api.post("/api/runs", json=RUN).json()
    url = teacher_api.get(f"/api/runs/{run['id']}/viewer-key").json()["url"]
    # With epochs: the charts' "no epochs yet" placeholder is under 10 px on phones on the
    # live view too (app/ui/charts.py), which is not the watch page's to change.
    assert teacher_api.post(f"/api/runs/{run['id']}/step", json={"epochs": 3}).status_code == 200
    student = open_page(viewport=PHONE)
    student.goto(url)
    expect(student.locator("#epoch")).to_have_attribute("data-epoch", "3")
    for _ in range(2):
        assert scroll_width(student) <= PHONE["width"]
        assert student.evaluate(SMALL_TEXT, MIN_TEXT_PX) == []
        student.locator("#projector-toggle").click()
