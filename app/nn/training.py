"""The Trainer: one epoch at a time, returning metrics; no threads, no I/O.

The training step is vectorised over the batch and allocation-free: all
parameters and gradients live in two flat buffers (``MLP.params`` and
``Trainer._grads``, weights first, then biases), every intermediate array of
a batch size is preallocated once, every NumPy call writes with ``out=``, and
each epoch's shuffled copy of the training set is gathered into a fixed buffer
whose batch slices are precomputed views. A step of a small net is then a few
dozen NumPy calls; a big one is all matmul.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from app.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, get_activation
from app.nn.datasets import Dataset
from app.nn.losses import LOSSES, fused_delta, loss_value
from app.nn.network import MLP, param_views
from app.nn.optimizers import StateValue, make_optimizer

Array = NDArray[np.floating]

STATE_VERSION = 1


class HeadError(ValueError):
    """A bad output-activation/loss pairing; ``field`` names the field to blame."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def resolve_head(
    task: str, n_outputs: int, output_activation: str | None, loss: str | None
) -> tuple[str, str]:
    """(output_activation, loss) with task defaults filled; HeadError (a ValueError) if invalid.

    Defaults: classification with 1 output -> sigmoid, 2+ outputs -> softmax;
    regression -> linear. A null loss is cross_entropy for classification and
    mse for regression — but mse when the chosen output cannot take
    cross_entropy (e.g. a linear output). cross_entropy needs one sigmoid
    output or a softmax over >= 2 outputs; softmax needs >= 2 outputs.
    """
    if task not in ("classification", "regression"):
        raise HeadError("task", f"must be classification or regression, got {task!r}")
    if n_outputs < 1:
        raise HeadError("n_outputs", f"must be >= 1, got {n_outputs}")
    if output_activation is None:
        if task == "regression":
            output_activation = "linear"
        else:
            output_activation = "sigmoid" if n_outputs == 1 else "softmax"
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise HeadError(
            "output_activation",
            f"must be one of {list(OUTPUT_ACTIVATIONS)}, got {output_activation!r}",
        )
    if output_activation == "softmax" and n_outputs < 2:
        raise HeadError(
            "output_activation", "softmax needs >= 2 outputs; this task has 1 (use sigmoid)"
        )
    ce_ok = (output_activation == "sigmoid" and n_outputs == 1) or output_activation == "softmax"
    if loss is None:
        loss = "cross_entropy" if task == "classification" and ce_ok else "mse"
    if loss not in LOSSES:
        raise HeadError("loss", f"must be one of {list(LOSSES)}, got {loss!r}")
    if loss == "cross_entropy" and not ce_ok:
        raise HeadError(
            "loss",
            "cross_entropy needs one sigmoid output or a softmax over >= 2 outputs, "
            f"not output_activation={output_activation} with {n_outputs} output(s)",
        )
    return output_activation, loss


@dataclass
class EpochMetrics:
    """Metrics after an epoch. Accuracies are None for regression, test ones without a test set.

    grad_norms[l]: Frobenius norm of layer l's weight gradient in the epoch's
    last step (l1/l2 terms included: the gradient the optimizer applied).
    On ``diverged`` the losses are the non-finite ones that triggered it.
    """

    epoch: int
    train_loss: float
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    grad_norms: list[float]
    diverged: bool = False


@dataclass
class TrainerState:
    """A checkpoint: ``arrays`` (params and optimizer arrays), ``meta`` (JSON-able)."""

    arrays: dict[str, NDArray[Any]]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Buffers:
    """Preallocated arrays of one batch size B: per layer l, (B, n_out_l)."""

    zs: list[Array]
    acts: list[Array]  # the same array as zs[l] for a linear layer (no copy)
    deltas: list[Array]
    tmps: list[Array]
    ones: Array  # (B,): bias gradient = ones @ delta, a matmul instead of a slow reduction
    scale: float  # 1/B (fused delta) or 2/(B·n_out) (mse)


def _dense_targets(data_y: NDArray[Any], task: str, n_outputs: int, dtype: np.dtype[Any]) -> Array:
    if task == "regression":
        return np.ascontiguousarray(data_y, dtype=dtype)
    labels = np.asarray(data_y, dtype=np.int64)
    if n_outputs == 1:
        return labels.astype(dtype)[:, None]
    out = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def _rng_state_to_json(state: dict[str, Any]) -> dict[str, Any]:
    # PCG64's 128-bit integers overflow JSON encoders such as orjson: keep them as strings.
    def conv(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    out: dict[str, Any] = conv(state)
    return out


def _rng_state_from_json(state: dict[str, Any]) -> dict[str, Any]:
    def conv(k: str, v: Any) -> Any:
        if isinstance(v, dict):
            return {kk: conv(kk, x) for kk, x in v.items()}
        if k != "bit_generator" and isinstance(v, str):
            return int(v)
        return v

    out: dict[str, Any] = {k: conv(k, v) for k, v in state.items()}
    return out


class Trainer:
    """Trains an MLP on a Dataset per API.md's math conventions; see INTERNALS.md."""

    def __init__(
        self,
        data: Dataset,
        *,
        hidden_layers: Sequence[int] = (8, 8),
        activation: str = "tanh",
        output_activation: str | None = None,
        loss: str | None = None,
        learning_rate: float = 0.03,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        batch_size: int | None = 10,
        l1: float = 0.0,
        l2: float = 0.0,
        use_bias: bool = True,
        init: str = "xavier",
        seed: int = 0,
        dtype: DTypeLike = "float32",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise HeadError("activation", f"must be one of {list(ACTIVATIONS)}, got {activation!r}")
        self.output_activation, self.loss = resolve_head(
            data.task, data.n_outputs, output_activation, loss
        )
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
        if not (l1 >= 0 and l2 >= 0 and math.isfinite(l1) and math.isfinite(l2)):
            raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
        self.data = data
        self.task = data.task
        self.activation = activation
        self.batch_size = batch_size
        self.l1, self.l2 = float(l1), float(l2)
        self.seed = int(seed)
        self.epoch = 0
        self.learning_rate = learning_rate
        self.layer_sizes = [data.n_inputs, *[int(h) for h in hidden_layers], data.n_outputs]
        self.network = MLP.initialise(
            self.layer_sizes,
            activation=activation,
            output_activation=self.output_activation,
            use_bias=use_bias,
            init=init,
            rng=np.random.default_rng(self.seed),
            dtype=dtype,
        )
        self.dtype = self.network.dtype
        self.optimizer = make_optimizer(optimizer, momentum=momentum)
        # Independent of the init stream, so a fresh Trainer reproduces the creation weights.
        self._shuffle_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1,)))

        net = self.network
        self._x_train = np.ascontiguousarray(data.x_train, dtype=self.dtype)
        self._y_train = _dense_targets(data.y_train, data.task, data.n_outputs, self.dtype)
        self._x_test = np.ascontiguousarray(data.x_test, dtype=self.dtype)
        self._y_test = _dense_targets(data.y_test, data.task, data.n_outputs, self.dtype)

        self._grads: Array = np.zeros_like(net.params)
        self._grad_w, self._grad_b = param_views(self._grads, self.layer_sizes, net.use_bias)
        self._weights_t = [w.T for w in net.weights]
        self._hidden = get_activation(activation)
        self._output = get_activation(self.output_activation)
        self._fused = fused_delta(self.loss, self.output_activation)
        nw = net.n_weights
        self._pw, self._gw = net.params[:nw], self._grads[:nw]
        self._penalty_tmp: Array = np.empty_like(self._pw)
        self._backup: Array = np.empty_like(net.params)
        self._last_grad_norms = [0.0] * net.n_layers

        n = data.n_train
        full = batch_size is None or batch_size >= n
        self._full_batch = full
        self._buffers: dict[int, _Buffers] = {}
        self._batches: list[tuple[Array, Array, _Buffers]]
        if full:
            self._batches = [(self._x_train, self._y_train, self._buffers_for(n))]
        else:
            assert batch_size is not None  # narrowed by `full` above (not validation)
            self._x_shuffled = np.empty_like(self._x_train)
            self._y_shuffled = np.empty_like(self._y_train)
            self._batches = [
                (
                    self._x_shuffled[start : start + batch_size],
                    self._y_shuffled[start : start + batch_size],
                    self._buffers_for(min(batch_size, n - start)),
                )
                for start in range(0, n, batch_size)
            ]

    # --- the step -----------------------------------------------------------------------

    def _buffers_for(self, b: int) -> _Buffers:
        if b not in self._buffers:
            sizes = self.layer_sizes[1:]
            n_layers = len(sizes)
            zs = [np.empty((b, s), dtype=self.dtype) for s in sizes]
            acts = [
                zs[i]
                if (self.activation if i < n_layers - 1 else self.output_activation) == "linear"
                else np.empty_like(zs[i])
                for i in range(n_layers)
            ]
            scale = 1.0 / b if self._fused else 2.0 / (b * sizes[-1])
            self._buffers[b] = _Buffers(
                zs=zs,
                acts=acts,
                deltas=[np.empty_like(z) for z in zs],
                tmps=[np.empty_like(z) for z in zs],
                ones=np.ones(b, dtype=self.dtype),
                scale=scale,
            )
        return self._buffers[b]

    def _gradients(self, xb: Array, yb: Array, buf: _Buffers) -> None:
        """Forward and backward over one batch into ``self._grads`` (no l1/l2)."""
        biases = self.network.biases
        grad_b = self._grad_b
        n_layers = len(buf.zs)
        last = n_layers - 1
        hidden = self._hidden
        a = xb
        for layer in range(n_layers):
            z = buf.zs[layer]
            np.matmul(a, self._weights_t[layer], out=z)
            if biases is not None:
                z += biases[layer]
            a = (self._output if layer == last else hidden).f(z, buf.acts[layer])
        delta = buf.deltas[last]
        np.subtract(a, yb, out=delta)
        delta *= buf.scale
        if not self._fused:
            self._output.mul_df(buf.zs[last], a, delta, buf.tmps[last])
        weights = self.network.weights
        for layer in range(last, -1, -1):
            a_prev = xb if layer == 0 else buf.acts[layer - 1]
            np.matmul(delta.T, a_prev, out=self._grad_w[layer])
            if grad_b is not None:
                np.matmul(buf.ones, delta, out=grad_b[layer])
            if layer > 0:
                prev = buf.deltas[layer - 1]
                np.matmul(delta, weights[layer], out=prev)
                hidden.mul_df(buf.zs[layer - 1], buf.acts[layer - 1], prev, buf.tmps[layer - 1])
                delta = prev

    def _add_penalties(self) -> None:
        if self.l2 > 0:
            np.multiply(self._pw, self.l2, out=self._penalty_tmp)
            self._gw += self._penalty_tmp
        if self.l1 > 0:
            np.sign(self._pw, out=self._penalty_tmp)
            self._penalty_tmp *= self.l1
            self._gw += self._penalty_tmp

    # --- public -------------------------------------------------------------------------

    def train_epoch(self) -> EpochMetrics:
        """One pass over the training set; metrics with the end-of-epoch weights.

        If a loss or a weight becomes non-finite, the weights, optimizer state and
        shuffle RNG go back to where they were before this epoch (the last finite
        values), ``epoch`` stays unchanged and the metrics have ``diverged=True``.
        """
        params = self.network.params
        np.copyto(self._backup, params)
        opt_backup = self.optimizer.state_dict()
        rng_backup = self._shuffle_rng.bit_generator.state
        opt = self.optimizer
        param_list, grad_list = [params], [self._grads]
        lr = self.learning_rate
        with np.errstate(all="ignore"):
            if not self._full_batch:
                perm = self._shuffle_rng.permutation(self.data.n_train)
                np.take(self._x_train, perm, axis=0, out=self._x_shuffled)
                np.take(self._y_train, perm, axis=0, out=self._y_shuffled)
            for xb, yb, buf in self._batches:
                self._gradients(xb, yb, buf)
                self._add_penalties()
                opt.step(param_list, grad_list, lr)
            self._last_grad_norms = [float(np.linalg.norm(g)) for g in self._grad_w]
            metrics = self._metrics(self.epoch + 1)
            finite = math.isfinite(metrics.train_loss) and bool(np.isfinite(params).all())
            if metrics.test_loss is not None:
                finite = finite and math.isfinite(metrics.test_loss)
        if not finite:
            np.copyto(params, self._backup)
            self.optimizer.load_state_dict(opt_backup)
            self._shuffle_rng.bit_generator.state = rng_backup
            metrics.diverged = True
            return metrics
        self.epoch += 1
        return metrics

    def _set_metrics(self, x: Array, y: Array, labels: NDArray[Any]) -> tuple[float, float | None]:
        out = self.network.forward(x)
        loss = loss_value(self.loss, out, y)
        if self.task != "classification":
            return loss, None
        pred = (out[:, 0] >= 0.5).astype(np.int64) if out.shape[1] == 1 else out.argmax(axis=1)
        return loss, float(np.mean(pred == labels))

    def _metrics(self, epoch: int) -> EpochMetrics:
        train_loss, train_acc = self._set_metrics(self._x_train, self._y_train, self.data.y_train)
        test_loss: float | None = None
        test_acc: float | None = None
        if self.data.n_test > 0:
            test_loss, test_acc = self._set_metrics(self._x_test, self._y_test, self.data.y_test)
        return EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            grad_norms=list(self._last_grad_norms),
        )

    def evaluate(self) -> EpochMetrics:
        """Metrics of the current weights at the current epoch (epoch 0 before training)."""
        with np.errstate(all="ignore"):
            return self._metrics(self.epoch)

    def predict(self, x: NDArray[np.floating] | Sequence[Sequence[float]]) -> Array:
        """Network outputs (n, n_out) for inputs (n, n_inputs)."""
        with np.errstate(all="ignore"):
            return self.network.forward(x)

    def state(self) -> TrainerState:
        """All that is needed to resume bit-for-bit (in a Trainer built with the same arguments)."""
        arrays: dict[str, NDArray[Any]] = {"params": self.network.params.copy()}
        opt_ints: dict[str, int] = {}
        for key, value in self.optimizer.state_dict().items():
            if isinstance(value, np.ndarray):
                arrays[f"optimizer.{key}"] = value
            else:
                opt_ints[key] = int(value)
        meta = {
            "version": STATE_VERSION,
            "epoch": self.epoch,
            "learning_rate": self.learning_rate,
            "layer_sizes": list(self.layer_sizes),
            "dtype": self.dtype.name,
            "optimizer": self.optimizer.name,
            "optimizer_ints": opt_ints,
            "shuffle_rng": _rng_state_to_json(dict(self._shuffle_rng.bit_generator.state)),
            "grad_norms": list(self._last_grad_norms),
        }
        return TrainerState(arrays=arrays, meta=meta)

    def load_state(self, state: TrainerState) -> None:
        """Restore a ``state()``; ValueError if it belongs to a different network."""
        meta = state.meta
        if meta.get("layer_sizes") != self.layer_sizes or meta.get("dtype") != self.dtype.name:
            raise ValueError(
                f"checkpoint is for layers {meta.get('layer_sizes')} {meta.get('dtype')}, "
                f"this trainer has {self.layer_sizes} {self.dtype.name}"
            )
        if meta.get("optimizer") != self.optimizer.name:
            raise ValueError(
                f"checkpoint optimizer {meta.get('optimizer')!r} != {self.optimizer.name!r}"
            )
        params = state.arrays["params"]
        if params.shape != self.network.params.shape:
            raise ValueError("checkpoint parameter count does not match the network")
        self.network.params[...] = params
        opt_state: dict[str, StateValue] = {
            k.removeprefix("optimizer."): np.array(v, dtype=self.dtype)
            for k, v in state.arrays.items()
            if k.startswith("optimizer.")
        }
        opt_state.update({k: int(v) for k, v in meta.get("optimizer_ints", {}).items()})
        self.optimizer.load_state_dict(opt_state)
        self._shuffle_rng.bit_generator.state = _rng_state_from_json(meta["shuffle_rng"])
        self.epoch = int(meta["epoch"])
        self.learning_rate = float(meta["learning_rate"])
        self._last_grad_norms = [float(g) for g in meta.get("grad_norms", self._last_grad_norms)]

    def inspect_step(self, batch_index: int = 0) -> dict[str, Any]:
        """One backprop step's numbers for batch ``batch_index`` of the unshuffled training set.

        Nothing is updated. JSON-ready lists: inputs (B, n_in), targets (B, n_out),
        zs[l] / activations[l+1] / deltas[l] (B, n_l), activations[0] = inputs,
        nabla_w[l] (n_out, n_in) and nabla_b[l] (n_out,) of the batch-mean loss,
        penalty_w[l] the l1/l2 terms added to nabla_w before the optimizer step.
        """
        n = self.data.n_train
        size = n if self.batch_size is None else min(self.batch_size, n)
        n_batches = -(-n // size)
        if not 0 <= batch_index < n_batches:
            raise ValueError(f"batch_index must be in [0, {n_batches}), got {batch_index}")
        sl = slice(batch_index * size, (batch_index + 1) * size)
        with np.errstate(all="ignore"):
            g = self.network.backward(self._x_train[sl], self._y_train[sl], self.loss)
            penalty = [self.l2 * w + self.l1 * np.sign(w) for w in self.network.weights]
        return {
            "epoch": self.epoch,
            "batch_index": batch_index,
            "n_batches": n_batches,
            "batch_size": int(self._x_train[sl].shape[0]),
            "learning_rate": self.learning_rate,
            "loss": g.loss,
            "inputs": self._x_train[sl].tolist(),
            "targets": self._y_train[sl].tolist(),
            "zs": [z.tolist() for z in g.zs],
            "activations": [a.tolist() for a in g.activations],
            "deltas": [d.tolist() for d in g.deltas],
            "nabla_w": [w.tolist() for w in g.nabla_w],
            "nabla_b": None if g.nabla_b is None else [b.tolist() for b in g.nabla_b],
            "penalty_w": [p.tolist() for p in penalty],
        }
