"""One local Ray head for the whole session (`ray start --head --block` from the venv, on
127.0.0.1, 2 CPUs, no dashboard), ended at the end by its process group. Without Ray
installed the cluster tests are skipped, except in CI (CI=true), where they must run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HEAD_START_TIMEOUT = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_or_skip() -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("ray is not installed (pip install -e '.[cluster]')")


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)  # the head's GCS is not listening yet: nothing to wait on
    raise TimeoutError(f"the Ray head did not listen on {port} within {timeout} s")


@pytest.fixture(scope="session")
def ray_head() -> Iterator[str]:
    """The address (host:port) of a Ray head this session started; the test process is
    connected to it (namespace "backprop-live")."""
    _ray_or_skip()
    import ray

    port = free_port()
    # A short path: Ray's sockets live under it (Unix socket paths are at most 107 bytes).
    temp = tempfile.mkdtemp(prefix="bpl-ray-", dir="/tmp")
    ray_bin = Path(sys.executable).parent / "ray"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = subprocess.Popen(
        [
            str(ray_bin), "start", "--head", "--block", f"--port={port}",
            "--node-ip-address=127.0.0.1", "--include-dashboard=false", "--num-cpus=2",
            f"--temp-dir={temp}", "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_port(port, head, HEAD_START_TIMEOUT)
        address = f"127.0.0.1:{port}"
        ray.init(address=address, namespace="backprop-live", log_to_driver=False)
        yield address
    finally:
        ray.shutdown()
        _end_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the head's process group (ray start --block stops what it started),
    SIGKILL to whatever is left of it after a while."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
