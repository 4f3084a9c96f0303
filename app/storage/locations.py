"""Where the database is: a SQLite file path, or a PostgreSQL URL (``BACKPROP_LIVE_DB``)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql", "postgres")


def scheme_of(value: str) -> str | None:
    """The URL scheme of `value` (lower case), or None for a file path."""
    head, sep, _ = value.partition("://")
    return head.lower() if sep and head.replace("+", "").isalnum() else None


def is_postgres(value: str) -> bool:
    return scheme_of(value) in POSTGRES_SCHEMES


def check_database(value: str) -> str:
    """`value` if it names a database this server can use, else ValueError in words."""
    if value in ("", ":memory:"):
        raise ValueError("must be a file (workers and restarts need one), not ':memory:'")
    scheme = scheme_of(value)
    if scheme is None:
        return value
    if scheme not in POSTGRES_SCHEMES:
        raise ValueError(
            f"{scheme}:// is not a database this server uses: give a SQLite file path or a "
            "postgresql://user:password@host:port/database URL"
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValueError(f"not a valid PostgreSQL URL ({exc})") from None
    if not parts.netloc and not parts.path.strip("/"):
        raise ValueError("a PostgreSQL URL needs a host or a database name")
    return value


def redacted(value: str) -> str:
    """`value` without the password of a URL (safe to log and to show)."""
    if scheme_of(value) is None:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return f"{scheme_of(value)}://(unreadable)"
    if parts.password is None:
        return value
    user, _, host = parts.netloc.rpartition("@")
    user = user.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
