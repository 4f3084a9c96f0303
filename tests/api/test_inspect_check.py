# ruff: noqa: RUF002 -- real math typography (minus sign, Greek letters)
"""The inspector's gradient check and "apply this step", against an oracle written here.

The oracle is plain NumPy from API.md's math conventions, fed only by /weights and
/data: its own forward pass and loss, its own central differences, its own backprop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "linear")
HEADS = {  # output activation + loss, and a dataset with that task
    "sigmoid+bce": ("sigmoid", "cross_entropy", {"kind": "xor"}),
    "softmax+ce": ("softmax", "cross_entropy", {"kind": "gauss", "n_classes": 3}),
    "linear+mse": ("linear", "mse", {"kind": "teacher", "teacher_layers": [2, 4, 2]}),
}
BATCH, SIZE = 1, 10  # the second batch of 10 rows


def _f(name: str, z: np.ndarray) -> np.ndarray:
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def _loss(net: dict[str, Any], ws: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    a = x
    for i, w in enumerate(ws):
        z = a @ w.T + (0.0 if net["bs"] is None else net["bs"][i])
        a = _f(net["out"] if i == len(ws) - 1 else net["act"], z)
    if net["loss"] == "mse":
        return float(np.mean((a - y) ** 2))
    if a.shape[1] == 1:
        return float(-np.mean(y * np.log(a) + (1 - y) * np.log(1 - a)))
    return float(-np.mean(np.sum(y * np.log(a), axis=1)))


def _oracle(client: TestClient, run_id: str, config: dict[str, Any]) -> dict[str, Any]:
    layers = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    train = client.get(f"/api/runs/{run_id}/data").json()["train"]
    rows = slice(BATCH * SIZE, (BATCH + 1) * SIZE)
    x = np.array(train["x"], dtype=np.float64)[rows]
    y = np.array(train["y"], dtype=np.float64)[rows]
    k = len(layers[-1]["weights"])
    if y.ndim == 1:  # labels -> dense targets
        y = y[:, None] if k == 1 else np.eye(k)[y.astype(int)]
    return {
        "ws": [np.array(layer["weights"], dtype=np.float64) for layer in layers],
        "bs": None
        if layers[0]["biases"] is None
        else [np.array(layer["biases"], dtype=np.float64) for layer in layers],
        "x": x,
        "y": y,
        "act": config["activation"],
        "out": config["output_activation"],
        "loss": config["loss"],
    }


def _central_difference(net: dict[str, Any], layer: int, row: int, col: int) -> float:
    ws = [w.copy() for w in net["ws"]]
    w = ws[layer][row, col]
    h = 1e-6 * max(1.0, abs(w))
    ws[layer][row, col] = w + h
    up = _loss(net, ws, net["x"], net["y"])
    ws[layer][row, col] = w - h
    down = _loss(net, ws, net["x"], net["y"])
    return (up - down) / (2 * h)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("activation", HIDDEN)
def test_gradient_check_is_backprop_against_central_differences(
    client: TestClient, activation: str, head: str, use_bias: bool
) -> None:
    out, loss, dataset = HEADS[head]
    config = {
        "start": False,
        "dataset": dataset | {"n_samples": 40, "test_fraction": 0.25, "seed": 3},
        "hidden_layers": [4, 3],
        "activation": activation,
        "output_activation": out,
        "loss": loss,
        "use_bias": use_bias,
        "batch_size": SIZE,
        "dtype": "float64",
    }
    response = client.post("/api/runs", json=config)
    assert response.status_code == 201, response.text
    run_id = response.json()["id"]
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": BATCH}).json()
    net = _oracle(client, run_id, config)
    checks = body["gradient_check"]
    assert [c["layer"] for c in checks] == sorted(c["layer"] for c in checks)
    for layer, w in enumerate(net["ws"], start=1):
        mine = [c for c in checks if c["layer"] == layer]
        assert len(mine) == min(8, w.size)
        assert len({(c["row"], c["col"]) for c in mine}) == len(mine)
        assert all(0 <= c["row"] < w.shape[0] and 0 <= c["col"] < w.shape[1] for c in mine)
        size = [abs(c["backprop"]) for c in mine]
        assert size == sorted(size, reverse=True)  # largest |∂E/∂W| first
        # ... and they are the largest of the layer (the route's own nabla_w, float64 here)
        others = np.abs(np.array(body["layers"][layer - 1]["nabla_w"]))
        for c in mine:
            others[c["row"], c["col"]] = 0.0
        assert others.max() <= size[-1] * (1 + 1e-9) + 1e-15
        for c in mine:
            fd = _central_difference(net, layer - 1, c["row"], c["col"])
            g, n = c["backprop"], c["numerical"]
            assert n == pytest.approx(fd, rel=1e-6, abs=1e-9)
            assert g == pytest.approx(fd, rel=1e-6, abs=1e-9)
            want = abs(g - n) / max(abs(g), abs(n), 1e-12)
            assert c["relative_error"] == pytest.approx(want, rel=1e-9, abs=1e-18)


def test_weights_only_run_checks_the_chain_rule_and_says_it(client: TestClient) -> None:
    config = {
        "start": False,
        "dataset": {"kind": "xor", "n_samples": 40, "test_fraction": 0.25},
        "hidden_layers": [3],
        "activation": "sigmoid",
        "output_activation": "sigmoid",
        "loss": "mse",
        "batch_size": SIZE,
        "dtype": "float64",
        "error_propagation": "weights_only",
    }
    run_id = client.post("/api/runs", json=config).json()["id"]
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": BATCH}).json()
    assert body["error_propagation"] == "weights_only"
    net = _oracle(client, run_id, config)
    for c in body["gradient_check"]:
        fd = _central_difference(net, c["layer"] - 1, c["row"], c["col"])
        assert c["backprop"] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_float32_run_is_checked_in_float64(client: TestClient) -> None:
    config = {
        "start": False,
        "dataset": {"kind": "circle", "n_samples": 40, "test_fraction": 0.25},
        "hidden_layers": [5],
        "batch_size": SIZE,
        "dtype": "float32",
        "activation": "tanh",
        "output_activation": "sigmoid",
        "loss": "cross_entropy",
    }
    run_id = client.post("/api/runs", json=config).json()["id"]
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": BATCH}).json()
    net = _oracle(client, run_id, config)  # the float32 weights, exactly, as float64
    assert all(c["relative_error"] < 1e-6 for c in body["gradient_check"])
    for c in body["gradient_check"]:
        fd = _central_difference(net, c["layer"] - 1, c["row"], c["col"])
        assert c["numerical"] == pytest.approx(fd, rel=1e-6, abs=1e-9)


# ---------------------------------------------------------------- apply this step

APPLY: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 40, "test_fraction": 0.25},
    "hidden_layers": [4],
    "activation": "tanh",
    "output_activation": "sigmoid",
    "loss": "cross_entropy",
    "batch_size": SIZE,
    "dtype": "float64",
    "learning_rate": 0.3,
    "l2": 0.01,
    "optimizer": "momentum",
}


def _sgd_step(net: dict[str, Any], lr: float, l2: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """tanh → sigmoid + BCE, backprop by hand: δ2 = (a2 − y)/n, δ1 = δ2 W2 ⊙ (1 − a1²)."""
    (w1, w2), (b1, b2), x, y = net["ws"], net["bs"], net["x"], net["y"]
    a1 = np.tanh(x @ w1.T + b1)
    a2 = 1 / (1 + np.exp(-(a1 @ w2.T + b2)))
    d2 = (a2 - y) / x.shape[0]
    d1 = (d2 @ w2) * (1 - a1**2)
    return [
        (w1 - lr * (d1.T @ x + l2 * w1), b1 - lr * d1.sum(0)),
        (w2 - lr * (d2.T @ a1 + l2 * w2), b2 - lr * d2.sum(0)),
    ]


def test_apply_takes_exactly_the_shown_step(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=APPLY).json()["id"]
    assert client.post(f"/api/runs/{run_id}/step", json={"epochs": 2}).status_code == 200
    before = client.get(f"/api/runs/{run_id}/inspect", params={"batch": BATCH}).json()
    want = _sgd_step(_oracle(client, run_id, APPLY), 0.3, 0.01)
    response = client.post(f"/api/runs/{run_id}/inspect/apply", json={"batch": BATCH})
    assert response.status_code == 200, response.text
    got = response.json()
    assert got["epoch"] == 2 and got == client.get(f"/api/runs/{run_id}/weights").json()
    for layer, shown, (w, b) in zip(got["layers"], before["layers"], want, strict=True):
        np.testing.assert_allclose(layer["weights"], w, rtol=0, atol=1e-14)
        np.testing.assert_allclose(layer["biases"], b, rtol=0, atol=1e-14)
        assert layer["weights"] == shown["weights_after"]  # the step shown, bit for bit
        assert layer["biases"] == shown["biases_after"]
        w_then = np.array(shown["weights"])
        np.testing.assert_array_equal(w_then + np.array(shown["update_w"]), layer["weights"])
    after = client.get(f"/api/runs/{run_id}/inspect", params={"batch": BATCH}).json()
    assert after["loss"] < before["loss"]  # a small step down the gradient
    assert client.get(f"/api/runs/{run_id}").json()["epoch"] == 2


def test_apply_on_a_float32_run_stays_float32(client: TestClient) -> None:
    run_id = client.post("/api/runs", json=APPLY | {"dtype": "float32"}).json()["id"]
    shown = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 0}).json()
    got = client.post(f"/api/runs/{run_id}/inspect/apply", json={"batch": 0}).json()
    for layer, before in zip(got["layers"], shown["layers"], strict=True):
        assert layer["weights"] == before["weights_after"]
        w = np.array(layer["weights"])
        np.testing.assert_array_equal(w.astype(np.float32).astype(np.float64), w)


def test_apply_is_refused_while_running_and_checks_its_input(client: TestClient) -> None:
    run_id = client.post(
        "/api/runs", json=APPLY | {"start": True, "epochs": 100000, "max_epochs_per_second": 1}
    ).json()["id"]
    url = f"/api/runs/{run_id}/inspect/apply"
    response = client.post(url, json={"batch": 0})
    assert response.status_code == 409
    assert "stop the run" in response.json()["detail"]
    client.post(f"/api/runs/{run_id}/stop")
    for bad, field in (({"batch": 3}, "batch"), ({"batch": -1}, "batch"), ({"x": 1}, "x")):
        response = client.post(url, json=bad)
        assert response.status_code == 422, bad
        body = response.json()
        assert (body.get("field") or body["detail"][0]["loc"][-1]) == field
    assert client.post("/api/runs/nope/inspect/apply", json={}).status_code == 404
