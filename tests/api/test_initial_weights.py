"""API.md v1.1: `POST /api/runs` with `initial_weights` starts from those weights; reset
returns to them; they survive a restart and a duplicate; bad ones are named."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.main import create_app

LINEAR = {
    "dataset": {"kind": "plane", "n_samples": 30, "noise": 0.05},
    "hidden_layers": [],
    "learning_rate": 0.1,
    "dtype": "float64",
    "batch_size": None,
    "start": False,
}
OWN = {"layers": [{"weights": [[0.7, -1.3]], "biases": [0.25]}]}


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**LINEAR, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def layers(client: TestClient, run_id: str) -> list[dict[str, Any]]:
    return client.get(f"/api/runs/{run_id}/weights").json()["layers"]


def test_a_run_starts_from_its_initial_weights(client: TestClient) -> None:
    run = create(client, initial_weights=OWN)
    assert "initial_weights" not in run["config"]
    assert layers(client, run["id"]) == OWN["layers"]
    data = client.get(f"/api/runs/{run['id']}/data").json()["train"]
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    w0, b0 = np.array([[0.7, -1.3]]), np.array([0.25])
    residual = x @ w0.T + b0 - y
    assert client.post(f"/api/runs/{run['id']}/step", json={"epochs": 1}).status_code == 200
    after = layers(client, run["id"])[0]
    np.testing.assert_allclose(after["weights"], w0 - 0.1 * (2 / len(x)) * residual.T @ x)
    # Reset goes back to them, not to the seed's weights.
    client.post(f"/api/runs/{run['id']}/reset")
    assert layers(client, run["id"]) == OWN["layers"]
    # A duplicate keeps them as its starting point too.
    copy = client.post(f"/api/runs/{run['id']}/duplicate").json()
    client.post(f"/api/runs/{copy['id']}/step", json={"epochs": 2})
    client.post(f"/api/runs/{copy['id']}/reset")
    assert layers(client, copy["id"]) == OWN["layers"]


def test_initial_weights_survive_a_restart(client: TestClient, settings: Any) -> None:
    run = create(client, initial_weights=OWN)
    with TestClient(create_app(settings), base_url="http://localhost") as restarted:
        assert layers(restarted, run["id"]) == OWN["layers"]
        stepped = restarted.post(f"/api/runs/{run['id']}/step", json={"epochs": 1}).json()
        assert stepped["epoch"] == 1
        fresh = restarted.post("/api/runs", json={**LINEAR, "initial_weights": OWN}).json()
        restarted.post(f"/api/runs/{fresh['id']}/step", json={"epochs": 1})
        assert layers(restarted, run["id"]) == layers(restarted, fresh["id"])


def test_a_structural_patch_drops_them(client: TestClient) -> None:
    run = create(client, initial_weights=OWN)
    patched = client.patch(f"/api/runs/{run['id']}", json={"hidden_layers": [3]}).json()
    assert patched["layer_sizes"] == [2, 3, 1]
    twin = create(client, hidden_layers=[3])
    assert layers(client, run["id"]) == layers(client, twin["id"])


@pytest.mark.parametrize(
    ("initial", "field"),
    [
        ({"layers": [{"weights": [[1.0]], "biases": [0.0]}]}, "initial_weights.layers.0.weights"),
        (
            {"layers": [{"weights": [[1.0, 2.0]], "biases": None}]},
            "initial_weights.layers.0.biases",
        ),
        ({"layers": []}, "initial_weights.layers"),
    ],
)
def test_initial_weights_that_do_not_fit_are_named(
    client: TestClient, initial: dict[str, Any], field: str
) -> None:
    response = client.post("/api/runs", json={**LINEAR, "initial_weights": initial})
    assert response.status_code == 422 and response.json()["field"] == field
    assert client.get("/api/runs").json()["runs"] == []


def test_non_finite_initial_weights_are_refused(client: TestClient) -> None:
    body = '{"initial_weights": {"layers": [{"weights": [[NaN, 1]], "biases": [0]}]}}'
    response = client.post("/api/runs", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
