"""Access control: the API key (header, bearer token or console cookie) and candidate tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal
from urllib.parse import urlsplit

from aiohttp import web

__all__ = [
    "COOKIE",
    "WATCH_PROTOCOL",
    "WATCH_TOKEN_PREFIX",
    "console_cookie_value",
    "hash_token",
    "is_authorised",
    "key_status",
    "new_session_id",
    "new_token",
    "origin_allowed",
    "watch_token",
    "watch_token_offered",
]

COOKIE = "liveness_console"


def new_token() -> str:
    """An unguessable candidate token (192 random bits, URL-safe)."""
    return secrets.token_urlsafe(24)


def new_session_id() -> str:
    return secrets.token_hex(8)


def hash_token(token: str) -> str:
    """Tokens are stored only as their SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def console_cookie_value(api_key: str) -> str:
    """The console cookie holds a key-derived value, never the key itself."""
    return hmac.new(api_key.encode("utf-8"), b"liveness-console-v1", hashlib.sha256).hexdigest()


#: the WebSocket subprotocol the watch socket answers with; a browser (which cannot set headers
#: on a WebSocket) offers it together with ``WATCH_TOKEN_PREFIX + token``
WATCH_PROTOCOL = "liveness"
WATCH_TOKEN_PREFIX = "liveness-watch."


def watch_token(api_key: str, session_id: str) -> str:
    """The token that lets a page watch one session (every message, and its commands) without
    the API key: derived from the key and the session, so it needs no storage, works only for
    that session, and changes with the key."""
    msg = b"liveness-watch-v1:" + session_id.encode("ascii")
    return hmac.new(api_key.encode("utf-8"), msg, hashlib.sha256).hexdigest()


def watch_token_offered(request: web.Request) -> str | None:
    """The watch token a WebSocket request offers as a subprotocol, if any."""
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    for p in (x.strip() for x in offered.split(",")):
        if p.startswith(WATCH_TOKEN_PREFIX):
            return p[len(WATCH_TOKEN_PREFIX):]
    return None


def origin_allowed(request: web.Request, cors_origins: tuple[str, ...], public_url: str | None) -> bool:
    """A browser request's ``Origin`` is the server's own (its host, or ``public_url``'s) or one
    of ``cors_origins`` (``*``: any); a request without an ``Origin`` (not from a page) passes.
    WebSockets are not covered by CORS: the watch socket checks this itself."""
    origin = request.headers.get("Origin")
    if origin is None or "*" in cors_origins or origin in cors_origins:
        return True
    host = urlsplit(origin).netloc
    if host and host == request.host:
        return True
    return public_url is not None and host == urlsplit(public_url).netloc


def key_status(request: web.Request, api_key: str | None) -> Literal["ok", "missing", "invalid"]:
    """``ok`` when no key is configured, or the request presents it as ``X-API-Key``,
    ``Authorization: Bearer <key>``, or the console cookie; ``missing`` when it presents none of
    them; ``invalid`` when what it presents is wrong (a wrong key, or a cookie from another key)."""
    if api_key is None:
        return "ok"
    given = request.headers.get("X-API-Key")
    if given is None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
    if given is not None:
        return "ok" if hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8")) else "invalid"
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        ok = hmac.compare_digest(cookie.encode("utf-8"), console_cookie_value(api_key).encode("utf-8"))
        return "ok" if ok else "invalid"
    return "missing"


def is_authorised(request: web.Request, api_key: str | None) -> bool:
    """:func:`key_status` is ``ok``."""
    return key_status(request, api_key) == "ok"
