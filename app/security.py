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

Watch-only keys (app.viewer_keys): a request with neither carries ``?key=``. The key
opens GET of its own run's watch page, stream and read-only API while the run exists
(401 otherwise: a wrong key, or its run deleted); any other request with a key gets
403. A key never changes state: only GET is let through.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, quote

from app.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    request_headers,
    send_bytes,
    send_html,
    send_json,
)
from app.config import Settings
from app.guard import RequestGuardMiddleware, allowed_host_names, same_origin
from app.login import (
    SESSION_COOKIE,
    LoginLimiter,
    cleared_cookie,
    client_address,
    read_form,
    redirect,
    refuse_too_many,
    safe_next,
    send_login_page,
    session_cookie,
)
from app.runs.errors import ProblemError
from app.viewer_keys import key_matches, watched_run

__all__ = ["SESSION_COOKIE", "install_security", "session_value"]
logger = logging.getLogger("backprop_live.security")
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

        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # An unhandled error: answer JSON with our headers here, since Starlette's
            # own 500 (plain text) is sent outside every middleware. Re-raised so that
            # the server logs the traceback; Starlette sees the response started.
            if not started:
                await send_json(
                    send_with_headers,
                    500,
                    b'{"detail":"internal server error: the server failed to answer this '
                    b'request (the error is in its log)"}',
                )
            raise


def session_value(token: str) -> str:
    """The cookie's value: proves the browser signed in, without being the token."""
    return hmac.new(token.encode(), b"backprop-live session v1", hashlib.sha256).hexdigest()


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
    # No Origin (old browsers, some same-origin requests): rely on the custom header.
    return origin is None or same_origin(origin, headers.get("host", ""))


class TokenAuthMiddleware:
    """Requires the bearer token (or the session cookie) outside the public paths."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        limiter: LoginLimiter,
        body_timeout: float = 30.0,
        run_exists: Callable[[str], bool] = lambda run_id: False,
    ) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        self.app = app
        self.token = token
        self.run_exists = run_exists
        self.session = session_value(token)
        self.limiter = limiter
        self.body_timeout = body_timeout

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
        if path == "/logout" and scope["method"] == "POST":
            secure = scope.get("scheme") == "https"
            await redirect(send, "/login", cleared_cookie(secure=secure))
            return
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            if path == "/login" and scope["method"] == "POST":
                await self._login(scope, receive, send)
            elif path == "/login":
                await send_login_page(send, scope, status=200, error=False)
            else:
                await self.app(scope, receive, send)
            return
        headers = request_headers(scope)
        if self._bearer_ok(headers):
            await self.app(scope, receive, send)
            return
        if self._cookie_ok(headers):
            if scope["method"] not in SAFE_METHODS and not (
                _same_origin(headers) and ("hx-request" in headers or "x-requested-with" in headers)
            ):
                await send_json(send, 403, b'{"detail":"cross-site request refused (CSRF check)"}')
                return
            # Pages show a sign-out button to a browser signed in with the cookie.
            scope.setdefault("state", {})["signed_in"] = True
            await self.app(scope, receive, send)
            return
        key = _query_key(scope)
        if key is not None:
            await self._watch(scope, receive, send, key)
            return
        if path.startswith("/api/") or path == "/api":
            await send_json(
                send,
                401,
                b'{"detail":"authentication required: send Authorization: Bearer <token>"}',
                extra=[(b"www-authenticate", b"Bearer")],
            )
            return
        query = scope["query_string"].decode("latin-1")
        target = f"{path}?{query}" if query else path
        location = "/login?next=" + quote(target, safe="")
        await send_bytes(send, 303, b"", [(b"location", location.encode("latin-1"))])

    async def _watch(self, scope: Scope, receive: Receive, send: Send, key: str) -> None:
        """A request with a watch-only key and neither token nor cookie."""
        path: str = scope["path"]
        run_id = watched_run(scope["method"], path)
        if run_id is None:
            await _refuse_key(send, path, 403, KEY_SCOPE_DETAIL)
        elif not key_matches(self.token, run_id, key) or not self.run_exists(run_id):
            await _refuse_key(send, path, 401, KEY_INVALID_DETAIL)
        else:
            await self.app(scope, receive, send)

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = client_address(scope)
        wait = self.limiter.retry_after(client)
        if wait is not None:
            await refuse_too_many(send, wait)
            return
        form = await read_form(receive, send, self.body_timeout)
        if form is None:
            return
        given = (form.get("token") or [""])[0]
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            self.limiter.failed(client)
            logger.warning("failed sign-in from %s", client)
            await send_login_page(send, scope, status=401, error=True)
            return
        self.limiter.succeeded(client)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        target = safe_next((form.get("next") or query.get("next") or ["/"])[0])
        secure = scope.get("scheme") == "https"
        await redirect(send, target, session_cookie(self.session, secure=secure))


KEY_SCOPE_DETAIL = (
    "a watch-only key opens only GET of its own run's watch page, stream and "
    "read-only API; everything else needs the access token"
)
KEY_INVALID_DETAIL = (
    "this watch-only key does not open this run: the key is wrong, or the run was "
    "deleted, or the server's token changed (ask for a new link)"
)
WATCH_REFUSED_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not valid · Backprop Live</title><link rel="stylesheet" href="/static/app.css">
</head><body><main class="page"><section class="card watch-refused">
<h1>This watch link does not work</h1><p>{detail}.</p></section></main></body></html>"""


def _query_key(scope: Scope) -> str | None:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    values = query.get("key")
    return values[-1] if values else None


async def _refuse_key(send: Send, path: str, status: int, detail: str) -> None:
    if path.startswith("/watch/"):
        page = WATCH_REFUSED_PAGE.format(detail=detail[:1].upper() + detail[1:])
        await send_html(send, status, page.encode())
    else:
        await send_json(send, status, json.dumps({"detail": detail}).encode())


def _run_exists(app: Any, run_id: str) -> bool:
    manager = getattr(app.state, "manager", None)
    if manager is None:  # not started (or shutting down)
        return False
    try:
        manager.get(run_id)
    except ProblemError:
        return False
    return True


def install_security(app: Any, settings: Settings) -> None:
    """Adds the middleware. Outermost first: the headers (so that even a 400 or 401
    carries them, and an unhandled error becomes JSON), the Host and cross-site
    checks, then the token."""
    if settings.token:
        limiter = LoginLimiter()
        app.state.login_limiter = limiter
        app.add_middleware(
            TokenAuthMiddleware,
            token=settings.token,
            limiter=limiter,
            body_timeout=settings.body_timeout,
            run_exists=lambda run_id: _run_exists(app, run_id),
        )
    app.add_middleware(
        RequestGuardMiddleware,
        allowed_hosts=allowed_host_names(settings.host, settings.allowed_hosts),
    )
    app.add_middleware(SecurityHeadersMiddleware)
