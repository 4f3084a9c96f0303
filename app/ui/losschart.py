"""The loss chart's aids for learners: the 'predicting the mean' baseline and the auto log scale.

Pure functions on arrays, tested without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# The log scale switches on by itself once a run is long: when the losses drawn span more
# than LOG_DECADES decades (a linear axis then squeezes the late epochs, where the learning
# still shows, into a flat line at the bottom) or the run is past LOG_EPOCHS epochs. The
# page does it only until the learner unticks the box (static/settings.js).
LOG_DECADES = 2.0
LOG_EPOCHS = 2000


def mean_baseline(y_train: Any) -> float | None:
    """MSE of always predicting the training targets' mean: the mean over outputs of each
    output's (population) variance — what a network that learned nothing but the mean scores.

    ``y_train``: (n,) or (n, k) targets. None when there are none or they are not finite.
    Uses the trainer's MSE convention (mean over samples and outputs, no ½).
    """
    y = np.asarray(y_train, dtype=np.float64)
    if y.size == 0:
        return None
    if y.ndim == 1:
        y = y[:, None]
    value = float(np.mean((y - y.mean(axis=0)) ** 2))
    return value if np.isfinite(value) else None


def run_baseline(data: Mapping[str, Any], task: str) -> float | None:
    """The baseline of a run from its ``/data``-shaped dict (regression runs only)."""
    if task != "regression":
        return None
    return mean_baseline(data.get("train", {}).get("y", []))


def wants_log_scale(losses: Sequence[np.ndarray], last_epoch: int) -> bool:
    """Whether the loss chart should switch to a log axis by itself (see LOG_DECADES)."""
    if last_epoch > LOG_EPOCHS:
        return True
    values = [np.asarray(v, dtype=np.float64).ravel() for v in losses]
    finite = np.concatenate(values) if values else np.zeros(0)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size < 2:
        return False
    return bool(np.log10(finite.max() / finite.min()) > LOG_DECADES)
