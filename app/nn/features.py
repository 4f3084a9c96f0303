"""Input features: the Playground's feature crosses of a raw 2-D input (API.md v1.1).

The network's inputs are the features in the order the run names them; the raw
(x₁, x₂) stay what /predict, /data and the inspector's ``x`` speak.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from app.nn.datasets import Dataset

F64 = NDArray[np.float64]

_COLUMNS: dict[str, Callable[[F64, F64], F64]] = {
    "x1": lambda a, b: a,
    "x2": lambda a, b: b,
    "x1_sq": lambda a, b: a * a,
    "x2_sq": lambda a, b: b * b,
    "x1_x2": lambda a, b: a * b,
    "sin_x1": lambda a, b: np.sin(np.pi * a),
    "sin_x2": lambda a, b: np.sin(np.pi * b),
}
FEATURES: tuple[str, ...] = tuple(_COLUMNS)
FEATURE_LABELS: Mapping[str, str] = {
    "x1": "x₁",
    "x2": "x₂",
    "x1_sq": "x₁²",
    "x2_sq": "x₂²",
    "x1_x2": "x₁x₂",
    "sin_x1": "sin(πx₁)",
    "sin_x2": "sin(πx₂)",
}


def check_features(names: Sequence[str]) -> None:
    """ValueError (plain words) unless `names` is 1-7 distinct known feature names."""
    if not 1 <= len(names) <= len(FEATURES):
        raise ValueError(f"features must name 1-{len(FEATURES)} features")
    unknown = [n for n in names if n not in _COLUMNS]
    if unknown:
        raise ValueError(f"unknown feature {unknown[0]!r}; choose from {', '.join(FEATURES)}")
    if len(set(names)) != len(names):
        raise ValueError("features must not repeat")


def feature_matrix(x: NDArray[np.floating], names: Sequence[str]) -> F64:
    """The features (n, len(names)) of raw inputs x (n, 2), columns in `names`' order."""
    check_features(names)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"features need inputs of shape (n, 2), got {list(x.shape)}")
    a, b = x[:, 0], x[:, 1]
    return np.stack([_COLUMNS[n](a, b) for n in names], axis=1)


def with_features(data: Dataset, names: Sequence[str] | None) -> Dataset:
    """`data` with its inputs replaced by their features (None: unchanged)."""
    if names is None:
        return data
    return dataclasses.replace(
        data,
        x_train=feature_matrix(data.x_train, names),
        x_test=feature_matrix(data.x_test, names),
        n_inputs=len(names),
    )
