"""API.md v1.1 exports: export.npz, metrics.csv, data.csv, as the contract spells them,
checked against the JSON routes that serve the same numbers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

BASE = {"dataset": {"kind": "moons", "n_samples": 60}, "hidden_layers": [4, 3], "start": False}


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**BASE, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def stepped(client: TestClient, epochs: int = 3, **fields: Any) -> dict[str, Any]:
    run = create(client, **fields)
    response = client.post(f"/api/runs/{run['id']}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    return response.json()


def load_export(client: TestClient, run_id: str) -> dict[str, np.ndarray]:
    response = client.get(f"/api/runs/{run_id}/export.npz")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    with np.load(io.BytesIO(response.content), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def read_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_export_holds_the_weights_in_the_runs_dtype(client: TestClient, dtype: str) -> None:
    run = stepped(client, dtype=dtype, name="my moons")
    arrays = load_export(client, run["id"])
    assert set(arrays) == {"W1", "b1", "W2", "b2", "W3", "b3", "layer_sizes", "epoch", "config"}
    weights = client.get(f"/api/runs/{run['id']}/weights").json()
    for i, layer in enumerate(weights["layers"], start=1):
        assert arrays[f"W{i}"].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(arrays[f"W{i}"], np.asarray(layer["weights"], dtype))
        np.testing.assert_array_equal(arrays[f"b{i}"], np.asarray(layer["biases"], dtype))
    assert arrays["layer_sizes"].dtype == np.int64
    assert arrays["layer_sizes"].tolist() == run["layer_sizes"] == [2, 4, 3, 1]
    assert arrays["epoch"].dtype == np.int64 and arrays["epoch"].shape == ()
    assert int(arrays["epoch"]) == 3
    assert arrays["config"].shape == () and arrays["config"].dtype.kind == "U"
    assert json.loads(str(arrays["config"])) == run["config"]


def test_export_without_biases_has_no_b_arrays(client: TestClient) -> None:
    run = create(client, use_bias=False)
    arrays = load_export(client, run["id"])
    assert not [name for name in arrays if name.startswith("b")]
    assert [name for name in arrays if name.startswith("W")] == ["W1", "W2", "W3"]


def test_downloads_are_named_after_the_run_and_epoch(client: TestClient) -> None:
    run = stepped(client, epochs=2, name="Spirals ü")
    response = client.get(f"/api/runs/{run['id']}/export.npz")
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''Spirals%20%C3%BC-epoch2.npz" in disposition
    assert 'filename="Spirals_-epoch2.npz"' in disposition
    csv_name = client.get(f"/api/runs/{run['id']}/metrics.csv").headers["content-disposition"]
    assert "-epoch2-metrics.csv" in csv_name


def test_metrics_csv_is_the_metrics_route_row_by_row(client: TestClient) -> None:
    # Regression with no test set: accuracies and the test loss are null -> empty cells.
    run = stepped(
        client,
        epochs=4,
        dataset={"kind": "sine", "n_samples": 30, "test_fraction": 0},
        lr_schedule={"kind": "exponential", "gamma": 0.5},
    )
    response = client.get(f"/api/runs/{run['id']}/metrics.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = read_csv(response.text)
    assert rows[0] == [
        "epoch",
        "train_loss",
        "test_loss",
        "train_accuracy",
        "test_accuracy",
        "learning_rate",
    ]
    metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
    assert len(rows) == 1 + 4
    for i, row in enumerate(rows[1:]):
        assert int(row[0]) == metrics["epoch"][i] == i + 1
        assert float(row[1]) == metrics["train_loss"][i]  # exact: repr round-trips
        assert row[2:5] == ["", "", ""]
        assert float(row[5]) == metrics["learning_rate"][i] == 0.03 * 0.5**i


def test_metrics_csv_of_a_fresh_run_is_the_header_alone(client: TestClient) -> None:
    run = create(client)
    text = client.get(f"/api/runs/{run['id']}/metrics.csv").text
    assert read_csv(text) == [
        ["epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy", "learning_rate"]
    ]


def test_data_csv_classification_has_one_label_column(client: TestClient) -> None:
    run = create(client, dataset={"kind": "spiral", "n_classes": 3, "n_samples": 40})
    rows = read_csv(client.get(f"/api/runs/{run['id']}/data.csv").text)
    assert rows[0] == ["split", "x1", "x2", "y"]
    data = client.get(f"/api/runs/{run['id']}/data").json()
    expected = [
        [split, *map(float, x), int(y)]
        for split in ("train", "test")
        for x, y in zip(data[split]["x"], data[split]["y"], strict=True)
    ]
    got = [[r[0], float(r[1]), float(r[2]), int(r[3])] for r in rows[1:]]
    assert got == expected
    assert [r[0] for r in rows[1:]].count("test") == 8


def test_data_csv_regression_has_a_column_per_output(client: TestClient) -> None:
    dataset = {"kind": "teacher", "teacher_layers": [3, 4, 2], "n_samples": 20}
    run = create(client, dataset=dataset)
    rows = read_csv(client.get(f"/api/runs/{run['id']}/data.csv").text)
    assert rows[0] == ["split", "x1", "x2", "x3", "y1", "y2"]
    data = client.get(f"/api/runs/{run['id']}/data").json()
    train = np.asarray([[float(v) for v in r[1:]] for r in rows[1:] if r[0] == "train"])
    np.testing.assert_array_equal(train[:, :3], data["train"]["x"])
    np.testing.assert_array_equal(train[:, 3:], data["train"]["y"])
    assert [r[0] for r in rows[1:]] == ["train"] * 16 + ["test"] * 4


def test_a_custom_runs_export_carries_its_points(client: TestClient) -> None:
    x = [[0.0, 0.0], [1.0, 0.5], [0.2, -1.0], [-0.5, 0.5]]
    y = [0, 1, 1, 0]
    run = create(client, dataset={"kind": "custom", "task": "classification", "x": x, "y": y})
    arrays = load_export(client, run["id"])
    assert arrays["x"].tolist() == x and arrays["y"].tolist() == y
    assert "x" not in json.loads(str(arrays["config"]))["dataset"]


@pytest.mark.parametrize("route", ["export.npz", "metrics.csv", "data.csv"])
def test_unknown_run_is_404(client: TestClient, route: str) -> None:
    response = client.get(f"/api/runs/nope/{route}")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
