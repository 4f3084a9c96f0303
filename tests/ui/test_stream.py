"""The live view's SSE stream (/ui/runs/{id}/stream) read from a real uvicorn server."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
from httpx_sse import ServerSentEvent, connect_sse

from tests.support import LiveServer

RUN = {
    "start": False,
    "dataset": {"kind": "xor", "n_samples": 40},
    "hidden_layers": [4],
    "epochs": 50,
}


def create(client: httpx.Client) -> str:
    response = client.post("/api/runs", json=RUN)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def until(events: Iterator[ServerSentEvent], wanted: str, contains: str = "") -> ServerSentEvent:
    """The next ``wanted`` event whose data contains ``contains`` (the read timeout bounds it)."""
    for event in events:
        if event.event == wanted and contains in event.data:
            return event
    raise AssertionError(f"stream ended before a {wanted!r} event with {contains!r}")


def test_stream_sends_a_snapshot_then_frames_then_ends_on_delete(live_server: LiveServer) -> None:
    with live_server.client() as client, live_server.client() as control:
        run_id = create(client)
        with connect_sse(client, "GET", f"/ui/runs/{run_id}/stream") as source:
            assert source.response.headers["content-type"].startswith("text/event-stream")
            events = source.iter_sse()
            snapshot = next(events)
            assert snapshot.event == "snapshot"
            # Every fragment of the page, each swapped out of band into its fixed container.
            for target in (
                "stats",
                "controls",
                "loss-chart",
                "network",
                "output-heatmap",
                "output-points",
                "weights",
                "grad-norms",
            ):
                assert f'<div id="{target}" hx-swap-oob="innerHTML">' in snapshot.data, target
            assert 'data-epoch="0"' in snapshot.data
            assert control.post(f"/api/runs/{run_id}/step", json={"epochs": 3}).status_code == 200
            frame = until(events, "frame", 'data-epoch="3"')
            assert 'id="output-points"' not in frame.data  # static data is not re-sent
            assert '<path class="series train" d="M' in frame.data
            assert control.delete(f"/api/runs/{run_id}").status_code == 204
            deleted = until(events, "deleted")
            assert "deleted" in deleted.data
            assert list(events) == []  # the stream ends


def test_every_viewer_gets_the_same_frames(live_server: LiveServer) -> None:
    with live_server.client() as a, live_server.client() as b, live_server.client() as control:
        run_id = create(control)
        url = f"/ui/runs/{run_id}/stream"
        with connect_sse(a, "GET", url) as first, connect_sse(b, "GET", url) as second:
            ea, eb = first.iter_sse(), second.iter_sse()
            snap_a, snap_b = next(ea), next(eb)
            assert snap_a.event == snap_b.event == "snapshot" and snap_a.data == snap_b.data
            control.post(f"/api/runs/{run_id}/step", json={"epochs": 2})
            until(ea, "frame", 'data-epoch="2"')
            until(eb, "frame", 'data-epoch="2"')
        # A frame carries what changed since *that* viewer's last one, so two viewers that
        # woke at different moments may get differently cut frames; what is shared is the
        # render of each state: two viewers arriving at the same state get the same bytes.
        with connect_sse(a, "GET", url) as third, connect_sse(b, "GET", url) as fourth:
            snap_c, snap_d = next(third.iter_sse()), next(fourth.iter_sse())
            assert 'data-epoch="2"' in snap_c.data
            assert snap_c.data == snap_d.data  # rendered once, shared


def test_a_reconnecting_viewer_resumes_with_a_fresh_snapshot(live_server: LiveServer) -> None:
    with live_server.client() as client:
        run_id = create(client)
        url = f"/ui/runs/{run_id}/stream"
        with connect_sse(client, "GET", url) as source:
            assert next(source.iter_sse()).event == "snapshot"
        client.post(f"/api/runs/{run_id}/step", json={"epochs": 4})
        with connect_sse(client, "GET", url, headers={"Last-Event-ID": "1"}) as source:
            again = next(source.iter_sse())
            assert again.event == "snapshot" and 'data-epoch="4"' in again.data
            assert again.retry == 1000


def test_unknown_run_stream_is_a_404(live_server: LiveServer) -> None:
    with live_server.client() as client:
        assert client.get("/ui/runs/nope/stream").status_code == 404
