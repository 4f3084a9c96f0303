"""API.md v1.1 `POST /api/runs/import`: an export comes back as a new `created` run with
the same config (but its name) and the same weights; anything else is a 422 naming what
is wrong, and nothing is created."""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

OCTET = {"content-type": "application/octet-stream"}
BASE = {
    "dataset": {"kind": "spiral", "n_samples": 60, "n_classes": 3},
    "hidden_layers": [5],
    "activation": "relu",
    "features": ["x1", "x2", "x1_x2", "sin_x1"],
    "start": False,
}
PROBE = [[0.1, -0.4], [0.9, 0.3], [-0.7, -0.2]]


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**BASE, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def export(client: TestClient, run_id: str) -> bytes:
    response = client.get(f"/api/runs/{run_id}/export.npz")
    assert response.status_code == 200
    return response.content


def arrays_of(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def npz(arrays: dict[str, Any], *, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=allow_pickle, **arrays)
    return buffer.getvalue()


def post(client: TestClient, body: bytes) -> Any:
    return client.post("/api/runs/import", content=body, headers=OCTET)


def predict(client: TestClient, run_id: str) -> dict[str, Any]:
    return client.post(f"/api/runs/{run_id}/predict", json={"inputs": PROBE}).json()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_same_weights_config_and_predictions(client: TestClient, dtype: str) -> None:
    run = create(client, dtype=dtype, optimizer="adam", lr_schedule={"kind": "cosine"})
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 5})
    response = post(client, export(client, run["id"]))
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["id"] != run["id"] and new["status"] == "created" and new["epoch"] == 0
    assert new["name"] == f"{run['config']['name']} (imported)"
    assert {**new["config"], "name": None} == {**run["config"], "name": None}
    old_weights = client.get(f"/api/runs/{run['id']}/weights").json()["layers"]
    assert client.get(f"/api/runs/{new['id']}/weights").json()["layers"] == old_weights
    assert predict(client, new["id"]) == predict(client, run["id"])
    # The imported weights are its starting point: reset returns to them.
    client.post(f"/api/runs/{new['id']}/step", json={"epochs": 2})
    client.post(f"/api/runs/{new['id']}/reset")
    assert client.get(f"/api/runs/{new['id']}/weights").json()["layers"] == old_weights
    # Its own export holds the very same arrays.
    again = arrays_of(export(client, new["id"]))
    for name, array in arrays_of(export(client, run["id"])).items():
        if name not in ("config", "epoch"):
            np.testing.assert_array_equal(again[name], array)
            assert again[name].dtype == array.dtype


def test_a_custom_dataset_comes_back_with_its_points(client: TestClient) -> None:
    x = [[0.0, 0.1], [1.0, 0.5], [0.2, -1.0], [-0.5, 0.5], [0.3, 0.3]]
    y = [[0.5], [1.5], [-0.2], [0.0], [0.7]]
    run = create(
        client, dataset={"kind": "custom", "task": "regression", "x": x, "y": y}, features=None
    )
    response = post(client, export(client, run["id"]))
    assert response.status_code == 201, response.text
    new = response.json()
    data = client.get(f"/api/runs/{new['id']}/data").json()
    assert data == client.get(f"/api/runs/{run['id']}/data").json()
    # Without the points the run cannot be made again.
    arrays = arrays_of(export(client, run["id"]))
    del arrays["x"], arrays["y"]
    refused = post(client, npz(arrays))
    assert refused.status_code == 422
    assert "custom dataset's points are not in this file" in refused.json()["detail"]


def good_arrays(client: TestClient) -> dict[str, np.ndarray]:
    return arrays_of(export(client, create(client)["id"]))


def with_config(arrays: dict[str, np.ndarray], **changes: Any) -> dict[str, np.ndarray]:
    config = {**json.loads(str(arrays["config"])), **changes}
    return {**arrays, "config": np.asarray(json.dumps(config))}


def bad_bodies(arrays: dict[str, np.ndarray]) -> Iterator[tuple[str, bytes, str, str]]:
    """(case, body, field, words in the detail) for every kind of bad input."""
    yield "empty", b"", "body", "empty"
    yield "garbage", b"\x00garbage that is no zip", "body", "not an .npz"
    yield "pickle", pickle.dumps({"W1": [[1.0]]}), "body", "pickle, which is never loaded"
    yield "npy", _npy(arrays["W1"]), "body", "not an .npz"
    objects = {**arrays, "W1": np.array([{"evil": 1}, None], dtype=object)}
    yield "object array", npz(objects, allow_pickle=True), "W1", "pickle"
    yield "no W2", npz({k: v for k, v in arrays.items() if k != "W2"}), "W2", "no array 'W2'"
    yield "no config", npz({k: v for k, v in arrays.items() if k != "config"}), "config", "no"
    yield (
        "no sizes",
        npz({k: v for k, v in arrays.items() if k != "layer_sizes"}),
        "layer_sizes",
        "no",
    )
    wide = {**arrays, "W1": np.zeros((5, 3), np.float32)}
    yield "wrong shape", npz(wide), "W1", "shape [5, 4]"
    nan = {**arrays, "b1": np.full(5, np.nan, np.float32)}
    yield "non-finite", npz(nan), "b1", "finite"
    text = {**arrays, "W1": np.full((5, 4), "a")}
    yield "text weights", npz(text), "W1", "real numbers"
    yield (
        "bad config field",
        npz(with_config(arrays, learning_rate=-1)),
        "config.learning_rate",
        "learning rate",
    )
    yield "unknown config field", npz(with_config(arrays, colour="red")), "config.colour", "colour"
    config_text = {**arrays, "config": np.asarray("{not json")}
    yield "config not json", npz(config_text), "config", "JSON"
    sizes = {**arrays, "layer_sizes": np.asarray([4, 6, 3], np.int64)}
    yield "sizes against config", npz(sizes), "layer_sizes", "hidden_layers"
    # Sizes and arrays agree with each other but not with the data's inputs.
    three = {
        **arrays,
        "layer_sizes": np.asarray([3, 5, 3], np.int64),
        "W1": np.zeros((5, 3), np.float32),
    }
    yield "sizes against data", npz(three), "W1", "shape [5, 4]"
    no_bias = npz(with_config(arrays, use_bias=False))
    yield "biases without use_bias", no_bias, "b1", "use_bias"


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_every_bad_input_is_named_and_creates_nothing(client: TestClient) -> None:
    arrays = good_arrays(client)
    before = len(client.get("/api/runs").json()["runs"])
    for case, body, field, words in bad_bodies(arrays):
        response = post(client, body)
        assert response.status_code == 422, (case, response.text)
        answer = response.json()
        assert answer["field"] == field, (case, answer)
        assert words in answer["detail"], (case, answer)
    assert len(client.get("/api/runs").json()["runs"]) == before


def test_a_body_over_the_limit_is_413(database: str) -> None:
    settings = Settings.from_env({}, db=database, max_body_bytes=2000)
    with TestClient(create_app(settings)) as client:
        arrays = good_arrays(client)
        body = npz({**arrays, "padding": np.zeros(1000)})
        assert len(body) > 2000
        response = post(client, body)
        assert response.status_code == 413
        assert len(client.get("/api/runs").json()["runs"]) == 1


def test_a_file_that_unpacks_too_large_is_refused_unread(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A compressed .npz could expand without bound: its declared sizes are checked first.
    body = npz(good_arrays(client))
    monkeypatch.setattr("app.runs.exports.MAX_UNPACKED_BYTES", 1000)
    response = post(client, body)
    assert response.status_code == 422
    assert response.json()["field"] == "body"
    assert "unpacks to" in response.json()["detail"]
