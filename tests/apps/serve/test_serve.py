"""``liveness serve``: a pure-Python aiortc client streams generated frames over loopback and
checks what comes back over the data channel, the watch WebSocket and the JSON API."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import numpy as np
import pytest

pytest.importorskip("aiortc")

from liveness import InputError  # noqa: E402
from liveness.apps.serve import PROTOCOL, ServeOptions  # noqa: E402
from liveness.apps.serve.protocol import parse_command  # noqa: E402
from liveness.apps.serve.store import Store  # noqa: E402
from tests._serve_util import Client, FrameTrack, disc_factory, disc_frame, running_server  # noqa: E402

KEY = "test-key-0123456789"
AUTH = {"X-API-Key": KEY}


def _opts(tmp_path, **kw) -> ServeOptions:
    return ServeOptions(api_key=KEY, db=str(tmp_path / "serve.sqlite3"), threads=2, **kw)


async def _create(http: aiohttp.ClientSession, base: str, **body) -> dict:
    async with http.post(f"{base}/api/sessions", json=body, headers=AUTH) as r:
        assert r.status == 201, await r.text()
        return await r.json()


def run(coro, timeout: float = 240) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def test_results_over_data_channel(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _app), aiohttp.ClientSession() as http:
            s = await _create(http, base, label="dc test")
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 40, 60), client.messages[:5]
            hello = client.messages[0]
            assert hello["v"] == PROTOCOL and hello["type"] == "hello" and hello["role"] == "console"
            results = client.of_type("result")
            for m in results:
                assert m["v"] == PROTOCOL
                assert m["face"] is True and m["faces"] == 1
                assert m["width"] == 640 and m["height"] == 480
                x, y, w, h = m["box"]
                assert 0 <= x and x + w <= 641 and 0 <= y and y + h <= 481
                assert abs(m["yaw"]) <= 40.5
                assert 0.0 <= m["signals"]["centre"] <= 1.0
                assert m["latency_ms"] >= 0
            ts = [m["t"] for m in results]
            assert all(b > a for a, b in zip(ts, ts[1:], strict=False)), "capture timestamps must increase"
            # the capture timestamp is the sender's: pts / 90 kHz
            assert all(abs(m["t"] - m["pts"] / 90000) < 1e-3 for m in results)
            # every analysed frame gets its result (the server holds back none below result_hz),
            # so results come at the analysed rate (speed itself is benchmarked, not tested)
            assert await client.wait_for(lambda: len(client.of_type("status")) >= 1, 5)
            c = client.of_type("status")[-1]["counters"]
            assert c["results_sent"] >= c["analysed"] - 4, c  # a few may still be in flight
            # the analysis thread's CPU by stage, summed since the start
            assert set(c["cpu_ms"]) == {"convert", "process", "snapshot", "other"}, c
            assert c["cpu_ms"]["process"] > 0 and all(v >= 0 for v in c["cpu_ms"].values()), c
            # yaw follows the disc: sign of the offset from the centre
            for m in results[-10:]:
                cx = m["box"][0] + m["box"][2] / 2
                if abs(cx - 320) > 40:
                    assert np.sign(m["yaw"]) == np.sign(cx - 320)
            assert await client.wait_for(lambda: len(client.of_type("status")) >= 1, 5)
            st = client.of_type("status")[-1]
            assert st["counters"]["received"] >= st["counters"]["analysed"] > 0
            assert st["signals"]["centre"]["n"] > 0

            # commands: crop to the right half, then bad input, then stop
            client.send("set_crop", {"x": 0.5, "y": 0.0, "w": 0.5, "h": 1.0}, cid="crop1")
            assert await client.wait_for(lambda: any(m.get("id") == "crop1" for m in client.of_type("ack")), 5)
            ack = next(m for m in client.of_type("ack") if m["id"] == "crop1")
            assert ack["ok"] is True
            n0 = len(client.of_type("result"))
            assert await client.wait_for(lambda: any(m["crop"] and m["face"] for m in client.of_type("result")[n0:]), 10)
            cropped = [m for m in client.of_type("result")[n0:] if m["crop"] and m["face"]]
            assert cropped and all(m["box"][0] >= 319 for m in cropped), [(m["crop"], m["box"]) for m in cropped]
            client.send("set_crop", {"x": 0.9, "y": 0, "w": 0.5, "h": 1}, cid="bad")
            assert await client.wait_for(lambda: any(m.get("id") == "bad" for m in client.of_type("ack")), 5)
            assert next(m for m in client.of_type("ack") if m["id"] == "bad")["ok"] is False
            client.channel.send("not json")
            assert await client.wait_for(lambda: any(m.get("id") is None and not m["ok"] for m in client.of_type("ack")), 5)
            client.send("start_challenges", {"count": 3}, cid="ch")
            assert await client.wait_for(lambda: any(m.get("id") == "ch" for m in client.of_type("ack")), 5)
            assert "no challenge engine" in next(m for m in client.of_type("ack") if m["id"] == "ch")["error"]
            client.send("stop", {"reason": "test over"})
            assert await client.wait_for(lambda: client.bye.is_set(), 15)
            assert client.of_type("bye")[0]["reason"] == "test over"
            await client.close()

            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            assert rep["session"]["state"] == "ended" and rep["session"]["end_reason"] == "test over"
            assert rep["seconds"] and all(0 <= row["face_fraction"] <= 1 for row in rep["seconds"])
            assert sum(row["frames"] for row in rep["seconds"]) == rep["session"]["counters"]["analysed"]
            assert "centre" in rep["session"]["signals"]
            assert any(e["kind"] == "session.ended" for e in rep["events"])
            assert not {"token", "token_hash", "token_used", "token_expires"} & set(rep["session"])
            c = rep["session"]["counters"]
            assert (c["width"], c["height"]) == (640, 480), "the received frame size is kept"
            assert (c["analysed_width"], c["analysed_height"]) == (320, 480), "the last frames had the crop"

            # the HTML report of the session: the real frame size, a drawn face lane, and advice
            # that fits a live session (thumbnails are off in this server)
            async with http.get(f"{base}/api/sessions/{s['id']}/report.html", headers=AUTH) as r:
                assert r.status == 200
                page = await r.text()
            assert "640&times;480 px" in page and "size unknown" not in page
            face_lane = page.split('data-signal="face found"', 1)[1].split("</svg>", 1)[0]
            assert '<path d="M' in face_lane, "the face-found lane draws the per-second face share"
            assert "liveness serve --thumbnails" in page and "--html</code>" not in page

    run(main())


def test_challenge_commands_reach_the_engine_and_events_come_back(tmp_path):
    async def main() -> None:
        opts = _opts(tmp_path, thumbnails=True)
        async with running_server(opts, disc_factory(challenges=True)) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 5, 60)
            client.send("start_challenges", {"count": 2}, cid="go")
            assert await client.wait_for(lambda: any(m.get("id") == "go" and m["ok"] for m in client.of_type("ack")), 5)

            def kinds(k: str) -> list[dict]:
                return [m for m in client.of_type("event") if m["kind"] == k]

            assert await client.wait_for(lambda: len(kinds("challenge.result")) >= 2, 20)
            prompts, results = kinds("challenge.prompt"), kinds("challenge.result")
            assert [p["data"]["kind"] for p in prompts[:2]] == ["turn_left", "blink_twice"]
            assert all(r["data"]["passed"] is True and r["data"]["latency_s"] >= 0.3 for r in results)
            assert prompts[0]["t"] < results[0]["t"]
            # a bad count is refused before it reaches the engine
            client.send("start_challenges", {"count": 0}, cid="bad")
            assert await client.wait_for(lambda: any(m.get("id") == "bad" for m in client.of_type("ack")), 5)
            assert not next(m for m in client.of_type("ack") if m["id"] == "bad")["ok"]
            await client.close()
            # stored with their data
            await asyncio.sleep(0.5)
            async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            stored = [e for e in rep["events"] if e["kind"] == "challenge.result"]
            assert len(stored) >= 2 and stored[0]["data"]["passed"] is True
            # evidence thumbnails (enabled here) at the challenge events, served as JPEG
            assert rep["thumbnails"] and {"challenge.prompt", "challenge.result"} <= {t["reason"] for t in rep["thumbnails"]}
            async with http.get(base + rep["thumbnails"][0]["url"], headers=AUTH) as r:
                assert r.status == 200 and (await r.read())[:2] == b"\xff\xd8"
            # the same record as the HTML evidence report
            async with http.get(base + rep["html"], headers=AUTH) as r:
                html = await r.text()
                assert r.status == 200 and s["id"] in html and "<svg" in html
                assert "data:image/jpeg;base64," in html and "turn_left" in html
            async with http.get(base + rep["html"]) as r:
                assert r.status == 401

    run(main())


def test_slow_analysis_drops_stale_frames(tmp_path):
    """A slow analysis analyses the newest frame and drops the rest: latency stays bounded."""

    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory(delay_s=0.12)) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 25, 60)
            async with http.get(f"{base}/api/sessions/{s['id']}", headers=AUTH) as r:
                st = await r.json()
            c = st["counters"]
            assert c["dropped"] > 0
            assert c["received"] >= c["analysed"] + c["dropped"] - 1
            # receive -> result time is one analysis plus at most one wait, never a growing queue
            # (queued, 25 results at 0.12 s each behind 30 fps would already be seconds late)
            assert c["latency_ms_p95"] < 2500, c
            await client.close()

    run(main())


def test_failing_session_does_not_stall_another(tmp_path):
    async def main() -> None:
        calls = {"n": 0}
        good, bad = disc_factory(), disc_factory(fail_after=2)

        def factory():
            calls["n"] += 1
            return bad() if calls["n"] == 1 else good()

        async with running_server(_opts(tmp_path), factory) as (base, _), aiohttp.ClientSession() as http:
            s1, s2 = await _create(http, base), await _create(http, base)
            c1 = Client(FrameTrack(disc_frame, fps=30))
            await c1.connect(s1["offer_url"], AUTH)
            await c1.wait_for(lambda: c1.opened.is_set(), 20)
            c2 = Client(FrameTrack(disc_frame, fps=30))
            await c2.connect(s2["offer_url"], AUTH)
            assert await c1.wait_for(lambda: c1.bye.is_set(), 60), "the failing session ends"
            assert c1.of_type("bye")[0]["reason"] == "analysis keeps failing"
            assert any(e["kind"] == "error.analysis" for e in c1.of_type("event"))
            n = len(c2.of_type("result"))
            assert await c2.wait_for(lambda: len(c2.of_type("result")) >= n + 15, 30), "the other keeps going"
            assert not c2.bye.is_set()
            await c1.close()
            await c2.close()

    run(main())


def test_missing_pipeline_ends_only_that_session(tmp_path):
    from liveness import ModelError

    def broken():
        raise ModelError("face_mesh.onnx not found")

    async def main() -> None:
        async with running_server(_opts(tmp_path), broken) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            with pytest.raises(RuntimeError, match="503.*face_mesh.onnx"):
                await client.connect(s["offer_url"], AUTH)
            await client.close()
            for _ in range(50):
                async with http.get(f"{base}/api/sessions/{s['id']}", headers=AUTH) as r:
                    st = await r.json()
                if st["state"] == "ended":
                    break
                await asyncio.sleep(0.1)
            assert st["state"] == "ended" and "face_mesh.onnx" in st["end_reason"]
            # an ended session takes no new peer; the server still answers
            again = Client(FrameTrack(disc_frame, fps=30))
            with pytest.raises(RuntimeError, match="409"):
                await again.connect(s["offer_url"], AUTH)
            await again.close()
            async with http.get(f"{base}/api/health") as r:
                assert (await r.json())["ok"]

    run(main())


def test_slow_session_does_not_slow_another(tmp_path):
    async def main() -> None:
        calls = {"n": 0}
        slow, fast = disc_factory(delay_s=0.3), disc_factory()

        def factory():
            calls["n"] += 1
            return slow() if calls["n"] == 1 else fast()

        async with running_server(_opts(tmp_path), factory) as (base, _), aiohttp.ClientSession() as http:
            s1, s2 = await _create(http, base), await _create(http, base)
            c1 = Client(FrameTrack(disc_frame, fps=30))
            await c1.connect(s1["offer_url"], AUTH)
            c2 = Client(FrameTrack(disc_frame, fps=30))
            await c2.connect(s2["offer_url"], AUTH)
            assert await c2.wait_for(lambda: len(c2.of_type("result")) >= 10 and len(c1.of_type("result")) >= 3, 60)
            n1, n2, t0 = len(c1.of_type("result")), len(c2.of_type("result")), time.monotonic()
            await asyncio.sleep(4)
            dt = time.monotonic() - t0
            slow_rate = (len(c1.of_type("result")) - n1) / dt
            fast_rate = (len(c2.of_type("result")) - n2) / dt
            assert slow_rate <= 1 / 0.3 + 0.5
            assert fast_rate >= 2 * slow_rate, (fast_rate, slow_rate)
            await c1.close()
            await c2.close()

    run(main())


def test_vanished_peer_ends_session_and_keeps_record(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path, disconnect_grace_s=1.0), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 20, 60)
            await client.pc.close()  # the peer goes away without a stop command

            async def state() -> str:
                async with http.get(f"{base}/api/sessions/{s['id']}", headers=AUTH) as r:
                    return (await r.json())["state"]

            end = time.monotonic() + 40
            while time.monotonic() < end and await state() != "ended":
                await asyncio.sleep(0.2)
            assert await state() == "ended"
            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            assert rep["session"]["counters"]["analysed"] >= 20
            assert rep["seconds"]
            assert rep["session"]["end_reason"] in ("media ended", "peer closed the connection", "peer connection closed", "peer connection failed", "peer vanished")

    run(main())


def test_candidate_link_single_use_and_watch(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            async with http.get(s["join_url"]) as r:
                assert r.status == 200 and "Start" in await r.text()
                assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
            ws = await http.ws_connect(f"{base}/api/sessions/{s['id']}/watch", headers=AUTH)
            cand = Client(FrameTrack(disc_frame, fps=30))
            await cand.connect(s["candidate_offer_url"])  # no API key: the token is the credential
            got: list[dict] = []
            end = time.monotonic() + 60
            while time.monotonic() < end and sum(m["type"] == "result" for m in got) < 10:
                try:
                    msg = await ws.receive(timeout=5)
                except TimeoutError:
                    continue
                got.append(json.loads(msg.data))
            assert got[0]["type"] == "hello" and got[0]["role"] == "console"
            assert sum(m["type"] == "result" and m["face"] for m in got) >= 10
            # the candidate never sees scores or prompts
            await asyncio.sleep(0.5)
            assert {m["type"] for m in cand.messages} <= {"hello", "state", "ack", "bye"}
            assert cand.messages and cand.messages[0]["role"] == "candidate"
            cand.send("stop", cid="c1")
            assert await cand.wait_for(lambda: any(m.get("id") == "c1" for m in cand.of_type("ack")), 5)
            assert not next(m for m in cand.of_type("ack") if m["id"] == "c1")["ok"]
            # a command from the watcher works
            await ws.send_str(json.dumps({"v": PROTOCOL, "type": "command", "id": "w1", "cmd": "ping"}))
            # the link is single-use
            other = Client(FrameTrack(disc_frame, fps=30))
            with pytest.raises(RuntimeError, match="404"):
                await other.connect(s["candidate_offer_url"])
            await other.close()
            async with http.get(s["join_url"]) as r:
                assert r.status == 404
            async with http.get(f"{base}/join/{'A' * 32}") as r:
                assert r.status == 404
            await ws.close()
            await cand.close()

    run(main())


def test_access_control_cors_and_openapi(tmp_path):
    async def main() -> None:
        opts = _opts(tmp_path, cors_origins=("https://platform.example",))
        jar = aiohttp.CookieJar(unsafe=True)  # the default jar ignores cookies of IP hosts
        async with running_server(opts, disc_factory()) as (base, app), aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.post(f"{base}/api/sessions", json={}) as r:
                assert r.status == 401 and (await r.json())["error"].startswith("API key required")
            async with http.post(f"{base}/api/sessions", json={}, headers={"X-API-Key": "wrong-key-123"}) as r:
                assert r.status == 401 and (await r.json())["error"] == "invalid API key"
            async with http.get(f"{base}/api/sessions", headers={"Authorization": "Bearer wrong-key-123"}) as r:
                assert r.status == 401 and (await r.json())["error"] == "invalid API key"
            async with http.post(f"{base}/api/sessions", json={}, headers={"Authorization": f"Bearer {KEY}"}) as r:
                assert r.status == 201
                sid = (await r.json())["id"]
            async with http.get(f"{base}/api/sessions/{sid}/report") as r:
                assert r.status == 401
            async with http.post(f"{base}/api/sessions", json={"label": 5}, headers=AUTH) as r:
                assert r.status == 400
            async with http.post(f"{base}/api/sessions", data="{", headers={**AUTH, "Content-Type": "application/json"}) as r:
                assert r.status == 400
            async with http.post(f"{base}/api/sessions/{sid}/offer", json={"sdp": "v=0"}, headers=AUTH) as r:
                assert r.status == 400
            # console: login page without the key, console after signing in (cookie, not the key)
            async with http.get(f"{base}/") as r:
                text = await r.text()
                assert 'name="key"' in text and "Wrong API key" not in text and "{{" not in text
            async with http.post(f"{base}/login", data={"key": "wrong-key-123"}, allow_redirects=False) as r:
                assert r.status == 401, "a wrong key is said, not a silent reload"
                text = await r.text()
                assert 'id="login-error"' in text and "Wrong API key" in text and 'name="key"' in text
                assert "liveness_console" not in r.cookies
            async with http.post(f"{base}/login", data={"key": KEY}, allow_redirects=False) as r:
                assert r.status == 302
                cookie = r.cookies["liveness_console"].value
                assert KEY not in cookie
            async with http.get(f"{base}/") as r:
                text = await r.text()
                assert "Share call window" in text and "script-src 'self'" in r.headers["Content-Security-Policy"]
                assert 'href="/logout"' in text and "{{" not in text
                # the plain-language tables the console shows (same as the report's)
                blob = text.split('<script type="application/json" id="liveness-texts">', 1)[1].split("</script>", 1)[0]
                tables = json.loads(blob)
                assert tables["labels"]["no_signs"].startswith("No signs of manipulation found")
                assert "slides or jitters" in tables["signals"]["face_slip"]
            # CORS for the embedding origin only
            pre = {"Origin": "https://platform.example", "Access-Control-Request-Method": "POST"}
            async with http.options(f"{base}/api/join/x/offer", headers=pre) as r:
                assert r.headers.get("Access-Control-Allow-Origin") == "https://platform.example"
            async with http.options(f"{base}/api/join/x/offer", headers={**pre, "Origin": "https://evil.example"}) as r:
                assert "Access-Control-Allow-Origin" not in r.headers
            # the OpenAPI document covers every API route
            async with http.get(f"{base}/api/openapi.json") as r:
                spec = await r.json()
            assert spec["openapi"].startswith("3.")
            routes = {res.canonical for res in app.router.resources() if res.canonical.startswith("/api/")}
            assert routes <= set(spec["paths"]), routes - set(spec["paths"])
            async with http.get(f"{base}/plugin/liveness-embed.js") as r:
                assert r.status == 200 and "LivenessEmbed" in await r.text()
            async with http.get(f"{base}/plugin/..%2Fpyproject.toml") as r:
                assert r.status == 404

    run(main())


def test_sessions_created_and_never_joined_are_capped(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path, max_pending_sessions=3), disc_factory()) as (base, _app), \
                aiohttp.ClientSession() as http:
            made = [await _create(http, base, label=f"p{i}") for i in range(3)]
            async with http.post(f"{base}/api/sessions", json={}, headers=AUTH) as r:
                assert r.status == 503
                assert "3 sessions created and not yet joined" in (await r.json())["error"]
            async with http.post(f"{base}/api/sessions/{made[0]['id']}/stop", headers=AUTH) as r:
                assert r.status == 200
            await _create(http, base, label="after a stop")  # a stopped one no longer counts

    run(main())
    with pytest.raises(Exception, match="max_pending_sessions"):
        ServeOptions(max_pending_sessions=0)


def test_console_without_a_key_has_no_sign_out(tmp_path):
    async def main() -> None:
        opts = ServeOptions(api_key=None, db=str(tmp_path / "serve.sqlite3"), threads=1)
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.get(f"{base}/") as r:
                text = await r.text()
            assert r.status == 200 and "Share call window" in text
            assert "sign out" not in text and "/logout" not in text and "{{" not in text

    run(main())


def test_options_refuse_open_network_without_key(tmp_path):
    from liveness import ConfigError

    with pytest.raises(ConfigError, match="API key"):
        ServeOptions(host="0.0.0.0", db=":memory:")
    with pytest.raises(ConfigError):
        ServeOptions(api_key="short", db=":memory:")
    assert ServeOptions(host="0.0.0.0", api_key=KEY, db=":memory:").auth_enabled


def test_protocol_commands():
    ok = parse_command(json.dumps({"v": PROTOCOL, "type": "command", "id": 7, "cmd": "set_crop", "args": {"x": 0.1, "y": 0.1, "w": 0.5, "h": 0.5}}))
    assert ok.id == "7" and ok.cmd == "set_crop" and ok.args["w"] == 0.5
    bad = [
        "[]",
        b"\xff",
        json.dumps({"v": "liveness.dc/0", "type": "command", "cmd": "ping"}),
        json.dumps({"v": PROTOCOL, "type": "result", "cmd": "ping"}),
        json.dumps({"v": PROTOCOL, "type": "command", "cmd": "explode"}),
        json.dumps({"v": PROTOCOL, "type": "command", "cmd": "ping", "args": {"x": 1}}),
        json.dumps({"v": PROTOCOL, "type": "command", "cmd": "set_crop", "args": {"x": "a", "y": 0, "w": 1, "h": 1}}),
        json.dumps({"v": PROTOCOL, "type": "command", "cmd": "set_crop", "args": {"x": 0.5, "y": 0, "w": 0.6, "h": 1}}),
        json.dumps({"v": PROTOCOL, "type": "command", "cmd": "start_challenges", "args": {"count": 99}}),
        "x" * 20000,
    ]
    for b in bad:
        with pytest.raises(InputError):
            parse_command(b)


def test_store_tokens_and_records(tmp_path):
    st = Store(str(tmp_path / "sub" / "db.sqlite3"))
    now = time.time()
    st.create_session("a" * 16, "x", "h1", now + 60, {})
    assert st.consume_token("h1", now + 61) is None, "expired"
    assert st.consume_token("h1", now) == "a" * 16
    assert st.consume_token("h1", now) is None, "single use"
    ev = {"t": 1.0, "kind": "quality.no_face", "message": "m", "data": {"kind": "x", "extra": 3}}
    st.add_events("a" * 16, [ev])
    assert st.events("a" * 16) == [ev]
    st.add_seconds("a" * 16, [{"second": 0, "frames": 3, "face_fraction": 1.0, "yaw": 1.0, "pitch": 0, "roll": 0, "signals": {"s": 0.1}}])
    assert st.seconds("a" * 16)[0]["signals"] == {"s": 0.1}
    st.set_state("a" * 16, "live")
    assert st.mark_interrupted() == 1
    assert st.get_session("a" * 16)["state"] == "ended"
    st.close()


def _real_factory():
    try:
        from liveness.apps.serve.app import default_factory

        default_factory()
        return default_factory
    except Exception as exc:  # models not installed in this checkout
        pytest.skip(f"the default pipeline is not available: {exc}")


def _face_frames(n: int = 60) -> list[np.ndarray]:
    import cv2

    from liveness.testing import astronaut_photo
    from tests._serve_util import fit_4x3

    face = fit_4x3(astronaut_photo())
    return [
        cv2.warpAffine(face, np.float32([[1, 0, 10 * np.sin(i / 8)], [0, 1, 0]]), (640, 480), borderMode=cv2.BORDER_REFLECT)
        for i in range(n)
    ]


def test_real_pipeline_over_webrtc(tmp_path):
    """The full default pipeline behind the server: a real face photo streamed over WebRTC
    comes back with a face, a plausible frontal pose and the default analysers' signals."""
    factory = _real_factory()
    frames = _face_frames()

    async def main() -> None:
        async with running_server(_opts(tmp_path), factory) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(lambda i: frames[i % len(frames)], fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: sum(m["face"] for m in client.of_type("result")) >= 20, 90)
            faces = [m for m in client.of_type("result") if m["face"]]
            for m in faces[-10:]:
                assert abs(m["yaw"]) < 25 and abs(m["pitch"]) < 25 and abs(m["roll"]) < 20, m
                x, y, w, h = m["box"]
                assert 100 < w < 400 and 100 < h < 450
            assert await client.wait_for(lambda: len(client.of_type("status")) >= 2, 10)
            client.send("stop")
            assert await client.wait_for(lambda: client.bye.is_set(), 30)
            await client.close()

    run(main())


def test_cli_serve_starts_and_stops(tmp_path):
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    env = {**os.environ, "LIVENESS_API_KEY": KEY}
    code = "import sys; from liveness.apps.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", str(port), "--db", str(tmp_path / "cli.sqlite3")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        body = None
        end = time.monotonic() + 60
        while time.monotonic() < end and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                time.sleep(0.3)
        assert body is not None and body["ok"] and body["protocol"] == PROTOCOL
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/sessions", data=b"{}", method="POST",
                                     headers={"X-API-Key": KEY, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 201
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (tmp_path / "cli.sqlite3").is_file()


def test_marker_jitter_buffer_completes_frames_at_the_marker():
    from aiortc.rtp import RtpPacket

    from liveness.apps.serve.rtp import _make

    def pkt(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
        p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
        p._data = data
        return p

    jb = _make()(capacity=128, is_video=True)
    assert jb.add(pkt(10, 1000, False, b"a"))[1] is None
    _, f = jb.add(pkt(11, 1000, True, b"b"))
    assert f is not None and f.data == b"ab" and f.timestamp == 1000, "complete at the marker"
    # a lost packet: nothing is emitted until the stream moves on (as in aiortc)
    assert jb.add(pkt(13, 2000, True, b"d"))[1] is None
    _, f = jb.add(pkt(12, 2000, False, b"c"))
    assert f is not None and f.data == b"cd"
    # no marker at all (a sender that never sets it): the next frame completes it
    assert jb.add(pkt(14, 3000, False, b"e"))[1] is None
    _, f = jb.add(pkt(15, 4000, False, b"f"))
    assert f is not None and f.data == b"e" and f.timestamp == 3000
    # audio buffers keep aiortc's own behaviour
    ab = _make()(capacity=16, prefetch=0)
    assert ab.add(pkt(1, 10, True, b"x"))[1] is None


def test_real_challenge_engine_over_webrtc(tmp_path):
    """The real tracker and challenge engine behind the server: a still photo that never
    answers gets the prompt and a failed result, as events on the data channel."""
    _real_factory()
    from liveness.challenges.engine import ChallengeEngine, EngineOptions
    from liveness.pipeline import PipelineOptions, build_session

    def factory():  # the pipeline's own engine, with short gaps and time limits
        engine = EngineOptions(gap_s=(0.2, 0.4), time_limit_s=1.5)
        s = build_session(PipelineOptions(live=True, analysers=(("challenges", engine),)))
        assert any(isinstance(a, ChallengeEngine) and a.options == engine for a in s.analysers)
        return s

    frames = _face_frames()

    async def main() -> None:
        async with running_server(_opts(tmp_path), factory) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(lambda i: frames[i % len(frames)], fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: sum(m["face"] for m in client.of_type("result")) >= 15, 90)
            client.send("start_challenges", {"count": 1, "kinds": ["turn_left"]}, cid="go")
            assert await client.wait_for(lambda: any(m.get("id") == "go" for m in client.of_type("ack")), 10)
            assert next(m for m in client.of_type("ack") if m["id"] == "go")["ok"]

            def ev(kind: str) -> list[dict]:
                return [m for m in client.of_type("event") if m["kind"] == kind]

            assert await client.wait_for(lambda: bool(ev("challenge.result")), 60), client.of_type("event")
            prompt, result = ev("challenge.prompt")[0], ev("challenge.result")[0]
            assert prompt["data"]["kind"] == "turn_left" and "left" in prompt["message"]
            assert result["data"]["kind"] == "turn_left" and result["data"]["passed"] is False
            await client.close()

    run(main())


def test_candidate_link_survives_a_malformed_offer(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            url = s["candidate_offer_url"]
            async with http.post(url, data="not json") as r:
                assert r.status == 400
            async with http.post(url, json={"type": "offer", "sdp": "v=0"}) as r:
                assert r.status == 400, "no video section"
            async with http.post(url, json={"type": "offer", "sdp": "v=0\r\nm=video nonsense\r\n"}) as r:
                assert r.status == 400, "an SDP aiortc cannot use"
            async with http.get(f"{base}/api/sessions/{s['id']}", headers=AUTH) as r:
                assert (await r.json())["state"] == "created"
            cand = Client(FrameTrack(disc_frame, fps=30))
            await cand.connect(url)  # the link still works after three bad tries
            assert await cand.wait_for(lambda: cand.opened.is_set(), 20)
            other = Client(FrameTrack(disc_frame, fps=30))
            with pytest.raises(RuntimeError, match="404"):
                await other.connect(url)  # and is spent by the answered one
            await other.close()
            await cand.close()

    run(main())


def test_failing_store_keeps_the_analysis_and_the_data(tmp_path, monkeypatch):
    from liveness.apps.serve import store as _store

    real = _store.Store.add_seconds
    fails = {"n": 0}

    def flaky(self, sid, rows):
        if fails["n"] < 3:
            fails["n"] += 1
            raise OSError("disk full")
        return real(self, sid, rows)

    monkeypatch.setattr(_store.Store, "add_seconds", flaky)

    async def main() -> None:
        async with running_server(_opts(tmp_path), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: any(e["kind"] == "error.store" for e in client.of_type("event")), 60)
            n = len(client.of_type("result"))
            assert await client.wait_for(lambda: len(client.of_type("result")) >= n + 30, 60), "analysis goes on"
            assert await client.wait_for(lambda: fails["n"] >= 3, 30)
            await asyncio.sleep(2.5)  # a retry after the store recovered
            async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            secs = [row["second"] for row in rep["seconds"]]
            assert secs and secs == sorted(set(secs)), "rows kept across the failures, none twice"
            assert secs[0] == 0 and secs[-1] - secs[0] + 1 == len(secs), "no second lost"
            await client.close()

    run(main())


def test_result_rate_limit_holds_on_average(tmp_path):
    async def main() -> None:
        async with running_server(_opts(tmp_path, result_hz=5.0), disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            s = await _create(http, base)
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 3, 30)
            t0, n0 = time.monotonic(), len(client.of_type("result"))
            await asyncio.sleep(4.0)
            span, n = time.monotonic() - t0, len(client.of_type("result")) - n0
            st = client.of_type("status")[-1]["counters"]
            assert st["analysed"] > 3 * st["results_sent"], "most analysed frames were held back"
            # 5 per second on average, plus at most one second of credit
            assert n <= 5 * span + 5 + 1, (n, span)
            await client.close()

    run(main())


def test_app_runs_opencv_single_threaded(tmp_path):
    """As under the command line: the embedded server's OpenCV pool cost CPU, gained nothing."""
    import cv2

    from liveness.apps.serve import create_app
    from liveness.apps.serve.app import KEY_STATE

    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        app = create_app(_opts(tmp_path))
        assert cv2.getNumThreads() == 1
        app[KEY_STATE].store.close()
    finally:
        cv2.setNumThreads(before)
