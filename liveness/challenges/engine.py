"""Challenge engine (prompts, verification, swap-breakdown scoring) and its opportunistic twin.

:class:`ChallengeEngine` is an analyser: feed it every observation with :meth:`~ChallengeEngine.update`
(frame timestamps drive it, so it works the same on a live stream and on recorded frames), start
a sequence with :meth:`~ChallengeEngine.start`, collect prompts and results from
:meth:`~ChallengeEngine.events`. States::

    idle --start()--> gap --(random wait)--> prompt --(baseline ok)--> wait --(answer | time limit)-->
    result --(tail)--> gap (next challenge) | idle (sequence done)

Sequences and waits come from :class:`secrets.SystemRandom` (no fixed order, no predictable
timing); a seeded :class:`random.Random` may be passed for tests.

Swap-breakdown scoring (:mod:`liveness.challenges.breakdown`): the engine records per-frame
scores of the other analysers (the frame context's ``scores``), plus the tracker's own
confidence (``tracking`` = 1 - mesh score, 1 when the face is lost). For each challenge it
compares each signal during the challenge (prompt → decision + ``tail_s``) with the same
signal over the ``breakdown_baseline_s`` before the prompt:
``rise = q90(during) - median(before)``, ``breakdown = clip(rise / breakdown_scale, 0, 1)``;
the challenge's breakdown is the largest over signals (``tracking`` is left out for the
occlusion challenge, where losing the track is the expected answer). A swap that fails at
profile or under the hand shows as a spike against the candidate's own baseline.

Hands: while a challenge whose table row asks for them (``cover_half_face``) is answered, a
:class:`~liveness.challenges.occlusion.FaceUnderHand` runs the hand source (the ``hands``
argument, else a :class:`~liveness.HandTracker` made when first needed) on each frame around the
face as it was at the prompt and hands the readings to the verifier; the cover passes only with
a hand on the face, and the readings' ``face_under_hand`` score (the face painted over the hand)
joins the challenge's breakdown signals.
"""

from __future__ import annotations

import random
import secrets
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from liveness.challenges.breakdown import SELF_SIGNALS, ScoreHistory, breakdown_scores, score_items
from liveness.challenges.features import NFEAT, baseline_of, feature_index, frame_features
from liveness.challenges.occlusion import FaceUnderHand
from liveness.challenges.spec import CHALLENGES, make_verifier, spec
from liveness.challenges.types import ChallengeResult, ChallengeThresholds
from liveness.challenges.verifiers import Verifier
from liveness.core.analyser import FrameContext
from liveness.core.errors import ConfigError
from liveness.core.protocols import HandSource
from liveness.core.types import Event, FaceObservation, Score, Segment, Signal

__all__ = ["ChallengeEngine", "EngineOptions"]

_T, _FACE, _SCORE = feature_index("t"), feature_index("face"), feature_index("score")
_YAW = feature_index("yaw")
_PITCH, _SIZE = feature_index("pitch"), feature_index("size")
_CX, _CY = feature_index("cx"), feature_index("cy")
_BROW, _MW, _MO = feature_index("brow"), feature_index("mouth_width"), feature_index("mouth_open")


@dataclass(frozen=True)
class EngineOptions:
    """Timing of a sequence (seconds) and verification thresholds.

    ``gap_s``: the random wait before each prompt is uniform in this range. ``time_limit_s``:
    time to answer unless the challenge's row in ``SPECS`` says otherwise; per kind overrides
    in ``time_limits``. ``baseline_s``: the baseline window
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
    shifts with pitch). The limits lie above idle sway and below the answers themselves (the
    measured ranges are in ``benchmarks/README_challenges.md``, "rest limits"); a candidate
    who keeps talking or moving is prompted after ``rest_wait_s`` anyway. The wait is
    invisible: nothing is shown before the prompt."""

    kinds: tuple[str, ...] = tuple(CHALLENGES)
    n: int = 3
    gap_s: tuple[float, float] = (1.0, 2.5)
    time_limit_s: float = 5.0
    time_limits: tuple[tuple[str, float], ...] = ()
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
        """Time to answer ``kind``: an override in ``time_limits``, else the table's, else
        ``time_limit_s``."""
        given = dict(self.time_limits).get(kind)
        if given is not None:
            return given
        row = spec(kind).time_limit_s
        return self.time_limit_s if row is None else row


class ChallengeEngine:
    """Analyser-shaped challenge-response engine (see module docs). ``name`` is the signal
    name of its summary, ``challenge_breakdown``."""

    name = "challenge_breakdown"

    def __init__(self, options: EngineOptions | None = None, rng: random.Random | None = None,
                 hands: HandSource | None = None) -> None:
        self.options = options or EngineOptions()
        self.rng = rng if rng is not None else secrets.SystemRandom()
        if hands is not None and not isinstance(hands, HandSource):
            raise ConfigError("hands must be a hand source (process(image, t, region), reset())")
        self._hand_source = hands
        self._cue: FaceUnderHand | None = None
        self._obs: FaceObservation | None = None
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
        self._hands_on = False

    def _hand_cue(self) -> FaceUnderHand:
        if self._cue is None:
            src = self._hand_source
            if src is None:
                from liveness.tracking.hands import HandTracker

                src = HandTracker()
            self._cue = FaceUnderHand(src)
        return self._cue

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
        """Add other analysers' per-frame scores to the breakdown history (:meth:`update` does
        this with the frame context's scores; replays call it directly)."""
        for name, v in score_items(scores):
            if name not in SELF_SIGNALS:
                self._hist.add(name, t, v)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        if self.state == "idle":  # nothing asked: keep the tracking history only (cheap)
            self._hist.add("tracking", obs.t, 1.0 - obs.score if obs.face else 1.0)
            out: Score | None = None
        else:
            self._obs = obs  # the frame itself, for the hands over the face
            try:
                out = self.update_features(frame_features(obs))
            finally:
                self._obs = None
        for e in self.events():
            ctx.emit(e)
        # the scores of the analysers before this one (the pipeline runs the engine after them)
        self.observe_scores(obs.t, ctx.scores)
        return () if out is None else (out,)

    def update_features(self, row: np.ndarray) -> Score | None:
        """Advance on one :func:`~liveness.challenges.features.frame_features` row, in time
        order (replays use this, then read :meth:`events`)."""
        t = float(row[_T])
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
        s = spec(kind)
        if not np.isfinite(base[feature_index(s.feature)]):
            return False
        if s.frontal:
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
            if base is not None and self._usable(kind, base) and settled:
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
            if self._hands_on and self._obs is not None:
                observe = getattr(self._verifier, "observe_hand", None)
                if observe is not None:
                    observe(self._hand_cue().measure(self._obs))
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
        self._hands_on = False
        if spec(kind).hands and o.thresholds.cover_hand and self._obs is not None:
            cue = self._hand_cue()
            cue.reset()
            self._hands_on = cue.set_reference(self._obs)

    def _finish(self, r: ChallengeResult, t: float) -> Score | None:
        o = self.options
        exclude = spec(r.kind).breakdown_exclude
        end = min(t, r.decided_t + o.tail_s)
        value, per = breakdown_scores(self._hist, r.prompt_t, end, o.breakdown_baseline_s,
                                      o.breakdown_scale, exclude)
        per = per + r.breakdown_signals  # the verifier's own (face_under_hand)
        if r.breakdown_signals:
            value = max(v for _, v in per)
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
        """Prompt / result / sequence events since the last call (:meth:`update` emits them
        into the frame context; replays through :meth:`update_features` read them here)."""
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

    def signals(self) -> dict[str, Signal]:
        """``challenge_breakdown`` and ``challenge`` (the fraction of prompts failed)."""
        return {self.name: self.summary(), "challenge": self.response_signal()}

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

