"""A big net's live-view frame is rendered off the event loop (issue 12: "the render of a
big net's frame runs off the loop"); a small one's, which takes a few ms, on it."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from app.ui.frames import OFF_LOOP_PARAMS


def render_thread(client: TestClient, run_id: str) -> tuple[str, str]:
    """(the thread that rendered the frame, the event loop's thread)."""
    frames = client.app.state.ui.frames
    manager = client.app.state.manager
    seen: list[str] = []
    original = frames.current

    def current(*args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args)

    frames.current = current
    try:

        async def render() -> str:
            await frames.current_async(manager, run_id)
            return threading.current_thread().name

        loop_thread = client.portal.call(render)
    finally:
        del frames.current
    assert seen, "nothing was rendered"
    return seen[-1], loop_thread


def make(client: TestClient, hidden: list[int]) -> dict[str, Any]:
    body = {"start": False, "dataset": {"kind": "xor", "n_samples": 40}, "hidden_layers": hidden}
    run = client.post("/api/runs", json=body).json()
    client.post(f"/api/runs/{run['id']}/step", json={"epochs": 1})
    return run


def test_a_big_nets_frame_is_rendered_off_the_loop(client: TestClient) -> None:
    run = make(client, [400, 400])
    assert run["n_params"] > OFF_LOOP_PARAMS
    rendered_in, loop = render_thread(client, run["id"])
    assert rendered_in != loop


def test_a_small_nets_frame_is_rendered_on_the_loop(client: TestClient) -> None:
    run = make(client, [4])
    rendered_in, loop = render_thread(client, run["id"])
    assert rendered_in == loop
