"""One epoch's metrics: the one type the trainer returns, the worker sends, the
store keeps and the stream reads back (issue 13: one type, not one per layer).

The trainer's metrics hold raw floats (a diverged epoch's losses are the
non-finite ones that stopped it); ``finite()`` is the stored form, where every
non-finite value is None (JSON has no NaN). ``finite_or_none`` is that rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def finite_or_none(value: float | None) -> float | None:
    """JSON-safe number: NaN/±Inf (and None) become None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics after an epoch. Accuracies are None for regression, test ones without
    a test set; in the stored form (``finite()``) non-finite values are None too.

    grad_norms[l]: Frobenius norm of layer l's weight gradient in the epoch's
    last step (l1/l2 terms included: the gradient the optimizer applied; with
    ``weights_only``, the shortcut's term that stands in for it).
    learning_rate: the rate the epoch trained with (None from ``Trainer.evaluate``).
    diverged: the epoch's loss or a weight became non-finite (its losses are the
    non-finite ones). The store does not keep it: a diverged epoch is never stored.
    """

    epoch: int
    train_loss: float | None
    test_loss: float | None
    train_accuracy: float | None
    test_accuracy: float | None
    grad_norms: list[float | None]
    learning_rate: float | None = None
    diverged: bool = False

    def finite(self) -> EpochMetrics:
        """The stored form: plain ints and floats, every non-finite value None."""
        return EpochMetrics(
            int(self.epoch),
            finite_or_none(self.train_loss),
            finite_or_none(self.test_loss),
            finite_or_none(self.train_accuracy),
            finite_or_none(self.test_accuracy),
            [finite_or_none(g) for g in self.grad_norms],
            finite_or_none(self.learning_rate),
            self.diverged,
        )
