"""What the server and a training worker say to each other: typed, frozen dataclasses.

The local executor pickles them over the worker's duplex pipe (`processes.py`); any
other executor carries them unchanged. One job starts a worker; then:

server → worker (read between batches and between epochs):
    Stop()          pause: finish nothing more, report the last whole epoch
    Shutdown()      the server is going down: the same, reason "shutdown"
    SetLive(changes)  live PATCH fields (LIVE_FIELDS but `name`), from the next epoch or batch

worker → server, one message per frame (at most every `frame_interval` s), then the end:
    Frame(epoch, metrics, params, state, snapshots)
    Final(epoch, metrics, params, state, snapshots, reason, message)

Imported by the worker child: stdlib, NumPy and `app.storage.store`'s record types only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from app.nn.metrics import EpochMetrics
from app.runs.run_config import RunConfig
from app.storage.store import Checkpoint, Snapshot

# The fields SetLive carries: the PATCHable fields a worker applies while it trains.
SET_LIVE_FIELDS = frozenset(
    {
        "learning_rate",
        "epochs",
        "max_epochs_per_second",
        "l1",
        "l2",
        "lr_schedule",
        "target_loss",
        "early_stopping",
    }
)

# Why a worker ended: "completed" (config epochs reached), "target" (a step's target
# epoch), "stopped", "shutdown", "diverged", "error", and the training controls' ends
# "target_loss" and "early_stopped".
Reason = Literal[
    "completed",
    "target",
    "stopped",
    "shutdown",
    "diverged",
    "error",
    "target_loss",
    "early_stopped",
]


# ---- server → worker ----------------------------------------------------------------


@dataclass(frozen=True)
class Stop:
    """Pause: the epoch in progress is abandoned (or finished if fast), the last whole
    epoch reported in `Final` (reason "stopped")."""


@dataclass(frozen=True)
class Shutdown:
    """The server is going down: like `Stop`, with reason "shutdown"."""


@dataclass(frozen=True)
class SetLive:
    """Live config changes (a subset of SET_LIVE_FIELDS, values as the config holds
    them; None is a value: e.g. no speed limit)."""

    changes: Mapping[str, Any]

    def __post_init__(self) -> None:
        unknown = set(self.changes) - SET_LIVE_FIELDS
        if unknown:
            raise ValueError(f"not a live field of a training worker: {sorted(unknown)}")
        object.__setattr__(self, "changes", dict(self.changes))


Command = Stop | Shutdown | SetLive


# ---- worker → server ----------------------------------------------------------------


@dataclass(frozen=True)
class Frame:
    """Progress since the previous frame. `metrics`: the epochs trained since (in
    order); `params`: the latest flat weights, or None when not due (a large net's go
    at most every LARGE_NET_PARAMS_INTERVAL); `state`: the full trainer state, every
    `checkpoint_interval` s; `snapshots`: the weight history kept since the last frame."""

    epoch: int
    metrics: tuple[EpochMetrics, ...] = ()
    params: np.ndarray | None = None
    state: Checkpoint | None = None
    snapshots: tuple[Snapshot, ...] = ()


@dataclass(frozen=True)
class Final:
    """The worker's last message: like a frame, with why it ended. `state` is always
    there unless training failed (its state may be broken); `epoch` is None when the
    trainer could not even be built."""

    epoch: int | None
    reason: Reason
    message: str | None = None
    metrics: tuple[EpochMetrics, ...] = ()
    params: np.ndarray | None = None
    state: Checkpoint | None = None
    snapshots: tuple[Snapshot, ...] = ()


FromWorker = Frame | Final


# ---- the job ------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerJob:
    """What a worker trains: the run's config, a custom
    dataset's x/y, where to resume (`state`: a full checkpoint past epoch 0, or
    `initial_params`: weights to start from at epoch 0), the epoch to train to, the
    last kept snapshot's epoch (the weight history goes on from it), and its rhythm."""

    config: RunConfig
    target: int
    checkpoint_interval: float
    frame_interval: float = 1 / 30
    custom: Mapping[str, np.ndarray] | None = None
    state: Checkpoint | None = None
    initial_params: np.ndarray | None = None
    last_snapshot: int | None = None
