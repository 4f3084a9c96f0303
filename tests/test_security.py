"""Security headers on every response, and the token mode for shared servers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from app.security import SESSION_COOKIE, session_value

TOKEN = "correct horse battery staple"
RUN = {"epochs": 3, "start": False, "dataset": {"kind": "xor", "n_samples": 20}}


@pytest.fixture
def secured(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(dataclasses.replace(settings, token=TOKEN))) as client:
        yield client


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("path", ["/", "/api/health", "/api/runs", "/static/app.css", "/nope"])
def test_security_headers_on_every_response(client: TestClient, path: str) -> None:
    response = client.get(path)
    csp = response.headers["content-security-policy"]
    script_src = csp.split("script-src")[1].split(";")[0]
    assert script_src.strip() == "'self'"
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


def test_pages_have_no_inline_scripts(client: TestClient) -> None:
    html = client.get("/").text
    # Every <script> must load a file: the CSP forbids inline code.
    for chunk in html.split("<script")[1:]:
        tag = chunk.split(">", 1)[0]
        assert "src=" in tag, f"inline script: <script{tag}>"


def test_without_token_everything_is_open(client: TestClient) -> None:
    assert client.get("/api/runs").status_code == 200
    assert client.post("/api/runs", json=RUN).status_code == 201


@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"Authorization": "Basic " + TOKEN}, {"Authorization": "Bearer"}],
)
def test_api_refuses_missing_or_wrong_token(secured: TestClient, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/api/runs"), ("POST", "/api/runs"), ("GET", "/api/datasets")]:
        response = secured.request(method, path, headers=headers, json=RUN)
        assert response.status_code == 401
        assert response.json() == {
            "detail": "authentication required: send Authorization: Bearer <token>"
        }
        assert TOKEN not in response.text
        assert response.headers["www-authenticate"] == "Bearer"
    assert secured.get("/api/runs", headers=bearer()).json() == {"runs": []}


def test_health_and_static_stay_public(secured: TestClient) -> None:
    assert secured.get("/api/health").json() == {"status": "ok"}
    assert secured.get("/static/vendor/htmx/htmx.min.js").status_code == 200


def test_bearer_token_allows_every_call(secured: TestClient) -> None:
    created = secured.post("/api/runs", json=RUN, headers=bearer())
    assert created.status_code == 201
    run_id = created.json()["id"]
    stepped = secured.post(f"/api/runs/{run_id}/step", json={"epochs": 2}, headers=bearer())
    assert stepped.json()["epoch"] == 2
    assert secured.post(f"/api/runs/{run_id}/step", json={"epochs": 1}).status_code == 401


def test_pages_redirect_to_sign_in(secured: TestClient) -> None:
    response = secured.get("/compare?runs=a,b", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcompare%3Fruns%3Da%2Cb"
    login = secured.get(response.headers["location"])
    assert login.status_code == 200 and 'name="token"' in login.text


def test_wrong_token_at_sign_in_sets_no_cookie(secured: TestClient) -> None:
    response = secured.post("/login", data={"token": "guess"}, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert secured.get("/", follow_redirects=False).status_code == 303


def test_sign_in_sets_a_strict_httponly_cookie_that_is_not_the_token(secured: TestClient) -> None:
    response = secured.post(
        "/login", data={"token": TOKEN, "next": "/compare"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/compare"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie and session_value(TOKEN) in cookie
    assert secured.get("/").status_code == 200
    assert secured.get("/api/runs").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_sign_in_never_redirects_off_site(secured: TestClient, target: str) -> None:
    response = secured.post("/login", data={"token": TOKEN, "next": target}, follow_redirects=False)
    assert response.headers["location"] == "/"


def test_cookie_mutations_need_the_htmx_header_and_same_origin(secured: TestClient) -> None:
    secured.cookies.set(SESSION_COOKIE, session_value(TOKEN))
    # A plain cross-site form post carries neither the header nor our origin.
    refused = secured.post("/api/runs", json=RUN)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    foreign = secured.post(
        "/api/runs", json=RUN, headers={"HX-Request": "true", "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    same = secured.post(
        "/api/runs", json=RUN, headers={"HX-Request": "true", "Origin": "http://localhost"}
    )
    assert same.status_code == 201
    assert secured.get("/api/runs").status_code == 200  # reads need no header


def test_forged_cookie_is_refused(secured: TestClient) -> None:
    secured.cookies.set(SESSION_COOKIE, TOKEN)
    assert secured.get("/api/runs").status_code == 401
