"""The error mapping in one place: storage failures, run-layer refusals, method errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.runs import ProblemError, StorageError
from tests.support import LiveServer, strict_json


def test_storage_error_is_503_with_detail(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk cannot be staged portably (tests run as root, which ignores
    # read-only files), so the store's failure is raised where the manager would.
    def full_disk(*args: object) -> None:
        raise StorageError("database or disk is full")

    monkeypatch.setattr(client.app.state.manager, "create", full_disk)
    response = client.post("/api/runs", json={"start": False})
    assert response.status_code == 503
    assert "disk is full" in strict_json(response.text)["detail"]


def test_problem_error_keeps_status_detail_and_field(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise ProblemError(409, "too many runs are training", field="status")

    monkeypatch.setattr(client.app.state.manager, "list_runs", refuse)
    response = client.get("/api/runs")
    assert response.status_code == 409
    assert response.json() == {"detail": "too many runs are training", "field": "status"}


def test_wrong_method_is_json_405(client: TestClient) -> None:
    response = client.put("/api/runs")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_json_body_without_content_type_is_422(client: TestClient) -> None:
    response = client.post("/api/runs", content=b'{"start": false}')
    assert response.status_code == 422
    assert client.get("/api/runs").json()["runs"] == []


def test_413_over_a_real_connection(live_server: LiveServer) -> None:
    """uvicorn answers 413 early; the client still reads it and the server stays up."""
    limit = live_server.app.state.settings.max_body_bytes
    headers = {"content-type": "application/json"}

    def chunks() -> Iterator[bytes]:
        for _ in range(limit // (1 << 20) + 2):
            yield b" " * (1 << 20)

    with live_server.client() as client:
        declared = client.post("/api/runs", content=b" " * (limit + 1), headers=headers)
        assert declared.status_code == 413 and "detail" in declared.json()
        streamed = client.post("/api/runs", content=chunks(), headers=headers)
        assert streamed.status_code == 413
        assert client.get("/api/runs").json() == {"runs": []}
