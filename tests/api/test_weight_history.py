"""API.md v1.1 "Weight history": which epochs are kept, `/weights?epoch=E` equal to a
fresh run at that epoch, durability, and what clears them."""

from __future__ import annotations

import itertools
from typing import Any

from fastapi.testclient import TestClient

from app.main import create_app
from app.runs.controls import snapshot_due
from tests.support import TINY_RUN, wait_run


def create(client: TestClient, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**TINY_RUN, "start": False, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def kept(client: TestClient, run_id: str) -> list[int]:
    return client.get(f"/api/runs/{run_id}/snapshots").json()["epochs"]


def test_the_kept_epochs_follow_the_contract(client: TestClient) -> None:
    run = create(client, epochs=300)
    client.post(f"/api/runs/{run['id']}/start")
    wait_run(client, run["id"], "completed")
    epochs = kept(client, run["id"])
    assert epochs[:21] == list(range(21)) and epochs[-1] == 300
    # No two kept epochs further apart than 2 % of the run's epoch + 10.
    assert all(b - a <= 0.02 * 300 + 10 for a, b in itertools.pairwise(epochs))
    assert len(epochs) < 60  # and not every epoch


def test_a_snapshot_equals_a_fresh_run_at_its_epoch(client: TestClient) -> None:
    run = create(client, epochs=80)
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 80})
    epochs = kept(client, run["id"])
    twin = create(client, epochs=80, name="twin")
    done = 0
    for epoch in (0, 7, epochs[25], 80):
        assert epoch in epochs
        if epoch > done:
            client.post(f"/api/runs/{twin['id']}/step", json={"epochs": epoch - done})
            done = epoch
        snap = client.get(f"/api/runs/{run['id']}/weights", params={"epoch": epoch}).json()
        fresh = client.get(f"/api/runs/{twin['id']}/weights").json()
        assert snap == fresh  # bit for bit in the JSON, `epoch` included
    between = epochs[25] + 1
    assert between not in epochs
    nearest = client.get(f"/api/runs/{run['id']}/weights", params={"epoch": between}).json()
    assert nearest["epoch"] == epochs[25]
    bad = client.get(f"/api/runs/{run['id']}/weights", params={"epoch": -1})
    assert bad.status_code == 422


def test_snapshots_are_durable_and_cleared_by_reset_and_reshape(
    client: TestClient, settings: Any
) -> None:
    run = create(client, epochs=40)
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 30})
    before = kept(client, run["id"])
    with TestClient(create_app(settings), base_url="http://localhost") as restarted:
        assert kept(restarted, run["id"]) == before
    client.post(f"/api/runs/{run['id']}/reset")
    assert kept(client, run["id"]) == []
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 3})
    assert kept(client, run["id"]) == [0, 1, 2, 3]
    client.patch(f"/api/runs/{run['id']}", json={"hidden_layers": [3]})
    assert kept(client, run["id"]) == []


def test_a_large_net_keeps_at_least_ten_spread_over_its_run(client: TestClient) -> None:
    run = create(
        client, hidden_layers=[320, 320], epochs=30, dataset={"kind": "xor", "n_samples": 40}
    )
    assert run["n_params"] > 100_000
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 30})
    epochs = kept(client, run["id"])
    assert len(epochs) >= 10 and epochs[0] == 0 and epochs[-1] == 30
    assert len(epochs) < 31


def test_the_policy_never_lets_a_gap_grow_past_its_bound() -> None:
    last, worst = 0, 0.0
    for epoch in range(1, 100_001):
        if snapshot_due(epoch, last, 105, 100_000):
            worst = max(worst, (epoch - last) / (0.02 * epoch + 10))
            last = epoch
    assert worst <= 1.0
