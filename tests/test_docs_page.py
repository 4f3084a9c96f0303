"""/docs is served from node_modules (no CDN) and starts without inline scripts."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_docs_page_uses_local_assets_only(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        assert client.get(source).status_code == 200, source
    assert "<script>" not in page.text


def test_openapi_lists_the_contract_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for route in ["/api/runs", "/api/runs/{run_id}/predict", "/api/runs/{run_id}/events"]:
        assert route in paths
