"""API.md v1.1 "Training controls": learning-rate schedules (the `learning_rate` metric
column), target_loss and early_stopping, with the real trainer."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.nn.schedules import scheduled_rate
from tests.support import TINY_RUN, strict_json


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**TINY_RUN, "start": False, **fields})
    assert response.status_code == 201, response.text
    return strict_json(response.text)


def step(client: TestClient, run_id: str, epochs: int) -> dict[str, Any]:
    response = client.post(f"/api/runs/{run_id}/step", json={"epochs": epochs})
    assert response.status_code == 200, response.text
    return strict_json(response.text)


def metrics(client: TestClient, run_id: str) -> dict[str, Any]:
    return strict_json(client.get(f"/api/runs/{run_id}/metrics").text)


def test_each_epoch_records_the_rate_its_schedule_gives(client: TestClient) -> None:
    schedule = {"kind": "step", "step_size": 2, "gamma": 0.5}
    run = create(client, epochs=40, lr_schedule=schedule, learning_rate=0.4)
    assert run["config"]["lr_schedule"] == schedule
    step(client, run["id"], 5)
    assert metrics(client, run["id"])["learning_rate"] == pytest.approx(
        [scheduled_rate(e, 0.4, schedule) for e in range(1, 6)]
    )
    # A PATCHed learning rate replaces the base rate from the next epoch on.
    client.patch(f"/api/runs/{run['id']}", json={"learning_rate": 0.2})
    step(client, run["id"], 2)
    assert metrics(client, run["id"])["learning_rate"][5:] == pytest.approx(
        [scheduled_rate(e, 0.2, schedule) for e in (6, 7)]
    )


def test_a_cosine_period_defaults_to_the_runs_epochs(client: TestClient) -> None:
    run = create(client, epochs=30, lr_schedule={"kind": "cosine"})
    assert run["config"]["lr_schedule"] == {"kind": "cosine", "period": 30, "min_lr": 0.0}
    patched = client.patch(f"/api/runs/{run['id']}", json={"lr_schedule": {"kind": "cosine"}})
    assert patched.json()["config"]["lr_schedule"]["period"] == 30
    assert patched.json()["epoch"] == 0 and patched.json()["status"] == "created"


def test_schedules_are_the_same_whether_stepped_at_once_or_in_pieces(client: TestClient) -> None:
    body = {"epochs": 12, "lr_schedule": {"kind": "exponential", "gamma": 0.8}}
    whole, pieces = create(client, **body), create(client, **body)
    step(client, whole["id"], 12)
    for _ in range(4):
        step(client, pieces["id"], 3)
    assert metrics(client, whole["id"]) == metrics(client, pieces["id"])


def test_target_loss_completes_the_run(client: TestClient) -> None:
    probe = create(client, epochs=200)
    losses = [None, *metrics_after(client, probe["id"], 200)["train_loss"]]
    target = losses[60]
    first = next(e for e in range(1, 201) if losses[e] <= target)
    run = create(client, epochs=200, target_loss=target)
    done = step(client, run["id"], 200)
    assert done["status"] == "completed" and done["epoch"] == first
    assert f"at epoch {first}" in done["message"]


def metrics_after(client: TestClient, run_id: str, epochs: int) -> dict[str, Any]:
    step(client, run_id, epochs)
    return metrics(client, run_id)


def _early_run(client: TestClient) -> dict[str, Any]:
    return create(
        client,
        dataset={"kind": "xor", "n_samples": 40, "noise": 0.5},
        hidden_layers=[16],
        learning_rate=2.0,
        epochs=3000,
        early_stopping={"patience": 15, "min_delta": 0.001},
        dtype="float64",
    )


def test_early_stopping_keeps_the_best_epochs_weights(client: TestClient) -> None:
    run = _early_run(client)
    done = step(client, run["id"], 3000)
    assert done["status"] == "completed" and done["epoch"] < 3000, done
    history = metrics(client, run["id"])
    assert history["epoch"] == list(range(1, done["epoch"] + 1))  # every epoch kept
    best = int(done["message"].rsplit(" ", 1)[1])
    assert best == done["epoch"] - 15
    test_loss = history["test_loss"]
    assert all(t >= test_loss[best - 1] - 0.001 for t in test_loss[best:])
    # The weights are those a fresh run shows at the best epoch, bit for bit.
    twin = create(client, **{**run["config"], "early_stopping": None, "name": "twin"})
    step(client, twin["id"], best)
    weights = client.get(f"/api/runs/{run['id']}/weights").json()
    assert weights["layers"] == client.get(f"/api/runs/{twin['id']}/weights").json()["layers"]
    out = client.post(f"/api/runs/{run['id']}/predict", json={"inputs": [[0.3, -0.2]]}).json()
    twin_out = client.post(f"/api/runs/{twin['id']}/predict", json={"inputs": [[0.3, -0.2]]})
    assert out == twin_out.json()


def test_early_stopping_survives_a_run_stepped_in_pieces(client: TestClient) -> None:
    whole = step(client, _early_run(client)["id"], 3000)
    pieces = _early_run(client)
    while (state := step(client, pieces["id"], 7))["status"] != "completed":
        pass
    assert state["epoch"] == whole["epoch"] and state["message"] == whole["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lr_schedule": {"kind": "step", "gamma": 0.5}}, "lr_schedule"),
        ({"lr_schedule": {"kind": "step", "step_size": 1, "gamma": 1.5}}, "lr_schedule"),
        ({"lr_schedule": {"kind": "warmup"}}, "lr_schedule"),
        ({"target_loss": 0}, "target_loss"),
        ({"early_stopping": {"patience": 0}}, "early_stopping"),
        ({"early_stopping": {"patience": 3, "min_delta": -1}}, "early_stopping"),
    ],
)
def test_bad_controls_are_refused_naming_the_field(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/runs", json={**TINY_RUN, **body})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][1] == field


def test_the_live_view_names_the_best_epoch_by_the_runs_own_rule(client: TestClient) -> None:
    run = _early_run(client)
    done = step(client, run["id"], 3000)
    best = int(done["message"].rsplit(" ", 1)[1])
    frames, manager = client.app.state.ui.frames, client.app.state.manager

    async def render() -> str:
        return (await frames.current_async(manager, run["id"])).fragments["stats"]

    stats = client.portal.call(render)
    assert f'id="best-epoch">{best:,} (' in stats
    plain = create(client)
    step(client, plain["id"], 3)
    assert (
        "best-epoch"
        not in client.portal.call(lambda: frames.current_async(manager, plain["id"])).fragments[
            "stats"
        ]
    )
