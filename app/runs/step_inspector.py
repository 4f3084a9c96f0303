# ruff: noqa: RUF002 -- real math typography (minus sign, Greek letters)
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
from app.runs.gradient_check import gradient_check
from app.runs.run_config import RunConfig
from app.runs.worker import dataset_spec


@dataclass(frozen=True)
class StepInputs:
    """A run's state at the call: `net` holds the snapshot's weights."""

    net: MLP
    weights: list[np.ndarray]  # views of the snapshot, layer l: (n_out, n_in)
    biases: list[np.ndarray] | None
    config: RunConfig
    custom: dict[str, np.ndarray] | None
    task: str
    epoch: int


@dataclass(frozen=True)
class Batch:
    """Batch ``index`` of the training set in stored order: x as the network reads it (the
    run's dtype, features applied), the raw inputs, and the dense targets."""

    index: int
    n_batches: int
    start: int
    rows: int
    raw_x: np.ndarray
    x: np.ndarray
    y: np.ndarray
    x64: np.ndarray  # the network's inputs in float64 (for the gradient check)
    y64: np.ndarray


def load_batch(inputs: StepInputs, batch: int) -> Batch:
    """The batch; ProblemError 422 naming ``batch`` when out of range."""
    net, config = inputs.net, inputs.config
    sizes = list(net.layer_sizes)
    data = make_dataset(dataset_spec(config, inputs.custom))
    n = data.x_train.shape[0]
    size = n if config.batch_size is None else min(int(config.batch_size), n)
    n_batches = -(-n // size)
    if not 0 <= batch < n_batches:
        raise ProblemError(422, f"batch must be in 0-{n_batches - 1}", "batch")
    start, stop = batch * size, min((batch + 1) * size, n)
    rows = stop - start
    raw64 = np.asarray(data.x_train[start:stop], dtype=np.float64)
    raw_x = raw64.astype(net.dtype)
    features = config.features
    # The network reads the features; the inspector shows the raw inputs (API.md v1.1).
    x = raw_x if not features else feature_matrix(raw_x, features).astype(net.dtype)
    x64 = raw64 if not features else feature_matrix(raw64, features)
    y = np.asarray(data.y_train[start:stop])
    if inputs.task == "classification":  # dense targets, as the trainer builds them
        k = sizes[-1]
        y = y[:, None] if k == 1 else (y[:, None] == np.arange(k)).astype(np.float64)
    y64 = np.asarray(y, dtype=np.float64).reshape(rows, sizes[-1])
    return Batch(batch, n_batches, start, rows, raw_x, x, y64.astype(net.dtype), x64, y64)


@dataclass
class Pass:
    """One backward pass over a batch, chunked: batch-mean loss and gradients (full arrays,
    the run's dtype), plus the first ``keep`` rows' z/a/delta and one sample's."""

    loss: float
    grads_w: list[np.ndarray]
    grads_b: list[np.ndarray] | None
    kept: dict[str, list[list[np.ndarray]]]
    one: dict[str, list[np.ndarray]]


def backward_pass(net: MLP, b: Batch, loss_name: str, keep: int = 0, sample: int = -1) -> Pass:
    """Chunks of rows bound the memory; each chunk's means are weighted by its share."""
    rows, n_layers = b.rows, net.n_layers
    chunk = max(1, (1 << 21) // sum(net.layer_sizes))
    loss = 0.0
    grads_w = [np.zeros_like(w) for w in net.weights]
    grads_b = None if net.biases is None else [np.zeros_like(v) for v in net.biases]
    kept: dict[str, list[list[np.ndarray]]] = {"z": [], "a": [], "delta": []}
    one: dict[str, list[np.ndarray]] = {}
    with np.errstate(all="ignore"):
        for lo in range(0, rows, chunk):
            hi = min(lo + chunk, rows)
            g = net.backward(b.x[lo:hi], b.y[lo:hi], loss_name)
            w = (hi - lo) / rows
            loss += g.loss * w
            for i in range(n_layers):
                g.deltas[i] *= w
                grads_w[i] += g.nabla_w[i] * w
                if grads_b is not None and g.nabla_b is not None:
                    grads_b[i] += g.nabla_b[i] * w
            for key, arrs in (("z", g.zs), ("a", g.activations[1:]), ("delta", g.deltas)):
                if lo < keep:
                    kept[key].append([a[: keep - lo] for a in arrs])
                if lo <= sample < hi:
                    one[key] = [a[sample - lo] for a in arrs]
    return Pass(loss, grads_w, grads_b, kept, one)


@dataclass(frozen=True)
class LayerStep:
    """Layer l's plain-SGD step in the run's dtype: ΔW = −α·(∂E/∂W + penalty), Δb = −α·∂E/∂b."""

    penalty_w: np.ndarray | None
    update_w: np.ndarray
    update_b: np.ndarray | None
    weights_after: np.ndarray
    biases_after: np.ndarray | None


def sgd_steps(inputs: StepInputs, p: Pass) -> list[LayerStep]:
    """The article's plain SGD step from ``p``'s gradients (l1/l2 on the weights only)."""
    config = inputs.config
    l1, l2, lr = float(config.l1), float(config.l2), float(config.learning_rate)
    out = []
    with np.errstate(all="ignore"):
        for i, wi in enumerate(inputs.weights):
            pen = l2 * wi + l1 * np.sign(wi) if (l1 or l2) else None
            step = p.grads_w[i] if pen is None else p.grads_w[i] + pen
            bi = None if inputs.biases is None else inputs.biases[i]
            gb = None if p.grads_b is None else p.grads_b[i]
            out.append(
                LayerStep(
                    pen,
                    -lr * step,
                    None if gb is None else -lr * gb,
                    wi - lr * step,
                    None if bi is None or gb is None else bi - lr * gb,
                )
            )
    return out


def stepped_layers(inputs: StepInputs, batch: int) -> list[dict[str, Any]]:
    """The weights after the shown step on the whole batch, as PUT /weights takes them."""
    b = load_batch(inputs, batch)
    steps = sgd_steps(inputs, backward_pass(inputs.net, b, inputs.config.loss))
    return [
        {
            "weights": s.weights_after.tolist(),
            "biases": None if s.biases_after is None else s.biases_after.tolist(),
        }
        for s in steps
    ]


def inspect_step(
    inputs: StepInputs, batch: int, sample: int, limit: int, check: bool = True
) -> dict[str, Any]:
    """One plain-SGD step's numbers on batch ``batch``.

    Per layer l (JSON lists, at most ``limit`` rows by ``limit`` units, with
    ``truncated`` flags): z, a, delta (B, n_l) — delta is dE/dz of the batch-mean
    loss, so it carries the 1/B — weights/nabla_w/weights_after (n_l, n_{l-1}),
    update_w = −α·(nabla_w + penalty_w) (weights_after = weights + update_w), biases/nabla_b/
    biases_after/update_b (n_l,) or None, penalty_w (the l1/l2 terms) or None;
    ``sample``: row ``sample`` of the batch (x, y, and per layer z, a, delta);
    ``gradient_check``: see ``app.runs.gradient_check`` ([] when ``check`` is False).
    ProblemError 422 naming ``batch``/``sample`` when out of range.
    """
    net, config = inputs.net, inputs.config
    sizes = list(net.layer_sizes)
    n_layers = len(sizes) - 1
    b = load_batch(inputs, batch)
    rows = b.rows
    if not 0 <= sample < rows:
        raise ProblemError(422, f"sample must be in 0-{rows - 1} (batch {batch})", "sample")
    p = backward_pass(net, b, config.loss, keep=limit, sample=sample)
    steps = sgd_steps(inputs, p)
    checked = gradient_check(net, b.x64, b.y64, config.loss) if check else []
    kept, one, features, raw_x, x, y = p.kept, p.one, config.features, b.raw_x, b.x, b.y
    start, n_batches, loss = b.start, b.n_batches, p.loss
    l1, l2, lr = float(config.l1), float(config.l2), float(config.learning_rate)
    epoch = inputs.epoch

    def cut(a: Any) -> Any:
        return None if a is None else np.asarray(a, np.float64)[..., :limit][:limit].tolist()

    layers = []
    for i in range(n_layers):
        st = steps[i]
        bi = None if inputs.biases is None else inputs.biases[i]
        layers.append(
            {
                "n_in": sizes[i],
                "n_out": sizes[i + 1],
                "truncated": max(sizes[i], sizes[i + 1]) > limit,
                **{k: cut(np.concatenate([c[i] for c in kept[k]])) for k in kept},
                "weights": cut(inputs.weights[i]),
                "nabla_w": cut(p.grads_w[i]),
                "penalty_w": cut(st.penalty_w),
                "update_w": cut(st.update_w),
                "weights_after": cut(st.weights_after),
                "biases": cut(bi),
                "nabla_b": None if p.grads_b is None else cut(p.grads_b[i]),
                "update_b": cut(st.update_b),
                "biases_after": cut(st.biases_after),
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
        "optimizer": config.optimizer,
        # The numbers are the chain rule's; a weights_only run updates with other deltas.
        "error_propagation": config.error_propagation,
        "layer_sizes": sizes,
        "activation": config.activation,
        "loss_name": config.loss,
        "output_activation": config.output_activation,
        "dtype": config.dtype,
        "inputs": cut(x),
        "targets": cut(y),
        "layers": layers,
        "gradient_check": [c.public() for c in checked],
        "sample": {
            "index": sample,
            "row": start + sample,
            "x": cut(raw_x[sample]),
            "features": None if not features else cut(x[sample]),
            "y": cut(y[sample]),
            "layers": [{k: cut(one[k][i]) for k in one} for i in range(n_layers)],
        },
    }
