"""Heavy reads never block the event loop: `/api/health` answers within 150 ms while
two 10,000-row predictions and a `/weights` of a 4M-parameter net are computed.

A real uvicorn server (LiveServer); the heavy requests come from another process
(so that the client's own Python work does not share the server's GIL, as with
real clients), and a probe thread asks `/api/health` every ~10 ms for as long as
they take; the worst answer is the measure. Before this change the predictions
ran on the loop and the probe waited 2-4 s.

Timing noise: this 2-core machine is shared (a load average of 7-9 is common, and
then an idle server's /api/health already takes ~45 ms). The scenario runs up
to three times and passes on the first attempt whose worst answer is under
150 ms; every attempt must still stay under 1 s, which a blocked loop cannot.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from app.config import Settings
from app.main import create_app
from tests.support import LiveServer

HIDDEN = [1024] * 5  # 4·1024² + 2·1024 + 1024 + 5·1024 + 1 ≈ 4.2M parameters
ROWS = 10_000
MAX_LATENCY = 0.150  # seconds
BLOCKED = 1.0  # seconds: no attempt may ever see this
PROBE_EVERY = 0.010
ATTEMPTS = 3

# Two predictions and one /weights at once, from a separate process.
LOAD = """
import sys, httpx
from concurrent.futures import ThreadPoolExecutor
url, body = sys.argv[1], open(sys.argv[2], "rb").read()
headers = {"content-type": "application/json", "host": "localhost"}
def predict():
    return httpx.post(url + "/predict", content=body, headers=headers, timeout=300).status_code
def weights():
    with httpx.stream("GET", url + "/weights", headers=headers, timeout=300) as r:
        return r.status_code, sum(len(c) for c in r.iter_bytes())
with ThreadPoolExecutor(3) as pool:
    print(list(pool.map(lambda f: f(), [predict, predict, weights])))
"""


class Probe(threading.Thread):
    """GET /api/health every ~10 ms until stopped; keeps every latency."""

    def __init__(self, server: LiveServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        with self.server.client(timeout=30.0) as client:
            while not self.stop.is_set():
                start = time.perf_counter()
                assert client.get("/api/health").status_code == 200
                self.latencies.append(time.perf_counter() - start)
                self.stop.wait(PROBE_EVERY)


def heavy_reads(server: LiveServer, url: str, body: Path) -> tuple[float, float, int]:
    """(worst /api/health latency, seconds the reads took, probes) for one attempt."""
    probe = Probe(server)
    probe.start()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", LOAD, url, str(body)],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    finally:
        probe.stop.set()
        probe.join(30)
    took = time.perf_counter() - started
    assert done.stdout.strip().startswith("[200, 200, (200, ")
    size = int(done.stdout.strip().split(", ")[-1].rstrip(")]"))
    assert size > 4_000_000 * 5  # the whole /weights body came
    return max(probe.latencies), took, len(probe.latencies)


def test_health_answers_within_150_ms_during_big_predictions(tmp_path: Path, database: str) -> None:
    settings = Settings.from_env({}, db=database)
    body = tmp_path / "predict.json"
    x = np.random.default_rng(0).uniform(-1, 1, (ROWS, 2))
    body.write_bytes(orjson.dumps({"inputs": x}, option=orjson.OPT_SERIALIZE_NUMPY))
    worst_seen = []
    with LiveServer(create_app(settings)) as server, server.client(timeout=120.0) as client:
        spec = {"dataset": {"kind": "circle", "n_samples": 100}, "hidden_layers": HIDDEN}
        response = client.post("/api/runs", json={**spec, "start": False})
        assert response.status_code == 201, response.text
        run = response.json()
        assert run["n_params"] > 4_000_000
        url = f"{server.url}/api/runs/{run['id']}"
        for _ in range(ATTEMPTS):
            worst, took, probes = heavy_reads(server, url, body)
            print(f"\nheavy reads took {took:.2f} s; {probes} probes, worst {worst * 1000:.0f} ms")
            assert probes >= took / 0.2  # the probe kept asking all along
            assert worst < BLOCKED, f"/api/health took {worst * 1000:.0f} ms: the loop was blocked"
            worst_seen.append(worst)
            if worst < MAX_LATENCY:
                break
        jobs = client.get("/api/diagnostics").json()["manager"]["jobs"]
        assert jobs["done"] >= 3 * len(worst_seen) and jobs["running"] == 0
    assert min(worst_seen) < MAX_LATENCY, f"worst /api/health per attempt: {worst_seen}"
