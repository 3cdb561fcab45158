"""478-point face mesh on ONNX Runtime (MediaPipe face-mesh topology, refined eyes/lips/iris).

The face is cut out of the frame as a rotated square (``Roi``) by one ``cv2.warpAffine`` into a
192x192 RGB crop scaled to [0, 1]. The model ``face_mesh`` (MediaPipe's
``face_landmark_with_attention``, converted to standard ONNX ops) returns 468 mesh points plus
refined lips (80), eyes (71 each) and irises (5 each) in crop pixels; the refined points replace
their mesh counterparts exactly as MediaPipe's ``refine_landmarks`` does, the irises become points
468..477, and everything is mapped back to image pixels (z in the same pixel scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from liveness.core.errors import ConfigError, InputError
from liveness.core.image import check_rgb
from liveness.core.mathx import logistic
from liveness.core.registry import ort_session

if TYPE_CHECKING:
    from liveness.tracking.detector import Detection

__all__ = [
    "FaceMesh",
    "MeshOptions",
    "MeshResult",
    "Roi",
    "roi_from_detection",
    "roi_from_landmarks",
]

MODEL_NAME = "face_mesh"
CROP = 192
NUM_LANDMARKS = 478
ROI_SCALE = 1.5
# Before the warp, one byte in every TOUCH_STRIDE of each row of the ROI's bounding region is
# read, in order: the CPU's prefetchers then bring the region into cache at full speed, where the
# rotated, down-scaling warp alone waits on memory for every row it samples (a 642-px ROI of a
# 1280x720 frame: 0.81 -> 0.37 ms on an AMD EPYC with AVX-512; benchmarks/README.md). The warp
# itself reads the frame, so the crop is exactly the direct warp's.
TOUCH_STRIDE = 32
_255 = np.float32(255.0)

# MediaPipe landmark-refinement index maps (face-mesh topology facts).
LIPS_IDX = np.array(
    [
        61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291,
        185, 40, 39, 37, 0, 267, 269, 270, 409,
        78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
        191, 80, 81, 82, 13, 312, 311, 310, 415,
        76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306,
        184, 74, 73, 72, 11, 302, 303, 304, 408,
        62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292,
        183, 42, 41, 38, 12, 268, 271, 272, 407,
    ],
    np.intp,
)  # fmt: skip
# "left" in MediaPipe's tensor names = image left = the subject's right eye (mesh points 33, 133...)
LEFT_EYE_IDX = np.array(
    [
        33, 7, 163, 144, 145, 153, 154, 155, 133,
        246, 161, 160, 159, 158, 157, 173,
        130, 25, 110, 24, 23, 22, 26, 112, 243,
        247, 30, 29, 27, 28, 56, 190,
        226, 31, 228, 229, 230, 231, 232, 233, 244,
        113, 225, 224, 223, 222, 221, 189,
        35, 124, 46, 53, 52, 65,
        143, 111, 117, 118, 119, 120, 121, 128, 245,
        156, 70, 63, 105, 66, 107, 55, 193,
    ],
    np.intp,
)  # fmt: skip
RIGHT_EYE_IDX = np.array(
    [
        263, 249, 390, 373, 374, 380, 381, 382, 362,
        466, 388, 387, 386, 385, 384, 398,
        359, 255, 339, 254, 253, 252, 256, 341, 463,
        467, 260, 259, 257, 258, 286, 414,
        446, 261, 448, 449, 450, 451, 452, 453, 464,
        342, 445, 444, 443, 442, 441, 413,
        265, 353, 276, 283, 282, 295,
        372, 340, 346, 347, 348, 349, 350, 357, 465,
        383, 300, 293, 334, 296, 336, 285, 417,
    ],
    np.intp,
)  # fmt: skip
# iris z = mean z of the eye contour (first 16 points of each eye map)
LEFT_EYE_CONTOUR = LEFT_EYE_IDX[:16]
RIGHT_EYE_CONTOUR = RIGHT_EYE_IDX[:16]


@dataclass(frozen=True)
class Roi:
    """A rotated square crop: centre (cx, cy) and side ``size`` in image pixels, ``angle`` in
    radians (positive turns the crop's x axis towards the image's +y, i.e. clockwise on screen)."""

    cx: float
    cy: float
    size: float
    angle: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "cx": round(float(self.cx), 2),
            "cy": round(float(self.cy), 2),
            "size": round(float(self.size), 2),
            "angle": round(float(self.angle), 5),
        }

    def crop_matrix(self, out_size: int = CROP) -> np.ndarray:
        """2x3 affine matrix mapping image pixels to crop pixels (for ``cv2.warpAffine``)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        k = out_size / self.size
        # q = k * R(-angle) (p - centre) + out/2
        return np.array(
            [
                [k * c, k * s, -k * (c * self.cx + s * self.cy) + out_size / 2],
                [-k * s, k * c, -k * (-s * self.cx + c * self.cy) + out_size / 2],
            ],
            np.float64,
        )


def _normalize_radians(a: float) -> float:
    return a - 2.0 * math.pi * math.floor((a + math.pi) / (2.0 * math.pi))


def roi_from_detection(det: Detection, scale: float = ROI_SCALE) -> Roi:
    """MediaPipe's detection-to-ROI: box centre, square of ``scale`` x the box's long side,
    rotation that levels the line from the right eye (keypoint 0) to the left eye (keypoint 1)."""
    x, y, w, h = (float(v) for v in det.box)
    (x0, y0), (x1, y1) = det.keypoints[0], det.keypoints[1]
    angle = _normalize_radians(-math.atan2(-(float(y1) - float(y0)), float(x1) - float(x0)))
    return Roi(cx=x + w / 2, cy=y + h / 2, size=max(w, h) * scale, angle=angle)


def roi_from_landmarks(landmarks: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """ROI for the next frame from this frame's mesh: bounding box of the points, square of
    ``scale`` x its long side, rotation from the outer eye corners (points 33 and 263)."""
    pts = np.asarray(landmarks)[:, :2]
    if pts.shape[0] < 264:
        raise InputError(f"expected face-mesh landmarks (>= 468 points), got {pts.shape[0]}")
    xy = np.ascontiguousarray(pts[:468].T)  # min/max of contiguous rows: 6x faster than by column
    lo = xy.min(axis=1)
    hi = xy.max(axis=1)
    (x0, y0), (x1, y1) = pts[33], pts[263]
    angle = _normalize_radians(-math.atan2(-(float(y1) - float(y0)), float(x1) - float(x0)))
    w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    return Roi(
        cx=float(lo[0] + hi[0]) / 2, cy=float(lo[1] + hi[1]) / 2, size=max(w, h) * scale, angle=angle
    )


@dataclass(frozen=True)
class MeshResult:
    """``landmarks`` (478, 3) float32 in image pixels (z in the same scale, smaller = nearer the
    camera); ``score`` 0..1 that the crop holds a face; ``roi`` the crop the mesh came from."""

    landmarks: np.ndarray
    score: float
    roi: Roi

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(float(self.score), 4),
            "roi": self.roi.to_dict(),
            "landmarks": np.round(self.landmarks.astype(np.float64), 2).tolist(),
        }


@dataclass(frozen=True)
class MeshOptions:
    """``threads``: ONNX Runtime intra-op threads."""

    threads: int = 1

    def __post_init__(self) -> None:
        if self.threads < 1:
            raise ConfigError(f"threads must be >= 1, got {self.threads}")


class FaceMesh:
    """``FaceMesh(threads=1).run(rgb, roi) -> MeshResult``. Reuses its buffers; not thread-safe."""

    def __init__(self, threads: int = 1) -> None:
        self.options = MeshOptions(threads=threads)
        self._crop = np.zeros((CROP, CROP, 3), np.uint8)
        self._input = np.zeros((1, CROP, CROP, 3), np.float32)
        self._sess: Any = None
        self._input_name = "input"
        self._out = np.zeros((NUM_LANDMARKS, 3), np.float32)

    @classmethod
    def from_options(cls, options: MeshOptions) -> FaceMesh:
        return cls(threads=options.threads)

    def _session(self) -> Any:
        if self._sess is None:
            self._sess = ort_session(MODEL_NAME, self.options.threads)
            self._input_name = self._sess.get_inputs()[0].name
            self._output_names = [o.name for o in self._sess.get_outputs()]
        return self._sess

    def crop(self, rgb: np.ndarray, roi: Roi) -> np.ndarray:
        """The 192x192 RGB uint8 crop the model sees (a view of an internal buffer): one
        bilinear ``cv2.warpAffine`` of the frame (replicated border).

        The part of the frame under the rotated ROI (plus a 2-px margin, clipped to the frame) is
        first touched row by row (``TOUCH_STRIDE``): an in-order read that the CPU prefetches,
        where the rotated, down-scaling warp straight from a frame not in cache waits on memory
        row after row. The pixels are the direct warp's, exactly."""
        h, w = rgb.shape[:2]
        c, s = abs(math.cos(roi.angle)), abs(math.sin(roi.angle))
        r = 0.5 * roi.size * (c + s) + 2.0  # half-extent of the rotated square's bounding box
        x0, y0 = max(0, math.floor(roi.cx - r)), max(0, math.floor(roi.cy - r))
        x1, y1 = min(w, math.ceil(roi.cx + r) + 1), min(h, math.ceil(roi.cy + r) + 1)
        region = rgb[y0:y1, x0:x1]
        if x1 - x0 >= 2 and y1 - y0 >= 2 and region.strides[1:] == (3, 1):  # rows of packed pixels
            region.reshape(y1 - y0, 3 * (x1 - x0))[:, ::TOUCH_STRIDE].max()  # the read is the point
        cv2.warpAffine(
            rgb,
            cv2.invertAffineTransform(roi.crop_matrix(CROP)),
            (CROP, CROP),
            dst=self._crop,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return self._crop

    def infer_crop(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """Run the model on a 192x192 RGB uint8 crop: (478, 3) landmarks in crop pixels, score."""
        sess = self._session()
        # a float32 division gives the same values as a multiplication by 1/255 in float64 (all
        # 256 of them; tests) at half the cost
        np.divide(crop, _255, out=self._input[0], casting="unsafe")
        outs = dict(zip(self._output_names, sess.run(None, {self._input_name: self._input}), strict=True))
        lm = self._out
        lm[:468] = outs["mesh"].reshape(468, 3)
        lm[LIPS_IDX, :2] = outs["lips"].reshape(80, 2)
        lm[LEFT_EYE_IDX, :2] = outs["left_eye"].reshape(71, 2)
        lm[RIGHT_EYE_IDX, :2] = outs["right_eye"].reshape(71, 2)
        lm[468:473, :2] = outs["left_iris"].reshape(5, 2)
        lm[468:473, 2] = lm[LEFT_EYE_CONTOUR, 2].mean()
        lm[473:478, :2] = outs["right_iris"].reshape(5, 2)
        lm[473:478, 2] = lm[RIGHT_EYE_CONTOUR, 2].mean()
        logit = float(np.clip(outs["face_flag"].reshape(-1)[0], -80.0, 80.0))
        return lm.copy(), logistic(logit)

    def run(self, rgb: np.ndarray, roi: Roi) -> MeshResult:
        """Mesh of the face inside ``roi`` of an RGB uint8 (H, W, 3) frame."""
        check_rgb(rgb)
        if rgb.shape[0] < 1 or rgb.shape[1] < 1:
            raise InputError("empty image")
        if not (math.isfinite(roi.size) and roi.size > 0 and math.isfinite(roi.cx) and math.isfinite(roi.cy) and math.isfinite(roi.angle)):
            raise InputError(f"invalid ROI {roi}")
        crop = self.crop(rgb, roi)
        lm, score = self.infer_crop(crop)
        return MeshResult(landmarks=crop_to_image(lm, roi), score=score, roi=roi)


def crop_to_image(lm: np.ndarray, roi: Roi, crop_size: int = CROP) -> np.ndarray:
    """Map (N, 3) crop-pixel landmarks back to image pixels (z scaled like x and y)."""
    k = roi.size / crop_size
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    dx = (lm[:, 0] - crop_size / 2) * k
    dy = (lm[:, 1] - crop_size / 2) * k
    out = np.empty_like(lm, dtype=np.float32)
    out[:, 0] = roi.cx + c * dx - s * dy
    out[:, 1] = roi.cy + s * dx + c * dy
    out[:, 2] = lm[:, 2] * k
    return out
