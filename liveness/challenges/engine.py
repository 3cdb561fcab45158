"""Challenge engine (prompts, verification, swap-breakdown scoring) and its opportunistic twin.

:class:`ChallengeEngine` is an analyser: feed it every observation with :meth:`~ChallengeEngine.update`
(frame timestamps drive it, so it works the same on a live stream and on recorded frames), start
a sequence with :meth:`~ChallengeEngine.start`, collect prompts and results from
:meth:`~ChallengeEngine.events`. States::

    idle --start()--> gap --(random wait)--> prompt --(baseline ok)--> wait --(answer | time limit)-->
    result --(tail)--> gap (next challenge) | idle (sequence done)

Sequences and waits come from :class:`secrets.SystemRandom` (no fixed order, no predictable
timing); a seeded :class:`random.Random` may be passed for tests.

Swap-breakdown scoring: the engine records per-frame scores of the other analysers, given to
it by whoever runs them (:meth:`~ChallengeEngine.observe_scores`), plus the tracker's own
confidence (``tracking`` = 1 - mesh score, 1 when the face is lost). For each challenge it
compares each signal during the challenge (prompt → decision + ``tail_s``) with the same
signal over the ``breakdown_baseline_s`` before the prompt:
``rise = q90(during) - median(before)``, ``breakdown = clip(rise / breakdown_scale, 0, 1)``;
the challenge's breakdown is the largest over signals (``tracking`` is left out for the
occlusion challenge, where losing the track is the expected answer). A swap that fails at
profile or under the hand shows as a spike against the candidate's own baseline.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from liveness.challenges.verifiers import (
    CHALLENGES,
    FEATURES,
    NFEAT,
    ChallengeResult,
    ChallengeThresholds,
    Verifier,
    baseline_of,
    feature_index,
    frame_features,
    make_verifier,
)
from liveness.core.errors import ConfigError
from liveness.core.session import Event
from liveness.core.types import FaceObservation, Score, Segment, Signal

__all__ = [
    "ChallengeEngine",
    "ChallengeResponse",
    "EngineOptions",
    "OpportunisticAnalyser",
    "OpportunisticOptions",
    "ScoreHistory",
    "breakdown_scores",
]

_T, _FACE, _SCORE = feature_index("t"), feature_index("face"), feature_index("score")
_YAW, _EAR = feature_index("yaw"), feature_index("ear")
_PITCH, _SIZE = feature_index("pitch"), feature_index("size")
_CX, _CY = feature_index("cx"), feature_index("cy")
_BROW, _MW, _MO = feature_index("brow"), feature_index("mouth_width"), feature_index("mouth_open")
_SELF = {"challenge_breakdown", "opportunistic_breakdown", "challenge"}


# -- score history and breakdown ------------------------------------------------------------
class ScoreHistory:
    """Per-signal (t, value) history over a sliding window of ``keep_s`` seconds."""

    def __init__(self, keep_s: float = 30.0) -> None:
        self.keep_s = keep_s
        self._d: dict[str, deque[tuple[float, float]]] = {}

    def add(self, name: str, t: float, value: float) -> None:
        v = float(value)
        if not np.isfinite(v):
            return
        q = self._d.setdefault(name, deque())
        q.append((float(t), v))
        while q and q[0][0] < t - self.keep_s:
            q.popleft()

    def names(self) -> list[str]:
        return sorted(self._d)

    def window(self, name: str, a: float, b: float) -> np.ndarray:
        """Values with a <= t < b."""
        q = self._d.get(name)
        if not q:
            return np.zeros(0)
        return np.array([v for t, v in q if a <= t < b], np.float64)

    def clear(self) -> None:
        self._d.clear()


def breakdown_scores(hist: ScoreHistory, t0: float, t1: float, baseline_s: float = 2.0,
                     scale: float = 0.3, exclude: Iterable[str] = ()) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """Breakdown of every signal in ``hist`` over [t0, t1] against [t0 - baseline_s, t0):
    clip((q90(during) - median(before)) / scale, 0, 1); overall = max (None if no signal has
    >= 2 values in both windows)."""
    ex = set(exclude)
    per: list[tuple[str, float]] = []
    for name in hist.names():
        if name in ex or name in _SELF:
            continue
        before = hist.window(name, t0 - baseline_s, t0)
        during = hist.window(name, t0, t1 + 1e-9)
        if len(before) < 2 or len(during) < 2:
            continue
        rise = float(np.quantile(during, 0.9) - np.median(before))
        per.append((name, float(np.clip(rise / scale, 0.0, 1.0))))
    if not per:
        return None, ()
    return max(v for _, v in per), tuple(per)


def _score_items(scores: Mapping[str, float] | Iterable[Score]) -> list[tuple[str, float]]:
    if isinstance(scores, Mapping):
        return [(str(k), float(v)) for k, v in scores.items()]
    return [(s.signal, float(s.value)) for s in scores]


# -- engine ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class EngineOptions:
    """Timing of a sequence (seconds) and verification thresholds.

    ``gap_s``: the random wait before each prompt is uniform in this range. ``time_limit_s``:
    time to answer, per kind overrides in ``time_limits``. ``baseline_s``: the baseline window
    before each prompt. ``max_defer_s``: a prompt waits at most this long for a usable baseline
    (face tracked, near-frontal for head turns), then fails with ``no_face``.

    A due prompt also waits, at most ``rest_wait_s``, for the face to be *at rest* over the
    baseline window (ranges over the window): nose <= ``rest_nose_iod`` IOD, face size <=
    ``rest_size_frac`` of the size, yaw and pitch <= ``rest_angle_deg``, brow distance <=
    ``rest_brow_frac`` of its median, mouth width <= ``rest_mouth_frac`` of its median and lip
    gap <= ``rest_mouth_frac`` IOD. The baseline is the pose and face to compare against; taken
    while the candidate is still coming back from the previous answer (leaning back, lowering
    the brows, ending a smile) it is a state about to be left, and leaving it reads as change
    in every measure (both face halves change for the occlusion check, the eye aspect ratio
    shifts with pitch). The limits are well above the avatar's idle sway (99th percentile of
    the 1 s ranges: nose 0.15 IOD, size 0.03, yaw 4.2 deg, pitch 3.8 deg, brow 0.04, mouth
    width 0.05, lip gap 0.02 IOD) and below the answers themselves (a lean 0.55, a look 29 deg,
    raised brows 0.25, a smile 0.30, an open mouth 0.28 IOD); on the real dev clips (people
    talking) each is above the median range (nose 0.19 IOD, yaw 3.7 deg, brow 0.05, mouth
    width 0.14, lip gap 0.10 IOD), and a candidate who keeps talking or moving is prompted
    after ``rest_wait_s`` anyway. The wait is invisible: nothing is shown before the prompt."""

    kinds: tuple[str, ...] = tuple(CHALLENGES)
    n: int = 3
    gap_s: tuple[float, float] = (1.0, 2.5)
    time_limit_s: float = 5.0
    time_limits: tuple[tuple[str, float], ...] = (("blink_twice", 5.5), ("cover_half_face", 6.0))
    baseline_s: float = 1.0
    min_latency_s: float = 0.2
    max_defer_s: float = 8.0
    rest_wait_s: float = 3.0
    rest_nose_iod: float = 0.3
    rest_size_frac: float = 0.1
    rest_angle_deg: float = 10.0
    rest_brow_frac: float = 0.1
    rest_mouth_frac: float = 0.15
    tail_s: float = 0.5
    breakdown_baseline_s: float = 2.0
    breakdown_scale: float = 0.3
    history_s: float = 40.0
    thresholds: ChallengeThresholds = field(default_factory=ChallengeThresholds)

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in CHALLENGES]
        if unknown:
            raise ConfigError(f"unknown challenges {unknown}; known: {sorted(CHALLENGES)}")
        if not self.kinds:
            raise ConfigError("kinds must not be empty")
        if not 0 <= self.gap_s[0] <= self.gap_s[1]:
            raise ConfigError("gap_s must be (lo, hi) with 0 <= lo <= hi")
        if self.time_limit_s <= 0 or self.baseline_s <= 0:
            raise ConfigError("time limits and baseline must be > 0")

    def limit(self, kind: str) -> float:
        return dict(self.time_limits).get(kind, self.time_limit_s)


class ChallengeEngine:
    """Analyser-shaped challenge-response engine (see module docs). ``name`` is the signal
    name of its summary, ``challenge_breakdown``."""

    name = "challenge_breakdown"

    def __init__(self, options: EngineOptions | None = None, rng: random.Random | None = None) -> None:
        self.options = options or EngineOptions()
        self.rng = rng if rng is not None else secrets.SystemRandom()
        self.reset()

    @classmethod
    def from_options(cls, options: EngineOptions) -> ChallengeEngine:
        return cls(options)

    # -- control ---------------------------------------------------------------------------
    def reset(self) -> None:
        self.state = "idle"
        self._rows: deque[np.ndarray] = deque()
        self._queue: list[str] = []
        self._next_prompt_t = 0.0
        self._due_t = 0.0
        self._verifier: Verifier | None = None
        self._deadline = 0.0
        self._decided: ChallengeResult | None = None
        self._tail_end = 0.0
        self._results: list[ChallengeResult] = []
        self._events: list[Event] = []
        self._hist = ScoreHistory(self.options.history_s)
        self._index = 0
        self._seq = 0
        self._seq_res: list[ChallengeResult] = []
        self._last_t: float | None = None

    def start(self, t: float, n: int | None = None, kinds: Sequence[str] | None = None) -> list[str]:
        """Start a sequence at time ``t``: ``n`` distinct random kinds (default options.n), or
        the explicit ``kinds`` in that order. Returns the planned kinds (the interviewer sees
        each only when it is prompted). A running sequence is replaced."""
        if kinds is None:
            n = self.options.n if n is None else int(n)
            pool = list(self.options.kinds)
            if not 1 <= n <= len(pool):
                raise ConfigError(f"n must be in 1..{len(pool)}")
            kinds = self.rng.sample(pool, n)
        else:
            kinds = list(kinds)
            bad = [k for k in kinds if k not in CHALLENGES]
            if bad or not kinds:
                raise ConfigError(f"unknown or empty challenge list {kinds}; known: {sorted(CHALLENGES)}")
        self._queue = list(kinds)
        self._seq += 1
        self._seq_res = []
        self._verifier = None
        self._decided = None
        self._schedule(float(t))
        return list(kinds)

    def stop(self, t: float) -> None:
        """Abandon the running sequence (a pending prompt is failed as ``stopped``)."""
        if self._verifier is not None:
            r = replace(self._verifier.result(t), reason="stopped")
            self._finish(r, t)
        self._queue = []
        self._verifier = None
        self.state = "idle"

    def _schedule(self, t: float) -> None:
        lo, hi = self.options.gap_s
        self._next_prompt_t = t + self.rng.uniform(lo, hi)
        self.state = "gap"

    # -- feeding ---------------------------------------------------------------------------
    def observe_scores(self, t: float, scores: Mapping[str, float] | Iterable[Score]) -> None:
        """Give the engine other analysers' per-frame scores (for the breakdown)."""
        for name, v in _score_items(scores):
            if name not in _SELF:
                self._hist.add(name, t, v)

    def update(self, obs: FaceObservation) -> Score | None:
        if self.state == "idle":  # nothing asked: keep the tracking history only (cheap)
            if self._last_t is None or obs.t > self._last_t:
                self._last_t = obs.t
                self._hist.add("tracking", obs.t, 1.0 - obs.score if obs.face else 1.0)
            return None
        return self.update_features(frame_features(obs))

    def update_features(self, row: np.ndarray) -> Score | None:
        """Advance on one :func:`~liveness.challenges.verifiers.frame_features` row (replays use this)."""
        t = float(row[_T])
        if self._last_t is not None and t <= self._last_t:
            return None  # out-of-order frames are ignored (the Session enforces order)
        self._last_t = t
        o = self.options
        self._rows.append(row)
        keep = max(o.baseline_s, o.breakdown_baseline_s) + 1.0
        while self._rows and float(self._rows[0][_T]) < t - keep:
            self._rows.popleft()
        face = row[_FACE] > 0.5
        self._hist.add("tracking", t, 1.0 - float(row[_SCORE]) if face else 1.0)
        return self._advance(row, t)

    def _baseline(self, t: float) -> np.ndarray | None:
        lo = t - self.options.baseline_s
        rows = [r for r in self._rows if lo <= float(r[_T]) <= t]
        return baseline_of(np.stack(rows)) if rows else None

    def _at_rest(self, t: float) -> bool:
        """Head at rest over the baseline window (see :class:`EngineOptions`)."""
        o = self.options
        lo = t - o.baseline_s
        rows = [r for r in self._rows if lo <= float(r[_T]) <= t and r[_FACE] > 0.5]
        if len(rows) < 3:
            return False
        a = np.stack(rows)
        size = a[:, _SIZE]
        size = size[np.isfinite(size)]
        if len(size) < 3:
            return False
        iod = float(np.median(size))
        nose = a[:, [_CX, _CY]]
        nose = nose[np.all(np.isfinite(nose), axis=1)]
        if len(nose) and float(np.hypot(*np.ptp(nose, axis=0))) > o.rest_nose_iod * iod:
            return False
        if float(np.ptp(size)) > o.rest_size_frac * iod:
            return False
        for col, lim in ((_YAW, o.rest_angle_deg), (_PITCH, o.rest_angle_deg),
                         (_BROW, o.rest_brow_frac), (_MW, o.rest_mouth_frac),
                         (_MO, o.rest_mouth_frac)):
            v = a[:, col]
            v = v[np.isfinite(v)]
            if col in (_BROW, _MW):  # ratios: range over the median
                v = v / max(float(np.median(v)), 1e-6) if len(v) else v
            if len(v) and float(np.ptp(v)) > lim:
                return False
        return True

    def _usable(self, kind: str, base: np.ndarray | None) -> bool:
        if base is None:
            return False
        need = {"turn_left": "yaw", "turn_right": "yaw", "look_up": "pitch", "look_down": "pitch",
                "blink_twice": "ear", "open_mouth": "mouth_open", "smile": "mouth_width",
                "raise_eyebrows": "brow", "lean_closer": "size", "cover_half_face": "size"}[kind]
        if not np.isfinite(base[feature_index(need)]):
            return False
        if kind in ("turn_left", "turn_right", "blink_twice"):
            yaw = float(base[_YAW])
            return np.isfinite(yaw) and abs(yaw) <= self.options.thresholds.turn_baseline_max_deg
        return True

    def _advance(self, row: np.ndarray, t: float) -> Score | None:
        o = self.options
        if self.state == "gap" and t >= self._next_prompt_t:
            self.state = "prompt"
            self._due_t = t
        if self.state == "prompt":
            kind = self._queue[0]
            base = self._baseline(t)
            settled = t - self._due_t >= o.rest_wait_s or self._at_rest(t)
            if self._usable(kind, base) and settled:
                self._queue.pop(0)
                self._prompt(kind, t, base)
            elif t - self._due_t > o.max_defer_s:
                self._queue.pop(0)
                self._index += 1
                self._emit_prompt(kind, t)
                dummy = np.full(NFEAT, np.nan, np.float64)
                v = make_verifier(kind, self._index, t, dummy, o.thresholds, o.min_latency_s)
                self._decided = replace(v.result(t), reason="no_face")
                self._tail_end = t
                self.state = "result"
            return None
        if self.state == "wait":
            assert self._verifier is not None
            done = self._verifier.step(row)
            if done or t >= self._deadline:
                self._decided = self._verifier.result(t)
                self._verifier = None
                self._tail_end = self._decided.decided_t + o.tail_s
                self.state = "result"
            return None
        if self.state == "result" and t >= self._tail_end:
            assert self._decided is not None
            r = self._decided
            self._decided = None
            return self._finish(r, t)
        return None

    def _emit_prompt(self, kind: str, t: float) -> None:
        self._events.append(Event(
            t, "challenge.prompt", CHALLENGES[kind],
            (("index", self._index), ("kind", kind), ("sequence", self._seq),
             ("time_limit_s", self.options.limit(kind))),
        ))

    def _prompt(self, kind: str, t: float, base: np.ndarray) -> None:
        o = self.options
        self._index += 1
        self._emit_prompt(kind, t)
        self._verifier = make_verifier(kind, self._index, t, base, o.thresholds, o.min_latency_s)
        self._deadline = t + o.limit(kind)
        self.state = "wait"

    def _finish(self, r: ChallengeResult, t: float) -> Score | None:
        o = self.options
        exclude = ("tracking",) if r.kind == "cover_half_face" else ()
        end = min(t, r.decided_t + o.tail_s)
        value, per = breakdown_scores(self._hist, r.prompt_t, end, o.breakdown_baseline_s,
                                      o.breakdown_scale, exclude)
        r = replace(r, breakdown=value, breakdown_signals=per)
        self._results.append(r)
        self._seq_res.append(r)
        d = r.to_dict()
        self._events.append(Event(
            t, "challenge.result",
            f"{r.kind}: {'passed' if r.passed else 'failed'} ({r.reason})",
            tuple((k, v) for k, v in d.items()) + (("sequence", self._seq),),
        ))
        if self._queue:
            self._schedule(t)
        else:
            self.state = "idle"
            seq = self._seq_res
            self._events.append(Event(
                t, "challenge.sequence",
                "all challenges passed" if all(x.passed for x in seq) else "challenge sequence failed",
                (("sequence", self._seq), ("passed", all(x.passed for x in seq)), ("n", len(seq))),
            ))
        return Score(self.name, t, 0.0 if value is None else value)

    # -- reading ---------------------------------------------------------------------------
    def events(self) -> list[Event]:
        """Pending prompt / result / sequence events since the last call."""
        ev, self._events = self._events, []
        return ev

    def results(self) -> list[ChallengeResult]:
        """Every finished challenge (all sequences), in order."""
        return list(self._results)

    @property
    def current(self) -> str | None:
        """The kind being answered now (None when not waiting for an answer)."""
        return None if self._verifier is None else self._verifier.kind

    @property
    def pending(self) -> int:
        return len(self._queue) + (self._verifier is not None) + (self._decided is not None)

    def sequence_passed(self) -> bool | None:
        """True when every challenge of the last sequence passed; None while it runs or if none."""
        if not self._seq or self.pending or not self._seq_res:
            return None
        return all(r.passed for r in self._seq_res)

    def sequence_results(self) -> list[ChallengeResult]:
        """Results of the latest sequence so far."""
        return list(self._seq_res)

    def summary(self) -> Signal:
        rs = self._results
        segs = tuple(
            Segment(r.prompt_t, r.decided_t, 0.0 if r.breakdown is None else r.breakdown,
                    f"{r.kind}: {'passed' if r.passed else 'failed'} ({r.reason})")
            for r in rs
        )
        bd = [r.breakdown for r in rs if r.breakdown is not None]
        passed = sum(r.passed for r in rs)
        details = (("prompted", float(len(rs))), ("passed", float(passed)),
                   ("failed", float(len(rs) - passed)),
                   ("pass_rate", passed / len(rs) if rs else float("nan")))
        return Signal(self.name, max(bd) if bd else None, len(rs), segs, details)

    def response_signal(self) -> Signal:
        """``challenge``: the fraction of prompts not answered (None before any)."""
        rs = self._results
        if not rs:
            return Signal("challenge", None, 0)
        failed = [r for r in rs if not r.passed]
        segs = tuple(Segment(r.prompt_t, r.decided_t, 1.0, f"{r.kind}: {r.reason}") for r in failed)
        return Signal("challenge", len(failed) / len(rs), len(rs), segs,
                      (("failed", float(len(failed))),))


class ChallengeResponse:
    """The engine's ``challenge`` signal (fraction of prompts failed) as its own analyser, so a
    session reports it beside ``challenge_breakdown``: ``[engine, ChallengeResponse(engine)]``."""

    name = "challenge"

    def __init__(self, engine: ChallengeEngine) -> None:
        self.engine = engine

    def update(self, obs: FaceObservation) -> Score | None:
        return None

    def summary(self) -> Signal:
        return self.engine.response_signal()

    def reset(self) -> None:
        pass


# -- opportunistic mode ---------------------------------------------------------------------
@dataclass(frozen=True)
class OpportunisticOptions:
    """Natural episodes found in a recording without prompts: head turns (|yaw| >= ``turn_deg``),
    occlusions (track lost for at most ``max_loss_s`` or confidence under ``score_frac`` x its
    running median) and blinks (eye aspect ratio <= ``blink_ratio`` x its running median).
    Each is scored like a challenge (breakdown against the ``breakdown_baseline_s`` before it,
    ``baseline_gap_s`` clear of the onset). The clip value is the largest, over episode kinds,
    of the median breakdown of that kind's episodes."""

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
    around them (signal ``opportunistic_breakdown``). Feed scores with :meth:`observe_scores`."""

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
        self._last_t: float | None = None

    def observe_scores(self, t: float, scores: Mapping[str, float] | Iterable[Score]) -> None:
        for name, v in _score_items(scores):
            if name not in _SELF:
                self._hist.add(name, t, v)

    def update(self, obs: FaceObservation) -> Score | None:
        row = np.full(len(FEATURES), np.nan, np.float64)
        full = frame_features(obs if obs.image is None else replace(obs, image=None))
        row[:] = full[: len(FEATURES)]
        return self.update_features(row)

    @staticmethod
    def _median(q: deque[tuple[float, float]]) -> float:
        return float(np.median([v for _, v in q])) if q else float("nan")

    def update_features(self, row: np.ndarray) -> Score | None:
        t = float(row[_T])
        if self._last_t is not None and t <= self._last_t:
            return None
        self._last_t = t
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

    def summary(self) -> Signal:
        eps = [e for e in self._done if e.breakdown is not None]
        counts = {k: float(sum(e.kind == k for e in self._done)) for k in ("head_turn", "occlusion", "blink")}
        details = tuple((f"n_{k}", v) for k, v in counts.items())
        if not eps:
            return Signal(self.name, None, len(self._done), (), details)
        per_kind: dict[str, list[float]] = {}
        for e in eps:
            per_kind.setdefault(e.kind, []).append(float(e.breakdown or 0.0))
        meds = {k: float(np.median(v)) for k, v in per_kind.items()}
        value = max(meds.values())
        segs = tuple(Segment(e.start, e.end, float(e.breakdown or 0.0), e.kind)
                     for e in eps if (e.breakdown or 0.0) >= 0.5)
        details = details + tuple((f"median_{k}", v) for k, v in meds.items())
        return Signal(self.name, value, len(eps), segs, details)
