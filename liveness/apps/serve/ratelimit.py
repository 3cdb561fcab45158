"""Per-client rate limits (token buckets keyed by the client address): sign-in attempts and API
calls. A client past its limit gets 429 with ``Retry-After``; other clients are unaffected.

The client is the peer address. Behind a reverse proxy every request comes from the proxy, so
``trusted_proxies`` (addresses or networks; none by default) names the proxies whose
``X-Forwarded-For`` is believed: the client is then the nearest address in that header that is
not itself a trusted proxy. From any other peer the header is ignored, so a client cannot
escape its limit by writing one."""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

__all__ = ["Bucket", "client_address", "parse_networks", "rate_limit_middleware"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

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


def parse_networks(items: Sequence[str]) -> tuple[Network, ...]:
    """``["10.0.0.1", "192.168.0.0/16"]`` as networks; a bad item is a ``ValueError``."""
    return tuple(ipaddress.ip_network(i.strip(), strict=False) for i in items)


def _trusted(addr: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in n for n in proxies)


def client_address(remote: str | None, forwarded_for: Sequence[str], proxies: Sequence[Network]) -> str:
    """The client of a request from peer ``remote`` carrying the ``X-Forwarded-For`` values
    ``forwarded_for``: the peer itself unless it is a trusted proxy; else, from the right, the
    first address of the header that is not a trusted proxy (the one the proxies saw)."""
    peer = remote or "?"
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for v in forwarded_for for h in v.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # not what a proxy writes: count it against the proxy
    return hops[0] if hops else peer


def rate_limit_middleware(login_per_min: float, api_per_s: float, trusted_proxies: Sequence[str] = ()
                          ) -> Callable[..., Awaitable[web.StreamResponse]]:
    login = Bucket(login_per_min / 60.0, max(1.0, login_per_min))
    api = Bucket(api_per_s, max(1.0, api_per_s * 10))
    proxies = parse_networks(trusted_proxies)

    @web.middleware
    async def limit(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        client = client_address(request.remote, request.headers.getall("X-Forwarded-For", []), proxies)
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
