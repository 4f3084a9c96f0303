"""Live-view frames: rendered once per (run, hub version), shared by the page and every stream.

A ``FrameCache`` lives on ``app.state`` (no module-level state). Rendering is
synchronous and happens on the event loop thread, where the hub lives, so the
metrics columns it reads cannot change underneath it; a hundred viewers of a
run cost one render per hub version.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

from app.runs import sse
from app.ui.livechart import LiveCharts
from app.ui.losschart import run_baseline
from app.ui.maps import Layer, normalise_layers
from app.ui.outputview import RunData, run_data
from app.ui.views import (
    FRAGMENTS,
    LIVE_CHARTS,
    STATIC_FRAGMENTS,
    WEIGHT_FRAGMENTS,
    LiveInput,
    render_fragments,
)

# Depend only on the run's config (and data): re-rendered only when it changes.
CONFIG_FRAGMENTS = ("settings", "summary")
MAX_STATES = 32  # runs whose last frame is kept (those with open streams are never evicted)
# Seconds between two renders of a part while its run trains (the stats, the controls and
# the live charts go out every frame), and the bytes a second each may take: a big part
# (the output view of a 784-input net is ~80 KB) waits longer, so that a viewer gets
# ≤ 200 KB/s whatever the net (DESIGN "The live view's budget"). A run that does not
# train is drawn in full at once.
PART_INTERVALS: dict[str, float] = {
    "network": 1.0,
    "output": 0.5,
    "weights": 0.5,
    "grads": 0.5,
    "confusion": 0.5,
}
PART_BYTES_PER_S: dict[str, float] = {
    "network": 40_000,
    "output": 20_000,
    "weights": 20_000,
    "grads": 20_000,
    "confusion": 10_000,
}
# Above this many parameters a frame is rendered off the event loop (current_async).
OFF_LOOP_PARAMS = 100_000
MAX_DELTAS = 64  # appended chart updates kept per fragment for viewers that lag behind


def sse_event(event: str, data: str) -> bytes:
    """One SSE message (app.runs.sse.encode: a multi-line payload, several ``data:`` lines)."""
    return sse.encode(event, data)


def oob(name: str, html: str) -> str:
    """Wrap a fragment so htmx swaps it into its container (innerHTML) out of band."""
    return f'<div id="{FRAGMENTS[name]}" hx-swap-oob="innerHTML">{html}</div>'


@dataclass
class Rendered:
    """One rendered frame: fragments (name -> inner HTML) and when each last changed.

    A live-chart fragment (views.LIVE_CHARTS) changes in full only when its chart is
    redrawn; between redraws ``deltas[name]`` holds (version, out-of-band HTML) of every
    render since, which a viewer replays from its own version on; a viewer older than
    ``delta_from[name]`` (deltas dropped) gets the whole fragment.
    """

    version: int
    resets: int
    epoch: int
    fragments: dict[str, str]
    changed_at: dict[str, int]
    deltas: dict[str, tuple[tuple[int, str], ...]] = field(default_factory=dict)
    delta_from: dict[str, int] = field(default_factory=dict)
    _messages: dict[int, bytes | None] = field(default_factory=dict)
    _snapshot: bytes | None = None

    def snapshot_message(self) -> bytes:
        """Every fragment: what a new or reconnecting viewer gets first."""
        if self._snapshot is None:
            body = "".join(oob(name, html) for name, html in self.fragments.items())
            self._snapshot = sse_event("snapshot", body)
        return self._snapshot

    def frame_message(self, seen_version: int) -> bytes | None:
        """What changed after ``seen_version`` (None if nothing did)."""
        if seen_version in self._messages:
            return self._messages[seen_version]
        parts: list[str] = []
        for name, html in self.fragments.items():
            if name in STATIC_FRAGMENTS:
                continue
            if self.changed_at.get(name, 0) > seen_version or (
                name in self.deltas and seen_version < self.delta_from.get(name, 0)
            ):
                parts.append(oob(name, html))
            elif name in self.deltas:
                parts += [delta for v, delta in self.deltas[name] if v > seen_version]
        message = sse_event("frame", "".join(parts)) if parts else None
        if len(self._messages) > 16:
            self._messages.clear()
        self._messages[seen_version] = message
        return message


@dataclass
class FrameState:
    """Per-run memory between frames: the weights of the previous frame (for Δ), the data."""

    rendered: Rendered | None = None
    data: RunData | None = None
    layers: list[Layer] = field(default_factory=list)
    previous: list[Layer] | None = None
    layers_version: int = -1
    resets: int = -1
    subscribers: int = 0
    static: dict[str, str] = field(default_factory=dict)  # fragments that never change
    charts: LiveCharts = field(default_factory=LiveCharts)
    drawn_at: dict[str, float] = field(default_factory=dict)  # PART_INTERVALS: last render
    drawn_layers: dict[str, int] = field(default_factory=dict)  # layers_version drawn
    baseline: float | None = None  # regression: MSE of predicting the training mean
    config_key: str = ""  # the config the settings fragments were drawn from
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one off-loop render at a time


class FrameCache:
    """Rendered frames per run, keyed by hub version."""

    def __init__(self, env: Environment, clock: Callable[[], float] = time.monotonic) -> None:
        self.env = env
        self.clock = clock
        self.states: OrderedDict[str, FrameState] = OrderedDict()

    def _state(self, run_id: str) -> FrameState:
        state = self.states.get(run_id)
        if state is None:
            state = FrameState(charts=LiveCharts(self.clock))
            self.states[run_id] = state
            self._evict()
        self.states.move_to_end(run_id)
        return state

    def _evict(self) -> None:
        for run_id in list(self.states):
            if len(self.states) <= MAX_STATES:
                break
            if self.states[run_id].subscribers == 0:
                del self.states[run_id]

    def forget(self, run_id: str) -> None:
        self.states.pop(run_id, None)

    @contextmanager
    def subscribe(self, run_id: str) -> Iterator[None]:
        state = self._state(run_id)
        state.subscribers += 1
        try:
            yield
        finally:
            state.subscribers -= 1

    async def current_async(self, manager: Any, run_id: str) -> Rendered:
        """`current`, with a big net's render (forward passes over the input grid, images,
        templates: up to a second for millions of weights) done off the event loop, as a
        bounded job of the manager's, one at a time per run."""
        hub = manager.hub(run_id)
        state = self._state(run_id)
        if state.rendered is not None and state.rendered.version == hub.version:
            return state.rendered
        if hub.run_view.n_params <= OFF_LOOP_PARAMS:  # a few ms: on the loop, as it comes
            return self.current(manager, run_id)
        async with state.lock:
            if state.rendered is not None and state.rendered.version == hub.version:
                return state.rendered
            hub.latest_weights  # noqa: B018 -- loads the layers here, where the weights cache lives
            rendered: Rendered = await manager.jobs.run(self.current, manager, run_id)
            return rendered

    def current(self, manager: Any, run_id: str) -> Rendered:
        """The frame for the hub's current version, rendering it if nobody has yet.

        Raises the manager's ProblemError(404) for an unknown run.
        """
        hub = manager.hub(run_id)
        state = self._state(run_id)
        if state.rendered is not None and state.rendered.version == hub.version:
            return state.rendered
        if state.resets != hub.resets:
            state.previous = None
            state.resets = hub.resets
            # A structural PATCH re-initialises the run in place (a reset): its data may be new.
            state.data = None
            state.static.clear()
            state.charts = LiveCharts(self.clock)
            state.drawn_at.clear()
        self._take_weights(state, hub)
        run = hub.run_view.public()
        if state.data is None:
            raw = manager.data(run_id)
            state.data = run_data(raw, run["task"], run["layer_sizes"])
            state.baseline = run_baseline(raw, run["task"])
        old = state.rendered if state.rendered and state.rendered.resets == hub.resets else None
        reuse = self._reusable(state, old, run)
        captions = dict(state.charts.captions)
        state.charts.deltas.clear()
        inp = LiveInput(
            run, hub.history.columns(0), state.layers, state.previous, state.data, state.baseline
        )
        inp.charts = state.charts
        fragments = render_fragments(self.env, inp, state.static, reuse)
        now = self.clock()
        for name in fragments:
            if name not in reuse:
                state.drawn_at[name] = now
                state.drawn_layers[name] = state.layers_version
        rendered = Rendered(hub.version, hub.resets, int(run["epoch"]), fragments, {})
        for name, html in fragments.items():
            same = old is not None and old.fragments.get(name) == html
            rendered.changed_at[name] = old.changed_at[name] if same and old else hub.version
        self._chart_deltas(state.charts, captions, old, rendered)
        state.rendered = rendered
        return rendered

    @staticmethod
    def _take_weights(state: FrameState, hub: Any) -> None:
        """Normalise the hub's weights when new ones arrived (the old ones become `previous`)."""
        if state.layers_version == hub.layers_version:
            return
        new: list[Layer] = []
        if hub.latest_weights is not None:
            weights = hub.latest_weights
            biases = hub.latest_biases or [None] * len(weights)
            new = normalise_layers(zip(weights, biases, strict=True))
        if state.layers_version != -1:
            state.previous = state.layers
        state.layers = new
        state.layers_version = hub.layers_version

    def _reusable(
        self, state: FrameState, old: Rendered | None, run: dict[str, Any]
    ) -> dict[str, str]:
        """Fragments of the last frame that this one takes as they are: weight views whose
        weights did not change, the settings while the config holds, and, while the run
        trains, the parts drawn less than PART_INTERVALS ago."""
        # The settings panel changes only with the config (most versions are new epochs).
        config_key = json.dumps([run["config"], run["layer_sizes"], run["task"]], default=str)
        same_config, state.config_key = config_key == state.config_key, config_key
        if old is None:
            return {}
        reuse = {
            name: old.fragments[name]
            for name in WEIGHT_FRAGMENTS
            if state.drawn_layers.get(name) == state.layers_version
        }
        if same_config:
            reuse |= {name: old.fragments[name] for name in CONFIG_FRAGMENTS}
        if str(run["status"]) == "running":
            now = self.clock()
            for name, interval in PART_INTERVALS.items():
                gap = max(interval, len(old.fragments[name]) / PART_BYTES_PER_S[name])
                if now - state.drawn_at.get(name, -math.inf) < gap:
                    reuse[name] = old.fragments[name]
        return reuse

    @staticmethod
    def _chart_deltas(
        live: LiveCharts, captions: dict[str, object], old: Rendered | None, rendered: Rendered
    ) -> None:
        """Mark a live-chart fragment changed only when redrawn; else queue its appends."""
        for name, chart_ids in LIVE_CHARTS.items():
            updated = [cid for cid in chart_ids if cid in live.deltas]
            if not updated:
                continue  # no chart in it this time (regression accuracy): compared as HTML
            redrawn = (
                old is None
                or any(live.deltas[cid] is None for cid in updated)
                or captions.get(name) != live.captions.get(name)
                or name not in old.deltas
            )
            version = rendered.version
            if redrawn:
                rendered.changed_at[name] = version
                rendered.deltas[name] = ()
                rendered.delta_from[name] = version
                continue
            assert old is not None
            rendered.changed_at[name] = old.changed_at[name]
            deltas = old.deltas[name]
            rendered.delta_from[name] = old.delta_from[name]
            delta = "".join(live.deltas[cid] or "" for cid in updated)
            if delta:
                deltas = (*deltas, (version, delta))
            if len(deltas) > MAX_DELTAS:
                rendered.delta_from[name] = deltas[0][0]
                deltas = deltas[1:]
            rendered.deltas[name] = deltas
