"""The core object: frames in, observations, scores, events and a verdict out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from liveness.core.analyser import Analyser
from liveness.core.errors import InputError, TimestampError
from liveness.core.hooks import Hook, HookEvent
from liveness.core.types import FaceObservation, Score, Signal, Verdict

__all__ = ["Event", "FrameResult", "Fusion", "Session", "Tracker"]


@dataclass(frozen=True)
class Event:
    """Something that happened at time ``t``: a quality event, a challenge prompt or result.
    ``kind`` is a dotted name (e.g. "quality.no_face", "challenge.prompt", "challenge.result");
    ``data`` holds plain JSON-able values."""

    t: float
    kind: str
    message: str
    data: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"t": round(float(self.t), 4), "kind": self.kind, "message": self.message}
        if self.data:
            d["data"] = dict(self.data)
        return d


@dataclass(frozen=True)
class FrameResult:
    obs: FaceObservation
    scores: tuple[Score, ...] = ()
    events: tuple[Event, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = self.obs.to_dict()
        for s in self.scores:
            d[s.signal] = round(float(s.value), 4)
        return d


class Tracker(Protocol):
    def process(self, image: np.ndarray, t: float, frame_index: int = -1) -> FaceObservation: ...

    def reset(self) -> None: ...


class Fusion(Protocol):
    def fuse(self, signals: dict[str, Signal], observations: Sequence[FaceObservation]) -> Verdict: ...


class EventSource(Protocol):
    """Analysers that also emit events (quality monitor, challenge engine) implement this."""

    def events(self) -> list[Event]: ...


@dataclass
class _Stats:
    frames: int = 0
    faces: int = 0
    last_t: float | None = None
    observations: list[FaceObservation] = field(default_factory=list)


class Session:
    """``Session(tracker, analysers=[...])`` — feed frames with :meth:`process` in timestamp
    order; read :meth:`signals` and :meth:`verdict` at any time.

    The session keeps a light copy of every observation (without the image) for the report.
    An analyser that raises is disabled for the rest of the session and reported as an event,
    never taking the session down.
    """

    def __init__(
        self,
        tracker: Tracker,
        analysers: Sequence[Analyser] = (),
        *,
        fusion: Fusion | None = None,
        hook: Hook | None = None,
        keep_observations: bool = True,
    ) -> None:
        self.tracker = tracker
        self.analysers = list(analysers)
        self.fusion = fusion
        self.hook = hook
        self.keep_observations = keep_observations
        self._stats = _Stats()
        self._disabled: set[str] = set()
        self._events: list[Event] = []

    # -- feeding -------------------------------------------------------------------------
    def process(
        self, image: np.ndarray, t: float, *, total: int | None = None
    ) -> FrameResult:
        """Analyse one RGB uint8 frame taken at ``t`` seconds (strictly increasing)."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("expected an RGB uint8 image of shape (H, W, 3)")
        t = float(t)
        if not np.isfinite(t):
            raise TimestampError(f"timestamp {t} is not finite")
        if self._stats.last_t is not None and t <= self._stats.last_t:
            raise TimestampError(f"timestamp {t:.6f}s does not increase (last {self._stats.last_t:.6f}s)")
        self._stats.last_t = t
        idx = self._stats.frames

        t0 = time.perf_counter()
        obs = self.tracker.process(image, t, idx)
        self._emit("track", t, t0)

        scores: list[Score] = []
        events: list[Event] = []
        for a in self.analysers:
            if a.name in self._disabled:
                continue
            t1 = time.perf_counter()
            try:
                s = a.update(obs)
            except Exception as exc:  # an analyser bug must not end the session
                self._disabled.add(a.name)
                events.append(Event(t, "error.analyser", f"{a.name} disabled: {exc!r}"))
                continue
            self._emit(a.name, t, t1)
            if s is not None:
                scores.append(s)
            ev = getattr(a, "events", None)
            if callable(ev):
                events.extend(ev())

        # analysers that compare other signals with the candidate's own baseline (challenge and
        # opportunistic breakdown scoring) see every score of this frame
        if scores:
            for a in self.analysers:
                feed = getattr(a, "observe_scores", None)
                if callable(feed) and a.name not in self._disabled:
                    try:
                        feed(t, [s for s in scores if s.signal != a.name])
                    except Exception as exc:
                        self._disabled.add(a.name)
                        events.append(Event(t, "error.analyser", f"{a.name} disabled: {exc!r}"))

        self._stats.frames += 1
        self._stats.faces += int(obs.face)
        if self.keep_observations:
            self._stats.observations.append(_strip(obs))
        self._events.extend(events)
        if self.hook is not None:
            self.hook(HookEvent("frame", t, (time.perf_counter() - t0) * 1e3, self._stats.frames, total))
        return FrameResult(obs, tuple(scores), tuple(events))

    def _emit(self, stage: str, t: float, t0: float) -> None:
        if self.hook is not None:
            self.hook(HookEvent(stage, t, (time.perf_counter() - t0) * 1e3))

    # -- reading -------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self._stats.frames

    @property
    def observations(self) -> list[FaceObservation]:
        return self._stats.observations

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    def start_challenges(
        self, n: int | None = None, kinds: Sequence[str] | None = None, t: float | None = None
    ) -> list[str]:
        """Start a challenge sequence on the session's challenge engine: ``n`` random distinct
        challenges (or the explicit ``kinds``), the first prompted after a random gap from ``t``
        (default: the last frame's timestamp). Prompts and results then arrive as ``Event``s
        ("challenge.prompt", "challenge.result") in each :class:`FrameResult` and in
        :attr:`events`. Raises :class:`ConfigError` when the session has no challenge engine."""
        from liveness.challenges.engine import ChallengeEngine
        from liveness.core.errors import ConfigError

        engine = next((a for a in self.analysers if isinstance(a, ChallengeEngine)), None)
        if engine is None:
            raise ConfigError("this session has no ChallengeEngine among its analysers")
        start = self._stats.last_t if t is None else float(t)
        return engine.start(0.0 if start is None else start, n=n, kinds=kinds)

    def add_event(self, event: Event) -> None:
        self._events.append(event)

    def signals(self) -> dict[str, Signal]:
        out: dict[str, Signal] = {}
        for a in self.analysers:
            if a.name in self._disabled:
                continue
            try:
                out[a.name] = a.summary()
            except Exception as exc:
                self._disabled.add(a.name)
                self._events.append(Event(self._stats.last_t or 0.0, "error.analyser", f"{a.name} disabled: {exc!r}"))
        return out

    def verdict(self) -> Verdict:
        if self.fusion is None:
            return Verdict("inconclusive", None, ("no fusion configured",))
        return self.fusion.fuse(self.signals(), self._stats.observations)

    def reset(self) -> None:
        self.tracker.reset()
        for a in self.analysers:
            a.reset()
        self._stats = _Stats()
        self._disabled.clear()
        self._events.clear()


def _strip(obs: FaceObservation) -> FaceObservation:
    if obs.image is None:
        return obs
    from dataclasses import replace

    return replace(obs, image=None)
