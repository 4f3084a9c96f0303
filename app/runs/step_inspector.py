"""The numbers inside one backprop step, for the inspector (`/runs/{id}/inspect`).

Plain SGD on one batch of the training set in stored order, with a snapshot of
a run's weights; nothing is updated. Rows are processed in chunks so a full
batch of a large dataset stays within bounded memory; each chunk's means are
weighted by its share of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.nn.datasets import make_dataset
from app.nn.features import feature_matrix
from app.nn.network import MLP
from app.runs.errors import ProblemError
from app.runs.worker import dataset_spec


@dataclass(frozen=True)
class StepInputs:
    """A run's state at the call: `net` holds the snapshot's weights."""

    net: MLP
    weights: list[np.ndarray]  # views of the snapshot, layer l: (n_out, n_in)
    biases: list[np.ndarray] | None
    config: dict[str, Any]
    custom: dict[str, np.ndarray] | None
    task: str
    epoch: int


def inspect_step(inputs: StepInputs, batch: int, sample: int, limit: int) -> dict[str, Any]:
    """One plain-SGD step's numbers on batch ``batch``.

    Per layer l (JSON lists, at most ``limit`` rows by ``limit`` units, with
    ``truncated`` flags): z, a, delta (B, n_l) — delta is dE/dz of the batch-mean
    loss, so it carries the 1/B — weights/nabla_w/weights_after (n_l, n_{l-1}),
    biases/nabla_b/biases_after (n_l,) or None, penalty_w (the l1/l2 terms) or None;
    ``sample``: row ``sample`` of the batch (x, y, and per layer z, a, delta).
    ProblemError 422 naming ``batch``/``sample`` when out of range.
    """
    net, weights, biases, config, custom = (
        inputs.net,
        inputs.weights,
        inputs.biases,
        inputs.config,
        inputs.custom,
    )
    epoch = inputs.epoch
    sizes = list(net.layer_sizes)
    n_layers = len(sizes) - 1
    l1, l2, lr = (float(config[k]) for k in ("l1", "l2", "learning_rate"))
    data = make_dataset(dataset_spec(config, custom))
    n = data.x_train.shape[0]
    size = n if config["batch_size"] is None else min(int(config["batch_size"]), n)
    n_batches = -(-n // size)
    if not 0 <= batch < n_batches:
        raise ProblemError(422, f"batch must be in 0-{n_batches - 1}", "batch")
    start, stop = batch * size, min((batch + 1) * size, n)
    rows = stop - start
    if not 0 <= sample < rows:
        raise ProblemError(422, f"sample must be in 0-{rows - 1} (batch {batch})", "sample")
    raw_x = np.asarray(data.x_train[start:stop], dtype=net.dtype)
    features = config.get("features")
    # The network reads the features; the inspector shows the raw inputs (API.md v1.1).
    x = raw_x if not features else feature_matrix(raw_x, features).astype(net.dtype)
    y = np.asarray(data.y_train[start:stop])
    if inputs.task == "classification":  # dense targets, as the trainer builds them
        k = sizes[-1]
        y = y[:, None] if k == 1 else (y[:, None] == np.arange(k)).astype(net.dtype)
    y = np.asarray(y, dtype=net.dtype).reshape(rows, sizes[-1])
    # Chunks of rows bound the memory; each chunk's means are weighted by its share.
    chunk = max(1, (1 << 21) // sum(sizes))
    loss, grads_w, grads_b, keep = 0.0, [0.0] * n_layers, [0.0] * n_layers, limit
    kept: dict[str, list[list[np.ndarray]]] = {"z": [], "a": [], "delta": []}
    one: dict[str, list[np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for lo in range(0, rows, chunk):
            hi, share = min(lo + chunk, rows), min(lo + chunk, rows) - lo
            g = net.backward(x[lo:hi], y[lo:hi], config["loss"])
            w = share / rows
            loss += g.loss * w
            for i in range(n_layers):
                g.deltas[i] *= w
                grads_w[i] = grads_w[i] + g.nabla_w[i] * w
                grads_b[i] = grads_b[i] + (g.nabla_b[i] * w if g.nabla_b else 0.0)
            for key, arrs in (("z", g.zs), ("a", g.activations[1:]), ("delta", g.deltas)):
                if lo < keep:
                    kept[key].append([a[: keep - lo] for a in arrs])
                if lo <= sample < hi:
                    one[key] = [a[sample - lo] for a in arrs]

    def cut(a: Any) -> Any:
        return None if a is None else np.asarray(a, np.float64)[..., :limit][:limit].tolist()

    layers = []
    for i in range(n_layers):
        wi = weights[i]
        pen = l2 * wi + l1 * np.sign(wi) if (l1 or l2) else None
        step = grads_w[i] if pen is None else grads_w[i] + pen
        bi = None if biases is None else biases[i]
        layers.append(
            {
                "n_in": sizes[i],
                "n_out": sizes[i + 1],
                "truncated": max(sizes[i], sizes[i + 1]) > limit,
                **{k: cut(np.concatenate([c[i] for c in kept[k]])) for k in kept},
                "weights": cut(wi),
                "nabla_w": cut(grads_w[i]),
                "penalty_w": cut(pen),
                "weights_after": cut(wi - lr * step),
                "biases": cut(bi),
                "nabla_b": None if bi is None else cut(grads_b[i]),
                "biases_after": None if bi is None else cut(bi - lr * grads_b[i]),
            }
        )
    return {
        "epoch": epoch,
        "batch": batch,
        "n_batches": n_batches,
        "batch_start": start,
        "batch_size": rows,
        "rows_truncated": rows > limit,
        "limit": limit,
        "truncated": rows > limit or max(sizes) > limit,
        "loss": loss,
        "learning_rate": lr,
        "l1": l1,
        "l2": l2,
        "update": "sgd",
        "optimizer": config["optimizer"],
        "layer_sizes": sizes,
        "activation": config["activation"],
        "loss_name": config["loss"],
        "output_activation": config["output_activation"],
        "dtype": config["dtype"],
        "inputs": cut(x),
        "targets": cut(y),
        "layers": layers,
        "sample": {
            "index": sample,
            "row": start + sample,
            "x": cut(raw_x[sample]),
            "features": None if not features else cut(x[sample]),
            "y": cut(y[sample]),
            "layers": [{k: cut(one[k][i]) for k in one} for i in range(n_layers)],
        },
    }
