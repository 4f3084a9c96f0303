"""Trainer.set_penalties: l1/l2 changed between epochs act as if the run had been built so."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.nn.datasets import make_dataset
from app.nn.training import Trainer

CONFIGS: list[dict[str, Any]] = [
    {"optimizer": "sgd", "batch_size": 10},  # lr folded into the penalty scales
    {"optimizer": "momentum", "batch_size": None},
    {"optimizer": "adam", "batch_size": 16, "learning_rate": 0.01},
    {"optimizer": "sgd", "batch_size": 7, "dtype": "float64"},
]
CHANGES = [
    ((0.0, 0.0), (0.0, 0.01)),  # l2 switched on
    ((0.0, 0.01), (0.0, 0.0)),  # and off
    ((0.0, 0.0), (0.002, 0.0)),  # l1 on
    ((0.002, 0.01), (0.0, 0.0)),  # both off
    ((0.0, 0.01), (0.003, 0.05)),  # l2 stronger, l1 added
    ((0.001, 0.02), (0.004, 0.005)),  # same penalties, new strengths
]


def _data() -> Any:
    return make_dataset({"kind": "spiral", "n_samples": 120, "seed": 1})


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("before", "after"), CHANGES)
def test_changing_penalties_equals_resuming_in_a_trainer_built_with_them(
    config: dict[str, Any], before: tuple[float, float], after: tuple[float, float]
) -> None:
    data = _data()
    live = Trainer(data, l1=before[0], l2=before[1], **config)
    first = Trainer(data, l1=before[0], l2=before[1], **config)
    for _ in range(3):
        live.train_epoch()
        first.train_epoch()
    live.set_penalties(*after)
    assert (live.l1, live.l2) == after
    rebuilt = Trainer(data, l1=after[0], l2=after[1], **config)
    rebuilt.load_state(first.state())
    for _ in range(3):
        assert live.train_epoch() == rebuilt.train_epoch()
    np.testing.assert_array_equal(live.network.params, rebuilt.network.params)
    # and the penalties really changed the training: without the change it differs
    unchanged = Trainer(data, l1=before[0], l2=before[1], **config)
    unchanged.load_state(first.state())
    for _ in range(3):
        unchanged.train_epoch()
    assert not np.array_equal(unchanged.network.params, live.network.params)


def test_staged_programs_follow_the_change_too(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _data()
    monkeypatch.setattr(Trainer, "max_compiled_batches", 3)
    live = Trainer(data, batch_size=9, optimizer="momentum")
    first = Trainer(data, batch_size=9, optimizer="momentum")
    assert live._staged
    for _ in range(2):
        live.train_epoch()
        first.train_epoch()
    live.set_penalties(0.001, 0.02)
    rebuilt = Trainer(data, batch_size=9, optimizer="momentum", l1=0.001, l2=0.02)
    rebuilt.load_state(first.state())
    for _ in range(3):
        assert live.train_epoch() == rebuilt.train_epoch()
    np.testing.assert_array_equal(live.network.params, rebuilt.network.params)


def test_gradients_include_the_new_penalties() -> None:
    data = _data()
    trainer = Trainer(data, batch_size=None, dtype="float64")
    plain = trainer._compute_gradients(0)
    trainer.set_penalties(0.003, 0.02)
    penalised = trainer._compute_gradients(0)
    net = trainer.network
    expected = plain.copy()
    for layer, w in enumerate(net.weights):
        offset = sum(v.size for v in net.weights[:layer])
        expected[offset : offset + w.size] += (0.02 * w + 0.003 * np.sign(w)).ravel()
    np.testing.assert_allclose(penalised, expected, rtol=1e-12, atol=1e-15)
    trainer.set_penalties(0, 0)
    np.testing.assert_array_equal(trainer._compute_gradients(0), plain)


def test_back_to_zero_drops_the_penalty_ops() -> None:
    """l1 = l2 = 0 keeps its fast path: the programs are the bare step ops again."""
    trainer = Trainer(_data(), batch_size=10, l2=0.01)
    pairs = zip(trainer._programs, trainer._step_programs, strict=True)
    assert all(len(p) > len(s) for p, s in pairs)
    trainer.set_penalties(0.0, 0.0)
    pairs = zip(trainer._programs, trainer._step_programs, strict=True)
    assert all(p == s for p, s in pairs)


@pytest.mark.parametrize("bad", [(-0.1, 0.0), (0.0, -1.0), (float("nan"), 0.0), (0, float("inf"))])
def test_bad_values_are_refused_and_change_nothing(bad: tuple[float, float]) -> None:
    trainer = Trainer(_data(), l1=0.001, l2=0.01)
    with pytest.raises(ValueError, match="l1 and l2"):
        trainer.set_penalties(*bad)
    assert (trainer.l1, trainer.l2) == (0.001, 0.01)
