"""The live view's budget in the shared frames (app.ui.frames): each part at its own rate
while the run trains, chart appends replayed for a viewer that is behind, and a fresh
whole fragment when it is too far behind."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.nn.metrics import EpochMetrics
from app.runs.models import RunStatus
from app.ui import frames as frames_module
from app.ui.frames import MAX_DELTAS, Rendered

RUN = {"start": False, "dataset": {"kind": "spiral", "n_samples": 60}, "hidden_layers": [8, 8]}


class Trainer:
    """Publishes epochs (and new weights) to a run's hub as its worker would, on the app's
    event loop; the frame cache reads a clock the test moves."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        response = client.post("/api/runs", json=RUN)
        assert response.status_code == 201, response.text
        self.run_id = str(response.json()["id"])
        self.app: Any = client.app
        self.now = 0.0
        self.frames = self.app.state.ui.frames
        self.frames.clock = lambda: self.now
        self.epoch = 0
        self.rng = np.random.default_rng(0)
        self.call(self._running)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def run() -> Any:
            return fn()

        return self.client.portal.call(run)  # type: ignore[union-attr]

    def _running(self) -> None:
        hub = self.app.state.manager.hub(self.run_id)
        hub.set_view(dataclasses.replace(hub.run_view, status=RunStatus.running))

    def train(self, epochs: int, weights: bool = True) -> None:
        def publish() -> None:
            hub = self.app.state.manager.hub(self.run_id)
            rows = []
            for _ in range(epochs):
                self.epoch += 1
                loss = 1.0 / self.epoch + 0.01 * self.rng.random()
                rows.append(EpochMetrics(self.epoch, loss, loss * 1.1, 0.5, 0.5, [0.1, 0.2, 0.3]))
            new = None
            if weights and hub.latest_weights is not None:
                new = [w + 0.05 * self.rng.standard_normal(w.shape) for w in hub.latest_weights]
            view = dataclasses.replace(hub.run_view, epoch=self.epoch)
            hub.publish(rows, view, new, hub.latest_biases if new else None)

        self.call(publish)

    def frame(self) -> Rendered:
        manager = self.app.state.manager
        return self.call(lambda: self.frames.current(manager, self.run_id))  # type: ignore[no-any-return]


def test_each_part_has_its_own_rate_while_the_run_trains(client: TestClient) -> None:
    t = Trainer(client)
    t.train(40)  # x span 64 epochs: the next 20 append to the charts
    first = t.frame()
    t.now = 0.1
    t.train(20)
    second = t.frame()
    # New weights, but the weight views are drawn at most every PART_INTERVALS seconds.
    for name in ("network", "output", "weights", "grads"):
        assert second.fragments[name] is first.fragments[name], name
    assert second.fragments["stats"] != first.fragments["stats"]
    message = (second.frame_message(first.version) or b"").decode()
    assert 'id="stats"' in message and 'id="network"' not in message
    assert "beforeend:#loss-lin-s0" in message  # the loss chart grows by an appended path
    t.now = 0.6
    t.train(30)
    third = t.frame()
    for name in ("output", "weights", "grads"):
        assert third.fragments[name] != first.fragments[name], name
    assert third.fragments["network"] is first.fragments["network"]  # every 1 s
    t.now = 1.2
    t.train(30)
    assert t.frame().fragments["network"] != first.fragments["network"]


def test_a_big_part_waits_for_its_byte_budget(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = Trainer(client)
    t.train(30)
    first = t.frame()
    size = len(first.fragments["network"])
    monkeypatch.setitem(frames_module.PART_BYTES_PER_S, "network", size / 3.0)  # 3 s a render
    t.now = 2.0
    t.train(30)
    assert t.frame().fragments["network"] is first.fragments["network"]
    t.now = 3.1
    t.train(30)
    assert t.frame().fragments["network"] != first.fragments["network"]


def test_a_stopped_run_is_drawn_in_full_at_once(client: TestClient) -> None:
    t = Trainer(client)
    t.train(30)
    first = t.frame()
    t.now = 0.05

    def stop() -> None:
        hub = t.app.state.manager.hub(t.run_id)
        hub.set_view(dataclasses.replace(hub.run_view, status=RunStatus.stopped))

    t.train(5)
    t.call(stop)
    last = t.frame()
    for name in ("network", "output", "weights", "grads"):
        assert last.fragments[name] != first.fragments[name], name


def appended_points(message: str, gid: str) -> list[str]:
    return re.findall(rf'beforeend:#{gid}"><path [^>]*? d="([^"]*)"', message)


def test_a_viewer_behind_gets_every_append_since_its_frame(client: TestClient) -> None:
    t = Trainer(client)
    t.train(2100)  # a span of 4096 epochs: the next frames only append
    start = t.frame()
    step_by_step = []
    for _ in range(5):
        t.now += 0.05
        t.train(40, weights=False)
        frame = t.frame()
        step_by_step.append(frame)
    behind = (step_by_step[-1].frame_message(start.version) or b"").decode()
    each = [
        (f.frame_message(prev.version) or b"").decode()
        for prev, f in zip([start, *step_by_step], step_by_step, strict=False)
    ]
    gid = "loss-lin-s0"
    assert appended_points(behind, gid) == [p for m in each for p in appended_points(m, gid)]
    assert 'id="loss-chart"' not in behind  # appends, not the whole chart


def test_a_viewer_too_far_behind_gets_the_whole_chart(client: TestClient) -> None:
    t = Trainer(client)
    t.train(2100)
    start = t.frame()
    latest = start
    for _ in range(4 * MAX_DELTAS):  # until the oldest appends are dropped
        t.now += 0.05
        t.train(5, weights=False)
        latest = t.frame()
        if latest.delta_from["loss"] > start.version:
            break
    assert latest.changed_at["loss"] == start.changed_at["loss"]  # never redrawn
    assert len(latest.deltas["loss"]) == MAX_DELTAS
    far = (latest.frame_message(start.version) or b"").decode()
    assert 'id="loss-chart" hx-swap-oob="innerHTML"' in far
    near = (latest.frame_message(latest.version - 1) or b"").decode()
    assert 'id="loss-chart"' not in near
