"""Backprop against central finite differences, for every activation x loss x bias setting."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest

from app.nn.activations import ACTIVATIONS
from app.nn.network import MLP
from app.nn.training import Trainer
from tests.nn.helpers import numerical_gradient, relative_error, tiny_dataset

# Every valid head: (task, n_outputs, output_activation, loss).
HEADS = [
    ("classification", 1, "sigmoid", "cross_entropy"),
    ("classification", 3, "softmax", "cross_entropy"),
    ("classification", 1, "sigmoid", "mse"),
    ("classification", 3, "softmax", "mse"),
    ("classification", 3, "linear", "mse"),
    ("regression", 2, "linear", "mse"),
    ("regression", 2, "sigmoid", "mse"),
    ("regression", 1, "sigmoid", "cross_entropy"),
]


def _flat(nabla_w: list[np.ndarray], nabla_b: list[np.ndarray] | None) -> np.ndarray:
    parts = [w.ravel() for w in nabla_w] + (list(nabla_b) if nabla_b is not None else [])
    return np.concatenate(parts)


@pytest.mark.parametrize(
    ("activation", "head", "use_bias"),
    list(itertools.product(ACTIVATIONS, HEADS, [True, False])),
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, tuple) else str(v),
)
def test_backward_matches_finite_differences(
    activation: str, head: tuple[str, int, str, str], use_bias: bool
) -> None:
    task, n_out, output_activation, loss = head
    rng = np.random.default_rng(zlib.crc32(repr((activation, head, use_bias)).encode()))
    net = MLP.initialise(
        [3, 4, 5, n_out],
        activation=activation,
        output_activation=output_activation,
        use_bias=use_bias,
        init="xavier",
        rng=rng,
        dtype=np.float64,
    )
    if use_bias:  # non-zero biases, so their gradients are exercised away from 0
        assert net.biases is not None
        for b in net.biases:
            b[...] = rng.normal(0, 0.5, b.shape)
    x = rng.normal(size=(7, 3))
    if task == "classification":
        labels = rng.integers(0, max(n_out, 2), 7)
        target = labels[:, None].astype(float) if n_out == 1 else np.eye(n_out)[labels]
    elif loss == "cross_entropy":
        target = rng.uniform(0, 1, (7, n_out))
    else:
        target = rng.normal(size=(7, n_out))
    grads = net.backward(x, target, loss)
    analytic = _flat(grads.nabla_w, grads.nabla_b)
    numeric = numerical_gradient(net, x, target, loss)
    assert relative_error(analytic, numeric) < 1e-6
    assert (grads.nabla_b is None) == (not use_bias)
    # deltas are dE/dz: nabla_w[l] = delta_l^T a_l
    for layer, delta in enumerate(grads.deltas):
        np.testing.assert_allclose(
            grads.nabla_w[layer], delta.T @ grads.activations[layer], rtol=1e-12
        )


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("head", HEADS, ids=lambda h: f"{h[0]}-{h[1]}-{h[2]}-{h[3]}")
def test_trainer_kernel_equals_reference_backward(
    activation: str, head: tuple[str, int, str, str]
) -> None:
    """The trainer's allocation-free step computes the same gradients as MLP.backward."""
    task, n_out, output_activation, loss = head
    for use_bias in (True, False):
        data = tiny_dataset(task, 3, n_out, n=9, seed=3)
        trainer = Trainer(
            data,
            hidden_layers=[4, 5],
            activation=activation,
            output_activation=output_activation,
            loss=loss,
            batch_size=None,
            use_bias=use_bias,
            dtype="float64",
        )
        grads = trainer._compute_gradients(0)
        ref = trainer.network.backward(trainer._x_train, trainer._y_train, trainer.loss)
        np.testing.assert_allclose(grads, _flat(ref.nabla_w, ref.nabla_b), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("hidden", [[], [4, 2]])
@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("use_bias", [True, False])
def test_minibatch_step_gradients_match_backward_at_the_layout_edges(
    hidden: list[int], batch_size: int, use_bias: bool
) -> None:
    """The step runs feature-major on transposed views of shuffled row-major samples,
    with a row of ones for the biases (kernel.py): check it where that layout is
    thinnest — no hidden layer, batches of one, a partial last batch (23 = 3·7 + 2)."""
    for task, n_out in (("classification", 1), ("classification", 3), ("regression", 2)):
        data = tiny_dataset(task, 3, n_out, n=23, seed=4)
        trainer = Trainer(
            data,
            hidden_layers=hidden,
            activation="tanh",
            batch_size=batch_size,
            use_bias=use_bias,
            dtype="float64",
        )
        trainer._x_shuffled[...] = trainer._x_step  # the identity "shuffle"
        trainer._yT_shuffled[...] = trainer._yT_step
        last = len(trainer._batch_sizes) - 1
        for index in (0, last):
            start = index * batch_size
            rows = slice(start, start + trainer._batch_sizes[index])
            ref = trainer.network.backward(
                trainer._x_train[rows], trainer._y_train[rows], trainer.loss
            )
            np.testing.assert_allclose(
                trainer._compute_gradients(index),
                _flat(ref.nabla_w, ref.nabla_b),
                rtol=1e-10,
                atol=1e-14,
            )


def test_float32_gradients_close_to_float64() -> None:
    data = tiny_dataset("classification", 2, 3, n=20)
    kwargs = {"hidden_layers": [6], "batch_size": None, "seed": 5}
    g64 = Trainer(data, dtype="float64", **kwargs)  # type: ignore[arg-type]
    g32 = Trainer(data, dtype="float32", **kwargs)  # type: ignore[arg-type]
    grads32, grads64 = g32._compute_gradients(0), g64._compute_gradients(0)
    assert grads32.dtype == np.float32
    np.testing.assert_allclose(grads32, grads64, rtol=1e-4, atol=1e-6)
