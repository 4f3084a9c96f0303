"""The Trainer: heads, convergence, determinism, checkpoints, divergence, metrics, inspection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.nn.datasets import make_dataset
from app.nn.losses import loss_value
from app.nn.training import HeadError, Trainer, TrainerState, resolve_head
from tests.nn.helpers import tiny_dataset

# --- heads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("classification", 1, None, None), ("sigmoid", "cross_entropy")),
        (("classification", 3, None, None), ("softmax", "cross_entropy")),
        (("regression", 2, None, None), ("linear", "mse")),
        (("classification", 1, None, "mse"), ("sigmoid", "mse")),
        (("classification", 1, "linear", None), ("linear", "mse")),
        (("classification", 4, "sigmoid", None), ("sigmoid", "mse")),
        (("classification", 4, "linear", "mse"), ("linear", "mse")),
        (("regression", 1, "sigmoid", "cross_entropy"), ("sigmoid", "cross_entropy")),
        (("regression", 3, "softmax", None), ("softmax", "mse")),
    ],
)
def test_resolve_head_valid(args: tuple[Any, ...], expected: tuple[str, str]) -> None:
    assert resolve_head(*args) == expected


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("classification", 1, "softmax", None), "output_activation"),
        (("classification", 1, "softmax", "mse"), "output_activation"),
        (("classification", 1, "linear", "cross_entropy"), "loss"),
        (("classification", 3, "sigmoid", "cross_entropy"), "loss"),
        (("regression", 2, None, "cross_entropy"), "loss"),
        (("regression", 1, "linear", "cross_entropy"), "loss"),
        (("classification", 2, "relu", None), "output_activation"),
        (("classification", 2, None, "hinge"), "loss"),
        (("ranking", 2, None, None), "task"),
    ],
)
def test_resolve_head_invalid_names_the_field(args: tuple[Any, ...], field: str) -> None:
    with pytest.raises(ValueError) as err:
        resolve_head(*args)
    assert isinstance(err.value, HeadError) and err.value.field == field
    assert field in str(err.value)


def test_trainer_rejects_bad_arguments() -> None:
    data = tiny_dataset("classification", 2, 1)
    with pytest.raises(HeadError):
        Trainer(data, output_activation="softmax")
    with pytest.raises(ValueError, match="activation"):
        Trainer(data, activation="swish")
    with pytest.raises(ValueError, match="batch_size"):
        Trainer(data, batch_size=0)
    with pytest.raises(ValueError, match="init"):
        Trainer(data, init="zeros")
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(data, optimizer="lbfgs")


# --- convergence ------------------------------------------------------------------------------


def _train_until(trainer: Trainer, epochs: int, accuracy: float) -> float:
    best = 0.0
    for _ in range(epochs):
        m = trainer.train_epoch()
        assert m.test_accuracy is not None
        best = m.test_accuracy
        if best >= accuracy:
            break
    return best


def test_teacher_student_experiment() -> None:
    """The article's experiment: a [16, 16] sigmoid student learns a [3, 5, 2] teacher."""
    data = make_dataset({"kind": "teacher", "noise": 0, "n_samples": 1000, "seed": 1})
    trainer = Trainer(
        data,
        hidden_layers=[16, 16],
        activation="sigmoid",
        loss="mse",
        optimizer="sgd",
        learning_rate=0.1,
        batch_size=10,
        seed=0,
    )
    first = trainer.train_epoch()
    assert first.train_accuracy is None and first.test_accuracy is None
    assert first.test_loss is not None
    for _ in range(150):
        last = trainer.train_epoch()
    assert last.test_loss is not None
    assert last.test_loss * 10 <= first.test_loss


@pytest.mark.parametrize("kind", ["xor", "circle"])
def test_xor_and_circle_converge(kind: str) -> None:
    trainer = Trainer(make_dataset({"kind": kind, "seed": 0}), seed=0)  # API defaults
    assert _train_until(trainer, 400, 0.95) >= 0.95


def test_two_class_spiral_converges() -> None:
    data = make_dataset({"kind": "spiral", "noise": 0.02, "seed": 0})
    trainer = Trainer(data, hidden_layers=[8, 8], activation="tanh", learning_rate=0.1, seed=0)
    assert _train_until(trainer, 1000, 0.9) >= 0.9


def test_multiclass_softmax_converges() -> None:
    data = make_dataset({"kind": "gauss", "n_classes": 4, "noise": 0.05})
    trainer = Trainer(data, optimizer="adam", learning_rate=0.01)
    assert trainer.network.layer_sizes == [2, 8, 8, 4]
    assert _train_until(trainer, 200, 0.95) >= 0.95


# --- determinism and checkpoints ----------------------------------------------------------------

CONFIGS: list[dict[str, Any]] = [
    {"optimizer": "sgd", "batch_size": 10},
    {"optimizer": "momentum", "batch_size": 7, "l2": 0.01},
    {"optimizer": "adam", "batch_size": 32, "l1": 0.001, "learning_rate": 0.01},
    {"optimizer": "adam", "batch_size": None, "dtype": "float64"},
]


@pytest.mark.parametrize("config", CONFIGS)
def test_same_seed_same_weights_and_metrics(config: dict[str, Any]) -> None:
    data = make_dataset({"kind": "spiral", "n_samples": 200})
    a, b = Trainer(data, seed=3, **config), Trainer(data, seed=3, **config)
    np.testing.assert_array_equal(a.network.params, b.network.params)
    assert not np.array_equal(a.network.params, Trainer(data, seed=4, **config).network.params)
    for _ in range(5):
        assert a.train_epoch() == b.train_epoch()
    np.testing.assert_array_equal(a.network.params, b.network.params)


def test_reset_reproduces_creation_weights_and_training() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 100})
    first = Trainer(data, seed=9)
    initial = first.network.params.copy()
    run1 = [first.train_epoch() for _ in range(3)]
    again = Trainer(data, seed=9)  # `reset` = a new Trainer with the same arguments
    np.testing.assert_array_equal(again.network.params, initial)
    assert [again.train_epoch() for _ in range(3)] == run1


def _json_round_trip(state: TrainerState) -> TrainerState:
    import json

    return TrainerState(
        arrays={k: v.copy() for k, v in state.arrays.items()},
        meta=json.loads(json.dumps(state.meta)),
    )


@pytest.mark.parametrize("config", CONFIGS)
def test_checkpoint_resume_is_bit_identical(config: dict[str, Any]) -> None:
    data = make_dataset({"kind": "circle", "n_samples": 150})
    straight = Trainer(data, seed=1, **config)
    expected = [straight.train_epoch() for _ in range(6)]

    # The same six epochs split 2 + 1 + 3, resuming each time in a brand-new Trainer.
    trainer = Trainer(data, seed=1, **config)
    got = [trainer.train_epoch() for _ in range(2)]
    for chunk in (1, 3):
        state = _json_round_trip(trainer.state())
        trainer = Trainer(data, seed=1, **config)
        trainer.load_state(state)
        assert trainer.epoch == len(got)
        got += [trainer.train_epoch() for _ in range(chunk)]
    assert got == expected
    np.testing.assert_array_equal(trainer.network.params, straight.network.params)
    assert trainer.optimizer.state_dict().keys() == straight.optimizer.state_dict().keys()


@pytest.mark.parametrize("use_bias", [True, False])
def test_checkpointed_optimizer_state_is_in_the_public_parameter_layout(use_bias: bool) -> None:
    """Training keeps its parameters as per-layer [W | b] blocks; a checkpoint's
    optimizer arrays must still line up with MLP.params (weights, then biases), so
    that checkpoints stay readable whatever the trainer's inner layout."""
    data = make_dataset({"kind": "circle", "n_samples": 60})
    trainer = Trainer(
        data,
        hidden_layers=[5, 3],
        optimizer="momentum",
        batch_size=None,
        learning_rate=0.5,
        use_bias=use_bias,
        dtype="float64",
    )
    before = trainer.network.params.copy()
    expected_grad = trainer._compute_gradients(0)
    trainer.train_epoch()
    # one full-batch momentum step from zero velocity: v = g, params -= lr * v
    velocity = trainer.state().arrays["optimizer.velocity.0"]
    np.testing.assert_allclose(velocity, expected_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(before - trainer.network.params, 0.5 * velocity, rtol=1e-9)


def test_load_state_rejects_another_network() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 50})
    state = Trainer(data, hidden_layers=[4]).state()
    with pytest.raises(ValueError, match="checkpoint"):
        Trainer(data, hidden_layers=[5]).load_state(state)


# --- divergence ------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ["sgd", "momentum"])
def test_divergence_keeps_the_last_finite_weights(optimizer: str) -> None:
    data = make_dataset({"kind": "plane", "n_samples": 200, "noise": 0})
    config: dict[str, Any] = {
        "hidden_layers": [8],
        "activation": "relu",
        "learning_rate": 10.0,
        "optimizer": optimizer,
        "batch_size": None,
        "init": "normal",
    }
    trainer = Trainer(data, **config)
    diverged = None
    for _ in range(200):
        before = trainer.network.params.copy()
        epoch_before = trainer.epoch
        m = trainer.train_epoch()
        if m.diverged:
            diverged = m
            break
    assert diverged is not None, "lr=10 on a linear output should blow up"
    assert not np.isfinite(diverged.train_loss) or not np.isfinite(diverged.test_loss or 0)
    assert np.isfinite(trainer.network.params).all()
    np.testing.assert_array_equal(trainer.network.params, before)
    assert trainer.epoch == epoch_before
    assert diverged.epoch == epoch_before + 1
    assert np.isfinite(trainer.evaluate().train_loss)
    # the state after a divergence is the last finite one, and it survives strict JSON
    import orjson

    state = trainer.state()
    meta = orjson.loads(orjson.dumps(state.meta))
    again = Trainer(data, **config)
    again.load_state(TrainerState(arrays=state.arrays, meta=meta))
    np.testing.assert_array_equal(again.network.params, trainer.network.params)
    assert again.epoch == trainer.epoch


# --- metrics and batches ------------------------------------------------------------------------


def test_metrics_are_end_of_epoch_losses_without_penalties() -> None:
    data = make_dataset({"kind": "moons", "n_samples": 100})
    trainer = Trainer(data, l1=0.1, l2=0.1, dtype="float64")
    m = trainer.train_epoch()
    assert m.epoch == 1 and not m.diverged
    out = trainer.predict(data.x_train)
    target = data.y_train[:, None].astype(float)
    assert m.train_loss == pytest.approx(loss_value("cross_entropy", out, target), rel=1e-12)
    pred = (out[:, 0] >= 0.5).astype(int)
    assert m.train_accuracy == pytest.approx(np.mean(pred == data.y_train))
    assert len(m.grad_norms) == 3 and all(g > 0 for g in m.grad_norms)
    assert trainer.evaluate().train_loss == m.train_loss
    assert trainer.evaluate().epoch == 1


@pytest.mark.parametrize(
    ("task", "n_out", "output_activation", "loss"),
    [
        ("classification", 3, "softmax", "cross_entropy"),
        ("classification", 3, "softmax", "mse"),
        ("classification", 3, "linear", "mse"),
        ("classification", 1, "sigmoid", "mse"),
        ("regression", 3, "softmax", "cross_entropy"),
        ("regression", 2, "linear", "mse"),
    ],
)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid"])
def test_metrics_match_loss_value_of_predictions(
    task: str, n_out: int, output_activation: str, loss: str, activation: str
) -> None:
    data = tiny_dataset(task, 3, n_out, n=30, n_test=7)
    if task == "regression" and loss == "cross_entropy":  # targets must be distributions
        data = type(data)(
            **{**data.__dict__, "y_train": np.abs(data.y_train), "y_test": np.abs(data.y_test)}
        )
    trainer = Trainer(
        data,
        hidden_layers=[5],
        activation=activation,
        dtype="float64",
        output_activation=output_activation,
        loss=loss,
        learning_rate=0.1,
    )
    for _ in range(3):
        m = trainer.train_epoch()
    for x, y, got_loss, got_acc in [
        (data.x_train, data.y_train, m.train_loss, m.train_accuracy),
        (data.x_test, data.y_test, m.test_loss, m.test_accuracy),
    ]:
        out = trainer.predict(x)
        if task == "classification":
            target = np.eye(max(n_out, 2))[y][:, -n_out:] if n_out > 1 else y[:, None]
            pred = out.argmax(axis=1) if n_out > 1 else (out[:, 0] >= 0.5).astype(int)
            assert got_acc == pytest.approx(np.mean(pred == y))
        else:
            target = y
            assert got_acc is None
        assert got_loss == pytest.approx(loss_value(loss, out, target.astype(float)), rel=1e-10)


def test_no_test_set_gives_none_and_regression_has_no_accuracy() -> None:
    data = make_dataset({"kind": "sine", "test_fraction": 0})
    m = Trainer(data).train_epoch()
    assert m.test_loss is None and m.test_accuracy is None and m.train_accuracy is None
    assert Trainer(data).evaluate().epoch == 0


def test_penalties_add_l2_w_and_l1_sign_w_to_weight_gradients_only() -> None:
    data = tiny_dataset("regression", 2, 1, n=8)
    kwargs: dict[str, Any] = {"hidden_layers": [3], "batch_size": None, "dtype": "float64"}
    plain = Trainer(data, learning_rate=0.1, **kwargs)
    reg = Trainer(data, learning_rate=0.1, l1=0.05, l2=0.2, **kwargs)
    assert plain.network.biases is not None
    for b in plain.network.biases:
        b[...] = 0.3
    reg.network.params[...] = plain.network.params
    w0 = [w.copy() for w in plain.network.weights]
    b0 = [b.copy() for b in plain.network.biases]
    g = plain.network.backward(plain._x_train, plain._y_train, "mse")
    plain.train_epoch()
    reg.train_epoch()
    assert reg.network.biases is not None
    for layer in range(2):
        expected_w = w0[layer] - 0.1 * (
            g.nabla_w[layer] + 0.2 * w0[layer] + 0.05 * np.sign(w0[layer])
        )
        np.testing.assert_allclose(reg.network.weights[layer], expected_w, rtol=1e-12)
        np.testing.assert_allclose(
            reg.network.biases[layer],
            b0[layer] - 0.1 * g.nabla_b[layer],
            rtol=1e-12,  # type: ignore[index]
        )


def test_minibatches_cover_the_epoch_with_a_partial_last_batch() -> None:
    data = tiny_dataset("regression", 2, 1, n=23)
    trainer = Trainer(data, batch_size=5, optimizer="adam")
    assert trainer._batch_sizes == [5, 5, 5, 5, 3]
    trainer.train_epoch()
    assert trainer.optimizer.state_dict()["t"] == 5
    # the shuffled copy holds every training sample once
    rows = sorted(map(tuple, trainer._x_shuffled.tolist()))
    assert rows == sorted(map(tuple, trainer._x_step.tolist()))
    full = Trainer(data, batch_size=None, optimizer="adam")
    full.train_epoch()
    assert full.optimizer.state_dict()["t"] == 1
    big = Trainer(data, batch_size=1000, optimizer="adam")
    big.train_epoch()
    assert big.optimizer.state_dict()["t"] == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_staged_batches_give_the_same_numbers_as_compiled_ones(
    optimizer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_dataset({"kind": "spiral", "n_samples": 130})
    compiled = Trainer(data, batch_size=7, optimizer=optimizer, l1=0.01)
    monkeypatch.setattr(Trainer, "max_compiled_batches", 3)
    staged = Trainer(data, batch_size=7, optimizer=optimizer, l1=0.01)
    assert staged._staged and not compiled._staged
    assert len(staged._stages) == 15 and {s[3].shape[0] for s in staged._stages} == {7, 6}
    for _ in range(3):
        assert staged.train_epoch() == compiled.train_epoch()
    np.testing.assert_array_equal(staged.network.params, compiled.network.params)


def test_learning_rate_can_change_between_epochs() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 50})
    a, b = Trainer(data), Trainer(data)
    a.train_epoch()
    b.train_epoch()
    b.learning_rate = 0.0
    before = b.network.params.copy()
    b.train_epoch()
    np.testing.assert_array_equal(b.network.params, before)
    a.learning_rate = 0.3
    a.train_epoch()
    assert not np.array_equal(a.network.params, before)
    state = a.state()
    c = Trainer(data)
    c.load_state(state)
    assert c.learning_rate == 0.3


def test_predict_and_dtypes() -> None:
    data = make_dataset({"kind": "gauss", "n_classes": 3, "n_samples": 60})
    for dtype in ("float32", "float64"):
        trainer = Trainer(data, dtype=dtype)
        out = trainer.predict(data.x_test)
        assert out.shape == (12, 3) and out.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
        assert trainer.network.params.dtype == np.dtype(dtype)


def test_no_bias_network_has_no_biases() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 50})
    trainer = Trainer(data, use_bias=False, hidden_layers=[4])
    assert trainer.network.biases is None
    assert trainer.network.n_params == 2 * 4 + 4 * 1
    trainer.train_epoch()


# --- init ------------------------------------------------------------------------------------


@pytest.mark.parametrize("init", ["xavier", "he", "uniform", "normal"])
def test_init_distributions(init: str) -> None:
    data = tiny_dataset("regression", 300, 1)
    trainer = Trainer(data, hidden_layers=[200], init=init, dtype="float64")
    w = trainer.network.weights[0]  # (200, 300)
    assert trainer.network.biases is not None
    assert not trainer.network.biases[0].any()
    if init == "xavier":
        bound = np.sqrt(6 / 500)
        assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
        assert w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    elif init == "uniform":
        bound = 1 / np.sqrt(300)
        assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)
    elif init == "he":
        assert w.std() == pytest.approx(np.sqrt(2 / 300), rel=0.02)
    else:
        assert w.std() == pytest.approx(0.1, rel=0.02)
    assert abs(w.mean()) < 0.01
