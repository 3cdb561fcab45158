"""The review document as a typed object: ``liveness.review/1`` (a reviewed file) and
``liveness.serve-report/1`` (a live session's stored record) share this shape.

:class:`Review` is built by offline review, read back by batch (index rows, reuse), by the
eval (re-fusing cached reviews) and by the HTML report, and built from the store for a live
session's report, so the document's fields are written in one place. ``to_dict`` gives the
JSON document; ``from_dict`` reads one (unknown keys are kept in ``extra``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveness.core.record import SpilledRows
from liveness.core.types import Event, FaceObservation, FaceQuality, Signal, Verdict

__all__ = ["REVIEW_SCHEMA", "SERVE_REPORT_SCHEMA", "Review"]

REVIEW_SCHEMA = "liveness.review/1"
SERVE_REPORT_SCHEMA = "liveness.serve-report/1"

_KEYS = ("schema", "source", "timeline", "signals", "verdict", "events", "challenges", "summary",
         "timing", "provenance", "thumbnails")


@dataclass(frozen=True)
class Review:
    """One reviewed clip or session. ``source``: what was analysed (path, sha256, sizes, fps,
    duration, frames, codec, rotation, complete); ``timeline``: one row per analysed frame (or
    per second of a live session); ``signals`` and ``verdict``: the clip-level results;
    ``events`` in time order; ``challenges``: finished challenges; ``summary``: face counts and
    ranges; ``timing``: per-stage wall time; ``provenance``: version, models, options;
    ``thumbnails``: evidence frames (JPEG, base64), None when not asked for."""

    source: Mapping[str, Any]
    timeline: Sequence[Mapping[str, Any]]
    signals: Mapping[str, Signal]
    verdict: Verdict
    events: tuple[Event, ...] = ()
    challenges: tuple[Mapping[str, Any], ...] = ()
    summary: Mapping[str, Any] = field(default_factory=dict)
    timing: Mapping[str, Any] = field(default_factory=dict)
    provenance: Mapping[str, Any] = field(default_factory=dict)
    thumbnails: tuple[Mapping[str, Any], ...] | None = None
    schema: str = REVIEW_SCHEMA
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self._dict([dict(r) for r in self.timeline])

    def json_chunks(self, indent: int | None = 1) -> Iterator[str]:
        """The JSON document (as ``json.dumps(to_dict(), indent=indent, ensure_ascii=False)``
        reads it, one compact timeline row a line) in pieces, the timeline streamed row by row:
        writing an hour-long review never holds its whole timeline as objects or text."""
        mark = "\x00timeline\x00"
        text = json.dumps(self._dict(mark), indent=indent, ensure_ascii=False)
        token = json.dumps(mark)
        head, tail = text.split(token, 1)
        yield head
        rows = self.timeline
        lines = rows.lines() if isinstance(rows, SpilledRows) else (
            json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in rows)
        first = True
        for line in lines:
            yield ("[\n" if first else ",\n") + line
            first = False
        yield "[]" if first else "\n]"
        yield tail

    def _dict(self, timeline: Any) -> dict[str, Any]:
        d: dict[str, Any] = {
            "schema": self.schema,
            "source": dict(self.source),
            "timeline": timeline,
            "signals": {k: v.to_dict() for k, v in self.signals.items()},
            "verdict": self.verdict.to_dict(),
            "events": [e.to_dict() for e in self.events],
            "challenges": [dict(c) for c in self.challenges],
            "summary": dict(self.summary),
            "timing": dict(self.timing),
            "provenance": dict(self.provenance),
        }
        if self.thumbnails is not None:
            d["thumbnails"] = [dict(t) for t in self.thumbnails]
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Review:
        """A review document read back; missing parts are empty, a missing verdict is
        ``inconclusive``."""
        signals = {str(k): Signal.from_dict(str(k), v)
                   for k, v in (doc.get("signals") or {}).items() if isinstance(v, Mapping)}
        v = doc.get("verdict")
        verdict = (Verdict.from_dict(v) if isinstance(v, Mapping)
                   else Verdict("inconclusive", None, ("no verdict stored",)))
        thumbs = doc.get("thumbnails")
        return cls(
            source=dict(doc.get("source") or {}),
            timeline=tuple(doc.get("timeline") or ()),
            signals=signals,
            verdict=verdict,
            events=tuple(Event.from_dict(e) for e in doc.get("events") or () if isinstance(e, Mapping)),
            challenges=tuple(doc.get("challenges") or ()),
            summary=dict(doc.get("summary") or {}),
            timing=dict(doc.get("timing") or {}),
            provenance=dict(doc.get("provenance") or {}),
            thumbnails=None if thumbs is None else tuple(thumbs),
            schema=str(doc.get("schema", REVIEW_SCHEMA)),
            extra={k: x for k, x in doc.items() if k not in _KEYS},
        )

    def observations(self) -> list[FaceObservation]:
        """Light :class:`FaceObservation` records (face flag, box, quality) of the timeline, as
        the fusion reads them; boxes are in the analysed frames' pixels."""
        src = self.source
        w = int(src.get("analysed_width") or src.get("width") or 0)
        h = int(src.get("analysed_height") or src.get("height") or 0)
        obs = []
        for i, r in enumerate(self.timeline):
            q = r.get("face_quality")
            quality = None
            if r.get("face") and isinstance(q, Mapping):
                vals = [_num(q.get(k)) for k in ("size_px", "sharpness", "brightness", "inside")]
                if all(math.isfinite(x) for x in vals):
                    quality = FaceQuality(*vals)
            box = r.get("box")
            obs.append(FaceObservation(
                t=float(r.get("t", i)), frame_index=i, width=w, height=h, face=bool(r.get("face")),
                faces=int(r.get("faces") or 0),
                box=np.asarray(box, np.float32) if r.get("face") and box is not None else None,
                quality=quality,
            ))
        return obs


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
