"""Server faults: a stream that dies mid-call ends only its own session (the record is kept),
and a process killed (-9) in the middle of store writes leaves a consistent database."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

pytest.importorskip("aiortc")

from liveness.apps.serve import ServeOptions  # noqa: E402
from liveness.apps.serve.store import Store  # noqa: E402
from tests._serve_util import Client, FrameTrack, disc_factory, disc_frame, running_server  # noqa: E402

KEY = "test-key-0123456789"
AUTH = {"X-API-Key": KEY}


def _dying_track(after: int) -> object:
    """A camera that stops sending after ``after`` frames while the connection stays up."""
    from aiortc.mediastreams import MediaStreamError

    track = FrameTrack(disc_frame, fps=30)
    recv = track.recv

    async def recv_until() -> object:
        if track.i >= after:
            raise MediaStreamError  # the sender stops; no RTP, no close
        return await recv()

    track.recv = recv_until
    return track


def test_a_stream_that_dies_mid_call_ends_its_session_and_not_another(tmp_path: Path) -> None:
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "s.sqlite3"), threads=2, media_timeout_s=2.0)

    async def main() -> None:
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            ids = []
            for _ in range(2):
                async with http.post(f"{base}/api/sessions", json={}, headers=AUTH) as r:
                    ids.append(await r.json())
            dying, steady = Client(_dying_track(45)), Client(FrameTrack(disc_frame, fps=30))
            await dying.connect(ids[0]["offer_url"], AUTH)
            await steady.connect(ids[1]["offer_url"], AUTH)
            assert await dying.wait_for(lambda: dying.bye.is_set(), 60), "the silent session ends"
            assert dying.of_type("bye")[0]["reason"] == "no media for 2 s"
            n = len(steady.of_type("result"))
            assert await steady.wait_for(lambda: len(steady.of_type("result")) >= n + 20, 30), "the other goes on"
            assert not steady.bye.is_set()
            async with http.get(f"{base}/api/sessions/{ids[0]['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            assert rep["session"]["state"] == "ended" and rep["session"]["end_reason"] == "no media for 2 s"
            assert rep["session"]["counters"]["analysed"] >= 30 and rep["seconds"], "the record is kept"
            await dying.close()
            await steady.close()

    asyncio.run(asyncio.wait_for(main(), 120))


_WRITER = """
import sys, time
from liveness.apps.serve.store import Store
s = Store(sys.argv[1])
i = 0
while True:
    sid = f"{i:016x}"
    s.create_session(sid, "kill test", None, None, {})
    s.add_events(sid, [{"t": float(k), "kind": "tick", "message": f"batch {i}", "data": {"k": k}} for k in range(200)])
    s.add_seconds(sid, [{"second": k, "frames": 15, "face_fraction": 1.0, "signals": {"x": 0.5}} for k in range(60)])
    s.set_state(sid, "ended", ended=time.time(), end_reason="done")
    if i == 0:
        print("writing", flush=True)
    i += 1
"""


def test_kill_9_during_store_writes_leaves_a_consistent_database(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite3"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
        time.sleep(1.0)  # well inside the write loop
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    store = Store(str(db))  # opens (the WAL is replayed), migrations intact
    try:
        assert store.db.fetchone("PRAGMA integrity_check") == ("ok",)
        assert store.db.fetchall("PRAGMA foreign_key_check") == []
        rows = store.db.fetchall("SELECT session_id, COUNT(*) FROM events GROUP BY session_id")
        assert len(rows) >= 2, "the writer got going"
        assert all(n == 200 for _, n in rows), "a batch of events is stored whole or not at all"
        secs = store.db.fetchall("SELECT session_id, COUNT(*) FROM seconds GROUP BY session_id")
        assert all(n == 60 for _, n in secs)
        for sid, _ in rows:
            assert store.get_session(sid) is not None
            assert json.loads(json.dumps(store.events(sid)))[0]["kind"] == "tick"
        store.create_session("f" * 16, "after restart", None, None, {})  # and it takes writes
        assert store.get_session("f" * 16)["label"] == "after restart"
    finally:
        store.close()


def test_a_locked_database_does_not_stall_the_analysis_and_loses_nothing(tmp_path: Path) -> None:
    import sqlite3
    import threading

    db = tmp_path / "s.sqlite3"
    opts = ServeOptions(api_key=KEY, db=str(db), threads=2)
    hold_s = 8.0  # past SQLite's 5-s busy wait: writes fail with "database is locked"

    def lock() -> None:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        time.sleep(hold_s)
        other.execute("ROLLBACK")
        other.close()

    async def main() -> None:
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={}, headers=AUTH) as r:
                s = await r.json()
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 30, 60)
            locker = threading.Thread(target=lock)
            locker.start()
            await asyncio.sleep(0.5)
            n0, t0 = len(client.of_type("result")), time.monotonic()
            await asyncio.sleep(hold_s - 2.0)
            rate = (len(client.of_type("result")) - n0) / (time.monotonic() - t0)
            assert rate >= 10, f"the analysis stalled behind the locked database ({rate:.1f} results/s)"
            await asyncio.to_thread(locker.join)
            assert any(e["kind"] == "error.store" for e in client.of_type("event"))
            await asyncio.sleep(2.5)  # a retry after the lock is gone
            async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                assert r.status == 200
            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            secs = [row["second"] for row in rep["seconds"]]
            assert secs and secs[0] == 0 and secs == list(range(len(secs))), "no second lost or stored twice"
            assert rep["session"]["end_reason"] == "stopped through the API"
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 120))


def test_a_session_that_ends_while_the_database_is_locked_is_stored_once_it_frees(tmp_path: Path) -> None:
    import sqlite3
    import threading

    db = tmp_path / "s.sqlite3"
    opts = ServeOptions(api_key=KEY, db=str(db), threads=2)
    locked = threading.Event()

    def lock() -> None:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(11.0)  # past two of SQLite's 5-s busy waits: the write in flight and the first final one fail
        other.execute("ROLLBACK")
        other.close()

    async def main() -> None:
        async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/sessions", json={}, headers=AUTH) as r:
                s = await r.json()
            client = Client(FrameTrack(disc_frame, fps=30))
            await client.connect(s["offer_url"], AUTH)
            assert await client.wait_for(lambda: len(client.of_type("result")) >= 60, 60)
            locker = threading.Thread(target=lock)
            locker.start()
            await asyncio.to_thread(locked.wait)
            async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                assert r.status == 200  # answered once the end is stored
            await asyncio.to_thread(locker.join)
            async with http.get(f"{base}/api/sessions/{s['id']}/report", headers=AUTH) as r:
                rep = await r.json()
            assert rep["session"]["state"] == "ended" and rep["session"]["end_reason"] == "stopped through the API"
            secs = [row["second"] for row in rep["seconds"]]
            assert secs and secs == list(range(len(secs))) and len(secs) >= 2, secs
            assert any(e["kind"] == "session.ended" for e in rep["events"])
            assert rep["session"]["counters"]["analysed"] >= 60
            await client.close()

    asyncio.run(asyncio.wait_for(main(), 120))
