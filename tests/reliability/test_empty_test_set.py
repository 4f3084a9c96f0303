"""A dataset with no test set (`test_fraction` 0) works everywhere: every page, fragment,
JSON route and stream answers 200 with sane content, while training and after."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support import LiveServer, strict_json, wait_for_status, wait_until

DATASETS = {
    # 2-D inputs: the plane view, two and three classes.
    "xor": {"kind": "xor", "n_samples": 40, "test_fraction": 0},
    "spiral3": {"kind": "spiral", "n_classes": 3, "n_samples": 60, "test_fraction": 0},
    # One input: the curve view (regression).
    "sine": {"kind": "sine", "n_samples": 40, "test_fraction": 0},
    # Three inputs, two outputs: the scatter view (regression).
    "teacher": {
        "kind": "teacher",
        "teacher_layers": [3, 4, 2],
        "n_samples": 40,
        "test_fraction": 0,
    },
}


def _first_events(client: httpx.Client, path: str, count: int) -> list[str]:
    """The first ``count`` SSE events (blocks separated by a blank line) of a stream."""
    text = ""
    with client.stream("GET", path, timeout=20) as response:
        assert response.status_code == 200, path
        for chunk in response.iter_text():
            text += chunk
            if text.count("\n\n") >= count:
                break
    return text.split("\n\n")[:count]


def _check_everything(client: httpx.Client, run_id: str, n_inputs: int, n_samples: int) -> None:
    for path in [
        "/runs",
        "/ui/runs-table",
        f"/runs/{run_id}",
        f"/runs/{run_id}/inspect",
        f"/ui/runs/{run_id}/inspect",
        f"/compare?runs={run_id}",
        f"/ui/compare-chart?runs={run_id}",
        f"/api/runs/{run_id}",
        f"/api/runs/{run_id}/weights",
        f"/api/runs/{run_id}/inspect",
        "/api/runs",
    ]:
        response = client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
    page = client.get(f"/runs/{run_id}").text
    assert 'id="test-loss"' in page
    data = strict_json(client.get(f"/api/runs/{run_id}/data").text)
    assert data["test"] == {"x": [], "y": []}
    assert len(data["train"]["x"]) == n_samples
    metrics = strict_json(client.get(f"/api/runs/{run_id}/metrics").text)
    assert metrics["test_loss"] and all(v is None for v in metrics["test_loss"])
    assert all(v is not None for v in metrics["train_loss"])
    predicted = client.post(f"/api/runs/{run_id}/predict", json={"inputs": [[0.1] * n_inputs]})
    assert predicted.status_code == 200, predicted.text
    assert len(predicted.json()["outputs"]) == 1
    for stream in (f"/api/runs/{run_id}/events", f"/ui/runs/{run_id}/stream"):
        events = _first_events(client, stream, 2)
        assert any("event: snapshot" in event for event in events), stream


@pytest.mark.slow
@pytest.mark.parametrize("name", list(DATASETS))
def test_a_run_without_test_set_works_everywhere(live_server: LiveServer, name: str) -> None:
    dataset: dict[str, Any] = DATASETS[name]
    with live_server.client() as client:
        preview = client.get(
            "/ui/dataset-preview",
            params={f"dataset.{k}": str(v) for k, v in dataset.items() if k != "teacher_layers"},
        )
        assert preview.status_code == 200 and "0 test" in preview.text
        created = client.post(
            "/api/runs",
            json={
                "dataset": dataset,
                "hidden_layers": [4],
                "epochs": 100_000,
                "batch_size": None,
                "max_epochs_per_second": 40,
            },
        )
        assert created.status_code == 201, created.text
        run = created.json()
        run_id, n_inputs = run["id"], run["layer_sizes"][0]
        # While it trains: the live stream renders epoch frames with no test set.
        events = _first_events(client, f"/ui/runs/{run_id}/stream", 4)
        assert "event: snapshot" in events[0] or "event: snapshot" in events[1]
        wait_until(lambda: client.get(f"/api/runs/{run_id}").json()["epoch"] >= 3, what="3 epochs")
        _check_everything(client, run_id, n_inputs, dataset["n_samples"])
        assert client.post(f"/api/runs/{run_id}/stop").status_code == 200
        wait_for_status(client, run_id, "stopped")
        _check_everything(client, run_id, n_inputs, dataset["n_samples"])
