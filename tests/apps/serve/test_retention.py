"""Retention: ``purge`` deletes what is older than N days, and only what has finished; the
server does it hourly with ``retention_days`` and ``liveness purge`` on demand."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from liveness.apps.cli import main
from liveness.apps.serve.retention import purge
from liveness.apps.serve.store import Store

DAY = 86400.0
NOW = 1_800_000_000.0


def _fill(store: Store, uploads: Path) -> None:
    """Old and new sessions, reviews, deliveries and gallery rows, finished and not."""
    def session(sid: str, created: float, state: str, ended: float | None = None, expires: float | None = None) -> None:
        store.create_session(sid, sid, f"h{sid}", expires, {})
        store.db.execute("UPDATE sessions SET created = ?, state = ?, ended = ? WHERE id = ?", (created, state, ended, sid))
        store.add_events(sid, [{"t": 1.0, "kind": "k", "message": "m"}])
        store.add_seconds(sid, [{"second": 0, "frames": 1, "face_fraction": 1.0, "signals": {}}])
        store.add_thumbnail(sid, 1.0, "k", b"jpeg")

    session("a" * 16, NOW - 40 * DAY, "ended", NOW - 40 * DAY)           # old, ended: goes
    session("b" * 16, NOW - 40 * DAY, "ended", NOW - 5 * DAY)            # old but ended lately: stays
    session("c" * 16, NOW - 40 * DAY, "live")                            # still live: stays
    session("d" * 16, NOW - 40 * DAY, "created", expires=NOW - 39 * DAY)  # link expired unused: goes
    session("e" * 16, NOW - 40 * DAY, "created", expires=NOW + DAY)      # link still open: stays
    kept = uploads / "old.video.mp4"
    kept.write_bytes(b"video")
    for rid, status, finished, path in (("1" * 16, "done", NOW - 31 * DAY, str(kept)),
                                        ("2" * 16, "failed", NOW - 2 * DAY, None),
                                        ("3" * 16, "queued", None, None)):
        store.db.execute("INSERT INTO reviews (id, scope, created, status, finished, metadata_json, video_path,"
                         " references_json) VALUES (?, 'local', ?, ?, ?, ?, ?, '[]')",
                         (rid, NOW - 40 * DAY, status, finished, "{}", path))
    for did, status, created in (("w1", "delivered", NOW - 40 * DAY), ("w2", "pending", NOW - 40 * DAY),
                                 ("w3", "failed", NOW - DAY)):
        store.db.execute("INSERT INTO webhook_deliveries (id, event, subject, url, body, created, status, attempts,"
                         " next_attempt) VALUES (?, 'e', 's', 'http://x', ?, ?, ?, 1, ?)", (did, "{}", created, status, created))
    emb = np.zeros(128, np.float32).tobytes()
    for source in (f"review:{'1' * 16}", f"review:{'2' * 16}"):
        store.db.execute("INSERT INTO gallery (scope, candidate, source, created, model_sha256, embedding)"
                         " VALUES ('local', 'c', ?, ?, 'm', ?)", (source, NOW - 40 * DAY, emb))


def _ids(store: Store, table: str) -> set[str]:
    return {r[0] for r in store.db.fetchall(f"SELECT id FROM {table}")}


def test_purge_deletes_only_what_is_old_and_finished(tmp_path: Path, db_url: str) -> None:
    store = Store(db_url)
    try:
        _fill(store, tmp_path)
        before = {t: _ids(store, t) for t in ("sessions", "reviews", "webhook_deliveries")}
        dry = purge(store, 30, now=NOW, dry_run=True)
        assert (dry.sessions, dry.reviews, dry.files, dry.deliveries, dry.gallery) == (2, 1, 1, 1, 1)
        assert {t: _ids(store, t) for t in before} == before and (tmp_path / "old.video.mp4").is_file()

        r = purge(store, 30, now=NOW)
        assert (r.sessions, r.reviews, r.files, r.deliveries, r.gallery, r.dry_run) == (2, 1, 1, 1, 1, False)
        assert _ids(store, "sessions") == {"b" * 16, "c" * 16, "e" * 16}
        assert _ids(store, "reviews") == {"2" * 16, "3" * 16}
        assert _ids(store, "webhook_deliveries") == {"w2", "w3"}
        assert [s for (s,) in store.db.fetchall("SELECT source FROM gallery")] == [f"review:{'2' * 16}"]
        for table in ("events", "seconds", "thumbnails"):  # nothing left behind of a deleted session
            left = {s for (s,) in store.db.fetchall(f"SELECT DISTINCT session_id FROM {table}")}
            assert left == {"b" * 16, "c" * 16, "e" * 16}, table
        assert not (tmp_path / "old.video.mp4").exists()
        assert purge(store, 30, now=NOW).sessions == 0  # nothing more
        with pytest.raises(ValueError):
            purge(store, 0)
    finally:
        store.close()


def test_liveness_purge_on_demand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "s.sqlite3"
    store = Store(str(db))
    store.create_session("a" * 16, "old", None, None, {})
    store.db.execute("UPDATE sessions SET state = 'ended', created = ?, ended = ?",
                     (time.time() - 10 * DAY, time.time() - 10 * DAY))
    store.create_session("b" * 16, "new", None, None, {})
    store.set_state("b" * 16, "ended", ended=time.time())
    store.close()
    assert main(["purge", "--days", "7", "--db", str(db), "--dry-run"]) == 0
    assert "would delete 1 sessions" in capsys.readouterr().err
    assert main(["purge", "--days", "7", "--db", str(db)]) == 0
    assert "deleted 1 sessions" in capsys.readouterr().err
    store = Store(str(db))
    assert _ids(store, "sessions") == {"b" * 16}
    store.close()
    assert main(["purge", "--days", "7", "--db", str(tmp_path / "nothing.sqlite3")]) == 2  # no database made
    assert "no database" in capsys.readouterr().err and not (tmp_path / "nothing.sqlite3").exists()
    with pytest.raises(SystemExit):
        main(["purge", "--db", str(db)])  # --days is required: nothing is deleted without a number


def test_the_server_purges_with_retention_days(tmp_path: Path) -> None:
    pytest.importorskip("aiortc")
    import asyncio

    import aiohttp

    from liveness.apps.serve import ServeOptions
    from tests._serve_util import running_server

    db = tmp_path / "s.sqlite3"
    store = Store(str(db))
    store.create_session("a" * 16, "old", None, None, {})
    store.db.execute("UPDATE sessions SET state = 'ended', created = ?, ended = ?",
                     (time.time() - 10 * DAY, time.time() - 10 * DAY))
    store.close()

    async def go(days: float | None) -> list[str]:
        opts = ServeOptions(api_key="test-key-0123456789", db=str(db), threads=1, retention_days=days)
        async with running_server(opts, None) as (base, _app), aiohttp.ClientSession() as http:
            await asyncio.sleep(0.5)
            async with http.get(f"{base}/api/sessions", headers={"X-API-Key": "test-key-0123456789"}) as r:
                return [s["id"] for s in (await r.json())["sessions"]]

    assert asyncio.run(go(None)) == ["a" * 16], "without retention nothing is deleted"
    assert asyncio.run(go(7)) == [], "with it, what is older goes at start"
    assert json.loads(json.dumps(ServeOptions(retention_days=None).retention_days)) is None
    with pytest.raises(Exception, match="retention_days"):
        ServeOptions(retention_days=0)
