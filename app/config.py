"""Settings, read from the environment (prefix ``BACKPROP_LIVE_``) or passed in.

There is no import-time instance: ``create_app()`` builds one from the
environment when it is not handed one, so tests can make as many as they like.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV_PREFIX = "BACKPROP_LIVE_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_max_running() -> int:
    return 2 * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    # SQLite database file; ":memory:" is not supported (workers and restarts need a file).
    db: Path = Path("backprop-live.db")
    host: str = "127.0.0.1"
    port: int = 8000
    # Bearer token for shared servers; None = no authentication (loopback only).
    token: str | None = None
    # Runs training at the same time (each one is a worker process).
    max_running_runs: int = field(default_factory=_default_max_running)
    # Runs kept in the database at once.
    max_stored_runs: int = 1000
    # Seconds between checkpoints of a running run (API.md: at least every 5 s).
    checkpoint_interval: float = 2.0
    # Seconds between SSE keep-alive comments (API.md: at least every 15 s).
    sse_ping_interval: float = 10.0
    # Largest accepted request body, bytes (API.md: 32 MB).
    max_body_bytes: int = 32 * 1024 * 1024
    # Seconds a client may take to send a request body once it started (slow-loris guard).
    body_timeout: float = 30.0
    # Open SSE streams (/api/runs/*/events, /ui/runs/*/stream) per client address.
    max_streams_per_client: int = 32
    # Where `npm ci` put htmx; checked at start-up.
    node_modules: Path = PROJECT_ROOT / "node_modules"
    static_dir: Path = PROJECT_ROOT / "static"
    templates_dir: Path = PROJECT_ROOT / "templates"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``BACKPROP_LIVE_*`` variables, then apply ``overrides``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _parse(f.name, raw, cls.__dataclass_fields__[f.name].type)
        settings = cls(**values)
        return replace(settings, **overrides) if overrides else settings


def _parse(name: str, raw: str, type_name: Any) -> Any:
    text = str(type_name)
    try:
        if "Path" in text:
            return Path(raw)
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {text}") from exc
    return raw
