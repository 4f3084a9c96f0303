"""What the store keeps, as types: a checkpoint, a snapshot, and the arrays' one blob
format (``np.savez``, read back with ``allow_pickle=False``). An epoch's metrics are
``app.nn.metrics.EpochMetrics`` in its stored form (``finite()``)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

RUN_FIELDS = ("name", "config", "status", "message", "epoch", "last_metrics", "updated_at")
METRIC_COLUMNS = ("train_loss", "test_loss", "train_accuracy", "test_accuracy")
# A checkpoint whose meta has this flag holds only weights to start from, no trainer state.
PARAMS_ONLY = "params_only"
INITIAL_META = {PARAMS_ONLY: True}
METRIC_SLICE = 200  # metric rows inserted between two chances for other threads


Snapshot = tuple[int, np.ndarray]  # (epoch, flat weights at its end)


@dataclass(frozen=True)
class Checkpoint:
    """A trainer state at the end of `epoch` (arrays by name, JSON-able meta)."""

    epoch: int
    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays by name as one .npz blob; object arrays are refused (no pickles, either way)."""
    buffer = io.BytesIO()
    named: dict[str, Any] = {name: np.asarray(a) for name, a in arrays.items()}
    np.savez(buffer, allow_pickle=False, **named)
    return buffer.getvalue()


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def unpack_params(blob: bytes) -> np.ndarray:
    """The `params` array of a blob alone (the others in it are not decoded)."""
    with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
        params: np.ndarray = npz["params"]
    return params
