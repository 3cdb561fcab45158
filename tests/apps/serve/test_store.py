"""The server's store on SQLite and on a real PostgreSQL (a throw-away cluster started here, see
tests/_postgres.py; those cases skip with the reason where it cannot start): one schema and
its migrations, sessions and their records, webhook deliveries, the face gallery."""

from __future__ import annotations

import sqlite3
import time

import numpy as np
import pytest

from liveness.apps.serve.gallery import Gallery
from liveness.apps.serve.schema import MIGRATIONS, migrate, schema_version
from liveness.apps.serve.store import Store
from liveness.apps.serve.webhooks import Webhooks
from liveness.core.errors import ConfigError

SID = "0123456789abcdef"


def test_schema_and_migrations_are_applied_once(db_url: str):
    s = Store(db_url)
    assert schema_version(s.db) == MIGRATIONS[-1][0]
    assert migrate(s.db) == [], "nothing left to apply"
    s.close()
    s2 = Store(db_url)  # reopening applies nothing and keeps the data
    assert schema_version(s2.db) == MIGRATIONS[-1][0]
    n = s2.db.fetchone("SELECT COUNT(*) FROM schema_migrations")
    assert n is not None and n[0] == len(MIGRATIONS)
    s2.close()


def test_sessions_events_seconds_thumbnails_round_trip(db_url: str):
    s = Store(db_url)
    now = time.time()
    s.create_session(SID, "Interview 1", "hash-1", now + 60, {"token_ttl_s": 60})
    assert s.consume_token("hash-1", now) == SID
    assert s.consume_token("hash-1", now) is None, "single use"
    s.set_state(SID, "live", source="camera", started=now)
    s.add_events(SID, [{"t": 0.25, "kind": "quality", "message": "dim", "data": {"x": 1}},
                       {"t": 1.5, "kind": "challenge.result", "message": "ok"}])
    s.add_seconds(SID, [{"second": 0, "frames": 10, "face_fraction": 0.5, "yaw": 1.0, "signals": {"a": 0.1}}])
    s.add_seconds(SID, [{"second": 0, "frames": 12, "face_fraction": 0.75, "yaw": 2.0, "signals": {"a": 0.2}},
                        {"second": 1, "frames": 11, "face_fraction": 1.0, "signals": {}}])
    tid = s.add_thumbnail(SID, 0.5, "event", b"\xff\xd8jpeg\x00bytes")
    s.save_summary(SID, {"received": 3}, {"a": {"value": 0.2}}, {"label": "no_signs", "risk": 0.1})
    row = s.get_session(SID)
    assert row is not None and row["state"] == "live" and row["source"] == "camera"
    assert row["started"] == pytest.approx(now, abs=1e-6), "timestamps keep their precision (8-byte floats)"
    assert row["verdict"] == {"label": "no_signs", "risk": 0.1} and row["options"] == {"token_ttl_s": 60}
    assert [e["kind"] for e in s.events(SID)] == ["quality", "challenge.result"]
    assert s.events(SID)[0]["data"] == {"x": 1}
    assert [(r["second"], r["frames"], r["face_fraction"]) for r in s.seconds(SID)] == [(0, 12, 0.75), (1, 11, 1.0)]
    assert tid > 0 and s.thumbnail(SID, tid) == b"\xff\xd8jpeg\x00bytes"
    assert [t["id"] for t in s.thumbnails(SID)] == [tid]
    assert s.mark_interrupted() == 1 and s.get_session(SID)["end_reason"] == "server restarted"  # type: ignore[index]
    assert [r["id"] for r in s.list_sessions()] == [SID]
    s.close()


def test_webhook_deliveries_are_leased_retried_and_listed(db_url: str):
    s = Store(db_url)
    w = Webhooks(s, "http://127.0.0.1:9/hook", "secret", max_attempts=2, backoff_s=10.0)
    did = w._insert("review.completed", "r1", b'{"event": "review.completed"}')
    now = time.time()
    got = w._claim(now + 1)
    assert [g[0] for g in got] == [did] and got[0][3] == '{"event": "review.completed"}'
    assert w._claim(now + 1) == [], "a leased delivery is not handed out twice"
    w._record(did, 1, 500, "HTTP 500")
    (row,) = w.list()
    assert row["status"] == "pending" and row["attempts"] == 1 and row["last_status"] == 500
    assert row["next_attempt"] >= now + 9.5, "backoff"
    w._record(did, 2, None, "ConnectionRefusedError")
    assert w.list()[0]["status"] == "failed", "given up after max_attempts"
    d2 = w._insert("session.ended", "s1", b"{}")
    w._record(d2, 1, 204, None)
    assert {r["id"]: r["status"] for r in w.list()} == {did: "failed", d2: "delivered"}
    assert [r["id"] for r in w.list(status="delivered")] == [d2]
    s.close()


def test_gallery_searches_other_candidates_and_forgets(db_url: str):
    s = Store(db_url)
    g = Gallery(s, threshold=0.35, retention_days=30)
    rng = np.random.default_rng(0)
    alice, bob = rng.normal(size=128).astype(np.float32), rng.normal(size=128).astype(np.float32)
    alice, bob = alice / np.linalg.norm(alice) * 0.6, bob / np.linalg.norm(bob) * 0.6
    assert g.add("k1", "alice", "review:a1", [alice]) == 1
    assert g.add("k1", "bob", "review:b1", [bob, bob + 0.01]) == 2
    assert g.add("k2", "carol", "review:c1", [alice]) == 1  # another API key
    near = alice + 0.01
    hits = g.search("k1", near)
    assert [m.candidate for m in hits] == ["alice"] and hits[0].distance < 0.2
    assert hits[0].to_dict()["note"] == "possible match — for human review"
    assert g.search("k1", near, exclude="alice") == [], "a candidate is not matched with itself"
    assert [m.candidate for m in g.search("k2", near)] == ["carol"], "per API key"
    assert {c["candidate"]: c["entries"] for c in g.candidates("k1")} == {"alice": 1, "bob": 2}
    assert g.delete_candidate("k1", "bob") == 2 and g.search("k1", bob) == []
    raw = s.db.fetchone("SELECT embedding FROM gallery WHERE candidate = 'alice'")
    assert raw is not None and len(bytes(raw[0])) == 512, "an embedding only: 128 float32"
    assert g.purge(now=time.time() + 29 * 86400) == 0
    assert g.purge(now=time.time() + 31 * 86400) == 2
    assert g.search("k1", near) == [] and g.search("k2", near) == []
    s.close()


def test_an_sqlite_file_from_before_migrations_is_taken_over(tmp_path):
    """A database made by the server before it had migrations (the original tables, no
    schema_migrations) keeps its sessions and gains the new tables."""
    path = tmp_path / "old.sqlite3"
    c = sqlite3.connect(path)
    c.executescript(
        "CREATE TABLE sessions (id TEXT PRIMARY KEY, created REAL NOT NULL, label TEXT NOT NULL DEFAULT '',"
        " state TEXT NOT NULL, token_hash TEXT UNIQUE, token_expires REAL, token_used REAL, source TEXT,"
        " started REAL, ended REAL, end_reason TEXT, counters_json TEXT, signals_json TEXT,"
        " verdict_json TEXT, options_json TEXT);"
        f"INSERT INTO sessions (id, created, state) VALUES ('{SID}', 1.0, 'ended');"
    )
    c.commit()
    c.close()
    s = Store(str(path))
    assert s.get_session(SID)["state"] == "ended"  # type: ignore[index]
    assert schema_version(s.db) == MIGRATIONS[-1][0]
    assert s.db.fetchone("SELECT COUNT(*) FROM reviews") == (0,)
    s.close()


def test_a_database_that_cannot_be_reached_is_a_config_error(tmp_path):
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError, match="cannot connect") as e:
        Store(f"postgresql://u:hunter2@/x?host={tmp_path}&connect_timeout=2")
    assert "hunter2" not in str(e.value), "the password is not repeated"
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError):
        Store(str(tmp_path / "f" / "db.sqlite3"))


def test_a_postgresql_connection_lost_is_opened_again(postgres: str):
    """The server's connection is cut (a database restart, an idle timeout): the next call
    reconnects and the data is there."""
    import psycopg

    from tests.apps.serve.conftest import fresh_pg

    s = Store(fresh_pg(postgres))
    s.create_session(SID, "x", None, None, {})
    pid = s.db.fetchone("SELECT pg_backend_pid()")[0]  # type: ignore[index]
    with psycopg.connect(postgres, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (pid,))
    time.sleep(0.2)
    assert s.get_session(SID)["label"] == "x"  # type: ignore[index]
    assert s.db.fetchone("SELECT pg_backend_pid()")[0] != pid  # type: ignore[index]
    s.close()
