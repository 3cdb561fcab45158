"""BlazeFace short-range face detector on ONNX Runtime.

The model (``face_detector``, converted from MediaPipe's ``face_detection_short_range.tflite``)
takes a 128x128 RGB image scaled to [-1, 1] and predicts, for each of 896 SSD anchors, a score
logit and 16 regression values (box centre/size and 6 keypoints, in 128-px input units relative
to the anchor). We letterbox the frame, decode the anchors, and merge overlapping boxes with
MediaPipe's weighted non-maximum suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.image import check_rgb
from liveness.core.mathx import iou, logistic
from liveness.core.registry import ort_session

__all__ = ["Detection", "DetectorOptions", "FaceDetector", "KEYPOINT_NAMES", "ssd_anchors"]

MODEL_NAME = "face_detector"
INPUT_SIZE = 128

#: Order of ``Detection.keypoints`` (the subject's right eye is on the image's left).
KEYPOINT_NAMES = (
    "right_eye",
    "left_eye",
    "nose_tip",
    "mouth_center",
    "right_ear_tragion",
    "left_ear_tragion",
)


@dataclass(frozen=True)
class Detection:
    """One detected face. ``box`` is (x, y, w, h) in pixels of the input image, ``score`` the
    detector confidence 0..1, ``keypoints`` (6, 2) pixels in ``KEYPOINT_NAMES`` order."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": {
                n: [round(float(self.keypoints[i, 0]), 2), round(float(self.keypoints[i, 1]), 2)]
                for i, n in enumerate(KEYPOINT_NAMES)
            },
        }


@dataclass(frozen=True)
class DetectorOptions:
    """``min_score``: keep detections scoring at least this; ``nms_iou``: boxes overlapping more
    than this are merged; ``max_faces``: cap on returned faces; ``threads``: ORT intra-op threads."""

    threads: int = 1
    min_score: float = 0.5
    nms_iou: float = 0.3
    max_faces: int = 16

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score must be in [0, 1], got {self.min_score}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1, got {self.max_faces}")


def ssd_anchors() -> np.ndarray:
    """The 896 anchor centres (x, y) in [0, 1] of MediaPipe's short-range face detector.

    SSD layout with 4 layers, strides (8, 16, 16, 16), one aspect ratio plus one interpolated
    scale per layer, fixed anchor size 1: layers sharing a stride are merged, giving 2 anchors
    per cell on the 16x16 grid and 6 per cell on the 8x8 grid.
    """
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        n = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        c = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


class FaceDetector:
    """``FaceDetector(threads=1, min_score=0.5).detect(rgb)`` -> faces sorted by score.

    One instance reuses its input buffer and the process-wide ORT session; not thread-safe.
    """

    def __init__(self, threads: int = 1, min_score: float = 0.5, **kw: Any) -> None:
        self.options = DetectorOptions(threads=threads, min_score=min_score, **kw)
        self._anchors = ssd_anchors()
        self._input = np.zeros((1, INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        self._canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.uint8)
        ms = self.options.min_score
        self._logit_min = -np.inf if ms <= 0.0 else np.inf if ms >= 1.0 else float(np.log(ms / (1.0 - ms)))
        self._sess: Any = None
        self._input_name = ""

    @classmethod
    def from_options(cls, options: DetectorOptions) -> FaceDetector:
        return cls(
            threads=options.threads,
            min_score=options.min_score,
            nms_iou=options.nms_iou,
            max_faces=options.max_faces,
        )

    def _session(self) -> Any:
        if self._sess is None:
            self._sess = ort_session(MODEL_NAME, self.options.threads)
            self._input_name = self._sess.get_inputs()[0].name
        return self._sess

    def _letterbox(self, rgb: np.ndarray) -> tuple[float, float, int, int]:
        """Fill ``self._input``; return (sx, sy, pad_x, pad_y): input px = s * image px + pad."""
        h, w = rgb.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw = min(INPUT_SIZE, max(1, round(w * scale)))
        nh = min(INPUT_SIZE, max(1, round(h * scale)))
        px, py = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        # INTER_AREA when shrinking: plain bilinear decimation (MediaPipe's own preprocessing)
        # aliases noise into false faces and loses small faces
        interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        small = cv2.resize(rgb, (nw, nh), interpolation=interp)
        canvas = self._canvas
        canvas[:] = 0
        canvas[py : py + nh, px : px + nw] = small
        np.multiply(canvas, 2.0 / 255.0, out=self._input[0], casting="unsafe")
        self._input -= 1.0
        # exact mapping: the resized content spans nw x nh input px for w x h image px
        return nw / w, nh / h, px, py

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image, highest score first; [] when none."""
        rgb = check_rgb(rgb)
        h, w = rgb.shape[:2]
        if h < 2 or w < 2:
            return []
        sx, sy, px, py = self._letterbox(rgb)
        sess = self._session()
        reg, cls = sess.run(None, {self._input_name: self._input})
        logits = cls.reshape(-1)
        keep = np.flatnonzero(logits >= self._logit_min)
        if keep.size == 0:
            return []
        logits = np.clip(logits[keep], -80.0, 80.0)
        scores = logistic(logits)
        raw = reg.reshape(-1, 16)[keep] / INPUT_SIZE
        anc = self._anchors[keep]
        # (cx, cy, w, h) and keypoints in normalised input coordinates
        cx = raw[:, 0] + anc[:, 0]
        cy = raw[:, 1] + anc[:, 1]
        bw, bh = raw[:, 2], raw[:, 3]
        kps = raw[:, 4:16].reshape(-1, 6, 2) + anc[:, None, :]
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        merged = _weighted_nms(boxes, kps, scores, self.options.nms_iou, self.options.max_faces)
        out = []
        for box, kp, score in merged:
            # normalised input -> input px -> image px
            x0 = (box[0] * INPUT_SIZE - px) / sx
            y0 = (box[1] * INPUT_SIZE - py) / sy
            x1 = (box[2] * INPUT_SIZE - px) / sx
            y1 = (box[3] * INPUT_SIZE - py) / sy
            kpx = (kp[:, 0] * INPUT_SIZE - px) / sx
            kpy = (kp[:, 1] * INPUT_SIZE - py) / sy
            if not (x1 > x0 and y1 > y0):
                continue
            out.append(
                Detection(
                    box=np.array([x0, y0, x1 - x0, y1 - y0], np.float32),
                    score=float(score),
                    keypoints=np.stack([kpx, kpy], axis=1).astype(np.float32),
                )
            )
        out.sort(key=lambda d: -d.score)
        return out


def _weighted_nms(
    boxes: np.ndarray, kps: np.ndarray, scores: np.ndarray, iou_thr: float, max_out: int
) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster (IoU > thr with its best box) is replaced by the
    score-weighted mean of its boxes and keypoints, keeping the best score."""
    order = np.argsort(-scores, kind="stable")
    boxes, kps, scores = boxes[order], kps[order], scores[order]
    remaining = np.ones(len(scores), bool)
    out = []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        idx = np.flatnonzero(remaining)
        ov = iou(boxes[i], boxes[idx], corners=True)
        members = idx[ov > iou_thr]
        if members.size == 0:
            members = np.array([i])
        remaining[members] = False
        remaining[i] = False
        w = scores[members]
        ws = w.sum()
        box = (boxes[members] * w[:, None]).sum(0) / ws
        kp = (kps[members] * w[:, None, None]).sum(0) / ws
        out.append((box, kp, float(scores[i])))
        if len(out) >= max_out:
            break
    return out
