"""Input features of a 2-D input (TF Playground's feature buttons).

A run on a dataset with exactly two inputs may train on a chosen list of
features of them instead: x₁, x₂, x₁², x₂², x₁x₂, sin(πx₁), sin(πx₂). The
network then sees ``feature_matrix(x, names)``; everything outside the network
(/data, /predict) keeps the raw 2-D inputs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from app.nn.datasets import Dataset

F64 = NDArray[np.float64]

FEATURES: tuple[str, ...] = ("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2")

FEATURE_LABELS: Mapping[str, str] = MappingProxyType(
    {
        "x1": "x₁",
        "x2": "x₂",
        "x1_sq": "x₁²",
        "x2_sq": "x₂²",
        "x1_x2": "x₁x₂",
        "sin_x1": "sin(πx₁)",
        "sin_x2": "sin(πx₂)",
    }
)

# name -> column from (x1, x2); each writes into ``out`` (a column of the result).
_COLUMNS: dict[str, Callable[[F64, F64, F64], object]] = {
    "x1": lambda x1, x2, out: np.copyto(out, x1),
    "x2": lambda x1, x2, out: np.copyto(out, x2),
    "x1_sq": lambda x1, x2, out: np.multiply(x1, x1, out=out),
    "x2_sq": lambda x1, x2, out: np.multiply(x2, x2, out=out),
    "x1_x2": lambda x1, x2, out: np.multiply(x1, x2, out=out),
    "sin_x1": lambda x1, x2, out: np.sin(np.pi * x1, out=out),
    "sin_x2": lambda x1, x2, out: np.sin(np.pi * x2, out=out),
}


def check_features(names: Sequence[str]) -> list[str]:
    """The names as a list; ValueError unless they are 1-7 distinct names of FEATURES."""
    if isinstance(names, str):
        raise ValueError("features must be a list of feature names, not a single string")
    listed = list(names)
    if not listed:
        raise ValueError(f"features must name at least one of {list(FEATURES)}")
    if len(listed) > len(FEATURES):
        raise ValueError(f"features may name at most {len(FEATURES)} features, got {len(listed)}")
    for name in listed:
        if name not in _COLUMNS:
            raise ValueError(f"unknown feature {name!r}; expected names from {list(FEATURES)}")
    if len(set(listed)) != len(listed):
        raise ValueError("features must not name a feature twice")
    return listed


def feature_matrix(x: NDArray[Any], names: Sequence[str]) -> F64:
    """Features (n, len(names)) of raw inputs x (n, 2), columns in the order of ``names``."""
    listed = check_features(names)
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim != 2 or xa.shape[1] != 2:
        raise ValueError(f"features need inputs of shape (n, 2), got {xa.shape}")
    out: F64 = np.empty((xa.shape[0], len(listed)), dtype=np.float64)
    x1, x2 = xa[:, 0], xa[:, 1]
    for j, name in enumerate(listed):
        _COLUMNS[name](x1, x2, out[:, j])
    return out


def with_features(data: Dataset, names: Sequence[str] | None) -> Dataset:
    """``data`` with its inputs replaced by their features (None: ``data`` itself)."""
    if names is None:
        return data
    listed = check_features(names)
    return dataclasses.replace(
        data,
        x_train=feature_matrix(data.x_train, listed),
        x_test=feature_matrix(data.x_test, listed),
        n_inputs=len(listed),
    )
