"""Bad input over real HTTP: malformed SSE requests, huge and malformed custom datasets.

Each case gets a clear 4xx and leaves the server unchanged and answering.
(Body slow-loris and the size limit: test_limits.py; the schema at large: test_fuzz.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from tests.pg import module_database
from tests.support import TINY_RUN, LiveServer, strict_json

MAX_SAMPLES = 100_000
MAX_WIDTH = 4096


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_database(request, tmp_path_factory.mktemp("bad-input")) as db:
        settings = Settings.from_env({}, db=db, checkpoint_interval=0.5, sse_ping_interval=1.0)
        with LiveServer(create_app(settings)) as live:
            yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        before = http.get("/api/runs").json()
        yield http
        # The server is unaffected: it answers, and nothing was half-made.
        assert http.get("/api/health").status_code == 200
        after = http.get("/api/runs").json()
        assert after == before or len(after["runs"]) == len(before["runs"]) + 1


def _custom(x: Any, y: Any, task: str = "classification") -> dict[str, Any]:
    return {"dataset": {"kind": "custom", "task": task, "x": x, "y": y}, "start": False}


def _refused(client: httpx.Client, body: Any, status: int = 422) -> dict[str, Any]:
    before = client.get("/api/runs").json()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/api/runs", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text[:500]
    payload: dict[str, Any] = strict_json(response.content)
    assert payload["detail"]
    assert client.get("/api/runs").json() == before
    return payload


BAD_DATASETS = {
    "100,001 samples": _custom([[0.0]] * (MAX_SAMPLES + 1), [0, 1] * 50_000 + [0]),
    "ragged rows": _custom([[0.0, 1.0], [1.0], [0.5, 0.5]], [0, 1, 0]),
    "NaN strings": _custom([["NaN", 1.0], [0.0, 1.0]], [0, 1]),
    "Infinity strings": _custom([[0.0], [1.0]], ["Infinity", 1.0], task="regression"),
    "4,097 inputs": _custom([[0.0] * (MAX_WIDTH + 1)] * 2, [0, 1]),
    "4,097 regression outputs": _custom(
        [[0.0], [1.0]], [[0.0] * (MAX_WIDTH + 1)] * 2, "regression"
    ),
    "negative label": _custom([[0.0], [1.0]], [-1, 1]),
    "fractional label": _custom([[0.0], [1.0]], [0.5, 1]),
    "one class only": _custom([[0.0], [1.0]], [0, 0]),
    "label far out of range": _custom([[0.0], [1.0]], [0, 10**30]),
    "more classes than outputs allowed": _custom([[0.0], [1.0]], [0, MAX_WIDTH + 1]),
    "x and y lengths differ": _custom([[0.0], [1.0], [2.0]], [0, 1]),
    "one sample": _custom([[0.0]], [0]),
    "no samples": _custom([], []),
    "empty rows": _custom([[], []], [0, 1]),
    "x not a matrix": _custom("0,1;1,0", [0, 1]),
    "nested too deep": _custom([[[0.0]], [[1.0]]], [0, 1]),
    "unknown task": _custom([[0.0], [1.0]], [0, 1], task="clustering"),
    "x missing": {"dataset": {"kind": "custom", "task": "regression", "y": [1, 2]}, "start": False},
}


@pytest.mark.parametrize("body", BAD_DATASETS.values(), ids=BAD_DATASETS.keys())
def test_bad_custom_dataset_is_422(client: httpx.Client, body: dict[str, Any]) -> None:
    _refused(client, body)


def test_limits_themselves_are_accepted(client: httpx.Client) -> None:
    """100,000 samples and 4,096 inputs are in bounds (then deleted again)."""
    for body in (
        _custom([[0.0], [1.0]] * (MAX_SAMPLES // 2), [0, 1] * (MAX_SAMPLES // 2)),
        {**_custom([[0.0] * MAX_WIDTH, [1.0] * MAX_WIDTH], [0, 1]), "hidden_layers": [2]},
    ):
        response = client.post("/api/runs", json=body)
        assert response.status_code == 201, response.text[:500]
        assert client.delete(f"/api/runs/{response.json()['id']}").status_code == 204


def test_a_33_mb_dataset_is_413(client: httpx.Client) -> None:
    row = [0.123456789, 0.987654321]
    rows = 33 * 1024 * 1024 // (len(json.dumps(row)) + 5) + 1
    body = json.dumps(_custom([row] * rows, [0, 1] * (rows // 2) + [0] * (rows % 2)))
    assert len(body) > 33 * 1024 * 1024
    _refused(client, body.encode(), status=413)


def test_malformed_json_and_wrong_types_are_422(client: httpx.Client) -> None:
    for raw in (b"{", b"[1, 2]", b'"run"', b"null null", b"\xff\xfe", b"{" * 100_000):
        _refused(client, raw)


@pytest.mark.parametrize(
    ("header", "expected_epochs"),
    [
        ("not-a-number", 12),
        ("1e3", 12),
        ("+7", 5),
        ("7.5", 12),
        ("0x10", 12),
        ("", 12),
        ("99999999999999999999999999999", 0),
        ("9" * 5000, 12),  # beyond Python's int-parsing digit limit: ignored
    ],
)
def test_malformed_last_event_id_is_ignored_or_clamped(
    server: LiveServer, header: str, expected_epochs: int
) -> None:
    with server.client() as client:
        run = client.post("/api/runs", json={**TINY_RUN, "epochs": 12, "start": False}).json()
        client.post(f"/api/runs/{run['id']}/step", json={"epochs": 12})
        try:
            with client.stream(
                "GET", f"/api/runs/{run['id']}/events", headers={"last-event-id": header}
            ) as response:
                assert response.status_code == 200
                lines = response.iter_lines()
                assert next(lines) == "event: snapshot"
                event_id = int(next(lines).removeprefix("id: "))
                data = strict_json(next(lines).removeprefix("data: "))
                assert len(data["metrics"]["epoch"]) == expected_epochs
                assert event_id >= 12  # the id never goes back below what the client has
        finally:
            client.delete(f"/api/runs/{run['id']}")


def test_events_of_a_malformed_run_id_is_404(client: httpx.Client) -> None:
    for run_id in ("..", "%00", "x" * 5000, "%2e%2e%2fapi", "' OR 1=1 --"):
        response = client.get(f"/api/runs/{run_id}/events")
        assert response.status_code in (404, 422), (run_id, response.status_code)
        assert strict_json(response.content)["detail"]


def test_a_name_with_a_nul_character_is_refused_in_words(client: httpx.Client) -> None:
    """No text column can hold NUL (PostgreSQL refuses it): a 422 naming the field on
    every store, never the database's 503."""
    payload = _refused(client, {**TINY_RUN, "name": "a\x00b", "start": False})
    assert "name" in str(payload["detail"]) and "NUL" in str(payload["detail"])
    kept = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
    patched = client.patch(f"/api/runs/{kept['id']}", json={"name": "\x00"})
    assert patched.status_code == 422 and "NUL" in patched.text, patched.text
    sweep = {"name": "s\x00", "base": {**TINY_RUN, "epochs": 2}, "grid": {"seed": [1]}}
    refused = client.post("/api/sweeps", json=sweep)
    assert refused.status_code == 422 and "NUL" in refused.text, refused.text
    client.delete(f"/api/runs/{kept['id']}")
