"""Face slip and temporal flicker: does the inner face move with the head around it?

A face swap pastes a generated inner face onto the real head every frame. Where the paste is
re-aligned frame by frame, the inner face jitters or slides against the head; where the swapper
smooths its alignment, it lags behind the head and is *smoother* than a real face. Three
measurements per frame, all on a small grey region of interest (ROI) around the face:

* **optical-flow slip** — sparse Lucas-Kanade flow (``cv2.calcOpticalFlowPyrLK``, forward and
  backward) of rigid inner-face points (eye corners, nose, upper cheeks) and of a ring of head
  points outside the face contour (forehead and hair line, ears, jaw and neck). A similarity
  transform fitted to the ring gives the head's motion; what the inner points do beyond it is
  the slip (in face widths);
* **landmark high-frequency energy** — the same inner-vs-contour residual computed from the mesh
  landmarks, high-passed over time;
* **flashes** — a single frame whose inner-face thumbnail differs from both neighbours while the
  neighbours agree with each other (the original face showing through for a frame).

Every measurement is made relative to the candidate's own clip (ratios of inner to ring motion,
z-scores against a running baseline), so camera noise, compression and face size cancel.
The clip-level ``face_smoothness`` made from the same measurements lives in
:mod:`liveness.signals.face_smoothness` (its names are re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import cv2
import numpy as np

from liveness.core.analyser import (
    MAX_FOLDED_SEGMENTS,
    FrameContext,
    ScoreSeries,
    fold_segment,
    runs_above,
    thin_segments,
)
from liveness.core.errors import ConfigError
from liveness.core.history import History
from liveness.core.mathx import logistic
from liveness.core.record import DataclassColumns
from liveness.core.types import FaceObservation, Score, Segment, Signal
from liveness.signals.face_smoothness import (
    FaceSmoothnessAnalyser,
    FaceSmoothnessOptions,
    smoothness_signal,
)
from liveness.tracking.regions import CONTOUR, INNER_RIGID, head_ring

__all__ = [
    "FaceSlipAnalyser",
    "FaceSlipOptions",
    "FaceSmoothnessAnalyser",
    "FaceSmoothnessOptions",
    "SlipFrame",
    "SlipMeter",
    "smoothness_signal",
]

_EYE_R, _EYE_L, _MOUTH = 33, 263, 13


@dataclass(frozen=True)
class FaceSlipOptions:
    """``roi``: side of the square grey ROI in pixels; ``face_frac``: fraction of the ROI the
    face width fills (the rest is head ring and background). ``lk_win``/``lk_levels``: LK
    window and pyramid levels; ``fb_max``: forward-backward error (ROI px) above which a point
    is dropped. ``ring_scale``: how far outside the contour the head ring lies.
    ``thumb``: side of the inner-face thumbnail used for flashes; ``flash_min``: a flash is a
    drop of correlation by at least this much. ``baseline_s``/``min_baseline``: the running
    baseline the per-frame slip is z-scored against. ``z_mid``/``z_width``: logistic map to
    0..1. ``quantile``/``smooth_s``/``flag``: clip aggregation. ``smoothness``: options of the
    ``face_smoothness`` signal made from the same measurements."""

    roi: int = 128
    face_frac: float = 0.5
    lk_win: int = 11
    lk_levels: int = 2
    fb_max: float = 0.5
    ring_scale: float = 1.2
    min_points: int = 8
    min_size_px: float = 40.0
    thumb: int = 24
    flash_min: float = 0.25
    baseline_s: float = 20.0
    min_baseline: int = 20
    z_mid: float = 3.0
    z_width: float = 1.0
    quantile: float = 0.9
    smooth_s: float = 1.0
    flag: float = 0.5
    smoothness: FaceSmoothnessOptions = field(default_factory=FaceSmoothnessOptions)

    def __post_init__(self) -> None:
        if self.roi < 32 or not 0.2 <= self.face_frac <= 0.9:
            raise ConfigError("roi must be >= 32 and face_frac in [0.2, 0.9]")
        if self.lk_win < 5 or self.lk_levels < 0 or self.fb_max <= 0:
            raise ConfigError("lk_win >= 5, lk_levels >= 0 and fb_max > 0 required")
        if self.thumb < 8 or self.thumb % 2 or self.min_points < 3 or self.min_baseline < 2:
            raise ConfigError("thumb even and >= 8, min_points >= 3, min_baseline >= 2 required")


@dataclass(frozen=True)
class SlipFrame:
    """Raw per-frame measurements (face widths per frame unless noted)."""

    t: float
    flow_slip: float  # RMS of inner-point flow beyond the head ring's similarity motion
    flow_ring: float  # RMS of ring points' own residual to that similarity (noise level)
    head_motion: float  # head ring displacement (face widths)
    head_vec: np.ndarray  # (2,) head displacement predicted at the inner points (face widths)
    slip_vec: np.ndarray  # (2,) mean inner residual (face widths)
    mesh_slip: float  # the same residual from mesh landmarks (inner vs contour)
    mesh_vec: np.ndarray  # (2,)
    thumb_corr: np.ndarray  # (4,) per-block correlation of the inner-face thumbnail with the previous frame's


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray | None:
    """Least-squares 2-D similarity (2x3) taking src to dst."""
    if len(src) < 3:
        return None
    m, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    return m


def _apply(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:, :2].T + m[:, 2]


class SlipMeter:
    """Computes :class:`SlipFrame` from consecutive observations. Buffers are allocated once
    per frame size and reused."""

    def __init__(self, options: FaceSlipOptions | None = None) -> None:
        self.options = options or FaceSlipOptions()
        o = self.options
        self._grey_prev: np.ndarray | None = None
        self._grey_cur: np.ndarray | None = None
        self._roi_prev = np.zeros((o.roi, o.roi), np.uint8)
        self._roi_cur = np.zeros((o.roi, o.roi), np.uint8)
        self._thumb = np.zeros((o.thumb, o.thumb), np.uint8)
        self._lm_prev: np.ndarray | None = None
        self._thumb_prev: np.ndarray | None = None
        self._m = np.zeros((2, 3), np.float64)
        self._lk = dict(winSize=(o.lk_win, o.lk_win), maxLevel=o.lk_levels,
                        criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 10, 0.03))
        # thumbnail template: eye corners and upper-lip centre in thumbnail coordinates
        s = o.thumb
        self._tpl = np.array([[0.2 * s, 0.3 * s], [0.8 * s, 0.3 * s], [0.5 * s, 0.85 * s]], np.float32)

    def reset(self) -> None:
        self._lm_prev = None
        self._thumb_prev = None

    def _face_thumb(self, grey: np.ndarray, lm: np.ndarray) -> np.ndarray:
        src = np.ascontiguousarray(lm[[_EYE_R, _EYE_L, _MOUTH], :2], dtype=np.float32)
        m = cv2.getAffineTransform(src, self._tpl)
        cv2.warpAffine(grey, m, (self.options.thumb, self.options.thumb), dst=self._thumb,
                       flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        # 2x2 blocks, each zero-mean and unit-norm: a blink or a mouth movement changes one or
        # two blocks, the whole face showing through changes all four
        h = self.options.thumb // 2
        b = self._thumb.astype(np.float32).reshape(2, h, 2, h).transpose(0, 2, 1, 3).reshape(4, -1)
        b -= b.mean(axis=1, keepdims=True)
        n = np.linalg.norm(b, axis=1, keepdims=True)
        return b / np.maximum(n, 1e-6)

    def measure(self, obs: FaceObservation) -> SlipFrame | None:
        """Measurements for this frame (needs the previous frame's face); None when there is
        no usable face pair. Keeps this frame as the next one's reference."""
        o = self.options
        if not obs.face or obs.landmarks is None or obs.image is None or obs.box is None:
            self.reset()
            return None
        lm = np.asarray(obs.landmarks, np.float32)
        img = obs.image
        if (self._grey_cur is None or self._grey_cur.shape != img.shape[:2]):
            self._grey_cur = np.empty(img.shape[:2], np.uint8)
            self._grey_prev = np.empty(img.shape[:2], np.uint8)
            self.reset()
        assert self._grey_prev is not None
        self._grey_prev, self._grey_cur = self._grey_cur, self._grey_prev
        cv2.cvtColor(img, cv2.COLOR_RGB2GRAY, dst=self._grey_cur)
        small = float(np.sqrt(max(obs.box[2], 0) * max(obs.box[3], 0))) < o.min_size_px
        if small or not np.all(np.isfinite(lm[:468, :2])):
            self.reset()
            return None
        thumb = self._face_thumb(self._grey_cur, lm)
        prev_lm, prev_thumb = self._lm_prev, self._thumb_prev
        self._lm_prev, self._thumb_prev = lm.copy(), thumb
        if prev_lm is None or prev_thumb is None:
            return None
        corr = np.sum(thumb * prev_thumb, axis=1)  # (4,) per block

        # ROI transform from the previous frame's face, applied to both frames
        inner0 = prev_lm[INNER_RIGID, :2]
        contour0 = prev_lm[CONTOUR, :2]
        width = float(np.ptp(contour0[:, 0])) or 1.0
        s = o.roi * o.face_frac / width
        c = inner0.mean(axis=0)
        m = self._m
        m[0, 0] = m[1, 1] = s
        m[0, 2] = o.roi / 2 - s * c[0]
        m[1, 2] = o.roi / 2 - s * c[1]
        cv2.warpAffine(self._grey_prev, m, (o.roi, o.roi), dst=self._roi_prev,
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        cv2.warpAffine(self._grey_cur, m, (o.roi, o.roi), dst=self._roi_cur,
                       flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        ring0 = head_ring(prev_lm, o.ring_scale)
        pts0 = np.concatenate([inner0, ring0]).astype(np.float32)
        p0 = (_apply(m, pts0)).astype(np.float32).reshape(-1, 1, 2)
        lk: dict[str, Any] = self._lk
        p1, st1, _ = cv2.calcOpticalFlowPyrLK(self._roi_prev, self._roi_cur, p0, None, **lk)
        p0b, st2, _ = cv2.calcOpticalFlowPyrLK(self._roi_cur, self._roi_prev, p1, None, **lk)
        p0, p1, p0b = np.reshape(p0, (-1, 2)), np.reshape(p1, (-1, 2)), np.reshape(p0b, (-1, 2))
        fb = np.linalg.norm(p0 - p0b, axis=1)
        inside = np.all((p0 >= 2) & (p0 < o.roi - 2), axis=1)
        ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (fb < o.fb_max) & inside
        ni = len(inner0)
        ok_i, ok_r = ok[:ni], ok[ni:]
        face_w = o.roi * o.face_frac  # one face width in ROI pixels
        flow_slip = flow_ring = head = np.nan
        slip_vec = np.full(2, np.nan)
        head_vec = np.full(2, np.nan)
        if ok_i.sum() >= o.min_points // 2 and ok_r.sum() >= o.min_points:
            h = _similarity(p0[ni:][ok_r], p1[ni:][ok_r])
            if h is not None:
                pred_r = _apply(h, p0[ni:][ok_r])
                flow_ring = float(np.sqrt(np.mean(np.sum((p1[ni:][ok_r] - pred_r) ** 2, axis=1)))) / face_w
                pred_i = _apply(h, p0[:ni][ok_i])
                res = (p1[:ni][ok_i] - pred_i) / face_w
                flow_slip = float(np.sqrt(np.mean(np.sum(res**2, axis=1))))
                slip_vec = res.mean(axis=0)
                head_vec = (pred_i - p0[:ni][ok_i]).mean(axis=0) / face_w
                head = float(np.median(np.linalg.norm(pred_r - p0[ni:][ok_r], axis=1))) / face_w
        # mesh-only residual: inner points vs the contour's similarity motion
        mesh_slip = np.nan
        mesh_vec = np.full(2, np.nan)
        hm = _similarity(contour0, lm[CONTOUR, :2])
        if hm is not None:
            r = (lm[INNER_RIGID, :2] - _apply(hm, inner0)) / width
            mesh_slip = float(np.sqrt(np.mean(np.sum(r**2, axis=1))))
            mesh_vec = r.mean(axis=0)
        return SlipFrame(float(obs.t), flow_slip, flow_ring, head, head_vec, slip_vec, mesh_slip,
                         mesh_vec, corr)


#: the per-frame measurements no summary of a live session reads (kept offline, for the frames)
_LIVE_OMIT = ("head_motion", "head_vec")
#: the per-frame measurements a live session keeps, in single precision (all but the time)
_LIVE_FLOAT32 = tuple(f.name for f in fields(SlipFrame) if f.name != "t" and f.name not in _LIVE_OMIT)


class FaceSlipAnalyser:
    """Analyser ``face_slip``. Per frame: the inner-face optical-flow slip beyond the head
    ring's motion, z-scored against the candidate's own running baseline, mapped to 0..1.
    Flash frames (single-frame inner-face changes) are kept as segments of their own."""

    name = "face_slip"

    def __init__(self, options: FaceSlipOptions | None = None) -> None:
        self.options = options or FaceSlipOptions()
        o = self.options
        self._meter = SlipMeter(o)
        self._series = ScoreSeries(self.name, quantile=o.quantile, smooth_s=o.smooth_s, flag=o.flag)
        self._hist = History(1)
        self._frames: DataclassColumns[SlipFrame] = DataclassColumns(SlipFrame)  # flat: long files
        self._flash_folded: list[Segment] = []  # flashes of frames a live horizon let go

    @classmethod
    def from_options(cls, options: FaceSlipOptions) -> FaceSlipAnalyser:
        return cls(options)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        f = self._meter.measure(obs)
        if f is None:
            return ()
        if ctx.mode == "live" and not self._frames:  # a call of hours: 52 B a frame, not 115
            self._frames = DataclassColumns(SlipFrame, float32=_LIVE_FLOAT32, omit=_LIVE_OMIT)
        self._frames.append(f)
        o = self.options
        t = f.t
        if ctx.horizon_s is not None and t - self._frames.first("t") > 1.25 * ctx.horizon_s:
            self._fold(t - ctx.horizon_s)
        if not np.isfinite(f.flow_slip):
            return ()
        base = self._hist.window(t - o.baseline_s)[:, 0]
        self._hist.append(t, (f.flow_slip,))
        if len(base) < o.min_baseline:
            return ()
        med = float(np.median(base))
        mad = max(float(np.median(np.abs(base - med))) * 1.4826, 1e-3)
        z = (f.flow_slip - med) / mad
        value = logistic((z - o.z_mid) / o.z_width)
        s = Score(self.name, t, value)
        self._series.add(s, ctx.horizon_s)
        return (s,)

    def _fold(self, cut: float) -> None:
        """Forget the frames before ``cut`` (a live horizon), keeping their flash segments."""
        t = self._frames.column("t")
        for seg in self._flashes():
            if seg.start < cut:
                fold_segment(self._flash_folded, seg, 0.0)
        if len(self._flash_folded) > MAX_FOLDED_SEGMENTS:
            thin_segments(self._flash_folded)
        self._frames.drop_first(int(np.searchsorted(t, cut, side="left")))

    @property
    def frames(self) -> list[SlipFrame]:
        return list(self._frames)

    @property
    def frame_count(self) -> int:
        """Frames measured (``len(frames)`` without building every :class:`SlipFrame`)."""
        return len(self._frames)

    def mesh_to_ring(self, min_frames: int = 30) -> float | None:
        """Median mesh inner-vs-contour residual over the median residual of the head ring's
        own flow (the image's noise and non-rigid motion level around the face). None when
        fewer than ``min_frames`` frames have both."""
        mesh = self._frames.column("mesh_slip")
        ring = self._frames.column("flow_ring")
        ok = np.isfinite(mesh) & np.isfinite(ring)
        if ok.sum() < min_frames:
            return None
        r = float(np.median(ring[ok]))
        return float(np.median(mesh[ok])) / r if r > 0 else None

    def mesh_smoothness(self) -> float | None:
        """High-frequency energy (second difference) of the mesh's inner-vs-contour residual
        over that of the image's inner-vs-ring flow residual. Both see the same head motion;
        a generated face gives the mesh a cleaner texture to follow, so a swap's mesh tends to
        be smoother (lower ratio) than the image noise would suggest. None when too short."""
        if len(self._frames) < 10:
            return None
        mv = self._frames.column("mesh_vec")
        sv = self._frames.column("slip_vec")

        def hf(x: np.ndarray) -> float:
            d = x[2:] - 2 * x[1:-1] + x[:-2]
            n = np.linalg.norm(d, axis=1)
            n = n[np.isfinite(n)]
            return float(np.median(n)) if len(n) else float("nan")

        a, b = hf(mv), hf(sv)
        return a / b if np.isfinite(a) and np.isfinite(b) and b > 0 else None

    def flashes(self) -> tuple[Segment, ...]:
        """Single frames whose inner-face thumbnail differs from the previous frame *and* from
        the next one in all four blocks (a drop of at least ``flash_min`` below each block's
        clip median), i.e. the whole inner face changed for one frame and came back."""
        return tuple(self._flash_folded) + self._flashes()

    def _flashes(self) -> tuple[Segment, ...]:
        if len(self._frames) < 3:
            return ()
        c = self._frames.column("thumb_corr")  # (n, 4)
        t = self._frames.column("t")
        drop = (np.median(c, axis=0) - c).min(axis=1)  # every block dropped at least this much
        flash = np.zeros(len(c))
        # frame i differs from i-1 (drop[i]) and frame i+1 differs from i (drop[i+1])
        flash[:-1] = np.minimum(drop[:-1], drop[1:])
        return runs_above(t, flash, self.options.flash_min, "inner face flash", max_gap=0.0)

    def signals(self) -> dict[str, Signal]:
        """``face_slip`` and ``face_smoothness`` (the other direction of the same measurements)."""
        return {self.name: self.summary(), "face_smoothness": smoothness_signal(self, self.options.smoothness)}

    def summary(self) -> Signal:
        fr = self._frames
        details: list[tuple[str, float]] = []
        if fr:
            slip, ring, mesh = fr.column("flow_slip"), fr.column("flow_ring"), fr.column("mesh_slip")
            ok = np.isfinite(slip) & np.isfinite(ring)
            if ok.any():
                details += [("flow_slip_median", float(np.median(slip[ok]))),
                            ("flow_ring_median", float(np.median(ring[ok]))),
                            ("slip_to_ring", float(np.median(slip[ok]) / max(np.median(ring[ok]), 1e-6)))]
            if np.isfinite(mesh).any():
                details.append(("mesh_slip_median", float(np.nanmedian(mesh))))
            m2r = self.mesh_to_ring()
            if m2r is not None:
                details.append(("mesh_to_ring", m2r))
            smooth = self.mesh_smoothness()
            if smooth is not None:
                details.append(("mesh_hf_to_flow_hf", smooth))
        fl = self.flashes()
        details.append(("flashes", float(len(fl))))
        sig = self._series.summary(tuple(details))
        return Signal(sig.name, sig.value, sig.n, tuple(sig.segments) + fl, sig.details)

    def reset(self) -> None:
        self._meter.reset()
        self._series.reset()
        self._hist.clear()
        self._frames.clear()
        self._flash_folded.clear()
