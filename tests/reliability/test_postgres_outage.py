"""PostgreSQL going away under a running server: a 503 whose detail says so (never a
500), and connections the server dropped are replaced without a failed request."""

from __future__ import annotations

import sys

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.pg import Cluster
from tests.support import TINY_RUN

# Every test needs the cluster: it skips without PostgreSQL or psycopg (fails under CI).
pytestmark = pytest.mark.usefixtures("postgres_cluster")


def _admin(cluster: Cluster, sql: str) -> None:
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(sql)


def test_connections_dropped_by_the_server_cost_no_request(postgres_cluster: Cluster) -> None:
    with postgres_cluster.database() as url:
        name = url.rsplit("/", 1)[1]
        settings = Settings.from_env({}, db=url, checkpoint_interval=0.5)
        with TestClient(create_app(settings)) as client:
            first = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert first.status_code == 201, first.text
            # A restart of PostgreSQL (or an idle timeout) ends every open connection.
            _admin(
                postgres_cluster,
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                f" WHERE datname = '{name}' AND pid <> pg_backend_pid()",
            )
            second = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert second.status_code == 201, second.text
            stepped = client.post(f"/api/runs/{first.json()['id']}/step", json={"epochs": 3})
            assert stepped.status_code == 200 and stepped.json()["epoch"] == 3


def test_a_database_gone_is_503_in_words(postgres_cluster: Cluster) -> None:
    from app.storage.postgres import CONNECT_TIMEOUT

    with postgres_cluster.database() as url:
        name = url.rsplit("/", 1)[1]
        settings = Settings.from_env({}, db=url, checkpoint_interval=0.5)
        with TestClient(create_app(settings)) as client:
            kept = client.post("/api/runs", json={**TINY_RUN, "start": False}).json()
            _admin(postgres_cluster, f"DROP DATABASE {name} WITH (FORCE)")
            refused = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert refused.status_code == 503, refused.text
            detail = refused.json()["detail"]
            assert detail.startswith("storage unavailable: PostgreSQL at postgresql://"), detail
            assert f"no connection within {CONNECT_TIMEOUT} s" in detail
            stepped = client.post(f"/api/runs/{kept['id']}/step", json={"epochs": 2})
            assert stepped.status_code in (200, 503), stepped.text
            assert client.get("/api/health").status_code == 200
            # Longer than the reconnect backoff's first steps (1, 2, 4, 8 s): the server
            # must not be left waiting out a long backoff once the database is back.
            still = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert still.status_code == 503, still.text
            # Back again (an empty database): the server carries on storing.
            _admin(postgres_cluster, f"CREATE DATABASE {name}")
            from app.storage.store import open_store

            open_store(url).close()  # the tables, as a restarted server would make them
            again = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert again.status_code == 201, again.text


def test_a_server_that_cannot_reach_postgresql_does_not_start(
    postgres_cluster: Cluster,
) -> None:
    from app.storage.errors import StorageError

    url = postgres_cluster.url("no_such_database")
    switch_interval = sys.getswitchinterval()
    with pytest.raises(StorageError) as caught, TestClient(create_app(Settings(db=url))):
        pass
    assert 'database "no_such_database" does not exist' in str(caught.value)
    # The start-up that failed left the process as it found it (the GIL hand-off too).
    assert sys.getswitchinterval() == switch_interval
