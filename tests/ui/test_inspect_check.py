# ruff: noqa: RUF001 -- the page writes real math typography
"""The inspector's view math (colour scale, verdicts, one weight's chain rule) and the
page's gradient check, ΔW, "Apply this step" and chain-rule fragment."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.ui import render
from app.ui.inspect_chain import chain_rule, verdict
from app.ui.inspect_tables import MagnitudeScale, matrix, vector

HX = {"HX-Request": "true"}


def test_magnitude_scale_shows_orders_of_magnitude_not_each_tables_max() -> None:
    scale = MagnitudeScale(ref=1.0, decades=4)
    assert scale.colour(1.0) == render.diverging_hex(1.0, 1.0)  # full blue
    assert scale.colour(-3.0) == render.diverging_hex(-1.0, 1.0)  # above ref: full orange
    assert scale.colour(1e-2) == render.diverging_hex(0.5, 1.0)  # two decades down: half
    assert scale.colour(-1e-3) == render.diverging_hex(-0.25, 1.0)
    assert scale.colour(1e-7) == render.diverging_hex(0.0, 1.0)  # below 1e-4: neutral
    assert scale.colour(0.0) == scale.colour(float("nan")) == render.diverging_hex(0.0, 1.0)
    # a table of 1e-7s is not as saturated as a table of 1s (it used to be: own max)
    tiny = matrix("g", [[1e-7, -2e-7]], (1, 2), scale=scale)
    ones = matrix("W", [[1.0, -2.0]], (1, 2), scale=scale)
    assert {c.fill for c in tiny.cells} == {render.diverging_hex(0.0, 1.0)}
    assert [c.fill for c in ones.cells] == [
        render.diverging_hex(1.0, 1.0),
        render.diverging_hex(-1.0, 1.0),
    ]
    assert not any(c.dark for c in tiny.cells) and all(c.dark for c in ones.cells)
    v = vector("d", [1e-2, 1e-7], scale=scale)
    assert [c.bg for c in v.lines[0] + v.lines[1]] == [scale.colour(1e-2), scale.colour(1e-7)]
    # a big matrix's image goes through the same scale
    assert matrix("W", np.full((20, 20), 1e-7).tolist(), (20, 20), scale=scale).uri


@pytest.mark.parametrize(
    ("top", "ref"),
    [(0.83, 1.0), (1.04, 1.0), (3.0, 1.0), (4.0, 10.0), (0.004, 0.01), (0.0, 1.0)],
)
def test_the_reference_is_the_largest_weight_rounded_to_a_power_of_ten(
    top: float, ref: float
) -> None:
    scale = MagnitudeScale.for_weights([[[0.0, -top]], [[top / 2]]])
    assert scale.ref == pytest.approx(ref)
    labels = [label for label, _, _ in scale.legend()]
    assert len(labels) == scale.decades + 1
    assert labels[-1] == ("1" if ref == 1 else f"1e{round(math.log10(ref))}")


def test_verdicts() -> None:
    assert verdict(0.5, 0.5 + 1e-9, 2e-9, 1.0) == "agrees"
    assert verdict(0.5, 0.50001, 2e-5, 1.0) == "close"
    assert verdict(0.5, 0.6, 0.17, 1.0) == "disagrees"
    assert verdict(1e-12, 3e-12, 0.67, 1.0) == "too small to tell"
    assert verdict(1e-12, 3e-12, 0.67, 1e-6) == "disagrees"  # not small next to E
    assert verdict(None, 1.0, None, 1.0) == "not finite"


# ---------------------------------------------------------------- the chain rule

HEADS = [
    ("sigmoid", "cross_entropy", {"kind": "xor"}),
    ("softmax", "cross_entropy", {"kind": "gauss", "n_classes": 3}),
    ("linear", "mse", {"kind": "teacher", "teacher_layers": [2, 3, 2]}),
    ("sigmoid", "mse", {"kind": "xor"}),
    ("softmax", "mse", {"kind": "gauss", "n_classes": 3}),
]


def _f(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(f(z), f'(z)) written here; softmax's f' is unused (its Jacobian is applied below)."""
    if name == "sigmoid":
        a = 1 / (1 + np.exp(-z))
        return a, a * (1 - a)
    if name == "tanh":
        return np.tanh(z), 1 - np.tanh(z) ** 2
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(float)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True), np.ones_like(z)
    return z, np.ones_like(z)


def _sample_contributions(client: TestClient, run_id: str, body: dict[str, Any]) -> list[Any]:
    """Each layer's per-sample term δ_s a_prev_sᵀ (with the 1/n) for sample s of the batch."""
    layers = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    config = client.get(f"/api/runs/{run_id}").json()["config"]
    ws = [np.array(layer["weights"]) for layer in layers]
    bs = [np.array(layer["biases"]) for layer in layers]
    x, y = np.array(body["inputs"]), np.array(body["targets"])
    n, k = x.shape[0], y.shape[1]
    acts, primes, a = [x], [], x
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        name = config["output_activation"] if i == len(ws) - 1 else config["activation"]
        a, df = _f(name, a @ w.T + b)
        acts.append(a)
        primes.append(df)
    if config["loss"] == "cross_entropy":
        delta = (a - y) / n
    else:
        de_da = 2 * (a - y) / (n * k)
        if config["output_activation"] == "softmax":
            delta = a * (de_da - np.sum(de_da * a, axis=1, keepdims=True))
        else:
            delta = de_da * primes[-1]
    deltas = [delta]
    for i in range(len(ws) - 2, -1, -1):
        deltas.insert(0, (deltas[0] @ ws[i + 1]) * primes[i])
    s = body["sample"]["index"]
    return [np.outer(d[s], act[s]) for d, act in zip(deltas, acts[:-1], strict=True)]


@pytest.mark.parametrize(("out", "loss", "dataset"), HEADS)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_the_written_chain_rule_multiplies_out_to_the_samples_term(
    client: TestClient, activation: str, out: str, loss: str, dataset: dict[str, Any]
) -> None:
    config = {
        "start": False,
        "dataset": dataset | {"n_samples": 30},
        "hidden_layers": [4, 3],
        "activation": activation,
        "output_activation": out,
        "loss": loss,
        "batch_size": 6,
        "dtype": "float64",
    }
    run_id = client.post("/api/runs", json=config).json()["id"]
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 1, "sample": 4}).json()
    want = _sample_contributions(client, run_id, body)
    for layer, term in enumerate(want, start=1):
        nabla = np.array(body["layers"][layer - 1]["nabla_w"])
        for (row, col), value in np.ndenumerate(term):
            rule = chain_rule(body, layer, row, col)
            product = math.prod(f.value for f in rule.factors)
            assert product == pytest.approx(value, rel=1e-9, abs=1e-15)
            assert rule.contribution == pytest.approx(value, rel=1e-9, abs=1e-15)
            assert rule.batch_value == nabla[row, col] and rule.n == 6 and rule.sample == 4
            assert rule.fused == (loss == "cross_entropy" and layer == len(want))
            assert rule.product_text.count("(") == len(rule.factors)
            assert rule.weight.startswith(f"w⁽{'¹²³'[layer - 1]}⁾")


def test_a_featured_runs_first_layer_multiplies_the_features(client: TestClient) -> None:
    config = {
        "start": False,
        "dataset": {"kind": "circle", "n_samples": 30},
        "features": ["x1_sq", "x2_sq", "x1_x2"],
        "hidden_layers": [2],
        "batch_size": 6,
        "dtype": "float64",
    }
    run_id = client.post("/api/runs", json=config).json()["id"]
    body = client.get(f"/api/runs/{run_id}/inspect", params={"sample": 2}).json()
    feats = body["sample"]["features"]
    rule = chain_rule(body, 1, 1, 2)
    assert rule.factors[-1].value == feats[2]
    delta = body["sample"]["layers"][0]["delta"][1]
    assert rule.contribution == pytest.approx(delta * feats[2], rel=1e-9)
    with pytest.raises(ValueError, match="row and col"):
        chain_rule(body, 1, 2, 0)


# ---------------------------------------------------------------- the page

TINY: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 30},
    "hidden_layers": [3],
    "activation": "tanh",
    "batch_size": 4,
    "dtype": "float64",
    "learning_rate": 0.5,
}


def test_page_shows_the_check_with_verdicts_delta_w_the_chain_rule_and_the_legend(
    client: TestClient,
) -> None:
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    html = client.get(f"/runs/{run_id}/inspect").text
    for layer in (1, 2):
        table = html[html.index(f'id="check-{layer}"') :]
        table = table[: table.index("</table>")]
        assert table.count("check-row") == min(8, 3 * (2 if layer == 1 else 1))
        assert re.findall(r'class="verdict">([^<]+)<', table)
        assert set(re.findall(r'class="verdict">([^<]+)<', table)) == {"agrees"}
        assert f'id="inspect-update-w{layer}"' in html and f'id="inspect-w-after{layer}"' in html
    assert "ΔW⁽ˡ⁾ = −α ∂E/∂W⁽ˡ⁾" in html
    assert 'id="inspect-scale"' in html and "one step per decade" in html
    assert 'id="inspect-chain"' in html and 'id="chain-rule"' in html
    assert 'id="inspect-apply"' in html and "Apply this step" in html
    assert 'data-layer="1" data-rows="3" data-cols="2"' in html  # ∂E/∂W cells are clickable
    assert 'src="/static/inspect.js"' in html
    assert client.get("/static/inspect.js").status_code == 200


def test_chain_fragment_shows_the_clicked_weight(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    url = f"/ui/runs/{run_id}/inspect/chain"
    html = client.get(
        url, params={"batch": 1, "sample": 2, "layer": 2, "row": 0, "col": 1}, headers=HX
    ).text
    assert 'The chain rule for <span class="sym">w⁽²⁾₀₁</span>' in html
    assert "sample 2 of batch 1" in html
    assert "∂E/∂z⁽²⁾₀" in html  # sigmoid + cross-entropy: the fused output form
    html = client.get(url, params={"layer": 1, "row": 2, "col": 1}, headers=HX).text
    assert "w⁽¹⁾₂₁" in html and "Σₖ W⁽²⁾ₖ₂ δ⁽²⁾ₖ" in html and "tanh′(z)" in html
    html = client.get(url, params={"layer": 1, "row": 9, "col": 0}, headers=HX).text
    assert "That weight is not on this page." in html
    assert client.get("/ui/runs/nope/inspect/chain", headers=HX).status_code == 404


def _loss_shown(html: str) -> str:
    return re.search(r'id="inspect-loss" title="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def test_apply_takes_the_step_and_shows_the_new_numbers(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=TINY).json()["id"]
    before = client.get(f"/runs/{run_id}/inspect?batch=2").text
    shown = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 2}).json()
    html = client.post(
        f"/ui/runs/{run_id}/inspect/apply", data={"batch": "2", "sample": "1"}, headers=HX
    ).text
    assert 'id="inspect-apply-msg"' in html and "Applied one plain-SGD step on batch 2" in html
    assert _loss_shown(html) != _loss_shown(before)
    assert float(_loss_shown(html)) < float(_loss_shown(before))
    weights = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    assert [layer["weights"] for layer in weights] == [
        layer["weights_after"] for layer in shown["layers"]
    ]


def test_apply_on_a_running_run_says_why_not(client: TestClient) -> None:
    run_id = client.post(
        "/api/runs", json=TINY | {"start": True, "epochs": 100000, "max_epochs_per_second": 1}
    ).json()["id"]
    html = client.post(f"/ui/runs/{run_id}/inspect/apply", data={"batch": "0"}, headers=HX).text
    assert "Not applied: stop the run before applying a step" in html
    assert "msg-error apply-msg" in html
    client.post(f"/api/runs/{run_id}/stop")


def test_weights_only_run_says_its_update_differs(client: TestClient) -> None:
    run_id = client.post(
        "/api/runs",
        json=TINY
        | {"output_activation": "sigmoid", "loss": "mse", "error_propagation": "weights_only"},
    ).json()["id"]
    html = client.get(f"/runs/{run_id}/inspect").text
    assert 'id="inspect-weights-only"' in html and "differs" in html
