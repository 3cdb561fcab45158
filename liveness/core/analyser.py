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

__all__ = [
    "MAX_FOLDED_SEGMENTS", "MAX_SEGMENT_GAP_S", "Analyser", "FrameContext", "Mode", "ScoreSeries",
    "fold_segment", "runs_above", "thin_segments",
]

#: gaps shorter than this (seconds) join two runs of a score into one segment
MAX_SEGMENT_GAP_S = 0.5
#: segments of folded-away scores a bounded series keeps (closest neighbours are joined beyond)
MAX_FOLDED_SEGMENTS = 256

#: how a session runs: ``video`` (a recording, reviewed offline) or ``live`` (a call, for hours)
Mode = Literal["video", "live"]


class FrameContext:
    """What an analyser may use of the frame being processed besides the observation: the
    running ``mode``, the ``scores`` of the analysers before it in this frame, and
    :meth:`emit` for events (quality, challenge prompts and results).

    ``horizon_s`` (a live session's, else None): an analyser keeps its per-frame history for
    about the last ``horizon_s`` seconds only, folding older measurements into bounded
    summaries (segments, peaks, counts), so a call of hours holds flat memory."""

    __slots__ = ("_events", "_scores", "horizon_s", "mode", "t")

    def __init__(self, t: float, mode: Mode = "video", horizon_s: float | None = None) -> None:
        self.t = t
        self.mode: Mode = mode
        self.horizon_s = horizon_s
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

    Bounded memory (a live call of hours): :meth:`add` with ``horizon_s`` keeps only the scores
    of about the last ``horizon_s`` seconds (it folds the oldest quarter away once the series
    spans 1.25 ``horizon_s``). What is folded away leaves its segments (kept, at most
    :data:`MAX_FOLDED_SEGMENTS`, and joined to a live one that continues it) and its peak
    smoothed score; the clip value and median are then those of the kept scores, and the
    details say so (``horizon_s``, ``scores_total``, ``earlier_max``). A series fed with a
    horizon (a live call) keeps its values in single precision (its times in double).

    The moving median of a score whose window has closed (a later score lies more than
    ``smooth_s / 2`` after it) is kept once computed, so a summary read once a second during a
    call computes only the new scores' medians, not every score's again (a 10-min series of
    15 scores a second: 116 -> 1.0 ms a summary, ``benchmarks/bench_series_summary.py``).
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
        self._sm = array("d")  # moving medians of the first len(_sm) scores, whose windows closed
        self._folded: list[Segment] = []  # segments of scores folded away (horizon_s), no reason
        self._folded_n = 0
        self._folded_max = -np.inf
        self._horizon: float | None = None

    def add(self, score: Score, horizon_s: float | None = None) -> None:
        """Keep ``score`` (a non-finite value is ignored); with ``horizon_s``, only about the
        last ``horizon_s`` seconds of scores stay (see the class)."""
        if np.isfinite(score.value):
            if horizon_s is not None and not self._v and self._v.typecode == "d":
                self._v = array("f")  # a live call: values in single precision, 12 B a score
                self._sm = array("f")
            self._t.append(score.t)
            self._v.append(float(score.value))
            if horizon_s is not None and score.t - self._t[0] > 1.25 * horizon_s:
                self._fold(score.t - horizon_s, horizon_s)

    def _fold(self, cut: float, horizon_s: float) -> None:
        """Drop the scores before ``cut``, keeping their segments and peak."""
        t, s = self.times, self.smoothed()
        k = int(np.searchsorted(t, cut, side="left"))
        if k == 0:
            return
        for seg in runs_above(t[:k], s[:k], self.flag):
            fold_segment(self._folded, seg, MAX_SEGMENT_GAP_S)
        if len(self._folded) > MAX_FOLDED_SEGMENTS:
            thin_segments(self._folded)
        self._folded_max = max(self._folded_max, float(s[:k].max()))
        self._folded_n += k
        self._horizon = horizon_s
        del self._t[:k], self._v[:k], self._sm[:k]

    @property
    def folded(self) -> int:
        """Scores folded away so far (0 without a horizon)."""
        return self._folded_n

    def reset(self) -> None:
        del self._t[:]
        self._v = array("d")
        self._sm = array("d")
        self._folded.clear()
        self._folded_n = 0
        self._folded_max = -np.inf
        self._horizon = None

    def __len__(self) -> int:
        return len(self._v)

    @property
    def times(self) -> np.ndarray:
        return np.array(self._t, np.float64)  # a copy: the array may grow while it is read

    @property
    def values(self) -> np.ndarray:
        return np.array(self._v, np.float64)

    def smoothed(self) -> np.ndarray:
        """Each score's median over the scores within ``smooth_s / 2`` of it."""
        t, v = self.times, self.values
        n = min(len(t), len(v))  # (another thread may have added a score between the copies)
        t, v = t[:n], v[:n]
        if n == 0:
            return v
        half = self.smooth_s / 2
        k = min(len(self._sm), n)
        lo = np.searchsorted(t, t[k:] - half, side="left")
        hi = np.searchsorted(t, t[k:] + half, side="right")
        out = np.empty(n)
        view = np.frombuffer(self._sm, np.float32 if self._sm.typecode == "f" else np.float64, k)
        out[:k] = view
        del view  # the array cannot grow while a view of it exists
        for j in range(n - k):  # per new score, not per pixel
            out[k + j] = np.median(v[lo[j] : hi[j]])
        closed = int(np.searchsorted(t, t[-1] - half, side="left"))  # no later score enters these
        if closed > k and len(self._sm) == k:
            self._sm.extend(out[k:closed].tolist())
        return out

    def segments(self, reason: str = "", max_gap: float = MAX_SEGMENT_GAP_S) -> tuple[Segment, ...]:
        """Runs of the smoothed score above ``flag`` (gaps under ``max_gap`` s bridged), those
        of folded-away scores first."""
        return self.with_folded(runs_above(self.times, self.smoothed(), self.flag, reason, max_gap), reason, max_gap)

    def with_folded(self, live: Sequence[Segment], reason: str = "",
                    max_gap: float = MAX_SEGMENT_GAP_S) -> tuple[Segment, ...]:
        """``live`` (segments of the kept scores) after the segments of folded-away scores,
        which carry ``reason``; a folded segment that the first live one continues is joined."""
        if not self._folded:
            return tuple(live)
        out = [Segment(g.start, g.end, g.value, reason) for g in self._folded]
        for g in live:
            fold_segment(out, g, max_gap)
        return tuple(out)

    def summary(self, details: Sequence[tuple[str, float]] = ()) -> Signal:
        n = len(self._v)
        if n < self.min_n:
            return Signal(self.name, None, n, self.with_folded(()), tuple(details))
        s = self.smoothed()
        value = float(np.quantile(s, self.quantile))
        base: tuple[tuple[str, float], ...] = (
            ("median", float(np.median(self.values))), ("max", float(max(s.max(), self._folded_max))))
        if self._folded_n:
            base += (("horizon_s", float(self._horizon or 0.0)), ("scores_total", float(self._folded_n + n)),
                     ("earlier_max", self._folded_max))
        return Signal(self.name, value, n, self.segments(), base + tuple(details))


def fold_segment(segs: list[Segment], seg: Segment, max_gap: float) -> None:
    """Append ``seg`` (starting after every segment of ``segs``) to ``segs``, joining it to the
    last one when the gap between them is at most ``max_gap`` seconds."""
    if segs and seg.start - segs[-1].end <= max_gap and segs[-1].reason == seg.reason:
        last = segs[-1]
        segs[-1] = Segment(last.start, max(last.end, seg.end), max(last.value, seg.value), last.reason)
    else:
        segs.append(seg)


def thin_segments(segs: list[Segment]) -> None:
    """Halve ``segs`` in place by joining each segment to its successor across the smaller gaps
    (the long quiet stretches between segments stay)."""
    if len(segs) < 2:
        return
    gaps = np.array([b.start - a.end for a, b in zip(segs, segs[1:], strict=False)])
    join = set(np.argsort(gaps, kind="stable")[: len(segs) // 2].tolist())
    out: list[Segment] = []
    for i, g in enumerate(segs):
        if out and (i - 1) in join:
            a = out[-1]
            out[-1] = Segment(a.start, max(a.end, g.end), max(a.value, g.value), a.reason)
        else:
            out.append(g)
    segs[:] = out


def runs_above(
    t: np.ndarray, v: np.ndarray, thr: float, reason: str = "", max_gap: float = 0.5
) -> tuple[Segment, ...]:
    """Time ranges where ``v > thr`` (gaps shorter than ``max_gap`` seconds are bridged)."""
    segs: list[Segment] = []
    start: float | None = None
    end = peak = 0.0
    t, v = np.asarray(t, np.float64), np.asarray(v, np.float64)
    if t.shape != v.shape:
        raise ValueError("t and v must have the same length")
    above = v > thr  # only these samples start, extend or end a run
    for ti, vi in zip(t[above].tolist(), v[above].tolist(), strict=True):
        if start is not None and ti - end <= max_gap:
            end, peak = ti, max(peak or vi, vi)
        else:
            if start is not None:
                segs.append(Segment(start, end, peak, reason))
            start, end, peak = ti, ti, vi
    if start is not None:
        segs.append(Segment(float(start), float(end), float(peak), reason))
    return tuple(Segment(float(s.start), float(s.end), float(s.value), s.reason) for s in segs)
