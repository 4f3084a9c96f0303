"""EpochMetrics: the one type of an epoch's metrics, raw from the trainer and in the
stored form (``finite()``, non-finite values as None)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from app.nn.datasets import make_dataset
from app.nn.metrics import EpochMetrics, finite_or_none
from app.nn.training import Trainer

INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), (NAN, None), (INF, None), (-INF, None), (0.25, 0.25), (np.float32(0.5), 0.5)],
)
def test_finite_or_none(value: float | None, expected: float | None) -> None:
    out = finite_or_none(value)
    assert out == expected
    assert out is None or type(out) is float


def test_finite_turns_every_non_finite_value_into_none_and_keeps_the_rest() -> None:
    raw = EpochMetrics(
        np.int64(7),  # type: ignore[arg-type]
        NAN,
        INF,
        np.float32(0.75),  # type: ignore[arg-type]
        None,
        [1.5, NAN, -INF, np.float64(2.0)],  # type: ignore[list-item]
        INF,
        diverged=True,
    )
    stored = raw.finite()
    assert stored == EpochMetrics(7, None, None, 0.75, None, [1.5, None, None, 2.0], None, True)
    assert type(stored.epoch) is int and type(stored.train_accuracy) is float
    assert type(stored.grad_norms[3]) is float
    assert math.isnan(raw.train_loss or 0.0)  # the trainer's form is left as it was
    assert stored.finite() == stored  # the stored form is a fixed point


def test_finite_keeps_a_finite_learning_rate() -> None:
    m = EpochMetrics(1, 0.5, None, None, None, [0.1], 0.03)
    assert m.finite() == m


def test_metrics_are_frozen() -> None:
    m = EpochMetrics(1, 0.5, None, None, None, [0.1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.diverged = True  # type: ignore[misc]


def test_train_epoch_reports_the_rate_it_trained_with_and_evaluate_none() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 50})
    trainer = Trainer(data, learning_rate=0.1)
    assert trainer.evaluate().learning_rate is None  # no epoch trained
    assert trainer.train_epoch().learning_rate == 0.1
    trainer.learning_rate = 0.025
    m = trainer.train_epoch()
    assert (m.epoch, m.learning_rate) == (2, 0.025)
    assert trainer.evaluate().learning_rate is None


def test_a_diverged_epoch_stores_its_losses_as_none() -> None:
    data = make_dataset({"kind": "plane", "n_samples": 200, "noise": 0})
    trainer = Trainer(data, hidden_layers=[8], learning_rate=10.0, batch_size=None, init="normal")
    for _ in range(200):
        m = trainer.train_epoch()
        if m.diverged:
            break
    assert m.diverged, "lr=10 on a linear output should blow up"
    assert m.learning_rate == 10.0
    stored = m.finite()
    assert stored.diverged and stored.epoch == m.epoch
    losses = [(m.train_loss, stored.train_loss), (m.test_loss, stored.test_loss)]
    assert any(raw is not None and not math.isfinite(raw) for raw, _ in losses)
    for raw, kept in losses:
        assert kept == (raw if raw is not None and math.isfinite(raw) else None)
