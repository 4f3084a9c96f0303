# ruff: noqa: RUF001 -- labels use real math typography (gamma as the Greek letter)
"""The settings panel's fields: plain-words labels, form strings -> PATCH body, refusals.

Every control of the live view's panel is named like the API's field
(dataset fields dotted: ``dataset.noise``) and posts on its own, so a change
sends one field. ``parse_patch`` turns the form strings into the typed JSON
body of ``PATCH /api/runs/{id}``; ``plain_errors`` and ``problem_message``
turn a refusal into a sentence naming the field in plain words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.runs.models import LIVE_FIELDS  # the one rule of which fields change a run in place
from app.ui import forms

# ---------------------------------------------------------------- fields and their words

# Form name -> (label in plain words, what it accepts). The rule is what a refusal says.
FIELDS: dict[str, tuple[str, str]] = {
    "name": ("Run name", "at most 80 characters"),
    "learning_rate": ("Learning rate", "must be more than 0 and at most 10"),
    "max_epochs_per_second": ("Speed", "must be more than 0 epochs a second, or unlimited"),
    "epochs": ("Epochs", "must be a whole number from 1 to 10,000,000"),
    "optimizer": ("Optimizer", "must be plain SGD, momentum or Adam"),
    "momentum": ("Momentum", "must be at least 0 and less than 1"),
    "batch_size": ("Batch size", 'must be a whole number of at least 1, or "full"'),
    "l1": ("L1 regularisation", "must be a number of at least 0"),
    "l2": ("L2 regularisation", "must be a number of at least 0"),
    "activation": ("Activation", "must be one of the listed functions"),
    "output_activation": ("Output activation", "must be auto or one of the listed functions"),
    "loss": ("Loss", "must be auto, mean squared error or cross-entropy"),
    "use_bias": ("Use biases", "must be on or off"),
    "init": ("Initial weights", "must be one of the listed initialisers"),
    "seed": ("Weight seed", "must be a whole number of at least 0"),
    "dtype": ("Arithmetic", "must be 32-bit or 64-bit floats"),
    "hidden_layers": (
        "Hidden layers",
        "must be up to 10 widths, each a whole number from 1 to 1024 (e.g. 8, 8)",
    ),
    "error_propagation": ("Article's shortcut", "needs MSE and a sigmoid or linear output"),
    "features": ("Input features", "must be 1 to 7 of the listed features"),
    "dataset": ("Data", "is not a valid dataset"),
    "dataset.kind": ("Dataset", "must be one of the listed datasets"),
    "dataset.n_samples": ("Samples", "must be a whole number from 10 to 100,000"),
    "dataset.noise": ("Noise", "must be from 0 to 1"),
    "dataset.test_fraction": ("Test fraction", "must be from 0 to 0.9"),
    "dataset.seed": ("Data seed", "must be a whole number of at least 0"),
    "dataset.n_classes": ("Classes", "must be a whole number from 2 to 8"),
    "dataset.teacher_layers": (
        "Teacher layers",
        "must be 2 to 10 widths, each a whole number from 1 to 1024 (e.g. 3, 5, 2)",
    ),
    "dataset.teacher_activation": ("Teacher activation", "must be one of the listed functions"),
    "dataset.teacher_weight_scale": ("Teacher weight scale", "must be from 0.1 to 10"),
    "lr_schedule": ("Rate schedule", "needs its numbers: a step size ≥ 1, 0 < γ ≤ 1"),
    "lr_schedule.kind": ("Rate schedule", "must be constant, step, exponential or cosine"),
    "lr_schedule.step_size": ("Step size", "must be a whole number of at least 1"),
    "lr_schedule.gamma": ("Gamma (γ)", "must be more than 0 and at most 1"),
    "lr_schedule.period": ("Period", "must be a whole number of at least 1"),
    "lr_schedule.min_lr": ("Lowest rate", "must be a number of at least 0"),
    "target_loss": ("Target loss", "must be more than 0, or empty for none"),
    "early_stopping": ("Early stopping", "needs a patience from 1 to 100,000"),
    "early_stopping.patience": ("Patience", "must be a whole number from 1 to 100,000, or empty"),
    "early_stopping.min_delta": ("Least improvement", "must be a number of at least 0"),
}
# The schedule's fields each kind takes, with the value a newly chosen kind starts from.
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "step": {"step_size": 100, "gamma": 0.5},
    "exponential": {"gamma": 0.99},
    "cosine": {"period": None, "min_lr": 0.0},  # period: the run's epochs (the server fills it)
}

INT_FIELDS = (
    "epochs",
    "seed",
    "dataset.n_samples",
    "dataset.seed",
    "dataset.n_classes",
    "lr_schedule.step_size",
    "lr_schedule.period",
    "early_stopping.patience",
)
FLOAT_FIELDS = (
    "learning_rate",
    "momentum",
    "l1",
    "l2",
    "dataset.noise",
    "dataset.test_fraction",
    "dataset.teacher_weight_scale",
    "lr_schedule.gamma",
    "lr_schedule.min_lr",
    "target_loss",
    "early_stopping.min_delta",
)
# Empty means "none" (null) for these, not "unchanged".
OPTIONAL_FIELDS = ("target_loss", "early_stopping.patience", "lr_schedule.kind")
AUTO_FIELDS = ("output_activation", "loss")  # "auto" (or empty) = chosen by task = null
LIST_FIELDS = ("hidden_layers", "dataset.teacher_layers")
CHECKBOX_FIELDS = ("use_bias", "error_propagation")


def label(name: str) -> str:
    """The plain-words label of a form field (its own name when unknown)."""
    return FIELDS.get(name, (name.replace("dataset.", "").replace("_", " ").capitalize(), ""))[0]


# ---------------------------------------------------------------- form values -> PATCH body


def _number(text: str, integer: bool) -> Any:
    """int/float when the text is one; otherwise the text, so validation names the field."""
    try:
        value = float(text)
    except ValueError:
        return text
    if integer:
        return int(value) if value.is_integer() else text
    return value


def _widths(text: str) -> list[Any]:
    """'8, 8' -> [8, 8]; 'none' or '' -> []; a part that is not a whole number stays text."""
    if text.strip().lower() in ("", "none", "0"):
        return []
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    return [_number(p, True) for p in parts]


def _value(name: str, raw: str, checked: bool) -> tuple[bool, Any]:
    """(keep?, typed value) of one submitted field."""
    text = raw.strip()
    if name in CHECKBOX_FIELDS:
        if name == "error_propagation":
            return True, "weights_only" if checked else "chain_rule"
        return True, checked
    if name == "max_epochs_per_second":  # empty = unlimited (an explicit menu choice)
        return True, _number(text, False) if text else None
    if name == "batch_size":
        if text.lower() in ("full", "all"):
            return True, None
        return bool(text), _number(text, True)
    if name in AUTO_FIELDS:
        return True, None if text.lower() in ("", "auto") else text
    if name in LIST_FIELDS:
        return name == "hidden_layers" or bool(text), _widths(text)
    if name in OPTIONAL_FIELDS and text.lower() in ("", "none", "constant", "off"):
        return True, None
    if not text:
        return False, None  # empty -> omitted: the value in effect stays
    if name in INT_FIELDS:
        return True, _number(text, True)
    if name in FLOAT_FIELDS:
        return True, _number(text, False)
    return True, text


def parse_patch(form: Mapping[str, str], checkboxes: Iterable[str] = ()) -> dict[str, Any]:
    """Form strings -> the JSON body of ``PATCH /api/runs/{id}`` (typed; unknown names dropped).

    ``checkboxes`` names the checkbox fields the request is about: a checkbox
    sends nothing when unticked, so the control says which one it is.
    Dataset fields become a partial ``dataset`` dict (merged into the current
    one by the backend; a ``kind`` replaces it).
    """
    body: dict[str, Any] = {}
    ticked = set(checkboxes)
    names = [n for n in FIELDS if n in form or n in ticked]
    for name in names:
        keep, value = _value(name, str(form.get(name, "")), name in form)
        if not keep:
            continue
        group, _, part = name.partition(".")
        if part:
            body.setdefault(group, {})[part] = value
        else:
            body[name] = value
    return _training_controls(body)


def _training_controls(body: dict[str, Any]) -> dict[str, Any]:
    """The schedule and early stopping as the API takes them: a schedule is its kind and
    that kind's own numbers (defaults for those not sent); no kind or no patience: null."""
    schedule = body.get("lr_schedule")
    if schedule is not None:
        kind = schedule.get("kind")
        if kind is None:
            body["lr_schedule"] = None
        elif kind in SCHEDULE_DEFAULTS:
            own = {k: schedule.get(k, v) for k, v in SCHEDULE_DEFAULTS[kind].items()}
            body["lr_schedule"] = {"kind": kind, **{k: v for k, v in own.items() if v is not None}}
    early = body.get("early_stopping")
    if early is not None:
        body["early_stopping"] = None if early.get("patience") is None else early
    return body


# ---------------------------------------------------------------- refusals in plain words


def field_key(loc: Sequence[Any]) -> str:
    """A pydantic ``loc`` or a dotted ``ProblemError.field`` -> the form field ('' if none)."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts and parts[0] == "body":
        parts = parts[1:]
    if not parts:
        return ""
    if parts[0] == "dataset":
        rest = [p for p in parts[1:] if p not in forms.DATASET_KINDS and "[" not in p]
        return f"dataset.{rest[0]}" if rest else "dataset"
    return parts[0]


RAW_RULE_WORDS = ("less than", "greater than", "Input should", "valid ")


def problem_message(field_name: str | None, detail: str) -> str:
    """'Epochs: epochs (5) is below the current epoch (9)' from a manager refusal.

    A detail that only restates a bound in pydantic's words gets the field's own
    rule instead ('Noise: must be from 0 to 1').
    """
    key = field_key(str(field_name).split(".")) if field_name else ""
    if not key:
        return detail
    detail = detail.removeprefix(f"{field_name}: ")
    if key in FIELDS and any(words in detail for words in RAW_RULE_WORDS):
        detail = FIELDS[key][1]
    return f"{label(key)}: {detail}"


def plain_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """A pydantic error list -> one message per field, each naming it in plain words."""
    messages: list[str] = []
    for err in errors:
        key = field_key(tuple(err.get("loc", ())))
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if key in FIELDS and err.get("type") != "value_error":
            text = f"{label(key)}: {FIELDS[key][1]}"
        elif key:
            text = f"{label(key)}: {msg}"
        else:
            text = msg[:1].upper() + msg[1:]
        if text not in messages:
            messages.append(text)
    return "; ".join(messages)


def _words(value: Any) -> str:
    """A config value as a person reads it: {'kind': 'step', 'gamma': 0.5} -> 'step, gamma 0.5'."""
    if value is None:
        return "off"
    if isinstance(value, Mapping):
        return ", ".join(
            str(v)
            if k == "kind"
            else f"{k.replace('_', ' ')} {v:g}"
            if isinstance(v, float)
            else f"{k.replace('_', ' ')} {v}"
            for k, v in value.items()
        )
    return f"{value:g}" if isinstance(value, float) else str(value)


def success_message(body: Mapping[str, Any], config: Mapping[str, Any]) -> str:
    """What a successful change did, e.g. 'learning rate 0.1 · ≤ 5 epochs/s'."""
    parts: list[str] = []
    for name in body:
        if name == "max_epochs_per_second":
            speed = config.get("max_epochs_per_second")
            parts.append(f"≤ {speed:g} epochs/s" if speed else "full speed")
        elif name == "learning_rate":
            parts.append(f"learning rate {config['learning_rate']:g}")
        elif name in LIVE_FIELDS:
            parts.append(f"{label(name).lower()} {_words(config.get(name))}")
        else:
            parts.append(f"{label(name).lower()} changed")
    structural = [n for n in body if n not in LIVE_FIELDS]
    text = " · ".join(parts)
    return f"{text} — new weights, epoch 0" if structural else text
