"""Every page at a phone's 390 px: nothing scrolls sideways and no text is under 10 px.

Rendered size is what the eye gets: an HTML text's computed font size, and for SVG text
its font size times the SVG's on-screen scale (getScreenCTM), since a viewBox drawn
narrower than its width shrinks its labels with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.browser import PageProblems, screenshot_path
from tests.support import LiveServer

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
MIN_TEXT_PX = 10.0

# Every visible text node: (rendered px, element tag and class, the text).
SMALL_TEXT = """(minPx) => {
  const small = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const el = node.parentElement;
    const skip = "script, style, title, desc, option, datalist, [hidden]";
    if (!text || !el || el.closest(skip)) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width <= 1 || rect.height <= 1) continue;  // not rendered, or visually hidden
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.display === "none" || +style.opacity === 0) continue;
    let px = parseFloat(style.fontSize);
    if (el instanceof SVGElement) {
      const ctm = el.getScreenCTM();
      if (!ctm) continue;
      px *= Math.hypot(ctm.b, ctm.d);  // vertical scale of the SVG on screen
    }
    if (px < minPx - 0.01) {
      const cls = el.getAttribute("class") || "";
      const owner = el.closest("[id]");
      const where = `<${el.tagName.toLowerCase()} class="${cls}"> in #${owner ? owner.id : "?"}`;
      small.push(`${px.toFixed(1)}px ${where}: ${text.slice(0, 30)}`);
    }
  }
  return small;
}"""


def scroll_width(page: Page) -> int:
    return int(page.evaluate("() => document.documentElement.scrollWidth"))


def wide_elements(page: Page) -> list[str]:
    """Elements that stick out past the right edge (to say what overflows)."""
    return list(
        page.evaluate(
            """() => [...document.querySelectorAll("body *")]
              .filter(e => e.getBoundingClientRect().right > innerWidth + 1)
              .slice(0, 8)
              .map(e => e.tagName.toLowerCase() + "#" + e.id + "." + (e.getAttribute("class") || "")
                   + " right=" + Math.round(e.getBoundingClientRect().right))"""
        )
    )


@pytest.fixture
def phone(
    new_context: Callable[..., tuple[BrowserContext, PageProblems]], server: LiveServer
) -> Page:
    context, _ = new_context(
        base_url=server.url, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2
    )
    return context.new_page()


def deep_run(api: httpx.Client, make_run: Callable[..., dict[str, Any]]) -> str:
    run = make_run(
        name="ten hidden layers",
        hidden_layers=[6] * 10,
        start=False,
        dataset={"kind": "circle", "n_samples": 100},
    )
    assert api.post(f"/api/runs/{run['id']}/step", json={"epochs": 3}).status_code == 200
    return str(run["id"])


PAGES: dict[str, tuple[str, str]] = {
    # name: (path, with RUN for the 10-layer run's id; a selector that shows the page is drawn)
    "home": ("/", "#epoch"),
    "runs": ("/runs", "#runs-list"),
    "live": ("/runs/RUN", "#loss-chart svg"),
    "inspector": ("/runs/RUN/inspect", "main"),
    "compare": ("/compare?runs=RUN", "#compare-legend"),
    "descent": ("/descent", "#descent-svg"),
    "draw": ("/runs/RUN/draw", "svg.draw-plane"),
}


# The live view's charts (ui-live: loss, accuracy and gradient-norm axis labels at 6.9 px)
# and the network diagram (ui-diagram: layer labels 6.7 px, input names 8 px) are drawn
# under 10 px at 390 px wide; `/` opens on a live view. Strict: these fail loudly (XPASS)
# once the owners fix them, so the marks come off.
LIVE_VIEW_TEXT = pytest.mark.xfail(
    strict=True, reason="live-view chart and diagram SVG text under 10 px at 390 px"
)
CASES = list(PAGES)


@pytest.mark.parametrize("name", CASES)
def test_page_fits_a_phone_and_its_text_is_readable(
    phone: Page, api: httpx.Client, make_run: Callable[..., dict[str, Any]], name: str
) -> None:
    path, ready = PAGES[name]
    if "RUN" in path:
        path = path.replace("RUN", deep_run(api, make_run))
    phone.goto(path)
    expect(phone.locator(ready).first).to_be_attached()
    phone.screenshot(path=screenshot_path(f"test_phone_390_{name}"), full_page=True)
    problems = []
    width = scroll_width(phone)
    if width > PHONE["width"]:
        problems.append(f"scrolls sideways ({width} px): {wide_elements(phone)}")
    problems += phone.evaluate(SMALL_TEXT, MIN_TEXT_PX)
    assert not problems, f"{name} at {PHONE['width']} px:\n" + "\n".join(problems)
