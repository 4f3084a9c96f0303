"""The wheel is a working installation: templates, static files and the front-end files
ship inside the package and are found relative to it, wherever the server starts.

The full check (a fresh venv, `pip install .` with its dependencies, then
`backprop-live serve`) needs the package index and is a manual step in the README;
this test builds the real wheel and serves from its unpacked files.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from app.config import PROJECT_ROOT
from app.main import FRONTEND_FILES
from tests.support import wait_until


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), "."],
        cwd=PROJECT_ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("backprop_live-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_carries_what_the_server_reads(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "app/__main__.py" in names
    assert "app/resources/templates/base.html" in names
    assert "app/resources/static/app.css" in names
    for file in FRONTEND_FILES:
        assert f"app/resources/node_modules/{file}" in names
    assert any(name.endswith("dist-info/licenses/LICENSE") for name in names)
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("dist-info/METADATA"))
    )
    assert b"Requires-Dist: starlette>=1.1" in metadata
    assert b"Requires-Dist: numpy>=2.2" in metadata


@pytest.mark.slow
def test_python_m_app_serves_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKPROP_LIVE_")}
    env |= {"PYTHONPATH": str(site), "BACKPROP_LIVE_DB": str(tmp_path / "w.db")}
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            "from app.config import resource_dir; print(resource_dir('static'))",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert found.stdout.strip() == str(site / "app" / "resources" / "static")
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=elsewhere,
        env=env,
        start_new_session=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:

            def up() -> bool:
                assert process.poll() is None, "the server exited"
                try:
                    return client.get("/api/health").status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(up, timeout=60, what="the server from the wheel")
            home = client.get("/runs")
            assert home.status_code == 200 and "Backprop" in home.text
            for path in (
                "/static/app.css",
                "/static/vendor/htmx/htmx.min.js",
                "/static/vendor/htmx-ext-sse/sse.js",
                "/static/vendor/swagger-ui/swagger-ui-bundle.js",
                "/docs",
            ):
                assert client.get(path).status_code == 200, path
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
