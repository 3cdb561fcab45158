"""Signed webhooks: ``liveness serve --webhook URL --webhook-secret SECRET``.

Every event (``review.completed``, ``review.failed``, ``session.ended``, ``verdict.changed``)
becomes one row of ``webhook_deliveries`` *before* anything is sent, holding the exact body
bytes; a sender task POSTs due rows, and a failed attempt (no answer, a timeout, any status
but 2xx) is retried after ``backoff_s * 2**(attempt - 1)`` seconds (at most an hour) up to
``max_attempts`` times. A restarted server finds its pending rows and goes on, so a delivery is
sent at least once; receivers drop repeats by the ``X-Liveness-Delivery`` id.

Headers: ``X-Liveness-Event``, ``X-Liveness-Delivery``, ``X-Liveness-Attempt`` and
``X-Liveness-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from typing import Any

from aiohttp import web

from liveness.apps.serve.store import Store

__all__ = ["EVENTS", "KEY_WEBHOOKS", "Webhooks", "deliveries_route", "sign", "verdict_brief", "watch_live"]

log = logging.getLogger("liveness.serve.webhooks")

EVENTS = ("review.completed", "review.failed", "session.ended", "verdict.changed")
_MAX_BACKOFF_S = 3600.0
_COLS = ("id", "event", "subject", "url", "created", "status", "attempts", "next_attempt", "last_attempt",
         "last_status", "last_error", "delivered")


def sign(secret: str, body: bytes) -> str:
    """The ``X-Liveness-Signature`` value of ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verdict_brief(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    """The verdict as a webhook carries it: label, risk, reasons."""
    if not verdict:
        return None
    return {"label": verdict.get("label"), "risk": verdict.get("risk"), "reasons": list(verdict.get("reasons") or [])}


class Webhooks:
    """The delivery queue of one server. ``url`` None: events are dropped (nothing stored)."""

    def __init__(self, store: Store, url: str | None, secret: str | None, *, max_attempts: int = 10,
                 backoff_s: float = 5.0, timeout_s: float = 10.0) -> None:
        self.store = store
        self.url = url
        self.secret = secret or ""
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.url is not None

    # -- the store (writer thread) ----------------------------------------------------------
    def _insert(self, event: str, subject: str, body: bytes) -> str:
        did = secrets.token_hex(12)
        now = time.time()
        self.store.db.execute(
            "INSERT INTO webhook_deliveries (id, event, subject, url, body, created, status, attempts, next_attempt)"
            " VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)",
            (did, event, subject, self.url, body.decode("utf-8"), now, now),
        )
        return did

    def _claim(self, now: float, limit: int = 20) -> list[tuple[str, str, str, str, int]]:
        """Due pending deliveries, each leased for one attempt (another server sharing the
        database skips a leased row): (id, event, url, body, attempts)."""
        rows = self.store.db.fetchall(
            "SELECT id, event, url, body, attempts, next_attempt FROM webhook_deliveries"
            " WHERE status = 'pending' AND next_attempt <= ? ORDER BY next_attempt LIMIT ?",
            (now, limit),
        )
        lease = now + self.timeout_s * 2 + 5
        out = []
        for did, event, url, body, attempts, due in rows:
            got = self.store.db.fetchone(
                "UPDATE webhook_deliveries SET next_attempt = ? WHERE id = ? AND status = 'pending'"
                " AND next_attempt = ? RETURNING id", (lease, did, due),
            )
            if got is not None:
                out.append((str(did), str(event), str(url), str(body), int(attempts)))
        return out

    def _record(self, did: str, attempts: int, status: int | None, error: str | None) -> None:
        now = time.time()
        if status is not None and 200 <= status < 300:
            self.store.db.execute(
                "UPDATE webhook_deliveries SET status = 'delivered', attempts = ?, last_attempt = ?,"
                " last_status = ?, last_error = NULL, delivered = ? WHERE id = ?",
                (attempts, now, status, now, did),
            )
            return
        final = attempts >= self.max_attempts
        delay = min(_MAX_BACKOFF_S, self.backoff_s * 2 ** (attempts - 1))
        self.store.db.execute(
            "UPDATE webhook_deliveries SET status = ?, attempts = ?, last_attempt = ?, last_status = ?,"
            " last_error = ?, next_attempt = ? WHERE id = ?",
            ("failed" if final else "pending", attempts, now, status, error, now + delay, did),
        )

    def _next_due(self) -> float | None:
        row = self.store.db.fetchone("SELECT MIN(next_attempt) FROM webhook_deliveries WHERE status = 'pending'")
        return None if row is None or row[0] is None else float(row[0])

    def list(self, limit: int = 100, status: str | None = None) -> list[dict[str, Any]]:
        """Recent deliveries, newest first (without their bodies)."""
        where, params = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self.store.db.fetchall(
            f"SELECT {', '.join(_COLS)} FROM webhook_deliveries {where} ORDER BY created DESC LIMIT ?",
            (*params, limit),
        )
        return [dict(zip(_COLS, r, strict=True)) for r in rows]

    # -- the event loop ---------------------------------------------------------------------
    async def emit(self, event: str, subject: str, verdict: dict[str, Any] | None, **extra: Any) -> str | None:
        """Store one event for delivery; returns its delivery id (None when webhooks are off).
        Never raises: a storage failure is logged, the caller's work goes on."""
        if not self.enabled:
            return None
        body = json.dumps({"event": event, "id": subject, "verdict": verdict_brief(verdict),
                           "created": round(time.time(), 3), **extra}, ensure_ascii=False).encode("utf-8")
        try:
            did = await self.store.call(self._insert, event, subject, body)
        except Exception as exc:
            log.error("webhook %s for %s could not be stored: %r", event, subject, exc)
            return None
        self._wake.set()
        return did

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = asyncio.create_task(self._run(), name="liveness-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                try:
                    batch = await self.store.call(self._claim, time.time())
                    await asyncio.gather(*(self._send(http, *d) for d in batch))
                    if batch:
                        continue
                    due = await self.store.call(self._next_due)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database went away for a moment: try again soon
                    log.warning("webhook sender: %r", exc)
                    due = time.time() + 5
                wait = 3600.0 if due is None else max(0.0, due - time.time())
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=min(wait, 3600.0) + 0.01)

    async def _send(self, http: Any, did: str, event: str, url: str, body: str, attempts: int) -> None:
        import aiohttp

        from liveness.core.version import __version__

        raw = body.encode("utf-8")
        attempt = attempts + 1
        headers = {
            "Content-Type": "application/json", "User-Agent": f"interview-liveness/{__version__}",
            "X-Liveness-Event": event, "X-Liveness-Delivery": did, "X-Liveness-Attempt": str(attempt),
            "X-Liveness-Signature": sign(self.secret, raw),
        }
        status: int | None = None
        error: str | None = None
        try:
            async with http.post(url, data=raw, headers=headers, allow_redirects=False) as r:
                status = r.status
                if not 200 <= status < 300:
                    error = f"HTTP {status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        if error:
            log.info("webhook %s (%s) attempt %d failed: %s", did, event, attempt, error)
        try:
            await self.store.call(self._record, did, attempt, status, error)
        except Exception as exc:
            log.error("webhook %s: storing the attempt failed: %r", did, exc)


KEY_WEBHOOKS: web.AppKey[Webhooks] = web.AppKey("webhooks")


async def deliveries_route(request: web.Request) -> web.Response:
    """``GET /api/webhooks/deliveries[?status=pending|delivered|failed&limit=N]``."""
    from liveness.apps.serve.state import json_error, require_key

    require_key(request)
    hooks = request.app[KEY_WEBHOOKS]
    status = request.query.get("status")
    if status not in (None, "pending", "delivered", "failed"):
        return json_error(400, "status must be pending, delivered or failed")
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "100"))))
    except ValueError:
        return json_error(400, "limit must be an integer")
    rows = await hooks.store.call(hooks.list, limit, status)
    return web.json_response({"enabled": hooks.enabled, "url": hooks.url, "deliveries": rows})


async def watch_live(app: web.Application, hold_s: float = 2.0, period_s: float = 0.5) -> None:
    """``session.ended`` once per live session, and ``verdict.changed`` when a live session's
    label differs from the one last announced and has held for ``hold_s``."""
    from liveness.apps.serve.state import KEY_STATE

    st, hooks = app[KEY_STATE], app[KEY_WEBHOOKS]
    announced: dict[str, str | None] = {}
    pending: dict[str, tuple[str, float]] = {}
    ended: set[str] = set()
    while True:
        await asyncio.sleep(period_s)
        now = time.monotonic()
        for sid, live in list(st.sessions.items()):
            try:
                verdict = live.snapshot.get("verdict")
                label = verdict.get("label") if isinstance(verdict, dict) else None
                if live.state == "live" and label is not None and label != announced.get(sid):
                    cand = pending.get(sid)
                    if cand is None or cand[0] != label:
                        pending[sid] = (label, now)
                    elif now - cand[1] >= hold_s:
                        await hooks.emit("verdict.changed", sid, verdict, previous=announced.get(sid),
                                         label=live.label)
                        announced[sid] = label
                        pending.pop(sid, None)
                elif live.state == "ended" and sid not in ended:
                    ended.add(sid)
                    await hooks.emit("session.ended", sid, verdict, reason=live.end_reason, label=live.label)
            except Exception:
                log.exception("webhook watcher failed for session %s", sid)
        for sid in list(announced):
            if sid not in st.sessions:
                announced.pop(sid, None)
        ended &= set(st.sessions)
