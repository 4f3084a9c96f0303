"""Sign-in (``/login``) and sign-out (``/logout``) for the token mode.

- ``next`` (where to go after signing in) is a path on this site only;
  anything else falls back to ``/``.
- The form must arrive within ``body_timeout`` seconds and 16 KB.
- Failed attempts are limited per client address (``LoginLimiter``).
- The session cookie is HttpOnly, SameSite=Strict, lives ``SESSION_MAX_AGE``
  seconds, and is ``Secure`` when the request came over https. The scheme is
  the one uvicorn reports: it takes ``X-Forwarded-Proto`` into account only
  from a proxy in ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1), so a client
  cannot fake it.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from urllib.parse import parse_qs

from app.asgi import Receive, Scope, Send, send_bytes, send_html, send_json

SESSION_COOKIE = "bpl_session"
SESSION_MAX_AGE = 7 * 24 * 3600
MAX_FORM_BYTES = 16 * 1024
# Failed sign-ins allowed per client address in LOGIN_WINDOW seconds; then 429.
MAX_FAILED_LOGINS = 5
LOGIN_WINDOW = 60.0
# Client addresses remembered at once; the least recently failing is forgotten first.
MAX_TRACKED_CLIENTS = 10_000


def safe_next(target: str | None) -> str:
    """``target`` when it is a path on this site, else ``/`` (no open redirect).

    Refused: anything not starting with one ``/`` (``//host`` and ``/\\host`` are
    other sites to a browser), backslashes anywhere, control, space and
    non-ASCII characters (browsers drop or rewrite some of them).
    """
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(not 0x21 <= ord(c) <= 0x7E for c in target):
        return "/"
    return target


class LoginLimiter:
    """Failed sign-ins per client address in a sliding window; bounded in memory."""

    def __init__(
        self,
        max_failures: int = MAX_FAILED_LOGINS,
        window: float = LOGIN_WINDOW,
        max_clients: int = MAX_TRACKED_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.max_clients = max_clients
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None when it may now."""
        failures = self._failures.get(client)
        if failures is None:
            return None
        now = self.clock()
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[client]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, client: str) -> None:
        failures = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
        failures.append(self.clock())
        self._failures[client] = failures  # most recent last
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)

    def __len__(self) -> int:
        return len(self._failures)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def session_cookie(value: str, *, secure: bool) -> str:
    attributes = f"HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_MAX_AGE}"
    return f"{SESSION_COOKIE}={value}; {attributes}" + ("; Secure" if secure else "")


def cleared_cookie(*, secure: bool) -> str:
    cookie = f"{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"
    return cookie + ("; Secure" if secure else "")


async def read_form(receive: Receive, send: Send, timeout: float) -> dict[str, list[str]] | None:
    """The url-encoded form, or None after answering 413/408 (too large, too slow)."""
    deadline = time.monotonic() + timeout
    body = b""
    while True:
        try:
            message = await asyncio.wait_for(receive(), max(deadline - time.monotonic(), 0))
        except TimeoutError:
            detail = f'{{"detail":"sign-in form not received within {timeout:g} s"}}'
            await send_json(send, 408, detail.encode(), [(b"connection", b"close")])
            return None
        if message["type"] != "http.request":
            return None  # the client went away
        body += message.get("body", b"")
        if len(body) > MAX_FORM_BYTES:
            await send_json(
                send, 413, b'{"detail":"sign-in form too large"}', [(b"connection", b"close")]
            )
            return None
        if not message.get("more_body"):
            return parse_qs(body.decode("utf-8", "replace"))


async def refuse_too_many(send: Send, retry_after: int) -> None:
    detail = (
        f'{{"detail":"too many failed sign-ins from this address: try again in {retry_after} s"}}'
    )
    await send_json(send, 429, detail.encode(), [(b"retry-after", str(retry_after).encode())])


async def redirect(send: Send, location: str, cookie: str | None = None) -> None:
    headers = [(b"location", location.encode("latin-1"))]
    if cookie is not None:
        headers.append((b"set-cookie", cookie.encode("latin-1")))
    await send_bytes(send, 303, b"", headers)


async def send_login_page(send: Send, scope: Scope, *, status: int, error: bool) -> None:
    await send_html(send, status, login_page(scope, error=error))


def login_page(scope: Scope, *, error: bool) -> bytes:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    target = html.escape(safe_next((query.get("next") or ["/"])[0]), quote=True)
    message = '<p class="login-error" role="alert">That token is not right.</p>' if error else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Backprop Live</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/app.css"></head>
<body class="login-body"><main class="login-card">
<h1>Backprop Live</h1><p>This server is shared. Enter its access token to continue.</p>{message}
<form method="post" action="/login"><input type="hidden" name="next" value="{target}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form></main></body></html>"""
    return page.encode()
