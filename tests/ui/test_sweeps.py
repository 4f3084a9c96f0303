"""The sweep page, its table (sorting, the best run), the sweeps list and the form's sweep."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from app.runs.models import RunStatus
from app.ui.sweeps import best_run_id, parse_values, sweep_rows
from tests.support import TINY_RUN, wait_run
from tests.ui.test_pages import FORM, HX


def make_sweep(client: TestClient, grid: dict, **base: object) -> dict:
    body = {"name": "lr sweep", "base": {**TINY_RUN, "epochs": 40, **base}, "grid": grid}
    response = client.post("/api/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    for run in sweep["runs"]:
        wait_run(client, run["id"], "completed")
    return client.get(f"/api/sweeps/{sweep['id']}").json()


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([0-9a-f]+)"', html)


def test_sweep_page_lists_runs_marks_the_best_and_overlays_curves(client: TestClient) -> None:
    sweep = make_sweep(client, {"learning_rate": [0.05, 0.5, 2.0]})
    html = client.get(f"/sweeps/{sweep['id']}").text
    assert "Sweep: lr sweep" in html
    assert row_ids(html) == [r["id"] for r in sweep["runs"]]
    losses = {r["id"]: r["test_loss"] for r in sweep["runs"]}
    best = min(losses, key=lambda k: losses[k])
    marked = re.findall(r'<tr data-run-id="([0-9a-f]+)" class="best"', html)
    assert marked == [best]
    # the curves of every run, on the compare chart
    for run in sweep["runs"]:
        assert f'href="/runs/{run["id"]}"' in html
    assert 'id="compare-chart"' in html
    # finished: the table no longer polls
    assert "every 1s" not in client.get(f"/ui/sweeps/{sweep['id']}/table").text


def test_table_sorts_by_any_column_both_ways(client: TestClient) -> None:
    sweep = make_sweep(client, {"learning_rate": [0.05, 0.5, 2.0]})
    by_loss = sorted(sweep["runs"], key=lambda r: r["test_loss"])
    url = f"/ui/sweeps/{sweep['id']}/table"
    assert row_ids(client.get(url, params={"sort": "test_loss"}).text) == [r["id"] for r in by_loss]
    down = client.get(url, params={"sort": "test_loss", "order": "desc"}).text
    assert row_ids(down) == [r["id"] for r in reversed(by_loss)]
    by_lr = client.get(url, params={"sort": "learning_rate", "order": "desc"}).text
    assert row_ids(by_lr) == [r["id"] for r in reversed(sweep["runs"])]
    # an unknown sort is the grid order, not an error
    unknown = client.get(url, params={"sort": "nope"}).text
    assert row_ids(unknown) == [r["id"] for r in sweep["runs"]]


def test_best_is_train_loss_without_a_test_set_and_none_without_losses() -> None:
    runs = [
        {"id": "a", "test_loss": None, "train_loss": 0.3},
        {"id": "b", "test_loss": None, "train_loss": 0.1},
        {"id": "c", "test_loss": None, "train_loss": None},
    ]
    assert best_run_id(runs) == "b"
    assert best_run_id([{"id": "c", "test_loss": None, "train_loss": None}]) is None


def test_sweeps_list_on_runs_page_and_unknown_sweep(client: TestClient) -> None:
    assert 'hx-get="/ui/sweeps-list"' in client.get("/runs").text
    assert "No sweeps yet" in client.get("/ui/sweeps-list").text
    sweep = make_sweep(client, {"seed": [1, 2]})
    listed = client.get("/ui/sweeps-list").text
    assert f'href="/sweeps/{sweep["id"]}"' in listed and "2 runs: 2 completed" in listed
    assert client.get("/sweeps/nope").status_code == 404


def test_form_creates_a_sweep_and_goes_to_its_page(client: TestClient) -> None:
    data = FORM | {
        "sweep.field1": "learning_rate",
        "sweep.values1": "0.1, 0.3",
        "sweep.field2": "activation",
        "sweep.values2": "tanh, relu",
    }
    response = client.post("/ui/sweeps", data=data, headers=HX)
    target = response.headers["HX-Redirect"]
    sweep = client.get("/api" + target).json()
    assert [r["name"] for r in sweep["runs"]] == [
        "learning_rate=0.1, activation=tanh",
        "learning_rate=0.1, activation=relu",
        "learning_rate=0.3, activation=tanh",
        "learning_rate=0.3, activation=relu",
    ]
    assert sweep["name"] == FORM["name"]
    assert sweep["base"]["epochs"] == 50 and "start" not in sweep["base"]
    client.post(f"/api{target}/stop")


def test_form_errors_name_the_field_and_make_nothing(client: TestClient) -> None:
    for extra, words in (
        ({}, "pick a field"),
        ({"sweep.field1": "learning_rate", "sweep.values1": "0.1, -3"}, "learning rate"),
        ({"sweep.field1": "seed", "sweep.values1": " , "}, "give the values of seed"),
        ({"sweep.field1": "seed", "sweep.values1": "1", "sweep.field2": "seed"}, "twice"),
    ):
        html = client.post("/ui/sweeps", data=FORM | extra, headers=HX).text
        assert 'id="error-sweep"' in html and words in html, (extra, html[:300])
    assert client.get("/api/runs").json()["runs"] == []


def test_parse_values_and_rows_of_a_queued_sweep(client: TestClient) -> None:
    assert parse_values("learning_rate", "0.1, 1e-2") == [0.1, 0.01]
    assert parse_values("seed", "1,2") == [1, 2]
    assert parse_values("activation", "tanh, relu") == ["tanh", "relu"]
    manager = client.app.state.manager  # type: ignore[attr-defined]
    body = {"base": {**TINY_RUN, "epochs": 40}, "grid": {"seed": [1]}}
    sweep = client.post("/api/sweeps", json=body).json()
    wait_run(client, sweep["runs"][0]["id"], "completed")
    rows = sweep_rows(manager.get_sweep(sweep["id"]))
    assert [r.values for r in rows] == [["1"]] and rows[0].best
    assert rows[0].status == RunStatus.completed


def test_chart_polls_only_while_runs_train_or_wait(client: TestClient) -> None:
    body = {"base": {**TINY_RUN, "epochs": 100_000, "max_epochs_per_second": 100}}
    sweep = client.post("/api/sweeps", json=body | {"grid": {"seed": [1]}}).json()
    chart = client.get(f"/ui/sweeps/{sweep['id']}/chart").text
    assert 'id="compare-live" hx-get=' in chart and "every 2s" in chart
    client.post(f"/api/sweeps/{sweep['id']}/stop")
    chart = client.get(f"/ui/sweeps/{sweep['id']}/chart").text
    assert 'id="compare-live">' in chart and "every 2s" not in chart
    assert 'id="compare-chart"' in chart
