"""GET /api/runs/{id}/events on a real uvicorn server (httpx + httpx-sse).

httpx's ASGITransport buffers whole responses, so these tests use
``LiveServer``. Waits are on the stream's own events; the only polling is for
the server's subscriber count after a disconnect (state of another thread).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse

from tests.support import TINY_RUN, LiveServer, strict_json, wait_until

FAST_RUN = {**TINY_RUN, "start": False}


@dataclass
class Received:
    """What one subscriber got: every event in order, plus the epochs it covered."""

    events: list[ServerSentEvent] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    train_loss: list[float | None] = field(default_factory=list)

    def add(self, sse: ServerSentEvent) -> dict[str, Any]:
        if sse.event == "message" and not sse.data:
            # httpx-sse turns a `: ping` comment block into an empty "message" event once an
            # id was seen; a browser's EventSource dispatches nothing for it (no data).
            return {}
        self.events.append(sse)
        data = strict_json(sse.data)
        if sse.event in ("snapshot", "epoch"):
            self.epochs += data["metrics"]["epoch"]
            self.train_loss += data["metrics"]["train_loss"]
        return data


def create_run(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = client.post("/api/runs", json={**FAST_RUN, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def events(
    client: httpx.Client, run_id: str, headers: dict[str, str] | None = None, **params: Any
) -> Any:
    return connect_sse(
        client, "GET", f"/api/runs/{run_id}/events", params=params, headers=headers or {}
    )


def read_until_status(
    source: Any, received: Received, statuses: set[str]
) -> Iterator[dict[str, Any]]:
    for sse in source.iter_sse():
        data = received.add(sse)
        yield data
        if sse.event == "status" and data["status"] in statuses:
            return
    raise AssertionError(f"stream ended before a status in {statuses}")


def check_ids(received: Received) -> None:
    """ids never decrease and each is the last epoch the client has."""
    have = 0
    last_id = -1
    for sse in received.events:
        data = json.loads(sse.data)
        if sse.event == "snapshot" and data["metrics"]["epoch"]:
            have = data["metrics"]["epoch"][-1]
        elif sse.event == "epoch" and data["metrics"]["epoch"]:
            have = data["metrics"]["epoch"][-1]
            assert data["epoch"] == have
        assert int(sse.id) >= last_id
        if sse.event != "snapshot" or data["metrics"]["epoch"]:
            assert int(sse.id) == have
        last_id = int(sse.id)


# ---- delivery -----------------------------------------------------------------------------


def test_every_epoch_exactly_once_in_order(live_server: LiveServer) -> None:
    epochs = 3000
    with live_server.client() as client:
        run = create_run(client, epochs=epochs)
        received = Received()
        with events(client, run["id"]) as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            iterator = source.iter_sse()
            first = next(iterator)
            assert first.event == "snapshot" and first.id == "0"
            snapshot = received.add(first)
            assert snapshot["run"]["id"] == run["id"]
            assert snapshot["metrics"]["epoch"] == []
            assert len(snapshot["layers"]) == 2
            assert client.post(f"/api/runs/{run['id']}/start").status_code == 200
            statuses = []
            frames = 0
            for sse in iterator:
                data = received.add(sse)
                if sse.event == "epoch":
                    frames += 1
                    assert "layers" in data and data["status"] in ("running", "completed")
                if sse.event == "status":
                    statuses.append(data["status"])
                    if data["status"] == "completed":
                        break
        assert received.epochs == list(range(1, epochs + 1))
        assert statuses[-1] == "completed"
        assert frames < epochs  # coalesced
        check_ids(received)
        history = client.get(f"/api/runs/{run['id']}/metrics").json()
        assert received.train_loss == history["train_loss"]


def test_weights_false_omits_layers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client, epochs=200)
        received = Received()
        with events(client, run["id"], weights="false") as source:
            client.post(f"/api/runs/{run['id']}/start")
            for data in read_until_status(source, received, {"completed"}):
                if received.events[-1].event == "epoch":
                    assert "layers" not in data
        assert received.epochs == list(range(1, 201))


def test_frames_respect_max_fps(live_server: LiveServer) -> None:
    # An upper bound only: a slower machine sends fewer frames, never more.
    with live_server.client() as client:
        run = create_run(client, epochs=600, max_epochs_per_second=400)
        received = Received()
        with events(client, run["id"], max_fps=2) as source:
            client.post(f"/api/runs/{run['id']}/start")
            started = time.monotonic()
            for _ in read_until_status(source, received, {"completed"}):
                pass
            elapsed = time.monotonic() - started
        frames = sum(1 for sse in received.events if sse.event == "epoch")
        assert frames <= 2 * elapsed + 2
        assert received.epochs == list(range(1, 601))


def test_large_network_frames_end_with_layers(live_server: LiveServer) -> None:
    with live_server.client() as client:
        # 2-400-400-1: over 100,000 parameters, so `layers` may be thinned out.
        run = create_run(client, epochs=40, hidden_layers=[400, 400], batch_size=None)
        assert run["n_params"] > 100_000
        received = Received()
        with events(client, run["id"], max_fps=60) as source:
            client.post(f"/api/runs/{run['id']}/start")
            for _ in read_until_status(source, received, {"completed"}):
                pass
        kinds = [sse.event for sse in received.events]
        last_frame = len(kinds) - 1 - kinds[::-1].index("epoch")
        assert kinds[last_frame + 1 :] == ["status"]
        assert "layers" in json.loads(received.events[last_frame].data)
        assert received.epochs == list(range(1, 41))


def test_resume_with_last_event_id_has_no_gap_and_no_duplicate(live_server: LiveServer) -> None:
    epochs = 2000
    with live_server.client() as client:
        run = create_run(client, epochs=epochs)
        first = Received()
        with events(client, run["id"], max_fps=60) as source:
            client.post(f"/api/runs/{run['id']}/start")
            for sse in source.iter_sse():
                first.add(sse)
                if sse.event == "epoch" and int(sse.id) >= 50:
                    break
        last_id = first.events[-1].id
        assert first.epochs == list(range(1, int(last_id) + 1))
        second = Received()
        with events(client, run["id"], headers={"Last-Event-ID": last_id}) as source:
            for _ in read_until_status(source, second, {"completed"}):
                pass
        snapshot = json.loads(second.events[0].data)
        assert snapshot["metrics"]["epoch"][:1] in ([], [int(last_id) + 1])
        assert first.epochs + second.epochs == list(range(1, epochs + 1))


def test_last_event_id_edge_cases(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client, epochs=30)
        client.post(f"/api/runs/{run['id']}/step", json={"epochs": 30})
        cases = {"junk": 30, "10": 20, "30": 0, "500": 0, "-3": 30}
        for header, expected in cases.items():
            with events(client, run["id"], headers={"Last-Event-ID": header}) as source:
                sse = next(source.iter_sse())
                assert sse.event == "snapshot"
                metrics = json.loads(sse.data)["metrics"]
                assert len(metrics["epoch"]) == expected, header
                if header == "500":
                    assert sse.id == "500"  # nothing new; the id never goes back
                elif header == "10":
                    assert metrics["epoch"][0] == 11 and sse.id == "30"


def test_twenty_concurrent_subscribers_all_get_everything(live_server: LiveServer) -> None:
    epochs = 1500
    with live_server.client() as client:
        run = create_run(client, epochs=epochs)
    results: list[Received | BaseException] = [Received() for _ in range(20)]
    subscribed = threading.Barrier(21, timeout=60)

    def subscribe(index: int) -> None:
        received = results[index]
        assert isinstance(received, Received)
        try:
            with live_server.client() as own, events(own, run["id"]) as source:
                iterator = source.iter_sse()
                received.add(next(iterator))
                subscribed.wait()
                for sse in iterator:
                    data = received.add(sse)
                    if sse.event == "status" and data["status"] == "completed":
                        break
        except BaseException as exc:
            results[index] = exc
            subscribed.abort()

    threads = [threading.Thread(target=subscribe, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    subscribed.wait()
    with live_server.client() as client:
        client.post(f"/api/runs/{run['id']}/start")
    for thread in threads:
        thread.join(120)
    for result in results:
        assert isinstance(result, Received), result
        assert result.epochs == list(range(1, epochs + 1))
        check_ids(result)


def test_stalled_subscriber_does_not_hold_up_the_others(live_server: LiveServer) -> None:
    epochs = 3000
    with live_server.client() as client, ExitStack() as stack:
        # Frames with the weights of 64x64 layers, so an unread socket fills up.
        run = create_run(client, epochs=epochs, hidden_layers=[64, 64])
        stalled_client = stack.enter_context(live_server.client())
        stalled = stack.enter_context(events(stalled_client, run["id"], max_fps=60))
        stalled_events = stalled.iter_sse()
        stalled_received = Received()
        stalled_received.add(next(stalled_events))  # the snapshot; then it stops reading
        active = Received()
        with events(client, run["id"]) as source:
            client.post(f"/api/runs/{run['id']}/start")
            for _ in read_until_status(source, active, {"completed"}):
                pass
        assert active.epochs == list(range(1, epochs + 1))
        # Read at last, the stalled one still gets every epoch once, in order.
        for sse in stalled_events:
            data = stalled_received.add(sse)
            if sse.event == "status" and data["status"] == "completed":
                break
        assert stalled_received.epochs == list(range(1, epochs + 1))
        check_ids(stalled_received)


# ---- lifecycle over the stream ------------------------------------------------------------


def test_stream_survives_stop_and_start_and_ends_on_delete(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client, epochs=10_000_000)
        rid = run["id"]
        received = Received()
        with events(client, rid) as source:
            iterator = source.iter_sse()
            received.add(next(iterator))
            client.post(f"/api/runs/{rid}/start")
            seen: list[str] = []
            for sse in iterator:
                data = received.add(sse)
                if sse.event == "status":
                    seen.append(data["status"])
                if sse.event == "epoch" and seen == ["running"]:
                    stopped = client.post(f"/api/runs/{rid}/stop").json()
                if seen == ["running", "stopped"]:
                    break
            assert received.epochs[-1] == stopped["epoch"]
            client.post(f"/api/runs/{rid}/start")
            for sse in iterator:
                data = received.add(sse)
                if sse.event == "epoch" and data["epoch"] > stopped["epoch"] + 5:
                    break
            assert client.delete(f"/api/runs/{rid}").status_code == 204
            for sse in iterator:  # ends: the loop must terminate
                received.add(sse)
        assert received.epochs == list(range(1, received.epochs[-1] + 1))


def test_status_events_carry_status_and_message(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(
            client,
            dataset={"kind": "plane", "n_samples": 100},
            hidden_layers=[16],
            activation="relu",
            learning_rate=10,
            batch_size=None,
            epochs=500,
        )
        received = Received()
        with events(client, run["id"]) as source:
            client.post(f"/api/runs/{run['id']}/start")
            statuses = [
                (data["status"], data["message"])
                for data in read_until_status(source, received, {"diverged", "completed"})
                if received.events[-1].event == "status"
            ]
        # (a run this quick may go from created to diverged within one frame)
        assert statuses[-1][0] == "diverged" and "diverged" in statuses[-1][1]
        # Every frame parsed as strict JSON (Received.add); the last finite epoch is kept.
        assert received.epochs == list(range(1, received.epochs[-1] + 1))


def test_reset_sends_a_fresh_snapshot(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run = create_run(client, epochs=100)
        client.post(f"/api/runs/{run['id']}/step", json={"epochs": 20})
        with events(client, run["id"]) as source:
            iterator = source.iter_sse()
            first = next(iterator)
            assert first.id == "20"
            client.post(f"/api/runs/{run['id']}/reset")
            for sse in iterator:
                if sse.event == "snapshot":
                    data = json.loads(sse.data)
                    assert sse.id == "0"
                    assert data["run"]["epoch"] == 0 and data["run"]["status"] == "created"
                    assert data["metrics"]["epoch"] == []
                    break
            client.post(f"/api/runs/{run['id']}/step", json={"epochs": 3})
            epochs: list[int] = []
            for sse in iterator:
                if sse.event == "epoch":
                    epochs += json.loads(sse.data)["metrics"]["epoch"]
                if epochs == [1, 2, 3]:
                    break


def test_idle_stream_sends_pings(live_server: LiveServer) -> None:
    # The fixture's ping interval is 1 s; the read timeout (30 s) bounds the wait.
    with live_server.client() as client:
        run = create_run(client)
        with client.stream("GET", f"/api/runs/{run['id']}/events") as response:
            lines = response.iter_lines()
            assert next(lines) == "event: snapshot"
            assert ": ping" in lines  # consumes lines until the first ping


def test_disconnect_frees_the_subscriber(live_server: LiveServer) -> None:
    manager = live_server.app.state.manager
    with live_server.client() as client:
        run = create_run(client, epochs=10_000_000)
        client.post(f"/api/runs/{run['id']}/start")
        for _ in range(3):
            with events(client, run["id"]) as source:
                # Keep the iterator: dropping it closes the response (httpx).
                iterator = source.iter_sse()
                next(iterator)
                assert manager.hub(run["id"]).subscribers >= 1
        wait_until(lambda: manager.hub(run["id"]).subscribers == 0, timeout=10)
        client.post(f"/api/runs/{run['id']}/stop")


def test_shutdown_with_open_streams_does_not_hang(settings: Any) -> None:
    from app.main import create_app

    server = LiveServer(create_app(settings), graceful_shutdown=0.5).start()
    with ExitStack() as stack:
        client = stack.enter_context(server.client())
        run = create_run(client, epochs=10_000_000)
        client.post(f"/api/runs/{run['id']}/start")
        iterators = []
        for _ in range(3):
            source = stack.enter_context(events(client, run["id"]))
            iterators.append(source.iter_sse())
            next(iterators[-1])
        assert server.app.state.manager.hub(run["id"]).subscribers == 3
        server.stop()  # raises if uvicorn is still running after its timeout


@pytest.mark.parametrize("params", [{"max_fps": 0}, {"max_fps": 61}, {"weights": "maybe"}])
def test_bad_query_is_422(live_server: LiveServer, params: dict[str, Any]) -> None:
    with live_server.client() as client:
        run = create_run(client)
        response = client.get(f"/api/runs/{run['id']}/events", params=params)
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/json"


def test_unknown_run_events_is_404(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/api/runs/nope/events").status_code == 404


def test_every_status_change_is_reported_in_order(live_server: LiveServer) -> None:
    # A few epochs finish within milliseconds of the start: running and completed
    # land between two wake-ups of the stream, and both must still go out, in order,
    # with `running` before the epochs and `completed` after them.
    with live_server.client() as client:
        run = create_run(client, epochs=3)
        received = Received()
        with events(client, run["id"]) as source:
            stream = source.iter_sse()
            assert received.add(next(stream))["run"]["status"] == "created"
            client.post(f"/api/runs/{run['id']}/start")
            for sse in stream:
                if received.add(sse).get("status") == "completed" and sse.event == "status":
                    break
        kinds = [
            (sse.event, json.loads(sse.data)["status"])
            for sse in received.events
            if sse.event == "status"
        ]
        assert kinds == [("status", "running"), ("status", "completed")]
        order = [sse.event for sse in received.events]
        assert order.index("epoch") > order.index("status")
        assert received.epochs == [1, 2, 3]


def test_large_network_epoch_frames_always_carry_a_new_epoch(live_server: LiveServer) -> None:
    """The layers due before a status change ride on the last epoch frame: no frame of
    layers alone (an `epoch` frame with no new epoch was seen at the end of large runs)."""
    with live_server.client() as client:
        run = create_run(client, epochs=300, hidden_layers=[400, 400], batch_size=None)
        assert run["n_params"] > 100_000
        received = [Received() for _ in range(3)]
        with ExitStack() as stack:
            sources = [
                stack.enter_context(events(client, run["id"], max_fps=fps)) for fps in (60, 30, 7)
            ]
            client.post(f"/api/runs/{run['id']}/start")
            for source, got in zip(sources, received, strict=True):
                for _ in read_until_status(source, got, {"completed"}):
                    pass
    for got in received:
        assert got.epochs == list(range(1, 301))
        frames = [strict_json(e.data) for e in got.events if e.event == "epoch"]
        assert all(frame["metrics"]["epoch"] for frame in frames)
        kinds = [sse.event for sse in got.events]
        last_frame = len(kinds) - 1 - kinds[::-1].index("epoch")
        assert kinds[last_frame + 1 :] == ["status"]
        assert "layers" in strict_json(got.events[last_frame].data)
