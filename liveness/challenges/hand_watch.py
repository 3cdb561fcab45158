"""Watching for a hand near the face outside the challenges: natural hand-over-face moments
(a hand on the cheek, the chin on a fist, a scratch of the nose) scored with the same
swap-over-hand cue as the cover challenge (:mod:`liveness.challenges.occlusion`).

While no hand is near the face, the hand source runs at a low rate (``rate_hz``, 2 Hz by
default) on a window ``region_scale`` x the face around it, so a frame costs on average a
fraction of one palm search. Each look that finds no hand refreshes the reference face
(:meth:`FaceUnderHand.set_reference`: the face as it is without a hand). A look that finds a
hand opens an **episode**: the hand source then runs on every frame (following the hand from
its landmarks, the cheap path), each frame measured against the reference face taken before the
hand came, until no hand was seen for ``release_s`` or the episode lasted ``max_episode_s``
(then back to the low rate, so a hand resting on the face for minutes costs no more than that).

An episode whose hand lay on at least ``min_coverage`` of the face on ``min_covered`` frames or
more is **scored**: the median face likeness under the hand on those frames (near 0 for a real
hand, near 1 when the face is painted back over it, as a swapper without an occlusion mask
does). The cover challenge's second part ("the hand came and did not stay") is not used: a
natural hand near the face need not cover it.

Signal ``hand_over_face``: the median score of the scored episodes (None when none was scored:
nothing to judge); its details count the episodes (``n_near``: a hand came near the face,
``n_covered``: scored) and the hand-source calls. The analyser runs after every other one and
returns a score only when an episode closes, so no other signal sees it; the packaged fusion
has no weight for it (a signal it was not fitted on counts nothing until a refit,
``docs/fusion.md``). Disabled (``enabled=False``), it runs nothing and reports no signal.
Costs: ``benchmarks/bench_hand_watch.py`` (benchmarks/README_hands.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from liveness.challenges.occlusion import FaceUnderHand, FaceUnderHandOptions, HandReading
from liveness.core.analyser import FrameContext
from liveness.core.errors import ConfigError
from liveness.core.protocols import HandSource
from liveness.core.types import FaceObservation, Score, Segment, Signal

__all__ = ["HandEpisode", "HandWatchAnalyser", "HandWatchOptions"]


@dataclass(frozen=True)
class HandWatchOptions:
    """See the module docstring. ``max_reference_age_s``: a reference face older than this
    (a hand stayed, the face was lost) is taken afresh before an episode may open;
    ``flag``: scored episodes from this score are the signal's segments; ``cue``: the
    face-under-hand measurement's options."""

    enabled: bool = True
    rate_hz: float = 2.0
    region_scale: float = 3.0
    release_s: float = 0.5
    max_episode_s: float = 6.0
    min_coverage: float = 0.15
    min_covered: int = 3
    max_reference_age_s: float = 2.0
    flag: float = 0.5
    cue: FaceUnderHandOptions = FaceUnderHandOptions()

    def __post_init__(self) -> None:
        if not self.rate_hz > 0:
            raise ConfigError(f"HandWatchOptions.rate_hz must be > 0, got {self.rate_hz}")
        if not (self.release_s >= 0 and self.max_episode_s > 0 and self.max_reference_age_s > 0):
            raise ConfigError("HandWatchOptions: release_s >= 0, max_episode_s and max_reference_age_s > 0")
        if not 0.0 < self.min_coverage <= 1.0 or self.min_covered < 1:
            raise ConfigError("HandWatchOptions: min_coverage in (0, 1], min_covered >= 1")


@dataclass(frozen=True)
class HandEpisode:
    """A hand near the face from ``start`` to ``end`` (seconds): ``frames`` measured,
    ``covered`` of them with a hand on >= ``min_coverage`` of the face, ``max_coverage``,
    ``score`` the median face likeness under the hand on those (None: not scored)."""

    start: float
    end: float
    frames: int
    covered: int
    max_coverage: float
    score: float | None


class HandWatchAnalyser:
    """``HandWatchAnalyser(options, hands=HandTracker())``: see the module docstring."""

    name = "hand_over_face"

    def __init__(self, options: HandWatchOptions | None = None, hands: HandSource | None = None) -> None:
        self.options = options or HandWatchOptions()
        if hands is not None and not isinstance(hands, HandSource):
            raise ConfigError("hands must be a hand source (process(image, t, region), reset())")
        self._source = hands
        self._cue: FaceUnderHand | None = None
        self.reset()

    @classmethod
    def from_options(cls, options: HandWatchOptions) -> HandWatchAnalyser:
        return cls(options)

    def reset(self) -> None:
        self._next_look = -np.inf
        self._ref_t: float | None = None
        self._open: list[HandReading] = []
        self._start = self._last_hand = 0.0
        self._episodes: list[HandEpisode] = []
        self.calls = 0  # hand-source calls (palm search or following)
        if self._cue is not None:
            self._cue.reset()

    def _get_cue(self) -> FaceUnderHand:
        if self._cue is None:
            src = self._source
            if src is None:  # made when first needed: its models load on the first look
                from liveness.tracking.hands import HandTracker

                src = HandTracker()
            self._cue = FaceUnderHand(src, replace(self.options.cue, region_scale=self.options.region_scale))
        return self._cue

    @property
    def following(self) -> bool:
        """Whether an episode is open (the hand source runs on every frame)."""
        return bool(self._open)

    @property
    def episodes(self) -> tuple[HandEpisode, ...]:
        return tuple(self._episodes)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        o = self.options
        if not o.enabled:
            return ()
        t = float(obs.t)
        if self._open:
            out = self._follow(obs, t)
            return () if out is None else (out,)
        if t < self._next_look or not obs.face or obs.image is None or obs.landmarks is None:
            return ()
        self._next_look = t + 1.0 / o.rate_hz
        cue = self._get_cue()
        fresh = self._ref_t is not None and t - self._ref_t <= o.max_reference_age_s and cue.has_reference
        if not fresh:
            # no recent face without a hand: take this frame as the reference and look at it
            if not cue.set_reference(obs):
                return ()
            self._ref_t = t
        reading = self._measure(cue, obs)
        if reading.hands == 0:
            if fresh and cue.set_reference(obs):
                self._ref_t = t
            return ()
        if not fresh:
            # the hand is already on the reference: wait for a look without it
            self._ref_t = None
            cue.reset()
            return ()
        self._open, self._start, self._last_hand = [reading], t, t
        return ()

    def _measure(self, cue: FaceUnderHand, obs: FaceObservation) -> HandReading:
        self.calls += 1
        return cue.measure(obs)

    def _follow(self, obs: FaceObservation, t: float) -> Score | None:
        o = self.options
        if obs.image is not None:
            r = self._measure(self._get_cue(), obs)
            self._open.append(r)
            if r.hands > 0:
                self._last_hand = t
        if t - self._last_hand <= o.release_s and t - self._start < o.max_episode_s:
            return None
        ep = self._close(t)
        self._next_look = t + 1.0 / o.rate_hz
        return None if ep.score is None else Score(self.name, t, ep.score)

    def _episode(self, t: float) -> HandEpisode:
        """The open episode as it stands at ``t``."""
        o, rs = self.options, self._open
        cov = [r.coverage for r in rs if np.isfinite(r.coverage)]
        on = [r.face_likeness for r in rs if np.isfinite(r.coverage) and r.coverage >= o.min_coverage
              and np.isfinite(r.face_likeness)]
        score = float(np.median(on)) if len(on) >= o.min_covered else None
        return HandEpisode(self._start, min(t, self._last_hand), len(rs), len(on), max(cov, default=0.0), score)

    def _close(self, t: float) -> HandEpisode:
        ep = self._episode(t)
        self._episodes.append(ep)
        self._open = []
        self._ref_t = None  # the next look takes the face afresh (the hand may still be there)
        return ep

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()} if self.options.enabled else {}

    def summary(self) -> Signal:
        eps = list(self._episodes)
        if self._open:  # an episode still open when the clip ends counts as it stands
            eps.append(self._episode(self._last_hand))
        scored = [e for e in eps if e.score is not None]
        details: tuple[tuple[str, float], ...] = (
            ("n_near", float(len(eps))), ("n_covered", float(len(scored))), ("hand_calls", float(self.calls)))
        if not scored:
            return Signal(self.name, None, 0, (), details)
        vals = [float(e.score or 0.0) for e in scored]
        segs = tuple(Segment(e.start, e.end, float(e.score or 0.0), "face under the hand")
                     for e in scored if (e.score or 0.0) >= self.options.flag)
        return Signal(self.name, float(np.median(vals)), len(scored), segs, details + (("max", max(vals)),))
