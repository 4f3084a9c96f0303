"""TrainingControls.after_epoch on EpochMetrics: a missing loss (None, the stored form
of a non-finite one) counts like NaN: it never improves and never reaches the target."""

from __future__ import annotations

import numpy as np

from app.nn.metrics import EpochMetrics
from app.runs.controls import TrainingControls


def metrics(epoch: int, train: float | None, test: float | None = None) -> EpochMetrics:
    return EpochMetrics(epoch, train, test, None, None, [0.1])


def test_target_loss_is_reached_by_a_loss_at_or_below_it_and_never_by_a_missing_one() -> None:
    controls = TrainingControls(0.1, target_loss=0.5)
    params = np.zeros(3)
    assert controls.after_epoch(metrics(1, 0.6), params) is None
    assert controls.after_epoch(metrics(2, None), params) is None
    assert controls.after_epoch(metrics(3, float("nan")), params) is None
    ended = controls.after_epoch(metrics(4, 0.5), params)
    assert ended is not None and ended[0] == "target_loss" and "epoch 4" in ended[1]


def test_early_stopping_watches_the_test_loss_and_a_missing_one_is_no_improvement() -> None:
    controls = TrainingControls(0.1, early={"patience": 2, "min_delta": 0.0})
    best = np.array([1.0, 2.0])
    assert controls.after_epoch(metrics(1, 9.0, 0.4), best) is None  # test loss watched
    assert (controls.best_epoch, controls.best_loss, controls.bad_epochs) == (1, 0.4, 0)
    # epoch 2 has no test loss: its train loss, 0.1, is watched and improves
    assert controls.after_epoch(metrics(2, 0.1, None), np.zeros(2)) is None
    assert (controls.best_epoch, controls.bad_epochs) == (2, 0)
    assert controls.after_epoch(EpochMetrics(3, None, None, None, None, []), np.ones(2)) is None
    assert controls.bad_epochs == 1
    ended = controls.after_epoch(metrics(4, float("nan")), np.ones(2))
    assert ended is not None and ended[0] == "early_stopped" and "best epoch, 2" in ended[1]
    np.testing.assert_array_equal(controls.best_params, np.zeros(2))
