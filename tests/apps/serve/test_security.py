"""Server security behaviours: per-client rate limits (sign-in, API) and security headers."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

pytest.importorskip("aiortc")

from liveness.apps.serve import ServeOptions  # noqa: E402
from liveness.apps.serve.ratelimit import Bucket  # noqa: E402
from tests._serve_util import running_server  # noqa: E402

KEY = "test-key-0123456789"


def test_bucket_refills_per_client() -> None:
    b = Bucket(rate=1.0, burst=3)
    assert [b.take("a", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert b.take("a", 0.0) == pytest.approx(1.0)  # empty: wait a second
    assert b.take("b", 0.0) == 0.0  # another client has its own bucket
    assert b.take("a", 2.0) == 0.0  # refilled


def test_sign_in_and_api_are_rate_limited(tmp_path) -> None:
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=1,
                        login_attempts_per_min=3, api_requests_per_s=2)

    async def go() -> None:
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            codes = []
            for _ in range(5):
                async with http.post(f"{base}/login", data={"key": "wrong-key-123"}, allow_redirects=False) as r:
                    codes.append(r.status)
                    if r.status == 429:
                        assert int(r.headers["Retry-After"]) >= 1
            assert codes[:3] == [401, 401, 401] and codes[3:] == [429, 429]
            # even the right key waits: guessing cannot go on beside it
            async with http.post(f"{base}/login", data={"key": KEY}, allow_redirects=False) as r:
                assert r.status == 429
            api = []
            for _ in range(25):  # burst of 20 (10 s at 2/s), then refused
                async with http.get(f"{base}/api/health") as r:
                    api.append(r.status)
            assert api.count(200) >= 20 and api[-1] == 429
            # pages outside /api and /login are not counted
            async with http.get(f"{base}/") as r:
                assert r.status == 200

    asyncio.run(go())


def test_security_headers_on_every_page(tmp_path) -> None:
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=1,
                        cors_origins=("https://platform.example",))

    async def go() -> None:
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={}, headers={"X-API-Key": KEY}) as r:
                token = (await r.json())["token"]
            for path in ("/", f"/join/{token}", "/join/not-a-token-at-all-xxxxx", "/api/health",
                         "/api/openapi.json", "/api/sessions", "/plugin/console.js", "/no-such-page"):
                async with http.get(base + path) as r:
                    h = r.headers
                    assert h["X-Content-Type-Options"] == "nosniff", path
                    assert h["Referrer-Policy"] == "no-referrer", path
                    assert "frame-ancestors" in h.get("Content-Security-Policy", ""), path
            async with http.get(f"{base}/join/{token}") as r:
                assert "frame-ancestors 'self' https://platform.example" in r.headers["Content-Security-Policy"]
            async with http.get(f"{base}/") as r:
                assert "frame-ancestors 'self';" in r.headers["Content-Security-Policy"]

    asyncio.run(go())
