# ruff: noqa: RUF001 -- UI text uses real typography (prime, en dash, superscripts)
"""The live view's settings panel: its controls drawn from a run's config.

Grouped as the learner thinks of them: a quick bar (learning rate, activation,
batch, speed) and Data / Network / Training groups. How the submitted values
are read and refusals worded lives in ``settings_fields``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.nn.network import error_propagation_problem
from app.runs.models import MAX_EPOCHS
from app.ui import forms

LOSS_NAMES = {"mse": "mean squared error (MSE)", "cross_entropy": "cross-entropy"}
ACTIVATION_NAMES = {
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "relu": "ReLU",
    "leaky_relu": "leaky ReLU",
    "linear": "linear (none)",
    "softmax": "softmax",
}
OPTIMIZER_NAMES = {"sgd": "plain SGD", "momentum": "SGD with momentum", "adam": "Adam"}
INIT_NAMES = {
    "xavier": "Xavier (Glorot)",
    "he": "He",
    "uniform": "uniform",
    "normal": "normal",
}
DTYPE_NAMES = {"float32": "32-bit floats", "float64": "64-bit floats"}
BATCH_SIZES = ("full", "1", "10", "32", "100")
SHORTCUT_LABEL = "Article's shortcut (errors passed back through the weights alone)"
SHORTCUT_HINT = (
    "drops f′ from the errors passed back: δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾ᵀe⁽ˡ⁺¹⁾) ⊙ f′(z⁽ˡ⁾) without the "
    "chain of derivatives; needs MSE and a sigmoid or linear output"
)


# ---------------------------------------------------------------- the panel's controls


@dataclass(frozen=True)
class Control:
    """One control of the panel; ``disabled`` is the reason it cannot change now ('' = it can)."""

    name: str
    label: str
    kind: str  # "number" | "text" | "select" | "checkbox" | "static"
    value: str = ""
    options: tuple[tuple[str, str], ...] = ()
    checked: bool = False
    disabled: str = ""
    hint: str = ""
    datalist: str = ""
    include: str = ""  # hx-include: other fields sent along (a new dataset kind keeps noise…)
    element_id: str = ""
    step: str = "any"

    @property
    def id(self) -> str:
        return self.element_id or "s-" + self.name.replace(".", "-").replace("_", "-")


@dataclass(frozen=True)
class Group:
    key: str
    title: str
    summary: str
    controls: list[Control] = field(default_factory=list)
    link: tuple[str, str] | None = None  # (href, text) under the controls
    action: Action | None = None  # a button under the controls


@dataclass(frozen=True)
class Action:
    """A button that posts (htmx) to `url`; `disabled` is why it cannot now ('' = it can)."""

    label: str
    url: str
    title: str
    disabled: str = ""


@dataclass(frozen=True)
class SettingsView:
    run_id: str
    quick: list[Control]
    groups: list[Group]
    submitted: str = ""  # the field whose change this panel answers (see static/settings.js)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _choices(names: Mapping[str, str], keys: Iterable[str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, names.get(k, k)) for k in keys)


def _data_group(config: Mapping[str, Any], run_id: str, n_inputs: int) -> Group:
    ds: Mapping[str, Any] = config.get("dataset", {})
    kind = str(ds.get("kind", ""))
    keep = ", ".join(f"#s-dataset-{k}" for k in ("n-samples", "noise", "test-fraction", "seed"))
    controls: list[Control] = []
    if kind == "custom":
        controls.append(Control("dataset.kind", "Dataset", "static", "your own data"))
    else:
        # Drawing is a page of its own (the group's link), not a kind to PATCH.
        kinds = [(k, v) for k, v in forms.KIND_LABELS.items() if k not in ("custom", "draw")]
        controls.append(
            Control("dataset.kind", "Dataset", "select", kind, tuple(kinds), include=keep)
        )
        controls.append(Control("dataset.noise", "Noise", "number", _fmt(ds.get("noise"))))
        controls.append(
            Control("dataset.n_samples", "Samples", "number", _fmt(ds.get("n_samples")), step="1")
        )
    controls.append(
        Control("dataset.test_fraction", "Test fraction", "number", _fmt(ds.get("test_fraction")))
    )
    controls.append(Control("dataset.seed", "Data seed", "number", _fmt(ds.get("seed")), step="1"))
    if kind in forms.MULTICLASS_KINDS:
        controls.append(
            Control("dataset.n_classes", "Classes", "number", _fmt(ds.get("n_classes")), step="1")
        )
    if kind == "teacher":
        controls += [
            Control(
                "dataset.teacher_layers",
                "Teacher layers",
                "text",
                _fmt(ds.get("teacher_layers")),
                hint="inputs, hidden…, outputs",
            ),
            Control(
                "dataset.teacher_activation",
                "Teacher activation",
                "select",
                _fmt(ds.get("teacher_activation")),
                _choices(ACTIVATION_NAMES, forms.ACTIVATIONS),
            ),
            Control(
                "dataset.teacher_weight_scale",
                "Teacher weight scale",
                "number",
                _fmt(ds.get("teacher_weight_scale", 1.0)),
            ),
        ]
    name = "your own data" if kind == "custom" else forms.KIND_LABELS.get(kind, kind)
    noise = "" if kind == "custom" else f", noise {_fmt(ds.get('noise'))}"
    # The drawing plane is 2-D: offered for any run whose raw inputs are (x₁, x₂).
    link = (f"/runs/{run_id}/draw", "Draw your own points…") if n_inputs == 2 else None
    return Group("data", "Data", f"{name}{noise}", controls, link)


def shortcut_blocked(config: Mapping[str, Any]) -> str:
    """Why the article's shortcut cannot be switched on now ('' when it can); the rule is
    app.nn's, the words are the panel's."""
    loss, output = str(config.get("loss")), str(config.get("output_activation"))
    if not error_propagation_problem("weights_only", loss, output):
        return ""
    reasons = []
    if config.get("loss") != "mse":
        reasons.append("the loss is not MSE")
    if config.get("output_activation") not in ("sigmoid", "linear"):
        reasons.append("the output is not sigmoid or linear")
    return " and ".join(reasons)


def _network_group(
    config: Mapping[str, Any], layer_sizes: Sequence[int], run_id: str = ""
) -> Group:
    shortcut = config.get("error_propagation") == "weights_only"
    blocked = "" if shortcut else shortcut_blocked(config)
    controls = [
        Control(
            "hidden_layers",
            "Hidden layers",
            "text",
            _fmt(config.get("hidden_layers")),
            hint="neurons per layer, e.g. 8, 8 (empty: none)",
        ),
        Control(
            "output_activation",
            "Output activation",
            "select",
            _fmt(config.get("output_activation")),
            (("auto", "auto (by task)"), *_choices(ACTIVATION_NAMES, forms.OUTPUT_ACTIVATIONS)),
        ),
        Control(
            "loss",
            "Loss",
            "select",
            _fmt(config.get("loss")),
            (("auto", "auto (by task)"), *_choices(LOSS_NAMES, forms.LOSSES)),
        ),
        Control(
            "error_propagation",
            SHORTCUT_LABEL,
            "checkbox",
            "weights_only",
            checked=shortcut,
            disabled=blocked,
            hint=SHORTCUT_HINT,
        ),
        Control("use_bias", "Use biases", "checkbox", "on", checked=bool(config.get("use_bias"))),
        Control(
            "init",
            "Initial weights",
            "select",
            _fmt(config.get("init")),
            _choices(INIT_NAMES, forms.INITS),
        ),
        Control("seed", "Weight seed", "number", _fmt(config.get("seed")), step="1"),
        Control(
            "dtype",
            "Arithmetic",
            "select",
            _fmt(config.get("dtype")),
            _choices(DTYPE_NAMES, forms.DTYPES),
        ),
    ]
    sizes = "–".join(str(n) for n in layer_sizes)
    compare = Action(
        "Compare with and without the shortcut",
        f"/ui/runs/{run_id}/compare-shortcut",
        "two new runs of these settings, side by side",
        shortcut_blocked(config),
    )
    summary = f"{sizes}, {config.get('activation', '')}"
    return Group("network", "Network", summary, controls, action=compare)


def _training_group(config: Mapping[str, Any]) -> Group:
    optimizer = str(config.get("optimizer", "sgd"))
    controls = [
        Control(
            "optimizer",
            "Optimizer",
            "select",
            optimizer,
            _choices(OPTIMIZER_NAMES, forms.OPTIMIZERS),
        ),
        Control(
            "momentum",
            "Momentum",
            "number",
            _fmt(config.get("momentum")),
            disabled="" if optimizer == "momentum" else "used by the momentum optimizer only",
        ),
        Control("l1", "L1 regularisation", "number", _fmt(config.get("l1"))),
        Control("l2", "L2 regularisation", "number", _fmt(config.get("l2"))),
        Control("epochs", "Epochs", "number", _fmt(config.get("epochs")), step="1"),
        Control("name", "Run name", "text", _fmt(config.get("name"))),
        *_control_fields(config),
    ]
    return Group("training", "Training", OPTIMIZER_NAMES.get(optimizer, optimizer), controls)


SCHEDULE_NAMES = {
    "": "constant",
    "step": "step (× γ every n epochs)",
    "exponential": "exponential (× γ each epoch)",
    "cosine": "cosine",
}


def _control_fields(config: Mapping[str, Any]) -> list[Control]:
    """The rate schedule (its kind, then that kind's numbers), target loss, early stopping."""
    schedule: Mapping[str, Any] = config.get("lr_schedule") or {}
    kind = str(schedule.get("kind", ""))
    numbers = [
        ("lr_schedule.step_size", "Step size", "step_size", "1"),
        ("lr_schedule.gamma", "Gamma (γ)", "gamma", "any"),
        ("lr_schedule.period", "Period", "period", "1"),
        ("lr_schedule.min_lr", "Lowest rate", "min_lr", "any"),
    ]
    own = [n for n in numbers if n[2] in schedule]
    # A number goes with the kind and the kind's other numbers: the schedule is one field.
    together = ", ".join(
        f"#s-{name.replace('.', '-').replace('_', '-')}"
        for name in ("lr_schedule.kind", *(n[0] for n in own))
    )
    early: Mapping[str, Any] = config.get("early_stopping") or {}
    early_with = "#s-early-stopping-patience, #s-early-stopping-min-delta"  # absent: skipped
    target = config.get("target_loss")
    return [
        Control(
            "lr_schedule.kind",
            "Rate schedule",
            "select",
            kind,
            tuple(SCHEDULE_NAMES.items()),
        ),
        *(
            Control(name, label, "number", _fmt(schedule[key]), step=step, include=together)
            for name, label, key, step in own
        ),
        Control(
            "target_loss",
            "Target loss",
            "number",
            "" if target is None else _fmt(target),
            hint="none",
        ),
        Control(
            "early_stopping.patience",
            "Early stopping: patience",
            "number",
            _fmt(early.get("patience", "")),
            step="1",
            hint="off",
            include=early_with,
        ),
        *(  # shown once early stopping is on (a patience set)
            [
                Control(
                    "early_stopping.min_delta",
                    "Least improvement",
                    "number",
                    _fmt(early.get("min_delta", 0.0)),
                    include=early_with,
                )
            ]
            if early
            else []
        ),
    ]


def settings_view(run: Mapping[str, Any], submitted: str = "") -> SettingsView:
    """The panel for a public Run dict: the quick bar and the Data / Network / Training groups."""
    config: Mapping[str, Any] = run.get("config", {})
    batch = config.get("batch_size")
    speed = config.get("max_epochs_per_second")
    quick = [
        Control(
            "learning_rate",
            "Learning rate",
            "number",
            _fmt(config.get("learning_rate")),
            datalist="lr-values",
            element_id="learning-rate",
        ),
        Control(
            "activation",
            "Activation",
            "select",
            _fmt(config.get("activation")),
            _choices(ACTIVATION_NAMES, forms.ACTIVATIONS),
        ),
        Control(
            "batch_size",
            "Batch size",
            "text",
            "full" if batch is None else _fmt(batch),
            datalist="batch-values",
            hint='a number, or "full"',
        ),
        Control(
            "max_epochs_per_second",
            "Speed",
            "select",
            _fmt(speed),
            tuple((v, text) for v, text, _ in forms.speed_options(speed)),
            element_id="speed",
        ),
    ]
    groups = [
        _data_group(config, str(run.get("id", "")), int(run.get("n_inputs", 0))),
        _network_group(config, run.get("layer_sizes", []), str(run.get("id", ""))),
        _training_group(config),
    ]
    return SettingsView(str(run.get("id", "")), quick, groups, submitted)


def more_epochs(epochs: int) -> int:
    """The new epoch target of "Train more": the run trains as many epochs again.

    The original count is not stored apart from the config, so "as many again"
    is the current target: 1,000 -> 2,000 -> 4,000 (capped at the API's maximum).
    """
    return min(2 * epochs, MAX_EPOCHS)
