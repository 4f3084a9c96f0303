"""API.md v1.1 "The playground loop": PATCH any field in place, features, the teacher,
PUT weights and duplicates, over HTTP with the real manager and trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tests.support import TINY_RUN, strict_json, wait_epoch, wait_run


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**TINY_RUN, "start": False, **fields})
    assert response.status_code == 201, response.text
    return strict_json(response.text)


def patch(client: TestClient, run_id: str, body: dict[str, Any], status: int = 200) -> Any:
    response = client.patch(f"/api/runs/{run_id}", json=body)
    assert response.status_code == status, response.text
    return strict_json(response.text)


def step(client: TestClient, run_id: str, epochs: int) -> dict[str, Any]:
    response = client.post(f"/api/runs/{run_id}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    return strict_json(response.text)


def weights(client: TestClient, run_id: str) -> dict[str, Any]:
    return strict_json(client.get(f"/api/runs/{run_id}/weights").text)


# ---- structural PATCH ----------------------------------------------------------------------


def test_structural_patch_gives_exactly_the_run_post_would_create(client: TestClient) -> None:
    run = create(client, epochs=50)
    step(client, run["id"], 10)
    patched = patch(client, run["id"], {"hidden_layers": [5, 3], "activation": "relu"})
    assert patched["status"] == "created" and patched["epoch"] == 0
    assert patched["layer_sizes"] == [2, 5, 3, 1]
    assert patched["id"] == run["id"] and patched["created_at"] == run["created_at"]
    assert client.get(f"/api/runs/{run['id']}/metrics").json()["epoch"] == []
    fresh = create(client, epochs=50, hidden_layers=[5, 3], activation="relu")
    assert weights(client, run["id"]) == weights(client, fresh["id"])
    assert {k: v for k, v in patched["config"].items() if k != "name"} == {
        k: v for k, v in fresh["config"].items() if k != "name"
    }
    # ... and it trains the same from there.
    assert step(client, run["id"], 5)["train_loss"] == step(client, fresh["id"], 5)["train_loss"]


def test_structural_patch_keeps_a_running_run_running(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    wait_epoch(client, run["id"], 3)
    patched = patch(client, run["id"], {"activation": "sigmoid", "learning_rate": 0.2})
    assert patched["status"] == "running" and patched["config"]["activation"] == "sigmoid"
    assert patched["config"]["learning_rate"] == 0.2
    wait_epoch(client, run["id"], 2)
    metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
    assert metrics["epoch"][:2] == [1, 2]  # the history starts again at epoch 1
    client.post(f"/api/runs/{run['id']}/stop")


def test_live_fields_do_not_reinitialise(client: TestClient) -> None:
    run = create(client, epochs=50)
    step(client, run["id"], 5)
    patched = patch(client, run["id"], {"l2": 0.01, "l1": 0.001, "learning_rate": 0.1})
    assert patched["epoch"] == 5 and patched["config"]["l2"] == 0.01
    assert step(client, run["id"], 2)["epoch"] == 7


def test_a_structural_field_at_its_current_value_changes_nothing(client: TestClient) -> None:
    run = create(client, epochs=50)
    step(client, run["id"], 5)
    same = patch(client, run["id"], {"activation": run["config"]["activation"], "seed": 0})
    assert same["epoch"] == 5 and same["status"] == "stopped"


def test_dataset_patch_merges_or_replaces(client: TestClient) -> None:
    run = create(client, dataset={"kind": "spiral", "n_samples": 100, "n_classes": 3})
    merged = patch(client, run["id"], {"dataset": {"noise": 0}})["config"]["dataset"]
    assert merged == {**run["config"]["dataset"], "noise": 0}
    replaced = patch(client, run["id"], {"dataset": {"kind": "circle"}})
    assert replaced["config"]["dataset"]["kind"] == "circle"
    assert replaced["config"]["dataset"]["n_samples"] == 400  # the new kind's default
    # A new task: the head goes back to "chosen by task" (3 softmax outputs -> 1 sigmoid).
    assert replaced["config"]["output_activation"] == "sigmoid"
    assert replaced["layer_sizes"][-1] == 1


def test_features_follow_the_inputs(client: TestClient) -> None:
    run = create(client, features=["x1_sq", "x2_sq", "x1_x2"])
    assert run["layer_sizes"][0] == 3 and run["config"]["features"] == ["x1_sq", "x2_sq", "x1_x2"]
    # Predictions take the raw 2-D inputs.
    out = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.5, -0.5]]})
    assert out.status_code == 200 and len(out.json()["outputs"]) == 1
    assert (
        client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[1, 2, 3]]}).status_code
        == 422
    )
    # A 1-D dataset drops them (unless the same PATCH sets them) ...
    sine = patch(client, run["id"], {"dataset": {"kind": "sine"}})
    assert sine["config"]["features"] is None and sine["layer_sizes"][0] == 1
    # ... and refuses them.
    bad = patch(client, run["id"], {"features": ["x1"]}, status=422)
    assert bad["field"] == "features"


def test_features_are_validated(client: TestClient) -> None:
    for features, field in ((["x1", "x1"], "features"), ([], "features"), (["z"], "features.0")):
        response = client.post("/api/runs", json={**TINY_RUN, "features": features})
        assert response.status_code == 422, features
        assert response.json()["detail"][0]["loc"][:2] == ["body", *field.split(".")[:1]]


def test_a_failing_patch_changes_nothing(client: TestClient) -> None:
    run = create(client, epochs=50)
    step(client, run["id"], 5)
    before = client.get(f"/api/runs/{run['id']}").json()
    bad = patch(client, run["id"], {"activation": "relu", "dataset": {"noise": 5}}, status=422)
    assert bad["field"] == "dataset.noise"
    assert client.get(f"/api/runs/{run['id']}").json() == before
    head = patch(client, run["id"], {"error_propagation": "weights_only"}, 422)
    assert head["field"] == "error_propagation"
    assert client.get(f"/api/runs/{run['id']}").json() == before


def test_error_propagation_is_in_the_config(client: TestClient) -> None:
    run = create(client)
    assert run["config"]["error_propagation"] == "chain_rule"
    refused = client.post("/api/runs", json={**TINY_RUN, "error_propagation": "weights_only"})
    assert refused.status_code == 422 and refused.json()["field"] == "error_propagation"


# ---- the teacher -------------------------------------------------------------------------------


def _apply(layers: list[dict[str, Any]], activation: str, x: np.ndarray) -> np.ndarray:
    f = {"sigmoid": lambda z: 1 / (1 + np.exp(-z)), "tanh": np.tanh}[activation]
    a = x
    for layer in layers:
        a = f(a @ np.asarray(layer["weights"]).T + np.asarray(layer["biases"]))
    return a


def test_teacher_route_reproduces_the_targets(client: TestClient) -> None:
    run = create(client, dataset={"kind": "teacher", "noise": 0, "n_samples": 50})
    teacher = client.get(f"/api/runs/{run['id']}/teacher").json()
    assert teacher["activation"] == "sigmoid" and len(teacher["layers"]) == 2
    data = client.get(f"/api/runs/{run['id']}/data").json()
    for split in ("train", "test"):
        x, y = np.asarray(data[split]["x"]), np.asarray(data[split]["y"])
        np.testing.assert_allclose(_apply(teacher["layers"], "sigmoid", x), y, rtol=1e-12)
    assert client.get(f"/api/runs/{create(client)['id']}/teacher").status_code == 404


# ---- PUT weights -------------------------------------------------------------------------------


def test_put_weights_is_refused_while_running_and_checked(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    current = weights(client, run["id"])
    client.post(f"/api/runs/{run['id']}/start")
    busy = client.put(f"/api/runs/{run['id']}/weights", json={"layers": current["layers"]})
    assert busy.status_code == 409
    client.post(f"/api/runs/{run['id']}/stop")
    layers = current["layers"]
    wrong_shape = [{**layers[0], "weights": layers[0]["weights"][:-1]}, layers[1]]
    not_finite = [{**layers[0], "biases": [None] * len(layers[0]["biases"])}, layers[1]]
    no_bias = [{**layers[0], "biases": None}, layers[1]]
    for bad, field in (
        (wrong_shape, "layers.0.weights"),
        (not_finite, "layers.0.biases"),
        (no_bias, "layers.0.biases"),
        (layers[:1], "layers"),
    ):
        response = client.put(f"/api/runs/{run['id']}/weights", json={"layers": bad})
        assert response.status_code == 422, field
        assert response.json()["field"] == field


def test_put_weights_then_one_sgd_step_matches_the_closed_form(client: TestClient) -> None:
    """A linear net (no hidden layer) with MSE and full-batch SGD: one epoch is
    W ← W − lr·(2/n)·(XWᵀ + b − y)ᵀX, computed here from /data."""
    lr = 0.1
    run = create(
        client,
        dataset={"kind": "plane", "n_samples": 30, "noise": 0.05},
        hidden_layers=[],
        learning_rate=lr,
        dtype="float64",
    )
    w0, b0 = np.array([[0.7, -1.3]]), np.array([0.25])
    edited = {"layers": [{"weights": w0.tolist(), "biases": b0.tolist()}]}
    put = client.put(f"/api/runs/{run['id']}/weights", json=edited)
    assert put.status_code == 200 and put.json()["layers"] == edited["layers"]
    assert weights(client, run["id"])["layers"] == edited["layers"]
    data = client.get(f"/api/runs/{run['id']}/data").json()["train"]
    x, y = np.asarray(data["x"]), np.asarray(data["y"])
    residual = x @ w0.T + b0 - y
    w1 = w0 - lr * (2 / len(x)) * residual.T @ x
    b1 = b0 - lr * (2 / len(x)) * residual.sum(axis=0)
    step(client, run["id"], 1)
    after = weights(client, run["id"])["layers"][0]
    np.testing.assert_allclose(after["weights"], w1, rtol=1e-12)
    np.testing.assert_allclose(after["biases"], b1, rtol=1e-12)
    # Reset goes back to the seed's weights, not the edited ones.
    client.post(f"/api/runs/{run['id']}/reset")
    assert weights(client, run["id"])["layers"] != edited["layers"]


def test_put_weights_mid_run_keeps_epoch_and_metrics_and_is_durable(
    client: TestClient, settings: Any
) -> None:
    run = create(client, epochs=50)
    step(client, run["id"], 4)
    layers = weights(client, run["id"])["layers"]
    layers[0]["weights"][0][0] = 1.5
    assert client.put(f"/api/runs/{run['id']}/weights", json={"layers": layers}).status_code == 200
    again = client.get(f"/api/runs/{run['id']}").json()
    assert again["epoch"] == 4
    assert client.get(f"/api/runs/{run['id']}/metrics").json()["epoch"] == [1, 2, 3, 4]
    from app.main import create_app

    with TestClient(create_app(settings)) as restarted:
        assert weights(restarted, run["id"])["layers"][0]["weights"][0][0] == 1.5
        assert step(restarted, run["id"], 1)["epoch"] == 5


# ---- duplicate ---------------------------------------------------------------------------------


def test_duplicate_copies_the_run_as_stored(client: TestClient) -> None:
    run = create(
        client,
        epochs=50,
        dataset={
            "kind": "custom",
            "task": "regression",
            "x": [[0.0], [0.5], [1.0]],
            "y": [0.0, 0.2, 0.9],
        },
    )
    step(client, run["id"], 6)
    copy = client.post(f"/api/runs/{run['id']}/duplicate")
    assert copy.status_code == 201, copy.text
    dup = copy.json()
    assert dup["id"] != run["id"] and dup["name"].endswith("(copy)")
    assert dup["status"] == "stopped" and dup["epoch"] == 6
    for route in ("metrics", "weights", "data"):
        assert (
            client.get(f"/api/runs/{dup['id']}/{route}").json()
            == client.get(f"/api/runs/{run['id']}/{route}").json()
        )
    client.delete(f"/api/runs/{run['id']}")
    assert step(client, dup["id"], 2)["epoch"] == 8
    assert client.post("/api/runs/nope/duplicate").status_code == 404


def test_patch_while_running_sends_subscribers_a_fresh_snapshot(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    wait_epoch(client, run["id"], 2)
    hub = client.app.state.manager.hub(run["id"])
    resets = hub.resets
    patch(client, run["id"], {"hidden_layers": [6]})
    assert hub.resets == resets + 1 and hub.history.n_layers == 2
    wait_run(client, run["id"], "running")
    client.post(f"/api/runs/{run['id']}/stop")
