"""The hand in front of the face: how much of the face a tracked hand covers, and whether what
lies under the hand still looks like the face (:class:`FaceUnderHand`).

A real hand over a real face hides it: where the hand lies, the pixels are the hand's. A face
swapper without an occlusion mask paints the swapped face over its whole face region, hand or
not, so where a hand lies on the face the face comes back ("two layers"): the hand tracker may
still see the fingers that reach past the face, and the face mesh keeps its full confidence,
but under the hand there is face texture.

At the prompt, :meth:`FaceUnderHand.set_reference` keeps the face as it was (a grey crop of
``crop`` x ``crop`` pixels around the face box, ``margin`` x its long side, the mesh points and
the face region: the hull of the mesh points). On every frame of the challenge,
:meth:`FaceUnderHand.measure`:

1. runs the hand source on a window ``region_scale`` x the reference face box around it;
2. aligns the frame with the reference crop by the similarity transform that takes the
   reference mesh to the current one (RANSAC, 3 % of the eye distance; the reference place
   when the face is lost or the fit fails);
3. draws each hand's shape from its landmarks (palm polygon, each finger a polyline a third
   of the palm wide) into the crop: ``coverage`` is the fraction of the face region under a
   hand;
4. where a hand lies on the face (at least ``min_pixels`` crop pixels), ``face_likeness`` is
   the normalised cross-correlation of the frame with the reference face there (grey,
   high-passed: minus its Gaussian blur of ``highpass_px``, so the shading a hand shares with
   a cheek does not count; the deviations floored at ``ncc_floor``), clipped to 0..1: near 0
   for a hand, near 1 for the face painted back over it.

The cover challenge (:class:`~liveness.challenges.verifiers.CoverVerifier`) passes only when a
hand covered at least ``cover_hand_coverage`` of the face, and reports :func:`cover_swap_score`
of its readings as ``face_under_hand`` in the challenge's breakdown (AUC 0.986 between 200
genuine covers and 200 swaps over the hand: ``benchmarks/bench_face_under_hand.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.protocols import HandSource
from liveness.core.types import FaceObservation

__all__ = ["FaceUnderHand", "FaceUnderHandOptions", "HandReading", "cover_swap_score", "hand_shape_mask"]

_PALM = (0, 1, 2, 5, 9, 13, 17)
_CHAINS = ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


def hand_shape_mask(shape: tuple[int, int], landmarks: np.ndarray, out: np.ndarray | None = None,
                    finger_frac: float = 0.3) -> np.ndarray:
    """uint8 mask (255 = hand) of a hand's shape drawn from its 21 landmarks (pixels, x/y
    first): the palm polygon and each finger as a polyline ``finger_frac`` x the palm wide
    (index to pinky base). Drawn into ``out`` when given (added to what is there)."""
    m = np.zeros(shape, np.uint8) if out is None else out
    lm = np.asarray(landmarks, np.float64)[:, :2]
    if lm.shape[0] != 21 or not np.all(np.isfinite(lm)):
        return m
    width = max(2, int(round(finger_frac * float(np.linalg.norm(lm[5] - lm[17])))))
    cv2.fillPoly(m, [np.round(lm[list(_PALM)]).astype(np.int32)], 255)
    for ch in _CHAINS:
        pts = np.round(lm[list(ch)]).astype(np.int32)
        cv2.polylines(m, [pts], False, 255, width)
    return m


@dataclass(frozen=True)
class FaceUnderHandOptions:
    """See the module docstring."""

    crop: int = 96
    margin: float = 1.5
    region_scale: float = 3.0
    min_pixels: int = 40
    ncc_floor: float = 0.01
    highpass_px: float = 2.0

    def __post_init__(self) -> None:
        if self.crop < 16 or self.margin <= 0 or self.region_scale <= 0 or self.min_pixels < 1:
            raise ConfigError("FaceUnderHandOptions: crop >= 16, margin and region_scale > 0, min_pixels >= 1")


@dataclass(frozen=True)
class HandReading:
    """One frame: ``hands`` found near the face, ``coverage`` 0..1 of the face region under a
    hand (NaN without a reference or an image), ``face_likeness`` 0..1 (NaN when no hand lies on
    the face), ``face_score`` the mesh confidence (0 when the face is lost)."""

    t: float
    hands: int
    coverage: float
    face_likeness: float
    face_score: float

    def to_dict(self) -> dict[str, Any]:
        def f(x: float) -> float | None:
            return round(float(x), 4) if np.isfinite(x) else None

        return {"t": round(float(self.t), 4), "hands": self.hands, "coverage": f(self.coverage),
                "face_likeness": f(self.face_likeness), "face_score": f(self.face_score)}


class FaceUnderHand:
    """``FaceUnderHand(hand_source)``: ``set_reference(obs)`` at the prompt, then
    ``measure(obs)`` per frame -> :class:`HandReading` (see the module docstring)."""

    def __init__(self, source: HandSource, options: FaceUnderHandOptions | None = None) -> None:
        if not isinstance(source, HandSource):
            raise ConfigError("FaceUnderHand needs a hand source (process(image, t, region), reset())")
        self.source = source
        self.options = options or FaceUnderHandOptions()
        self.reset()

    def reset(self) -> None:
        self._ref: np.ndarray | None = None
        self._pts = np.zeros((0, 2))
        self._crop_m = np.eye(2, 3)
        self._face = np.zeros((0, 0), bool)
        self._region: tuple[int, int, int, int] | None = None
        self._iod = 0.0
        self._last_t: float | None = None
        self.source.reset()

    @property
    def has_reference(self) -> bool:
        return self._ref is not None

    def set_reference(self, obs: FaceObservation) -> bool:
        """Keep the face of ``obs`` as the reference (False when it has no face, mesh or image)."""
        self._ref = None
        lm, img, box = obs.landmarks, obs.image, obs.box
        if not obs.face or lm is None or img is None or box is None or lm.shape[0] < 468:
            return False
        o = self.options
        pts = np.asarray(lm, np.float64)[:468, :2]
        x, y, w, h = (float(v) for v in box)
        side = o.margin * max(w, h, 1.0)
        k = o.crop / side
        cx, cy = x + w / 2, y + h / 2
        self._crop_m = np.array([[k, 0.0, o.crop / 2 - k * cx], [0.0, k, o.crop / 2 - k * cy]])
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        self._ref = cv2.warpAffine(grey, self._crop_m, (o.crop, o.crop), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        self._ref_hp = self._ref - cv2.GaussianBlur(self._ref, (0, 0), max(o.highpass_px, 0.5))
        face = np.zeros((o.crop, o.crop), np.uint8)
        hull = cv2.convexHull(np.round(np.c_[pts, np.ones(len(pts))] @ self._crop_m.T).astype(np.int32))
        cv2.fillConvexPoly(face, hull, 1)
        self._face = face.astype(bool)
        self._pts = pts
        self._iod = float(np.linalg.norm(pts[33] - pts[263]))
        s = o.region_scale * max(w, h)
        self._region = (int(round(cx - s / 2)), int(round(cy - s / 2)), int(round(s)), int(round(s)))
        return True

    def _frame_to_crop(self, obs: FaceObservation) -> np.ndarray:
        """image -> reference crop: through the mesh's similarity to the reference mesh."""
        lm = obs.landmarks
        if obs.face and lm is not None and lm.shape[0] >= 468 and self._iod > 0:
            cur = np.asarray(lm, np.float64)[:468, :2]
            m, _ = cv2.estimateAffinePartial2D(cur.astype(np.float32), self._pts.astype(np.float32),
                                               method=cv2.RANSAC, ransacReprojThreshold=0.03 * self._iod)
            if m is not None and np.all(np.isfinite(m)):
                full = np.vstack([m, [0.0, 0.0, 1.0]])
                return self._crop_m @ full
        return self._crop_m

    def measure(self, obs: FaceObservation) -> HandReading:
        """Hands over the face in this frame (see the module docstring)."""
        score = float(obs.score) if obs.face else 0.0
        nan = float("nan")
        if self._ref is None or obs.image is None:
            return HandReading(obs.t, 0, nan, nan, score)
        if self._last_t is not None and obs.t <= self._last_t:
            return HandReading(obs.t, 0, nan, nan, score)  # a repeated frame: the source needs t to grow
        self._last_t = obs.t
        o = self.options
        found = [h for h in self.source.process(obs.image, obs.t, self._region).hands]
        if not found:
            return HandReading(obs.t, 0, 0.0, nan, score)
        m = self._frame_to_crop(obs)
        mask = np.zeros((o.crop, o.crop), np.uint8)
        for h in found:
            lm = np.asarray(h.landmarks, np.float64)[:, :2]
            hand_shape_mask(mask.shape, np.c_[lm, np.ones(len(lm))] @ m.T, out=mask, finger_frac=0.3)
        under = (mask > 0) & self._face
        coverage = float(under.sum()) / max(float(self._face.sum()), 1.0)
        if int(under.sum()) < o.min_pixels:
            return HandReading(obs.t, len(found), coverage, nan, score)
        grey = cv2.cvtColor(obs.image, cv2.COLOR_RGB2GRAY)
        cur = cv2.warpAffine(grey, m, (o.crop, o.crop), flags=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        ref = self._ref
        if o.highpass_px > 0:
            cur = cur - cv2.GaussianBlur(cur, (0, 0), o.highpass_px)
            ref = self._ref_hp
        a, b = cur[under].astype(np.float64), ref[under].astype(np.float64)
        a -= a.mean()
        b -= b.mean()
        f2 = o.ncc_floor ** 2
        ncc = float((a * b).mean() / np.sqrt(max((a * a).mean(), f2) * max((b * b).mean(), f2)))
        return HandReading(obs.t, len(found), coverage, float(np.clip(ncc, 0.0, 1.0)), score)


def cover_swap_score(readings: Iterable[HandReading], min_coverage: float = 0.15,
                     min_near: int = 2, hold: int = 3) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """How much a cover looks like the face painted over the hand, 0..1, from one challenge's
    readings (in time order), and its parts:

    - ``face_likeness``: the median over the frames with at least ``min_coverage`` of the face
      under a hand: the face still there under the hand;
    - ``hand_vanished``: 1 - ``hand_held`` / (2 ``min_coverage``), clipped to 0..1, where
      ``hand_held`` is the coverage held on ``hold`` consecutive frames (the largest of their
      minimum): a hand came to the face (seen on ``min_near`` frames or more) and did not stay
      on it: the hand tracker sees the fingers that reach past the face, not the hand on it.

    The score is the larger part; None when no hand came near the face (nothing to judge: the
    challenge fails ``no_hand``)."""
    rs = list(readings)
    if sum(r.hands > 0 for r in rs) < min_near:
        return None, ()
    cov = np.array([r.coverage if np.isfinite(r.coverage) else 0.0 for r in rs], np.float64)
    k = max(1, min(hold, len(cov)))
    held = float(max(cov[i:i + k].min() for i in range(len(cov) - k + 1)))
    like = [r.face_likeness for r in rs if r.coverage >= min_coverage and np.isfinite(r.face_likeness)]
    likeness = float(np.median(like)) if like else 0.0
    vanished = float(np.clip(1.0 - held / (2.0 * min_coverage), 0.0, 1.0))
    parts = (("face_likeness", likeness), ("hand_vanished", vanished), ("hand_held", held))
    return max(likeness, vanished), parts
