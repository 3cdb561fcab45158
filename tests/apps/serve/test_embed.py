"""The embed SDK's server side: what a candidate peer may receive (never a verdict), the watch
token that lets a platform's interviewer page watch one session without the API key, the watch
socket's origin check, and the example page ``liveness serve`` serves. The SDK itself runs in
headless Chromium in test_browser.py."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest

pytest.importorskip("aiortc")

from liveness.apps.serve import PROTOCOL, ServeOptions  # noqa: E402
from liveness.apps.serve.clients import candidate_view  # noqa: E402
from liveness.apps.serve.protocol import message  # noqa: E402
from tests._serve_util import Client, FrameTrack, disc_factory, disc_frame, running_server  # noqa: E402

KEY = "embed-test-key-0123456"
AUTH = {"X-API-Key": KEY}
PLATFORM = "https://platform.example"


def _opts(tmp_path, **kw) -> ServeOptions:
    return ServeOptions(api_key=KEY, db=str(tmp_path / "serve.sqlite3"), threads=2, **kw)


def run(coro, timeout: float = 180) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


async def _create(http: aiohttp.ClientSession, base: str) -> dict:
    async with http.post(f"{base}/api/sessions", json={"label": "embed"}, headers=AUTH) as r:
        assert r.status == 201, await r.text()
        return await r.json()


def test_candidate_view_keeps_only_what_a_candidate_may_see():
    verdict = {"label": "fake", "risk": 0.9, "reasons": ["x"]}
    bye = message("bye", reason="stopped", verdict=verdict, counters={"received": 3})
    assert candidate_view(bye) == {"v": PROTOCOL, "type": "bye", "reason": "stopped"}
    assert candidate_view(message("state", state="live", verdict=verdict)) == {"v": PROTOCOL, "type": "state", "state": "live"}
    for kind in ("result", "status", "event"):
        assert candidate_view(message(kind, verdict=verdict, risk=0.9)) is None, kind


def test_candidate_bye_carries_no_verdict(tmp_path):
    """The session ends with a verdict: the watcher's bye carries it, the candidate's does not
    (nor its counters), and nothing the candidate received mentions a verdict, risk or score."""

    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory(fusion=True)) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            ws = await http.ws_connect(f"{base}/api/sessions/{s['id']}/watch", headers=AUTH)
            cand = Client(FrameTrack(disc_frame, fps=30))
            await cand.connect(s["candidate_offer_url"])
            watched: list[dict] = []

            async def pump() -> None:
                async for msg in ws:
                    watched.append(json.loads(msg.data))

            pumping = asyncio.create_task(pump())
            end = time.monotonic() + 60
            while time.monotonic() < end and not any(m["type"] == "status" and m.get("verdict") for m in watched):
                await asyncio.sleep(0.1)
            assert any(m["type"] == "status" and m["verdict"]["label"] for m in watched), "the watcher sees a verdict"
            async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                assert r.status == 200
            assert await cand.wait_for(lambda: cand.bye.is_set(), 15)
            await asyncio.sleep(0.3)
            watcher_bye = next(m for m in watched if m["type"] == "bye")
            assert watcher_bye["verdict"] and watcher_bye["verdict"]["label"] in ("no_signs", "suspicious")
            assert "counters" in watcher_bye
            cand_bye = cand.of_type("bye")[0]
            assert cand_bye == {"v": PROTOCOL, "type": "bye", "reason": "stopped through the API"}
            assert {m["type"] for m in cand.messages} <= {"hello", "state", "ack", "bye"}
            text = json.dumps(cand.messages)
            for word in ("verdict", "risk", "signals", "label", "prompt", "challenge"):
                assert word not in text, (word, cand.messages)
            pumping.cancel()
            await ws.close()
            await cand.close()

    run(main())


def test_watch_token_origin_and_subprotocol(tmp_path):
    async def main() -> None:
        opts = _opts(tmp_path, cors_origins=(PLATFORM,))
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            a, b = await _create(http, base), await _create(http, base)
            tok = a["watch_token"]
            assert isinstance(tok, str) and len(tok) == 64 and tok != b["watch_token"] and KEY not in tok
            url = f"{base}/api/sessions/{a['id']}/watch"

            async def status(**kw) -> int:
                try:
                    ws = await http.ws_connect(url, **kw)
                except aiohttp.WSServerHandshakeError as exc:
                    return exc.status
                await ws.close()
                return 101

            assert await status() == 401, "neither key nor token"
            assert await status(protocols=("liveness", "liveness-watch." + "0" * 64)) == 401
            assert await status(protocols=("liveness", "liveness-watch." + b["watch_token"])) == 401, "another session's token"
            # the token, from the platform's page: the answer selects 'liveness'; full messages
            ws = await http.ws_connect(url, protocols=("liveness", "liveness-watch." + tok), headers={"Origin": PLATFORM})
            assert ws.protocol == "liveness"
            hello = json.loads((await ws.receive(timeout=5)).data)
            assert hello["type"] == "hello" and hello["role"] == "console" and hello["label"] == "embed"
            await ws.send_str(json.dumps({"v": PROTOCOL, "type": "command", "id": "p1", "cmd": "ping"}))
            ack = json.loads((await ws.receive(timeout=5)).data)
            assert ack["type"] == "ack" and ack["id"] == "p1" and ack["ok"]
            await ws.close()
            # a page from another origin may not open it, with the token or the key
            evil = {"Origin": "https://evil.example"}
            assert await status(protocols=("liveness", "liveness-watch." + tok), headers=evil) == 403
            assert await status(headers={**AUTH, **evil}) == 403
            assert await status(headers={**AUTH, "Origin": base}) == 101, "the server's own pages (the console)"
            # the watch token is no API key
            async with http.get(f"{base}/api/sessions/{a['id']}", headers={"Authorization": f"Bearer {tok}"}) as r:
                assert r.status == 401
            async with http.get(f"{base}/api/openapi.json") as r:
                spec = await r.json()
            assert "watch_token" in spec["components"]["schemas"]["SessionCreated"]["properties"]
            assert "403" in spec["paths"]["/api/sessions/{sid}/watch"]["get"]["responses"]

        keyless = ServeOptions(api_key=None, db=str(tmp_path / "open.sqlite3"), threads=1)
        async with running_server(keyless, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={}) as r:
                s = await r.json()
            assert s["watch_token"] is None, "no key: nothing to derive a token from, and none needed on loopback"
            ws = await http.ws_connect(f"{base}/api/sessions/{s['id']}/watch", protocols=("liveness",))
            assert ws.protocol == "liveness"
            await ws.close()

    run(main())


def test_serve_serves_the_example_page(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.get(f"{base}/plugin/examples/embed.html") as r:
                text = await r.text()
                assert r.status == 200 and r.content_type == "text/html"
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self'" in csp and "frame-ancestors 'self'" in csp
            assert '<script src="/plugin/liveness-embed.js"></script>' in text and "/plugin/examples/embed.js" in text
            async with http.get(f"{base}/plugin/examples/embed.js") as r:
                assert r.status == 200 and "LivenessEmbed.watch" in await r.text()
            async with http.get(f"{base}/plugin/liveness-embed.js") as r:
                sdk = await r.text()
            for name in ("verdict", "prompt", "challenge", "ended"):
                assert f'"{name}"' in sdk, name
            for bad in ("missing.html", "..%2Fconsole.html", "EMBED.html", "embed.py"):
                async with http.get(f"{base}/plugin/examples/{bad}") as r:
                    assert r.status == 404, bad

    run(main())


def test_served_pages_ask_for_640x480_at_15fps(tmp_path):
    """The candidate page (join.js, through the SDK's default) and the console's camera and
    screen share ask for 640x480 at 15 fps through constraints (issue 16: the live server's
    capacity is sized for that); read from what the server serves, no browser needed (the
    browser test checks what Chromium then delivers)."""
    want = "{ width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: 15, max: 15 } }"

    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            text = {}
            for name in ("liveness-embed.js", "join.js", "console.js"):
                async with http.get(f"{base}/plugin/{name}") as r:
                    assert r.status == 200, name
                    text[name] = await r.text()
        sdk, join, console = text["liveness-embed.js"], text["join.js"], text["console.js"]
        assert f"const DEFAULT_VIDEO = {want};" in sdk
        assert "getUserMedia(opts.constraints || { video: DEFAULT_VIDEO, audio: false })" in sdk
        assert "LivenessEmbed.join(" in join and "constraints" not in join, "the candidate page uses the default"
        assert f"getDisplayMedia({{ video: {want}, audio: false }})" in console
        assert f"getUserMedia({{ video: {want}, audio: false }})" in console

    run(main())
