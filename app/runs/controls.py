"""Training controls inside a worker (API.md v1.1): the learning-rate schedule, the
target loss and early stopping, applied epoch by epoch.

Their state (early stopping's best loss, epoch, weights and count of epochs without
improvement) rides in the run's checkpoint, so a run stopped and started again goes
on watching where it was. Started again after it stopped early, a run trains on from
the best weights and stops at its next epoch without an improvement; PATCHing
`early_stopping` starts the count again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from app.nn.metrics import EpochMetrics
from app.nn.schedules import scheduled_rate
from app.runs.run_config import RunConfig

BEST_PARAMS = "early.best_params"  # checkpoint array: the weights of the best epoch


@dataclass
class TrainingControls:
    base_lr: float
    schedule: Mapping[str, Any] | None = None
    target_loss: float | None = None
    early: Mapping[str, Any] | None = None  # {"patience", "min_delta"}
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    best_params: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def of(cls, config: RunConfig) -> TrainingControls:
        return cls(
            float(config.learning_rate),
            config.lr_schedule,
            config.target_loss,
            config.early_stopping,
        )

    def update(self, changes: Mapping[str, Any]) -> None:
        """A PATCH of live fields reached the worker (from the next epoch on)."""
        if "learning_rate" in changes:
            self.base_lr = float(changes["learning_rate"])
        if "lr_schedule" in changes:
            self.schedule = changes["lr_schedule"]
        if "target_loss" in changes:
            self.target_loss = changes["target_loss"]
        if "early_stopping" in changes:
            self.early = changes["early_stopping"]
            self.bad_epochs = 0

    def rate_for(self, epoch: int) -> float:
        """The learning rate epoch `epoch` (1-based) trains with."""
        return scheduled_rate(epoch, self.base_lr, self.schedule)

    def after_epoch(
        self, m: EpochMetrics, params: np.ndarray
    ) -> tuple[Literal["early_stopped", "target_loss"], str] | None:
        """(reason, message) when this epoch ends the run, else None."""
        if self.early is not None:
            watched = m.train_loss if m.test_loss is None else m.test_loss
            min_delta = float(self.early.get("min_delta", 0.0))
            if watched is not None and improves(watched, self.best_loss, min_delta):
                self.best_loss, self.best_epoch, self.bad_epochs = watched, m.epoch, 0
                self.best_params = params.copy()
            else:
                self.bad_epochs += 1
            patience = int(self.early["patience"])
            if self.bad_epochs >= patience and self.best_params is not None:
                return "early_stopped", (
                    f"stopped early after {patience} epochs without improvement; "
                    f"the weights are those of the best epoch, {self.best_epoch}"
                )
        loss = m.train_loss
        if self.target_loss is not None and loss is not None and loss <= float(self.target_loss):
            return "target_loss", (
                f"reached the target loss {float(self.target_loss):g} at epoch {m.epoch}"
            )
        return None

    def restore_best(self, params: np.ndarray) -> None:
        """Put the best epoch's weights into `params` (early stopping's end)."""
        if self.best_params is not None:
            params[...] = self.best_params

    def extras(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """What a checkpoint keeps of these controls (arrays, meta)."""
        if self.early is None or self.best_params is None:
            return {}, {}
        meta = {
            "early": {
                "best_loss": self.best_loss,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
            }
        }
        return {BEST_PARAMS: self.best_params}, meta

    def load(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Take up where a checkpoint left off: a run stepped in pieces stops where it
        would have stopped in one go."""
        early = meta.get("early")
        if early is not None and BEST_PARAMS in arrays:
            self.best_loss, self.best_epoch = float(early["best_loss"]), int(early["best_epoch"])
            self.bad_epochs = int(early.get("bad_epochs", 0))
            self.best_params = np.array(arrays[BEST_PARAMS])


def improves(loss: float, best: float, min_delta: float) -> bool:
    """Early stopping's rule (API.md v1.1): an epoch improves when its loss < best - min_delta."""
    return loss < best - min_delta


def best_epoch(
    epochs: np.ndarray, train: np.ndarray, test: np.ndarray, min_delta: float
) -> tuple[int, float] | None:
    """(epoch, loss) of the best epoch so far by early stopping's rule, over a history
    (the test loss it watches, the training loss when there is no test set); None before
    the first epoch."""
    watched = train if test.size == 0 or np.all(np.isnan(test)) else test
    best, at = math.inf, None
    for epoch, loss in zip(epochs.tolist(), watched.tolist(), strict=True):
        if math.isfinite(loss) and improves(loss, best, min_delta):
            best, at = loss, int(epoch)
    return None if at is None else (at, best)


# ---- weight history (API.md v1.1 "Weight history") -------------------------------------

LARGE_NET_PARAMS = 100_000


def snapshot_due(epoch: int, last_kept: int | None, n_params: int, epochs: int) -> bool:
    """Whether the weights at the end of `epoch` are kept: every epoch up to 20, then so
    that no two kept epochs are further apart than 2 % of the current epoch + 10 (the
    gap is allowed once it reaches that, so it never exceeds it later). A net over
    100,000 parameters skips the first 20 and keeps at least 10 over its run."""
    if last_kept is None:
        return True
    gap = int(0.02 * epoch) + 10
    if n_params > LARGE_NET_PARAMS:
        gap = max(1, min(gap, int(epochs) // 10))
    elif epoch <= 20:
        return True
    return epoch - last_kept >= gap
