"""Checks on every request, with or without a token (API.md "Security in every mode").

Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the SSE streams).

- **Host**: a request whose ``Host`` is not one of the server's names gets 400.
  This stops DNS rebinding: a page on ``evil.example`` whose name is made to
  resolve to 127.0.0.1 reaches the server with ``Host: evil.example``.
- **Cross-site writes**: a POST, PUT, PATCH or DELETE whose ``Origin`` is present
  and not the server's own, or whose ``Sec-Fetch-Site`` is ``cross-site``, gets
  403 before anything reads its body, so nothing changes. A page on another
  site can otherwise make a browser on this machine post forms (or "simple"
  fetches) to a loopback server that has no token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from app.asgi import ASGIApp, Receive, Scope, Send, request_headers, send_json

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
EVERY_INTERFACE = frozenset({"0.0.0.0", "::", "[::]", ""})
DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def host_name(value: str) -> str:
    """The name part of a ``Host`` value, lower-case: ``[::1]:8000`` → ``[::1]``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end > 0 else value
    if value.count(":") > 1:  # a bare IPv6 address (as a listen address, not a Host header)
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def allowed_host_names(listen_host: str, configured: Iterable[str] | None) -> frozenset[str] | None:
    """The Host names to accept; None = any (a server on every interface, or ``*`` given)."""
    if configured is not None:
        names = {host_name(name) for name in configured if name.strip()}
        return None if "*" in names else frozenset(names)
    if listen_host.strip() in EVERY_INTERFACE:
        return None
    return frozenset({*LOOPBACK_NAMES, host_name(listen_host)})


def _origin_netloc(origin: str) -> tuple[str, str] | None:
    """``scheme://host[:port]`` → (scheme, host:port without the scheme's default port)."""
    scheme, sep, rest = origin.strip().lower().partition("://")
    if not sep or not rest or "/" in rest:
        return None
    default = DEFAULT_PORTS.get(scheme)
    if default and rest.endswith(":" + default):
        rest = rest[: -len(default) - 1]
    return scheme, rest


def same_origin(origin: str, host: str) -> bool:
    """Whether an ``Origin`` header names this server (as the ``Host`` header does).

    Only the host and port are compared: behind a TLS-terminating proxy the
    browser's origin is https while the server sees http.
    """
    parsed = _origin_netloc(origin)
    if parsed is None:
        return False  # "null" (sandboxed frames, file:// pages) or garbage: not us
    scheme, netloc = parsed
    host = host.strip().lower()
    default = DEFAULT_PORTS.get(scheme)
    if default and host.endswith(":" + default):
        host = host[: -len(default) - 1]
    return netloc == host


class RequestGuardMiddleware:
    """Refuses disallowed ``Host`` headers (400) and cross-site writes (403)."""

    def __init__(self, app: ASGIApp, allowed_hosts: frozenset[str] | None) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        host = headers.get("host")
        if (
            self.allowed_hosts is not None
            and host is not None
            and host_name(host) not in self.allowed_hosts
        ):
            detail = (
                f"host {host[:100]!r} is not one of this server's names "
                "(set BACKPROP_LIVE_ALLOWED_HOSTS to add it)"
            )
            await send_json(send, 400, _json_detail(detail), extra=[(b"connection", b"close")])
            return
        if scope["method"] in UNSAFE_METHODS:
            origin = headers.get("origin")
            cross_site = headers.get("sec-fetch-site", "").strip().lower() == "cross-site"
            if cross_site or (origin is not None and not same_origin(origin, host or "")):
                detail = (
                    "cross-site request refused: a page from another site may not change "
                    "anything on this server"
                )
                await send_json(send, 403, _json_detail(detail))
                return
        await self.app(scope, receive, send)


def _json_detail(detail: str) -> bytes:
    return json.dumps({"detail": detail}).encode()
