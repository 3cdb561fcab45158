"""Recordings over REST: ``POST /api/reviews`` takes a recording (multipart field ``video``,
optional ``reference`` photos or enrolment files, optional ``metadata`` JSON echoed back),
answers ``202 {"id", "status": "queued"}`` and reviews it in the background;
``GET /api/reviews/{id}`` gives its status and, once done, the ``liveness.review/1`` document,
``GET /api/reviews/{id}/report.html`` the HTML report, ``DELETE /api/reviews/{id}`` removes it.

Uploads are streamed to ``upload_dir`` under ``max_upload_mb`` (a larger one is cut off with
413 and its part deleted) and deleted as soon as their analysis ends, whatever its outcome
(``keep_uploads`` keeps them). At most ``review_queue`` recordings wait or run (503 beyond),
``review_workers`` at a time, on threads of their own so live sessions keep their pool. A
server that stops with recordings queued or running picks them up again when it restarts
(their uploads are still on disk). Every route sits behind the API key; reviews, like the face
gallery, belong to the key that sent them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from aiohttp import web

from liveness.apps.serve.gallery import (
    MATCH_NOTE,
    Gallery,
    clip_embedding,
    scope_of,
    valid_candidate,
)
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.store import Store
from liveness.apps.serve.webhooks import Webhooks
from liveness.core.errors import InputError, LivenessError
from liveness.core.review import Review
from liveness.core.types import Event

__all__ = ["KEY_REVIEWS", "ReviewJobs", "ReviewOutcome", "Reviewer", "default_reviewer"]

log = logging.getLogger("liveness.serve.reviews")

_MAX_REFERENCES = 5
_MAX_REFERENCE_BYTES = 20 * 1024 * 1024
_MAX_METADATA_BYTES = 64 * 1024
_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_COLS = ("id", "scope", "created", "status", "started", "finished", "candidate", "metadata_json", "video_path",
         "video_name", "video_bytes", "references_json", "error", "review_json", "verdict_json", "matches_json")


@dataclass(frozen=True)
class ReviewOutcome:
    """What a reviewer returns: the review, the clip's face embedding (None: no face was
    embedded) and the references' embeddings (for the gallery)."""

    review: Review
    embedding: np.ndarray | None = None
    references: np.ndarray | None = None


#: ``reviewer(video, references, options) -> ReviewOutcome``; runs on a worker thread
Reviewer = Callable[[Path, Sequence[Path], ServeOptions], ReviewOutcome]


def default_reviewer(video: Path, references: Sequence[Path], options: ServeOptions) -> ReviewOutcome:
    """The full offline review (:func:`liveness.apps.review.review`) of one recording."""
    from liveness.apps.review import ReviewOptions, review
    from liveness.pipeline import PipelineOptions, build_session
    from liveness.signals.enrollment import load_references
    from liveness.signals.identity import IdentityAnalyser

    refs = tuple(str(p) for p in references)
    opts = ReviewOptions(pipeline=PipelineOptions(references=refs), max_side=options.max_side,
                         thumbnails=6 if options.thumbnails else 0)
    session = build_session(opts.pipeline)
    doc = review(video, opts, session=session)
    ident = next((a for a in session.analysers if isinstance(a, IdentityAnalyser)), None)
    emb = clip_embedding(ident) if ident is not None else None
    ref_emb = load_references(refs) if refs else None
    return ReviewOutcome(doc, emb, ref_emb)


def _safe_name(name: str | None) -> str:
    base = Path(name or "").name
    return re.sub(r"[^A-Za-z0-9._ -]", "_", base)[:120] or "recording"


def _upload_dir(options: ServeOptions) -> Path:
    from liveness.apps.serve.db import is_postgres_url

    if options.upload_dir:
        return Path(options.upload_dir).expanduser()
    if options.db != ":memory:" and not is_postgres_url(options.db):
        return Path(options.db).expanduser().parent / "uploads"
    return Path(tempfile.gettempdir()) / "liveness-uploads"


class ReviewJobs:
    """The queue and workers of the REST reviews of one server."""

    def __init__(self, store: Store, options: ServeOptions, webhooks: Webhooks, gallery: Gallery | None,
                 reviewer: Reviewer | None = None, on_finished: Callable[[], None] | None = None) -> None:
        self.on_finished = on_finished  # called after each review, done or failed (the heap trim)
        self.store = store
        self.options = options
        self.webhooks = webhooks
        self.gallery = gallery
        self.reviewer = reviewer or default_reviewer
        self.dir = _upload_dir(options)
        self.pool = ThreadPoolExecutor(options.review_workers, thread_name_prefix="liveness-review")
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.active: set[str] = set()  # queued or running here
        self.running: set[str] = set()
        self._workers: list[asyncio.Task[None]] = []

    # -- store rows (writer thread) ---------------------------------------------------------
    def _insert(self, row: dict[str, Any]) -> None:
        cols = [c for c in _COLS if c in row]
        self.store.db.execute(f"INSERT INTO reviews ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                              [row[c] for c in cols])

    def _update(self, rid: str, **cols: Any) -> int:
        sets = ", ".join(f"{k} = ?" for k in cols)
        return int(self.store.db.execute(f"UPDATE reviews SET {sets} WHERE id = ?", (*cols.values(), rid)).rowcount)

    def _get(self, rid: str, scope: str | None = None) -> dict[str, Any] | None:
        sql, params = f"SELECT {', '.join(_COLS)} FROM reviews WHERE id = ?", [rid]
        if scope is not None:
            sql, params = sql + " AND scope = ?", [rid, scope]
        row = self.store.db.fetchone(sql, params)
        return None if row is None else dict(zip(_COLS, row, strict=True))

    def _delete(self, rid: str) -> None:
        self.store.db.execute("DELETE FROM reviews WHERE id = ?", (rid,))

    def _unfinished(self) -> list[dict[str, Any]]:
        rows = self.store.db.fetchall(
            f"SELECT {', '.join(_COLS)} FROM reviews WHERE status IN ('queued', 'running') ORDER BY created")
        return [dict(zip(_COLS, r, strict=True)) for r in rows]

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Pick up what a previous run left queued or running, then start the workers."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("cannot create the upload folder %s: %r", self.dir, exc)
        for row in await self.store.call(self._unfinished):
            if row["video_path"] and Path(row["video_path"]).is_file():
                await self.store.call(self._update, row["id"], status="queued", started=None)
                self.active.add(row["id"])
                self.queue.put_nowait(row["id"])
            else:
                await self._finish_failed(row, "the upload was lost when the server restarted")
        if self.active:
            log.info("resuming %d recordings left by a previous run", len(self.active))
        self._workers = [asyncio.create_task(self._work(), name=f"liveness-review-{i}")
                         for i in range(self.options.review_workers)]

    async def stop(self) -> None:
        for w in self._workers:
            w.cancel()
        for w in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await w
        self.pool.shutdown(wait=False, cancel_futures=True)  # a running review is redone next time

    # -- the work ---------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            rid = await self.queue.get()
            try:
                await self._run_one(rid)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("review %s: unexpected failure", rid)
            finally:
                self.active.discard(rid)
                self.running.discard(rid)
                if self.on_finished is not None:
                    self.on_finished()

    async def _run_one(self, rid: str) -> None:
        row = await self.store.call(self._get, rid)
        if row is None or row["status"] != "queued":  # deleted meanwhile
            return
        self.running.add(rid)
        await self.store.call(self._update, rid, status="running", started=time.time())
        refs = [Path(p) for p in json.loads(row["references_json"])]
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(self.pool, self.reviewer, Path(row["video_path"]), refs, self.options)
            error = None
        except asyncio.CancelledError:  # the server stops: the upload stays for the next run
            raise
        except LivenessError as exc:
            out, error = None, str(exc)
        except Exception as exc:
            log.exception("review %s failed", rid)
            out, error = None, f"analysis failed: {type(exc).__name__}: {exc}"
        if not self.options.keep_uploads:
            self._remove_files(row)
        if await self.store.call(self._get, rid) is None:  # deleted while it ran: keep nothing
            if self.gallery is not None:
                await self.store.call(self.gallery.delete_source, row["scope"], f"review:{rid}")
            return
        if out is None:
            await self._finish_failed(row, error or "analysis failed")
            return
        matches = await self._gallery(row, out)
        doc = out.review
        source = {**doc.source, "path": row["video_name"]}
        events = doc.events + tuple(
            Event(0.0, "gallery.match", f"{MATCH_NOTE}: candidate {m['candidate']} (distance {m['distance']:.3f})",
                  (("candidate", m["candidate"]), ("distance", m["distance"]))) for m in matches)
        doc = replace(doc, source=source, events=events,
                      provenance={**doc.provenance, "server_review": rid})
        d = doc.to_dict()
        await self.store.call(self._update, rid, status="done", finished=time.time(), video_path=None,
                              review_json=json.dumps(d, ensure_ascii=False), verdict_json=json.dumps(d["verdict"]),
                              matches_json=json.dumps(matches))
        await self.webhooks.emit("review.completed", rid, d["verdict"], metadata=json.loads(row["metadata_json"]),
                                 matches=matches)

    async def _gallery(self, row: dict[str, Any], out: ReviewOutcome) -> list[dict[str, Any]]:
        g = self.gallery
        if g is None:
            return []
        scope, cand = row["scope"], row["candidate"]
        found: dict[str, dict[str, Any]] = {}
        probes = [out.embedding] if out.embedding is not None else []
        if out.references is not None:
            probes += list(np.asarray(out.references, np.float32).reshape(-1, 128))
        for p in probes:
            for m in await self.store.call(g.search, scope, p, cand):
                if m.candidate not in found or m.distance < found[m.candidate]["distance"]:
                    found[m.candidate] = m.to_dict()
        if cand:
            if out.embedding is not None:
                await self.store.call(g.add, scope, cand, f"review:{row['id']}", [out.embedding])
            if out.references is not None:
                await self.store.call(g.add, scope, cand, f"reference:{row['id']}", out.references)
        return sorted(found.values(), key=lambda m: m["distance"])

    async def _finish_failed(self, row: dict[str, Any], error: str) -> None:
        if not self.options.keep_uploads:
            self._remove_files(row)
        await self.store.call(self._update, row["id"], status="failed", finished=time.time(), error=error,
                              video_path=None)
        await self.webhooks.emit("review.failed", row["id"], None, error=error,
                                 metadata=json.loads(row["metadata_json"]))

    @staticmethod
    def _remove_files(row: dict[str, Any]) -> None:
        for p in [row.get("video_path"), *json.loads(row.get("references_json") or "[]")]:
            if p:
                with contextlib.suppress(OSError):
                    Path(p).unlink(missing_ok=True)

    # -- routes -----------------------------------------------------------------------------
    async def post(self, request: web.Request) -> web.Response:
        from liveness.apps.serve.state import json_error, require_key

        require_key(request)
        if not request.content_type.startswith("multipart/"):
            return json_error(415, "send the recording as multipart/form-data (field 'video')")
        if len(self.active) >= self.options.review_queue:
            resp = json_error(503, f"the review queue is full ({self.options.review_queue} recordings)")
            resp.headers["Retry-After"] = "30"
            return resp
        rid = secrets.token_hex(8)
        written: list[Path] = []
        try:
            row = await self._receive(request, rid, written)
        except web.HTTPException:
            self._unlink(written)
            raise
        except InputError as exc:
            self._unlink(written)
            return json_error(400, str(exc))
        except (OSError, ValueError) as exc:
            self._unlink(written)
            return json_error(400, f"cannot read the upload: {exc}")
        row["scope"] = scope_of(request)
        try:
            await self.store.call(self._insert, row)
        except Exception:
            self._unlink(written)
            raise
        self.active.add(rid)
        self.queue.put_nowait(rid)
        return web.json_response({"id": rid, "status": "queued", "metadata": json.loads(row["metadata_json"])},
                                 status=202, headers={"Location": f"/api/reviews/{rid}"})

    @staticmethod
    def _unlink(paths: list[Path]) -> None:
        for p in paths:
            with contextlib.suppress(OSError):
                p.unlink(missing_ok=True)

    async def _receive(self, request: web.Request, rid: str, written: list[Path]) -> dict[str, Any]:
        reader = await request.multipart()
        video: Path | None = None
        name, size = "", 0
        refs: list[str] = []
        metadata: dict[str, Any] = {}
        limit = int(self.options.max_upload_mb * 1024 * 1024)
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, aiohttp.BodyPartReader):
                raise InputError("nested multipart bodies are not accepted")
            field = part.name
            if field == "video":
                if video is not None:
                    raise InputError("send one 'video' per request")
                name = _safe_name(part.filename)
                video = self.dir / f"{rid}.video{Path(name).suffix.lower()[:8]}"
                written.append(video)
                size = await self._stream(part, video, limit, "the recording")
            elif field == "reference":
                if len(refs) >= _MAX_REFERENCES:
                    raise InputError(f"at most {_MAX_REFERENCES} reference files")
                suffix = Path(_safe_name(part.filename)).suffix.lower()[:8] or ".jpg"
                ref = self.dir / f"{rid}.ref{len(refs)}{suffix}"
                written.append(ref)
                await self._stream(part, ref, _MAX_REFERENCE_BYTES, "a reference file")
                refs.append(str(ref))
            elif field == "metadata":
                raw = await part.read(decode=True)
                if len(raw) > _MAX_METADATA_BYTES:
                    raise InputError(f"metadata is larger than {_MAX_METADATA_BYTES // 1024} KiB")
                try:
                    metadata = json.loads(raw.decode("utf-8") or "{}")
                except ValueError as exc:  # not UTF-8, not JSON, an integer of 4300+ digits
                    raise InputError(f"metadata is not JSON: {exc}") from exc
                except RecursionError as exc:
                    raise InputError("metadata is nested too deeply") from exc
                if not isinstance(metadata, dict):
                    raise InputError("metadata must be a JSON object")
            else:
                raise InputError(f"unknown field {field!r} (video, reference, metadata)")
        if video is None or size == 0:
            raise InputError("the 'video' field with the recording is missing or empty")
        cand = metadata.get("candidate")
        if cand is not None and valid_candidate(cand) is None:
            raise InputError("metadata.candidate must be a non-empty printable string of at most 200 characters")
        return {"id": rid, "created": time.time(), "status": "queued", "candidate": valid_candidate(cand),
                "metadata_json": json.dumps(metadata, ensure_ascii=False), "video_path": str(video),
                "video_name": name, "video_bytes": size, "references_json": json.dumps(refs)}

    @staticmethod
    async def _stream(part: aiohttp.BodyPartReader, path: Path, limit: int, what: str) -> int:
        size = 0
        with path.open("wb") as f:
            while True:
                chunk = await part.read_chunk(256 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > limit:
                    raise web.HTTPRequestEntityTooLarge(
                        max_size=limit, actual_size=size,
                        text=json.dumps({"error": f"{what} is larger than {limit // (1024 * 1024)} MiB"}),
                        content_type="application/json")
                f.write(chunk)
        return size

    async def _row_or_404(self, request: web.Request) -> dict[str, Any]:
        from liveness.apps.serve.state import require_key

        require_key(request)
        rid = request.match_info["rid"]
        row = await self.store.call(self._get, rid, scope_of(request)) if _ID_RE.match(rid) else None
        if row is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "no such review"}), content_type="application/json")
        return row

    async def get(self, request: web.Request) -> web.Response:
        row = await self._row_or_404(request)
        return web.json_response({
            "id": row["id"], "status": row["status"], "created": row["created"], "started": row["started"],
            "finished": row["finished"], "metadata": json.loads(row["metadata_json"]),
            "file": {"name": row["video_name"], "bytes": row["video_bytes"]},
            "review": json.loads(row["review_json"]) if row["review_json"] else None,
            "matches": json.loads(row["matches_json"]) if row["matches_json"] else [],
            "error": row["error"], "report": f"/api/reviews/{row['id']}/report.html",
        })

    async def report_html(self, request: web.Request) -> web.Response:
        from liveness.apps.serve.state import json_error
        from liveness.verdict.report import render_html

        row = await self._row_or_404(request)
        if not row["review_json"]:
            return json_error(409, f"the review is {row['status']}, no report yet")
        doc = Review.from_dict(json.loads(row["review_json"]))
        html = await asyncio.get_running_loop().run_in_executor(None, render_html, doc)  # not behind a review
        resp = web.Response(text=html, content_type="text/html")
        resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
        return resp

    async def delete(self, request: web.Request) -> web.Response:
        row = await self._row_or_404(request)
        await self.store.call(self._delete, row["id"])
        if row["id"] not in self.running and not self.options.keep_uploads:
            self._remove_files(row)  # a running one removes its own files when it ends
        if self.gallery is not None:
            await self.store.call(self.gallery.delete_source, row["scope"], f"review:{row['id']}")
            await self.store.call(self.gallery.delete_source, row["scope"], f"reference:{row['id']}")
        return web.Response(status=204)


KEY_REVIEWS: web.AppKey[ReviewJobs] = web.AppKey("reviews")
