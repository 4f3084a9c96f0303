"""Input features: the columns against a NumPy reference, the errors, and what they buy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.nn.datasets import make_dataset
from app.nn.features import FEATURE_LABELS, FEATURES, feature_matrix, with_features
from app.nn.training import Trainer

F64 = NDArray[np.float64]

# An independent reference: one lambda per feature, over the raw (n, 2) inputs.
REFERENCE: dict[str, Callable[[F64], F64]] = {
    "x1": lambda x: x[:, 0],
    "x2": lambda x: x[:, 1],
    "x1_sq": lambda x: x[:, 0] ** 2,
    "x2_sq": lambda x: x[:, 1] ** 2,
    "x1_x2": lambda x: x[:, 0] * x[:, 1],
    "sin_x1": lambda x: np.sin(np.pi * x[:, 0]),
    "sin_x2": lambda x: np.sin(np.pi * x[:, 1]),
}


def _inputs(n: int = 50) -> F64:
    return np.random.default_rng(3).uniform(-1.5, 1.5, (n, 2))


def test_names_and_labels() -> None:
    assert FEATURES == ("x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2")
    assert dict(FEATURE_LABELS) == {
        "x1": "x₁",
        "x2": "x₂",
        "x1_sq": "x₁²",
        "x2_sq": "x₂²",
        "x1_x2": "x₁x₂",
        "sin_x1": "sin(πx₁)",
        "sin_x2": "sin(πx₂)",
    }


@pytest.mark.parametrize("name", FEATURES)
def test_each_feature_matches_the_reference(name: str) -> None:
    x = _inputs()
    out = feature_matrix(x, [name])
    assert out.shape == (50, 1) and out.dtype == np.float64
    np.testing.assert_allclose(out[:, 0], REFERENCE[name](x), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize(
    "names",
    [
        list(FEATURES),
        list(reversed(FEATURES)),
        ["sin_x2", "x1"],
        ["x1_x2", "x2_sq", "x1_sq"],
    ],
)
def test_columns_follow_the_given_order(names: list[str]) -> None:
    x = _inputs()
    expected = np.column_stack([REFERENCE[n](x) for n in names])
    np.testing.assert_allclose(feature_matrix(x, names), expected, rtol=1e-15, atol=1e-15)
    # a tuple works too, and lists of plain Python rows
    np.testing.assert_allclose(
        feature_matrix(x.tolist(), tuple(names)), expected, rtol=1e-15, atol=1e-15
    )


@pytest.mark.parametrize(
    ("names", "words"),
    [
        ([], "at least one"),
        (["x3"], "unknown feature 'x3'"),
        (["x1", "x1"], "twice"),
        (["x1", "x2", "x1_sq", "x2_sq", "x1_x2", "sin_x1", "sin_x2", "x1"], "at most 7"),
        ("x1", "not a single string"),
    ],
)
def test_bad_names_raise(names: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        feature_matrix(_inputs(), names)


@pytest.mark.parametrize("shape", [(10,), (10, 1), (10, 3), (2, 5, 2)])
def test_inputs_must_be_n_by_2(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        feature_matrix(np.zeros(shape), ["x1"])


def test_empty_input_gives_an_empty_matrix() -> None:
    assert feature_matrix(np.zeros((0, 2)), ["x1", "sin_x2"]).shape == (0, 2)


def test_with_features_replaces_inputs_and_keeps_targets() -> None:
    data = make_dataset({"kind": "xor", "n_samples": 60, "seed": 2})
    assert with_features(data, None) is data
    names = ["x1_x2", "sin_x1", "x2"]
    out = with_features(data, names)
    assert out.n_inputs == 3
    assert (out.kind, out.task, out.n_outputs, out.n_classes) == (
        data.kind,
        data.task,
        data.n_outputs,
        data.n_classes,
    )
    np.testing.assert_array_equal(out.y_train, data.y_train)
    np.testing.assert_array_equal(out.y_test, data.y_test)
    for raw, feats in ((data.x_train, out.x_train), (data.x_test, out.x_test)):
        expected = np.column_stack([REFERENCE[n](raw) for n in names])
        np.testing.assert_allclose(feats, expected, rtol=1e-15, atol=1e-15)
    # the original is untouched
    assert data.n_inputs == 2 and data.x_train.shape[1] == 2
    with pytest.raises(ValueError, match="unknown feature"):
        with_features(data, ["x9"])


def test_with_features_needs_two_raw_inputs() -> None:
    data = make_dataset({"kind": "sine", "n_samples": 20})
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        with_features(data, ["x1"])


def _circle_trainer(features: list[str] | None) -> Trainer:
    data = with_features(make_dataset({"kind": "circle", "seed": 0}), features)
    return Trainer(
        data,
        hidden_layers=[],
        optimizer="adam",
        learning_rate=0.05,
        batch_size=10,
        seed=0,
        dtype="float64",
    )


def test_squared_features_make_the_circle_learnable_without_hidden_layers() -> None:
    """x₁² + x₂² < r² is the circle's class: linear in the squares, not in x₁, x₂."""
    squares = _circle_trainer(["x1_sq", "x2_sq"])
    raw = _circle_trainer(None)
    for _ in range(100):
        with_squares = squares.train_epoch()
        plain = raw.train_epoch()
    assert with_squares.test_accuracy is not None and plain.test_accuracy is not None
    assert with_squares.test_accuracy >= 0.95
    assert plain.test_accuracy <= 0.75  # a line cannot separate a disk from a ring
    # the learned boundary is an ellipse close to a circle: similar negative weights on x₁², x₂²
    w = squares.network.weights[0][0]
    assert w[0] < 0 and w[1] < 0
    assert 0.5 <= w[0] / w[1] <= 2
