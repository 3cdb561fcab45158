"""Retention: what the server stores is deleted once it is older than a number of days, never
before and never without being asked. ``liveness serve --retention-days N`` purges hourly;
``liveness purge --days N`` does it once, on demand (``--dry-run`` only counts).

What goes: live sessions that have ended (or whose link expired unused) with their events,
per-second rows and thumbnails; REST reviews that are done or failed, with any upload kept on
disk (``--keep-uploads``) and the face-gallery entries made from them; webhook deliveries that
were delivered or gave up. Age counts from the end (a session's end, a review's finish), else
the creation. What is still running or waiting (a live or connecting session, a link still
open, a queued or running review, a delivery still being retried) is never deleted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from liveness.apps.serve.store import Store

__all__ = ["PurgeResult", "add_purge_parser", "purge"]

_SESSIONS = ("(state IN ('ended', 'expired') AND COALESCE(ended, created) < ?)"
             " OR (state = 'created' AND token_expires IS NOT NULL AND token_expires < ?)")
_REVIEWS = "status IN ('done', 'failed') AND COALESCE(finished, created) < ?"
_DELIVERIES = "status IN ('delivered', 'failed') AND COALESCE(delivered, last_attempt, created) < ?"


@dataclass(frozen=True)
class PurgeResult:
    """How many of each were deleted (or, for a dry run, would be)."""

    cutoff: float
    sessions: int
    reviews: int
    files: int
    deliveries: int
    gallery: int
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "sessions": self.sessions, "reviews": self.reviews, "files": self.files,
                "deliveries": self.deliveries, "gallery": self.gallery, "dry_run": self.dry_run}


def purge(store: Store, days: float, now: float | None = None, dry_run: bool = False) -> PurgeResult:
    """Delete what is older than ``days`` (see the module); synchronous, on the caller's
    thread (the server runs it on the store's writer thread)."""
    if not days > 0:
        raise ValueError(f"days must be > 0, got {days}")
    cutoff = (time.time() if now is None else now) - days * 86400.0
    db = store.db
    sids = [r[0] for r in db.fetchall(f"SELECT id FROM sessions WHERE {_SESSIONS}", (cutoff, cutoff))]
    reviews = db.fetchall(f"SELECT id, scope, video_path, references_json FROM reviews WHERE {_REVIEWS}", (cutoff,))
    files = [Path(p) for _, _, video, refs in reviews for p in [video, *json.loads(refs or "[]")] if p]
    files = [p for p in files if p.is_file()]
    sources = [(scope, f"{kind}:{rid}") for rid, scope, _, _ in reviews for kind in ("review", "reference")]
    row = db.fetchone(f"SELECT COUNT(*) FROM webhook_deliveries WHERE {_DELIVERIES}", (cutoff,))
    deliveries = int(row[0]) if row else 0
    gallery = sum(int((db.fetchone("SELECT COUNT(*) FROM gallery WHERE scope = ? AND source = ?", s) or (0,))[0])
                  for s in sources)
    if not dry_run:
        with db.transaction():
            for sid in sids:
                for table in ("thumbnails", "seconds", "events"):
                    db.execute(f"DELETE FROM {table} WHERE session_id = ?", (sid,))
                db.execute("DELETE FROM sessions WHERE id = ?", (sid,))
            for rid, *_ in reviews:
                db.execute("DELETE FROM reviews WHERE id = ?", (rid,))
            for s in sources:
                db.execute("DELETE FROM gallery WHERE scope = ? AND source = ?", s)
            db.execute(f"DELETE FROM webhook_deliveries WHERE {_DELIVERIES}", (cutoff,))
        for p in files:  # after the rows: a failure here leaves files, never rows without them
            with contextlib.suppress(OSError):
                p.unlink()
    return PurgeResult(cutoff, len(sids), len(reviews), len(files), deliveries, gallery, dry_run)


def add_purge_parser(subparsers: Any) -> argparse.ArgumentParser:
    from liveness.apps.serve.options import default_db_path

    p = subparsers.add_parser(
        "purge", help="delete what liveness serve stored that is older than N days",
        description="Delete ended live sessions (events, per-second rows, thumbnails), finished REST reviews "
                    "(with kept uploads and their face-gallery entries) and finished webhook deliveries older "
                    "than --days. Nothing running or waiting is touched.")
    p.add_argument("--days", type=float, required=True, help="delete what is older than this many days")
    p.add_argument("--db", default=None, help=f"the server's database (default {default_db_path()}) or a postgresql:// URL")
    p.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    p.set_defaults(func=run_purge)
    return p


def run_purge(args: argparse.Namespace) -> int:
    from liveness.apps.serve.db import redact
    from liveness.apps.serve.options import default_db_path
    from liveness.core.errors import ConfigError

    if not args.days > 0:
        raise ConfigError("--days must be > 0")
    db = args.db or default_db_path()
    if db != ":memory:" and "://" not in db and not Path(db).expanduser().is_file():
        raise ConfigError(f"no database at {db}")
    store = Store(db)
    try:
        r = purge(store, args.days, dry_run=args.dry_run)
    finally:
        store.close()
    verb = "would delete" if r.dry_run else "deleted"
    print(f"liveness purge: {verb} {r.sessions} sessions, {r.reviews} reviews ({r.files} files), "
          f"{r.deliveries} webhook deliveries, {r.gallery} gallery entries older than {args.days:g} days "
          f"from {redact(db)}", file=sys.stderr)
    return 0
