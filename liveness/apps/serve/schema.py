"""The server's schema as numbered migrations, the same for SQLite and PostgreSQL.

Each migration is applied once, in order, inside one transaction, and recorded in
``schema_migrations``; a database made by an older version is brought up to date when the
server opens it (migration 1 is the original schema, written ``IF NOT EXISTS`` so the files of
servers from before migrations existed are taken over as they are). Add a migration by
appending to :data:`MIGRATIONS`; never edit one that has shipped. Types that differ between
the engines are written ``{real}``, ``{blob}``, ``{serial}`` (:mod:`.db`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from liveness.apps.serve.db import Database

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "sessions, events, per-second summaries, thumbnails", (
        """CREATE TABLE IF NOT EXISTS sessions (
            id TEXT PRIMARY KEY,
            created {real} NOT NULL,
            label TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL,
            token_hash TEXT UNIQUE,
            token_expires {real},
            token_used {real},
            source TEXT,
            started {real},
            ended {real},
            end_reason TEXT,
            counters_json TEXT,
            signals_json TEXT,
            verdict_json TEXT,
            options_json TEXT
        )""",
        """CREATE TABLE IF NOT EXISTS events (
            id {serial},
            session_id TEXT NOT NULL REFERENCES sessions(id),
            t {real} NOT NULL,
            wall {real} NOT NULL,
            kind TEXT NOT NULL,
            message TEXT NOT NULL,
            data_json TEXT NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS events_session ON events(session_id, t)",
        """CREATE TABLE IF NOT EXISTS seconds (
            session_id TEXT NOT NULL REFERENCES sessions(id),
            second INTEGER NOT NULL,
            frames INTEGER NOT NULL,
            face_fraction {real} NOT NULL,
            yaw {real}, pitch {real}, roll {real},
            signals_json TEXT NOT NULL,
            PRIMARY KEY (session_id, second)
        )""",
        """CREATE TABLE IF NOT EXISTS thumbnails (
            id {serial},
            session_id TEXT NOT NULL REFERENCES sessions(id),
            t {real} NOT NULL,
            reason TEXT NOT NULL,
            jpeg {blob} NOT NULL
        )""",
    )),
    (2, "recordings over REST, webhook deliveries, the face-reuse gallery", (
        """CREATE TABLE reviews (
            id TEXT PRIMARY KEY,
            scope TEXT NOT NULL,
            created {real} NOT NULL,
            status TEXT NOT NULL,
            started {real},
            finished {real},
            candidate TEXT,
            metadata_json TEXT NOT NULL,
            video_path TEXT,
            video_name TEXT,
            video_bytes BIGINT,
            references_json TEXT NOT NULL,
            error TEXT,
            review_json TEXT,
            verdict_json TEXT,
            matches_json TEXT
        )""",
        "CREATE INDEX reviews_status ON reviews(status, created)",
        """CREATE TABLE webhook_deliveries (
            id TEXT PRIMARY KEY,
            event TEXT NOT NULL,
            subject TEXT NOT NULL,
            url TEXT NOT NULL,
            body TEXT NOT NULL,
            created {real} NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt {real} NOT NULL,
            last_attempt {real},
            last_status INTEGER,
            last_error TEXT,
            delivered {real}
        )""",
        "CREATE INDEX webhook_due ON webhook_deliveries(status, next_attempt)",
        """CREATE TABLE gallery (
            id {serial},
            scope TEXT NOT NULL,
            candidate TEXT NOT NULL,
            source TEXT NOT NULL,
            created {real} NOT NULL,
            model_sha256 TEXT NOT NULL,
            embedding {blob} NOT NULL
        )""",
        "CREATE INDEX gallery_candidate ON gallery(scope, candidate)",
    )),
)


def schema_version(db: Database) -> int:
    row = db.fetchone("SELECT MAX(version) FROM schema_migrations")
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: Database) -> list[int]:
    """Apply the migrations ``db`` lacks; returns their numbers. Several servers opening one
    PostgreSQL database at once apply each migration once (an advisory lock)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied {real} NOT NULL)")
    done: list[int] = []
    for version, _what, statements in MIGRATIONS:
        with db.transaction():
            if db.dialect == "postgres":
                db.execute("SELECT pg_advisory_xact_lock(7317001)")
            if db.fetchone("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)):
                continue
            for s in statements:
                db.execute(s)
            db.execute("INSERT INTO schema_migrations (version, applied) VALUES (?, ?)", (version, time.time()))
            done.append(version)
    return done
