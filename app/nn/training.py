"""The Trainer: one epoch at a time, returning metrics; no threads, no I/O.

The training step is vectorised over the batch and allocation-free: all
parameters and gradients live in two flat buffers (``Trainer._store`` and
``Trainer._grad_store``, one weight block per layer with its bias as the last
column, see kernel.py), every intermediate array of a batch size is
preallocated once, every NumPy call writes with ``out=``, and each epoch's
shuffled copy of the training set is gathered into a fixed buffer whose batch
slices are precomputed views. A step of a small net is then a few dozen NumPy
calls; a big one is all matmul. ``MLP.params`` (the public layout: every weight
matrix, then every bias) is copied into the blocks when an epoch starts and
back when it has finished.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from app.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, Op
from app.nn.datasets import Dataset
from app.nn.kernel import Buffers, Consts, Layers, forward_ops, make_buffers, run, step_ops
from app.nn.losses import LOG_CLAMP, LOSSES, fused_delta, loss_value
from app.nn.metrics import EpochMetrics
from app.nn.network import MLP, error_propagation_problem, param_views
from app.nn.optimizers import StateValue, make_optimizer

Array = NDArray[np.floating]

STATE_VERSION = 1
# Evaluation forward passes go through buffers of at most this many elements per layer.
EVAL_CHUNK_ELEMENTS = 1 << 21


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
class TrainerState:
    """A checkpoint: ``arrays`` (params and optimizer arrays), ``meta`` (JSON-able)."""

    arrays: dict[str, NDArray[Any]]
    meta: dict[str, Any] = field(default_factory=dict)


def _with_ones(x: NDArray[Any], bias: bool, dtype: np.dtype[Any]) -> Array:
    """Inputs (n, n_in) as a C-contiguous array, with a last column of ones if ``bias``."""
    out: Array = np.empty((x.shape[0], x.shape[1] + bias), dtype=dtype)
    out[:, : x.shape[1]] = x
    out[:, x.shape[1] :] = 1
    return out


def _blocks(flat: NDArray[Any], layer_sizes: Sequence[int], bias: bool) -> list[NDArray[Any]]:
    """Per-layer (n_out, n_in + bias) views into a flat parameter-sized buffer."""
    views: list[NDArray[Any]] = []
    offset = 0
    for n_in, n_out in itertools.pairwise(layer_sizes):
        size = n_out * (n_in + bias)
        views.append(flat[offset : offset + size].reshape(n_out, n_in + bias))
        offset += size
    return views


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

    # Above this many batches per epoch (e.g. batch_size 1 on 100,000 samples) one
    # compiled program per batch would cost too much memory; batches are then
    # gathered into a buffer per batch size instead (same numbers, ~2 more calls a step).
    max_compiled_batches = 1024

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
        error_propagation: str = "chain_rule",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise HeadError("activation", f"must be one of {list(ACTIVATIONS)}, got {activation!r}")
        self.output_activation, self.loss = resolve_head(
            data.task, data.n_outputs, output_activation, loss
        )
        problem = error_propagation_problem(error_propagation, self.loss, self.output_activation)
        if problem:
            raise HeadError("error_propagation", problem)
        self.error_propagation = error_propagation
        weights_only = error_propagation == "weights_only"
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
        dt: np.dtype[Any] = self.dtype
        self._consts = Consts(dt)
        self._fused = fused_delta(self.loss, self.output_activation)
        # The kernel runs feature-major (see kernel.py), on inputs with a last feature
        # of ones when the network has biases. The step's batches are transposed views
        # of row-major samples: shuffling rows is 5x cheaper than shuffling columns,
        # and layer 0's two products cost the same either way. Evaluation reads a
        # column-major copy, where the forward product is faster.
        bias = net.use_bias
        self._x_step = _with_ones(data.x_train, bias, dt)
        self._x_train = self._x_step[:, : data.n_inputs]  # the inputs alone (a view)
        self._xT_train = np.ascontiguousarray(self._x_step.T)
        self._xT_test = np.ascontiguousarray(_with_ones(data.x_test, bias, dt).T)
        self._y_train = _dense_targets(data.y_train, data.task, data.n_outputs, dt)
        self._y_test = _dense_targets(data.y_test, data.task, data.n_outputs, dt)
        # The step's targets: 2y - 1 for sigmoid + cross-entropy (see kernel.py).
        sigmoid_ce = self._fused and self.output_activation == "sigmoid"
        y_step = 2 * self._y_train - 1 if sigmoid_ce else self._y_train
        self._yT_step = np.ascontiguousarray(y_step.T)

        # Training's own parameters and gradients: per layer an (n_out, n_in + bias)
        # block, the bias as its last column; optimizer state has the same layout.
        self._store: Array = np.empty_like(net.params)
        self._grad_store: Array = np.zeros_like(net.params)
        blocks = _blocks(self._store, self.layer_sizes, bias)
        grad_blocks = _blocks(self._grad_store, self.layer_sizes, bias)
        # store[k] is public[self._store_order[k]]
        self._store_order = np.empty(net.n_params, dtype=np.intp)
        order_blocks = _blocks(self._store_order, self.layer_sizes, bias)
        public_w, public_b = param_views(np.arange(net.n_params), self.layer_sizes, bias)
        self._sync_in: list[Op] = []  # MLP.params -> store
        self._sync_out: list[Op] = []  # store -> MLP.params
        for layer, n_in in enumerate(self.layer_sizes[:-1]):
            block, order = blocks[layer], order_blocks[layer]
            pairs = [(block[:, :n_in], net.weights[layer], order[:, :n_in], public_w[layer])]
            if net.biases is not None and public_b is not None:
                pairs.append((block[:, n_in], net.biases[layer], order[:, n_in], public_b[layer]))
            for mine, public, mine_order, public_order in pairs:
                self._sync_in.append((np.copyto, (mine, public)))
                self._sync_out.append((np.copyto, (public, mine)))
                mine_order[...] = public_order
        self._grad_w = [g[:, :n_in] for g, n_in in zip(grad_blocks, self.layer_sizes, strict=False)]
        self._layers = Layers(
            blocks=blocks,
            weights=[w[:, :n_in] for w, n_in in zip(blocks, self.layer_sizes, strict=False)],
            grad_blocks=grad_blocks,
            hidden=activation,
            output=self.output_activation,
        )
        self._param_list, self._grad_list = [self._store], [self._grad_store]
        # Plain SGD: lr is folded into the delta's scale, the update is params -= grads.
        self._fold_lr = self.optimizer.name == "sgd"
        self._folded_lr: float | None = None
        self._l1_scale = self._consts.scalar(0.0)
        self._l2_scale = self._consts.scalar(0.0)
        self._last_grad_norms = [0.0] * net.n_layers

        sizes = self.layer_sizes[1:]

        def base_scale(b: int) -> float:
            if not self._fused:
                return 2.0 / (b * sizes[-1])
            return 0.5 / b if sigmoid_ce else 1.0 / b

        n = data.n_train
        self._full_batch = batch_size is None or batch_size >= n
        self._buffers: dict[int, Buffers] = {}

        def buffers(b: int) -> Buffers:
            if b not in self._buffers:
                self._buffers[b] = make_buffers(
                    b, sizes, dt, base_scale(b), activation, bias=bias, errors=weights_only
                )
            return self._buffers[b]

        def compile_step(x: Array, y: Array, b: int) -> list[Op]:
            return step_ops(x, y, self._layers, buffers(b), self._consts, self._fused, weights_only)

        # One step program per batch (the same list for batches that share a staged
        # buffer); _link_penalties appends the l1/l2 ops to each into self._programs.
        self._step_programs: list[list[Op]] = []
        self._staged = False
        stage_specs: list[tuple[int, int, Array, Array]] = []
        if self._full_batch:
            self._step_programs.append(compile_step(self._xT_train, self._yT_step, n))
        else:
            size = int(batch_size or n)
            starts = range(0, n, size)
            self._staged = len(starts) > self.max_compiled_batches
            if not self._staged:  # one program per batch, over views of the shuffled copy
                self._x_shuffled = np.empty_like(self._x_step)
                self._yT_shuffled = np.empty_like(self._yT_step)
                for start in starts:
                    xb = self._x_shuffled[start : start + size].T
                    yb = self._yT_shuffled[:, start : start + size]
                    self._step_programs.append(compile_step(xb, yb, min(size, n - start)))
            else:  # too many batches to compile each: gather each into a buffer per size
                by_size: dict[int, tuple[list[Op], Array, Array]] = {}
                for start in starts:
                    b = min(size, n - start)
                    if b not in by_size:
                        xs = np.empty((b, self._x_step.shape[1]), dtype=dt)
                        ys = np.empty((self._yT_step.shape[0], b), dtype=dt)
                        by_size[b] = (compile_step(xs.T, ys, b), xs, ys)
                    ops, xs, ys = by_size[b]
                    stage_specs.append((start, start + b, xs, ys))
                    self._step_programs.append(ops)
        self._stage_specs = stage_specs
        self._programs: list[list[Op]] = []
        self._stages: list[tuple[int, int, list[Op], Array, Array]] = []
        self._penalty_pattern = (self.l1 > 0, self.l2 > 0)
        self._link_penalties()
        self._batch_sizes = (
            [n]
            if self._full_batch
            else [min(int(batch_size or n), n - s) for s in range(0, n, int(batch_size or n))]
        )
        # Evaluation runs in chunks through its own preallocated buffers (bounded memory).
        chunk = max(64, min(EVAL_CHUNK_ELEMENTS // max(self.layer_sizes), 65536))
        self._eval_buffers: dict[int, Buffers] = {}
        self._eval_train = self._eval_programs(self._xT_train, chunk)
        self._eval_test = self._eval_programs(self._xT_test, chunk)
        # The store is filled from MLP.params by every entry point that reads it
        # (train_epoch, evaluate, _compute_gradients), so not here.

    def _eval_programs(self, xT: Array, chunk: int) -> list[tuple[slice, list[Op], Array]]:
        """Forward programs over column chunks of xT (n_in, n); each yields (n_out, rows)."""
        programs: list[tuple[slice, list[Op], Array]] = []
        sizes = self.layer_sizes[1:]
        n = xT.shape[1]
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            if rows not in self._eval_buffers:
                self._eval_buffers[rows] = make_buffers(
                    rows, sizes, self.dtype, 1.0, self.activation, bias=self.network.use_bias
                )
            buf = self._eval_buffers[rows]
            sl = slice(start, start + rows)
            # Softmax outputs stay logits here: _set_metrics normalises them more cheaply.
            final = self.output_activation != "softmax"
            ops = forward_ops(xT[:, sl], self._layers, buf, self._consts, final=final)
            programs.append((sl, ops, buf.zs[-1]))
        return programs

    def _link_penalties(self) -> None:
        """(Re)build the programs: each batch's step ops, then the current l1/l2 ops."""
        penalty = self._penalty_ops()
        linked: dict[int, list[Op]] = {}  # staged batches of one size share their program
        self._programs = [linked.setdefault(id(ops), ops + penalty) for ops in self._step_programs]
        self._stages = [
            (start, stop, self._programs[i], xs, ys)
            for i, (start, stop, xs, ys) in enumerate(self._stage_specs)
        ]

    def _penalty_ops(self) -> list[Op]:
        """l2·W and l1·sign(W) added to the weight gradients (not to the biases)."""
        ops: list[Op] = []
        if self.l1 == 0 and self.l2 == 0:
            return ops
        for w, g in zip(self._layers.weights, self._grad_w, strict=True):
            tmp = np.empty(w.shape, dtype=w.dtype)
            if self.l2 > 0:
                ops += [(np.multiply, (w, self._l2_scale, tmp)), (np.add, (g, tmp, g))]
            if self.l1 > 0:
                ops += [
                    (np.sign, (w, tmp)),
                    (np.multiply, (tmp, self._l1_scale, tmp)),
                    (np.add, (g, tmp, g)),
                ]
        return ops

    def _to_public(self, stored: Array) -> Array:
        """A store-layout flat array (parameters, gradients, optimizer state) in MLP.params's."""
        out = np.empty_like(stored)
        out[self._store_order] = stored
        return out

    def _set_scales(self) -> float:
        """Bind the current learning rate into the 0-d scales; returns the gradient factor."""
        lr = self.learning_rate
        factor = lr if self._fold_lr and 0 < lr < math.inf else 1.0
        if self._folded_lr != factor:
            for buf in self._buffers.values():
                buf.scale[...] = buf.base_scale * factor
            self._l1_scale[...] = self.l1 * factor
            self._l2_scale[...] = self.l2 * factor
            self._folded_lr = factor
        return factor

    def _compute_gradients(self, batch_index: int) -> Array:
        """Run one batch's program (no update); returns dE/dparams (l1/l2 included).

        Mini-batches read the current shuffled buffers; batch_size None reads the
        training set. For tests and diagnostics.
        """
        factor = self._set_scales()
        run(self._sync_in)
        with np.errstate(all="ignore"):
            run(self._programs[batch_index])
        out: Array = self._to_public(self._grad_store) / factor
        return out

    # --- public -------------------------------------------------------------------------

    def set_penalties(self, l1: float, l2: float) -> None:
        """Change the l1/l2 strengths from the next epoch on (call it between epochs).

        The programs carry penalty ops only for the penalties that are > 0 (none
        when both are 0, the fast path), so they are relinked when that changes;
        the result is the same as a Trainer built with these l1/l2 from the start.
        """
        if not (l1 >= 0 and l2 >= 0 and math.isfinite(l1) and math.isfinite(l2)):
            raise ValueError(f"l1 and l2 must be finite and >= 0, got {l1}, {l2}")
        self.l1, self.l2 = float(l1), float(l2)
        pattern = (self.l1 > 0, self.l2 > 0)
        if pattern != self._penalty_pattern:
            self._penalty_pattern = pattern
            self._link_penalties()
        self._folded_lr = None  # _set_scales binds the new strengths into the 0-d scales

    def train_epoch(self) -> EpochMetrics:
        """One pass over the training set; metrics with the end-of-epoch weights.

        If a loss or a weight becomes non-finite, the weights, optimizer state and
        shuffle RNG go back to where they were before this epoch (the last finite
        values), ``epoch`` stays unchanged and the metrics have ``diverged=True``.
        """
        run(self._sync_in)
        opt_backup = self.optimizer.state_dict()
        rng_backup = self._shuffle_rng.bit_generator.state
        norms_backup = self._last_grad_norms
        factor = self._set_scales()
        step = self.optimizer.step
        param_list, grad_list = self._param_list, self._grad_list
        rate = self.learning_rate  # the rate this epoch trains with (its metrics say it)
        lr = rate / factor  # 1.0 when folded
        with np.errstate(all="ignore"):
            if self._staged:
                perm = self._shuffle_rng.permutation(self.data.n_train)
                for start, stop, ops, xs, ys in self._stages:
                    np.take(self._x_step, perm[start:stop], axis=0, out=xs, mode="clip")
                    np.take(self._yT_step, perm[start:stop], axis=1, out=ys, mode="clip")
                    for f, args in ops:
                        f(*args)
                    step(param_list, grad_list, lr)
            else:
                if not self._full_batch:
                    perm = self._shuffle_rng.permutation(self.data.n_train)
                    np.take(self._x_step, perm, axis=0, out=self._x_shuffled, mode="clip")
                    np.take(self._yT_step, perm, axis=1, out=self._yT_shuffled, mode="clip")
                for ops in self._programs:
                    for f, args in ops:
                        f(*args)
                    step(param_list, grad_list, lr)
            self._last_grad_norms = [float(np.linalg.norm(g)) / factor for g in self._grad_w]
            metrics = self._metrics(self.epoch + 1, rate)
            finite = all(
                math.isfinite(x) for x in (metrics.train_loss, metrics.test_loss) if x is not None
            )
            finite = finite and bool(np.isfinite(self._store).all())
        if not finite:  # MLP.params still holds the weights from before this epoch
            self.optimizer.load_state_dict(opt_backup)
            self._shuffle_rng.bit_generator.state = rng_backup
            self._last_grad_norms = norms_backup
            return replace(metrics, diverged=True)
        run(self._sync_out)
        self.epoch += 1
        return metrics

    def _set_metrics(
        self, programs: list[tuple[slice, list[Op], Array]], y: Array, labels: NDArray[Any]
    ) -> tuple[float, float | None]:
        n = labels.shape[0]
        loss_sum = 0.0
        correct = 0
        for sl, ops, out in programs:  # out: (n_out, rows)
            run(ops)
            rows = out.shape[1]
            if self.output_activation == "softmax":
                chunk_loss, chunk_correct = self._softmax_metrics(out, y[sl], labels[sl])
                loss_sum += chunk_loss
                correct += chunk_correct
                continue
            loss_sum += loss_value(self.loss, out.T, y[sl]) * rows
            if self.task == "classification":
                if out.shape[0] == 1:
                    pred = out[0] >= 0.5
                    correct += int(np.count_nonzero(pred == (labels[sl] == 1)))
                else:
                    correct += int(np.count_nonzero(out.argmax(axis=0) == labels[sl]))
        accuracy = correct / n if self.task == "classification" else None
        return loss_sum / n, accuracy

    def _softmax_metrics(self, z: Array, y: Array, labels: NDArray[Any]) -> tuple[float, int]:
        """(summed loss, correct count) of logits z (k, rows), normalised in place.

        The cross-entropy is log-softmax at the label, clamped at -100 like ``loss_value``.
        """
        cols = np.arange(z.shape[1])
        classes = self.task == "classification"
        by_label = classes and self.loss == "cross_entropy"
        if classes:
            top = z.argmax(axis=0)
            correct = int(np.count_nonzero(top == labels))
            z -= z[top, cols]
        else:
            correct = 0
            z -= z.max(axis=0)
        if by_label:
            picked = z[labels, cols]  # shifted logit of the true class
        np.exp(z, out=z)
        total = np.ones(z.shape[0], dtype=z.dtype) @ z
        if by_label:
            log_p = np.maximum(picked - np.log(total), LOG_CLAMP)
            return float(-log_p.sum(dtype=np.float64)), correct
        z /= total
        return loss_value(self.loss, z.T, y) * z.shape[1], correct

    def _metrics(self, epoch: int, learning_rate: float | None = None) -> EpochMetrics:
        train_loss, train_acc = self._set_metrics(
            self._eval_train, self._y_train, self.data.y_train
        )
        test_loss: float | None = None
        test_acc: float | None = None
        if self.data.n_test > 0:
            test_loss, test_acc = self._set_metrics(self._eval_test, self._y_test, self.data.y_test)
        return EpochMetrics(
            epoch=epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            train_accuracy=train_acc,
            test_accuracy=test_acc,
            grad_norms=list(self._last_grad_norms),
            learning_rate=learning_rate,
        )

    def evaluate(self) -> EpochMetrics:
        """Metrics of the current weights at the current epoch (epoch 0 before training)."""
        run(self._sync_in)
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
            if isinstance(value, np.ndarray):  # full-size arrays, in the store's layout
                arrays[f"optimizer.{key}"] = self._to_public(value)
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
            # JSON-safe: a non-finite norm (an encoder may turn it into null) is stored as None
            "grad_norms": [g if math.isfinite(g) else None for g in self._last_grad_norms],
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
            k.removeprefix("optimizer."): np.array(v, dtype=self.dtype)[self._store_order]
            for k, v in state.arrays.items()
            if k.startswith("optimizer.")
        }
        opt_state.update({k: int(v) for k, v in meta.get("optimizer_ints", {}).items()})
        self.optimizer.load_state_dict(opt_state)
        self._shuffle_rng.bit_generator.state = _rng_state_from_json(meta["shuffle_rng"])
        self.epoch = int(meta["epoch"])
        self.learning_rate = float(meta["learning_rate"])
        norms = meta.get("grad_norms") or self._last_grad_norms
        self._last_grad_norms = [math.nan if g is None else float(g) for g in norms]
