"""POST/GET/stop/DELETE /api/sweeps (API.md v1.1 "Sweeps and the `queued` status")."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from app.config import Settings
from app.main import create_app
from tests.support import TINY_RUN, LiveServer, strict_json, wait_run

BASE = {**TINY_RUN, "epochs": 20_000, "max_epochs_per_second": 200}


@pytest.fixture
def one_slot(database: str) -> Settings:
    return Settings.from_env({}, db=database, checkpoint_interval=0.5, max_running_runs=1)


@pytest.fixture
def app_client(one_slot: Settings) -> TestClient:
    with TestClient(create_app(one_slot)) as client:
        yield client


def test_grid_product_names_order_and_queue(app_client: TestClient) -> None:
    body = {
        "name": "lr by layers",
        "base": BASE,
        "grid": {"learning_rate": [0.1, 0.5], "hidden_layers": [[8, 8], [4]]},
    }
    response = app_client.post("/api/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert set(sweep) == {"id", "name", "grid", "base", "runs", "created_at"}
    assert sweep["name"] == "lr by layers"
    assert sweep["grid"] == body["grid"] and sweep["base"] == BASE
    names = [r["name"] for r in sweep["runs"]]
    assert names == [
        "learning_rate=0.1, hidden_layers=[8, 8]",
        "learning_rate=0.1, hidden_layers=[4]",
        "learning_rate=0.5, hidden_layers=[8, 8]",
        "learning_rate=0.5, hidden_layers=[4]",
    ]
    configs = [(r["config"]["learning_rate"], r["config"]["hidden_layers"]) for r in sweep["runs"]]
    assert configs == [(0.1, [8, 8]), (0.1, [4]), (0.5, [8, 8]), (0.5, [4])]
    # one slot: the first runs, the rest wait
    assert [r["status"] for r in sweep["runs"]] == ["running", "queued", "queued", "queued"]
    assert app_client.get(f"/api/sweeps/{sweep['id']}").json()["runs"][1]["status"] == "queued"
    listed = app_client.get("/api/sweeps").json()["sweeps"]
    assert [s["id"] for s in listed] == [sweep["id"]]
    # stop: the queued ones first, then the running one
    stopped = app_client.post(f"/api/sweeps/{sweep['id']}/stop").json()
    assert {r["status"] for r in stopped["runs"]} == {"stopped"}
    assert app_client.delete(f"/api/sweeps/{sweep['id']}").status_code == 204
    assert app_client.get(f"/api/sweeps/{sweep['id']}").status_code == 404
    assert app_client.get("/api/runs").json()["runs"] == []
    assert app_client.get("/api/sweeps").json() == {"sweeps": []}


def test_empty_grid_is_one_run_and_newest_sweep_first(app_client: TestClient) -> None:
    first = app_client.post(
        "/api/sweeps", json={"base": {**TINY_RUN, "epochs": 5, "name": "solo"}}
    ).json()
    assert len(first["runs"]) == 1 and first["runs"][0]["name"] == "solo"
    second = app_client.post("/api/sweeps", json={"base": TINY_RUN, "grid": {"seed": [1]}})
    assert second.status_code == 201
    ids = [s["id"] for s in app_client.get("/api/sweeps").json()["sweeps"]]
    assert ids == [second.json()["id"], first["id"]]
    wait_run(app_client, first["runs"][0]["id"], "completed")
    app_client.post(f"/api/sweeps/{second.json()['id']}/stop")


def test_more_than_64_runs_is_422(app_client: TestClient) -> None:
    grid = {"seed": list(range(13)), "learning_rate": [0.1, 0.2, 0.3, 0.4, 0.5]}
    response = app_client.post("/api/sweeps", json={"base": TINY_RUN, "grid": grid})
    assert response.status_code == 422
    assert response.json()["field"] == "grid"
    assert "65" in response.json()["detail"]
    assert app_client.get("/api/runs").json()["runs"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grid": {"learning_rate": [0.1, -1.0]}}, "grid.learning_rate"),
        ({"grid": {"hidden_layers": [[4], [4, 5000]]}}, "grid.hidden_layers.1"),
        ({"grid": {"colour": [1, 2]}}, "grid.colour"),
        ({"grid": {"seed": []}}, "grid.seed"),
        ({"base": {"epochs": 0}, "grid": {"seed": [1, 2]}}, "base.epochs"),
        ({"base": {"start": True}}, "base.start"),
        (
            {"grid": {"features": [["x1"], ["sin_x1"]]}, "base": {"dataset": {"kind": "sine"}}},
            "grid.features",
        ),
    ],
)
def test_a_bad_value_anywhere_is_422_naming_the_field_and_nothing_is_made(
    app_client: TestClient, body: dict, field: str
) -> None:
    body = {**body, "base": {**TINY_RUN, **body.get("base", {})}}
    response = app_client.post("/api/sweeps", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert app_client.get("/api/runs").json()["runs"] == []
    assert app_client.get("/api/sweeps").json() == {"sweeps": []}


def test_a_bad_combination_is_named_in_plain_words(app_client: TestClient) -> None:
    body = {"base": TINY_RUN, "grid": {"seed": [1], "learning_rate": [0.1, -1.0]}}
    detail = app_client.post("/api/sweeps", json=body).json()["detail"]
    assert detail.startswith("learning rate: must be greater than 0")
    assert "(in the grid, with seed=1, learning_rate=-1.0)" in detail


def test_stored_runs_limit_holds(database: str) -> None:
    settings = Settings.from_env({}, db=database, max_stored_runs=3)
    with TestClient(create_app(settings)) as client:
        body = {"base": {**TINY_RUN, "epochs": 5}, "grid": {"seed": [1, 2, 3, 4]}}
        response = client.post("/api/sweeps", json=body)
        assert response.status_code == 409
        assert client.get("/api/runs").json()["runs"] == []


def test_queued_run_stops_and_a_stopped_sweep_run_requeues(app_client: TestClient) -> None:
    sweep = app_client.post("/api/sweeps", json={"base": BASE, "grid": {"seed": [1, 2]}}).json()
    running, queued = (r["id"] for r in sweep["runs"])
    stopped = app_client.post(f"/api/runs/{queued}/stop").json()
    assert stopped["status"] == "stopped"
    # no free slot: starting a sweep's run queues it again
    assert app_client.post(f"/api/runs/{queued}/start").json()["status"] == "queued"
    assert app_client.post(f"/api/runs/{queued}/start").json()["status"] == "queued"
    # a plain run keeps its 409
    plain = app_client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
    assert app_client.post(f"/api/runs/{plain['id']}/start").status_code == 409
    # once the running one stops, the queued one takes its slot
    app_client.post(f"/api/runs/{running}/stop")
    assert wait_run(app_client, queued, "running")["status"] == "running"
    app_client.post(f"/api/sweeps/{sweep['id']}/stop")


def test_unknown_sweep_is_404(app_client: TestClient) -> None:
    for method, path in (("get", ""), ("post", "/stop"), ("delete", "")):
        response = app_client.request(method.upper(), f"/api/sweeps/nope{path}")
        assert response.status_code == 404
        assert "sweep" in response.json()["detail"]


@pytest.fixture
def settings(one_slot: Settings) -> Settings:
    """`live_server` on one training slot."""
    return one_slot


def test_a_queued_runs_stream_stays_open_and_sends_once_it_runs(live_server: LiveServer) -> None:
    with live_server.client() as client:
        sweep = client.post("/api/sweeps", json={"base": BASE, "grid": {"seed": [1, 2]}}).json()
        running, queued = (r["id"] for r in sweep["runs"])
        with connect_sse(client, "GET", f"/api/runs/{queued}/events") as source:
            stream = source.iter_sse()
            first = next(stream)
            assert first.event == "snapshot"
            assert strict_json(first.data)["run"]["status"] == "queued"
            assert client.post(f"/api/runs/{running}/stop").json()["status"] == "stopped"
            seen = []
            for sse in stream:
                seen.append((sse.event, strict_json(sse.data)))
                if sse.event == "epoch":
                    break
        assert ("status", {"status": "running", "message": None}) in seen
        assert seen[-1][1]["metrics"]["epoch"][0] == 1
        client.post(f"/api/sweeps/{sweep['id']}/stop")


def test_deleting_one_run_leaves_the_rest_of_the_sweep(app_client: TestClient) -> None:
    body = {"base": {**TINY_RUN, "epochs": 5}, "grid": {"seed": [1, 2]}}
    sweep = app_client.post("/api/sweeps", json=body).json()
    first, second = (r["id"] for r in sweep["runs"])
    wait_run(app_client, second, "completed")
    assert app_client.delete(f"/api/runs/{first}").status_code == 204
    left = app_client.get(f"/api/sweeps/{sweep['id']}").json()["runs"]
    assert [r["id"] for r in left] == [second]
