"""Opportunistic mode: natural episodes found in a recording without prompts (head turns,
occlusions, blinks), each scored like a challenge for swap breakdown."""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from liveness.challenges.breakdown import SELF_SIGNALS, ScoreHistory, breakdown_scores, score_items
from liveness.challenges.features import FEATURES, feature_index, frame_features
from liveness.core.analyser import MAX_FOLDED_SEGMENTS, FrameContext, fold_segment, thin_segments
from liveness.core.types import FaceObservation, Score, Segment, Signal

__all__ = ["OpportunisticAnalyser", "OpportunisticOptions"]

_T, _FACE, _SCORE = feature_index("t"), feature_index("face"), feature_index("score")
_YAW, _EAR = feature_index("yaw"), feature_index("ear")


@dataclass(frozen=True)
class OpportunisticOptions:
    """Natural episodes found in a recording without prompts: head turns (|yaw| >= ``turn_deg``),
    occlusions (track lost for at most ``max_loss_s`` or confidence under ``score_frac`` x its
    running median) and blinks (eye aspect ratio <= ``blink_ratio`` x its running median).
    Each is scored like a challenge (breakdown against the ``breakdown_baseline_s`` before it,
    ``baseline_gap_s`` clear of the onset). The clip value is the largest, over episode kinds,
    of the median breakdown of that kind's episodes. With a live horizon, episodes that ended
    more than ``horizon_s`` ago keep only their kind, breakdown and (when high) segment: the
    clip value and counts still cover the whole call; :attr:`OpportunisticAnalyser.episodes`
    lists the recent ones."""

    turn_deg: float = 25.0
    turn_release_deg: float = 20.0
    max_loss_s: float = 3.0
    score_frac: float = 0.6
    blink_ratio: float = 0.6
    blink_release: float = 0.8
    running_s: float = 3.0
    max_episode_s: float = 6.0
    tail_s: float = 0.5
    baseline_gap_s: float = 0.3
    breakdown_baseline_s: float = 2.0
    breakdown_scale: float = 0.3


@dataclass(frozen=True)
class _Episode:
    kind: str
    start: float
    end: float
    breakdown: float | None = None
    signals: tuple[tuple[str, float], ...] = ()


class OpportunisticAnalyser:
    """Finds natural head turns, occlusions and blinks and scores the other signals' breakdown
    around them (signal ``opportunistic_breakdown``), reading the other analysers' scores of
    each frame from the frame context (it runs after them)."""

    name = "opportunistic_breakdown"

    def __init__(self, options: OpportunisticOptions | None = None) -> None:
        self.options = options or OpportunisticOptions()
        self.reset()

    @classmethod
    def from_options(cls, options: OpportunisticOptions) -> OpportunisticAnalyser:
        return cls(options)

    def reset(self) -> None:
        o = self.options
        self._hist = ScoreHistory(o.max_episode_s + o.breakdown_baseline_s + o.baseline_gap_s + 10.0)
        self._run_ear: deque[tuple[float, float]] = deque()
        self._run_score: deque[tuple[float, float]] = deque()
        self._open: dict[str, float] = {}  # kind -> start
        self._lost_since: float | None = None
        self._pending: list[_Episode] = []
        self._done: list[_Episode] = []
        # episodes folded away by a live horizon: counts, breakdowns by kind, high segments
        self._folded_n: dict[str, int] = {}
        self._folded_breakdown: dict[str, array[float]] = {}
        self._folded_segs: list[Segment] = []

    def observe_scores(self, t: float, scores: Mapping[str, float] | Iterable[Score]) -> None:
        """Add other analysers' per-frame scores to the breakdown history (replays)."""
        for name, v in score_items(scores):
            if name not in SELF_SIGNALS:
                self._hist.add(name, t, v)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        row = np.full(len(FEATURES), np.nan, np.float64)
        full = frame_features(obs if obs.image is None else replace(obs, image=None))
        row[:] = full[: len(FEATURES)]
        out = self.update_features(row)
        self.observe_scores(obs.t, ctx.scores)  # after this frame's own episode bookkeeping
        if ctx.horizon_s is not None and self._done and self._done[0].end < obs.t - ctx.horizon_s:
            self._fold(obs.t - ctx.horizon_s)
        return () if out is None else (out,)

    def _fold(self, cut: float) -> None:
        """Fold the finished episodes that ended before ``cut`` (a live horizon) into counts,
        breakdowns by kind and the segments the summary would show."""
        k = 0
        while k < len(self._done) and self._done[k].end < cut:
            e = self._done[k]
            self._folded_n[e.kind] = self._folded_n.get(e.kind, 0) + 1
            if e.breakdown is not None:
                self._folded_breakdown.setdefault(e.kind, array("d")).append(float(e.breakdown))
                if e.breakdown >= 0.5:
                    fold_segment(self._folded_segs, Segment(e.start, e.end, float(e.breakdown), e.kind), 0.0)
            k += 1
        del self._done[:k]
        if len(self._folded_segs) > MAX_FOLDED_SEGMENTS:
            thin_segments(self._folded_segs)

    @staticmethod
    def _median(q: deque[tuple[float, float]]) -> float:
        return float(np.median([v for _, v in q])) if q else float("nan")

    def update_features(self, row: np.ndarray) -> Score | None:
        t = float(row[_T])
        o = self.options
        face = row[_FACE] > 0.5
        score = float(row[_SCORE])
        self._hist.add("tracking", t, 1.0 - score if face else 1.0)

        # occlusion: short loss of track, or confidence drop
        if not face:
            if self._lost_since is None and self._run_score:
                self._lost_since = t
        else:
            if self._lost_since is not None:
                if t - self._lost_since <= o.max_loss_s:
                    self._close("occlusion", self._lost_since, t)
                self._lost_since = None
            med = self._median(self._run_score)
            low = np.isfinite(med) and score < o.score_frac * med
            self._toggle("occlusion_score", low, not low, t)
            self._push(self._run_score, t, score)

            yaw = float(row[_YAW])
            if np.isfinite(yaw):
                self._toggle("head_turn", abs(yaw) >= o.turn_deg, abs(yaw) < o.turn_release_deg, t)
            ear = float(row[_EAR])
            if np.isfinite(ear):
                m = self._median(self._run_ear)
                if np.isfinite(m) and m > 1e-6:
                    r = ear / m
                    self._toggle("blink", r <= o.blink_ratio, r >= o.blink_release, t)
                if "blink" not in self._open:
                    self._push(self._run_ear, t, ear)
        return self._finalise(t)

    def _push(self, q: deque[tuple[float, float]], t: float, v: float) -> None:
        q.append((t, v))
        while q and q[0][0] < t - self.options.running_s:
            q.popleft()

    def _toggle(self, kind: str, on: bool, off: bool, t: float) -> None:
        if kind not in self._open:
            if on:
                self._open[kind] = t
        elif off or t - self._open[kind] > self.options.max_episode_s:
            start = self._open.pop(kind)
            if off:
                self._close("occlusion" if kind == "occlusion_score" else kind, start, t)

    def _close(self, kind: str, start: float, end: float) -> None:
        self._pending.append(_Episode(kind, start, end))

    def _finalise(self, t: float) -> Score | None:
        o = self.options
        out = None
        keep = []
        for ep in self._pending:
            if t < ep.end + o.tail_s:
                keep.append(ep)
                continue
            exclude = ("tracking",) if ep.kind == "occlusion" else ()
            t0 = ep.start - o.baseline_gap_s
            v, per = breakdown_scores(self._hist, t0, ep.end + o.tail_s, o.breakdown_baseline_s,
                                      o.breakdown_scale, exclude)
            # the during-window starts at the onset, the baseline ends baseline_gap_s before it
            self._done.append(replace(ep, breakdown=v, signals=per))
            if v is not None:
                out = Score(self.name, t, v)
        self._pending = keep
        return out

    @property
    def episodes(self) -> list[dict[str, Any]]:
        return [{"kind": e.kind, "start": e.start, "end": e.end, "breakdown": e.breakdown,
                 "signals": dict(e.signals)} for e in self._done]

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        eps = [e for e in self._done if e.breakdown is not None]
        counts = {k: float(sum(e.kind == k for e in self._done) + self._folded_n.get(k, 0))
                  for k in ("head_turn", "occlusion", "blink")}
        details = tuple((f"n_{k}", v) for k, v in counts.items())
        per_kind: dict[str, list[float]] = {k: list(v) for k, v in self._folded_breakdown.items()}
        for e in eps:
            per_kind.setdefault(e.kind, []).append(float(e.breakdown or 0.0))
        scored = sum(len(v) for v in per_kind.values())
        if not scored:
            return Signal(self.name, None, len(self._done) + sum(self._folded_n.values()), (), details)
        meds = {k: float(np.median(v)) for k, v in per_kind.items()}
        value = max(meds.values())
        segs = tuple(self._folded_segs) + tuple(Segment(e.start, e.end, float(e.breakdown or 0.0), e.kind)
                                                for e in eps if (e.breakdown or 0.0) >= 0.5)
        details = details + tuple((f"median_{k}", v) for k, v in meds.items())
        return Signal(self.name, value, scored, segs, details)
