"""Live state of one run for any number of stream subscribers (SSE, UI fragments).

Frames are coalesced, not queued: the hub keeps the run's append-only metrics
history and its latest weights; a subscriber holds only a cursor (the last
epoch it has) and a version, and on each wake-up takes every epoch after its
cursor. A slow subscriber therefore costs no memory, and N subscribers at the
same cursor share one encoding (`frame_json` is cached per hub version).

Only the event loop thread touches a hub.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import numpy as np
import orjson

from app.nn.metrics import EpochMetrics
from app.runs.models import RunStatus, RunView

LARGE_NET_PARAMS = 100_000  # API.md: above this, frames may carry `layers` less often
_SCALAR_COLUMNS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "learning_rate")
_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY
LayersLoader = Callable[[], tuple[list[np.ndarray], list[np.ndarray] | None, int]]


def finite_list(values: np.ndarray) -> list[float | None]:
    """JSON-safe list: NaN/±Inf -> None."""
    return [v if math.isfinite(v) else None for v in values.tolist()]


STATUS_LOG_SIZE = 64


class MetricsHistory:
    """Columnar metrics of epochs 1..N in strictly increasing epoch order.

    epoch: (n,) int64; train_loss, test_loss, train_accuracy, test_accuracy: (n,)
    float64 with NaN for "none"; grad_norms: (n, n_layers) float64. Appends are
    amortised O(1) (capacity doubling); slices are views until encoded.
    """

    def __init__(self, n_layers: int, capacity: int = 256) -> None:
        self.n_layers = n_layers
        self._n = 0
        self._epoch = np.zeros(capacity, dtype=np.int64)
        # One contiguous array per column: slices encode straight to JSON.
        self._values = [np.full(capacity, np.nan) for _ in _SCALAR_COLUMNS]
        self._grads = np.full((capacity, n_layers), np.nan)

    def __len__(self) -> int:
        return self._n

    @property
    def last_epoch(self) -> int:
        return int(self._epoch[self._n - 1]) if self._n else 0

    def clear(self) -> None:
        self._n = 0

    def truncate_after(self, epoch: int) -> None:
        """Forget epochs > `epoch` (used when a run is rewound to its checkpoint)."""
        self._n = int(np.searchsorted(self._epoch[: self._n], epoch, side="right"))

    def _grow(self, need: int) -> None:
        capacity = len(self._epoch)
        if need <= capacity:
            return
        while capacity < need:
            capacity *= 2

        def grown(old: np.ndarray) -> np.ndarray:
            new = np.full((capacity, *old.shape[1:]), np.nan if old.dtype.kind == "f" else 0)
            new = new.astype(old.dtype)
            new[: self._n] = old[: self._n]
            return new

        self._epoch = grown(self._epoch)
        self._values = [grown(v) for v in self._values]
        self._grads = grown(self._grads)

    def extend(self, rows: Iterable[EpochMetrics]) -> None:
        """Append rows; a row whose epoch is not after every earlier one is ignored
        (exactly-once). Column-wise: a fast run sends thousands of rows a second, and
        this runs on the event loop."""
        rows = list(rows)
        if not rows:
            return
        epochs = np.fromiter((r.epoch for r in rows), dtype=np.int64, count=len(rows))
        before = np.maximum.accumulate(np.concatenate(([self.last_epoch], epochs[:-1])))
        keep = epochs > before
        if not keep.all():
            rows = [r for r, k in zip(rows, keep.tolist(), strict=True) if k]
            epochs = epochs[keep]
        if not rows:
            return
        i, k = self._n, len(rows)
        self._grow(i + k)
        self._epoch[i : i + k] = epochs
        # None becomes NaN in a float array
        scalars = np.array(
            [
                (r.train_loss, r.test_loss, r.train_accuracy, r.test_accuracy, r.learning_rate)
                for r in rows
            ],
            dtype=np.float64,
        )
        for j, column in enumerate(self._values):
            column[i : i + k] = scalars[:, j]
        norms = [r.grad_norms for r in rows]
        if all(len(g) == self.n_layers for g in norms):
            self._grads[i : i + k] = np.array(norms, dtype=np.float64)
        else:  # rows of another network shape: keep what fits, NaN elsewhere
            for row, g in enumerate(norms, start=i):
                self._grads[row] = np.nan
                g = g[: self.n_layers]
                self._grads[row, : len(g)] = np.array(g, dtype=np.float64)
        self._n = i + k

    def _start(self, since: int) -> int:
        return int(np.searchsorted(self._epoch[: self._n], since, side="right"))

    def columns(self, since: int = 0, until: int | None = None) -> dict[str, np.ndarray]:
        """Views of the epochs > `since` (and <= `until`); do not keep them across appends."""
        end = self._n if until is None else self._start(until)
        s = slice(self._start(since), max(end, self._start(since)))
        cols: dict[str, np.ndarray] = {"epoch": self._epoch[s]}
        for name, column in zip(_SCALAR_COLUMNS, self._values, strict=True):
            cols[name] = column[s]
        cols["grad_norms"] = self._grads[s]
        return cols

    def slice(self, since: int = 0) -> dict[str, list[Any]]:
        """API.md columnar metrics of epochs > `since`, plus `grad_norms` (per epoch, per layer)."""
        cols = self.columns(since)
        out: dict[str, list[Any]] = {"epoch": cols["epoch"].tolist()}
        for name in _SCALAR_COLUMNS:
            out[name] = finite_list(cols[name])
        out["grad_norms"] = [finite_list(row) for row in cols["grad_norms"]]
        return out

    def rows(self, since: int = 0) -> list[EpochMetrics]:
        cols = self.slice(since)
        return [
            EpochMetrics(e, a, b, c, d, g, r)
            for e, a, b, c, d, g, r in zip(
                cols["epoch"],
                cols["train_loss"],
                cols["test_loss"],
                cols["train_accuracy"],
                cols["test_accuracy"],
                cols["grad_norms"],
                cols["learning_rate"],
                strict=True,
            )
        ]

    def encode(self, since: int = 0, until: int | None = None) -> bytes:
        """`slice(since)` (epochs <= `until`) as JSON bytes (orjson writes NaN as null)."""
        return orjson.dumps(self.columns(since, until), option=_JSON_OPTS)


def layers_public(
    weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None
) -> list[dict[str, Any]]:
    """API.md `layers`: [{"weights": (n_out, n_in) nested lists, "biases": (n_out,) | None}]."""
    return [
        {"weights": w.tolist(), "biases": None if biases is None else biases[i].tolist()}
        for i, w in enumerate(weights)
    ]


class RunHub:
    """One run's live state; see the module docstring.

    version bumps on every frame, status change, reset, rename and delete;
    layers_version only when new weights arrive (an SSE writer for a large net
    sends `layers` when it changed and at least once a second — `large` says
    whether it may skip them).
    """

    def __init__(self, view: RunView, load_layers: LayersLoader | None = None) -> None:
        """`load_layers() -> (weights, biases, epoch)` supplies the initial weights on first
        use, so a hub made only for its metrics never reads a checkpoint."""
        self.run_view = view
        self._load_layers = load_layers
        self.history = MetricsHistory(n_layers=len(view.layer_sizes) - 1)
        self.version = 0
        self.resets = 0
        self.closed = False
        self.subscribers = 0
        self._weights: list[np.ndarray] | None = None
        self._biases: list[np.ndarray] | None = None
        self._layers_epoch = 0
        self.layers_version = 0
        self._event = asyncio.Event()
        self._frame_cache: dict[tuple[int, bool, int | None], bytes] = {}
        self._cache_version = -1
        self._layers_json: tuple[int, bytes] | None = None
        # Every status change, so a stream reports each one even when several happen
        # between two of its wake-ups: (seq, epoch at the change, `status` event JSON).
        self.status_seq = 0
        self._status_log: deque[tuple[int, int, bytes]] = deque(maxlen=STATUS_LOG_SIZE)

    # ---- read side ------------------------------------------------------------------

    @property
    def status(self) -> RunStatus:
        return self.run_view.status

    @property
    def message(self) -> str | None:
        return self.run_view.message

    @property
    def large(self) -> bool:
        return self.run_view.n_params > LARGE_NET_PARAMS

    @property
    def last_epoch(self) -> int:
        """The last epoch whose metrics the hub holds (0 = none)."""
        return self.history.last_epoch

    def _ensure_layers(self) -> None:
        if self._load_layers is not None:
            loader, self._load_layers = self._load_layers, None
            if self._weights is None:
                self._weights, self._biases, self._layers_epoch = loader()

    @property
    def latest_weights(self) -> list[np.ndarray] | None:
        """Per layer (n_out, n_in) arrays at `layers_epoch`; never mutated (a snapshot)."""
        self._ensure_layers()
        return self._weights

    @property
    def latest_biases(self) -> list[np.ndarray] | None:
        """Per layer (n_out,) arrays, or None for a network without biases."""
        self._ensure_layers()
        return self._biases

    @property
    def layers_epoch(self) -> int:
        self._ensure_layers()
        return self._layers_epoch

    @property
    def latest_layers(self) -> list[dict[str, Any]] | None:
        """API.md `layers` of the latest weights (JSON-ready lists; at `layers_epoch`)."""
        if self.latest_weights is None:
            return None
        return layers_public(self.latest_weights, self.latest_biases)

    async def wait(self, seen_version: int, timeout: float | None) -> int:
        """Return the version as soon as it is > `seen_version` (or the hub closed), or
        after `timeout` seconds."""
        if self.version > seen_version or self.closed:
            return self.version
        event = self._event
        with suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.version

    @contextmanager
    def subscription(self) -> Iterator[RunHub]:
        """Count a subscriber for diagnostics while the block runs."""
        self.subscribers += 1
        try:
            yield self
        finally:
            self.subscribers -= 1

    def layers_json(self) -> bytes:
        """The latest `layers` as JSON bytes, encoded once per weights update."""
        if self._layers_json is None or self._layers_json[0] != self.layers_version:
            if self.latest_weights is None:
                encoded = b"null"
            else:
                layers = [
                    {
                        "weights": w,
                        "biases": None if self.latest_biases is None else self.latest_biases[i],
                    }
                    for i, w in enumerate(self.latest_weights)
                ]
                encoded = orjson.dumps(layers, option=_JSON_OPTS)
            self._layers_json = (self.layers_version, encoded)
        return self._layers_json[1]

    def frame_json(self, since_epoch: int, with_layers: bool, until: int | None = None) -> bytes:
        """API.md `epoch` frame data: every epoch > `since_epoch` (and <= `until`), `layers`
        when asked.

        {"epoch": last epoch in the frame (or `since_epoch` if none), "metrics": {...},
        "layers": [...], "status": S}. Cached per (since_epoch, with_layers, until) for
        the current version, so subscribers at the same cursor share one encoding.
        """
        if self._cache_version != self.version:
            self._frame_cache.clear()
            self._cache_version = self.version
        key = (since_epoch, with_layers, until)
        cached = self._frame_cache.get(key)
        if cached is not None:
            return cached
        last = self.history.last_epoch if until is None else min(until, self.history.last_epoch)
        epoch = max(last, since_epoch)
        parts = [
            b'{"epoch":',
            str(epoch).encode(),
            b',"metrics":',
            self.history.encode(since_epoch, until),
        ]
        if with_layers and self.latest_weights is not None:
            parts += [b',"layers":', self.layers_json()]
        parts += [b',"status":', orjson.dumps(str(self.status)), b"}"]
        frame = b"".join(parts)
        if len(self._frame_cache) >= 64:  # many distinct cursors: keep the cache bounded
            self._frame_cache.clear()
        self._frame_cache[key] = frame
        return frame

    def snapshot(self, since_epoch: int = 0) -> dict[str, Any]:
        """API.md `snapshot` event data as a dict."""
        return {
            "run": self.run_view.public(),
            "layers": self.latest_layers,
            "metrics": self.history.slice(since_epoch),
        }

    def snapshot_json(self, since_epoch: int = 0) -> bytes:
        """`snapshot` as JSON bytes (metrics without grad_norms are API.md's; extra is fine)."""
        return b"".join(
            [
                b'{"run":',
                orjson.dumps(self.run_view.public()),
                b',"layers":',
                self.layers_json(),
                b',"metrics":',
                self.history.encode(since_epoch),
                b"}",
            ]
        )

    def statuses_since(self, seq: int) -> list[tuple[int, int, bytes]]:
        """The status changes after `seq`: (seq, epoch at the change, `status` JSON)."""
        return [entry for entry in self._status_log if entry[0] > seq]

    def status_json(self) -> bytes:
        """API.md `status` event data."""
        return orjson.dumps({"status": str(self.status), "message": self.message})

    # ---- write side (the manager) ---------------------------------------------------

    def _set_view(self, view: RunView) -> None:
        if view.status != self.run_view.status:
            self.status_seq += 1
            event = orjson.dumps({"status": str(view.status), "message": view.message})
            self._status_log.append((self.status_seq, self.history.last_epoch, event))
        self.run_view = view

    def _bump(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    def set_layers(
        self, weights: list[np.ndarray], biases: list[np.ndarray] | None, epoch: int
    ) -> None:
        self._load_layers = None
        self._weights = weights
        self._biases = biases
        self._layers_epoch = epoch
        self.layers_version += 1

    def release_layers(self, load_layers: LayersLoader) -> None:
        """Forget the weights (the run is idle: its memory goes back); ``load_layers``
        brings the same weights back on next use, so ``layers_version`` stays."""
        self._weights = self._biases = None
        self._load_layers = load_layers
        self._layers_json = None
        self._frame_cache.clear()

    def publish(
        self,
        rows: Sequence[EpochMetrics],
        view: RunView,
        weights: list[np.ndarray] | None = None,
        biases: list[np.ndarray] | None = None,
    ) -> None:
        """New epochs (and optionally new weights) arrived."""
        self.history.extend(rows)
        if weights is not None:
            self.set_layers(weights, biases, view.epoch)
        self._set_view(view)
        self._bump()

    def set_view(self, view: RunView) -> None:
        """Status change or rename."""
        self._set_view(view)
        self._bump()

    def reset(
        self, view: RunView, weights: list[np.ndarray], biases: list[np.ndarray] | None
    ) -> None:
        """Epoch 0, empty history: subscribers send a fresh snapshot. The view may have a
        new shape (a structural PATCH): the history then gets its new layer count."""
        n_layers = len(view.layer_sizes) - 1
        if n_layers != self.history.n_layers:
            self.history = MetricsHistory(n_layers=n_layers)
        self.history.clear()
        self.set_layers(weights, biases, 0)
        self._set_view(view)
        self.resets += 1
        self._bump()

    def replace_layers(
        self, view: RunView, weights: list[np.ndarray], biases: list[np.ndarray] | None
    ) -> None:
        """Weights edited by hand (no new epoch): subscribers send a fresh snapshot, which
        carries them, with the history they already have."""
        self.set_layers(weights, biases, view.epoch)
        self._set_view(view)
        self.resets += 1
        self._bump()

    def rewind(self, epoch: int, view: RunView) -> None:
        self.history.truncate_after(epoch)
        self._set_view(view)
        self._bump()

    def wake(self) -> None:
        """Wake every waiting stream without new data (the server is shutting down)."""
        self._bump()

    def close(self) -> None:
        """The run was deleted: every stream ends."""
        self.closed = True
        self._bump()
