"""The teacher dataset's ``teacher_weight_scale`` (API.md "Teacher networks the student ...")."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from app.nn.datasets import (
    DatasetError,
    dataset_catalog,
    dataset_defaults,
    make_dataset,
    teacher_network,
)

F64 = NDArray[np.float64]


def _stream(seed: int, key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(key,)))


def reference_targets(layers: list[int], seed: int, scale: float, x: F64) -> F64:
    """The teacher computed here: xavier-uniform weights drawn layer by layer from the
    seed's teacher stream (spawn key 3), times ``scale``, zero biases, sigmoid everywhere."""
    rng = _stream(seed, 3)
    a = x
    for n_in, n_out in itertools.pairwise(layers):
        bound = np.sqrt(6.0 / (n_in + n_out))
        w = rng.uniform(-bound, bound, size=(n_out, n_in)) * scale
        a = 1 / (1 + np.exp(-(a @ w.T)))
    return a


def _all(spec: dict[str, Any]) -> tuple[F64, F64]:
    d = make_dataset(spec)
    return np.vstack([d.x_train, d.x_test]), np.vstack([d.y_train, d.y_test])


@pytest.mark.parametrize("scale", [0.1, 1.0, 2.5, 6.0, 10.0])
def test_targets_are_the_scaled_teachers_outputs(scale: float) -> None:
    spec = {"kind": "teacher", "noise": 0, "seed": 4, "teacher_weight_scale": scale}
    x, y = _all(spec)
    np.testing.assert_allclose(y, reference_targets([3, 5, 2], 4, scale, x), rtol=1e-12)


def test_scale_one_is_the_default_bit_for_bit() -> None:
    base = make_dataset({"kind": "teacher", "seed": 3})
    one = make_dataset({"kind": "teacher", "seed": 3, "teacher_weight_scale": 1})
    for a, b in zip(
        (base.x_train, base.y_train, base.x_test, base.y_test),
        (one.x_train, one.y_train, one.x_test, one.y_test),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    # and the teacher's weights are exactly the stream's xavier draws
    rng = _stream(3, 3)
    weights = teacher_network([3, 5, 2], "sigmoid", 3).weights
    for w, (n_in, n_out) in zip(weights, [(3, 5), (5, 2)], strict=True):
        bound = np.sqrt(6.0 / (n_in + n_out))
        np.testing.assert_array_equal(w, rng.uniform(-bound, bound, size=(n_out, n_in)))


def test_a_larger_scale_spreads_the_outputs() -> None:
    stds = []
    for scale in (0.5, 1.0, 2.0, 4.0, 8.0):
        _, y = _all({"kind": "teacher", "noise": 0, "teacher_weight_scale": scale})
        stds.append(float(y.std(axis=0).mean()))  # each output's spread, averaged
    assert stds == sorted(stds) and stds[-1] > 3 * stds[1]


def test_teacher_network_scales_the_weights_not_the_biases() -> None:
    plain = teacher_network([4, 6, 3], "tanh", 2)
    scaled = teacher_network([4, 6, 3], "tanh", 2, weight_scale=3.0)
    for w, ws in zip(plain.weights, scaled.weights, strict=True):
        np.testing.assert_array_equal(ws, w * 3.0)
    assert scaled.biases is not None and all((b == 0).all() for b in scaled.biases)


def test_defaults_and_catalog_list_the_scale() -> None:
    assert dataset_defaults({"kind": "teacher"})["teacher_weight_scale"] == 1.0
    assert dataset_defaults({"kind": "teacher", "teacher_weight_scale": 3})[
        "teacher_weight_scale"
    ] == pytest.approx(3.0)
    by_kind = {item["kind"]: item for item in dataset_catalog()}
    assert by_kind["teacher"]["parameters"]["teacher_weight_scale"] == {
        "type": "number",
        "default": 1.0,
        "min": 0.1,
        "max": 10.0,
    }
    for kind in ("circle", "sine", "custom"):
        assert "teacher_weight_scale" not in by_kind[kind]["parameters"]


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"kind": "teacher", "teacher_weight_scale": 0.05}, "between 0.1 and 10"),
        ({"kind": "teacher", "teacher_weight_scale": 11}, "between 0.1 and 10"),
        ({"kind": "teacher", "teacher_weight_scale": -1}, "between 0.1 and 10"),
        ({"kind": "teacher", "teacher_weight_scale": "big"}, "finite number"),
        ({"kind": "teacher", "teacher_weight_scale": float("nan")}, "finite number"),
        ({"kind": "teacher", "teacher_weight_scale": True}, "finite number"),
        ({"kind": "teacher", "teacher_weight_scale": None}, "finite number"),
        ({"kind": "circle", "teacher_weight_scale": 2}, "not a parameter"),
    ],
)
def test_bad_scales_name_the_field(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(DatasetError, match=words) as info:
        make_dataset(spec)
    assert info.value.field == "teacher_weight_scale"
