"""The /api/runs routes over HTTP (TestClient + the real manager and trainer)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import TINY_RUN, strict_json, wait_epoch, wait_run

RUN_KEYS = {
    "id", "name", "status", "message", "config", "layer_sizes", "task", "epoch",
    "train_loss", "test_loss", "train_accuracy", "test_accuracy", "created_at", "updated_at",
}  # fmt: skip
METRIC_KEYS = {"epoch", "train_loss", "test_loss", "train_accuracy", "test_accuracy"}


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    body = {**TINY_RUN, "start": False, **fields}
    response = client.post("/api/runs", json=body)
    assert response.status_code == 201, response.text
    return strict_json(response.text)


def step(client: TestClient, run_id: str, epochs: int | None = None) -> dict[str, Any]:
    body = None if epochs is None else {"epochs": epochs}
    response = client.post(f"/api/runs/{run_id}/step", json=body)
    assert response.status_code == 200, response.text
    return strict_json(response.text)


# ---- create, read, list -------------------------------------------------------------------


def test_create_with_defaults_fills_the_config(client: TestClient) -> None:
    response = client.post("/api/runs", json={"start": False})
    assert response.status_code == 201
    run = strict_json(response.text)
    assert run.keys() >= RUN_KEYS
    assert run["status"] == "created" and run["epoch"] == 0
    config = run["config"]
    assert "start" not in config
    assert config["dataset"]["kind"] == "spiral"
    assert config["dataset"]["n_samples"] == 400
    assert config["hidden_layers"] == [8, 8]
    assert config["output_activation"] == "sigmoid" and config["loss"] == "cross_entropy"
    assert run["name"] and config["name"] == run["name"]
    assert run["layer_sizes"] == [2, 8, 8, 1]
    assert run["task"] == "classification"


def test_post_without_a_body_creates_a_default_run(client: TestClient) -> None:
    response = client.post("/api/runs")
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["config"]["hidden_layers"] == [8, 8]
    client.post(f"/api/runs/{run['id']}/stop")


def test_get_list_newest_first_and_404(client: TestClient) -> None:
    first = create(client, name="first")
    second = create(client, name="second")
    listed = client.get("/api/runs").json()["runs"]
    assert [r["id"] for r in listed[:2]] == [second["id"], first["id"]]
    assert client.get(f"/api/runs/{first['id']}").json()["name"] == "first"
    missing = client.get("/api/runs/no-such-run")
    assert missing.status_code == 404
    assert isinstance(missing.json()["detail"], str)


@pytest.mark.parametrize(
    "route",
    [
        ("get", ""),
        ("patch", ""),
        ("delete", ""),
        ("post", "/start"),
        ("post", "/stop"),
        ("post", "/step"),
        ("post", "/reset"),
        ("get", "/metrics"),
        ("get", "/weights"),
        ("get", "/data"),
        ("post", "/predict"),
        ("get", "/events"),
    ],
)
def test_unknown_run_is_404_on_every_route(client: TestClient, route: tuple[str, str]) -> None:
    method, suffix = route
    body = {"inputs": [[0.0, 0.0]]} if suffix == "/predict" else {}
    kwargs = {} if method in ("get", "delete") else {"json": body}
    response = client.request(method.upper(), f"/api/runs/nope{suffix}", **kwargs)
    assert response.status_code == 404, response.text
    assert "detail" in response.json()


def test_unknown_route_is_json_404(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


# ---- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bogus": 1}, "bogus"),
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": 11}, "learning_rate"),
        ({"hidden_layers": [0]}, "hidden_layers"),
        ({"hidden_layers": [8] * 11}, "hidden_layers"),
        ({"activation": "gelu"}, "activation"),
        ({"momentum": 1}, "momentum"),
        ({"epochs": 0}, "epochs"),
        ({"name": "x" * 81}, "name"),
        ({"dataset": {"kind": "xor", "teacher_layers": [2, 1]}}, "teacher_layers"),
        ({"dataset": {"kind": "xor", "n_classes": 3}}, "n_classes"),
        ({"dataset": {"kind": "nope"}}, "dataset"),
    ],
)
def test_invalid_create_is_422_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    before = client.get("/api/runs").json()["runs"]
    response = client.post("/api/runs", json={**body, "start": False})
    assert response.status_code == 422, response.text
    assert field in response.text
    assert client.get("/api/runs").json()["runs"] == before  # no half-made run


def test_bad_head_pairing_is_422_and_makes_no_run(client: TestClient) -> None:
    response = client.post(
        "/api/runs",
        json={"dataset": {"kind": "sine"}, "loss": "cross_entropy", "start": False},
    )
    assert response.status_code == 422, response.text
    assert client.get("/api/runs").json()["runs"] == []


def test_parameter_limit_is_422(client: TestClient) -> None:
    response = client.post("/api/runs", json={"hidden_layers": [1024] * 6, "start": False})
    assert response.status_code == 422, response.text
    assert "param" in response.text.lower()


@pytest.mark.parametrize(
    "raw",
    [
        b'{"learning_rate": NaN}',
        b'{"learning_rate": Infinity}',
        b'{"l2": -Infinity}',
        b'{"learning_rate": 1e400}',
        b'{"dataset": {"kind": "custom", "task": "regression", "x": [[1], [NaN]], "y": [1, 2]}}',
    ],
)
def test_non_finite_numbers_are_422_with_strict_json(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/runs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    detail = strict_json(response.text)["detail"]
    assert detail[0]["loc"][0] == "body" and len(detail[0]["loc"]) >= 2
    assert client.get("/api/runs").json()["runs"] == []


def test_lone_surrogate_is_422_not_500(client: TestClient) -> None:
    response = client.post(
        "/api/runs", content=b'{"name": "\\ud800"}', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert strict_json(response.text)["detail"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize(
    "raw", [b"{", b'{"name": }', b"[" * 100_000, b"\xff\xfe", b'{"a": 1} trailing']
)
def test_malformed_json_is_422(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/runs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert strict_json(response.text)["detail"][0]["type"] == "json_invalid"


def test_validation_errors_do_not_echo_the_input(client: TestClient) -> None:
    response = client.post("/api/runs", json={"name": 5, "secret_field": "abc"})
    assert response.status_code == 422
    for error in response.json()["detail"]:
        assert set(error) == {"type", "loc", "msg"}


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    limit = client.app.state.settings.max_body_bytes
    assert limit == 32 * 1024 * 1024
    response = client.post(
        "/api/runs",
        content=b" " * (limit + 1),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "detail" in response.json()
    assert client.get("/api/runs").json()["runs"] == []


def test_streamed_body_over_the_limit_is_413(settings: Any) -> None:
    from dataclasses import replace

    from app.main import create_app

    small = replace(settings, max_body_bytes=1000)
    with TestClient(create_app(small)) as client:

        def chunks() -> Any:
            for _ in range(20):
                yield b" " * 100

        response = client.post(
            "/api/runs", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        ok = client.post("/api/runs", json={"start": False})  # under the limit: fine
        assert ok.status_code == 201


# ---- lifecycle ----------------------------------------------------------------------------


def test_step_default_one_epoch_then_n(client: TestClient) -> None:
    run = create(client, epochs=20)
    after_one = step(client, run["id"])
    assert after_one["epoch"] == 1 and after_one["status"] == "stopped"
    after_five = step(client, run["id"], 5)
    assert after_five["epoch"] == 6 and after_five["status"] == "stopped"
    done = step(client, run["id"], 10_000)  # trains only up to `epochs`
    assert done["epoch"] == 20 and done["status"] == "completed"
    assert client.post(f"/api/runs/{run['id']}/step").status_code == 409
    assert client.post(f"/api/runs/{run['id']}/start").status_code == 409


@pytest.mark.parametrize("body", [{"epochs": 0}, {"epochs": 10_001}, {"epochs": 1, "x": 1}])
def test_step_body_is_validated(client: TestClient, body: dict[str, Any]) -> None:
    run = create(client)
    response = client.post(f"/api/runs/{run['id']}/step", json=body)
    assert response.status_code == 422
    assert client.get(f"/api/runs/{run['id']}").json()["epoch"] == 0


def test_start_stop_start_to_completion(client: TestClient) -> None:
    run = create(client, epochs=100_000)
    started = client.post(f"/api/runs/{run['id']}/start")
    assert started.status_code == 200 and started.json()["status"] == "running"
    wait_epoch(client, run["id"], 3)
    stopped = client.post(f"/api/runs/{run['id']}/stop").json()
    assert stopped["status"] == "stopped"
    # The returned epoch is final: nothing trains after the stop answered.
    assert client.get(f"/api/runs/{run['id']}").json()["epoch"] == stopped["epoch"]
    metrics = client.get(f"/api/runs/{run['id']}/metrics").json()
    assert metrics["epoch"] == list(range(1, stopped["epoch"] + 1))
    # stop from a non-running status is a no-op returning the Run
    again = client.post(f"/api/runs/{run['id']}/stop")
    assert again.status_code == 200 and again.json()["epoch"] == stopped["epoch"]
    client.patch(f"/api/runs/{run['id']}", json={"epochs": stopped["epoch"] + 30})
    assert client.post(f"/api/runs/{run['id']}/start").json()["status"] == "running"
    done = wait_run(client, run["id"], "completed")
    assert done["epoch"] == stopped["epoch"] + 30


def test_step_is_409_while_running(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    assert client.post(f"/api/runs/{run['id']}/step").status_code == 409
    client.post(f"/api/runs/{run['id']}/stop")


def test_patch_while_running_changes_the_limit(client: TestClient) -> None:
    run = create(client, epochs=1_000_000, max_epochs_per_second=200)
    client.post(f"/api/runs/{run['id']}/start")
    wait_epoch(client, run["id"], 2)
    current = client.get(f"/api/runs/{run['id']}").json()["epoch"]
    patched = client.patch(
        f"/api/runs/{run['id']}",
        json={
            "name": "renamed",
            "learning_rate": 0.1,
            "epochs": current + 40,
            "max_epochs_per_second": None,
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "renamed" and body["config"]["learning_rate"] == 0.1
    assert body["config"]["max_epochs_per_second"] is None
    done = wait_run(client, run["id"], "completed")
    assert done["epoch"] == body["config"]["epochs"]


def test_patch_rules(client: TestClient) -> None:
    run = create(client, epochs=10)
    step(client, run["id"], 10)
    rid = run["id"]
    assert client.patch(f"/api/runs/{rid}", json={"epochs": 5}).status_code == 422
    too_wide = client.patch(f"/api/runs/{rid}", json={"hidden_layers": [4, 2000]})
    assert too_wide.status_code == 422
    assert too_wide.json()["detail"][0]["msg"] == "layer 2: at most 1,024 neurons"
    assert client.patch(f"/api/runs/{rid}", json={"learning_rate": -1}).status_code == 422
    raised = client.patch(f"/api/runs/{rid}", json={"epochs": 12})
    assert raised.status_code == 200 and raised.json()["status"] == "stopped"
    assert step(client, rid, 5)["epoch"] == 12


def test_reset_restores_the_initial_weights(client: TestClient) -> None:
    run = create(client, epochs=50)
    initial = client.get(f"/api/runs/{run['id']}/weights").json()
    assert initial["epoch"] == 0
    step(client, run["id"], 20)
    assert client.get(f"/api/runs/{run['id']}/weights").json() != initial
    reset = client.post(f"/api/runs/{run['id']}/reset")
    assert reset.status_code == 200
    assert reset.json()["status"] == "created" and reset.json()["epoch"] == 0
    assert client.get(f"/api/runs/{run['id']}/weights").json() == initial
    assert client.get(f"/api/runs/{run['id']}/metrics").json()["epoch"] == []


def test_reset_while_running(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    wait_epoch(client, run["id"], 2)
    reset = client.post(f"/api/runs/{run['id']}/reset").json()
    assert reset["status"] == "created" and reset["epoch"] == 0
    assert client.get(f"/api/runs/{run['id']}/metrics").json()["epoch"] == []


def test_delete_running_run(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    response = client.delete(f"/api/runs/{run['id']}")
    assert response.status_code == 204 and response.content == b""
    assert client.get(f"/api/runs/{run['id']}").status_code == 404
    assert client.delete(f"/api/runs/{run['id']}").status_code == 404


def test_create_and_start_runs_to_completion(client: TestClient) -> None:
    response = client.post("/api/runs", json={**TINY_RUN, "epochs": 40})
    assert response.status_code == 201 and response.json()["status"] == "running"
    done = wait_run(client, response.json()["id"], "completed")
    assert done["epoch"] == 40 and done["train_loss"] is not None


# ---- reading a run ------------------------------------------------------------------------


def test_metrics_since(client: TestClient) -> None:
    run = create(client, epochs=30)
    step(client, run["id"], 30)
    everything = client.get(f"/api/runs/{run['id']}/metrics").json()
    assert everything.keys() >= METRIC_KEYS
    assert everything["epoch"] == list(range(1, 31))
    assert all(len(everything[key]) == 30 for key in METRIC_KEYS)
    tail = client.get(f"/api/runs/{run['id']}/metrics", params={"since": 25}).json()
    assert tail["epoch"] == [26, 27, 28, 29, 30]
    assert tail["train_loss"] == everything["train_loss"][25:]
    assert client.get(f"/api/runs/{run['id']}/metrics", params={"since": 99}).json()["epoch"] == []
    for bad in ("-1", "x"):
        response = client.get(f"/api/runs/{run['id']}/metrics", params={"since": bad})
        assert response.status_code == 422


def test_weights_have_the_documented_shapes(client: TestClient) -> None:
    run = create(client, hidden_layers=[3, 5])
    weights = client.get(f"/api/runs/{run['id']}/weights").json()
    sizes = run["layer_sizes"]
    assert len(weights["layers"]) == len(sizes) - 1
    for layer, n_in, n_out in zip(weights["layers"], sizes, sizes[1:], strict=False):
        assert len(layer["weights"]) == n_out and all(len(r) == n_in for r in layer["weights"])
        assert len(layer["biases"]) == n_out
    nobias = create(client, use_bias=False)
    layers = client.get(f"/api/runs/{nobias['id']}/weights").json()["layers"]
    assert all(layer["biases"] is None for layer in layers)


def test_data_serves_the_split(client: TestClient) -> None:
    run = create(client, dataset={"kind": "xor", "n_samples": 40, "test_fraction": 0.25})
    data = client.get(f"/api/runs/{run['id']}/data").json()
    assert len(data["train"]["x"]) == 30 and len(data["test"]["x"]) == 10
    assert set(data["train"]["y"]) <= {0, 1}


def test_custom_dataset_round_trips_through_data(client: TestClient) -> None:
    x = [[float(i), float(i % 3)] for i in range(10)]
    y = [i % 2 for i in range(10)]
    run = create(
        client,
        dataset={"kind": "custom", "task": "classification", "x": x, "y": y, "test_fraction": 0},
    )
    assert "x" not in run["config"]["dataset"] and "y" not in run["config"]["dataset"]
    data = client.get(f"/api/runs/{run['id']}/data").json()
    assert sorted(map(tuple, data["train"]["x"])) == sorted(map(tuple, x))


def test_predict(client: TestClient) -> None:
    run = create(client, epochs=5)
    step(client, run["id"], 5)
    response = client.post(
        f"/api/runs/{run['id']}/predict", json={"inputs": [[0.5, 0.5], [-0.5, 0.5]]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["outputs"]) == 2 and len(body["outputs"][0]) == 1
    assert body["labels"] == [int(row[0] >= 0.5) for row in body["outputs"]]


def test_predict_regression_has_no_labels(client: TestClient) -> None:
    run = create(client, dataset={"kind": "sine", "n_samples": 20})
    body = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.1]]}).json()
    assert len(body["outputs"]) == 1
    assert body.get("labels") is None


@pytest.mark.parametrize(
    "inputs",
    [
        [],
        [[1.0]],
        [[1.0, 2.0, 3.0]],
        [[1.0, 2.0], [1.0]],
        [[1.0, 2.0]] * 10_001,
        "not a list",
    ],
)
def test_predict_rejects_bad_inputs(client: TestClient, inputs: Any) -> None:
    run = create(client)
    response = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": inputs})
    assert response.status_code == 422
    assert "inputs" in response.text


def test_predict_rejects_non_finite(client: TestClient) -> None:
    run = create(client)
    response = client.post(
        f"/api/runs/{run['id']}/predict",
        content=b'{"inputs": [[1.0, NaN]]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert strict_json(response.text)["detail"][0]["loc"] == ["body", "inputs", 0, 1]


def test_predict_accepts_ten_thousand_rows(client: TestClient) -> None:
    run = create(client)
    response = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.1, 0.2]] * 10_000})
    assert response.status_code == 200
    assert len(response.json()["outputs"]) == 10_000


def test_predict_while_training(client: TestClient) -> None:
    run = create(client, epochs=1_000_000)
    client.post(f"/api/runs/{run['id']}/start")
    wait_epoch(client, run["id"], 1)
    response = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.0, 0.0]]})
    assert response.status_code == 200
    client.post(f"/api/runs/{run['id']}/stop")


# ---- determinism and divergence -----------------------------------------------------------


def test_same_config_same_results_however_split(client: TestClient) -> None:
    config = {**TINY_RUN, "batch_size": 7, "optimizer": "adam", "learning_rate": 0.05}
    one = create(client, **config, epochs=30)
    two = create(client, **config, epochs=30)
    step(client, one["id"], 30)
    for n in (4, 11, 15):
        step(client, two["id"], n)
    for what in ("metrics", "weights"):
        a = client.get(f"/api/runs/{one['id']}/{what}").json()
        b = client.get(f"/api/runs/{two['id']}/{what}").json()
        assert a == b
    three = client.post("/api/runs", json={**config, "epochs": 30}).json()
    wait_run(client, three["id"], "completed")
    assert (
        client.get(f"/api/runs/{three['id']}/metrics").json()
        == client.get(f"/api/runs/{one['id']}/metrics").json()
    )


def test_divergence_gives_strict_json_with_null_losses(client: TestClient) -> None:
    run = create(
        client,
        dataset={"kind": "plane", "n_samples": 100},
        hidden_layers=[16],
        activation="relu",
        learning_rate=10,
        batch_size=None,
        epochs=200,
    )
    stepped = client.post(f"/api/runs/{run['id']}/step", json={"epochs": 200})
    assert stepped.status_code == 200
    diverged = strict_json(stepped.text)
    assert diverged["status"] == "diverged" and diverged["message"]
    # The manager keeps the last finite epoch (the non-finite one is not recorded);
    # whatever it serves must still be strict JSON.
    metrics = strict_json(client.get(f"/api/runs/{run['id']}/metrics").text)
    assert metrics["epoch"] == list(range(1, diverged["epoch"] + 1))
    strict_json(client.get(f"/api/runs/{run['id']}/weights").text)
    strict_json(client.get("/api/runs").text)
    assert client.post(f"/api/runs/{run['id']}/start").status_code == 409
    assert client.post(f"/api/runs/{run['id']}/step").status_code == 409


# ---- other resources ----------------------------------------------------------------------


def test_datasets(client: TestClient) -> None:
    datasets = client.get("/api/datasets").json()["datasets"]
    kinds = {d["kind"] for d in datasets}
    assert {"circle", "xor", "gauss", "spiral", "moons", "plane", "sine", "teacher"} <= kinds
    for item in datasets:
        assert {"kind", "task", "n_inputs", "n_outputs", "parameters"} <= item.keys()


def test_health(client: TestClient) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_openapi_documents_the_run_schema(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "RunPublic" in schema["components"]["schemas"]
    assert "RunCreate" in schema["components"]["schemas"]
    paths = schema["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/events"):
        assert path in paths
