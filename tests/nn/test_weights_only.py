"""error_propagation="weights_only" (API.md "The article's shortcut") against a NumPy reference.

The reference is written here, row-major with plain loops over layers:
e_L = dE/da_L, e_l = e_(l+1) W_(l+1) (no derivative factor carried back),
delta_l = e_l ⊙ f'(z_l), dW_l = delta_lᵀ a_(l-1), db_l = Σ delta_l, used in place
of the gradient by sgd / momentum / adam (PyTorch's formulas), l2·W and l1·sign(W)
added to the weights' terms.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.nn.activations import LEAKY_SLOPE
from app.nn.datasets import Dataset
from app.nn.network import MLP
from app.nn.training import HeadError, Trainer

F64 = NDArray[np.float64]
Fn = Callable[[F64], F64]

SLOPE = 0.01
ACTS: dict[str, tuple[Fn, Fn]] = {  # f, f' of z
    "sigmoid": (
        lambda z: 1 / (1 + np.exp(-z)),
        lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2,
    ),
    "tanh": (np.tanh, lambda z: 1 / np.cosh(z) ** 2),
    "relu": (lambda z: np.where(z > 0, z, 0.0), lambda z: np.where(z > 0, 1.0, 0.0)),
    "leaky_relu": (
        lambda z: np.where(z > 0, z, SLOPE * z),
        lambda z: np.where(z > 0, 1.0, SLOPE),
    ),
    "linear": (lambda z: z, np.ones_like),
}
HIDDEN = list(ACTS)


def test_reference_slope_is_the_apps() -> None:
    assert LEAKY_SLOPE == SLOPE


def reference_terms(
    ws: list[F64], bs: list[F64] | None, hidden: str, output: str, x: F64, y: F64
) -> tuple[list[F64], list[F64], list[F64]]:
    """(dW per layer, db per layer, delta per layer) of one weights_only step on (x, y)."""
    n_layers = len(ws)
    names = [hidden] * (n_layers - 1) + [output]
    acts, zs = [x], []
    for layer in range(n_layers):
        z = acts[-1] @ ws[layer].T
        if bs is not None:
            z = z + bs[layer]
        zs.append(z)
        acts.append(ACTS[names[layer]][0](z))
    e = 2 * (acts[-1] - y) / y.size  # dE/da of the mean squared error
    dws: list[F64] = [np.zeros(0)] * n_layers
    dbs: list[F64] = [np.zeros(0)] * n_layers
    deltas: list[F64] = [np.zeros(0)] * n_layers
    for layer in reversed(range(n_layers)):
        deltas[layer] = e * ACTS[names[layer]][1](zs[layer])
        dws[layer] = deltas[layer].T @ acts[layer]
        dbs[layer] = deltas[layer].sum(axis=0)
        e = e @ ws[layer]  # no f' carried back
    return dws, dbs, deltas


@dataclass
class Reference:
    """A row-major network trained with reference_terms and PyTorch-style optimizers."""

    ws: list[F64]
    bs: list[F64] | None
    hidden: str
    output: str
    optimizer: str
    lr: float
    momentum: float = 0.9
    l1: float = 0.0
    l2: float = 0.0
    t: int = 0
    state: dict[str, list[F64]] = field(default_factory=dict)

    def params(self) -> list[F64]:
        return self.ws + (self.bs or [])

    def step(self, x: F64, y: F64) -> None:
        dws, dbs, _ = reference_terms(self.ws, self.bs, self.hidden, self.output, x, y)
        dws = [g + self.l2 * w + self.l1 * np.sign(w) for g, w in zip(dws, self.ws, strict=True)]
        grads = dws + (dbs if self.bs is not None else [])
        params = self.params()
        if not self.state:
            self.state = {k: [np.zeros_like(p) for p in params] for k in ("v", "m", "s")}
        self.t += 1
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            if self.optimizer == "sgd":
                p -= self.lr * g
            elif self.optimizer == "momentum":
                v = self.state["v"][i] = self.momentum * self.state["v"][i] + g
                p -= self.lr * v
            else:  # Adam, betas (0.9, 0.999), eps 1e-8, PyTorch's bias correction
                m = self.state["m"][i] = 0.9 * self.state["m"][i] + 0.1 * g
                s = self.state["s"][i] = 0.999 * self.state["s"][i] + 0.001 * g * g
                m_hat, s_hat = m / (1 - 0.9**self.t), s / (1 - 0.999**self.t)
                p -= self.lr * m_hat / (np.sqrt(s_hat) + 1e-8)


def regression_data(output: str, n: int = 23, n_in: int = 3, n_out: int = 2) -> Dataset:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, n_in))
    # targets a sigmoid can reach for sigmoid outputs; anything for linear ones
    y = rng.uniform(0.05, 0.95, (n, n_out)) if output == "sigmoid" else rng.normal(size=(n, n_out))
    return Dataset("custom", "regression", x, y, x[:0], y[:0], n_in, n_out, 0)


def make_trainer(data: Dataset, **kw: Any) -> Trainer:
    args: dict[str, Any] = {
        "hidden_layers": [5, 4],
        "activation": "tanh",
        "output_activation": "sigmoid",
        "loss": "mse",
        "learning_rate": 0.1,
        "optimizer": "sgd",
        "batch_size": None,
        "dtype": "float64",
        "seed": 3,
        "error_propagation": "weights_only",
    }
    args.update(kw)
    return Trainer(data, **args)


def reference_from(trainer: Trainer, **kw: Any) -> Reference:
    net = trainer.network
    return Reference(
        ws=[w.copy() for w in net.weights],
        bs=None if net.biases is None else [b.copy() for b in net.biases],
        hidden=trainer.activation,
        output=trainer.output_activation,
        optimizer=trainer.optimizer.name,
        lr=trainer.learning_rate,
        **kw,
    )


def train_both(trainer: Trainer, ref: Reference, epochs: int) -> None:
    """``epochs`` epochs of each, the reference on the trainer's batches (same shuffle)."""
    data = trainer.data
    n = data.n_train
    size = n if trainer.batch_size is None else trainer.batch_size
    # the trainer shuffles each epoch with its own stream: SeedSequence(seed, spawn_key=(1,))
    rng = np.random.default_rng(np.random.SeedSequence(trainer.seed, spawn_key=(1,)))
    for _ in range(epochs):
        perm = np.arange(n) if size >= n else rng.permutation(n)
        for start in range(0, n, size):
            idx = perm[start : start + size]
            ref.step(data.x_train[idx], np.asarray(data.y_train, dtype=np.float64)[idx])
        trainer.train_epoch()


def assert_same(trainer: Trainer, ref: Reference, tol: float = 1e-12) -> None:
    net = trainer.network
    for mine, theirs in zip(net.weights, ref.ws, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)
    if ref.bs is None:
        assert net.biases is None
    else:
        assert net.biases is not None
        for mine, theirs in zip(net.biases, ref.bs, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=tol, atol=tol)


# --- MLP.backward -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hidden", "output"), list(itertools.product(HIDDEN, ["sigmoid", "linear"]))
)
@pytest.mark.parametrize("use_bias", [True, False])
def test_backward_matches_the_reference(hidden: str, output: str, use_bias: bool) -> None:
    net = MLP.initialise(
        [3, 6, 5, 2],
        activation=hidden,
        output_activation=output,
        use_bias=use_bias,
        init="xavier",
        rng=np.random.default_rng(1),
        dtype=np.float64,
    )
    if net.biases is not None:
        for b in net.biases:
            b[...] = np.random.default_rng(2).normal(size=b.shape)
    data = regression_data(output)
    x, y = data.x_train, data.y_train
    g = net.backward(x, y, "mse", "weights_only")
    dws, dbs, deltas = reference_terms(net.weights, net.biases, hidden, output, x, y)
    for mine, theirs in zip(g.nabla_w, dws, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    for mine, theirs in zip(g.deltas, deltas, strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    if use_bias:
        assert g.nabla_b is not None
        for mine, theirs in zip(g.nabla_b, dbs, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14)
    chain = net.backward(x, y, "mse")
    # the output layer's delta is the chain rule's, bit for bit; a hidden one is not
    np.testing.assert_array_equal(g.deltas[-1], chain.deltas[-1])
    same = np.allclose(g.nabla_w[0], chain.nabla_w[0], rtol=1e-12, atol=1e-14)
    assert same == (hidden == output == "linear")  # f' = 1 everywhere: nothing to drop
    assert g.loss == chain.loss


def test_backward_rejects_other_heads() -> None:
    net = MLP([2, 3, 2], activation="tanh", output_activation="softmax", use_bias=True)
    x, y = np.zeros((4, 2)), np.eye(2)[[0, 1, 0, 1]]
    with pytest.raises(ValueError, match="error_propagation"):
        net.backward(x, y, "cross_entropy", "weights_only")
    with pytest.raises(ValueError, match="error_propagation"):
        net.backward(x, y, "mse", "weights_only")  # softmax output
    with pytest.raises(ValueError, match="error_propagation"):
        net.backward(x, y, "mse", "backwards")


# --- Trainer --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hidden", "output"), list(itertools.product(HIDDEN, ["sigmoid", "linear"]))
)
def test_one_sgd_step_matches_the_reference(hidden: str, output: str) -> None:
    data = regression_data(output)
    trainer = make_trainer(data, activation=hidden, output_activation=output)
    ref = reference_from(trainer)
    train_both(trainer, ref, 1)
    assert_same(trainer, ref)
    # and the step moved the weights
    assert not np.allclose(trainer.network.weights[0], reference_from(make_trainer(data)).ws[0])


CASES = [
    # optimizer, batch_size, use_bias, l1, l2, hidden, output
    ("sgd", None, True, 0.0, 0.0, "sigmoid", "sigmoid"),
    ("sgd", 5, False, 0.0, 0.01, "tanh", "linear"),
    ("sgd", 4, True, 0.003, 0.0, "relu", "sigmoid"),
    ("momentum", None, True, 0.0, 0.01, "tanh", "sigmoid"),
    ("momentum", 5, True, 0.002, 0.02, "leaky_relu", "linear"),
    ("momentum", 7, False, 0.0, 0.0, "sigmoid", "sigmoid"),
    ("adam", None, False, 0.001, 0.0, "relu", "linear"),
    ("adam", 5, True, 0.0, 0.0, "sigmoid", "sigmoid"),
    ("adam", 6, True, 0.001, 0.01, "linear", "linear"),
    ("adam", 3, False, 0.0, 0.005, "tanh", "sigmoid"),
]


@pytest.mark.parametrize(("optimizer", "batch", "bias", "l1", "l2", "hidden", "output"), CASES)
def test_epochs_match_the_reference(
    optimizer: str, batch: int | None, bias: bool, l1: float, l2: float, hidden: str, output: str
) -> None:
    data = regression_data(output)
    lr = 0.01 if optimizer == "adam" else 0.2
    trainer = make_trainer(
        data,
        optimizer=optimizer,
        momentum=0.7,
        batch_size=batch,
        use_bias=bias,
        l1=l1,
        l2=l2,
        activation=hidden,
        output_activation=output,
        learning_rate=lr,
    )
    ref = reference_from(trainer, momentum=0.7, l1=l1, l2=l2)
    train_both(trainer, ref, 6)
    assert_same(trainer, ref)


def test_staged_batches_match_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    data = regression_data("sigmoid", n=30)
    monkeypatch.setattr(Trainer, "max_compiled_batches", 2)
    staged = Trainer(
        data,
        hidden_layers=[5, 4],
        activation="tanh",
        output_activation="sigmoid",
        loss="mse",
        learning_rate=0.1,
        optimizer="momentum",
        batch_size=4,
        l2=0.01,
        dtype="float64",
        seed=3,
        error_propagation="weights_only",
    )
    assert staged._staged
    ref = reference_from(staged, l2=0.01)
    train_both(staged, ref, 3)
    assert_same(staged, ref)


@pytest.mark.parametrize("hidden", ["tanh", "relu"])
@pytest.mark.parametrize("output", ["sigmoid", "linear"])
def test_without_hidden_layers_it_is_the_chain_rule(hidden: str, output: str) -> None:
    data = regression_data(output)
    kw: dict[str, Any] = {"hidden_layers": [], "activation": hidden, "output_activation": output}
    kw.update(optimizer="momentum", batch_size=5, l2=0.01)
    shortcut = make_trainer(data, **kw)
    chain = make_trainer(data, error_propagation="chain_rule", **kw)
    for _ in range(4):
        a, b = shortcut.train_epoch(), chain.train_epoch()
        assert a == b
    np.testing.assert_array_equal(shortcut.network.params, chain.network.params)


def test_hidden_layers_train_differently_from_the_chain_rule() -> None:
    data = regression_data("sigmoid")
    shortcut = make_trainer(data)
    chain = make_trainer(data, error_propagation="chain_rule")
    shortcut.train_epoch()
    chain.train_epoch()
    # the output layer's update is the same, the first layer's is not
    np.testing.assert_allclose(
        shortcut.network.weights[-1], chain.network.weights[-1], rtol=1e-12, atol=1e-14
    )
    assert not np.allclose(shortcut.network.weights[0], chain.network.weights[0], atol=1e-9)


def test_unknown_method_is_refused_naming_the_field() -> None:
    with pytest.raises(HeadError) as info:
        make_trainer(regression_data("linear"), error_propagation="magic")
    assert info.value.field == "error_propagation"
    assert "chain_rule" in info.value.message


@pytest.mark.parametrize("batch", [None, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_checkpoint_resume_is_bit_identical(batch: int | None, dtype: str) -> None:
    data = regression_data("sigmoid")
    kw: dict[str, Any] = {"batch_size": batch, "dtype": dtype, "optimizer": "adam", "l2": 0.01}
    kw["learning_rate"] = 0.01
    straight = make_trainer(data, **kw)
    for _ in range(6):
        expected = straight.train_epoch()
    first = make_trainer(data, **kw)
    for _ in range(3):
        first.train_epoch()
    resumed = make_trainer(data, **kw)
    resumed.load_state(first.state())
    for _ in range(3):
        last = resumed.train_epoch()
    np.testing.assert_array_equal(resumed.network.params, straight.network.params)
    assert last == expected
