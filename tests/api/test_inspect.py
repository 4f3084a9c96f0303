"""GET /api/runs/{id}/inspect: one backprop step's numbers, checked against an independent oracle.

The oracle is plain NumPy written here from API.md's math conventions (z = a_prev @ W.T
+ b, sigmoid, mse = mean over samples and outputs), fed only by /weights and /data:
the gradients must equal central finite differences of the batch loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

TINY: dict[str, Any] = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 30, "test_fraction": 0.2},
    "hidden_layers": [3],
    "activation": "sigmoid",
    "output_activation": "sigmoid",
    "loss": "mse",
    "batch_size": 4,
    "dtype": "float64",
    "learning_rate": 0.5,
}


def _create(client: TestClient, **changes: Any) -> str:
    response = client.post("/api/runs", json=TINY | changes)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _batch_loss(ws: list[np.ndarray], bs: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    a = x
    for w, b in zip(ws, bs, strict=True):
        a = _sigmoid(a @ w.T + b)
    return float(np.mean((a - y) ** 2))


def _oracle(client: TestClient, run_id: str, batch: int, size: int) -> tuple[Any, ...]:
    layers = client.get(f"/api/runs/{run_id}/weights").json()["layers"]
    ws = [np.array(layer["weights"], dtype=np.float64) for layer in layers]
    bs = [np.array(layer["biases"], dtype=np.float64) for layer in layers]
    train = client.get(f"/api/runs/{run_id}/data").json()["train"]
    x = np.array(train["x"], dtype=np.float64)[batch * size : (batch + 1) * size]
    y = np.array(train["y"], dtype=np.float64)[batch * size : (batch + 1) * size, None]
    return ws, bs, x, y


def _finite_differences(
    ws: list[np.ndarray], bs: list[np.ndarray], x: np.ndarray, y: np.ndarray, h: float = 1e-6
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    grads_w, grads_b = [], []
    for params, out in ((ws, grads_w), (bs, grads_b)):
        for p in params:
            g = np.zeros_like(p)
            for idx in np.ndindex(p.shape):
                keep = p[idx]
                p[idx] = keep + h
                up = _batch_loss(ws, bs, x, y)
                p[idx] = keep - h
                down = _batch_loss(ws, bs, x, y)
                p[idx] = keep
                g[idx] = (up - down) / (2 * h)
            out.append(g)
    return grads_w, grads_b


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


@pytest.mark.parametrize("trained", [False, True])
def test_gradients_equal_finite_differences_and_w_after_is_the_sgd_step(
    client: TestClient, trained: bool
) -> None:
    run_id = _create(client)
    if trained:  # weights away from their initial values
        assert client.post(f"/api/runs/{run_id}/step", json={"epochs": 5}).status_code == 200
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 2, "sample": 1}).json()
    ws, bs, x, y = _oracle(client, run_id, batch=2, size=4)
    fd_w, fd_b = _finite_differences(ws, bs, x, y)

    assert body["batch"] == 2 and body["batch_start"] == 8 and body["batch_size"] == 4
    assert body["n_batches"] == 6  # 24 training rows in batches of 4
    assert body["epoch"] == (5 if trained else 0)
    assert body["update"] == "sgd" and body["optimizer"] == "sgd"
    assert body["truncated"] is False and body["rows_truncated"] is False
    assert body["loss"] == pytest.approx(_batch_loss(ws, bs, x, y), rel=1e-12)
    np.testing.assert_allclose(body["inputs"], x, rtol=1e-12)
    np.testing.assert_allclose(body["targets"], y, rtol=1e-12)
    lr = body["learning_rate"]
    assert lr == 0.5
    for i, layer in enumerate(body["layers"]):
        nabla_w, nabla_b = np.array(layer["nabla_w"]), np.array(layer["nabla_b"])
        assert nabla_w.shape == ws[i].shape and nabla_b.shape == bs[i].shape
        assert _rel_err(nabla_w, fd_w[i]) < 1e-5
        assert _rel_err(nabla_b, fd_b[i]) < 1e-5
        np.testing.assert_allclose(layer["weights"], ws[i], rtol=1e-12)
        np.testing.assert_allclose(layer["weights_after"], ws[i] - lr * nabla_w, atol=1e-15)
        np.testing.assert_allclose(layer["biases_after"], bs[i] - lr * nabla_b, atol=1e-15)
        assert layer["penalty_w"] is None
        for key in ("z", "a", "delta"):
            assert np.array(layer[key]).shape == (4, ws[i].shape[0])


def test_forward_trace_deltas_and_the_sample_follow_the_article(client: TestClient) -> None:
    run_id = _create(client)
    body = client.get(f"/api/runs/{run_id}/inspect", params={"batch": 1, "sample": 3}).json()
    ws, bs, x, y = _oracle(client, run_id, batch=1, size=4)
    n = x.shape[0]
    z1 = x @ ws[0].T + bs[0]
    a1 = _sigmoid(z1)
    z2 = a1 @ ws[1].T + bs[1]
    a2 = _sigmoid(z2)
    # delta_L = dE/da * f'(z) with E the batch mean over n rows and 1 output
    d2 = 2 * (a2 - y) / n * a2 * (1 - a2)
    d1 = (d2 @ ws[1]) * a1 * (1 - a1)
    hidden, out = body["layers"]
    for got, want in ((hidden["z"], z1), (hidden["a"], a1), (hidden["delta"], d1)):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    for got, want in ((out["z"], z2), (out["a"], a2), (out["delta"], d2)):
        np.testing.assert_allclose(got, want, rtol=1e-10)
    # ∂E/∂W = Σ over the batch of δ a_prevᵀ (the 1/n lives in δ)
    np.testing.assert_allclose(hidden["nabla_w"], d1.T @ x, rtol=1e-10)
    sample = body["sample"]
    assert sample["index"] == 3 and sample["row"] == 7
    np.testing.assert_allclose(sample["x"], x[3])
    np.testing.assert_allclose(sample["y"], y[3])
    np.testing.assert_allclose(sample["layers"][0]["a"], a1[3], rtol=1e-10)
    np.testing.assert_allclose(sample["layers"][1]["delta"], d2[3], rtol=1e-10)


def test_full_batch_momentum_and_penalty_are_reported(client: TestClient) -> None:
    run_id = _create(client, batch_size=None, optimizer="momentum", l2=0.1)
    body = client.get(f"/api/runs/{run_id}/inspect").json()
    assert body["n_batches"] == 1 and body["batch_size"] == 24
    assert body["optimizer"] == "momentum" and body["update"] == "sgd"
    layer = body["layers"][0]
    w, penalty = np.array(layer["weights"]), np.array(layer["penalty_w"])
    np.testing.assert_allclose(penalty, 0.1 * w)
    step = np.array(layer["nabla_w"]) + penalty
    np.testing.assert_allclose(layer["weights_after"], w - 0.5 * step, atol=1e-15)


def test_unknown_run_is_404(client: TestClient) -> None:
    response = client.get("/api/runs/nope/inspect")
    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"batch": 6}, "batch"),  # 24 rows / 4 = batches 0-5
        ({"batch": 0, "sample": 4}, "sample"),
        ({"batch": -1}, "batch"),
        ({"sample": -1}, "sample"),
        ({"batch": "x"}, "batch"),
    ],
)
def test_out_of_range_is_422_naming_the_field(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    run_id = _create(client)
    response = client.get(f"/api/runs/{run_id}/inspect", params=params)
    assert response.status_code == 422
    body = response.json()
    named = body.get("field") or body["detail"][0]["loc"][-1]
    assert named == field


def test_last_batch_is_smaller_and_its_sample_range_follows(client: TestClient) -> None:
    run_id = _create(client, batch_size=5)  # 24 rows: 5 batches of 5, then 4
    url = f"/api/runs/{run_id}/inspect"
    body = client.get(url, params={"batch": 4, "sample": 3}).json()
    assert body["batch_size"] == 4 and body["batch_start"] == 20
    assert client.get(url, params={"batch": 4, "sample": 4}).status_code == 422


def test_wide_net_and_big_batch_are_truncated(client: TestClient) -> None:
    run_id = _create(
        client,
        hidden_layers=[100, 3],
        batch_size=None,
        dataset={"kind": "xor", "n_samples": 200, "test_fraction": 0.2},
    )
    response = client.get(f"/api/runs/{run_id}/inspect", params={"sample": 150})
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is True and body["rows_truncated"] is True
    assert body["batch_size"] == 160 and body["limit"] == 64
    assert len(body["inputs"]) == 64
    wide, narrow, out = body["layers"]
    assert wide["truncated"] is True and narrow["truncated"] is True and out["truncated"] is False
    assert np.array(wide["z"]).shape == (64, 64)
    assert np.array(wide["weights"]).shape == (64, 2)
    assert np.array(narrow["nabla_w"]).shape == (3, 64)
    assert len(wide["biases"]) == 64
    # the sample is beyond the 64 shown rows, yet its own vectors are there
    assert body["sample"]["row"] == 150
    assert len(body["sample"]["layers"][0]["a"]) == 64
    assert len(body["sample"]["layers"][2]["a"]) == 1
    # bounded by the cap (a few 64x64 tables per layer), not by the batch or the width
    assert len(response.content) < 400_000


def test_the_route_is_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    operation = paths["/api/runs/{run_id}/inspect"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {"run_id", "batch", "sample"}
    assert {"200", "404", "422"} <= set(operation["responses"])
