"""The face-reuse check across candidates (``liveness serve --face-gallery``, off by default).

One person applying under several names shows the same face in several candidates' recordings,
and a face swap paints the same face model on every call it is used in. With the gallery on,
every recording sent over REST is searched against the faces of the *other* candidates of the
same API key, and one with a ``candidate`` name in its metadata is then added under that name,
with the reference photos or enrolment sent with it. What is stored is one 128-D embedding per
recording or photo (512 bytes; no image, no frame), the embedding model's sha256, the source
(``review:<id>``, ``reference``) and the time; entries older than the retention are deleted, and
``DELETE /api/gallery/candidates/{name}`` deletes a candidate's at once.

A hit is a "possible match — for human review", never a verdict: the 1:N threshold
(``DEFAULT_THRESHOLD``) was chosen from the false-match rate measured on 5,868 different people
(UTKFace) at several gallery sizes, and that rate grows with the gallery and differs between
groups of people (``benchmarks/README.md``, "Face reuse").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import web

from liveness.apps.serve.store import Store

__all__ = ["DEFAULT_THRESHOLD", "MATCH_NOTE", "Gallery", "Match", "candidates_route", "clip_embedding",
           "delete_candidate_route", "scope_of", "valid_candidate"]

#: 1:N distance threshold between two faces' embeddings (see benchmarks/README.md, "Face reuse")
DEFAULT_THRESHOLD = 0.35
MATCH_NOTE = "possible match — for human review"
_MAX_NAME = 200


@dataclass(frozen=True)
class Match:
    """Another candidate whose face lies within the threshold: the nearest of their entries."""

    candidate: str
    distance: float
    source: str
    created: float

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "distance": round(self.distance, 4), "source": self.source,
                "created": self.created, "note": MATCH_NOTE}


def valid_candidate(name: Any) -> str | None:
    """The candidate name, stripped, or None when it is not a usable name."""
    if not isinstance(name, str):
        return None
    name = name.strip()
    return name if 0 < len(name) <= _MAX_NAME and name.isprintable() else None


def clip_embedding(identity: Any, max_yaw: float = 30.0) -> np.ndarray | None:
    """One embedding for a reviewed clip from its identity analyser: the robust centroid of the
    frontal samples (|yaw| <= ``max_yaw``), else its enrolment; None when no face was embedded."""
    from liveness.signals.identity import robust_centroid

    samples = getattr(identity, "samples", None) or []
    frontal = [s.embedding for s in samples if abs(s.yaw) <= max_yaw]
    if frontal:
        return robust_centroid(np.stack(frontal), identity.options.threshold)
    enrol = getattr(identity, "enrolment", None)
    return None if enrol is None else np.asarray(enrol, np.float32)


def scope_of(request: web.Request) -> str:
    """Whose reviews and gallery a request sees: a hash of the server's API key (the key
    itself is never stored), ``local`` on a server without one."""
    import hashlib

    from liveness.apps.serve.state import KEY_OPTIONS

    key = request.app[KEY_OPTIONS].api_key
    return "local" if key is None else hashlib.sha256(b"liveness-scope:" + key.encode("utf-8")).hexdigest()[:16]


def _model_sha() -> str:
    from liveness.core.registry import MODELS

    spec = MODELS.get("face_embedding")
    return spec.sha256 if spec is not None else ""


class Gallery:
    """The gallery's rows in the server's store. Synchronous: call through :meth:`Store.call`."""

    def __init__(self, store: Store, threshold: float = DEFAULT_THRESHOLD, retention_days: float = 365.0) -> None:
        self.store = store
        self.threshold = float(threshold)
        self.retention_days = float(retention_days)

    def add(self, scope: str, candidate: str, source: str, embeddings: Sequence[np.ndarray] | np.ndarray) -> int:
        e = np.asarray(embeddings, np.float32).reshape(-1, 128)
        e = e[np.isfinite(e).all(axis=1)]
        if not len(e):
            return 0
        now, sha = time.time(), _model_sha()
        self.store.db.executemany(
            "INSERT INTO gallery (scope, candidate, source, created, model_sha256, embedding) VALUES (?, ?, ?, ?, ?, ?)",
            [(scope, candidate, source, now, sha, x.astype("<f4").tobytes()) for x in e],
        )
        return len(e)

    def search(self, scope: str, embedding: np.ndarray, exclude: str | None = None) -> list[Match]:
        """Candidates (other than ``exclude``) with an entry within the threshold, nearest first;
        entries made with another embedding model are not compared."""
        rows = self.store.db.fetchall(
            "SELECT candidate, source, created, embedding FROM gallery WHERE scope = ? AND model_sha256 = ?",
            (scope, _model_sha()),
        )
        rows = [r for r in rows if r[0] != exclude]
        if not rows:
            return []
        emb = np.frombuffer(b"".join(bytes(r[3]) for r in rows), "<f4").reshape(-1, 128)
        d = np.linalg.norm(emb - np.asarray(embedding, np.float32).reshape(1, 128), axis=1)
        best: dict[str, Match] = {}
        for (cand, src, created, _), dist in zip(rows, d, strict=True):
            if dist < self.threshold and (cand not in best or dist < best[cand].distance):
                best[cand] = Match(str(cand), float(dist), str(src), float(created))
        return sorted(best.values(), key=lambda m: m.distance)

    def candidates(self, scope: str) -> list[dict[str, Any]]:
        rows = self.store.db.fetchall(
            "SELECT candidate, COUNT(*), MIN(created), MAX(created) FROM gallery WHERE scope = ?"
            " GROUP BY candidate ORDER BY candidate", (scope,),
        )
        keep = self.retention_days * 86400
        return [{"candidate": c, "entries": int(n), "first": float(a), "last": float(b),
                 "expires": float(b) + keep} for c, n, a, b in rows]

    def delete_candidate(self, scope: str, candidate: str) -> int:
        return int(self.store.db.execute("DELETE FROM gallery WHERE scope = ? AND candidate = ?",
                                         (scope, candidate)).rowcount)

    def delete_source(self, scope: str, source: str) -> int:
        return int(self.store.db.execute("DELETE FROM gallery WHERE scope = ? AND source = ?",
                                         (scope, source)).rowcount)

    def purge(self, now: float | None = None) -> int:
        """Delete the entries older than the retention; returns how many."""
        cutoff = (time.time() if now is None else now) - self.retention_days * 86400
        return int(self.store.db.execute("DELETE FROM gallery WHERE created < ?", (cutoff,)).rowcount)


KEY_GALLERY: web.AppKey[Gallery] = web.AppKey("gallery")


async def candidates_route(request: web.Request) -> web.Response:
    """``GET /api/gallery/candidates``: names, entry counts, first/last entry, expiry."""
    from liveness.apps.serve.state import require_key

    require_key(request)
    g = request.app[KEY_GALLERY]
    rows = await g.store.call(g.candidates, scope_of(request))
    return web.json_response({"threshold": g.threshold, "retention_days": g.retention_days, "candidates": rows})


async def delete_candidate_route(request: web.Request) -> web.Response:
    """``DELETE /api/gallery/candidates/{name}``: every entry of that candidate, now."""
    from liveness.apps.serve.state import json_error, require_key

    require_key(request)
    g = request.app[KEY_GALLERY]
    name = valid_candidate(request.match_info["name"])
    if name is None:
        return json_error(400, "not a candidate name")
    n = await g.store.call(g.delete_candidate, scope_of(request), name)
    if not n:
        return json_error(404, "no such candidate in the gallery")
    return web.json_response({"candidate": name, "deleted": n})
