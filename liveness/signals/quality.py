"""Scene-quality monitor: no face, several faces, a face too small, dark, bright, blurred or
partly out of frame.

These are *conditions for judging*, never evidence of fakery. The monitor turns them into
debounced :class:`~liveness.Event` ranges (emitted through the frame context) (``quality.no_face``, ``quality.several_faces``,
``quality.small``, ``quality.dark``, ``quality.bright``, ``quality.blurred``,
``quality.out_of_frame``) and summarises the clip as the fraction of *unusable* frames
(signal ``quality``), so fusion can answer "inconclusive" when too little face was seen.

Event protocol: when a condition has held for ``min_duration_s`` an event with
``state="begin"`` (data: ``start``) is emitted; when it has been absent for ``release_s`` an
event with ``state="end"`` (data: ``start``, ``end``, ``duration_s``) follows. Both carry the
same ``kind``. :meth:`QualityMonitor.ranges` lists all ranges, the still-open one included.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from liveness.core.analyser import (
    MAX_FOLDED_SEGMENTS,
    MAX_SEGMENT_GAP_S,
    FrameContext,
    fold_segment,
    runs_above,
    thin_segments,
)
from liveness.core.errors import ConfigError
from liveness.core.record import trim_before
from liveness.core.types import Event, FaceObservation, FaceQuality, Score, Segment, Signal
from liveness.core.usable import USABLE, UsableFace, unusable_conditions

__all__ = ["QUALITY_KINDS", "QualityMonitor", "QualityOptions", "QualityRange"]

#: Condition name -> human message. "several_faces" is reported but does not make a frame unusable.
QUALITY_KINDS: dict[str, str] = {
    "no_face": "no face in view",
    "several_faces": "more than one face in view",
    "small": "face too small",
    "dark": "face too dark",
    "bright": "face over-exposed",
    "blurred": "face blurred",
    "out_of_frame": "face partly out of frame",
}
_UNUSABLE = ("no_face", "small", "dark", "bright", "blurred", "out_of_frame")


@dataclass(frozen=True)
class QualityOptions:
    """Thresholds. ``min_size_px`` is sqrt(face box area); ``min_sharpness`` is the variance of
    the Laplacian on the face region (as in :class:`~liveness.FaceQuality`); ``min_inside`` the
    fraction of the face box inside the frame. ``min_duration_s``: a condition must hold this
    long before an event begins; ``release_s``: it must be gone this long before it ends.
    The thresholds default to the one usable-face rule (:data:`liveness.core.usable.USABLE`),
    which the fusion's gate uses too."""

    min_size_px: float = USABLE.min_size_px
    min_brightness: float = USABLE.min_brightness
    max_brightness: float = USABLE.max_brightness
    min_sharpness: float = USABLE.min_sharpness
    min_inside: float = USABLE.min_inside
    min_duration_s: float = 0.5
    release_s: float = 0.5

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not np.isfinite(v) or v < 0:
                raise ConfigError(f"QualityOptions.{f.name} must be a finite number >= 0, got {v!r}")
        if self.min_brightness >= self.max_brightness:
            raise ConfigError("QualityOptions.min_brightness must be below max_brightness")
        if self.min_inside > 1:
            raise ConfigError("QualityOptions.min_inside must be in 0..1")


@dataclass(frozen=True)
class QualityRange:
    """A time range during which a condition held (``end`` None while still open)."""

    kind: str
    start: float
    end: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": f"quality.{self.kind}", "start": round(self.start, 3),
                "end": None if self.end is None else round(self.end, 3)}


class _Debounce:
    """One condition's state machine: idle -> pending -> active -> releasing -> idle."""

    __slots__ = ("first_true", "last_true", "active", "start")

    def __init__(self) -> None:
        self.first_true: float | None = None  # first frame of the current run of True
        self.last_true: float | None = None
        self.active = False
        self.start = 0.0


def frame_quality(obs: FaceObservation) -> FaceQuality | None:
    """The observation's quality, or one computed from its box and image when the tracker
    left it out (``None`` when there is no face)."""
    if not obs.face or obs.box is None:
        return None
    if obs.quality is not None:
        return obs.quality
    if obs.image is not None:
        from liveness.tracking.tracker import face_quality

        return face_quality(obs.image, obs.box)
    x, y, w, h = (float(v) for v in obs.box)
    ix = max(0.0, min(x + w, obs.width) - max(x, 0.0))
    iy = max(0.0, min(y + h, obs.height) - max(y, 0.0))
    inside = (ix * iy) / (w * h) if w > 0 and h > 0 else 0.0
    # without the image only size and position are known; brightness/sharpness pass
    return FaceQuality(float(np.sqrt(max(w, 0.0) * max(h, 0.0))), float("inf"), 128.0, inside)


class QualityMonitor:
    """Analyser (signal ``quality``) and event source. Per frame it returns a score of 1.0
    for an unusable frame and 0.0 for a usable one; :meth:`summary` gives the unusable
    fraction with the unusable ranges as segments; condition events are emitted per frame."""

    name = "quality"

    def __init__(self, options: QualityOptions | None = None) -> None:
        self.options = options or QualityOptions()
        self._state = {k: _Debounce() for k in QUALITY_KINDS}
        self._pending: list[Event] = []
        self._ranges: list[QualityRange] = []
        self._t = array("d")  # flat: a call of hours keeps 9 B a frame here
        self._bad = array("B")  # 1 for an unusable frame
        self._counts = dict.fromkeys(QUALITY_KINDS, 0)
        # a live horizon: frames folded away, how many were unusable, their unusable runs
        self._folded_n = self._folded_bad = 0
        self._folded: list[Segment] = []

    @classmethod
    def from_options(cls, options: QualityOptions) -> QualityMonitor:
        return cls(options)

    def conditions(self, obs: FaceObservation) -> dict[str, bool]:
        """Which conditions hold on this one frame."""
        o = self.options
        q = frame_quality(obs)
        c = dict.fromkeys(QUALITY_KINDS, False)
        c["several_faces"] = obs.faces > 1
        if q is None:
            c["no_face"] = True
            return c
        gate = UsableFace(o.min_size_px, o.min_brightness, o.max_brightness, o.min_sharpness, o.min_inside)
        c.update(unusable_conditions(q.size_px, q.brightness, q.sharpness, q.inside, gate))
        return c

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        t = float(obs.t)
        cond = self.conditions(obs)
        for kind, on in cond.items():
            self._counts[kind] += int(on)
            self._step(kind, on, t)
        bad = any(cond[k] for k in _UNUSABLE)
        self._t.append(t)
        self._bad.append(1 if bad else 0)
        if ctx.horizon_s is not None and t - self._t[0] > 1.25 * ctx.horizon_s:
            self._fold(t - ctx.horizon_s)
        for e in self._pending:
            ctx.emit(e)
        self._pending.clear()
        return (Score(self.name, t, 1.0 if bad else 0.0),)

    def _step(self, kind: str, on: bool, t: float) -> None:
        st = self._state[kind]
        o = self.options
        if on:
            if st.first_true is None:
                st.first_true = t
            st.last_true = t
            if not st.active and t - st.first_true >= o.min_duration_s:
                st.active, st.start = True, st.first_true
                self._pending.append(
                    Event(st.start, f"quality.{kind}", QUALITY_KINDS[kind],
                          (("state", "begin"), ("start", round(st.start, 3))))
                )
        else:
            if st.active and st.last_true is not None and t - st.last_true >= o.release_s:
                self._close(kind, st)
            elif not st.active:
                st.first_true = None

    def _close(self, kind: str, st: _Debounce) -> None:
        end = float(st.last_true if st.last_true is not None else st.start)
        self._ranges.append(QualityRange(kind, st.start, end))
        self._pending.append(
            Event(end, f"quality.{kind}", QUALITY_KINDS[kind],
                  (("state", "end"), ("start", round(st.start, 3)), ("end", round(end, 3)),
                   ("duration_s", round(end - st.start, 3))))
        )
        st.active, st.first_true, st.last_true = False, None, None

    def ranges(self) -> list[QualityRange]:
        """All condition ranges so far, ordered by start; an open one has ``end=None``."""
        out = list(self._ranges)
        for kind, st in self._state.items():
            if st.active:
                out.append(QualityRange(kind, st.start, None))
        return sorted(out, key=lambda r: (r.start, r.kind))

    def _fold(self, cut: float) -> None:
        """Forget the frames before ``cut`` (a live horizon), keeping their count, how many were
        unusable and their unusable runs."""
        t = np.array(self._t, np.float64)
        bad = np.array(self._bad, np.float64)
        k = int(np.searchsorted(t, cut, side="left"))
        for seg in runs_above(t[:k], bad[:k], 0.5, "unusable face"):
            fold_segment(self._folded, seg, MAX_SEGMENT_GAP_S)
        if len(self._folded) > MAX_FOLDED_SEGMENTS:
            thin_segments(self._folded)
        self._folded_n += k
        self._folded_bad += int(bad[:k].sum())
        trim_before(self._t, cut, (self._bad, 1))

    def _unusable(self) -> tuple[int, int]:
        """(frames, unusable frames) of the whole session, folded ones included."""
        return self._folded_n + len(self._bad), self._folded_bad + int(sum(self._bad))

    def usable_fraction(self) -> float | None:
        n, bad = self._unusable()
        return None if not n else 1.0 - bad / n

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        n, bad = self._unusable()
        if n == 0:
            return Signal(self.name, None, 0)
        t = np.array(self._t, np.float64)
        segs: list[Segment] = [Segment(g.start, g.end, g.value, g.reason) for g in self._folded]
        for g in runs_above(t, np.array(self._bad, np.float64), 0.5, "unusable face"):
            fold_segment(segs, g, MAX_SEGMENT_GAP_S)
        details = (("usable_fraction", 1.0 - bad / n),) + tuple(
            (f"{k}_fraction", self._counts[k] / n) for k in QUALITY_KINDS
        )
        return Signal(self.name, bad / n, n, tuple(segs), details)

    def reset(self) -> None:
        self._state = {k: _Debounce() for k in QUALITY_KINDS}
        self._pending.clear()
        self._ranges.clear()
        del self._t[:], self._bad[:]
        self._counts = dict.fromkeys(QUALITY_KINDS, 0)
        self._folded_n = self._folded_bad = 0
        self._folded.clear()
