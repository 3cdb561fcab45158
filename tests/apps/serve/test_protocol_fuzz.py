"""Protocol fuzzing of ``liveness serve`` (``benchmarks/fuzz_protocol.py`` runs thousands): a
hypothesis-chosen subset of client messages through the parser, and a short run of every kind
of case and scenario against a live server while a second session streams on unaffected."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("aiortc")

from liveness import InputError  # noqa: E402
from liveness.apps.serve import ServeOptions  # noqa: E402
from liveness.apps.serve.protocol import command_id, parse_command  # noqa: E402
from liveness.testing.fuzz_protocol import MESSAGE_MUTATIONS, bad_message  # noqa: E402
from liveness.testing.serve_fuzz import fuzz_server  # noqa: E402
from tests._serve_util import Client, FrameTrack, disc_factory, disc_frame, running_server  # noqa: E402

KEY = "test-key-0123456789"
AUTH = {"X-API-Key": KEY}


@settings(max_examples=300, deadline=None)
@given(case=st.integers(min_value=0, max_value=10**9))
def test_a_fuzzed_message_is_a_command_or_an_input_error(case: int) -> None:
    msg, mutation = bad_message(case)
    try:
        cmd = parse_command(msg)
    except InputError as exc:
        assert str(exc), mutation
    else:
        assert cmd.cmd in ("ping", "set_crop", "clear_crop", "start_challenges", "stop"), mutation
    cid = command_id(msg)  # the ack's id, even for an unreadable message
    assert cid is None or (isinstance(cid, str) and len(cid) <= 64)


def test_an_integer_too_large_for_a_float_is_an_input_error() -> None:
    # hypothesis found it: math.isfinite(10**400) raised OverflowError inside the validation
    for big in (10**400, -(10**400)):
        msg = json.dumps({"v": "liveness.dc/1", "type": "command", "cmd": "set_crop", "args": {"x": big, "y": 0, "w": 0.5, "h": 0.5}})
        with pytest.raises(InputError, match="outside"):
            parse_command(msg)


def test_every_mutation_is_drawn() -> None:
    seen = {bad_message(c)[1] for c in range(400)}
    assert seen == set(MESSAGE_MUTATIONS)


def test_deep_nesting_is_an_input_error_not_a_recursion_error() -> None:
    for text in ("[" * 5000 + "]" * 5000, '{"v": "liveness.dc/1", "args": ' + "[" * 8000 + "]" * 8000 + "}"):
        with pytest.raises(InputError, match="nested too deeply"):
            parse_command(text)
        assert command_id(text) is None


def test_nesting_is_limited_whatever_the_recursion_limit() -> None:
    # 20 levels parse under any recursion limit; the protocol refuses them itself
    deep = '{"v": "liveness.dc/1", "type": "command", "id": "a", "cmd": "ping", "args": {"x": ' + "[" * 20 + "]" * 20 + "}}"
    with pytest.raises(InputError, match="nested too deeply"):
        parse_command(deep)
    ok = parse_command('{"v": "liveness.dc/1", "type": "command", "id": "a", "cmd": "ping", "args": {}}')
    assert ok.cmd == "ping"


def test_a_fuzzed_server_stays_up_and_another_session_streams_on(tmp_path) -> None:
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=2, api_requests_per_s=10_000,
                        max_sessions=400, media_timeout_s=120)

    async def main() -> None:
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={"label": "steady"}, headers=AUTH) as r:
                s = await r.json()
            steady = Client(FrameTrack(disc_frame, fps=15))
            await steady.connect(s["offer_url"], AUTH)
            assert await steady.wait_for(lambda: len(steady.of_type("result")) >= 15, 60)
            n0, t0 = len(steady.of_type("result")), time.monotonic()
            report = await fuzz_server(base, KEY, cases=150, seed=7, scenario_every=30)
            rate = (len(steady.of_type("result")) - n0) / (time.monotonic() - t0)
            assert report.findings == (), report.findings[:5]
            kinds = dict(report.counts)
            assert set(kinds) >= {"command", "watch", "channel", "offer", "candidate_offer", "after_stop",
                                  "concurrent_offers", "concurrent_candidate", "flood"}, kinds
            assert report.answered >= 40 and report.unanswered == 0
            assert not any(code >= 500 for code, _ in report.statuses), report.statuses
            assert not steady.bye.is_set(), "the steady session was not ended"
            assert rate >= 5, f"the steady session slowed to {rate:.1f} results/s"
            async with http.get(f"{base}/api/health") as r:
                assert (await r.json())["ok"]
            await steady.close()

    asyncio.run(asyncio.wait_for(main(), 400))


def test_what_the_fuzzer_found_is_a_400(tmp_path) -> None:
    """Each of these was a 500 (an exception out of the handler) before the fuzzer found it."""
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=1)

    async def main() -> None:
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={}, headers=AUTH) as r:
                s = await r.json()
            cases = [
                (f"/api/sessions/{s['id']}/commands", b"\xff\xfe not UTF-8"),
                (f"/api/sessions/{s['id']}/commands", b'{"v": "liveness.dc/1", "type": "command", "cmd": ["ping"]}'),
                (f"/api/sessions/{s['id']}/commands", b'{"v": "liveness.dc/1", "type": "command", "cmd": "ping", "id": '
                 + b"9" * 5000 + b"}"),
                (f"/api/sessions/{s['id']}/commands", b"[" * 8000 + b"]" * 8000),
                (f"/api/sessions/{s['id']}/offer", b"[" * 100_000 + b"]" * 100_000),
                (f"/api/sessions/{s['id']}/offer", b'{"type": "offer", "sdp": ' + b"9" * 5000 + b"}"),
                (f"/api/join/{s['token']}/offer", b"[" * 100_000 + b"]" * 100_000),
                ("/api/sessions", b'{"label": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
            ]
            for path, body in cases:
                async with http.post(base + path, data=body, headers=AUTH) as r:
                    assert r.status == 400, (path, body[:40], r.status, await r.text())
                    assert "error" in await r.json()
            async with http.get(f"{base}/api/sessions/{s['id']}", headers=AUTH) as r:
                assert (await r.json())["state"] == "created", "the link still works"

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_command_flood_without_media_stays_bounded() -> None:
    """start_challenges waits for the next frame; a flood of them on a session that receives
    none is refused past a small queue instead of growing it."""
    from concurrent.futures import ThreadPoolExecutor

    from liveness.apps.serve.live import LiveSession
    from liveness.apps.serve.protocol import Command
    from liveness.apps.serve.store import Store

    store = Store(":memory:")
    try:
        live = LiveSession("a" * 16, "flood", disc_factory(challenges=True), ThreadPoolExecutor(1), store,
                           ServeOptions(db=":memory:", threads=1))
        live.core = live.factory()
        acks = [live.handle_command(Command(str(i), "start_challenges", {"count": 1})) for i in range(1000)]
        assert sum(a["ok"] for a in acks) == 16 and len(live._pending) == 16
        assert acks[-1]["error"] == "too many commands are waiting for the next frame"
    finally:
        store.close()
