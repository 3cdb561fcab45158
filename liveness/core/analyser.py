"""The analyser contract (v2) and a shared score aggregator.

An analyser sees every observation of a session in timestamp order. Per frame it returns the
scores it has for this frame (any number, of any of its signals) and may emit events through the
frame's :class:`FrameContext`; at any time :meth:`Analyser.signals` gives its clip-level signals,
one per name. One analyser may own several signals (identity: change, instability, reference
mismatch; face slip: slip and smoothness; challenges: breakdown and response), so signals that
share a measurement are computed once, with no adapter objects.

``ctx.scores`` holds the scores the analysers before this one returned for the same frame:
analysers that compare other signals with the candidate's own baseline (challenge and
opportunistic breakdown) run last and read them there. Analysers are pure: no I/O, no globals.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from liveness.core.types import Event, FaceObservation, Score, Segment, Signal

__all__ = ["Analyser", "FrameContext", "Mode", "ScoreSeries", "runs_above"]

#: how a session runs: ``video`` (a recording, reviewed offline) or ``live`` (a call, for hours)
Mode = Literal["video", "live"]


class FrameContext:
    """What an analyser may use of the frame being processed besides the observation: the
    running ``mode``, the ``scores`` of the analysers before it in this frame, and
    :meth:`emit` for events (quality, challenge prompts and results)."""

    __slots__ = ("_events", "_scores", "mode", "t")

    def __init__(self, t: float, mode: Mode = "video") -> None:
        self.t = t
        self.mode: Mode = mode
        self._scores: list[Score] = []
        self._events: list[Event] = []

    @property
    def scores(self) -> Sequence[Score]:
        """This frame's scores so far (read-only view)."""
        return tuple(self._scores)

    @property
    def events(self) -> Sequence[Event]:
        return tuple(self._events)

    def emit(self, event: Event) -> None:
        """Report an event; it appears in this frame's result and in the session's events."""
        self._events.append(event)

    def add_scores(self, scores: Sequence[Score]) -> None:
        """Used by the session after each analyser's update."""
        self._scores.extend(scores)


@runtime_checkable
class Analyser(Protocol):
    """``update`` sees every observation in timestamp order and returns this frame's scores
    (often none); ``signals`` gives the clip-level signals so far, by name; ``reset`` forgets
    everything. ``name`` names the analyser (timing hooks, error events); it is also the name
    of its main signal."""

    name: str

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]: ...

    def signals(self) -> Mapping[str, Signal]: ...

    def reset(self) -> None: ...


class ScoreSeries:
    """Collects per-frame scores and summarises them robustly.

    The clip value is a high quantile of a short moving median, so a short run of high scores
    (a swap segment of a few seconds) still shows while single-frame spikes do not. Segments are
    runs where the smoothed score stays above ``flag``.
    """

    def __init__(
        self,
        name: str,
        *,
        quantile: float = 0.9,
        smooth_s: float = 1.0,
        flag: float = 0.5,
        min_n: int = 3,
    ) -> None:
        self.name = name
        self.quantile = quantile
        self.smooth_s = smooth_s
        self.flag = flag
        self.min_n = min_n
        # flat float64 arrays (8 B a score each, not a list of float objects): the values are the
        # same, and a call of hours keeps a few hundred kB per series
        self._t = array("d")
        self._v = array("d")  # (the scores' weights are not kept: no summary reads them)

    def add(self, score: Score) -> None:
        if np.isfinite(score.value):
            self._t.append(score.t)
            self._v.append(float(score.value))

    def reset(self) -> None:
        del self._t[:], self._v[:]

    def __len__(self) -> int:
        return len(self._v)

    @property
    def times(self) -> np.ndarray:
        return np.array(self._t, np.float64)  # a copy: the array may grow while it is read

    @property
    def values(self) -> np.ndarray:
        return np.array(self._v, np.float64)

    def smoothed(self) -> np.ndarray:
        t, v = self.times, self.values
        if len(v) == 0:
            return v
        out = np.empty_like(v)
        lo = np.searchsorted(t, t - self.smooth_s / 2, side="left")
        hi = np.searchsorted(t, t + self.smooth_s / 2, side="right")
        for i in range(len(v)):  # per score, not per pixel
            out[i] = np.median(v[lo[i] : hi[i]])
        return out

    def segments(self, reason: str = "") -> tuple[Segment, ...]:
        return runs_above(self.times, self.smoothed(), self.flag, reason)

    def summary(self, details: Sequence[tuple[str, float]] = ()) -> Signal:
        n = len(self._v)
        if n < self.min_n:
            return Signal(self.name, None, n, (), tuple(details))
        s = self.smoothed()
        value = float(np.quantile(s, self.quantile))
        base = (("median", float(np.median(self.values))), ("max", float(s.max())))
        return Signal(self.name, value, n, self.segments(), base + tuple(details))


def runs_above(
    t: np.ndarray, v: np.ndarray, thr: float, reason: str = "", max_gap: float = 0.5
) -> tuple[Segment, ...]:
    """Time ranges where ``v > thr`` (gaps shorter than ``max_gap`` seconds are bridged)."""
    segs: list[Segment] = []
    start: float | None = None
    end = peak = 0.0
    for ti, vi in zip(np.asarray(t, np.float64).tolist(), np.asarray(v, np.float64).tolist(), strict=True):
        if vi > thr:
            if start is not None and ti - end <= max_gap:
                end, peak = ti, max(peak or vi, vi)
            else:
                if start is not None:
                    segs.append(Segment(start, end, peak, reason))
                start, end, peak = ti, ti, vi
    if start is not None:
        segs.append(Segment(float(start), float(end), float(peak), reason))
    return tuple(Segment(float(s.start), float(s.end), float(s.value), s.reason) for s in segs)
