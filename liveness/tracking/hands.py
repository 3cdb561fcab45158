"""Hands: MediaPipe's palm detector and 21-point hand landmarks on ONNX Runtime.

Two stages, as MediaPipe's hand tracking does them:

1. **Palm detection** (``palm_detector_lite`` / ``_full``): the frame, or a window of it (e.g. a
   square around the face), letterboxed into 192x192 RGB [0, 1]; for each of 2016 SSD anchors
   (strides 8, 16, 16, 16 — the short-range face detector's layout on a 192-px input) a score
   logit and 18 values: palm box centre/size and 7 keypoints (wrist, the four finger bases, two
   thumb joints) in input pixels relative to the anchor. Sigmoid, score >= ``min_detection_score``,
   weighted NMS (IoU 0.3).
2. **Hand landmarks** (``hand_landmark_lite`` / ``_full``): each palm becomes a rotated square
   ROI — rotation that points the wrist -> middle-finger-base line up, centre shifted half a box
   towards the fingers, side 2.6 x the box's long side — cut out as a 224x224 crop; the model
   gives 21 landmarks (crop pixels, z in the same scale), a presence probability, a handedness
   probability and 21 world landmarks (metres, hand-centred). Landmarks map back to the frame
   through the ROI.

Hands found on one call seed the next call's ROIs (from the landmarks: wrist and finger bases,
rotated bounding box, x 2.0, shifted 0.1 towards the fingers) when it comes within
``track_gap_s``; the palm detector then runs only while fewer than ``max_hands`` hands are held.

The tracker is meant to run only when needed — the caller decides the rate: every frame during a
hand-over-face challenge, a few times a second near the face otherwise (``region_around``). Costs
per call are in benchmarks/README.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import ConfigError, TimestampError
from liveness.core.image import check_rgb
from liveness.core.mathx import iou, logistic
from liveness.core.registry import ort_session
from liveness.tracking.detector import _weighted_nms, letterbox, ssd_anchors
from liveness.tracking.mesh import Roi

__all__ = [
    "HAND_LANDMARK_NAMES",
    "Hand",
    "HandOptions",
    "HandResult",
    "HandTracker",
    "PalmDetection",
    "region_around",
]

PALM_INPUT = 192
HAND_INPUT = 224
NUM_LANDMARKS = 21
#: palm keypoints used for the ROI rotation (wrist -> middle finger base), target angle 90 deg
PALM_ROTATION = (0, 2)
PALM_ROI_SCALE = 2.6
PALM_ROI_SHIFT_Y = -0.5
#: landmarks -> next ROI: wrist, thumb CMC/MCP/IP, then each finger's base and first joint
ROI_SUBSET = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18], np.intp)
LANDMARK_ROI_SCALE = 2.0
Z_SCALE = 0.4
BORDER_MODE = cv2.BORDER_REPLICATE
LANDMARK_ROI_SHIFT_Y = -0.1

HAND_LANDMARK_NAMES = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)  # fmt: skip

_MODELS = {
    "lite": ("palm_detector_lite", "hand_landmark_lite"),
    "full": ("palm_detector_full", "hand_landmark_full"),
}


def _normalize_radians(a: float) -> float:
    return a - 2.0 * math.pi * math.floor((a + math.pi) / (2.0 * math.pi))


def _rotation(p0: np.ndarray, p1: np.ndarray) -> float:
    """MediaPipe's ROI rotation: the angle that turns the p0 -> p1 line to point up (90 deg)."""
    return _normalize_radians(math.pi / 2 - math.atan2(-(float(p1[1]) - float(p0[1])), float(p1[0]) - float(p0[0])))


def _transform_rect(cx: float, cy: float, w: float, h: float, angle: float, scale: float, shift_y: float) -> Roi:
    """MediaPipe's RectTransformationCalculator in pixels: shift the centre by ``shift_y`` x the
    height along the rect's own (rotated) y axis, make the rect square on its long side, scale."""
    cx += -h * shift_y * math.sin(angle)
    cy += h * shift_y * math.cos(angle)
    return Roi(cx=cx, cy=cy, size=max(w, h) * scale, angle=angle)


@dataclass(frozen=True, eq=False)
class PalmDetection:
    """One palm: ``box`` (x, y, w, h) image pixels, ``score`` 0..1, ``keypoints`` (7, 2)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    def roi(self) -> Roi:
        """The hand ROI MediaPipe derives from a palm detection."""
        x, y, w, h = (float(v) for v in self.box)
        angle = _rotation(self.keypoints[PALM_ROTATION[0]], self.keypoints[PALM_ROTATION[1]])
        return _transform_rect(x + w / 2, y + h / 2, w, h, angle, PALM_ROI_SCALE, PALM_ROI_SHIFT_Y)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": np.round(self.keypoints.astype(np.float64), 2).tolist(),
        }


def roi_from_hand_landmarks(landmarks: np.ndarray) -> Roi:
    """Next call's ROI from this call's landmarks (MediaPipe's HandLandmarksToRect + x2.0 and a
    0.1 shift towards the fingers)."""
    pts = np.asarray(landmarks, np.float64)[ROI_SUBSET, :2]
    # rotation: wrist -> mean of the middle finger base and the index/ring bases' midpoint
    p1 = ((pts[4] + pts[8]) / 2 + pts[6]) / 2
    angle = _rotation(pts[0], p1)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre = (lo + hi) / 2
    c, s = math.cos(-angle), math.sin(-angle)
    rel = pts - centre
    proj = np.stack([rel[:, 0] * c - rel[:, 1] * s, rel[:, 0] * s + rel[:, 1] * c], axis=1)
    plo, phi = proj.min(axis=0), proj.max(axis=0)
    pc = (plo + phi) / 2
    ca, sa = math.cos(angle), math.sin(angle)
    cx = pc[0] * ca - pc[1] * sa + centre[0]
    cy = pc[0] * sa + pc[1] * ca + centre[1]
    w, h = float(phi[0] - plo[0]), float(phi[1] - plo[1])
    return _transform_rect(float(cx), float(cy), w, h, angle, LANDMARK_ROI_SCALE, LANDMARK_ROI_SHIFT_Y)


@dataclass(frozen=True, eq=False)
class Hand:
    """One hand. ``landmarks`` (21, 3) image pixels in ``HAND_LANDMARK_NAMES`` order (z: depth
    relative to the wrist, same pixel scale, smaller = nearer the camera); ``world_landmarks``
    (21, 3) metres around the hand's centre; ``presence`` 0..1 that the crop holds a hand;
    ``handedness`` "left"/"right" with its probability, labelled as MediaPipe labels them — for a
    mirrored (selfie-view) image, so swapped for an unmirrored camera image; ``roi`` the crop it
    came from; ``palm_score`` the palm detector's score, None when the hand was followed from
    the previous call's landmarks."""

    landmarks: np.ndarray
    world_landmarks: np.ndarray
    presence: float
    handedness: str
    handedness_score: float
    roi: Roi
    palm_score: float | None = None

    @property
    def box(self) -> np.ndarray:
        """(x, y, w, h) bounding box of the landmarks, image pixels."""
        lo = self.landmarks[:, :2].min(axis=0)
        hi = self.landmarks[:, :2].max(axis=0)
        return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "presence": round(float(self.presence), 4),
            "handedness": self.handedness,
            "handedness_score": round(float(self.handedness_score), 4),
            "palm_score": None if self.palm_score is None else round(float(self.palm_score), 4),
            "roi": self.roi.to_dict(),
            "landmarks": np.round(self.landmarks.astype(np.float64), 2).tolist(),
            "world_landmarks": np.round(self.world_landmarks.astype(np.float64), 4).tolist(),
        }


@dataclass(frozen=True, eq=False)
class HandResult:
    """What one call saw: ``hands`` best first; ``region`` the window the palm detector searched
    (None: the whole frame); ``palm_search`` whether the palm detector ran (False when every
    hand was followed from the previous call); ``palms`` the palm detections it returned."""

    t: float
    hands: tuple[Hand, ...]
    region: tuple[int, int, int, int] | None
    palm_search: bool
    palms: tuple[PalmDetection, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": round(float(self.t), 6),
            "hands": [h.to_dict() for h in self.hands],
            "region": None if self.region is None else [int(v) for v in self.region],
            "palm_search": bool(self.palm_search),
            "palms": [p.to_dict() for p in self.palms],
        }


@dataclass(frozen=True)
class HandOptions:
    """``model``: "lite" or "full" (palm detector and landmark model of that size);
    ``max_hands``: hands returned at most; ``min_detection_score``: palm detections kept from
    this score; ``min_presence``: a landmark crop counts as a hand from this presence; a call
    within ``track_gap_s`` of the previous one follows the previous call's hands from their
    landmarks; ``threads``: ONNX Runtime intra-op threads per model."""

    model: str = "lite"
    max_hands: int = 2
    min_detection_score: float = 0.5
    min_presence: float = 0.5
    track_gap_s: float = 0.25
    threads: int = 1

    def __post_init__(self) -> None:
        if self.model not in _MODELS:
            raise ConfigError(f"model must be one of {sorted(_MODELS)}, got {self.model!r}")
        if self.max_hands < 1:
            raise ConfigError(f"max_hands must be >= 1, got {self.max_hands}")
        if not (0.0 <= self.min_detection_score <= 1.0 and 0.0 <= self.min_presence <= 1.0):
            raise ConfigError("min_detection_score and min_presence must lie in [0, 1]")
        if not self.track_gap_s >= 0:
            raise ConfigError(f"track_gap_s must be >= 0, got {self.track_gap_s}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")


def region_around(box: np.ndarray | tuple[float, ...], scale: float = 3.0) -> tuple[int, int, int, int]:
    """A square window (x, y, w, h) of ``scale`` x the long side of ``box`` centred on it: where a
    hand near or over the face lies (pass as ``region``)."""
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * scale
    return (int(round(x + w / 2 - side / 2)), int(round(y + h / 2 - side / 2)), int(round(side)), int(round(side)))


def _box_iou(a: Roi, b: Roi) -> float:
    """IoU of the axis-aligned squares (side = ROI size) of two ROIs."""
    sa, sb = np.array([a.cx, a.cy, a.size, a.size]), np.array([b.cx, b.cy, b.size, b.size])
    sa[:2] -= a.size / 2
    sb[:2] -= b.size / 2
    return float(iou(sa, sb)[0])


class HandTracker:
    """``HandTracker(HandOptions(model="lite")).process(rgb, t, region=None)`` -> :class:`HandResult`.

    Reuses its buffers and the process-wide ORT sessions; not thread-safe. ``t`` must increase
    from call to call (the gap decides whether the previous call's hands are followed)."""

    def __init__(self, options: HandOptions | None = None) -> None:
        self.options = options or HandOptions()
        self._palm_name, self._lm_name = _MODELS[self.options.model]
        self._anchors = ssd_anchors(PALM_INPUT, ((8, 2), (16, 6)))
        self._palm_in = np.zeros((1, PALM_INPUT, PALM_INPUT, 3), np.float32)
        self._canvas = np.zeros((PALM_INPUT, PALM_INPUT, 3), np.uint8)
        self._hand_in = np.zeros((1, HAND_INPUT, HAND_INPUT, 3), np.float32)
        ms = self.options.min_detection_score
        self._logit_min = -np.inf if ms <= 0.0 else np.inf if ms >= 1.0 else float(np.log(ms / (1.0 - ms)))
        self._palm_sess: Any = None
        self._lm_sess: Any = None
        self.calls = {"palm": 0, "landmarks": 0}
        self.reset()

    @classmethod
    def from_options(cls, options: HandOptions) -> HandTracker:
        return cls(options)

    @staticmethod
    def required_models(options: HandOptions | None = None) -> tuple[str, ...]:
        """The registry models a hand tracker of ``options`` loads (palm detector, landmarks)."""
        return _MODELS[(options or HandOptions()).model]

    def reset(self) -> None:
        """Forget the previous call (the next call searches for palms afresh)."""
        self._last_t: float | None = None
        self._prev: list[Hand] = []

    # --- stage 1 -------------------------------------------------------------------------------
    def _palm_session(self) -> Any:
        if self._palm_sess is None:
            self._palm_sess = ort_session(self._palm_name, self.options.threads)
        return self._palm_sess

    def _lm_session(self) -> Any:
        if self._lm_sess is None:
            self._lm_sess = ort_session(self._lm_name, self.options.threads)
        return self._lm_sess

    def detect_palms(self, rgb: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[PalmDetection]:
        """Palms in the image (or in the window ``region`` (x, y, w, h) of it, black where it
        reaches past the image), image pixels, best first."""
        rgb = check_rgb(rgb)
        size = PALM_INPUT
        mapping = letterbox(rgb, self._canvas, region)
        if mapping is None:
            return []
        sx, sy, px, py = mapping  # input px = s * image px + p
        np.multiply(self._canvas, 1.0 / 255.0, out=self._palm_in[0], casting="unsafe")
        self.calls["palm"] += 1
        reg, cls = self._palm_session().run(None, {"input": self._palm_in})
        logits = cls.reshape(-1)
        keep = np.flatnonzero(logits >= self._logit_min)
        if keep.size == 0:
            return []
        scores = logistic(logits[keep])
        raw = reg.reshape(-1, 18)[keep] / size
        anc = self._anchors[keep]
        cx, cy = raw[:, 0] + anc[:, 0], raw[:, 1] + anc[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        kps = raw[:, 4:18].reshape(-1, 7, 2) + anc[:, None, :]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        out = []
        for box, kp, score in _weighted_nms(boxes, kps, scores, 0.3, 8):
            x0 = (box[0] * size - px) / sx
            y0 = (box[1] * size - py) / sy
            x1 = (box[2] * size - px) / sx
            y1 = (box[3] * size - py) / sy
            if not (x1 > x0 and y1 > y0):
                continue
            k = np.stack([(kp[:, 0] * size - px) / sx, (kp[:, 1] * size - py) / sy], axis=1)
            out.append(PalmDetection(np.array([x0, y0, x1 - x0, y1 - y0], np.float32), float(score), k.astype(np.float32)))
        out.sort(key=lambda d: -d.score)
        return out

    # --- stage 2 -------------------------------------------------------------------------------
    def landmarks(self, rgb: np.ndarray, roi: Roi, palm_score: float | None = None) -> Hand:
        """Run the landmark model on the ROI's 224x224 crop; the result whatever its presence."""
        rgb = check_rgb(rgb)
        if not (math.isfinite(roi.cx) and math.isfinite(roi.cy) and math.isfinite(roi.angle) and roi.size > 0):
            return Hand(np.zeros((NUM_LANDMARKS, 3), np.float32), np.zeros((NUM_LANDMARKS, 3), np.float32),
                        0.0, "right", 0.5, roi, palm_score)
        crop = cv2.warpAffine(rgb, roi.crop_matrix(HAND_INPUT), (HAND_INPUT, HAND_INPUT),
                              flags=cv2.INTER_LINEAR, borderMode=BORDER_MODE)
        np.multiply(crop, 1.0 / 255.0, out=self._hand_in[0], casting="unsafe")
        self.calls["landmarks"] += 1
        lm, presence, handed, world = self._lm_session().run(None, {"input": self._hand_in})
        q = lm.reshape(NUM_LANDMARKS, 3).astype(np.float64)
        k = roi.size / HAND_INPUT
        c, s = math.cos(roi.angle), math.sin(roi.angle)
        dx, dy = (q[:, 0] - HAND_INPUT / 2) * k, (q[:, 1] - HAND_INPUT / 2) * k
        # z as MediaPipe scales it (TensorsToLandmarks' normalize_z 0.4 for the hand model)
        pts = np.stack([roi.cx + c * dx - s * dy, roi.cy + s * dx + c * dy, q[:, 2] * k / Z_SCALE], axis=1)
        # the handedness output is the probability of MediaPipe's label 0, "Left"
        left = float(handed.reshape(-1)[0])
        return Hand(
            landmarks=pts.astype(np.float32),
            world_landmarks=world.reshape(NUM_LANDMARKS, 3).astype(np.float32),
            presence=float(presence.reshape(-1)[0]),
            handedness="left" if left > 0.5 else "right",
            handedness_score=left if left > 0.5 else 1.0 - left,
            roi=roi,
            palm_score=palm_score,
        )

    # --- both ----------------------------------------------------------------------------------
    def process(self, rgb: np.ndarray, t: float, region: tuple[int, int, int, int] | None = None) -> HandResult:
        """Hands in the frame (palms searched in ``region`` when given, e.g.
        ``region_around(face_box)``); a call within ``track_gap_s`` of the previous one first
        follows the previous call's hands."""
        rgb = check_rgb(rgb)
        t = float(t)
        if not math.isfinite(t):
            raise TimestampError(f"timestamp {t} is not finite")
        if self._last_t is not None and t <= self._last_t:
            raise TimestampError(f"timestamp {t:.6f}s does not increase (last {self._last_t:.6f}s)")
        o = self.options
        follow = self._last_t is not None and t - self._last_t <= o.track_gap_s
        self._last_t = t
        hands: list[Hand] = []
        if follow:
            for prev in self._prev:
                roi = roi_from_hand_landmarks(prev.landmarks)
                if any(_box_iou(roi, h.roi) > 0.5 for h in hands):
                    continue  # two followed hands merged into one
                hand = self.landmarks(rgb, roi)
                if hand.presence >= o.min_presence:
                    hands.append(hand)
        palms: list[PalmDetection] = []
        searched = len(hands) < o.max_hands
        if searched:
            palms = self.detect_palms(rgb, region)
            for p in palms:
                if len(hands) >= o.max_hands:
                    break
                roi = p.roi()
                # a palm on a hand already followed is that hand
                if any(_box_iou(roi, h.roi) > 0.5 for h in hands):
                    continue
                hand = self.landmarks(rgb, roi, p.score)
                if hand.presence >= o.min_presence:
                    hands.append(hand)
        self._prev = hands
        window = None if region is None else (int(region[0]), int(region[1]), int(region[2]), int(region[3]))
        return HandResult(t, tuple(hands), window, searched, tuple(palms))
