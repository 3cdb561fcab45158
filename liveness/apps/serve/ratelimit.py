"""Per-client rate limits (token buckets keyed by the peer address): sign-in attempts and API
calls. A client past its limit gets 429 with ``Retry-After``; other clients are unaffected."""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

__all__ = ["Bucket", "rate_limit_middleware"]

_MAX_CLIENTS = 10_000  # the least recently seen clients are forgotten beyond this


class Bucket:
    """``rate`` tokens a second, at most ``burst`` saved; :meth:`take` spends one."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self._clients: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds until a token is free."""
        now = time.monotonic() if now is None else now
        tokens, last = self._clients.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.rate
        self._clients[client] = (tokens, now)
        while len(self._clients) > _MAX_CLIENTS:
            self._clients.popitem(last=False)
        return wait


def rate_limit_middleware(login_per_min: float, api_per_s: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    login = Bucket(login_per_min / 60.0, max(1.0, login_per_min))
    api = Bucket(api_per_s, max(1.0, api_per_s * 10))

    @web.middleware
    async def limit(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        client = request.remote or "?"
        bucket = None
        if request.path == "/login" and request.method == "POST":
            bucket = login
        elif request.path.startswith("/api/") and request.method != "OPTIONS":
            bucket = api
        if bucket is not None:
            wait = bucket.take(client)
            if wait > 0:
                raise web.HTTPTooManyRequests(
                    text=json.dumps({"error": "too many requests from this client; retry later"}),
                    content_type="application/json", headers={"Retry-After": str(math.ceil(wait))})
        return await handler(request)

    return limit
