"""deploy/nginx.conf for real: Debian's nginx in front of two `backprop-live serve` processes.

The configuration is the deploy's own file, rendered for loopback by ``render_conf``:
only the upstream addresses, the listen port and file paths change, plus one line
that makes nginx ignore the server's ``X-Accel-Buffering: no`` header, so the stream
is judged on the file's own settings, not on the application's hint. (Of those, gzip
on text/event-stream is the one that holds frames back; nginx 1.22 passed small frames
on at once even with ``proxy_buffering on``, which the file still turns off.) nginx
runs as an unprivileged user (``nobody`` when the test runs as root) with its own
prefix, pid file and port.

The two servers share one SQLite file and train with local worker processes: until
the cluster work lands (PostgreSQL + Ray), only the server that trains a run can
stream it, so a stream through the round robin finds it within a few tries (the
other server answers 404). What these tests hold is the proxy: frames pass as they
happen, the API and its limits pass through, the Host/Origin guard accepts the
proxied host, and a killed server is skipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from app.config import PROJECT_ROOT
from tests.reliability.support import ServeProcess, free_port, serve_process
from tests.support import TINY_RUN, wait_until

NGINX = Path("/usr/sbin/nginx")
CONF = PROJECT_ROOT / "deploy" / "nginx.conf"
TOKEN = "deploy-test-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}
# What compose.yaml gives the API servers that matters here: one token, named hosts.
SERVER_ENV = {"BACKPROP_LIVE_TOKEN": TOKEN, "BACKPROP_LIVE_ALLOWED_HOSTS": "localhost,127.0.0.1"}
# A stream through nginx may trail the same stream read from the server by this much.
PROXY_DELAY_LIMIT = 1.0
FIRST_FRAME_WITHIN = 2.0


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="module", autouse=True)
def _need_nginx() -> None:
    if not NGINX.exists():
        message = "Debian's nginx is not installed (apt-get install nginx)"
        if _in_ci():
            pytest.fail(f"CI must run the proxy tests: {message}", pytrace=False)
        pytest.skip(message)


def render_conf(text: str, upstreams: list[int], port: int, workdir: Path) -> str:
    """deploy/nginx.conf for loopback: upstream ports, listen port and paths substituted."""
    assert "/tmp/" in text, "deploy/nginx.conf keeps its pid and temporary files in /tmp/"
    text = text.replace("/tmp/", f"{workdir}/")
    substitutions = [
        ("server api-1:8000;", f"server 127.0.0.1:{upstreams[0]};"),
        ("server api-2:8000;", f"server 127.0.0.1:{upstreams[1]};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("error_log /dev/stderr", f"error_log {workdir}/error.log"),
        ("http {", "http {\n    proxy_ignore_headers X-Accel-Buffering;"),
    ]
    for old, new in substitutions:
        assert text.count(old) == 1, f"deploy/nginx.conf should have {old!r} exactly once"
        text = text.replace(old, new)
    return text


@dataclass
class Proxied:
    url: str
    servers: list[ServeProcess]
    workdir: Path
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        kwargs.setdefault("headers", AUTH)
        client = httpx.Client(base_url=self.url, **kwargs)
        self.clients.append(client)
        return client

    def log(self) -> str:
        path = self.workdir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def nginx_process(upstreams: list[int], workdir: Path) -> Iterator[str]:
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(render_conf(CONF.read_text(), upstreams, port, workdir))
    command = [str(NGINX), "-p", f"{workdir}/", "-c", str(conf), "-e", str(workdir / "start.log")]
    command += ["-g", "daemon off;"]
    as_user: dict[str, Any] = {}
    if os.geteuid() == 0:  # nginx as root would be a privileged master: drop to nobody
        shutil.chown(workdir, "nobody", "nogroup")
        as_user = {"user": "nobody", "group": "nogroup", "extra_groups": []}
    process = subprocess.Popen(command, start_new_session=True, **as_user)
    try:

        def listening() -> bool:
            if process.poll() is not None:
                logs = [(workdir / name) for name in ("start.log", "error.log")]
                text = "".join(p.read_text() for p in logs if p.exists())
                raise RuntimeError(f"nginx exited with {process.returncode}: {text}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).is_success
            except httpx.TransportError:
                return False

        wait_until(listening, timeout=20, what="nginx to answer")
        yield f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)


@contextmanager
def proxied_servers() -> Iterator[Proxied]:
    """Two servers on one SQLite file, nginx in front (its own folder, removed after)."""
    workdir = Path(tempfile.mkdtemp(prefix="bpl-nginx-"))
    try:
        with ExitStack() as stack:
            db = workdir / "shared.db"
            servers = [stack.enter_context(serve_process(db, env=SERVER_ENV)) for _ in range(2)]
            ports = [int(server.url.rsplit(":", 1)[1]) for server in servers]
            url = stack.enter_context(nginx_process(ports, workdir))
            proxied = Proxied(url, servers, workdir)
            try:
                yield proxied
            finally:
                for client in proxied.clients:
                    client.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def proxied() -> Iterator[Proxied]:
    with proxied_servers() as stack:
        yield stack


def trainer_of(proxied: Proxied, run_id: str) -> ServeProcess:
    """The server that trains ``run_id``, once it has trained an epoch (asked directly)."""

    def find() -> ServeProcess | None:
        for server in proxied.servers:
            response = server.client.get(f"/api/runs/{run_id}", headers=AUTH)
            if response.status_code == 200 and response.json()["epoch"] >= 1:
                return server
        return None

    trainer: ServeProcess = wait_until(find, timeout=30, what=f"run {run_id} to train")
    return trainer


def epoch_arrivals(
    client: httpx.Client, run_id: str, last_epoch: int, opened: list[float] | None = None
) -> dict[int, float]:
    """Read a run's event stream until ``last_epoch``: when each epoch's frame arrived
    (epochs in the snapshot are left out). Checks every epoch comes exactly once, in order.
    Retries a 404: through the round robin, the other server does not have the run."""
    for _ in range(10):
        with connect_sse(
            client, "GET", f"/api/runs/{run_id}/events", params={"weights": "false"}
        ) as source:
            if source.response.status_code == 404:
                continue
            assert source.response.status_code == 200, source.response.read()
            assert source.response.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in source.response.headers  # never gzipped
            if opened is not None:
                opened.append(time.monotonic())
            return _read_frames(source.iter_sse(), last_epoch)
    raise AssertionError(f"no server streamed run {run_id} in 10 tries")


def _read_frames(events: Iterator[Any], last_epoch: int) -> dict[int, float]:
    arrivals: dict[int, float] = {}
    seen: list[int] = []
    for sse in events:
        if sse.event == "snapshot":
            seen += sse.json()["metrics"]["epoch"]
        elif sse.event == "epoch":
            now = time.monotonic()
            for epoch in sse.json()["metrics"]["epoch"]:
                arrivals[epoch] = now
                seen.append(epoch)
        if seen and seen[-1] >= last_epoch:
            break
    assert seen == list(range(1, last_epoch + 1)), "every epoch exactly once, in order"
    return arrivals


def test_events_pass_through_as_they_happen(proxied: Proxied) -> None:
    epochs = 16
    client = proxied.client(headers={**AUTH, "accept-encoding": "gzip"})
    body = {**TINY_RUN, "epochs": epochs, "max_epochs_per_second": 2}  # 8 s of training
    run = client.post("/api/runs", json=body)
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    trainer = trainer_of(proxied, run_id)

    # The same stream read straight from the server that trains the run, at the same time.
    direct: dict[int, float] = {}
    errors: list[BaseException] = []

    def read_direct() -> None:
        try:
            with httpx.Client(base_url=trainer.url, headers=AUTH, timeout=30) as own:
                direct.update(epoch_arrivals(own, run_id, epochs))
        except BaseException as exc:  # reported by the test, not as a thread warning
            errors.append(exc)

    reader = threading.Thread(target=read_direct, daemon=True)
    reader.start()
    opened: list[float] = []
    proxied_arrivals = epoch_arrivals(client, run_id, epochs, opened)
    reader.join(30)
    assert not reader.is_alive() and not errors, f"the direct stream failed: {errors}"

    first = min(proxied_arrivals.values())
    assert first - opened[0] < FIRST_FRAME_WITHIN, "the first epoch frame was held back"
    both = sorted(set(direct) & set(proxied_arrivals))
    assert len(both) >= epochs // 2, f"too few epochs streamed as frames: {both}"
    delays = {epoch: proxied_arrivals[epoch] - direct[epoch] for epoch in both}
    late = {epoch: round(delay, 2) for epoch, delay in delays.items() if delay > PROXY_DELAY_LIMIT}
    assert not late, f"epoch frames held back by the proxy (epoch: seconds late): {late}"


def test_the_api_and_its_limits_pass_through(proxied: Proxied) -> None:
    client = proxied.client()
    assert client.get("/api/health").json() == {"status": "ok"}
    anonymous = httpx.get(f"{proxied.url}/api/runs", timeout=30)
    assert anonymous.status_code == 401, "the servers' token check, through the proxy"
    assert "detail" in anonymous.json()

    # JSON is compressed (so leaving text/event-stream out of gzip_types is a choice).
    schema = client.get("/openapi.json", headers={"accept-encoding": "gzip"})
    assert schema.status_code == 200
    assert schema.headers.get("content-encoding") == "gzip"
    assert schema.json()["openapi"]

    # A 2 MB body reaches the server (nginx's own limit would be 1 MB) and gets its 422.
    too_long = client.post("/api/runs", json={**TINY_RUN, "name": "x" * 2_000_000})
    assert too_long.status_code == 422, too_long.text[:200]
    assert "name" in str(too_long.json())

    created = client.post("/api/runs", json={**TINY_RUN, "start": False})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    # A run that is not training: either server reads it from the shared database.
    for _ in range(4):
        read = client.get(f"/api/runs/{run_id}")
        assert read.status_code == 200 and read.json()["status"] == "created"
    assert run_id in [run["id"] for run in client.get("/api/runs").json()["runs"]]


def test_the_host_and_origin_checks_accept_the_proxied_host(proxied: Proxied) -> None:
    client = proxied.client()
    same_site = client.post(
        "/api/runs", json={**TINY_RUN, "start": False}, headers={"origin": proxied.url}
    )
    # nginx passes the Host with its port: the server sees its own origin in the Origin.
    assert same_site.status_code == 201, same_site.text
    other_site = client.post(
        "/api/runs", json={**TINY_RUN, "start": False}, headers={"origin": "http://evil.example"}
    )
    assert other_site.status_code == 403
    rebound = client.get("/api/runs", headers={"host": "evil.example"})
    assert rebound.status_code == 400
    assert "BACKPROP_LIVE_ALLOWED_HOSTS" in rebound.json()["detail"]


def test_one_sign_in_opens_every_server(proxied: Proxied) -> None:
    browser = proxied.client(headers={})
    signed_in = browser.post("/login", data={"token": TOKEN, "next": "/runs"})
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/runs"
    assert browser.cookies, "the sign-in sets the session cookie"
    # The cookie is derived from the shared token: every server takes it, each asked
    # straight and through the round robin.
    for server in proxied.servers:
        page = httpx.get(f"{server.url}/runs", cookies=browser.cookies, timeout=30)
        assert page.status_code == 200, f"{server.url} refused the session"
    for _ in range(4):
        assert browser.get("/runs", follow_redirects=False).status_code == 200


def test_a_killed_server_is_skipped() -> None:
    with proxied_servers() as stack:
        client = stack.client()
        killed = stack.servers[1].process
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(15)
        for _ in range(6):
            assert client.get("/api/health").status_code == 200
        for _ in range(3):  # a write is not sent twice, but goes on to the live server
            created = client.post("/api/runs", json={**TINY_RUN, "start": False})
            assert created.status_code == 201, created.text
        assert "connect() failed" in stack.log()
