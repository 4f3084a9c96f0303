# ruff: noqa: RUF001 -- the page writes real math typography
"""The backprop inspector in a browser: gradient check with verdicts, clicking a weight
for its chain rule, and "Apply this step" moving the numbers (or saying why not)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.browser import PACED_RUN, MakeRun

pytestmark = pytest.mark.e2e

RUN = {
    "dataset": {"kind": "xor", "n_samples": 60},
    "hidden_layers": [3],
    "activation": "tanh",
    "batch_size": 10,
    "learning_rate": 0.5,
    "start": False,
}


def test_check_chain_rule_and_apply(page: Page, api: httpx.Client, make_run: MakeRun) -> None:
    run = make_run(name="inspect e2e", **RUN)
    page.goto(f"/runs/{run['id']}/inspect?batch=1")

    # the gradient check is on screen, with a verdict in words on every row
    check = page.locator("#check-1")
    expect(check).to_be_visible()
    expect(check.locator(".check-row")).to_have_count(6)  # a 3x2 layer: all of it
    verdicts = check.locator(".verdict").all_inner_texts()
    assert verdicts and set(verdicts) == {"agrees"}
    expect(page.locator("#inspect-scale")).to_contain_text("one step per decade")

    # clicking a cell of ∂E/∂W² shows that weight's chain rule
    page.locator('#inspect-nabla-w2 rect[data-row="0"][data-col="2"]').click()
    chain = page.locator("#inspect-chain")
    expect(chain.locator(".chain-title")).to_contain_text("w⁽²⁾₀₂")
    expect(chain.locator("#chain-rule")).to_contain_text("∂E/∂z⁽²⁾₀")
    expect(chain.locator("#chain-batch")).to_contain_text("n = 10 samples")
    # ... and a check row's link does the same for a hidden weight
    check.locator(".chain-link").first.click()
    expect(chain.locator(".chain-title")).to_contain_text("w⁽¹⁾")
    expect(chain.locator(".chain-factors")).to_contain_text("tanh′(z)")

    # "Apply this step" on the stopped run: the loss shown moves, the weights are the step
    loss = page.locator("#inspect-loss")
    before = loss.get_attribute("title")
    shown = api.get(f"/api/runs/{run['id']}/inspect", params={"batch": 1}).json()
    page.locator("#inspect-apply").click()
    expect(page.locator("#inspect-apply-msg")).to_contain_text("Applied one plain-SGD step")
    expect(loss).not_to_have_attribute("title", before or "")
    assert float(loss.get_attribute("title") or "nan") < float(before or "nan")
    layers = api.get(f"/api/runs/{run['id']}/weights").json()["layers"]
    assert [layer["weights"] for layer in layers] == [
        layer["weights_after"] for layer in shown["layers"]
    ]


def test_apply_on_a_running_run_says_to_stop_it(
    page: Page, api: httpx.Client, make_run: MakeRun
) -> None:
    run = make_run(name="inspect running", **PACED_RUN)
    page.goto(f"/runs/{run['id']}/inspect")
    page.locator("#inspect-apply").click()
    message = page.locator("#inspect-apply-msg")
    expect(message).to_contain_text(re.compile(r"Not applied: stop the run"))
    api.post(f"/api/runs/{run['id']}/stop")
