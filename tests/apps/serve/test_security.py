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


def _cookie(key: str = KEY) -> dict[str, str]:
    from liveness.apps.serve.auth import COOKIE, console_cookie_value

    return {"Cookie": f"{COOKIE}={console_cookie_value(key)}"}


def test_console_posts_from_another_site_are_refused(tmp_path) -> None:
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=1,
                        cors_origins=("https://platform.example",))

    async def go() -> None:
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            own = base  # http://127.0.0.1:<port>
            cases = [  # (headers, expected status) for a cookie-authorised POST /api/sessions
                ({"Origin": own}, 201),
                ({"Referer": f"{own}/"}, 201),
                ({}, 201),  # no browser sent it (curl, a server): not a forged request
                ({"Origin": "https://evil.example"}, 403),
                ({"Origin": "null"}, 403),  # a sandboxed or privacy-stripped page
                ({"Referer": "https://evil.example/page"}, 403),
                ({"Origin": "https://platform.example"}, 201),  # a --cors-origin site is the operator's
                ({"Origin": "https://platform.example.evil.example"}, 403),
                ({"Origin": own.replace("127.0.0.1", "127.0.0.1.evil.example")}, 403),
            ]
            for extra, want in cases:
                async with http.post(f"{base}/api/sessions", data="{}", headers={**_cookie(), **extra}) as r:
                    assert r.status == want, (extra, r.status, await r.text())
                    if want == 403:
                        assert "cross-site" in (await r.json())["error"]
                        assert r.headers["X-Content-Type-Options"] == "nosniff"
            # the API key in a header cannot be forged by another site: checked by the key
            async with http.post(f"{base}/api/sessions", json={},
                                 headers={"X-API-Key": KEY, "Origin": "https://evil.example"}) as r:
                assert r.status == 201
                s = await r.json()
            # stop and commands are refused the same way, and the session is untouched
            for path, body in ((f"/api/sessions/{s['id']}/stop", ""),
                               (f"/api/sessions/{s['id']}/commands", '{"v": 1, "type": "command", "cmd": "stop"}')):
                async with http.post(base + path, data=body, headers={**_cookie(), "Origin": "https://evil.example"}) as r:
                    assert r.status == 403, path
            async with http.get(f"{base}/api/sessions/{s['id']}", headers=_cookie()) as r:
                assert (await r.json())["state"] == "created"
            # the candidate's offer (token in the path) is called from embedding sites by design
            async with http.post(f"{base}/api/join/{s['token']}/offer", json={"type": "offer"},
                                 headers={"Origin": "https://platform.example"}) as r:
                assert r.status == 400  # judged on its body, not refused as cross-site
            # reads are not state-changing: no check
            async with http.get(f"{base}/api/sessions", headers={**_cookie(), "Origin": "https://evil.example"}) as r:
                assert r.status == 200

    asyncio.run(go())


def test_without_an_api_key_another_site_cannot_drive_the_server(tmp_path) -> None:
    """Open mode (loopback, no key): any page the interviewer visits could POST to
    127.0.0.1 with a text/plain body (no preflight); the Origin check refuses it, even when
    ``--cors-origin '*'`` lets any site embed the candidate page."""
    opts = ServeOptions(api_key=None, db=str(tmp_path / "s.sqlite3"), threads=1, cors_origins=("*",))

    async def go() -> None:
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            hdr = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
            async with http.post(f"{base}/api/sessions", data="{}", headers=hdr) as r:
                assert r.status == 403
            async with http.get(f"{base}/api/sessions") as r:
                assert (await r.json())["sessions"] == [], "nothing was created"
            async with http.post(f"{base}/api/sessions", data="{}", headers={"Origin": base}) as r:
                assert r.status == 201

    asyncio.run(go())


def test_forwarded_for_counts_only_behind_a_trusted_proxy() -> None:
    from liveness.apps.serve.ratelimit import client_address, parse_networks

    proxies = parse_networks(["10.0.0.0/8", "127.0.0.1"])
    assert client_address("203.0.113.9", ["198.51.100.1"], proxies) == "203.0.113.9"  # not a proxy: ignored
    assert client_address("127.0.0.1", ["198.51.100.1"], ()) == "127.0.0.1"  # off by default
    assert client_address("127.0.0.1", ["198.51.100.1"], proxies) == "198.51.100.1"
    # a client writes its own header; the proxies append what they saw: the nearest untrusted wins
    assert client_address("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.2.3"], proxies) == "198.51.100.1"
    assert client_address("127.0.0.1", ["6.6.6.6", "198.51.100.7"], proxies) == "198.51.100.7"
    assert client_address("127.0.0.1", ["garbage"], proxies) == "127.0.0.1"
    assert client_address("127.0.0.1", [], proxies) == "127.0.0.1"
    with pytest.raises(Exception, match="trusted_proxies"):
        ServeOptions(trusted_proxies=("not-an-address",))


def test_the_rate_limit_follows_forwarded_for_only_when_told(tmp_path) -> None:
    async def statuses(opts: ServeOptions) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {"a": [], "b": []}
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            for who, xff in (("a", "198.51.100.1"), ("b", "198.51.100.2")):
                for _ in range(4):
                    async with http.post(f"{base}/login", data={"key": "wrong-key-123"}, allow_redirects=False,
                                         headers={"X-Forwarded-For": xff}) as r:
                        out[who].append(r.status)
        return out

    base_opts = {"api_key": KEY, "threads": 1, "login_attempts_per_min": 3}
    plain = asyncio.run(statuses(ServeOptions(db=str(tmp_path / "a.sqlite3"), **base_opts)))
    assert plain["b"] == [429] * 4, "by default a written X-Forwarded-For does not buy a new bucket"
    proxied = asyncio.run(statuses(ServeOptions(db=str(tmp_path / "b.sqlite3"), trusted_proxies=("127.0.0.1",),
                                                **base_opts)))
    assert proxied["a"] == [401, 401, 401, 429] and proxied["b"] == [401, 401, 401, 429], proxied


def test_secrets_never_reach_the_logs(tmp_path, caplog: pytest.LogCaptureFixture, capsys) -> None:
    """Everything logged (every logger, DEBUG up) and printed while the server is signed into,
    guessed at, given candidate tokens, sent bad offers and failing webhooks: no API key, no
    wrong guess of it, no console cookie, no candidate token, no webhook secret or the secret
    part of its URL, no database password."""
    import logging

    from aiohttp import web

    from liveness.apps.cli import main
    from liveness.apps.serve import create_app
    from liveness.apps.serve.auth import console_cookie_value
    from liveness.apps.serve.webhooks import KEY_WEBHOOKS

    hook_secret = "whsec-Q29uZmlkZW50aWFsLXNpZ25pbmcta2V5"
    hook_path = "hooks/T0KEN-in-the-webhook-path-77f1"
    guess = "guessed-key-Zm9vYmFyYmF6"
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=1,
                        webhook_url=f"http://127.0.0.1:9/{hook_path}", webhook_secret=hook_secret,
                        webhook_backoff_s=0.2, webhook_timeout_s=1.0, webhook_max_attempts=2)

    def failing_reviewer(video, refs, options):  # noqa: ANN001, ANN202
        raise RuntimeError("the reviewer broke")

    caplog.set_level(logging.DEBUG)
    tokens: list[str] = []

    async def go() -> None:
        app = create_app(opts, None, reviewer=failing_reviewer)
        runner = web.AppRunner(app, access_log=None)  # as liveness serve runs it
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        base = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        try:
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{base}/login", data={"key": guess}, allow_redirects=False) as r:
                    assert r.status == 401
                async with http.post(f"{base}/login", data={"key": KEY}, allow_redirects=False) as r:
                    assert r.status == 302
                async with http.get(f"{base}/api/sessions", headers={"X-API-Key": guess}) as r:
                    assert r.status == 401
                async with http.get(f"{base}/api/sessions", headers={"Authorization": f"Bearer {guess}"}) as r:
                    assert r.status == 401
                async with http.post(f"{base}/api/sessions", json={}, headers={"Authorization": f"Bearer {KEY}"}) as r:
                    s = await r.json()
                tokens.append(s["token"])
                async with http.get(f"{base}/join/{s['token']}") as r:
                    assert r.status == 200
                bad_sdp = {"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\ngarbage\r\n"}
                async with http.post(f"{base}/api/join/{s['token']}/offer", json=bad_sdp) as r:
                    assert r.status == 400
                async with http.post(f"{base}/api/sessions/{s['id']}/offer", json=bad_sdp, headers=_cookie()) as r:
                    assert r.status == 400
                form = aiohttp.FormData(default_to_multipart=True)
                form.add_field("video", b"\x00" * 100, filename="v.mp4", content_type="video/mp4")
                async with http.post(f"{base}/api/reviews", data=form, headers={"X-API-Key": KEY}) as r:
                    assert r.status == 202
                async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers={"X-API-Key": KEY}) as r:
                    assert r.status == 200
                hooks = app[KEY_WEBHOOKS]
                for _ in range(100):  # both deliveries tried (and failed) at least once
                    rows = await hooks.store.call(hooks.list)
                    if len(rows) >= 2 and all(d["attempts"] >= 1 for d in rows):
                        break
                    await asyncio.sleep(0.1)
                assert len(rows) >= 2 and all(d["attempts"] >= 1 for d in rows), rows
        finally:
            await runner.cleanup()

    asyncio.run(asyncio.wait_for(go(), 60))
    assert main(["serve", "--api-key", KEY, "--db", "postgresql://liveness:pg-S3cret-pw@127.0.0.1:1/x",
                 "--port", "0"]) == 2
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    out = capsys.readouterr()
    printed = out.out + out.err
    assert "webhook" in logged and "bad offer" in logged and "the reviewer broke" in logged, "the faults were logged"
    for secret in (KEY, guess, console_cookie_value(KEY), *tokens, hook_secret, hook_path, "pg-S3cret-pw"):
        assert secret not in logged, secret
        assert secret not in printed, secret
