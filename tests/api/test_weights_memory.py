"""The weights cache seen through the API: /api/diagnostics counts it, reads reload."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app

HIDDEN = [512, 512]  # 2·512 + 512 + 512² + 512 + 512 + 1 = 264,705 float32 params ≈ 1.01 MB


@pytest.fixture
def small_cache(settings: Settings) -> Iterator[TestClient]:
    """A 1 MB budget: one of these runs' weights is already over it."""
    with TestClient(create_app(dataclasses.replace(settings, weights_cache_mb=1))) as client:
        yield client


def cache(client: TestClient) -> dict[str, int]:
    response = client.get("/api/diagnostics")
    assert response.status_code == 200
    return response.json()["manager"]["weights_cache"]


def test_diagnostics_report_the_cache_and_idle_runs_give_their_weights_back(
    small_cache: TestClient,
) -> None:
    client = small_cache
    body = {"dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": HIDDEN, "start": False}
    ids = [client.post("/api/runs", json=body | {"seed": i}).json()["id"] for i in range(3)]
    stats = cache(client)  # each new run holds its creation weights: the newest stays
    assert stats["entries"] == 1 and stats["bytes"] == 264_705 * 4
    assert stats["budget_bytes"] == 2**20 and stats["loads"] == 0 and stats["evictions"] == 2
    first = client.get(f"/api/runs/{ids[0]}/weights").content
    assert cache(client)["loads"] == 1  # evicted when the others came: read from the store
    for run_id in ids[1:]:
        predicted = client.post(f"/api/runs/{run_id}/predict", json={"inputs": [[0.5, -0.5]]})
        assert predicted.status_code == 200
        stats = cache(client)
        assert stats["entries"] == 1  # the one just used, over budget on its own
    assert stats["evictions"] == 5 and stats["loads"] == 3
    # Read again from the store: the same weights, byte for byte.
    assert client.get(f"/api/runs/{ids[0]}/weights").content == first
    assert cache(client)["loads"] == 4
    client.delete(f"/api/runs/{ids[0]}")
    assert cache(client) | {"evictions": 0} == {
        "budget_bytes": 2**20,
        "bytes": 0,
        "entries": 0,
        "pinned_bytes": 0,
        "pinned_entries": 0,
        "loads": 4,
        "evictions": 0,
    }
    jobs = client.get("/api/diagnostics").json()["manager"]["jobs"]
    assert jobs["limit"] == 2 and jobs["running"] == 0 and jobs["done"] >= 4
