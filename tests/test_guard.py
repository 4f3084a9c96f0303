"""API.md "Security in every mode": Host and cross-site checks without a token, and every
5xx as JSON with the security headers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.guard import allowed_host_names, host_name, same_origin
from app.main import create_app
from tests.support import LiveServer

RUN = {"epochs": 3, "start": False, "dataset": {"kind": "xor", "n_samples": 20}}


def _runs(client: TestClient) -> list[object]:
    return client.get("/api/runs").json()["runs"]  # type: ignore[no-any-return]


# ---- Host ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:8000", "LOCALHOST"]
)
def test_loopback_names_are_allowed_on_any_port(client: TestClient, host: str) -> None:
    assert client.get("/api/health", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example"])
def test_dns_rebinding_host_is_refused_with_400(client: TestClient, host: str) -> None:
    for method, path in [("GET", "/"), ("GET", "/api/runs"), ("POST", "/api/runs")]:
        response = client.request(method, path, headers={"Host": host}, json=RUN)
        assert response.status_code == 400
        assert "BACKPROP_LIVE_ALLOWED_HOSTS" in response.json()["detail"]
        assert response.headers["x-frame-options"] == "DENY"
    assert _runs(client) == []


def test_dns_rebinding_is_refused_by_a_real_server(live_server: LiveServer) -> None:
    with live_server.client(headers={"Host": "evil.example"}) as client:
        assert client.get("/api/runs").status_code == 400


def test_allowed_hosts_setting_replaces_the_defaults(settings: Settings) -> None:
    custom = dataclasses.replace(settings, allowed_hosts=("class.example",))
    with TestClient(create_app(custom), base_url="http://class.example:8000") as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/health", headers={"Host": "localhost"}).status_code == 400


def test_allowed_hosts_rules() -> None:
    assert allowed_host_names("127.0.0.1", None) == {"localhost", "127.0.0.1", "[::1]"}
    assert allowed_host_names("myhost.lan", None) == {
        "localhost",
        "127.0.0.1",
        "[::1]",
        "myhost.lan",
    }
    assert "[::1]" in allowed_host_names("::1", None)  # type: ignore[operator]
    # Every interface: any Host (such a server needs a token anyway) unless the list is set.
    assert allowed_host_names("0.0.0.0", None) is None
    assert allowed_host_names("::", None) is None
    assert allowed_host_names("0.0.0.0", ("a.example",)) == {"a.example"}
    assert allowed_host_names("127.0.0.1", ("*",)) is None
    assert host_name("[::1]:80") == "[::1]" and host_name("Example.COM.:1") == "example.com"


def test_a_server_on_every_interface_accepts_any_host(settings: Settings) -> None:
    anywhere = dataclasses.replace(settings, host="0.0.0.0", token="t0ken")
    with TestClient(create_app(anywhere)) as client:
        response = client.get("/api/health", headers={"Host": "203.0.113.9:8000"})
        assert response.status_code == 200


def test_allowed_hosts_come_from_the_environment() -> None:
    settings = Settings.from_env({"BACKPROP_LIVE_ALLOWED_HOSTS": "a.example, b.example:80"})
    assert settings.allowed_hosts == ("a.example", "b.example:80")
    assert allowed_host_names(settings.host, settings.allowed_hosts) == {"a.example", "b.example"}


# ---- cross-site writes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "http://localhost:9999"},  # another server on this machine
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://localhost"},
    ],
)
def test_cross_site_writes_are_refused_without_a_token(
    client: TestClient, headers: dict[str, str]
) -> None:
    response = client.post("/api/runs", json=RUN, headers=headers)
    assert response.status_code == 403
    assert "another site" in response.json()["detail"]
    assert response.headers["content-security-policy"]
    assert _runs(client) == []
    # A form post from the dashboard's own form path too.
    form = client.post("/ui/runs", data={"name": "x"}, headers=headers)
    assert form.status_code == 403
    assert _runs(client) == []


def test_cross_site_patch_and_delete_change_nothing(client: TestClient) -> None:
    run = client.post("/api/runs", json=RUN).json()
    foreign = {"Origin": "https://evil.example"}
    patched = client.patch(f"/api/runs/{run['id']}", json={"epochs": 9}, headers=foreign)
    assert patched.status_code == 403
    assert client.delete(f"/api/runs/{run['id']}", headers=foreign).status_code == 403
    assert client.get(f"/api/runs/{run['id']}").json()["config"]["epochs"] == 3


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Origin": "http://localhost"},
        {"Origin": "http://localhost:80"},
        {"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar, a bookmark
    ],
)
def test_same_origin_writes_work(client: TestClient, headers: dict[str, str]) -> None:
    assert client.post("/api/runs", json=RUN, headers=headers).status_code == 201


def test_cross_site_reads_work(client: TestClient) -> None:
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    assert client.get("/api/runs", headers=headers).status_code == 200
    assert client.get("/", headers=headers).status_code == 200


def test_same_origin_compares_host_and_port() -> None:
    assert same_origin("http://127.0.0.1:8000", "127.0.0.1:8000")
    # Behind a TLS proxy the browser says https while the server sees http.
    assert same_origin("https://class.example", "class.example")
    assert same_origin("https://class.example:443", "class.example")
    assert not same_origin("http://127.0.0.1:8001", "127.0.0.1:8000")
    assert not same_origin("http://127.0.0.1:8000/path", "127.0.0.1:8000")
    assert not same_origin("null", "127.0.0.1:8000")


# ---- 5xx -----------------------------------------------------------------------------------


@pytest.fixture
def failing(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal state")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_unhandled_error_is_json_with_the_security_headers(failing: TestClient) -> None:
    response = failing.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert "internal server error" in response.json()["detail"]
    assert "secret" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    # The server carries on.
    assert failing.get("/api/health").status_code == 200
