"""A server whose Ray head does not answer: it starts, and starting a run is a 503 in words
within seconds (ray.init alone would retry for minutes); the run stays as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cluster.conftest import free_port
from tests.cluster.test_two_servers import RUN, serve

pytest.importorskip("ray") if os.environ.get("CI") != "true" else __import__("ray")


def test_an_unreachable_ray_head_refuses_a_start_in_words(tmp_path: Path) -> None:
    closed = f"127.0.0.1:{free_port()}"  # nothing listens there
    with serve(str(tmp_path / "runs.db"), closed) as server:
        response = server.post("/api/runs", json={**RUN, "epochs": 10})
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        assert f"the Ray cluster ({closed}) cannot start the run" in detail
        assert "no Ray head answers" in detail
        made = server.post("/api/runs", json={**RUN, "epochs": 10, "start": False}).json()
        again = server.post(f"/api/runs/{made['id']}/start")
        assert again.status_code == 503
        assert server.get(f"/api/runs/{made['id']}").json()["status"] == "created"
