"""Challenge catalogue: what the candidate is asked to do, and how each answer is verified.

Every challenge is verified from the face mesh (``obs.landmarks``, 478 MediaPipe points) and the
head pose (``obs.pose``) *relative to the candidate's own baseline*: the median of each measure
over the ``baseline_s`` seconds just before the prompt. Ratios use 3-D distances between mesh
points (x, y and z share the pixel scale), normalised by the distance between the outer eye
corners (points 33 and 263, "IOD"), so they hold at every head angle and distance.

Measures (one row of :func:`frame_features` per frame):

========================  ===================================================================
``yaw``, ``pitch``        head pose in degrees (``liveness.tracking.pose`` conventions: yaw > 0 = nose
                          toward the image's right = the candidate turns to *their* left on an
                          unmirrored camera; pitch > 0 = head tilts up)
``ear``                   eye aspect ratio, mean of both eyes: (|160-144| + |158-153|) /
                          (2 |33-133|) and the mirrored points on the other eye
``mouth_open``            inner-lip gap |13-14| / IOD
``mouth_width``           mouth-corner distance |61-291| / IOD
``brow``                  mean distance of the upper brow points (70 63 105 66 107 / 300 293
                          334 296 336) from their eye's corner midpoint, / IOD
``size``                  IOD in pixels (3-D): grows as the face comes closer to the camera
``score``                 tracking confidence (mesh face-presence score)
(thumbnail)               a 40x30 grey thumbnail of the frame; the change of one half of the
                          face region (fixed at its baseline place) is its mean absolute
                          difference from the baseline thumbnail over the baseline half's own
                          mean absolute contrast, after compensating the head's rigid move
                          (below)
========================  ===================================================================

Thresholds (defaults of :class:`ChallengeThresholds`, all relative to the baseline *b*):

- ``turn_left`` / ``turn_right``: signed yaw toward the asked side >= 35 deg **and** at least
  20 deg beyond *b* (the prompt waits for a near-frontal baseline, |yaw| <= 20 deg).
- ``look_up`` / ``look_down``: signed pitch change >= 15 deg from *b*.
- ``blink_twice``: two blinks whose onsets are <= 1.5 s apart; a blink is the eye aspect ratio
  falling to <= 0.6 x *b* and rising back to >= 0.8 x *b* within 0.8 s, while the head stays
  within 20 deg yaw / 15 deg pitch of *b* (turning the head must not read as a blink).
- ``open_mouth``: inner-lip gap >= max(*b* + 0.15, 0.28) IOD.
- ``smile``: mouth width >= 1.12 x *b* while the lip gap stays < *b* + 0.15 IOD.
- ``raise_eyebrows``: brow-to-eye distance >= 1.10 x *b*.
- ``cover_half_face``: *briefly* covered: one half of the face (left or right) changes by
  >= 0.5 while the other half changes less than 0.5 x as much, the head tracked and within
  20 deg yaw / 15 deg pitch of *b* and the nose within 1 IOD of its baseline place (or the
  tracking confidence under 0.6 x *b*), for >= 0.2 s,
  and then uncovered again (change < 0.7 x the covered peak on 2 frames); or the track is lost for <= 3 s
  and the face comes back within one IOD of where it was.
  With ``cover_hand`` (default on) the cover counts only when a tracked hand lay on at least
  ``cover_hand_coverage`` (0.15) of the face region on some frame from 0.5 s before the cover
  began to its end (:mod:`liveness.challenges.occlusion`); a cover without one fails as
  ``no_hand`` (a half that changes with no hand in front of it is a face changing, or a swap
  painting the face over the hand). How face-like the face stays under the hand is the
  challenge's ``face_under_hand`` breakdown signal.
  Optional rigid-move compensation (``cover_shift_iod``, default 0 = off): the baseline
  thumbnail is shifted on a 0.25-cell grid up to that many IODs (at most 3 cells) each way,
  and the shift that explains *one* half best (the uncovered half; a hand is not a shifted
  face) is applied to both halves. It keeps a cover that happens while the head drifts, but
  it is **off**: on talking faces the freedom to pick the shift makes one half look unchanged,
  so replays pass more often (measurements in ``benchmarks/README_challenges.md``).
- ``lean_closer``: face size (IOD px) >= 1.25 x *b*.

Every condition must hold on ``hold_frames`` (2) consecutive frames, and only frames at least
``min_latency_s`` (0.2 s) after the prompt count, so an action already under way when the
prompt came does not answer it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from liveness.challenges.features import _F, FEATURES, half_change, shifted_thumbs
from liveness.challenges.occlusion import HandReading, cover_swap_score
from liveness.challenges.types import ChallengeResult, ChallengeThresholds

__all__ = ["BlinksVerifier", "BrowsVerifier", "CoverVerifier", "LeanVerifier", "LookVerifier", "MouthVerifier",
           "RatioVerifier", "SmileVerifier", "TurnVerifier", "Verifier"]


def _steady(row: np.ndarray, base: np.ndarray, th: ChallengeThresholds) -> bool:
    """Head still within the blink tolerances of its pre-prompt pose (blinks, covering)."""
    return (abs(float(row[_F["yaw"]] - base[_F["yaw"]])) <= th.blink_yaw_tol
            and abs(float(row[_F["pitch"]] - base[_F["pitch"]])) <= th.blink_pitch_tol)


# -- verifiers ------------------------------------------------------------------------------
class Verifier:
    """Streaming check of one challenge: feed feature rows after the prompt with :meth:`step`;
    it returns True once the answer is seen. :meth:`result` builds the final record."""

    measure = ""

    def __init__(self, kind: str, index: int, prompt_t: float, base: np.ndarray,
                 th: ChallengeThresholds, min_latency_s: float = 0.2) -> None:
        self.kind, self.index, self.prompt_t, self.base, self.th = kind, index, prompt_t, base, th
        self.min_latency_s = min_latency_s
        self.peak: float | None = None
        self.run: list[float] = []  # timestamps of the current run of frames meeting the condition
        self.evidence: list[float] = []
        self.onset: float | None = None
        self.passed_t: float | None = None
        self.faces = 0

    # subclasses: value(row) -> measure or NaN; ok(value, row) -> condition met; near(value)
    threshold = 0.0
    higher = True

    def value(self, row: np.ndarray) -> float:
        raise NotImplementedError

    def ok(self, v: float, row: np.ndarray) -> bool:
        return v >= self.threshold if self.higher else v <= self.threshold

    def base_value(self) -> float | None:
        return None

    def _onset_level(self) -> float | None:
        b = self.base_value()
        if b is None or not np.isfinite(b):
            return None
        return b + 0.5 * (self.threshold - b)

    def step(self, row: np.ndarray) -> bool:
        if self.passed_t is not None:
            return True
        t = float(row[0])
        if t - self.prompt_t < self.min_latency_s:
            return False
        self.faces += int(row[_F["face"]] > 0.5)
        v = self.value(row)
        if np.isfinite(v):
            if self.peak is None or (v > self.peak if self.higher else v < self.peak):
                self.peak = float(v)
            lvl = self._onset_level()
            if self.onset is None and lvl is not None and (v >= lvl if self.higher else v <= lvl):
                self.onset = t
        if np.isfinite(v) and self.ok(v, row):
            self.run.append(t)
            if len(self.run) >= self.th.hold_frames:
                self.passed_t = t
                self.evidence = list(self.run)
                return True
        else:
            self.run = []
        return False

    def result(self, t_end: float) -> ChallengeResult:
        passed = self.passed_t is not None
        decided = self.passed_t if self.passed_t is not None else t_end
        reason = "performed" if passed else ("no_face" if self.faces == 0 else "timeout")
        ev = self.evidence if passed else []
        return ChallengeResult(
            self.index, self.kind, self.prompt_t, float(decided), passed, reason, self.measure,
            self.peak, float(self.threshold), self.base_value(), float(decided - self.prompt_t),
            None if self.onset is None else float(self.onset - self.prompt_t),
            np.asarray(ev, np.float64),
        )


class TurnVerifier(Verifier):
    measure = "yaw_deg"

    def __init__(self, *a: Any, sign: float, **k: Any) -> None:
        super().__init__(*a, **k)
        self.sign = -sign if self.th.mirrored else sign
        b = self.sign * float(self.base[_F["yaw"]])
        self.b = b
        self.threshold = max(self.th.turn_abs_deg, b + self.th.turn_delta_deg)

    def base_value(self) -> float | None:
        return self.b

    def value(self, row: np.ndarray) -> float:
        return self.sign * float(row[_F["yaw"]])


class LookVerifier(Verifier):
    measure = "pitch_change_deg"

    def __init__(self, *a: Any, sign: float, **k: Any) -> None:
        super().__init__(*a, **k)
        self.sign = sign
        self.threshold = self.th.look_delta_deg

    def base_value(self) -> float | None:
        return 0.0

    def value(self, row: np.ndarray) -> float:
        return self.sign * float(row[_F["pitch"]] - self.base[_F["pitch"]])


class RatioVerifier(Verifier):
    """value = feature / baseline feature."""

    feat = ""
    ratio_attr = ""

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.threshold = float(getattr(self.th, self.ratio_attr))

    def base_value(self) -> float | None:
        return 1.0

    def value(self, row: np.ndarray) -> float:
        b = float(self.base[_F[self.feat]])
        return float(row[_F[self.feat]]) / b if b > 1e-6 else float("nan")


class BrowsVerifier(RatioVerifier):
    measure, feat, ratio_attr = "brow_ratio", "brow", "brow_ratio"


class LeanVerifier(RatioVerifier):
    measure, feat, ratio_attr = "size_ratio", "size", "lean_ratio"


class SmileVerifier(RatioVerifier):
    measure, feat, ratio_attr = "mouth_width_ratio", "mouth_width", "smile_ratio"

    def ok(self, v: float, row: np.ndarray) -> bool:
        gap = float(row[_F["mouth_open"]])
        return v >= self.threshold and gap < float(self.base[_F["mouth_open"]]) + self.th.mouth_delta


class MouthVerifier(Verifier):
    measure = "mouth_open_iod"

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.b = float(self.base[_F["mouth_open"]])
        self.threshold = max(self.b + self.th.mouth_delta, self.th.mouth_abs)

    def base_value(self) -> float | None:
        return self.b

    def value(self, row: np.ndarray) -> float:
        return float(row[_F["mouth_open"]])


class BlinksVerifier(Verifier):
    """Counts blinks; the measure is the lowest eye-aspect ratio relative to baseline."""

    measure = "ear_ratio_min"
    higher = False

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.threshold = self.th.blink_closed
        self.b = float(self.base[_F["ear"]])
        self.closed_since: float | None = None
        self.blinks: list[tuple[float, float]] = []  # (onset, reopen) times

    def base_value(self) -> float | None:
        return 1.0

    def value(self, row: np.ndarray) -> float:
        return float(row[_F["ear"]]) / self.b if self.b > 1e-6 else float("nan")

    def step(self, row: np.ndarray) -> bool:
        if self.passed_t is not None:
            return True
        t = float(row[0])
        if t - self.prompt_t < self.min_latency_s:
            return False
        self.faces += int(row[_F["face"]] > 0.5)
        v = self.value(row)
        th = self.th
        steady = _steady(row, self.base, th)
        if not np.isfinite(v) or not steady:
            self.closed_since = None
            return False
        if self.peak is None or v < self.peak:
            self.peak = float(v)
        if v <= th.blink_closed:
            if self.closed_since is None:
                self.closed_since = t
                if self.onset is None:
                    self.onset = t
        elif v >= th.blink_open and self.closed_since is not None:
            if t - self.closed_since <= th.blink_max_s:
                self.blinks.append((self.closed_since, t))
            self.closed_since = None
            if len(self.blinks) >= 2 and self.blinks[-1][0] - self.blinks[-2][0] <= th.blink_pair_s:
                self.passed_t = t
                self.evidence = [*self.blinks[-2], *self.blinks[-1]]
                return True
        return False


class CoverVerifier(Verifier):
    """Occlusion of one half: appearance change of that half against the baseline patch with
    the other half steady, or a short track loss / confidence drop with the face coming back
    where it was. The measure is the larger half's change (1 = total loss)."""

    measure = "half_change"

    def __init__(self, *a: Any, **k: Any) -> None:
        super().__init__(*a, **k)
        self.threshold = self.th.cover_change
        self.base_patch = self.base[len(FEATURES):]
        self.has_patch = bool(np.all(np.isfinite(self.base_patch)))
        self.shifted = (shifted_thumbs(self.base_patch, self.base, self.th.cover_shift_iod)
                        if self.has_patch and self.th.cover_shift_iod > 0 else None)
        self.lost_since: float | None = None
        self.lost_run: list[float] = []
        self.covered_t: float | None = None
        self.cover_peak = 0.0
        self.free = 0
        self.readings: list[HandReading] = []
        self.no_hand = False

    def observe_hand(self, reading: HandReading) -> None:
        """The hands over the face in this frame (the engine calls it before :meth:`step`)."""
        self.readings.append(reading)

    def _hand_on(self, t0: float, t1: float) -> bool:
        """A hand lay on the face between t0 - 0.5 s and t1 (always True without ``cover_hand``);
        a cover without one is noted (``no_hand``) and forgotten."""
        th = self.th
        if not th.cover_hand or any(t0 - 0.5 <= r.t <= t1 and r.coverage >= th.cover_hand_coverage
                                    for r in self.readings):
            return True
        self.no_hand = True
        self.covered_t, self.cover_peak, self.free = None, 0.0, 0
        return False

    def result(self, t_end: float) -> ChallengeResult:
        r = super().result(t_end)
        if not r.passed and self.no_hand:
            r = replace(r, reason="no_hand")
        score, _parts = cover_swap_score(self.readings, self.th.cover_hand_coverage)
        return r if score is None else replace(r, breakdown_signals=(("face_under_hand", score),))

    def base_value(self) -> float | None:
        return 0.0

    def _half(self, row: np.ndarray) -> tuple[float, float]:
        if not self.has_patch:
            return float("nan"), float("nan")
        patch = row[len(FEATURES):]
        if not np.all(np.isfinite(patch)):
            return float("nan"), float("nan")
        # the head must still be where it was (the hand moves, the head does not)
        if np.isfinite(row[_F["cx"]]):
            moved = np.hypot(row[_F["cx"]] - self.base[_F["cx"]], row[_F["cy"]] - self.base[_F["cy"]])
            if moved > self.th.cover_move_iod * float(self.base[_F["size"]]):
                return float("nan"), float("nan")
        return half_change(patch, self.base_patch, self.base, self.shifted)

    def value(self, row: np.ndarray) -> float:
        a, b = self._half(row)
        return max(a, b)

    def ok(self, v: float, row: np.ndarray) -> bool:
        th = self.th
        a, b = self._half(row)
        hi, lo = max(a, b), min(a, b)
        steady = _steady(row, self.base, th)
        if steady and np.isfinite(hi) and hi >= th.cover_change and lo <= th.cover_other_frac * hi:
            return True
        return bool(float(row[_F["score"]]) < th.cover_score_frac * float(self.base[_F["score"]]))

    def step(self, row: np.ndarray) -> bool:
        if self.passed_t is not None:
            return True
        t = float(row[0])
        if t - self.prompt_t < self.min_latency_s:
            return False
        face = row[_F["face"]] > 0.5
        if not face:
            # a loss of track counts once the face comes back where it was
            if self.lost_since is None:
                self.lost_since = t
            self.lost_run.append(t)
            if self.peak is None or self.peak < 1.0:
                self.peak = 1.0
            if self.onset is None:
                self.onset = t
            self.run = []
            return False
        if self.lost_since is not None:
            dt = t - self.lost_since
            back = np.hypot(row[_F["cx"]] - self.base[_F["cx"]], row[_F["cy"]] - self.base[_F["cy"]])
            near = back <= self.th.cover_return_px * float(self.base[_F["size"]])
            if dt <= self.th.cover_max_loss_s and near and self._hand_on(self.lost_since, t):
                self.passed_t = t
                self.evidence = [self.lost_since, *self.lost_run[-1:], t]
                return True
            self.lost_since, self.lost_run = None, []
        self.faces += 1
        th = self.th
        v = self.value(row)
        if np.isfinite(v):
            if self.peak is None or v > self.peak:
                self.peak = float(v)
            if self.onset is None and v >= 0.5 * self.threshold:
                self.onset = t
        if np.isfinite(v) and self.ok(v, row):
            self.run.append(t)
            self.cover_peak = max(self.cover_peak, v)
            self.free = 0
            if (self.covered_t is None and len(self.run) >= th.hold_frames
                    and t - self.run[0] >= th.cover_hold_s):
                self.covered_t = t
                self.evidence = [self.run[0], t]
            return False
        self.run = []
        release = th.cover_release * max(self.threshold, self.cover_peak)
        if self.covered_t is not None and (not np.isfinite(v) or v < release):
            self.free += 1
            if self.free >= th.hold_frames and self._hand_on(self.evidence[0], t):
                # the hand is gone again: a brief cover, answered
                self.passed_t = t
                self.evidence.append(t)
                return True
        return False
