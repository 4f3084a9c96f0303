"""Top-level fixtures: settings on a temporary database, a TestClient, a live server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.pg import on_postgres, postgres_cluster, postgres_url
from tests.support import LiveServer

__all__ = ["postgres_cluster", "postgres_url"]  # fixtures of tests/pg.py, for every test


@pytest.fixture(autouse=True)
def _test_clients_ask_for_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every TestClient sends ``Host: localhost`` unless told otherwise.

    Its default, ``testserver``, is not one of the server's names: the Host check
    (API.md "Security in every mode") would refuse it with 400.
    """
    original = TestClient.__init__

    def init(self: TestClient, app: Any, base_url: str = "http://localhost", **kw: Any) -> None:
        original(self, app, base_url, **kw)

    monkeypatch.setattr(TestClient, "__init__", init)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The test's own empty database: a SQLite file in its temporary folder, or a
    PostgreSQL database of the session's cluster when BACKPROP_LIVE_TEST_DB=postgresql."""
    if on_postgres():
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "test.db")


@pytest.fixture
def settings(database: str) -> Settings:
    """Settings on a fresh database (see `database`).

    Short checkpoint and ping intervals keep the tests quick; everything else
    is the default.
    """
    return Settings.from_env({}, db=database, checkpoint_interval=0.5, sse_ping_interval=1.0)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """TestClient over create_app(settings), with the lifespan (store, manager) running."""
    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """A real uvicorn server on a free loopback port (for SSE and other streaming)."""
    with LiveServer(create_app(settings)) as server:
        yield server
