"""The OpenAPI schema, fuzzed with schemathesis against a live server: no 5xx, every
response as documented (status code, content type, headers, body schema), and
schema-violating requests refused.

`make test` runs a bounded number of examples per operation (derandomized: the
same ones every run); `make fuzz` sets BACKPROP_LIVE_FUZZ_EXAMPLES much higher
and BACKPROP_LIVE_FUZZ_STRICT=1 (adds the coverage phase: every boundary value of every field).
The SSE endpoint is left out (a stream never ends; tests/api/test_events.py and
test_bad_input.py cover its inputs). Operations on a run get a real run half of
the time (a fresh one per example), so that bodies reach the run logic instead
of stopping at 404.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

from app.config import Settings
from app.main import create_app
from tests.pg import module_database
from tests.support import TINY_RUN, LiveServer

EXAMPLES = int(os.environ.get("BACKPROP_LIVE_FUZZ_EXAMPLES", "30"))
STRICT = os.environ.get("BACKPROP_LIVE_FUZZ_STRICT", "") == "1"

EXCLUDED_CHECKS = [
    # Starlette answers a 405 with the methods of the first route on the path only
    # (`Allow: POST` on /api/runs, which also has GET): a framework limitation on a
    # method nobody may use, not a contract breach.
    allow_header_conformance,
    # API.md refuses with 422 much that no schema can express: a predict row of the
    # wrong width for *this* run, a bad head pairing, the parameter limit, custom
    # data checks, `epochs` below the current epoch. A schema-valid body may be 422.
    positive_data_acceptance,
]


def _openapi() -> dict[str, Any]:
    # Building the app reads no database: the lifespan does that, and it does not run here.
    spec: dict[str, Any] = create_app(Settings(db=Path("unused.db"))).openapi()
    return spec


# The coverage phase (every boundary value of every field, unbounded by max_examples)
# takes minutes here: `make fuzz` only.
_config = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": STRICT}}})
schema = schemathesis.openapi.from_dict(_openapi(), config=_config).exclude(path_regex=r"/events$")


@pytest.fixture(scope="module")
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_database(request, tmp_path_factory.mktemp("fuzz")) as db:
        # One training run at a time: generated configs can be big, and the machine is shared.
        config = Settings.from_env({}, db=db, max_running_runs=1, checkpoint_interval=1.0)
        with LiveServer(create_app(config)) as server:
            yield server


@pytest.fixture(scope="module")
def http(fuzz_server: LiveServer) -> Iterator[httpx.Client]:
    with fuzz_server.client() as client:
        yield client


def _validate(case: schemathesis.Case, base_url: str) -> None:
    case.call_and_validate(base_url=base_url, timeout=60, excluded_checks=EXCLUDED_CHECKS)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_schema(
    case: schemathesis.Case, fuzz_server: LiveServer, http: httpx.Client
) -> None:
    run_id = None
    # A stable coin (not hash(), which is salted per process): the same choice every run.
    coin = zlib.crc32(repr((case.body, case.query)).encode()) % 2
    if "run_id" in (case.path_parameters or {}) and coin == 0:
        run_id = http.post("/api/runs", json={**TINY_RUN, "start": False}).json()["id"]
        case.path_parameters = {**case.path_parameters, "run_id": run_id}
    try:
        _validate(case, fuzz_server.url)
    finally:
        # Leave nothing training: the next example starts from a quiet server.
        for running in http.get("/api/diagnostics").json()["workers"]:
            http.post(f"/api/runs/{running}/stop")
        if run_id is not None:
            http.delete(f"/api/runs/{run_id}")


# ---- the deviations above, one by one ---------------------------------------------------------


def _component(name: str) -> dict[str, Any]:
    component: dict[str, Any] = _openapi()["components"]["schemas"][name]
    return component


def test_start_must_be_a_boolean(http: httpx.Client) -> None:
    response = http.post("/api/runs", json={**TINY_RUN, "start": 0})
    if response.status_code == 201:
        http.delete(f"/api/runs/{response.json()['id']}")
    assert response.status_code == 422


def test_dataset_catalog_matches_its_schema(http: httpx.Client) -> None:
    task = _component("DatasetInfo")["properties"]["task"]
    allowed = task.get("enum") or [v for o in task.get("anyOf", []) for v in o.get("enum", [None])]
    for dataset in http.get("/api/datasets").json()["datasets"]:
        assert dataset["task"] in allowed, dataset["kind"]


def test_patch_accepts_what_its_schema_allows(http: httpx.Client) -> None:
    run = http.post("/api/runs", json={**TINY_RUN, "start": False}).json()
    try:
        epochs = _component("RunPatch")["properties"]["epochs"]
        if any(option.get("type") == "null" for option in epochs.get("anyOf", [])):
            response = http.patch(f"/api/runs/{run['id']}", json={"epochs": None})
            assert response.status_code == 200, response.text
    finally:
        http.delete(f"/api/runs/{run['id']}")


def test_metrics_since_beyond_64_bits_is_not_a_server_error(http: httpx.Client) -> None:
    run = http.post("/api/runs", json={**TINY_RUN, "start": False}).json()
    try:
        response = http.get(f"/api/runs/{run['id']}/metrics", params={"since": str(10**30)})
        assert response.status_code in (200, 422), response.text
    finally:
        http.delete(f"/api/runs/{run['id']}")
