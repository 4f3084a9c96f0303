"""RunConfig (app.runs.run_config): the typed config, to and from the API's JSON object."""

from __future__ import annotations

from typing import Any

import pytest

from app.runs.models import RunCreate
from app.runs.record import prepare_run, run_from_row, stored_config, stored_row
from app.runs.run_config import RunConfig


def _public(**fields: Any) -> dict[str, Any]:
    body = RunCreate.model_validate({"dataset": {"kind": "xor", "n_samples": 40}, **fields})
    run, _ = prepare_run(body)
    return run.config.public()


def test_public_gives_back_the_object_it_was_made_of() -> None:
    public = _public(
        hidden_layers=[3, 2], lr_schedule={"kind": "step", "step_size": 5, "gamma": 0.5}
    )
    config = RunConfig.of(public)
    assert config.public() == public
    assert config.hidden_layers == [3, 2] and config.lr_schedule is not None
    assert config.lr_schedule["kind"] == "step"


def test_a_stored_run_of_an_older_version_gets_the_fields_added_since() -> None:
    old = {k: v for k, v in _public().items() if k not in ("features", "lr_schedule")}
    old = {k: v for k, v in old.items() if k not in ("target_loss", "early_stopping")}
    old.pop("error_propagation")
    config = RunConfig.of(old)
    assert config.features is None and config.lr_schedule is None
    assert config.target_loss is None and config.early_stopping is None
    assert config.error_propagation == "chain_rule"


def test_an_older_teacher_run_gets_the_weight_scale_that_means_as_before() -> None:
    public = _public()
    public["dataset"] = {"kind": "teacher", "teacher_layers": [3], "seed": 0}
    assert RunConfig.of(public).dataset["teacher_weight_scale"] == 1.0


def test_an_unknown_field_is_refused() -> None:
    with pytest.raises(TypeError):
        RunConfig.of({**_public(), "colour": "red"})
    with pytest.raises(TypeError):
        RunConfig.of(_public()).replace(colour="red")
    # A row a newer version stored still loads (its new field left out).
    public = _public()
    assert RunConfig.of({**public, "colour": "red"}, strict=False) == RunConfig.of(public)


def test_replace_makes_a_new_config_and_public_copies_the_dataset() -> None:
    config = RunConfig.of(_public(epochs=10))
    longer = config.replace(epochs=20)
    assert (config.epochs, longer.epochs) == (10, 20)
    shown = config.public()
    shown["dataset"]["n_samples"] = 1
    assert config.dataset["n_samples"] == 40
    assert config.is_custom is False


def test_a_run_goes_to_the_store_and_back_with_the_same_config() -> None:
    body = RunCreate.model_validate({"dataset": {"kind": "spiral"}, "features": ["x1", "x2_sq"]})
    run, _ = prepare_run(body)
    row = stored_row(run)
    assert row["config"] == stored_config(run)
    back = run_from_row(row)
    assert back.config == run.config
    assert (back.layer_sizes, back.task) == (run.layer_sizes, run.task)
