"""Access control: the API key (header, bearer token or console cookie) and candidate tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from aiohttp import web

__all__ = [
    "COOKIE",
    "console_cookie_value",
    "hash_token",
    "is_authorised",
    "key_status",
    "new_session_id",
    "new_token",
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
