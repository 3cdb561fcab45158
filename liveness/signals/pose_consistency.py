"""Head-pose consistency after Yang, Li & Lyu (ICASSP 2019, "Exposing deep fakes using
inconsistent head poses").

A face swap replaces the central face (eyes, brows, nose, mouth) and keeps the real head, so a
head pose estimated from the central face alone can disagree with one estimated from the whole
face including its outer contour. Per frame we solve PnP for both point sets against the
canonical 3D face and measure how far apart the two poses are: the rotation angle between them
and the angle between their translation directions.

The raw disagreement depends on the person's face shape (a constant offset) and on head pose
(the contour is fitted to the silhouette at large yaw), so the per-frame score is a z-score
against the candidate's *own* running baseline at a similar |yaw|: genuine faces of every head
angle score alike, and what is flagged is a disagreement that departs from how this face
usually behaves.

Caveat, measured (see ``benchmarks/README_analysers.md``): the face mesh predicts all 478
points jointly from the image of the (possibly swapped) face, so its contour follows the swap;
the cue is weak on real-time swaps.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from liveness.core.analyser import FrameContext, ScoreSeries
from liveness.core.errors import ConfigError
from liveness.core.history import History
from liveness.core.mathx import logistic
from liveness.core.record import trim_before
from liveness.core.types import FaceObservation, Score, Signal
from liveness.tracking.regions import CENTRAL, CONTOUR

__all__ = [
    "PoseConsistencyAnalyser",
    "PoseConsistencyOptions",
    "PoseDisagreement",
    "PoseDisagreementEstimator",
]


@dataclass(frozen=True)
class PoseConsistencyOptions:
    """``min_size_px``: faces smaller than this (sqrt of box area) are skipped.
    ``baseline_s``: how far back the candidate's own baseline reaches; ``yaw_bin_deg``: frames
    within this |yaw| distance form the baseline of a frame; ``min_baseline``: frames needed
    before a score is given. ``z_mid``/``z_width``: logistic map of the z-score to 0..1.
    ``rot_floor_deg``/``trans_floor_deg``: floors of the baseline spread (noise level).
    ``quantile``/``smooth_s``/``flag``: clip aggregation (see :class:`ScoreSeries`).
    ``rate_hz``: measure at most this often, by frame timestamps (None: every frame, the
    offline default; live sessions use 7.5 Hz: each measurement is one frame's own pair of
    PnP fits, no frame-to-frame quantity, so a lower rate only thins the samples)."""

    min_size_px: float = 40.0
    baseline_s: float = 20.0
    yaw_bin_deg: float = 10.0
    min_baseline: int = 15
    z_mid: float = 3.0
    z_width: float = 1.0
    rot_floor_deg: float = 0.3
    trans_floor_deg: float = 0.1
    quantile: float = 0.9
    smooth_s: float = 1.0
    flag: float = 0.5
    rate_hz: float | None = None

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not self.rate_hz > 0:
            raise ConfigError("rate_hz must be > 0 or None")
        if self.baseline_s <= 0 or self.yaw_bin_deg <= 0 or self.z_width <= 0:
            raise ConfigError("baseline_s, yaw_bin_deg and z_width must be > 0")
        if self.min_baseline < 2:
            raise ConfigError("min_baseline must be >= 2")
        if not 0 < self.quantile <= 1:
            raise ConfigError("quantile must be in (0, 1]")


@dataclass(frozen=True)
class PoseDisagreement:
    """One frame's two poses and how far apart they are."""

    rot_deg: float  # rotation angle between central-face and whole-face poses
    trans_deg: float  # angle between their translation directions
    rel_rotvec: np.ndarray  # (3,) relative rotation (whole -> central) in the head frame, degrees
    yaw: float  # whole-face yaw, degrees
    pitch: float

    def to_dict(self) -> dict[str, float]:
        return {"rot_deg": round(self.rot_deg, 3), "trans_deg": round(self.trans_deg, 3),
                "yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2)}


class PoseDisagreementEstimator:
    """Two warm-started solvePnP fits per frame: central face vs central face + contour.

    ``vertices``: canonical face (468, 3) in its own frame (x to the image right, y up,
    z toward the camera); defaults to the packaged canonical face."""

    def __init__(self, vertices: np.ndarray | None = None) -> None:
        if vertices is None:
            from liveness.tracking.pose import canonical_face

            vertices = canonical_face().vertices
        v = np.asarray(vertices, np.float64)
        if v.shape != (468, 3):
            raise ConfigError(f"canonical vertices must be (468, 3), got {v.shape}")
        obj = v * np.array([1.0, -1.0, -1.0])  # OpenCV object frame: y down, z away
        self.central = CENTRAL
        self.whole = np.unique(np.concatenate([CENTRAL, CONTOUR]))
        self._obj_c = np.ascontiguousarray(obj[self.central])
        self._obj_w = np.ascontiguousarray(obj[self.whole])
        self._k = np.eye(3)
        self._size: tuple[int, int] | None = None
        self._prev: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._dist = np.zeros(4)

    def reset(self) -> None:
        self._prev.clear()

    def _solve(self, key: str, obj: np.ndarray, img: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        prev = self._prev.get(key)
        if prev is not None:
            ok, rv, tv = cv2.solvePnP(obj, img, self._k, self._dist, prev[0].copy(), prev[1].copy(),
                                      True, cv2.SOLVEPNP_ITERATIVE)
        else:
            ok, rv, tv = cv2.solvePnP(obj, img, self._k, self._dist, flags=cv2.SOLVEPNP_SQPNP)
            if ok:
                ok, rv, tv = cv2.solvePnP(obj, img, self._k, self._dist, rv, tv, True,
                                          cv2.SOLVEPNP_ITERATIVE)
        if not ok or not (np.all(np.isfinite(rv)) and np.all(np.isfinite(tv))) or tv[2, 0] <= 0:
            self._prev.pop(key, None)
            return None
        self._prev[key] = (rv, tv)
        return rv, tv

    def estimate(self, landmarks: np.ndarray, width: int, height: int) -> PoseDisagreement | None:
        if self._size != (width, height):
            f = float(max(width, height))
            self._k = np.array([[f, 0, width / 2.0], [0, f, height / 2.0], [0, 0, 1]], np.float64)
            self._size = (width, height)
            self._prev.clear()
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or not np.all(np.isfinite(lm[:468, :2])):
            return None
        c = self._solve("c", self._obj_c, np.ascontiguousarray(lm[self.central, :2]))
        w = self._solve("w", self._obj_w, np.ascontiguousarray(lm[self.whole, :2]))
        if c is None or w is None:
            return None
        rc, _ = cv2.Rodrigues(c[0])
        rw, _ = cv2.Rodrigues(w[0])
        rel, _ = cv2.Rodrigues(rw.T @ rc)  # head-frame rotation taking whole -> central
        rel = np.degrees(rel.reshape(3))
        tc, tw = c[1].reshape(3), w[1].reshape(3)
        cosang = float(tc @ tw / (np.linalg.norm(tc) * np.linalg.norm(tw)))
        trans = float(np.degrees(np.arccos(np.clip(cosang, -1.0, 1.0))))
        # whole-face yaw / pitch in the package convention (see _pose.euler_from_rvec)
        yaw = -float(np.degrees(np.arcsin(np.clip(-rw[2, 0], -1.0, 1.0))))
        pitch = -float(np.degrees(np.arctan2(rw[2, 1], rw[2, 2])))
        return PoseDisagreement(float(np.linalg.norm(rel)), trans, rel, yaw, pitch)


class PoseConsistencyAnalyser:
    """Analyser ``pose_consistency``: per-frame z-score of the central-vs-whole pose
    disagreement against the candidate's own running baseline at a similar |yaw|, mapped to
    0..1; clip value and segments by :class:`ScoreSeries`."""

    name = "pose_consistency"

    def __init__(self, options: PoseConsistencyOptions | None = None,
                 vertices: np.ndarray | None = None) -> None:
        self.options = options or PoseConsistencyOptions()
        self._est = PoseDisagreementEstimator(vertices)
        o = self.options
        self._series = ScoreSeries(self.name, quantile=o.quantile, smooth_s=o.smooth_s, flag=o.flag)
        self._hist = History(5)  # |yaw|, relative rotation (3), translation angle
        self._raw = array("d")  # flat: 24 B a measurement; a live horizon bounds them
        self._yaw = array("d")
        self._raw_t = array("d")
        self._last: float | None = None  # time of the last measurement (rate_hz)

    @classmethod
    def from_options(cls, options: PoseConsistencyOptions) -> PoseConsistencyAnalyser:
        return cls(options)

    def disagreement(self, obs: FaceObservation) -> PoseDisagreement | None:
        """The raw per-frame measurement (no baseline), or None when it cannot be made."""
        if not obs.face or obs.landmarks is None or obs.box is None:
            return None
        if float(np.sqrt(max(obs.box[2], 0) * max(obs.box[3], 0))) < self.options.min_size_px:
            return None
        return self._est.estimate(obs.landmarks, obs.width, obs.height)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        o = self.options
        t = float(obs.t)
        if o.rate_hz is not None and self._last is not None and t - self._last < 1.0 / o.rate_hz - 1e-6:
            return ()
        d = self.disagreement(obs)
        if d is None:
            return ()
        self._last = t
        ay = abs(d.yaw)
        past = self._hist.window(t - o.baseline_s)  # rows: |yaw|, rel (3), trans
        self._hist.append(t, (ay, *d.rel_rotvec, d.trans_deg))
        self._raw.append(d.rot_deg)
        self._yaw.append(ay)
        self._raw_t.append(t)
        if ctx.horizon_s is not None and t - self._raw_t[0] > 1.25 * ctx.horizon_s:
            trim_before(self._raw_t, t - ctx.horizon_s, (self._raw, 1), (self._yaw, 1))
        near = past[np.abs(past[:, 0] - ay) <= o.yaw_bin_deg]
        if len(near) < o.min_baseline:
            return ()
        rel = near[:, 1:4]
        med = np.median(rel, axis=0)
        spread = max(float(np.median(np.linalg.norm(rel - med, axis=1))) * 1.4826, o.rot_floor_deg)
        z_rot = float(np.linalg.norm(d.rel_rotvec - med)) / spread
        tr = near[:, 4]
        tmed = float(np.median(tr))
        tspread = max(float(np.median(np.abs(tr - tmed))) * 1.4826, o.trans_floor_deg)
        z_tr = abs(d.trans_deg - tmed) / tspread
        z = max(z_rot, z_tr)
        value = logistic((z - o.z_mid) / o.z_width)
        s = Score(self.name, t, value)
        self._series.add(s, ctx.horizon_s)
        return (s,)

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        raw = np.array(self._raw, np.float64)
        details: tuple[tuple[str, float], ...] = ()
        if len(raw):
            details = (("raw_rot_deg_median", float(np.median(raw))),
                       ("abs_yaw_median", float(np.median(self._yaw))))
        return self._series.summary(details)

    def reset(self) -> None:
        self._est.reset()
        self._last = None
        self._series.reset()
        self._hist.clear()
        del self._raw[:], self._yaw[:], self._raw_t[:]
