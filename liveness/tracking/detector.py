"""BlazeFace face detectors (short and full range) on ONNX Runtime.

Short range (``face_detector``, MediaPipe's ``face_detection_short_range.tflite``): a 128x128 RGB
input scaled to [-1, 1]; for each of 896 SSD anchors (strides 8, 16, 16, 16) a score logit and 16
regression values (box centre/size and 6 keypoints, in input pixels relative to the anchor).
Full range (``face_detector_full``, ``face_detection_full_range_sparse.tflite``): the same outputs
for a 192x192 input and 2304 anchors (one per cell of a 48x48 grid, stride 4), meant for faces
up to a few metres from the camera. We letterbox the frame (or a region of it), decode the
anchors, and merge overlapping boxes with MediaPipe's weighted non-maximum suppression.
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

__all__ = [
    "DETECTOR_MODELS",
    "Detection",
    "DetectorOptions",
    "FaceDetector",
    "KEYPOINT_NAMES",
    "letterbox",
    "merge_detections",
    "ssd_anchors",
]

MODEL_NAME = "face_detector"
INPUT_SIZE = 128


@dataclass(frozen=True)
class _DetectorModel:
    registry_name: str
    input_size: int
    layout: tuple[tuple[int, int], ...]  # (stride, anchors per cell), layers sharing a stride merged


#: ``DetectorOptions.model`` -> model. Anchor layouts as MediaPipe's SsdAnchorsCalculator builds
#: them: short range 4 layers, strides (8, 16, 16, 16), 2 anchors per layer (one aspect ratio plus
#: one interpolated scale); full range 1 layer, stride 4, one anchor (no interpolated scale).
#: All anchors have size 1 (``fixed_anchor_size``), so only their centres matter.
DETECTOR_MODELS = {
    "short_range": _DetectorModel("face_detector", 128, ((8, 2), (16, 6))),
    "full_range": _DetectorModel("face_detector_full", 192, ((4, 1),)),
}

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
    than this are merged; ``max_faces``: cap on returned faces; ``threads``: ORT intra-op threads;
    ``model``: ``"short_range"`` (faces filling a good part of the image, 128-px input) or
    ``"full_range"`` (smaller, more distant faces, 192-px input); ``stretch_contrast``: a dark
    image (a dim room: no value reaches ``STRETCH_BELOW``) is brightened by a gain of at most
    ``STRETCH_MAX_GAIN`` before the model sees it (dim small faces then score like lit ones)."""

    threads: int = 1
    min_score: float = 0.5
    nms_iou: float = 0.3
    max_faces: int = 16
    model: str = "short_range"
    stretch_contrast: bool = False

    def __post_init__(self) -> None:
        if self.model not in DETECTOR_MODELS:
            raise ConfigError(f"model must be one of {sorted(DETECTOR_MODELS)}, got {self.model!r}")
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"min_score must be in [0, 1], got {self.min_score}")
        if not 0.0 < self.nms_iou <= 1.0:
            raise ConfigError(f"nms_iou must be in (0, 1], got {self.nms_iou}")
        if self.max_faces < 1:
            raise ConfigError(f"max_faces must be >= 1, got {self.max_faces}")


def ssd_anchors(
    input_size: int = INPUT_SIZE, layout: tuple[tuple[int, int], ...] = ((8, 2), (16, 6))
) -> np.ndarray:
    """Anchor centres (x, y) in [0, 1] of a MediaPipe SSD detector, in the model's output order.

    ``layout`` lists (stride, anchors per cell) with the layers that share a stride merged. The
    default is the short-range face detector (4 layers, strides 8, 16, 16, 16, one aspect ratio
    plus one interpolated scale per layer): 2 anchors per cell on the 16x16 grid and 6 on the
    8x8 grid, 896 in all. Cells are in row-major order, a cell's anchors consecutive.
    """
    out = []
    for stride, per_cell in layout:
        n = -(-input_size // stride)  # ceil, as MediaPipe computes the feature map size
        ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        c = np.stack([(xs + 0.5) / n, (ys + 0.5) / n], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(c, per_cell, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


class FaceDetector:
    """``FaceDetector(threads=1, min_score=0.5).detect(rgb)`` -> faces sorted by score;
    ``FaceDetector(model="full_range")`` for small and distant faces.

    One instance reuses its input buffer and the process-wide ORT session; not thread-safe.
    """

    def __init__(self, threads: int = 1, min_score: float = 0.5, **kw: Any) -> None:
        self.options = DetectorOptions(threads=threads, min_score=min_score, **kw)
        spec = DETECTOR_MODELS[self.options.model]
        self._model_name = spec.registry_name
        self._size = spec.input_size
        self._anchors = ssd_anchors(spec.input_size, spec.layout)
        self._input = np.zeros((1, self._size, self._size, 3), np.float32)
        self._canvas = np.zeros((self._size, self._size, 3), np.uint8)
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
            model=options.model,
            stretch_contrast=options.stretch_contrast,
        )

    @property
    def input_size(self) -> int:
        """Side of the model's square input in pixels (128 short range, 192 full range)."""
        return self._size

    def _session(self) -> Any:
        if self._sess is None:
            self._sess = ort_session(self._model_name, self.options.threads)
            self._input_name = self._sess.get_inputs()[0].name
        return self._sess

    def _prepare(self, rgb: np.ndarray, region: tuple[int, int, int, int] | None) -> tuple[float, float, float, float] | None:
        """Fill the model input (letterboxed, [-1, 1]); the mapping as :func:`letterbox` gives it."""
        mapping = letterbox(rgb, self._canvas, region, self.options.stretch_contrast)
        if mapping is not None:
            np.multiply(self._canvas, 2.0 / 255.0, out=self._input[0], casting="unsafe")
            self._input -= 1.0
        return mapping

    def detect(self, rgb: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[Detection]:
        """Faces in an RGB uint8 (H, W, 3) image, highest score first; [] when none.

        ``region`` (x, y, w, h) in image pixels: search only that window of the image (a tile of
        a large frame, where a small face spans more input pixels); where the window reaches
        past the image, it is black (a face at the image's edge then lies inside the model's
        input, not at its edge). The detections are still in whole-image pixels."""
        rgb = check_rgb(rgb)
        size = self._size
        mapping = self._prepare(rgb, region)
        if mapping is None:
            return []
        sx, sy, px, py = mapping  # input px = s * image px + p
        sess = self._session()
        reg, cls = sess.run(None, {self._input_name: self._input})
        logits = cls.reshape(-1)
        keep = np.flatnonzero(logits >= self._logit_min)
        if keep.size == 0:
            return []
        logits = np.clip(logits[keep], -80.0, 80.0)
        scores = logistic(logits)
        raw = reg.reshape(-1, 16)[keep] / size
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
            x0 = (box[0] * size - px) / sx
            y0 = (box[1] * size - py) / sy
            x1 = (box[2] * size - px) / sx
            y1 = (box[3] * size - py) / sy
            kpx = (kp[:, 0] * size - px) / sx
            kpy = (kp[:, 1] * size - py) / sy
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


def letterbox(
    rgb: np.ndarray, canvas: np.ndarray, region: tuple[int, int, int, int] | None = None, stretch: bool = False
) -> tuple[float, float, float, float] | None:
    """Letterbox the image, or its window ``region`` (x, y, w, h), into the square uint8
    ``canvas`` (aspect kept, black padding, black where the window reaches past the image;
    INTER_AREA when shrinking: plain bilinear decimation, MediaPipe's own preprocessing, aliases
    noise into false faces and loses small faces). Returns (sx, sy, tx, ty) with
    canvas px = s * image px + t, or None when the window holds less than 2x2 image pixels."""
    size = canvas.shape[0]
    ih, iw = rgb.shape[:2]
    if region is None:
        x, y, rw, rh = 0, 0, iw, ih
    else:
        x, y, rw, rh = (int(v) for v in region)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(iw, x + rw), min(ih, y + rh)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    scale = size / max(rw, rh)
    if (x0, y0, x1, y1) == (x, y, x + rw, y + rh):
        # the window lies inside the image: centre it
        nw, nh = min(size, max(1, round(rw * scale))), min(size, max(1, round(rh * scale)))
        px, py = (size - nw) // 2, (size - nh) // 2
    else:
        # only its part inside the image is resized, placed where it lies in the window
        nw = min(size, max(1, round((x1 - x0) * scale)))
        nh = min(size, max(1, round((y1 - y0) * scale)))
        px = min(size - nw, max(0, round((size - rw * scale) / 2 + (x0 - x) * scale)))
        py = min(size - nh, max(0, round((size - rh * scale) / 2 + (y0 - y) * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    small = cv2.resize(rgb[y0:y1, x0:x1], (nw, nh), interpolation=interp)
    if stretch:
        small = _stretch(small)
    canvas[:] = 0
    canvas[py : py + nh, px : px + nw] = small
    # exact mapping: the resized content spans nw x nh canvas px for its image px
    sx, sy = nw / (x1 - x0), nh / (y1 - y0)
    return sx, sy, px - sx * x0, py - sy * y0


#: ``stretch_contrast``: a dark image (its brightest value below this) is brightened ...
STRETCH_BELOW = 128
#: ... by the gain that brings its brightest value to STRETCH_TARGET, at most STRETCH_MAX_GAIN
STRETCH_TARGET = 230
STRETCH_MAX_GAIN = 4.0


def _stretch(small: np.ndarray) -> np.ndarray:
    """Brighten a dark (small, model-sized) uint8 image by a pure gain, so that its brightest
    value reaches ``STRETCH_TARGET``; the image unchanged otherwise. A gain, not a percentile
    stretch: a small face in a large flat tile would be clipped by a stretch set by the tile's
    background, while its own values are never above the image's maximum (after the
    INTER_AREA shrink, sensor noise barely moves the maximum)."""
    peak = int(small.max())
    if peak >= STRETCH_BELOW:
        return small
    gain = min(STRETCH_MAX_GAIN, STRETCH_TARGET / max(peak, 1))
    lut = np.clip(np.arange(256, dtype=np.float32) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(small, lut)


def merge_detections(dets: list[Detection], iou: float = 0.3, max_faces: int = 64) -> list[Detection]:
    """Detections from several searches of one image (overlapping tiles, zoomed re-detections)
    merged by MediaPipe's weighted NMS, highest score first."""
    if not dets:
        return []
    boxes = np.array([[d.box[0], d.box[1], d.box[0] + d.box[2], d.box[1] + d.box[3]] for d in dets], np.float32)
    kps = np.stack([d.keypoints for d in dets]).astype(np.float32)
    scores = np.array([d.score for d in dets], np.float32)
    out = [
        Detection(box=np.array([b[0], b[1], b[2] - b[0], b[3] - b[1]], np.float32), score=float(s), keypoints=k)
        for b, k, s in _weighted_nms(boxes, kps, scores, iou, max_faces)
    ]
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
