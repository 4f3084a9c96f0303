"""Pages of the growing lists (README "How we read the contract"): `GET /api/runs` with
`limit` and `before` (newest first, `next_before` to go on), `/metrics` with `limit`."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

SMALL = {"dataset": {"kind": "xor", "n_samples": 20}, "hidden_layers": [2], "start": False}


def make_runs(client: TestClient, n: int) -> list[str]:
    """n new runs' ids, newest first."""
    ids = []
    for i in range(n):
        response = client.post("/api/runs", json={**SMALL, "name": f"run {i}"})
        assert response.status_code == 201
        ids.append(response.json()["id"])
    return ids[::-1]


def listing(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/runs", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_without_limit_every_run_comes_back(client: TestClient) -> None:
    ids = make_runs(client, 4)
    body = listing(client)
    assert body == {"runs": body["runs"]}  # the v1 body: no paging field without limit
    assert [r["id"] for r in body["runs"]] == ids


def test_pages_walk_every_run_once_newest_first(client: TestClient) -> None:
    ids = make_runs(client, 7)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        body = listing(client, **params)
        assert len(body["runs"]) <= 3
        seen += [r["id"] for r in body["runs"]]
        pages += 1
        if body["next_before"] is None:
            break
        assert body["next_before"] == body["runs"][-1]["id"]
        params["before"] = body["next_before"]
    assert seen == ids and pages == 3
    # A page that ends exactly at the last run says so.
    assert listing(client, limit=7)["next_before"] is None
    assert listing(client, before=ids[4])["runs"] == listing(client)["runs"][5:]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"before": "no-such-run"}, "before"),
    ],
)
def test_bad_paging_values_are_named(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    make_runs(client, 1)
    response = client.get("/api/runs", params=params)
    assert response.status_code == 422
    body = response.json()
    named = body.get("field") or body["detail"][0]["loc"][-1]
    assert named == field, body


def test_metrics_limit_gives_the_first_epochs_after_since(client: TestClient) -> None:
    run_id = make_runs(client, 1)[0]
    client.post(f"/api/runs/{run_id}/step", json={"epochs": 10})
    everything = client.get(f"/api/runs/{run_id}/metrics").json()
    page = client.get(f"/api/runs/{run_id}/metrics", params={"since": 3, "limit": 4}).json()
    assert page["epoch"] == [4, 5, 6, 7]
    for column, values in page.items():
        assert values == everything[column][3:7], column
    tail = client.get(f"/api/runs/{run_id}/metrics", params={"since": 8, "limit": 4}).json()
    assert tail["epoch"] == [9, 10]
    for bad in (0, -1, "x"):
        response = client.get(f"/api/runs/{run_id}/metrics", params={"limit": bad})
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "limit"]
