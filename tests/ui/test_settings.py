"""The live view's settings panel: form values -> PATCH body, refusals in plain words, the
panel drawn from the config, the loss chart's baseline and auto log scale, and the routes."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.runs.models import RunCreate
from app.ui import losschart, settings, settings_fields
from app.ui.settings_fields import parse_patch, plain_errors, problem_message
from tests.ui.test_pages import current_frame, make_run, step

# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("form", "body"),
    [
        ({"learning_rate": " 0.1 "}, {"learning_rate": 0.1}),
        ({"epochs": "2000"}, {"epochs": 2000}),
        ({"epochs": "2e3"}, {"epochs": 2000}),
        ({"max_epochs_per_second": "5"}, {"max_epochs_per_second": 5.0}),
        ({"max_epochs_per_second": ""}, {"max_epochs_per_second": None}),  # unlimited
        ({"momentum": "0.5"}, {"momentum": 0.5}),
        ({"l1": "0.001", "l2": "0"}, {"l1": 0.001, "l2": 0.0}),
        ({"seed": "7"}, {"seed": 7}),
        ({"batch_size": "32"}, {"batch_size": 32}),
        ({"batch_size": "full"}, {"batch_size": None}),
        ({"batch_size": "Full"}, {"batch_size": None}),
        ({"output_activation": "auto"}, {"output_activation": None}),
        ({"loss": "auto"}, {"loss": None}),
        ({"loss": "mse"}, {"loss": "mse"}),
        ({"activation": "relu"}, {"activation": "relu"}),
        ({"optimizer": "adam"}, {"optimizer": "adam"}),
        ({"init": "he"}, {"init": "he"}),
        ({"dtype": "float64"}, {"dtype": "float64"}),
        ({"name": "mine"}, {"name": "mine"}),
        ({"hidden_layers": "8, 4"}, {"hidden_layers": [8, 4]}),
        ({"hidden_layers": "8 4 2"}, {"hidden_layers": [8, 4, 2]}),
        ({"hidden_layers": ""}, {"hidden_layers": []}),  # no hidden layer: a linear model
        ({"dataset.noise": "0"}, {"dataset": {"noise": 0.0}}),
        ({"dataset.n_samples": "200"}, {"dataset": {"n_samples": 200}}),
        ({"dataset.test_fraction": "0.5"}, {"dataset": {"test_fraction": 0.5}}),
        ({"dataset.seed": "3"}, {"dataset": {"seed": 3}}),
        ({"dataset.n_classes": "3"}, {"dataset": {"n_classes": 3}}),
        ({"dataset.teacher_layers": "2, 4, 1"}, {"dataset": {"teacher_layers": [2, 4, 1]}}),
        ({"dataset.teacher_activation": "tanh"}, {"dataset": {"teacher_activation": "tanh"}}),
        ({"dataset.teacher_weight_scale": "2.5"}, {"dataset": {"teacher_weight_scale": 2.5}}),
        (
            {"dataset.kind": "circle", "dataset.noise": "0.2", "dataset.n_samples": "300"},
            {"dataset": {"kind": "circle", "noise": 0.2, "n_samples": 300}},
        ),
    ],
)
def test_every_field_is_parsed_into_its_typed_value(
    form: dict[str, str], body: dict[str, Any]
) -> None:
    assert parse_patch(form) == body


def test_empty_fields_are_left_out_and_unknown_names_dropped() -> None:
    form = {"learning_rate": "", "epochs": " ", "dataset.noise": "", "batch_size": "", "x": "1"}
    assert parse_patch(form) == {}


def test_text_that_is_not_a_number_is_kept_so_validation_names_the_field() -> None:
    assert parse_patch({"learning_rate": "fast", "epochs": "1.5"}) == {
        "learning_rate": "fast",
        "epochs": "1.5",
    }
    assert parse_patch({"hidden_layers": "8, x"}) == {"hidden_layers": [8, "x"]}


def test_checkboxes_are_read_as_ticked_or_not() -> None:
    # An unticked box sends nothing; the control names itself in "checkbox".
    assert parse_patch({}, ["use_bias"]) == {"use_bias": False}
    assert parse_patch({"use_bias": "on"}, ["use_bias"]) == {"use_bias": True}
    assert parse_patch({}, ["error_propagation"]) == {"error_propagation": "chain_rule"}
    assert parse_patch({"error_propagation": "weights_only"}, ["error_propagation"]) == {
        "error_propagation": "weights_only"
    }


# ---------------------------------------------------------------- refusals in plain words


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        RunCreate.model_validate(body)
    return plain_errors(caught.value.errors())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"learning_rate": 11}, "Learning rate: must be more than 0 and at most 10"),
        ({"learning_rate": 0}, "Learning rate: must be more than 0 and at most 10"),
        ({"learning_rate": "fast"}, "Learning rate: must be more than 0 and at most 10"),
        ({"momentum": 1}, "Momentum: must be at least 0 and less than 1"),
        ({"batch_size": 0}, 'Batch size: must be a whole number of at least 1, or "full"'),
        ({"epochs": 0}, "Epochs: must be a whole number from 1 to 10,000,000"),
        ({"l2": -1}, "L2 regularisation: must be a number of at least 0"),
        ({"hidden_layers": [8, 0]}, "Hidden layers: must be up to 10 widths"),
        ({"activation": "step"}, "Activation: must be one of the listed functions"),
        ({"dataset": {"kind": "spiral", "noise": 2}}, "Noise: must be from 0 to 1"),
        (
            {"dataset": {"kind": "spiral", "n_samples": 5}},
            "Samples: must be a whole number from 10 to 100,000",
        ),
        (
            {"dataset": {"kind": "teacher", "teacher_layers": [3]}},
            "Teacher layers: must be 2 to 10 widths",
        ),
    ],
)
def test_a_refusal_names_the_field_in_plain_words(body: dict[str, Any], message: str) -> None:
    text = refusal(body)
    assert text.startswith(message), text
    assert "Input should" not in text and "greater than" not in text  # no raw pydantic text


def test_manager_refusals_are_labelled_too() -> None:
    assert problem_message("epochs", "epochs (5) is below the current epoch (9)") == (
        "Epochs: epochs (5) is below the current epoch (9)"
    )
    assert problem_message("dataset.n_samples", "too many").startswith("Samples: ")
    assert problem_message(None, "Run is running") == "Run is running"
    raw = "dataset.noise: must be less than or equal to 1"
    assert problem_message("dataset.noise", raw) == "Noise: must be from 0 to 1"


# ---------------------------------------------------------------- the panel


def run_dict(**config: Any) -> dict[str, Any]:
    base = RunCreate.model_validate({}).model_dump()
    base.update(config)
    return {"id": "r1", "config": base, "layer_sizes": [2, 8, 8, 1], "task": "classification"}


def controls(view: settings.SettingsView) -> dict[str, settings.Control]:
    every = list(view.quick) + [c for g in view.groups for c in g.controls]
    return {c.name: c for c in every}


def test_the_panel_shows_every_field_with_the_value_in_effect() -> None:
    run = run_dict(learning_rate=0.3, batch_size=None, loss="cross_entropy")
    shown = controls(settings.settings_view(run))
    assert shown["learning_rate"].value == "0.3" and shown["learning_rate"].id == "learning-rate"
    assert shown["batch_size"].value == "full"
    assert shown["max_epochs_per_second"].id == "speed"
    for name in (
        "activation",
        "output_activation",
        "loss",
        "use_bias",
        "init",
        "seed",
        "dtype",
        "hidden_layers",
        "error_propagation",
        "optimizer",
        "momentum",
        "l1",
        "l2",
        "epochs",
        "name",
        "dataset.kind",
        "dataset.noise",
        "dataset.test_fraction",
        "dataset.n_samples",
        "dataset.seed",
        "dataset.n_classes",  # spiral
    ):
        assert name in shown, name
    assert "dataset.teacher_layers" not in shown
    assert ("auto", "auto (by task)") in shown["loss"].options
    assert shown["hidden_layers"].value == "8, 8"


def test_fields_that_do_not_apply_are_off_with_a_reason() -> None:
    shown = controls(settings.settings_view(run_dict(optimizer="sgd")))
    assert shown["momentum"].disabled == "used by the momentum optimizer only"
    assert "loss is not MSE" in shown["error_propagation"].disabled
    assert "error_propagation" in settings_fields.FIELDS
    on = controls(settings.settings_view(run_dict(optimizer="momentum", loss="mse")))
    assert on["momentum"].disabled == ""
    assert on["error_propagation"].disabled == "the output is not sigmoid or linear"
    ok = run_dict(loss="mse", output_activation="sigmoid")
    assert controls(settings.settings_view(ok))["error_propagation"].disabled == ""


def test_data_fields_follow_the_dataset_kind() -> None:
    xor = controls(settings.settings_view(run_dict(dataset={"kind": "xor", "noise": 0.1})))
    assert "dataset.n_classes" not in xor
    # A new kind keeps the size, noise, split and seed the learner set.
    assert "#s-dataset-noise" in xor["dataset.kind"].include
    teacher = {"kind": "teacher", "teacher_layers": [3, 5, 2], "teacher_activation": "sigmoid"}
    shown = controls(settings.settings_view(run_dict(dataset=teacher)))
    assert shown["dataset.teacher_layers"].value == "3, 5, 2"
    assert shown["dataset.teacher_weight_scale"].value == "1"
    custom = {"kind": "custom", "task": "regression", "test_fraction": 0.2, "seed": 0}
    own = controls(settings.settings_view(run_dict(dataset=custom)))
    assert own["dataset.kind"].kind == "static" and own["dataset.kind"].value == "your own data"
    assert "dataset.noise" not in own


def test_train_more_adds_the_run_s_epochs_again() -> None:
    assert settings.more_epochs(1000) == 2000
    assert settings.more_epochs(9_000_000) == 10_000_000


# ---------------------------------------------------------------- the loss chart's aids


def test_baseline_is_the_mse_of_predicting_the_mean() -> None:
    n = 9
    y = np.arange(1, n + 1, dtype=np.float64)
    # Closed form: the population variance of 1..n is (n² - 1) / 12.
    assert losschart.mean_baseline(y) == pytest.approx((n * n - 1) / 12)
    # Two outputs: the MSE averages over outputs, so the mean of the two variances.
    two = np.stack([y, 3 * y], axis=1)
    assert losschart.mean_baseline(two) == pytest.approx((1 + 9) / 2 * (n * n - 1) / 12)
    assert losschart.mean_baseline([]) is None
    data = {"train": {"x": [[0], [1]], "y": [[0.0], [2.0]]}}
    assert losschart.run_baseline(data, "regression") == pytest.approx(1.0)
    assert losschart.run_baseline(data, "classification") is None


def test_log_scale_switches_on_for_long_or_wide_ranging_runs() -> None:
    assert not losschart.wants_log_scale([np.array([1.0, 0.5, 0.2])], 3)
    assert losschart.wants_log_scale([np.array([1.0, 0.5, 0.005])], 3)  # > 2 decades
    assert not losschart.wants_log_scale([np.array([1.0, np.nan, 0.02])], 3)  # 1.7 decades
    assert losschart.wants_log_scale([np.array([0.5, 0.4])], losschart.LOG_EPOCHS + 1)


# ---------------------------------------------------------------- routes and frames


def test_a_refused_value_answers_with_the_panel_in_effect(client: TestClient) -> None:
    run_id = make_run(client)
    bad = client.post(f"/ui/runs/{run_id}/patch", data={"learning_rate": "11"})
    assert bad.status_code == 200
    assert 'data-error="true">Learning rate: must be more than 0 and at most 10<' in bad.text
    panel = bad.text[bad.text.index('<div id="live-settings" hx-swap-oob="innerHTML">') :]
    rate = re.search(r'<input id="learning-rate"[^>]*>', panel)
    assert rate is not None and 'value="0.03"' in rate.group(0)
    assert 'data-submitted="learning_rate"' in panel
    assert client.get(f"/api/runs/{run_id}").json()["config"]["learning_rate"] == 0.03


def test_an_accepted_value_answers_with_the_new_panel(client: TestClient) -> None:
    run_id = make_run(client)
    ok = client.post(f"/ui/runs/{run_id}/patch", data={"learning_rate": "0.3", "epochs": "70"})
    assert 'data-error="false">learning rate 0.3 · epochs 70<' in ok.text
    rate = re.search(r'<input id="learning-rate"[^>]*>', ok.text)
    assert rate is not None and 'value="0.3"' in rate.group(0)
    config = client.get(f"/api/runs/{run_id}").json()["config"]
    assert (config["learning_rate"], config["epochs"]) == (0.3, 70)


def test_the_settings_fragment_is_sent_when_the_config_changes(client: TestClient) -> None:
    run_id = make_run(client)
    first = current_frame(client, run_id)
    assert 'value="0.03"' in first.fragments["settings"]
    step(client, run_id, 1)
    trained = current_frame(client, run_id)
    # New epochs only: the panel is not re-sent (and not re-rendered).
    assert trained.fragments["settings"] is first.fragments["settings"]
    assert b'id="live-settings"' not in (trained.frame_message(first.version) or b"")
    assert client.patch(f"/api/runs/{run_id}", json={"learning_rate": 0.5}).status_code == 200
    changed = current_frame(client, run_id)
    message = (changed.frame_message(trained.version) or b"").decode()
    assert '<div id="live-settings" hx-swap-oob="innerHTML">' in message
    assert re.search(r'<input id="learning-rate"[^>]*value="0.5"', message)


def test_train_more_raises_the_epochs_and_starts(client: TestClient) -> None:
    run_id = make_run(client, epochs=3, max_epochs_per_second=1)
    step(client, run_id, 3)
    assert client.get(f"/api/runs/{run_id}").json()["status"] == "completed"
    frame = current_frame(client, run_id)
    assert (
        'id="train-more"' in frame.fragments["controls"]
        and "Train 3 more" in frame.fragments["controls"]
    )
    answer = client.post(f"/ui/runs/{run_id}/train-more", headers={"HX-Request": "true"})
    assert "training on to epoch 6" in answer.text
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["epochs"] == 6 and run["status"] == "running"
    client.post(f"/api/runs/{run_id}/stop")
    assert 'id="train-more"' not in current_frame(client, run_id).fragments["controls"]


def test_regression_loss_chart_names_the_loss_and_draws_the_baseline(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "sine", "n_samples": 40}, hidden_layers=[4])
    step(client, run_id, 2)
    loss = current_frame(client, run_id).fragments["loss"]
    assert "mean squared error (MSE)" in loss
    data = client.get(f"/api/runs/{run_id}/data").json()
    y = np.asarray(data["train"]["y"], dtype=np.float64)
    expected = float(np.mean((y - y.mean()) ** 2))
    shown = re.search(r"predicting the mean ([-\d.e]+)<", loss)
    assert shown is not None and float(shown.group(1)) == pytest.approx(expected, rel=1e-3)
    assert '<path class="series baseline dashed" d="M' in loss
    xor = make_run(client)
    step(client, xor, 2)
    classification = current_frame(client, xor).fragments["loss"]
    assert "cross-entropy" in classification and "predicting the mean" not in classification


def test_structural_changes_through_the_panel_reinitialise_the_run(client: TestClient) -> None:
    run_id = make_run(client, dataset={"kind": "xor", "n_samples": 40, "noise": 0.1})
    step(client, run_id, 3)
    patch = f"/ui/runs/{run_id}/patch"
    answer = client.post(patch, data={"activation": "relu"})
    assert 'data-error="false">activation changed — new weights, epoch 0<' in answer.text
    run = client.get(f"/api/runs/{run_id}").json()
    assert (run["config"]["activation"], run["epoch"]) == ("relu", 0)
    # A partial dataset: the kind and the other fields stay.
    client.post(patch, data={"dataset.noise": "0"})
    dataset = client.get(f"/api/runs/{run_id}").json()["config"]["dataset"]
    assert (dataset["kind"], dataset["noise"], dataset["n_samples"]) == ("xor", 0.0, 40)
    # A new kind comes with the size and noise the panel shows (hx-include).
    client.post(
        patch, data={"dataset.kind": "circle", "dataset.noise": "0", "dataset.n_samples": "40"}
    )
    dataset = client.get(f"/api/runs/{run_id}").json()["config"]["dataset"]
    assert (dataset["kind"], dataset["noise"], dataset["n_samples"]) == ("circle", 0.0, 40)
    client.post(patch, data={"batch_size": "full", "hidden_layers": "3, 2"})
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["config"]["batch_size"] is None and run["layer_sizes"] == [2, 3, 2, 1]
    client.post(patch, data={"checkbox": "use_bias"})
    assert client.get(f"/api/runs/{run_id}").json()["config"]["use_bias"] is False


def test_the_shortcut_refused_by_the_run_is_explained(client: TestClient) -> None:
    run_id = make_run(client)  # binary classification: cross-entropy
    answer = client.post(
        f"/ui/runs/{run_id}/patch",
        data={"checkbox": "error_propagation", "error_propagation": "weights_only"},
    )
    assert 'data-error="true">Article&#39;s shortcut: ' in answer.text
    assert "Input should" not in answer.text
    config = client.get(f"/api/runs/{run_id}").json()["config"]
    assert config["error_propagation"] == "chain_rule"
    box = re.search(r'<input type="checkbox" id="s-error-propagation"[^>]*>', answer.text)
    assert box is not None and "checked" not in box.group(0) and "disabled" in box.group(0)


def test_duplicate_goes_to_the_copy(client: TestClient) -> None:
    run_id = make_run(client)
    step(client, run_id, 2)
    answer = client.post(f"/ui/runs/{run_id}/duplicate", headers={"HX-Request": "true"})
    target = answer.headers["HX-Redirect"]
    copy_id = target.removeprefix("/runs/")
    assert copy_id != run_id and target == f"/runs/{copy_id}"
    copy = client.get(f"/api/runs/{copy_id}").json()
    assert copy["epoch"] == 2 and copy["config"]["dataset"]["kind"] == "xor"
    assert 'id="duplicate"' in client.get(f"/runs/{run_id}").text


def test_the_data_group_links_to_the_drawing_plane_for_2d_runs_only() -> None:
    def view(n_inputs: int) -> Any:
        run = {"id": "abc", "n_inputs": n_inputs, "layer_sizes": [n_inputs, 4, 1],
               "config": {"dataset": {"kind": "spiral", "noise": 0.1}}}  # fmt: skip
        return settings.settings_view(run)

    data = view(2).groups[0]
    assert data.link == ("/runs/abc/draw", "Draw your own points…")
    kinds = [value for value, _ in data.controls[0].options]
    assert "draw" not in kinds and "custom" not in kinds  # not kinds a PATCH can take
    assert view(1).groups[0].link is None


@pytest.mark.parametrize(
    ("form", "expected"),
    [
        (
            {"lr_schedule.kind": "step"},
            {"lr_schedule": {"kind": "step", "step_size": 100, "gamma": 0.5}},
        ),
        ({"lr_schedule.kind": "cosine"}, {"lr_schedule": {"kind": "cosine", "min_lr": 0.0}}),
        (
            {"lr_schedule.kind": "step", "lr_schedule.step_size": "20", "lr_schedule.gamma": "0.8"},
            {"lr_schedule": {"kind": "step", "step_size": 20, "gamma": 0.8}},
        ),
        (
            {"lr_schedule.kind": "exponential", "lr_schedule.step_size": "20"},
            {"lr_schedule": {"kind": "exponential", "gamma": 0.99}},
        ),
        ({"lr_schedule.kind": ""}, {"lr_schedule": None}),
        ({"target_loss": ""}, {"target_loss": None}),
        ({"target_loss": "0.05"}, {"target_loss": 0.05}),
        (
            {"early_stopping.patience": "", "early_stopping.min_delta": "0"},
            {"early_stopping": None},
        ),
        (
            {"early_stopping.patience": "30", "early_stopping.min_delta": "0.001"},
            {"early_stopping": {"patience": 30, "min_delta": 0.001}},
        ),
    ],
)
def test_training_controls_are_parsed_into_the_apis_shape(
    form: dict[str, str], expected: dict[str, Any]
) -> None:
    assert settings_fields.parse_patch(form) == expected


def test_the_schedules_numbers_go_with_its_kind() -> None:
    schedule = {"kind": "step", "step_size": 5, "gamma": 0.5}
    config = {"optimizer": "sgd", "lr_schedule": schedule, "early_stopping": None}
    run = {"id": "r", "n_inputs": 2, "layer_sizes": [2, 4, 1], "config": config}
    training = settings.settings_view(run).groups[2]
    by_name = {c.name: c for c in training.controls}
    assert by_name["lr_schedule.kind"].value == "step"
    assert "lr_schedule.period" not in by_name  # only the kind's own numbers
    assert by_name["lr_schedule.gamma"].include.startswith("#s-lr-schedule-kind")
    assert "early_stopping.min_delta" not in by_name  # shown once early stopping is on
