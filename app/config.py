"""Settings, read from the environment (prefix ``BACKPROP_LIVE_``) or passed in.

There is no import-time instance: ``create_app()`` builds one from the
environment when it is not handed one, so tests can make as many as they like.

Every value is checked when a ``Settings`` is made (by keyword, by
``dataclasses.replace`` or from the environment), with pydantic, against the
bounds written next to it: a bad value raises ``SettingsError`` naming the
setting and its variable, before anything starts. (pydantic already comes
with FastAPI; pydantic-settings would add a dependency for what
``from_env`` does in a few lines.)
"""

from __future__ import annotations

import functools
import importlib.util
import os
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from app.storage.locations import check_database, redacted

ENV_PREFIX = "BACKPROP_LIVE_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries the templates, static files and the front-end packages'
# files here (pyproject.toml, force-include); a source checkout has them at its root.
PACKAGED_RESOURCES = Path(__file__).resolve().parent / "resources"
# Values that are lists in the environment: comma-separated.
LIST_SETTINGS = frozenset({"allowed_hosts"})


class SettingsError(ValueError):
    """A setting out of its bounds; the message names the setting and its variable."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{ENV_PREFIX}{name.upper()}: {message}")
        self.name = name


def resource_dir(name: str) -> Path:
    """``name`` (templates, static, node_modules) in the wheel, else in the checkout."""
    packaged = PACKAGED_RESOURCES / name
    return packaged if packaged.is_dir() else PROJECT_ROOT / name


def _default_max_running() -> int:
    return 2 * (os.cpu_count() or 1)


def _database(value: Any) -> Any:
    # A path given as a Path (tests, the CLI) is the same file as its text.
    return str(value) if isinstance(value, PurePath) else value


def _host_names(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if names is not None and not all(name.strip() for name in names):
        raise ValueError("host names must not be empty")
    return names


def _ray_address(address: str) -> str:
    """ "auto" (the cluster this machine belongs to) or host:port of a Ray head's GCS."""
    if address == "auto":
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be 'auto' or host:port of a Ray head (e.g. 10.0.0.5:6379)")
    return address


Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


@dataclass(frozen=True)
class Settings:
    # SQLite database file (":memory:" is not supported: workers and restarts need a file),
    # or a postgresql:// URL (app.storage.store.open_store; needs the postgres extra).
    db: Annotated[str, BeforeValidator(_database), AfterValidator(check_database)] = (
        "backprop-live.db"
    )
    host: Annotated[str, Field(min_length=1)] = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    # Bearer token for shared servers; None = no authentication (loopback only).
    token: Annotated[str, Field(min_length=1)] | None = None
    # Host header values accepted (API.md "Security in every mode"); None = the
    # loopback names and `host` (any Host when `host` is every interface); "*" = any.
    allowed_hosts: Annotated[tuple[str, ...] | None, AfterValidator(_host_names)] = None
    # Runs training at the same time (each one is a worker process).
    max_running_runs: Annotated[int, Field(ge=1, le=4096)] = field(
        default_factory=_default_max_running
    )
    # Runs kept in the database at once.
    max_stored_runs: Annotated[int, Field(ge=1)] = 1000
    # Seconds between checkpoints of a running run (API.md: at least every 5 s);
    # 0 = with every frame sent to the server (the run-layer tests use it).
    checkpoint_interval: Annotated[float, Field(ge=0, le=5, allow_inf_nan=False)] = 2.0
    # Seconds between SSE keep-alive comments (API.md: at least every 15 s).
    sse_ping_interval: Annotated[Seconds, Field(le=15)] = 10.0
    # Largest accepted request body, bytes (API.md: 32 MB).
    max_body_bytes: Annotated[int, Field(ge=1)] = 32 * 1024 * 1024
    # Seconds a client may take to send a request body once it started (slow-loris guard).
    body_timeout: Seconds = 30.0
    # Megabytes of weights kept in memory for runs nobody trains or watches (least
    # recently used dropped first; they load again from the database on demand).
    weights_cache_mb: Annotated[int, Field(ge=1, le=1_048_576)] = 256
    # Open SSE streams (/api/runs/*/events, /ui/runs/*/stream) per client address.
    max_streams_per_client: Annotated[int, Field(ge=1)] = 32
    # How runs train: "local" worker processes on this machine, or "ray": one actor per
    # run on the Ray cluster at `ray_address` (needs the `cluster` extra).
    executor: Literal["local", "ray"] = "local"
    ray_address: Annotated[str, AfterValidator(_ray_address)] = "auto"
    # Where `npm ci` put htmx; checked at start-up.
    node_modules: Path = field(default_factory=lambda: resource_dir("node_modules"))
    static_dir: Path = field(default_factory=lambda: resource_dir("static"))
    templates_dir: Path = field(default_factory=lambda: resource_dir("templates"))

    def __post_init__(self) -> None:
        adapters = _adapters()
        for f in fields(self):
            value = getattr(self, f.name)
            try:
                checked = adapters[f.name].validate_python(value)
            except ValidationError as exc:
                raise SettingsError(f.name, _message(f.name, value, exc)) from None
            object.__setattr__(self, f.name, checked)  # e.g. "8000" -> 8000
        if self.executor == "ray" and importlib.util.find_spec("ray") is None:
            raise SettingsError(
                "executor", "'ray' needs Ray installed: pip install -e '.[cluster]'"
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``BACKPROP_LIVE_*`` variables, then apply ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            if f.name in LIST_SETTINGS:
                values[f.name] = tuple(part.strip() for part in raw.split(","))
            else:
                values[f.name] = raw
        settings = cls(**values)
        return replace(settings, **overrides) if overrides else settings


@functools.cache
def _adapters() -> dict[str, TypeAdapter[Any]]:
    hints = typing.get_type_hints(Settings, include_extras=True)
    return {f.name: TypeAdapter(hints[f.name]) for f in fields(Settings)}


def _message(name: str, value: Any, exc: ValidationError) -> str:
    error = exc.errors()[0]
    shown = "(hidden)" if name == "token" else repr(redacted(str(value)) if name == "db" else value)
    message = str(error["msg"])
    message = message.removeprefix("Value error, ")
    for pydantic_words in ("Input should", "String should", "Tuple should"):
        message = message.replace(pydantic_words, "must", 1)
    return f"{message[:1].lower()}{message[1:]}, got {shown}"
