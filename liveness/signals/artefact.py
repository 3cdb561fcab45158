"""Face-swap artefact analysers.

* :class:`ArtefactAnalyser` — the swap detector (``models/onnx/swap_detector.onnx``, trained
  here on real face swaps of many tools, see ``models/cards/swap_detector.md``) on the
  dlib-aligned chip and its validity mask (:mod:`liveness.signals.swap_chip`), at a
  configurable rate. Signal ``artefact``.
* :class:`SharpnessGapAnalyser` — model-free: high-frequency energy of the inner face against the
  surrounding head and background (a 128-px swapper pasted into a sharper frame leaves the inner
  face blurrier than its surroundings), normalised against the candidate's own earlier frames.
  Signal ``sharpness_gap``.

Both score the tracked face only and return ``None`` for frames they skip or without a face.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from liveness.core.analyser import FrameContext, ScoreSeries
from liveness.core.errors import ConfigError
from liveness.core.mathx import logistic
from liveness.core.record import trim_before
from liveness.core.types import FaceObservation, Score, Signal
from liveness.signals.embedding import CHIP_SIZE, face_chip
from liveness.signals.swap_chip import chip_mask
from liveness.tracking.crop import align_crop, face_oval, transform_points

__all__ = [
    "ArtefactAnalyser",
    "ArtefactOptions",
    "SharpnessGapAnalyser",
    "SharpnessGapOptions",
    "swap_logits",
]


def _due(last: float | None, t: float, rate_hz: float | None) -> bool:
    if rate_hz is None or last is None:
        return True
    return t - last >= 1.0 / rate_hz - 1e-6


def _usable(obs: FaceObservation, min_face_px: float) -> bool:
    if not obs.face or obs.landmarks is None or obs.image is None:
        return False
    if obs.quality is not None and obs.quality.size_px < min_face_px:
        return False
    return True


def swap_logits(chips: np.ndarray, masks: np.ndarray, threads: int = 1) -> np.ndarray:
    """The swap detector's calibrated logits for (N, 150, 150, 3) chips and their (N, 150, 150)
    validity masks (:func:`~liveness.signals.swap_chip.swap_chip`); sigmoid = probability."""
    from liveness.core.registry import ort_session

    x = np.asarray(chips, np.float32).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3)
    m = np.asarray(masks, np.float32).reshape(-1, CHIP_SIZE, CHIP_SIZE)
    if len(x) != len(m):
        raise ConfigError(f"{len(x)} chips but {len(m)} masks")
    sess = ort_session("artefact", threads)
    return np.array([sess.run(None, {"chip": x[i : i + 1], "mask": m[i : i + 1]})[0][0, 0] for i in range(len(x))],
                    np.float32)


@dataclass(frozen=True)
class ArtefactOptions:
    """``rate_hz``: analyse at most this often, by frame timestamps (None = every frame);
    ``every_n``: additionally analyse only every n-th usable face frame (offline thinning).
    ``min_face_px``: skip faces smaller than this (box side). Clip summary: ``quantile`` of the
    ``smooth_s`` moving median of the per-frame scores, so a swap segment over more than
    ``1 - quantile`` of the clip still shows while single-frame spikes do not; ``flag`` marks
    segments."""

    rate_hz: float | None = 5.0
    every_n: int = 1
    threads: int = 1
    min_face_px: float = 40.0
    quantile: float = 0.9  # a swap over >= 10 % of the clip raises the clip score (issue 3)
    smooth_s: float = 1.0
    flag: float = 0.5
    temperature: float = 1.0  # logits are divided by this before the sigmoid
    model: str | None = None  # a swap-detector ONNX file to use instead of the shipped one

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not self.rate_hz > 0:
            raise ConfigError("rate_hz must be > 0 or None")
        if self.every_n < 1 or self.threads < 1:
            raise ConfigError("every_n and threads must be >= 1")
        if not 0 <= self.quantile <= 1 or self.smooth_s < 0 or self.temperature <= 0:
            raise ConfigError("invalid artefact summary options")


class ArtefactAnalyser:
    """Per-frame probability that the tracked face is a swap (signal ``artefact``)."""

    name = "artefact"

    def __init__(self, options: ArtefactOptions | None = None) -> None:
        self.options = options or ArtefactOptions()
        self._chip = np.empty((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
        self._x = np.empty((1, CHIP_SIZE, CHIP_SIZE, 3), np.float32)
        self._m = np.empty((1, CHIP_SIZE, CHIP_SIZE), np.float32)
        self._sess: Any = None
        o = self.options
        self._series = ScoreSeries(self.name, quantile=o.quantile, smooth_s=o.smooth_s, flag=o.flag)
        self._last: float | None = None
        self._count = 0

    @classmethod
    def from_options(cls, options: ArtefactOptions) -> ArtefactAnalyser:
        return cls(options)

    def reset(self) -> None:
        self._series.reset()
        self._last = None
        self._count = 0

    def score_chip(self, chip: np.ndarray, mask: np.ndarray) -> float:
        """Probability (0..1) for one (150, 150, 3) chip and its (150, 150) validity mask."""
        if self._sess is None:
            from liveness.core.registry import ort_file_session, ort_session

            o = self.options
            self._sess = ort_session("artefact", o.threads) if o.model is None else ort_file_session(o.model, o.threads)
        self._x[0] = chip
        self._m[0] = mask
        logit = float(self._sess.run(None, {"chip": self._x, "mask": self._m})[0][0, 0])
        return logistic(logit / self.options.temperature)

    def score_face(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        """Probability (0..1) for the face at ``landmarks`` (478-point mesh) in ``rgb``."""
        h, w = rgb.shape[:2]
        face_chip(rgb, landmarks, out=self._chip)
        chip_mask(landmarks, (0.0, 0.0, float(w), float(h)), out=self._m[0])
        return self.score_chip(self._chip, self._m[0])

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        o = self.options
        if not _usable(obs, o.min_face_px) or not _due(self._last, obs.t, o.rate_hz):
            return ()
        self._count += 1
        if (self._count - 1) % o.every_n:
            return ()
        self._last = obs.t
        assert obs.image is not None and obs.landmarks is not None  # _usable checked both
        s = Score(self.name, obs.t, self.score_face(obs.image, obs.landmarks))
        self._series.add(s, ctx.horizon_s)
        return (s,)

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        v = self._series.values
        extra = (("mean", float(v.mean())),) if len(v) else ()
        return self._series.summary(extra)


# --------------------------------------------------------------------------------------------
# model-free sharpness gap
# --------------------------------------------------------------------------------------------
_BROW_TOP = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)


@dataclass(frozen=True)
class SharpnessGapOptions:
    """``crop``: side of the aligned crop the energies are measured on. ``baseline_n``: analysed
    frames that form the candidate's own baseline (the first ones); later frames are scored by
    their robust z-score against it, ``z_scale`` z-units map to 0.5 on the 0..1 scale."""

    rate_hz: float | None = 5.0
    crop: int = 192
    min_face_px: float = 60.0
    baseline_n: int = 10
    z_scale: float = 3.0
    quantile: float = 0.9
    smooth_s: float = 1.0
    flag: float = 0.5

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not self.rate_hz > 0:
            raise ConfigError("rate_hz must be > 0 or None")
        if self.crop < 64 or self.baseline_n < 3 or self.z_scale <= 0:
            raise ConfigError("invalid sharpness-gap options")


def hf_energy_ratio(crop: np.ndarray, lm_crop: np.ndarray) -> float:
    """log(high-frequency energy of the inner face / that of the ring around the face) on an
    aligned crop; ``lm_crop`` are the mesh landmarks in crop pixels."""
    s = crop.shape[0]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    hf = np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.0))
    pts = lm_crop[:468, :2]
    inner = np.zeros((s, s), np.uint8)
    top = pts[list(_BROW_TOP), 1].mean()
    cv2.fillConvexPoly(inner, cv2.convexHull(np.round(pts[pts[:, 1] >= top]).astype(np.int32)), 1)
    k = max(3, s // 24) | 1
    inner = np.asarray(cv2.erode(inner, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), np.uint8)
    outline = np.zeros((s, s), np.uint8)
    cv2.fillConvexPoly(outline, cv2.convexHull(np.round(pts[face_oval()]).astype(np.int32)), 1)
    k2 = max(5, s // 8) | 1
    ring = np.asarray(cv2.dilate(outline, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k2, k2))), np.uint8)
    ring &= 1 - np.asarray(cv2.dilate(outline, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))), np.uint8)
    ni, nr = int(inner.sum()), int(ring.sum())
    if ni < 20 or nr < 20:
        return float("nan")
    ei = float((hf * inner).sum()) / ni
    er = float((hf * ring).sum()) / nr
    return float(np.log((ei + 0.5) / (er + 0.5)))


class SharpnessGapAnalyser:
    """Signal ``sharpness_gap``: the inner face got blurrier relative to its surroundings than it
    was in the candidate's own first frames (0.5 at ``z_scale`` robust deviations)."""

    name = "sharpness_gap"

    def __init__(self, options: SharpnessGapOptions | None = None) -> None:
        self.options = options or SharpnessGapOptions()
        o = self.options
        self._crop = np.empty((o.crop, o.crop, 3), np.uint8)
        self._series = ScoreSeries(self.name, quantile=o.quantile, smooth_s=o.smooth_s, flag=o.flag)
        self._base = array("d")
        self._raw = array("d")  # flat: 16 B a sample; a live horizon bounds them
        self._raw_t = array("d")
        self._last: float | None = None

    @classmethod
    def from_options(cls, options: SharpnessGapOptions) -> SharpnessGapAnalyser:
        return cls(options)

    def reset(self) -> None:
        self._series.reset()
        del self._base[:], self._raw[:], self._raw_t[:]
        self._last = None

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        o = self.options
        if not _usable(obs, o.min_face_px) or not _due(self._last, obs.t, o.rate_hz):
            return ()
        self._last = obs.t
        assert obs.image is not None and obs.landmarks is not None  # _usable checked both
        _, m = align_crop(obs.image, obs.landmarks, o.crop, out=self._crop)
        r = hf_energy_ratio(self._crop, transform_points(obs.landmarks, m))
        if not np.isfinite(r):
            return ()
        self._raw.append(r)
        self._raw_t.append(obs.t)
        if ctx.horizon_s is not None and obs.t - self._raw_t[0] > 1.25 * ctx.horizon_s:
            trim_before(self._raw_t, obs.t - ctx.horizon_s, (self._raw, 1))
        if len(self._base) < o.baseline_n:
            self._base.append(r)
            return ()
        b = np.array(self._base, np.float64)
        med = float(np.median(b))
        mad = float(np.median(np.abs(b - med))) * 1.4826
        z = (med - r) / max(mad, 0.05)  # positive = blurrier inner face than the baseline
        value = float(np.clip(z, 0.0, None) / (np.clip(z, 0.0, None) + o.z_scale))
        s = Score(self.name, obs.t, value)
        self._series.add(s, ctx.horizon_s)
        return (s,)

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        raw = np.array(self._raw, np.float64)
        extra = (("ratio_median", float(np.median(raw))),) if len(raw) else ()
        return self._series.summary(extra)
