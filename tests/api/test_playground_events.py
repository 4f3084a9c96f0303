"""SSE through the playground loop: a structural PATCH while a client watches sends it a
fresh snapshot of the new network, and the new run's epochs follow from 1, each once;
a hand-edited weight reaches a watcher of a stopped run as a snapshot."""

from __future__ import annotations

from typing import Any

from tests.api.test_events import create_run, events
from tests.support import LiveServer, strict_json


def test_structural_patch_sends_a_fresh_snapshot(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client, epochs=1_000_000)
        client.post(f"/api/runs/{run['id']}/start")
        patched = False
        after: list[int] = []
        with events(client, run["id"]) as source:
            for sse in source.iter_sse():
                data: dict[str, Any] = strict_json(sse.data)
                if sse.event == "epoch" and not patched and data["epoch"] >= 3:
                    body = {"hidden_layers": [7, 3]}
                    assert client.patch(f"/api/runs/{run['id']}", json=body).status_code == 200
                    patched = True
                elif sse.event == "snapshot" and patched and not after:
                    assert data["run"]["layer_sizes"] == [2, 7, 3, 1]
                    assert [len(layer["weights"]) for layer in data["layers"]] == [7, 3, 1]
                    after.extend(data["metrics"]["epoch"])
                    after.append(0)  # marks the snapshot
                elif sse.event == "epoch" and after:
                    assert len(data["layers"]) == 3
                    after.extend(data["metrics"]["epoch"])
                    if after[-1] >= 50:
                        break
        client.post(f"/api/runs/{run['id']}/stop")
    epochs = [e for e in after if e > 0]
    assert epochs == list(range(epochs[0], epochs[-1] + 1)) and epochs[0] <= 2


def test_edited_weights_reach_a_watcher_of_a_stopped_run(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client)
        layers = client.get(f"/api/runs/{run['id']}/weights").json()["layers"]
        layers[0]["weights"][0][0] = 0.125
        with events(client, run["id"]) as source:
            stream = source.iter_sse()
            assert next(stream).event == "snapshot"
            put = client.put(f"/api/runs/{run['id']}/weights", json={"layers": layers})
            assert put.status_code == 200
            sse = next(stream)
            assert sse.event == "snapshot"
            assert strict_json(sse.data)["layers"][0]["weights"][0][0] == 0.125
