"""Access control: the API key (header, bearer token or console cookie) and candidate tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

__all__ = [
    "COOKIE",
    "console_cookie_value",
    "hash_token",
    "is_authorised",
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


def is_authorised(request: web.Request, api_key: str | None) -> bool:
    """True when no key is configured, or the request presents it as ``X-API-Key``,
    ``Authorization: Bearer <key>``, or the console cookie."""
    if api_key is None:
        return True
    given = request.headers.get("X-API-Key")
    if given is None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
    if given is not None:
        return hmac.compare_digest(given.encode("utf-8"), api_key.encode("utf-8"))
    cookie = request.cookies.get(COOKIE)
    if cookie is not None:
        return hmac.compare_digest(cookie.encode("utf-8"), console_cookie_value(api_key).encode("utf-8"))
    return False
