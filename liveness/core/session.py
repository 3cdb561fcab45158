"""The core object: frames in, observations, scores, events and a verdict out."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from liveness.core.analyser import Analyser, FrameContext, Mode
from liveness.core.errors import ConfigError, TimestampError
from liveness.core.hooks import Hook, HookEvent
from liveness.core.image import check_rgb, downscale
from liveness.core.protocols import ChallengeSource, Fusion, ResultRecord, Tracker
from liveness.core.record import CompactObservations, LightObservations
from liveness.core.types import Event, FaceObservation, FrameResult, Roi, Signal, Verdict

__all__ = ["LIVE_HORIZON_S", "Event", "FrameResult", "Session", "check_timestamp"]

#: seconds of per-frame history a live session and its analysers keep (``Session(horizon_s=)``)
LIVE_HORIZON_S = 600.0
_MIN_ROI_PX = 16  # a region of interest narrower or lower than this analyses the whole frame


def check_timestamp(t: float, last: float | None) -> float:
    """``t`` as a float when it is finite and after ``last``, else :class:`TimestampError` —
    the one timestamp rule of a session (the server skips such frames and counts them)."""
    t = float(t)
    if not math.isfinite(t):
        raise TimestampError(f"timestamp {t} is not finite")
    if last is not None and t <= last:
        raise TimestampError(f"timestamp {t:.6f}s does not increase (last {last:.6f}s)")
    return t


@dataclass
class _Stats:
    frames: int = 0
    faces: int = 0
    last_t: float | None = None
    observations: list[FaceObservation] | CompactObservations | LightObservations = field(default_factory=list)


class Session:
    """``Session(tracker, analysers=[...])`` — feed frames with :meth:`process` in timestamp
    order; read :meth:`signals` and :meth:`verdict` at any time.

    The parts are checked once, here: ``tracker`` must be a :class:`Tracker`, each analyser an
    :class:`Analyser` (contract v2) with a name of its own, ``fusion`` a :class:`Fusion`; the
    analysers that are a :class:`ChallengeSource` answer :meth:`start_challenges`.

    ``mode`` is ``"video"`` (a recording) or ``"live"`` (a call that may last hours: the
    per-frame record keeps the face flag, counts, score and quality, no landmarks, box or pose,
    in flat arrays: :class:`~liveness.core.record.LightObservations`, ~67 B a frame, and only
    for about the last ``horizon_s`` seconds, as the analysers' histories
    (:class:`~liveness.core.analyser.FrameContext`): a live session's memory stays flat, its
    clip-level signals describe that horizon, and the segments of the whole call are kept). The
    session keeps a light copy of every observation (without the image) for the fusion and the
    report. An analyser that raises is disabled for the rest of the session and reported as an
    event, never taking the session down.
    """

    def __init__(
        self,
        tracker: Tracker,
        analysers: Sequence[Analyser] = (),
        *,
        fusion: Fusion | None = None,
        hook: Hook | None = None,
        keep_observations: bool = True,
        mode: Mode = "video",
        compact_record: bool = False,
        horizon_s: float = LIVE_HORIZON_S,
    ) -> None:
        if not isinstance(tracker, Tracker):
            raise ConfigError(f"{type(tracker).__name__} is not a tracker (process, reset)")
        names: set[str] = set()
        for a in analysers:
            if not isinstance(a, Analyser):
                raise ConfigError(f"{type(a).__name__} is not an analyser (name, update, signals, reset)")
            if a.name in names:
                raise ConfigError(f"two analysers are named {a.name!r}")
            names.add(a.name)
        if fusion is not None and not isinstance(fusion, Fusion):
            raise ConfigError(f"{type(fusion).__name__} is not a fusion (fuse, describe)")
        if mode not in ("video", "live"):
            raise ConfigError(f"mode must be 'video' or 'live', got {mode!r}")
        if not (math.isfinite(horizon_s) and horizon_s >= 10.0):
            raise ConfigError(f"horizon_s must be a finite number of seconds >= 10, got {horizon_s!r}")
        self.tracker = tracker
        self.analysers: tuple[Analyser, ...] = tuple(analysers)
        self.fusion = fusion
        self.hook = hook
        self.keep_observations = keep_observations
        self.mode: Mode = mode
        self.compact_record = compact_record
        self.horizon_s = float(horizon_s)
        self._challenges: tuple[ChallengeSource, ...] = tuple(
            a for a in self.analysers if isinstance(a, ChallengeSource))
        self._stats = self._new_stats()
        self._disabled: set[str] = set()
        self._events: list[Event] = []
        self._roi: Roi | None = None

    # -- feeding -------------------------------------------------------------------------
    def check_time(self, t: float) -> float:
        """``t`` if the next frame may carry it, else :class:`TimestampError`."""
        return check_timestamp(t, self._stats.last_t)

    def process(
        self,
        image: np.ndarray,
        t: float,
        *,
        roi: Roi | None = None,
        max_side: int | None = None,
        total: int | None = None,
    ) -> FrameResult:
        """Analyse one RGB uint8 frame taken at ``t`` seconds (strictly increasing).

        ``roi`` = (x, y, w, h), fractions of the frame: only that region is analysed (one tile
        of a gallery view); a region under 16 px analyses the whole frame. A change of region
        drops the track. ``max_side`` then downsizes the analysed image. The result's
        ``origin`` and ``scale`` map what was analysed back to ``image``. ``total`` (frames
        expected, if known) goes to the progress hook."""
        check_rgb(image)
        t = self.check_time(t)
        self._stats.last_t = t
        idx = self._stats.frames
        t0 = time.perf_counter()
        if roi != self._roi:
            self._roi = roi
            self.tracker.reset()
        img, applied, origin = _crop(image, roi)
        small = downscale(img, max_side)
        scale = small.shape[1] / img.shape[1] if small is not img else 1.0

        obs = self.tracker.process(np.ascontiguousarray(small), t, idx)
        self._emit("track", t, t0)

        live = self.mode == "live"
        ctx = FrameContext(t, self.mode, self.horizon_s if live else None)
        for a in self.analysers:
            if a.name in self._disabled:
                continue
            t1 = time.perf_counter()
            try:
                scores = list(a.update(obs, ctx))
            except Exception as exc:  # an analyser bug must not end the session
                self._disabled.add(a.name)
                ctx.emit(Event(t, "error.analyser", f"{a.name} disabled: {exc!r}"))
                continue
            self._emit(a.name, t, t1)
            ctx.add_scores(scores)

        self._stats.frames += 1
        self._stats.faces += int(obs.face)
        if self.keep_observations:
            rec = self._stats.observations
            rec.append(obs if isinstance(rec, (CompactObservations, LightObservations)) else self._light(obs))
            if live and isinstance(rec, LightObservations) and t - rec.first_t > 1.25 * self.horizon_s:
                rec.drop_before(t - self.horizon_s)
        self._events.extend(ctx.events)
        if self.hook is not None:
            self.hook(HookEvent("frame", t, (time.perf_counter() - t0) * 1e3, self._stats.frames, total))
        return FrameResult(obs, tuple(ctx.scores), tuple(ctx.events), applied, origin, scale)

    def use_compact_record(self) -> None:
        """Keep the per-frame record in flat arrays from now on (``compact_record``); only
        before the first frame (or after :meth:`reset`)."""
        if self.compact_record:
            return
        if self._stats.frames:
            raise ConfigError("the record can be made compact only before the first frame")
        self.compact_record = True
        self._stats = self._new_stats()

    def _new_stats(self) -> _Stats:
        if self.compact_record:
            return _Stats(observations=CompactObservations())
        if self.mode == "live":  # flat arrays of the light record: ~67 B a frame
            return _Stats(observations=LightObservations())
        return _Stats()

    def _light(self, obs: FaceObservation) -> FaceObservation:
        # a video session's record: the observation without its image (a live one keeps a
        # LightObservations record instead: no landmarks, box or pose, flat arrays)
        return obs if obs.image is None else replace(obs, image=None)

    def _emit(self, stage: str, t: float, t0: float) -> None:
        if self.hook is not None:
            self.hook(HookEvent(stage, t, (time.perf_counter() - t0) * 1e3))

    # -- challenges ----------------------------------------------------------------------
    @property
    def can_challenge(self) -> bool:
        """Whether an analyser of this session prompts challenges."""
        return bool(self._challenges)

    def start_challenges(
        self, n: int | None = None, kinds: Sequence[str] | None = None, t: float | None = None
    ) -> list[str]:
        """Start a challenge sequence on the session's challenge source: ``n`` random distinct
        challenges (or the explicit ``kinds``), the first prompted after a random gap from ``t``
        (default: the last frame's timestamp). Prompts and results then arrive as ``Event``s
        ("challenge.prompt", "challenge.result") in each :class:`FrameResult` and in
        :attr:`events`. Raises :class:`ConfigError` when the session has no challenge source."""
        if not self._challenges:
            raise ConfigError("this session has no challenge engine among its analysers")
        start = self._stats.last_t if t is None else float(t)
        return self._challenges[0].start(0.0 if start is None else start, n=n, kinds=kinds)

    def challenge_results(self) -> list[ResultRecord]:
        """Every finished challenge of every challenge source, in order."""
        return [r for c in self._challenges for r in c.results()]

    # -- reading -------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        return self._stats.frames

    @property
    def observations(self) -> Sequence[FaceObservation]:
        """The light per-frame record (read-only)."""
        obs = self._stats.observations
        return obs if isinstance(obs, (CompactObservations, LightObservations)) else tuple(obs)

    @property
    def events(self) -> list[Event]:
        return list(self._events)

    @property
    def last_t(self) -> float | None:
        return self._stats.last_t

    def add_event(self, event: Event) -> None:
        self._events.append(event)

    def signals(self) -> dict[str, Signal]:
        """Every analyser's clip-level signals so far, in analyser order."""
        out: dict[str, Signal] = {}
        for a in self.analysers:
            if a.name in self._disabled:
                continue
            try:
                out.update(a.signals())
            except Exception as exc:
                self._disabled.add(a.name)
                self._events.append(Event(self._stats.last_t or 0.0, "error.analyser", f"{a.name} disabled: {exc!r}"))
        return out

    def verdict(self, signals: dict[str, Signal] | None = None) -> Verdict:
        """The fused verdict (of ``signals`` when given, e.g. those just read)."""
        if self.fusion is None:
            return Verdict("inconclusive", None, ("no fusion configured",))
        return self.fusion.fuse(self.signals() if signals is None else signals, self._stats.observations)

    def reset(self) -> None:
        self.tracker.reset()
        for a in self.analysers:
            a.reset()
        self._stats = self._new_stats()
        self._disabled.clear()
        self._events.clear()
        self._roi = None


def _crop(image: np.ndarray, roi: Roi | None) -> tuple[np.ndarray, Roi | None, tuple[int, int]]:
    """The region ``roi`` of ``image`` (fractions), the region applied and its pixel origin."""
    if roi is None:
        return image, None, (0, 0)
    h, w = image.shape[:2]
    cx, cy, cw, ch = (float(v) for v in roi)
    ox, oy = int(round(cx * w)), int(round(cy * h))
    x1, y1 = min(w, int(round((cx + cw) * w))), min(h, int(round((cy + ch) * h)))
    if x1 - ox < _MIN_ROI_PX or y1 - oy < _MIN_ROI_PX or ox < 0 or oy < 0:
        return image, None, (0, 0)
    return image[oy:y1, ox:x1], (cx, cy, cw, ch), (ox, oy)
