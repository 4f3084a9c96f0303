"""Watch-only links (API.md v1.1 "Classroom"): what a key opens in token mode, what it
refuses, that it changes nothing, and that it dies with its run; the watch page and the
share dialog."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import segno
from fastapi.testclient import TestClient
from httpx_sse import connect_sse

from app.config import Settings
from app.main import create_app
from app.security import SESSION_COOKIE, session_value
from tests.support import LiveServer

TOKEN = "correct horse battery staple"
RUN = {"epochs": 20, "start": False, "dataset": {"kind": "xor", "n_samples": 20}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# What a key opens: GET of these, for its own run only.
READ_ROUTES = ["/watch/{id}", "/api/runs/{id}", "/api/runs/{id}/metrics", "/api/runs/{id}/weights"]
# A control of the live view (or its settings panel, or the diagram's edit toolbar).
CONTROL_MARKERS = [
    'id="start-stop"',
    'id="reset"',
    'id="step"',
    'id="delete"',
    'id="duplicate"',
    'id="share"',
    "hx-post",
    "predict-form",
    'class="settings-body"',
    "diagram-edit.js",
    '/draw"',
]


@pytest.fixture
def secured(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, token=TOKEN))) as client:
        yield client


def create(client: TestClient | httpx.Client) -> dict[str, Any]:
    response = client.post("/api/runs", json=RUN, headers=AUTH)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def key_of(client: TestClient | httpx.Client, run_id: str) -> str:
    response = client.get(f"/api/runs/{run_id}/viewer-key", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["url"] == f"/watch/{run_id}?key={body['key']}"
    return str(body["key"])


def state(client: TestClient, run_id: str) -> dict[str, Any]:
    run = client.get(f"/api/runs/{run_id}", headers=AUTH).json()
    weights = client.get(f"/api/runs/{run_id}/weights", headers=AUTH).json()
    return {"run": run, "weights": weights}


# ---------------------------------------------------------------- the key


def test_viewer_key_needs_the_token_and_a_run(secured: TestClient) -> None:
    run = create(secured)
    assert secured.get(f"/api/runs/{run['id']}/viewer-key").status_code == 401
    assert secured.get("/api/runs/nope/viewer-key", headers=AUTH).status_code == 404
    key = key_of(secured, run["id"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", key)  # 128 bits, URL-safe
    # A key cannot fetch keys (its own run's or another's).
    response = secured.get(f"/api/runs/{run['id']}/viewer-key", params={"key": key})
    assert response.status_code == 403


def test_the_key_is_stable_across_restarts_and_changes_with_the_token(settings: Settings) -> None:
    with TestClient(create_app(dataclasses.replace(settings, token=TOKEN))) as first:
        run_id = create(first)["id"]
        key = key_of(first, run_id)
    with TestClient(create_app(dataclasses.replace(settings, token=TOKEN))) as again:
        assert key_of(again, run_id) == key
        assert again.get(f"/api/runs/{run_id}", params={"key": key}).status_code == 200
    other = dataclasses.replace(settings, token="another token")
    with TestClient(create_app(other)) as changed:
        response = changed.get(
            f"/api/runs/{run_id}/viewer-key", headers={"Authorization": "Bearer another token"}
        )
        assert response.json()["key"] != key
        # A new token revokes every link.
        assert changed.get(f"/api/runs/{run_id}", params={"key": key}).status_code == 401


# ---------------------------------------------------------------- what a key opens


def test_a_key_opens_its_runs_read_only_routes(secured: TestClient) -> None:
    run = create(secured)
    key = key_of(secured, run["id"])
    secured.post(f"/api/runs/{run['id']}/step", json={"epochs": 3}, headers=AUTH)
    for route in READ_ROUTES:
        response = secured.get(route.format(id=run["id"]), params={"key": key})
        assert response.status_code == 200, (route, response.text)
    assert secured.get(f"/api/runs/{run['id']}", params={"key": key}).json()["epoch"] == 3
    metrics = secured.get(f"/api/runs/{run['id']}/metrics", params={"key": key}).json()
    assert metrics["epoch"] == [1, 2, 3]
    snapshots = secured.get(f"/api/runs/{run['id']}/snapshots", params={"key": key})
    assert snapshots.status_code == 200 and "epochs" in snapshots.json()


def test_a_key_for_one_run_does_not_open_another(secured: TestClient) -> None:
    run_a, run_b = create(secured), create(secured)
    key_a = key_of(secured, run_a["id"])
    for route in [*READ_ROUTES, "/ui/runs/{id}/stream", "/api/runs/{id}/events"]:
        response = secured.get(route.format(id=run_b["id"]), params={"key": key_a})
        assert response.status_code == 401, route
        assert "does not open this run" in response.text
    wrong = secured.get(f"/api/runs/{run_a['id']}", params={"key": key_a[:-1] + "x"})
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    "route",
    [
        "/api/runs",
        "/api/datasets",
        "/api/runs/{id}/data",
        "/api/runs/{id}/inspect",
        "/runs",
        "/runs/{id}",
        "/runs/{id}/inspect",
        "/runs/{id}/draw",
        "/compare",
        "/ui/runs/{id}/share",
        "/ui/runs/{id}/weight",
        "/ui/runs-table",
        "/",
    ],
)
def test_a_key_opens_nothing_else(secured: TestClient, route: str) -> None:
    run = create(secured)
    key = key_of(secured, run["id"])
    response = secured.get(route.format(id=run["id"]), params={"key": key}, follow_redirects=False)
    assert response.status_code == 403
    assert "watch-only key opens only GET" in response.json()["detail"]


CHANGES = [
    ("POST", "/api/runs/{id}/start", {}),
    ("POST", "/api/runs/{id}/step", {"epochs": 2}),
    ("POST", "/api/runs/{id}/reset", {}),
    ("POST", "/api/runs/{id}/duplicate", {}),
    ("PATCH", "/api/runs/{id}", {"learning_rate": 0.5}),
    ("PUT", "/api/runs/{id}/weights", {"layers": []}),
    ("DELETE", "/api/runs/{id}", None),
    ("POST", "/api/runs", RUN),
    ("POST", "/ui/runs/{id}/toggle", None),
    ("POST", "/ui/runs/{id}/step", None),
    ("POST", "/ui/runs/{id}/delete", None),
    ("POST", "/ui/runs/{id}/patch", None),
]


def test_a_key_changes_nothing(secured: TestClient) -> None:
    run = create(secured)
    run_id = run["id"]
    key = key_of(secured, run_id)
    before = state(secured, run_id)
    for method, route, body in CHANGES:
        response = secured.request(
            method,
            route.format(id=run_id),
            params={"key": key},
            json=body,
            headers={"HX-Request": "true"},
            follow_redirects=False,
        )
        assert response.status_code == 403, (method, route, response.status_code)
    after = state(secured, run_id)
    for part in ("run", "weights"):
        before[part].pop("updated_at", None)
        after[part].pop("updated_at", None)
    assert after == before
    assert len(secured.get("/api/runs", headers=AUTH).json()["runs"]) == 1


def test_a_key_stops_working_when_its_run_is_deleted(secured: TestClient) -> None:
    run = create(secured)
    key = key_of(secured, run["id"])
    assert secured.get(f"/api/runs/{run['id']}", params={"key": key}).status_code == 200
    assert secured.delete(f"/api/runs/{run['id']}", headers=AUTH).status_code == 204
    for route in [*READ_ROUTES, "/ui/runs/{id}/stream", "/api/runs/{id}/events"]:
        response = secured.get(route.format(id=run["id"]), params={"key": key})
        assert response.status_code == 401, route
    page = secured.get(f"/watch/{run['id']}", params={"key": key})
    assert page.headers["content-type"].startswith("text/html")
    assert "This watch link does not work" in page.text
    assert "content-security-policy" in page.headers


def test_the_key_opens_the_streams(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, token=TOKEN))
    with LiveServer(app) as server, server.client() as client:
        run = create(client)
        key = key_of(client, run["id"])
        with connect_sse(client, "GET", f"/ui/runs/{run['id']}/stream?key={key}") as source:
            assert source.response.status_code == 200
            snapshot = next(source.iter_sse())
            assert snapshot.event == "snapshot"
            assert 'data-epoch="0"' in snapshot.data
        with connect_sse(client, "GET", f"/api/runs/{run['id']}/events?key={key}") as source:
            assert source.response.status_code == 200
            assert next(source.iter_sse()).event == "snapshot"
        # Without the key: the sign-in page, as for every page without the token.
        refused = client.get(f"/ui/runs/{run['id']}/stream", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login")


# ---------------------------------------------------------------- the pages


def test_the_watch_page_has_no_control(secured: TestClient) -> None:
    run = create(secured)
    key = key_of(secured, run["id"])
    page = secured.get(f"/watch/{run['id']}", params={"key": key})
    assert page.status_code == 200
    html = page.text
    assert f'sse-connect="/ui/runs/{run["id"]}/stream?key={key}"' in html
    assert 'id="projector-toggle"' in html
    assert 'id="epoch"' in html and 'id="network"' in html and 'id="loss-chart"' in html
    for marker in CONTROL_MARKERS:
        assert marker not in html, marker
    # The control fragments' containers are empty sinks (static/classroom.js drops swaps).
    assert '<div id="controls" hidden data-watch-drop></div>' in html
    assert '<div id="live-settings" hidden data-watch-drop></div>' in html
    assert "Sign out" not in html and 'href="/runs"' not in html


def test_the_live_view_itself_has_its_controls(secured: TestClient) -> None:
    # The markers above are real: the live view (signed in) has every one of them.
    run = create(secured)
    secured.cookies.set(SESSION_COOKIE, session_value(TOKEN))
    html = secured.get(f"/runs/{run['id']}").text
    for marker in CONTROL_MARKERS:
        assert marker in html, marker


def test_without_a_token_the_watch_page_needs_no_key(client: TestClient) -> None:
    run = client.post("/api/runs", json=RUN).json()
    page = client.get(f"/watch/{run['id']}")
    assert page.status_code == 200
    assert f'sse-connect="/ui/runs/{run["id"]}/stream"' in page.text
    assert client.get("/watch/nope").status_code == 404
    assert client.get(f"/api/runs/{run['id']}/viewer-key").status_code == 200


def test_a_signed_in_teacher_opens_the_watch_page_without_a_key(secured: TestClient) -> None:
    run = create(secured)
    assert secured.get(f"/watch/{run['id']}", follow_redirects=False).status_code == 303
    secured.cookies.set(SESSION_COOKIE, session_value(TOKEN))
    assert secured.get(f"/watch/{run['id']}").status_code == 200


def test_share_dialog_shows_the_absolute_link_and_its_qr_code(secured: TestClient) -> None:
    run = create(secured)
    key = key_of(secured, run["id"])
    response = secured.get(f"/ui/runs/{run['id']}/share", headers=AUTH)
    assert response.status_code == 200
    html = response.text
    link = f"http://localhost/watch/{run['id']}?key={key}"
    assert f'value="{link}"' in html
    # The QR code encodes exactly the link shown (segno draws it; one dark path).
    drawn = re.search(r'class="qr-dark" stroke="#000" d="([^"]+)"', html)
    assert drawn is not None
    expected = segno.make(link, error="m").svg_inline(scale=1, border=4, omitsize=True)
    assert f'd="{drawn.group(1)}"' in expected
    assert "<script" not in html
    assert 'id="share-loopback"' in html  # opened as localhost: phones cannot reach it
    assert secured.get("/ui/runs/nope/share", headers=AUTH).status_code == 404


def test_share_dialog_without_loopback_warning_on_a_network_address(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, token=TOKEN, allowed_hosts=("192.0.2.7",)))
    with TestClient(app, base_url="http://192.0.2.7:8000") as client:
        run = create(client)
        html = client.get(f"/ui/runs/{run['id']}/share", headers=AUTH).text
        assert f'value="http://192.0.2.7:8000/watch/{run["id"]}?key=' in html
        assert 'id="share-loopback"' not in html
