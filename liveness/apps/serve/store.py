"""The server's storage: sessions, events, per-second signal summaries, verdicts and (only
when enabled) evidence thumbnails; SQLite by default, PostgreSQL for ``postgresql://`` URLs
(:mod:`.db`, one schema and its migrations in :mod:`.schema`). No live video is ever stored.
Recordings sent over REST, webhook deliveries and the face gallery keep their own tables, read
and written by :mod:`.reviews`, :mod:`.webhooks` and :mod:`.gallery` through :attr:`Store.db`.

All methods are synchronous and thread-safe; the server calls them through one dedicated
writer thread (:meth:`Store.call`) so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from liveness.apps.serve.db import Database, open_database
from liveness.apps.serve.schema import migrate
from liveness.core.errors import ConfigError

__all__ = ["Store"]

T = TypeVar("T")

_SESSION_COLS = (
    "id", "created", "label", "state", "token_expires", "token_used", "source", "started",
    "ended", "end_reason", "counters_json", "signals_json", "verdict_json", "options_json",
)


class Store:
    """``Store(db)``: an SQLite path (parent folders are created), ``":memory:"``, or a
    ``postgresql://`` URL. Opening it applies the schema's missing migrations."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db: Database = open_database(path)
        try:
            migrate(self.db)
        except self.db.errors as exc:
            self.db.close()
            raise ConfigError(f"cannot prepare database {self.db.label}: {exc}") from exc
        self._db, self._lock = self.db, self.db.lock  # execute(sql with ? placeholders).fetchone()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="liveness-store")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the store's writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.db.close()

    def _exec(self, sql: str, params: tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql, params)

    # -- sessions --------------------------------------------------------------------------
    def create_session(
        self, sid: str, label: str, token_hash: str | None, token_expires: float | None,
        options: dict[str, Any],
    ) -> None:
        self._exec(
            "INSERT INTO sessions (id, created, label, state, token_hash, token_expires, options_json)"
            " VALUES (?, ?, ?, 'created', ?, ?, ?)",
            (sid, time.time(), label, token_hash, token_expires, json.dumps(options)),
        )

    def session_for_token(self, token_hash: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_SESSION_COLS)} FROM sessions WHERE token_hash = ?", (token_hash,)
            ).fetchone()
        return None if row is None else self._row(row)

    def consume_token(self, token_hash: str, now: float) -> str | None:
        """Mark the token used if it is unused, unexpired and its session has not ended; the
        session id, else None. (The offer is answered first, so the session may already be
        connecting or live when its link is spent.)"""
        with self._lock:
            cur = self._db.execute(
                "UPDATE sessions SET token_used = ? WHERE token_hash = ? AND token_used IS NULL"
                " AND token_expires > ? AND state != 'ended' RETURNING id",
                (now, token_hash, now),
            )
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def set_state(self, sid: str, state: str, **cols: Any) -> None:
        allowed = {"source", "started", "ended", "end_reason"}
        if set(cols) - allowed:
            raise ValueError(f"bad columns {set(cols) - allowed}")
        sets = ", ".join(["state = ?"] + [f"{k} = ?" for k in cols])
        self._exec(f"UPDATE sessions SET {sets} WHERE id = ?", (state, *cols.values(), sid))

    def save_summary(
        self, sid: str, counters: dict[str, Any], signals: dict[str, Any], verdict: dict[str, Any] | None
    ) -> None:
        self._exec(
            "UPDATE sessions SET counters_json = ?, signals_json = ?, verdict_json = ? WHERE id = ?",
            (json.dumps(counters), json.dumps(signals), json.dumps(verdict), sid),
        )

    def get_session(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_SESSION_COLS)} FROM sessions WHERE id = ?", (sid,)
            ).fetchone()
        return None if row is None else self._row(row)

    def list_sessions(self, limit: int = 100) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_SESSION_COLS)} FROM sessions ORDER BY created DESC LIMIT ?", (limit,)
            ).fetchall()
        return [self._row(r) for r in rows]

    def mark_interrupted(self) -> int:
        """Sessions left live by a previous process that stopped: mark them ended."""
        cur = self._exec(
            "UPDATE sessions SET state = 'ended', end_reason = 'server restarted', ended = ?"
            " WHERE state IN ('live', 'connecting')",
            (time.time(),),
        )
        return cur.rowcount

    @staticmethod
    def _row(row: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(_SESSION_COLS, row, strict=True))
        for k in ("counters_json", "signals_json", "verdict_json", "options_json"):
            v = d.pop(k)
            d[k[: -len("_json")]] = json.loads(v) if v else None
        return d

    # -- events, seconds, thumbnails -------------------------------------------------------
    def add_events(self, sid: str, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        now = time.time()
        rows = []
        for e in events:
            data = dict(e.get("data") or {})
            rows.append((sid, float(e["t"]), now, str(e["kind"]), str(e.get("message", "")), json.dumps(data)))
        self.db.executemany(
            "INSERT INTO events (session_id, t, wall, kind, message, data_json) VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )

    def events(self, sid: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT t, kind, message, data_json FROM events WHERE session_id = ? ORDER BY id", (sid,)
            ).fetchall()
        return [{"t": t, "kind": k, "message": m, "data": json.loads(d)} for t, k, m, d in rows]

    def add_seconds(self, sid: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.db.executemany(
            "INSERT INTO seconds (session_id, second, frames, face_fraction, yaw, pitch, roll, signals_json)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id, second) DO UPDATE SET"
            " frames = excluded.frames, face_fraction = excluded.face_fraction, yaw = excluded.yaw,"
            " pitch = excluded.pitch, roll = excluded.roll, signals_json = excluded.signals_json",
            [
                (sid, r["second"], r["frames"], r["face_fraction"], r.get("yaw"), r.get("pitch"),
                 r.get("roll"), json.dumps(r.get("signals", {})))
                for r in rows
            ],
        )

    def seconds(self, sid: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT second, frames, face_fraction, yaw, pitch, roll, signals_json FROM seconds"
                " WHERE session_id = ? ORDER BY second",
                (sid,),
            ).fetchall()
        return [
            {"second": s, "frames": f, "face_fraction": ff, "yaw": y, "pitch": p, "roll": r,
             "signals": json.loads(sj)}
            for s, f, ff, y, p, r, sj in rows
        ]

    def add_thumbnail(self, sid: str, t: float, reason: str, jpeg: bytes) -> int:
        row = self.db.fetchone(
            "INSERT INTO thumbnails (session_id, t, reason, jpeg) VALUES (?, ?, ?, ?) RETURNING id",
            (sid, t, reason, jpeg),
        )
        return int(row[0]) if row else 0

    def thumbnails(self, sid: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, t, reason FROM thumbnails WHERE session_id = ? ORDER BY t", (sid,)
            ).fetchall()
        return [{"id": i, "t": t, "reason": r} for i, t, r in rows]

    def thumbnail(self, sid: str, tid: int) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT jpeg FROM thumbnails WHERE session_id = ? AND id = ?", (sid, tid)
            ).fetchone()
        return None if row is None else bytes(row[0])
