"""Watch-only keys (API.md v1.1 "Classroom: watch-only links"): one rule, used by
the token middleware (app.security), the API (the key) and the UI (the share dialog).

A run's key is an HMAC-SHA256 of its id under the access token (with a label of
its own, so it is never the session cookie's value), cut to 128 bits and written
URL-safe (22 characters). So nothing is stored: the key is the same after a restart
with the same token, changes when the token changes (which revokes every link), and
opens nothing once its run is deleted (the middleware checks that the run exists).
Without a token nothing is checked and the key is only there so the link looks the same.

Stdlib only: the middleware and both web layers import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

KEY_LABEL = b"backprop-live viewer key v1\x00"
# Without a token the key opens nothing that is not open anyway; a fixed secret keeps it stable.
NO_TOKEN_SECRET = b"backprop-live: no token"
KEY_BYTES = 16

# What a key holder may GET (the run id is the first group): the watch page, its
# stream, and the run's read-only API. Everything else needs the token.
_WATCHABLE = re.compile(
    r"^(?:/watch/([^/]+)"
    r"|/ui/runs/([^/]+)/stream"
    r"|/api/runs/([^/]+)(?:/metrics|/weights|/events|/snapshots)?)$"
)
WATCH_METHODS = frozenset({"GET"})


def viewer_key(token: str | None, run_id: str) -> str:
    """The watch-only key of ``run_id`` under ``token`` (see the module docstring)."""
    secret = token.encode() if token else NO_TOKEN_SECRET
    digest = hmac.new(secret, KEY_LABEL + run_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:KEY_BYTES]).rstrip(b"=").decode()


def key_matches(token: str | None, run_id: str, key: str) -> bool:
    """Whether ``key`` is ``run_id``'s key (constant-time comparison)."""
    return hmac.compare_digest(key.encode(), viewer_key(token, run_id).encode())


def watch_url(run_id: str, key: str) -> str:
    """The watch page's path with its key (the key is URL-safe as it is)."""
    return f"/watch/{run_id}?key={key}"


def watched_run(method: str, path: str) -> str | None:
    """The run a key may open with this request, or None if no key opens it."""
    if method not in WATCH_METHODS:
        return None
    match = _WATCHABLE.match(path)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)
