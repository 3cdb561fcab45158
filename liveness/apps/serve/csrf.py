"""Cross-site request forgery: a state-changing request (POST, PUT, PATCH, DELETE) that would be
authorised by the console cookie, or by nothing at all when the server runs without an API key,
must come from this server's own pages. Browsers name the page that made a request in
``Origin`` (``Referer`` when there is no ``Origin``), so such a request whose ``Origin`` or
``Referer`` is another site (or the opaque ``null``) is refused with 403 before any handler
runs. A request that presents the API key in a header cannot be forged by another site and is
not checked, nor are the candidate's routes (``/api/join/...``: the single-use token in the
path authorises them, and embedding pages on the ``--cors-origin`` sites call them by design),
nor the sign-in form (it needs the key itself; the browser sends ``Origin: null`` for it under
``Referrer-Policy: no-referrer``). A request with neither header (``curl``, a server-side
client) is not a browser's cross-site request and passes. The origins named one by one in
``--cors-origin`` are the operator's own sites and pass too (``*`` opens no such door)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["csrf_middleware", "same_origin"]

_UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_EXEMPT_PREFIXES = ("/api/join/",)
_EXEMPT_PATHS = frozenset({"/login"})


def same_origin(source: str, host: str, extra_hosts: frozenset[str] = frozenset(),
                extra_origins: frozenset[str] = frozenset()) -> bool:
    """Whether the page URL or origin ``source`` is served from ``host`` (the request's
    ``Host``), one of ``extra_hosts`` (the public URL's host, behind a proxy) or is one of
    ``extra_origins`` (``https://platform.example``)."""
    u = urlsplit(source.strip())
    if u.scheme not in ("http", "https") or not u.netloc:
        return False  # "null", a file: page, garbage
    netloc = u.netloc.lower()
    return netloc == host.lower() or netloc in extra_hosts or f"{u.scheme}://{netloc}" in extra_origins


def _by_header(request: web.Request) -> bool:
    """The request presents the API key itself (header or bearer token)."""
    return "X-API-Key" in request.headers or request.headers.get("Authorization", "").startswith("Bearer ")


def csrf_middleware(public_url: str | None = None, cors_origins: tuple[str, ...] = ()
                    ) -> Callable[..., Awaitable[web.StreamResponse]]:
    extra = frozenset({urlsplit(public_url).netloc.lower()}) if public_url else frozenset()
    origins = frozenset(o.rstrip("/").lower() for o in cors_origins if o != "*")

    @web.middleware
    async def csrf(request: web.Request,
                   handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if (request.method in _UNSAFE and request.path not in _EXEMPT_PATHS
                and not request.path.startswith(_EXEMPT_PREFIXES) and not _by_header(request)):
            source = request.headers.get("Origin") or request.headers.get("Referer")
            if source is not None and not same_origin(source, request.host, extra, origins):
                raise web.HTTPForbidden(
                    text=json.dumps({"error": "cross-site request refused: it does not come from this "
                                              "server's pages (send the API key in a header from other sites)"}),
                    content_type="application/json")
        return await handler(request)

    return csrf
