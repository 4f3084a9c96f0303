"""Live-view frames: rendered once per (run, hub version), shared by the page and every stream.

A ``FrameCache`` lives on ``app.state`` (no module-level state). Rendering is
synchronous and happens on the event loop thread, where the hub lives, so the
metrics columns it reads cannot change underneath it; a hundred viewers of a
run cost one render per hub version.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

from app.runs import sse
from app.ui.losschart import run_baseline
from app.ui.maps import Layer, normalise_layers
from app.ui.outputview import RunData, run_data
from app.ui.views import (
    FRAGMENTS,
    STATIC_FRAGMENTS,
    WEIGHT_FRAGMENTS,
    LiveInput,
    render_fragments,
)

# Depend only on the run's config (and data): re-rendered only when it changes.
CONFIG_FRAGMENTS = ("settings", "summary")
MAX_STATES = 32  # runs whose last frame is kept (those with open streams are never evicted)


def sse_event(event: str, data: str) -> bytes:
    """One SSE message (app.runs.sse.encode: a multi-line payload, several ``data:`` lines)."""
    return sse.encode(event, data)


def oob(name: str, html: str) -> str:
    """Wrap a fragment so htmx swaps it into its container (innerHTML) out of band."""
    return f'<div id="{FRAGMENTS[name]}" hx-swap-oob="innerHTML">{html}</div>'


@dataclass
class Rendered:
    """One rendered frame: fragments (name -> inner HTML) and when each last changed."""

    version: int
    resets: int
    epoch: int
    fragments: dict[str, str]
    changed_at: dict[str, int]
    _messages: dict[int, bytes | None] = field(default_factory=dict)
    _snapshot: bytes | None = None

    def snapshot_message(self) -> bytes:
        """Every fragment: what a new or reconnecting viewer gets first."""
        if self._snapshot is None:
            body = "".join(oob(name, html) for name, html in self.fragments.items())
            self._snapshot = sse_event("snapshot", body)
        return self._snapshot

    def frame_message(self, seen_version: int) -> bytes | None:
        """The fragments that changed after ``seen_version`` (None if none did)."""
        if seen_version in self._messages:
            return self._messages[seen_version]
        names = [
            n
            for n in self.fragments
            if n not in STATIC_FRAGMENTS and self.changed_at.get(n, 0) > seen_version
        ]
        message = (
            sse_event("frame", "".join(oob(n, self.fragments[n]) for n in names)) if names else None
        )
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
    baseline: float | None = None  # regression: MSE of predicting the training mean
    config_key: str = ""  # the config the settings fragments were drawn from


class FrameCache:
    """Rendered frames per run, keyed by hub version."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.states: OrderedDict[str, FrameState] = OrderedDict()

    def _state(self, run_id: str) -> FrameState:
        state = self.states.get(run_id)
        if state is None:
            state = FrameState()
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
        weights_changed = state.layers_version != hub.layers_version
        if weights_changed:
            new: list[Layer] = []
            if hub.latest_weights is not None:
                weights = hub.latest_weights
                biases = hub.latest_biases or [None] * len(weights)
                new = normalise_layers(zip(weights, biases, strict=True))
            if state.layers_version != -1:
                state.previous = state.layers
            state.layers = new
            state.layers_version = hub.layers_version
        view = hub.run_view
        run = view.public()
        if state.data is None:
            raw = manager.data(run_id)
            state.data = run_data(raw, run["task"], run["layer_sizes"])
            state.baseline = run_baseline(raw, run["task"])
        metrics = hub.history.columns(0)
        old = state.rendered
        # Most versions bring metrics only (large nets send weights ≤ 1/s): keep the weight views.
        reuse = (
            {name: old.fragments[name] for name in WEIGHT_FRAGMENTS}
            if old is not None and not weights_changed and old.resets == hub.resets
            else {}
        )
        # The settings panel changes only with the config (most versions are new epochs).
        config_key = json.dumps([run["config"], run["layer_sizes"], run["task"]], default=str)
        if old is not None and config_key == state.config_key and old.resets == hub.resets:
            reuse |= {name: old.fragments[name] for name in CONFIG_FRAGMENTS}
        state.config_key = config_key
        fragments = render_fragments(
            self.env,
            LiveInput(run, metrics, state.layers, state.previous, state.data, state.baseline),
            state.static,
            reuse,
        )
        changed_at = {
            name: (
                old.changed_at.get(name, hub.version)
                if old is not None and old.fragments.get(name) == html
                else hub.version
            )
            for name, html in fragments.items()
        }
        state.rendered = Rendered(hub.version, hub.resets, int(run["epoch"]), fragments, changed_at)
        return state.rendered
