"""/login and /logout in the token mode: safe `next`, a rate limit on failures, a body
deadline, the cookie's lifetime and Secure flag."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.login import SESSION_MAX_AGE, LoginLimiter, safe_next
from app.main import create_app
from tests.reliability.support import read_until
from tests.support import LiveServer

TOKEN = "correct horse battery staple"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secured_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, token=TOKEN, body_timeout=1.0)


@pytest.fixture
def secured(secured_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(secured_settings)) as client:
        yield client


def _sign_in(client: TestClient, token: str = TOKEN, **data: str) -> httpx.Response:
    return client.post("/login", data={"token": token, **data}, follow_redirects=False)


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "/\\/evil.example",
        "//evil.example",
        "/\t/evil.example",
        "/\x00x",
        "/caf\u00e9",
        "/ space",
        "https://evil.example/",
        "evil",
        "",
    ],
)
def test_next_falls_back_to_the_home_page(secured: TestClient, target: str) -> None:
    assert safe_next(target) == "/"
    response = _sign_in(secured, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("target", ["/", "/runs/abc?x=1", "/compare?runs=a,b#top"])
def test_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


def test_the_cookie_has_a_lifetime_and_no_secure_flag_over_http(secured: TestClient) -> None:
    cookie = _sign_in(secured).headers["set-cookie"]
    assert f"Max-Age={SESSION_MAX_AGE}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie


def test_the_cookie_is_secure_over_https(secured_settings: Settings) -> None:
    app = create_app(secured_settings)
    with TestClient(app, base_url="https://localhost") as client:
        response = client.post("/login", data={"token": TOKEN}, follow_redirects=False)
        assert "; Secure" in response.headers["set-cookie"]


def test_a_forwarded_proto_header_from_a_client_is_not_trusted(secured: TestClient) -> None:
    response = secured.post(
        "/login",
        data={"token": TOKEN},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    assert "Secure" not in response.headers["set-cookie"]


def test_failed_sign_ins_are_limited_per_address(secured: TestClient) -> None:
    clock = FakeClock()
    limiter: LoginLimiter = secured.app.state.login_limiter
    limiter.clock = clock
    for _ in range(5):
        assert _sign_in(secured, "guess").status_code == 401
    refused = _sign_in(secured, TOKEN)  # even the right token, while blocked
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "too many failed sign-ins" in refused.json()["detail"]
    assert "set-cookie" not in refused.headers
    clock.now += 30
    assert _sign_in(secured).headers["retry-after"] == "30"
    clock.now += 31
    assert _sign_in(secured).status_code == 303
    # A success forgets the failures.
    assert len(limiter) == 0


def test_the_limiter_stays_bounded() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window=60, max_clients=100, clock=clock)
    for i in range(1000):
        limiter.failed(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
    limiter.failed("10.0.0.1")
    limiter.failed("10.0.0.1")
    assert limiter.retry_after("10.0.0.1") == 60
    assert limiter.retry_after("192.0.2.1") is None


def test_a_trickled_sign_in_form_gets_408(secured_settings: Settings) -> None:
    with LiveServer(create_app(secured_settings)) as server:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(
                b"POST /login HTTP/1.1\r\nhost: localhost\r\n"
                b"content-type: application/x-www-form-urlencoded\r\n"
                b"content-length: 100\r\n\r\ntoken=co"
            )
            answer = read_until(sock, b"}")
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"sign-in form not received within 1 s" in answer
        assert time.monotonic() - started < 8


def test_sign_out_clears_the_cookie_and_the_page_offers_it(secured: TestClient) -> None:
    assert _sign_in(secured).status_code == 303
    page = secured.get("/")
    assert page.status_code == 200
    assert 'action="/logout"' in page.text
    response = secured.post(
        "/logout", headers={"Origin": "http://localhost"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert secured.get("/", follow_redirects=False).status_code == 303


def test_pages_without_a_token_have_no_sign_out(client: TestClient) -> None:
    assert 'action="/logout"' not in client.get("/").text
