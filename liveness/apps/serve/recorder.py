"""The live session's record: per-second summaries, events and evidence thumbnails, queued in
memory and written to the store in batches. A failing store never stops the analysis: what
could not be written stays queued and is retried (nothing the session produced is lost)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from liveness.apps.serve.clients import Counters
from liveness.apps.serve.protocol import message
from liveness.apps.serve.store import Store
from liveness.core.image import jpeg
from liveness.core.types import FaceObservation

__all__ = ["Owner", "Recorder", "face_thumbnail"]

log = logging.getLogger("liveness.serve")


@dataclass
class _Second:
    frames: int = 0
    faces: int = 0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    posed: int = 0
    sig: dict[str, list[float]] = field(default_factory=dict)

    def row(self, second: int) -> dict[str, Any]:
        n = max(self.posed, 1)
        return {
            "second": second,
            "frames": self.frames,
            "face_fraction": self.faces / max(self.frames, 1),
            "yaw": self.yaw / n if self.posed else None,
            "pitch": self.pitch / n if self.posed else None,
            "roll": self.roll / n if self.posed else None,
            "signals": {k: round(float(np.mean(v)), 4) for k, v in self.sig.items()},
        }


class Owner(Protocol):
    """What the recorder needs of its live session to write (and to tell the watchers)."""

    id: str
    store: Store
    counters: Counters
    snapshot: dict[str, Any]

    def broadcast(self, msg: dict[str, Any]) -> None: ...


class Recorder:
    """What a live session has produced and not yet stored. ``last_t`` is the newest analysed
    frame's time; ``t0`` the first one's (seconds are counted from it)."""

    def __init__(self) -> None:
        self.t0: float | None = None
        self.last_t: float | None = None
        self.seconds: dict[int, _Second] = {}
        self.events: list[dict[str, Any]] = []
        self.thumbs: list[tuple[float, str, bytes]] = []
        self.rows: list[dict[str, Any]] = []  # finished seconds not yet stored
        self.failing = False
        self.retry_at = 0.0

    def start(self, t: float) -> None:
        """A frame at ``t`` is being analysed."""
        self.last_t = t
        if self.t0 is None:
            self.t0 = t

    def add_event(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def add_frame(self, t: float, obs: FaceObservation, sig: dict[str, float],
                  events: list[dict[str, Any]], thumbnails: bool) -> None:
        """Add one analysed frame to its second; with ``thumbnails``, keep the face of a frame
        that has events as evidence."""
        sec = int(t - (self.t0 if self.t0 is not None else t))
        s = self.seconds.setdefault(sec, _Second())
        s.frames += 1
        s.faces += int(obs.face)
        if obs.pose is not None:
            s.posed += 1
            s.yaw += obs.pose.yaw
            s.pitch += obs.pose.pitch
            s.roll += obs.pose.roll
        for k, v in sig.items():
            s.sig.setdefault(k, []).append(v)
        if thumbnails and events and obs.face and obs.box is not None and obs.image is not None:
            data = face_thumbnail(obs.image, obs.box)
            if data is not None:
                self.thumbs.extend((e["t"], e["kind"], data) for e in events)

    async def flush(self, live: Owner, final: bool = False) -> None:
        """Write finished seconds and pending events to the store. A failing store never stops
        the analysis: what could not be written stays queued and is retried at the next flush
        (an ``error.store`` event tells the watchers once per failing spell). The live session
        runs one flush at a time in the background while frames are still added from the
        analysis thread: only finished seconds are taken, and lists are taken by their front."""
        if not self.seconds and not self.events and not self.thumbs and not self.rows:
            return
        done = sorted(self.seconds) if final else sorted(self.seconds)[:-1]
        if not final and not done and len(self.events) < 20 and not self.failing:
            return
        if not final and self.failing and time.monotonic() < self.retry_at:
            return  # a failing store is retried once a second, not on every frame
        self.rows.extend(self.seconds.pop(k).row(k) for k in done)
        store = live.store
        try:
            if self.rows:
                await store.call(store.add_seconds, live.id, self.rows)
                wrote_second = self.rows[-1]["second"]
                self.rows = []
            else:
                wrote_second = None
            if self.events:
                events = list(self.events)
                await store.call(store.add_events, live.id, events)
                del self.events[: len(events)]
            while self.thumbs:
                t, kind, jpeg = self.thumbs[0]
                await store.call(store.add_thumbnail, live.id, t, kind, jpeg)
                self.thumbs.pop(0)
            if final or (wrote_second is not None and wrote_second % 5 == 0):
                await store.call(store.save_summary, live.id, live.counters.to_dict(),
                                 live.snapshot.get("signals", {}), live.snapshot.get("verdict"))
        except Exception as exc:
            live.counters.errors += 1
            if final:
                raise
            self.retry_at = time.monotonic() + 1.0
            if not self.failing:
                log.error("session %s: the store refused a write, keeping the data to retry: %r", live.id, exc)
                self.failing = True
                live.broadcast(message("event", t=self.last_t or 0.0, kind="error.store",
                                       message=f"storing results failed, will retry: {exc!r}", data={}))
            return
        if self.failing:
            log.info("session %s: the store accepts writes again", live.id)
        self.failing = False


def face_thumbnail(frame_img: np.ndarray, box: np.ndarray, size: int = 96) -> bytes | None:
    """A ``size`` x ``size`` JPEG of the face box with a 20 % margin (None when too small)."""
    h, w = frame_img.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    m = 0.2 * max(bw, bh)
    x0, y0 = max(0, int(x - m)), max(0, int(y - m))
    x1, y1 = min(w, int(x + bw + m)), min(h, int(y + bh + m))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    return jpeg(frame_img[y0:y1, x0:x1], size, size)
