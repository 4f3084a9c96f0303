# ruff: noqa: RUF001 -- the page writes real math typography (sigma, minus, prime, times)
"""The backprop inspector page (/runs/{id}/inspect) and its htmx fragment."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from app.ui import inspect

HX = {"HX-Request": "true"}
EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"

TINY: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 30},
    "hidden_layers": [3],
    "activation": "sigmoid",
    "output_activation": "sigmoid",
    "loss": "mse",
    "batch_size": 4,
    "dtype": "float64",
}


def _create(client: TestClient, **changes: Any) -> str:
    response = client.post("/api/runs", json=TINY | changes)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _cell_values(html: str, element_id: str) -> list[float]:
    """The exact values (from the cells' titles) of the vector figure ``element_id``."""
    start = html.index(f'id="{element_id}"')
    block = html[start : html.index("</figure>", start)]
    return [float(v) for v in re.findall(r'title="[^"]*\] = ([^"]+)"', block)]


def test_page_shows_each_stage_with_the_runs_own_equations_and_numbers(
    client: TestClient,
) -> None:
    run_id = _create(client)
    response = client.get(f"/runs/{run_id}/inspect", params={"batch": 1, "sample": 2})
    assert response.status_code == 200
    html = response.text
    for stage in ("stage-forward", "stage-output", "stage-backward", "stage-gradients"):
        assert f'id="{stage}"' in html
    assert 'id="stage-update"' in html
    # the article's equations, with this run's sigmoid and mse written in
    assert "z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾" in html
    assert "a⁽¹⁾ = σ(z⁽¹⁾)" in html
    assert "E = (1/(n·k)) Σ (ŷ − y)²" in html
    assert "δ⁽ᴸ⁾ = ∂E/∂a⁽ᴸ⁾ ⊙ σ′(z⁽ᴸ⁾)" in html
    assert "δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀ δ⁽ˡ⁺¹⁾) ⊙ f′(z⁽ˡ⁾)" in html
    assert "σ′(z) = a ⊙ (1 − a)" in html
    assert "∂E/∂W⁽ˡ⁾ = δ⁽ˡ⁾ a⁽ˡ⁻¹⁾ᵀ" in html
    assert "W⁽ˡ⁾ ← W⁽ˡ⁾ − α ∂E/∂W⁽ˡ⁾" in html
    # ... next to the numbers of the same step as the API's
    step = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 1, "sample": 2}).json()
    sample = step["sample"]
    np.testing.assert_allclose(_cell_values(html, "inspect-x"), sample["x"])
    np.testing.assert_allclose(_cell_values(html, "inspect-z1"), sample["layers"][0]["z"])
    np.testing.assert_allclose(_cell_values(html, "inspect-delta2"), sample["layers"][1]["delta"])
    np.testing.assert_allclose(_cell_values(html, "inspect-nabla-b1"), step["layers"][0]["nabla_b"])
    # a small matrix is an SVG heatmap whose cells carry their values in <title>
    w = np.array(step["layers"][0]["weights"])
    assert f"<title>W⁽¹⁾[2,1] = {float(w[2, 1])!r}</title>" in html
    assert 'id="inspect-batch"' in html and 'value="1"' in html
    assert f'href="/runs/{run_id}"' in html  # back to the live view


def test_picker_fragment_swaps_in_another_batch_and_sample(client: TestClient) -> None:
    run_id = _create(client)
    page = client.get(f"/runs/{run_id}/inspect").text
    assert f'hx-get="/ui/runs/{run_id}/inspect"' in page
    assert 'hx-target="#inspect-content"' in page
    fragment = client.get(
        f"/ui/runs/{run_id}/inspect", params={"batch": 5, "sample": 3}, headers=HX
    )
    assert fragment.status_code == 200
    html = fragment.text
    assert "<html" not in html and 'id="inspect-form"' in html
    assert re.search(r'id="inspect-batch"[^>]*value="5"', html)
    assert re.search(r'id="inspect-sample"[^>]*value="3"', html)
    assert "training row 23" in html  # batch 5 of size 4, row 3
    assert 'id="inspect-batch-next"' in html and "disabled" in html  # the last batch
    step = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 5, "sample": 3}).json()
    np.testing.assert_allclose(_cell_values(html, "inspect-x"), step["sample"]["x"])


def test_sample_past_a_short_last_batch_falls_back_with_a_note(client: TestClient) -> None:
    run_id = _create(client, batch_size=5)  # 24 rows: the last batch has 4
    html = client.get(f"/ui/runs/{run_id}/inspect?batch=4&sample=4", headers=HX).text
    assert 'id="inspect-note"' in html
    assert re.search(r'id="inspect-sample"[^>]*value="0"', html)


def test_cross_entropy_momentum_and_wide_layers(client: TestClient) -> None:
    run_id = _create(
        client,
        dataset={"kind": "gauss", "n_classes": 3, "n_samples": 100},
        hidden_layers=[80],
        activation="relu",
        output_activation=None,
        loss=None,
        optimizer="momentum",
        batch_size=None,
    )
    html = client.get(f"/runs/{run_id}/inspect").text
    assert "E = −(1/n) Σ y · log ŷ" in html
    assert "δ⁽ᴸ⁾ = (ŷ − y) / n" in html  # the fused softmax + cross-entropy form
    assert "ReLU′(z) = 1 where z &gt; 0, else 0" in html
    assert 'id="inspect-optimizer"' in html and "momentum" in html
    assert 'id="inspect-truncated"' in html
    assert "first 64 of 80" in html
    assert "data:image/png;base64," in html  # 80x2 (cut to 64x2) is drawn as an image
    assert len(html) < 600_000


def test_run_name_is_escaped(client: TestClient) -> None:
    run_id = _create(client, name=EVIL)
    html = client.get(f"/runs/{run_id}/inspect").text
    assert EVIL not in html
    assert ESCAPED in html
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html)


def test_unknown_run_is_a_404_page(client: TestClient) -> None:
    assert client.get("/runs/nope/inspect").status_code == 404
    assert client.get("/ui/runs/nope/inspect", headers=HX).status_code == 404


def test_live_view_links_to_the_inspector(client: TestClient) -> None:
    run_id = _create(client)
    html = client.get(f"/runs/{run_id}").text
    assert re.search(rf'id="inspect-link"[^>]*href="/runs/{run_id}/inspect"', html)


def test_view_helpers_cut_long_vectors_into_columns_and_big_matrices_into_images() -> None:
    v = inspect.vector("a", list(range(40)), 100)
    assert [len(line) for line in v.lines] == [3] * 8 + [2] * 8  # columns of 16
    assert v.shown == 40 and v.n == 100
    small = inspect.matrix("W", [[1.0, -1.0], [0.0, None]], (2, 2))
    assert len(small.cells) == 4 and small.cells[1].fill == "#f59322" and not small.uri
    big = inspect.matrix("W", np.ones((20, 30)).tolist(), (20, 300))
    assert big.uri.startswith("data:image/png;base64,") and not big.cells
    assert big.truncated and big.shape == "20×300" and big.shown == "20×30"
