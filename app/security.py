"""Security for every response: headers, and the token mode for shared servers.

Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer the SSE streams).

Token mode (``Settings.token`` set): every ``/api`` call and stream needs
``Authorization: Bearer <token>`` or the dashboard's session cookie; pages
need the cookie and otherwise redirect to ``/login``. The cookie holds an HMAC
of the token, never the token, and is HttpOnly and SameSite=Strict. A request
authenticated by the cookie that changes state must also carry a header a
cross-site form cannot send (htmx sends ``HX-Request``) and, when the browser
names an Origin, the server's own: that is the CSRF protection, on top of
SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import hmac
import html
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "bpl_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without a token: the sign-in page, static files, and a liveness probe.
PUBLIC_PREFIXES = ("/login", "/static/", "/favicon.ico")
PUBLIC_PATHS = frozenset({"/api/health"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        # htmx injects a small <style> for its request indicators; SVG uses style attributes.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def session_value(token: str) -> str:
    """The cookie's value: proves the browser signed in, without being the token."""
    return hmac.new(token.encode(), b"backprop-live session v1", hashlib.sha256).hexdigest()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def _cookie(headers: dict[str, str], name: str) -> str | None:
    raw = headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed Cookie header is just "no cookie"
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


def _same_origin(headers: dict[str, str]) -> bool:
    origin = headers.get("origin")
    if origin is None or origin == "null":
        # No Origin (old browsers, same-origin GET-like navigations): rely on the custom header.
        return origin is None
    return urlsplit(origin).netloc == headers.get("host", "")


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after sign-in would help phishing.
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


class TokenAuthMiddleware:
    """Requires the bearer token (or the session cookie) outside the public paths."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self.app = app
        self.token = token
        self.session = session_value(token)

    def _bearer_ok(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        scheme, _, credential = value.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credential.strip().encode(), self.token.encode())

    def _cookie_ok(self, headers: dict[str, str]) -> bool:
        value = _cookie(headers, SESSION_COOKIE)
        return value is not None and hmac.compare_digest(value.encode(), self.session.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            if path == "/login" and scope["method"] == "POST":
                await self._login(scope, receive, send)
            elif path == "/login":
                await _send_html(send, 200, _login_page(scope, error=False))
            else:
                await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        if self._bearer_ok(headers):
            await self.app(scope, receive, send)
            return
        if self._cookie_ok(headers):
            if scope["method"] not in SAFE_METHODS and not (
                _same_origin(headers) and ("hx-request" in headers or "x-requested-with" in headers)
            ):
                await _send_json(send, 403, b'{"detail":"cross-site request refused (CSRF check)"}')
                return
            await self.app(scope, receive, send)
            return
        if path.startswith("/api/") or path == "/api":
            await _send_json(
                send,
                401,
                b'{"detail":"authentication required: send Authorization: Bearer <token>"}',
                extra=[(b"www-authenticate", b"Bearer")],
            )
            return
        query = scope["query_string"].decode("latin-1")
        target = f"{path}?{query}" if query else path
        location = "/login?next=" + quote(target, safe="")
        await _send(send, 303, b"", [(b"location", location.encode("latin-1"))])

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 16 * 1024:
                await _send_json(send, 413, b'{"detail":"sign-in form too large"}')
                return
            if not message.get("more_body"):
                break
        form = parse_qs(body.decode("utf-8", "replace"))
        given = (form.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            await _send_html(send, 401, _login_page(scope, error=True))
            return
        cookie = f"{SESSION_COOKIE}={self.session}; HttpOnly; SameSite=Strict; Path=/"
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        target = _safe_next((form.get("next") or query.get("next") or ["/"])[0])
        await _send(
            send,
            303,
            b"",
            [(b"location", target.encode("latin-1")), (b"set-cookie", cookie.encode("latin-1"))],
        )


def _login_page(scope: Scope, *, error: bool) -> bytes:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    target = html.escape(_safe_next((query.get("next") or ["/"])[0]), quote=True)
    message = '<p class="login-error" role="alert">That token is not right.</p>' if error else ""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Backprop Live</title><link rel="stylesheet" href="/static/app.css"></head>
<body class="login-body"><main class="login-card">
<h1>Backprop Live</h1><p>This server is shared. Enter its access token to continue.</p>{message}
<form method="post" action="/login"><input type="hidden" name="next" value="{target}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button></form></main></body></html>"""
    return page.encode()


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await _send(send, status, body, [(b"content-type", b"application/json"), *(extra or [])])


async def _send_html(send: Send, status: int, body: bytes) -> None:
    await _send(send, status, body, [(b"content-type", b"text/html; charset=utf-8")])


def install_security(app: Any, token: str | None) -> None:
    """Adds the middleware; headers outermost so that even a 401 carries them."""
    if token:
        app.add_middleware(TokenAuthMiddleware, token=token)
    app.add_middleware(SecurityHeadersMiddleware)
