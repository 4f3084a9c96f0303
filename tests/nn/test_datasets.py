"""Datasets: shapes, ranges, balance, determinism, the split, custom-data checks, the catalog."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.nn.datasets import (
    DATASET_KINDS,
    Dataset,
    DatasetError,
    dataset_catalog,
    dataset_defaults,
    dataset_to_json,
    labels_to_json,
    make_dataset,
    teacher_network,
    teacher_outputs,
)
from app.nn.network import MLP

CLASSIFICATION = ["circle", "xor", "gauss", "spiral", "moons"]


def _all(d: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])


@pytest.mark.parametrize("kind", CLASSIFICATION)
@pytest.mark.parametrize("n_classes", [2, 3, 8])
def test_2d_classification_shapes_ranges_balance(kind: str, n_classes: int) -> None:
    spec: dict[str, Any] = {"kind": kind, "n_samples": 401, "noise": 0}
    if kind in ("gauss", "spiral"):
        spec["n_classes"] = n_classes
    elif n_classes != 2:
        with pytest.raises(DatasetError) as err:
            make_dataset({**spec, "n_classes": n_classes})
        assert err.value.field == "n_classes"
        return
    d = make_dataset(spec)
    k = n_classes if kind in ("gauss", "spiral") else 2
    assert d.task == "classification" and d.n_inputs == 2 and d.n_classes == k
    assert d.n_outputs == (1 if k == 2 else k)
    assert d.x_train.shape == (321, 2) and d.x_test.shape == (80, 2)  # round(0.2 * 401) = 80
    assert d.x_train.dtype == np.float64 and d.y_train.dtype == np.int64
    x, y = _all(d)
    assert np.abs(x).max() <= 1.0
    counts = np.bincount(y, minlength=k)
    assert counts.max() - counts.min() <= 1
    # noise 0 is separable: no two points of different classes coincide or nearly so
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    different = y[:, None] != y[None, :]
    assert dist[different].min() > 1e-3


@pytest.mark.parametrize("kind", CLASSIFICATION)
def test_noise_is_gaussian_jitter_of_the_inputs(kind: str) -> None:
    clean = make_dataset({"kind": kind, "n_samples": 4000, "noise": 0})
    noisy = make_dataset({"kind": kind, "n_samples": 4000, "noise": 0.3})
    x0, _ = _all(clean)
    x1, _ = _all(noisy)
    assert np.abs(x1).max() > 1.0  # not clipped
    assert np.abs(x0).max() <= 1.0


@pytest.mark.parametrize("kind", ["plane", "sine"])
def test_regression_kinds(kind: str) -> None:
    clean = make_dataset({"kind": kind, "noise": 0, "n_samples": 1000})
    noisy = make_dataset({"kind": kind, "noise": 0.5, "n_samples": 1000})
    assert clean.task == "regression" and clean.n_classes == 0 and clean.n_outputs == 1
    assert clean.n_inputs == (2 if kind == "plane" else 1)
    assert clean.y_train.shape == (800, 1) and clean.y_train.dtype == np.float64
    x, y = _all(clean)
    assert np.abs(x).max() <= 1.0
    _, y_noisy = _all(noisy)
    np.testing.assert_array_equal(_all(noisy)[0], x)  # the noise is on the targets only
    resid = y_noisy - y
    assert 0.4 < resid.std() < 0.6


def test_teacher_labels_are_the_teacher_network() -> None:
    d = make_dataset(
        {
            "kind": "teacher",
            "noise": 0,
            "teacher_layers": [4, 6, 3],
            "teacher_activation": "tanh",
            "seed": 7,
        }
    )
    assert (d.n_inputs, d.n_outputs, d.task) == (4, 3, "regression")
    x, y = _all(d)
    assert np.abs(x).max() <= 1.0
    teacher = teacher_network([4, 6, 3], "tanh", 7)
    np.testing.assert_allclose(y, teacher_outputs(teacher, x), rtol=1e-12)
    assert np.abs(y).max() < 1.0  # tanh on the output layer too
    default = make_dataset({"kind": "teacher"})
    assert (default.n_inputs, default.n_outputs) == (3, 2)
    assert ((default.y_train > -0.5) & (default.y_train < 1.5)).all()


def test_a_student_shaped_like_the_teacher_does_not_start_as_the_teacher() -> None:
    # The article's experiment: the student must learn a *different* network,
    # even with the teacher's shape, activation and seed.
    data = make_dataset({"kind": "teacher", "noise": 0, "seed": 0})
    student = MLP.initialise(
        [3, 5, 2],
        activation="sigmoid",
        output_activation="sigmoid",
        use_bias=True,
        init="xavier",
        rng=np.random.default_rng(0),
        dtype=np.float64,
    )
    x, y = _all(data)
    assert np.mean((student.forward(x) - y) ** 2) > 1e-3


@pytest.mark.parametrize("kind", [k for k in DATASET_KINDS if k != "custom"])
def test_same_seed_same_data_other_seed_other_data(kind: str) -> None:
    a = make_dataset({"kind": kind, "seed": 3})
    b = make_dataset({"kind": kind, "seed": 3})
    c = make_dataset({"kind": kind, "seed": 4})
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.x_train, c.x_train)


def test_split_is_the_tail_of_a_seeded_permutation() -> None:
    x = [[float(i), 0.0] for i in range(50)]
    y = [i % 3 for i in range(50)]
    d = make_dataset(
        {"kind": "custom", "task": "classification", "x": x, "y": y, "test_fraction": 0.3}
    )
    assert d.n_test == 15 and d.n_train == 35
    perm = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(2,))).permutation(50)
    np.testing.assert_array_equal(d.x_test[:, 0], perm[35:])
    np.testing.assert_array_equal(d.x_train[:, 0], perm[:35])
    np.testing.assert_array_equal(d.y_train, perm[:35] % 3)
    empty = make_dataset({"kind": "xor", "test_fraction": 0})
    assert empty.n_test == 0 and empty.x_test.shape == (0, 2)


def test_custom_regression_numbers_or_rows_and_json_round_trip() -> None:
    x = [[0.0], [1.0], [2.0], [3.0]]
    d1 = make_dataset({"kind": "custom", "task": "regression", "x": x, "y": [1, 2, 3, 4]})
    d2 = make_dataset({"kind": "custom", "task": "regression", "x": x, "y": [[1], [2], [3], [4]]})
    assert d1.n_outputs == d2.n_outputs == 1
    np.testing.assert_array_equal(d1.y_train, d2.y_train)
    body = dataset_to_json(d1)
    again = make_dataset(
        {
            "kind": "custom",
            "task": "regression",
            "x": body["train"]["x"] + body["test"]["x"],
            "y": body["train"]["y"] + body["test"]["y"],
        }
    )
    assert again.n_outputs == 1
    assert labels_to_json("classification", np.array([0, 2, 1])) == [0, 2, 1]
    assert labels_to_json("regression", np.array([[0.5, 1.0]])) == [[0.5, 1.0]]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"x": [[0.0, 1.0]], "y": [0]}, "x"),  # one sample
        ({"x": [[0.0, 1.0], [1.0]], "y": [0, 1]}, "x"),  # ragged
        ({"x": [[0.0, float("nan")], [1.0, 1.0]], "y": [0, 1]}, "x"),
        ({"x": [[0.0, float("inf")], [1.0, 1.0]], "y": [0, 1]}, "x"),
        ({"x": [["a", 1.0], [1.0, 1.0]], "y": [0, 1]}, "x"),
        ({"x": [[True, 1.0], [1.0, 1.0]], "y": [0, 1]}, "x"),
        ({"x": [1.0, 2.0], "y": [0, 1]}, "x"),  # not rows
        ({"x": [[], []], "y": [0, 1]}, "x"),
        ({"x": [[0.0], [1.0]], "y": [0]}, "y"),  # length mismatch
        ({"x": [[0.0], [1.0]], "y": [0, 0]}, "y"),  # one class
        ({"x": [[0.0], [1.0]], "y": [0, 1.5]}, "y"),  # not an integer
        ({"x": [[0.0], [1.0]], "y": [-1, 1]}, "y"),
        ({"x": [[0.0], [1.0]], "y": [0, "1"]}, "y"),
        ({"x": [[0.0], [1.0]], "y": [[0], [1]]}, "y"),
        ({"x": [[0.0], [1.0]], "y": [0, 1], "noise": 0.1}, "noise"),  # not a custom field
        ({"x": [[0.0], [1.0]]}, "y"),  # missing
    ],
)
def test_custom_classification_errors(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(DatasetError) as err:
        make_dataset({"kind": "custom", "task": "classification", **spec})
    assert err.value.field == field
    assert err.value.message


@pytest.mark.parametrize(
    ("y", "field"),
    [
        ([[1.0, 2.0], [1.0]], "y"),
        ([1.0, float("nan")], "y"),
        ([[1.0], [float("-inf")]], "y"),
        (["a", "b"], "y"),
    ],
)
def test_custom_regression_errors(y: list[Any], field: str) -> None:
    with pytest.raises(DatasetError) as err:
        make_dataset({"kind": "custom", "task": "regression", "x": [[0.0], [1.0]], "y": y})
    assert err.value.field == field


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"kind": "blobs"}, "kind"),
        ({}, "kind"),
        ({"kind": "xor", "n_samples": 9}, "n_samples"),
        ({"kind": "xor", "n_samples": 100_001}, "n_samples"),
        ({"kind": "xor", "n_samples": 10.5}, "n_samples"),
        ({"kind": "xor", "n_samples": True}, "n_samples"),
        ({"kind": "xor", "noise": 1.5}, "noise"),
        ({"kind": "xor", "noise": float("nan")}, "noise"),
        ({"kind": "xor", "test_fraction": 0.95}, "test_fraction"),
        ({"kind": "xor", "seed": -1}, "seed"),
        ({"kind": "spiral", "n_classes": 9}, "n_classes"),
        ({"kind": "gauss", "n_classes": 1}, "n_classes"),
        ({"kind": "spiral", "teacher_layers": [2, 2]}, "teacher_layers"),
        ({"kind": "xor", "x": [[1.0]]}, "x"),
        ({"kind": "teacher", "teacher_layers": [3]}, "teacher_layers"),
        ({"kind": "teacher", "teacher_layers": [3, 0, 2]}, "teacher_layers"),
        ({"kind": "teacher", "teacher_layers": [3, 1025]}, "teacher_layers"),
        ({"kind": "teacher", "teacher_activation": "softmax"}, "teacher_activation"),
        ({"kind": "custom", "task": "clustering", "x": [[0], [1]], "y": [0, 1]}, "task"),
    ],
)
def test_spec_errors_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(DatasetError) as err:
        make_dataset(spec)
    assert err.value.field == field


def test_defaults_and_catalog() -> None:
    assert dataset_defaults({"kind": "spiral"}) == {
        "kind": "spiral",
        "n_samples": 400,
        "noise": 0.1,
        "test_fraction": 0.2,
        "seed": 0,
        "n_classes": 2,
    }
    teacher = dataset_defaults({"kind": "teacher", "noise": 0})
    assert teacher["teacher_layers"] == [3, 5, 2] and teacher["teacher_activation"] == "sigmoid"
    assert teacher["noise"] == 0.0
    catalog = dataset_catalog()
    assert [item["kind"] for item in catalog] == list(DATASET_KINDS)
    by_kind = {item["kind"]: item for item in catalog}
    assert by_kind["xor"]["task"] == "classification"
    assert by_kind["xor"]["n_inputs"] == 2 and by_kind["xor"]["n_outputs"] == 1
    assert by_kind["sine"]["n_inputs"] == 1
    assert by_kind["teacher"]["n_inputs"] is None
    assert by_kind["spiral"]["parameters"]["n_classes"] == {
        "type": "integer",
        "default": 2,
        "min": 2,
        "max": 8,
    }
    assert "n_classes" not in by_kind["xor"]["parameters"]
    assert set(by_kind["custom"]["parameters"]) == {"task", "x", "y", "test_fraction", "seed"}
    for item in catalog:  # every kind builds with its catalogued defaults
        if item["kind"] != "custom":
            defaults = {k: p["default"] for k, p in item["parameters"].items()}
            make_dataset({"kind": item["kind"], **defaults})
