"""Request schemas: defaults, limits, and 422s that name the field."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.runs.models import PredictRequest, RunCreate, RunPatch, RunStep


def error_locs(model: Any, data: Any) -> list[tuple[Any, ...]]:
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    return [e["loc"] for e in err.value.errors()]


def test_defaults_match_the_contract() -> None:
    run = RunCreate()
    assert run.dataset.kind == "spiral"
    assert run.hidden_layers == [8, 8] and run.activation == "tanh"
    assert run.output_activation is None and run.loss is None
    assert (run.learning_rate, run.optimizer, run.momentum) == (0.03, "sgd", 0.9)
    assert (run.batch_size, run.epochs, run.l1, run.l2) == (10, 1000, 0, 0)
    assert (run.use_bias, run.init, run.seed, run.dtype) == (True, "xavier", 0, "float32")
    assert run.max_epochs_per_second is None and run.start is True
    spec = run.dataset.model_dump()
    assert spec == {
        "kind": "spiral",
        "n_samples": 400,
        "noise": 0.1,
        "test_fraction": 0.2,
        "seed": 0,
        "n_classes": 2,
    }


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        ({"colour": "red"}, ("colour",)),
        ({"name": "x" * 81}, ("name",)),
        ({"hidden_layers": [8] * 11}, ("hidden_layers",)),
        ({"hidden_layers": [0]}, ("hidden_layers", 0)),
        ({"hidden_layers": [1025]}, ("hidden_layers", 0)),
        ({"learning_rate": 0}, ("learning_rate",)),
        ({"learning_rate": 10.5}, ("learning_rate",)),
        ({"learning_rate": float("nan")}, ("learning_rate",)),
        ({"l2": float("inf")}, ("l2",)),
        ({"l1": -1}, ("l1",)),
        ({"momentum": 1}, ("momentum",)),
        ({"batch_size": 0}, ("batch_size",)),
        ({"epochs": 0}, ("epochs",)),
        ({"epochs": 10_000_001}, ("epochs",)),
        ({"seed": -1}, ("seed",)),
        ({"dtype": "float16"}, ("dtype",)),
        ({"max_epochs_per_second": 0}, ("max_epochs_per_second",)),
        ({"activation": "softmax"}, ("activation",)),
        ({"dataset": {"kind": "xor", "n_classes": 3}}, ("dataset", "xor", "n_classes")),
        (
            {"dataset": {"kind": "spiral", "teacher_layers": [2, 1]}},
            ("dataset", "spiral", "teacher_layers"),
        ),
        ({"dataset": {"kind": "xor", "x": [[1]]}}, ("dataset", "xor", "x")),
        ({"dataset": {"kind": "spiral", "n_classes": 9}}, ("dataset", "spiral", "n_classes")),
        ({"dataset": {"kind": "moons", "n_samples": 9}}, ("dataset", "moons", "n_samples")),
        (
            {"dataset": {"kind": "teacher", "teacher_layers": [3]}},
            ("dataset", "teacher", "teacher_layers"),
        ),
        (
            {
                "dataset": {
                    "kind": "custom",
                    "task": "regression",
                    "x": [[1], [2]],
                    "y": [1, 2],
                    "noise": 0.1,
                }
            },
            ("dataset", "custom", "noise"),
        ),
        (
            {
                "dataset": {
                    "kind": "custom",
                    "task": "regression",
                    "x": [[1], [float("nan")]],
                    "y": [1, 2],
                }
            },
            ("dataset", "custom", "x", 1, 0),
        ),
        ({"dataset": {"kind": "nope"}}, ("dataset",)),
    ],
)
def test_bad_fields_are_named(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    assert loc in error_locs(RunCreate, data)


def test_kind_specific_fields_are_accepted_where_they_belong() -> None:
    assert RunCreate.model_validate({"dataset": {"kind": "gauss", "n_classes": 5}})
    teacher = RunCreate.model_validate({"dataset": {"kind": "teacher"}}).dataset
    assert teacher.model_dump()["teacher_layers"] == [3, 5, 2]
    custom = RunCreate.model_validate(
        {"dataset": {"kind": "custom", "task": "regression", "x": [[1], [2]], "y": [[1], [2]]}}
    )
    assert custom.dataset.kind == "custom"


def test_patch_step_predict() -> None:
    patch = RunPatch.model_validate({"max_epochs_per_second": None, "epochs": 5})
    assert patch.changes() == {"max_epochs_per_second": None, "epochs": 5}
    assert RunPatch.model_validate({}).changes() == {}
    assert ("optimizer",) in error_locs(RunPatch, {"optimizer": "rmsprop"})
    assert RunPatch.model_validate({"optimizer": "adam"}).changes() == {"optimizer": "adam"}
    assert error_locs(RunPatch, {"learning_rate": None})
    assert ("learning_rate",) in error_locs(RunPatch, {"learning_rate": float("inf")})
    assert RunStep().epochs == 1
    assert ("epochs",) in error_locs(RunStep, {"epochs": 10_001})
    assert ("inputs",) in error_locs(PredictRequest, {"inputs": []})
    assert ("inputs", 0, 1) in error_locs(PredictRequest, {"inputs": [[1, float("nan")]]})
