"""The heavy reads (predict, `/weights`, `/data`) as plain functions a job thread runs.

Each works on a snapshot handed to it (the weights are never changed in place)
and touches no shared state. JSON comes out already encoded: orjson holds the
GIL for a whole call, so a big array is encoded in slices of `CHUNK` numbers
(~1 ms each), letting the event loop run between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from app.nn.datasets import Dataset, dataset_to_json
from app.nn.features import feature_matrix
from app.nn.network import MLP
from app.runs.broadcast import finite_list
from app.runs.models import MAX_PREDICT_ROWS, ProblemError

CHUNK = 1 << 13  # numbers per orjson call (~0.3 ms holding the GIL)
PIECE = 1 << 20  # bytes per piece of a response sent piece by piece
_NUMPY = orjson.OPT_SERIALIZE_NUMPY  # NaN and ±Inf are written as null


def encode_array(a: np.ndarray) -> bytes:
    """A 1-D or 2-D array as JSON (nested lists of float64 numbers, non-finite -> null),
    the same text `orjson.dumps(a.tolist())` gives, encoded slice by slice."""
    return b"".join(_array_parts(a))


def _array_parts(a: np.ndarray) -> list[bytes]:
    if a.ndim not in (1, 2):
        raise ValueError(f"expected a 1-D or 2-D array, got {a.ndim}-D")
    if a.shape[0] == 0:
        return [b"[]"]
    step = CHUNK if a.ndim == 1 else max(1, CHUNK // max(1, a.shape[1]))
    parts = [b"["]
    for start in range(0, a.shape[0], step):
        block = np.ascontiguousarray(a[start : start + step], dtype=np.float64)
        if start:
            parts.append(b",")
        parts.append(orjson.dumps(block, option=_NUMPY)[1:-1])  # without the outer brackets
    parts.append(b"]")
    return parts


def weights_parts(
    epoch: int, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None
) -> list[bytes]:
    """API.md `GET /weights` ({"epoch", "layers": [{"weights", "biases"}]}) as pieces of
    at most ~1 MB that join to the whole text: sent one by one, no piece is copied twice."""
    parts = [b'{"epoch":%d,"layers":[' % epoch]
    for i, w in enumerate(weights):
        parts.append(b'{"weights":' if i == 0 else b',{"weights":')
        parts.extend(_array_parts(w))
        parts.append(b',"biases":')
        parts.extend([b"null"] if biases is None else _array_parts(biases[i]))
        parts.append(b"}")
    parts.append(b"]}")
    return _coalesced(parts, PIECE)


def _coalesced(parts: list[bytes], size: int) -> list[bytes]:
    """Consecutive parts joined into pieces of about `size` bytes."""
    pieces: list[bytes] = []
    run: list[bytes] = []
    length = 0
    for part in parts:
        run.append(part)
        length += len(part)
        if length >= size:
            pieces.append(b"".join(run))
            run, length = [], 0
    if run:
        pieces.append(b"".join(run))
    return pieces


def encode_weights(
    epoch: int, weights: Sequence[np.ndarray], biases: Sequence[np.ndarray] | None
) -> bytes:
    return b"".join(weights_parts(epoch, weights, biases))


def encode_data(data: Dataset) -> bytes:
    """API.md `GET /data`."""
    return orjson.dumps(dataset_to_json(data), option=_NUMPY)


def checked_inputs(inputs: Any, n_in: int) -> np.ndarray:
    """Predict inputs as an (n, n_in) float64 array; 422 (field `inputs`) otherwise."""
    try:
        x = np.asarray(inputs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProblemError(422, "inputs must be rows of numbers", "inputs") from None
    if x.ndim != 2 or x.shape[1] != n_in:
        raise ProblemError(
            422, f"inputs must be rows of {n_in} numbers, got shape {list(x.shape)}", "inputs"
        )
    if not 1 <= x.shape[0] <= MAX_PREDICT_ROWS:
        raise ProblemError(422, f"inputs must have 1-{MAX_PREDICT_ROWS} rows", "inputs")
    if not np.isfinite(x).all():
        raise ProblemError(422, "every input must be a finite number", "inputs")
    return x


def predict(
    net: MLP, params: np.ndarray, x: np.ndarray, features: Sequence[str] | None, task: str
) -> dict[str, Any]:
    """API.md `POST /predict` of inputs ``x`` (n, n_in), already checked, with weights
    ``params`` loaded into ``net`` (a fresh network of the run's shape)."""
    net.params[...] = params
    if features:
        x = feature_matrix(x, features)
    with np.errstate(all="ignore"):
        out = net.forward(x).astype(np.float64)
    result: dict[str, Any] = {"outputs": [finite_list(row) for row in out]}
    if task == "classification":
        labels = (out[:, 0] >= 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(1)
        # A row with a non-finite output (a diverged net) has no class: null, not a guess.
        finite = np.isfinite(out).all(axis=1)
        result["labels"] = [int(c) if ok else None for c, ok in zip(labels, finite, strict=True)]
    return result


def predict_json(
    net: MLP, params: np.ndarray, x: np.ndarray, features: Sequence[str] | None, task: str
) -> bytes:
    return orjson.dumps(predict(net, params, x, features, task))
