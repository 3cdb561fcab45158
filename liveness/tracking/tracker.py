"""Face tracking: detect when there is no track, follow the face from the previous mesh,
re-detect on loss and periodically (to count faces and catch a new arrival)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.mathx import iou
from liveness.core.types import FaceObservation, FaceQuality

if TYPE_CHECKING:
    from liveness.tracking.mesh import Roi

__all__ = ["FaceTracker", "TrackerOptions", "face_quality"]


@dataclass(frozen=True)
class TrackerOptions:
    """``detect_interval_s``: how often the detector runs while a face is tracked (counts the
    faces in the frame and notices new arrivals; the track itself follows the mesh). ``min_presence``: mesh face-presence score under which the track is
    lost. When no track exists and no detection reaches ``min_detection_score``, up to
    ``max_candidates`` weaker detections (>= ``min_candidate_score``) are verified by the mesh's
    face-presence score — this recovers faces half out of the frame, which the detector scores low
    but the mesh still recognises. ``threads``: ONNX Runtime intra-op threads per model."""

    detect_interval_s: float = 1.0
    min_detection_score: float = 0.5
    min_candidate_score: float = 0.1
    max_candidates: int = 5
    min_presence: float = 0.5
    threads: int = 1
    keep_image: bool = True

    def __post_init__(self) -> None:
        if self.detect_interval_s <= 0:
            raise ConfigError("detect_interval_s must be > 0")
        if not all(0 <= v <= 1 for v in (self.min_detection_score, self.min_candidate_score, self.min_presence)):
            raise ConfigError("scores must lie in [0, 1]")
        if self.max_candidates < 1:
            raise ConfigError("max_candidates must be >= 1")
        if self.threads < 1:
            raise ConfigError("threads must be >= 1")


def _box(landmarks: np.ndarray) -> np.ndarray:
    lo = landmarks[:468, :2].min(axis=0)
    hi = landmarks[:468, :2].max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)


_QSIZE = 96  # quality is measured on the face box resized to this size


def face_quality(image: np.ndarray, box: np.ndarray) -> FaceQuality:
    """Size, sharpness (Laplacian variance at a fixed 96-px scale), brightness and inside-frame
    fraction of a face box."""
    h, w = image.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    size = float(np.sqrt(max(bw, 0.0) * max(bh, 0.0)))
    x0, y0 = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    x1, y1 = min(w, int(np.ceil(x + bw))), min(h, int(np.ceil(y + bh)))
    inside = max(0, x1 - x0) * max(0, y1 - y0) / max(bw * bh, 1e-6)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return FaceQuality(size, 0.0, 0.0, float(min(inside, 1.0)))
    crop = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    # INTER_AREA at a fractional ratio is slow (~1 ms for a 500-px face); a bilinear step to the
    # nearest whole multiple of 96 first lets it take its integer-ratio path (same values +- 0.5 %)
    kx, ky = grey.shape[1] // _QSIZE, grey.shape[0] // _QSIZE
    if kx > 1 or ky > 1:
        grey = cv2.resize(grey, (_QSIZE * max(kx, 1), _QSIZE * max(ky, 1)), interpolation=cv2.INTER_LINEAR)
    grey = cv2.resize(grey, (_QSIZE, _QSIZE), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(grey, cv2.CV_32F)
    return FaceQuality(size, float(lap.var()), float(grey.mean()), float(min(inside, 1.0)))


class FaceTracker:
    """``process(rgb, t)`` → :class:`FaceObservation`. The candidate face is the tracked one;
    other detected faces are reported in ``other_boxes`` and counted in ``faces``."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh
        from liveness.tracking.pose import PoseEstimator

        self.options = options or TrackerOptions()
        self.detector = FaceDetector(threads=self.options.threads, min_score=self.options.min_candidate_score)
        self.mesh = FaceMesh(threads=self.options.threads)
        self.pose = PoseEstimator()
        self.reset()

    @classmethod
    def from_options(cls, options: TrackerOptions) -> FaceTracker:
        return cls(options)

    def reset(self) -> None:
        self._roi: Roi | None = None
        self._last_detect_t: float | None = None
        self._box_prev: np.ndarray | None = None
        self._dets: list = []
        self._others = np.zeros((0, 4), np.float32)
        self._faces = 0
        self.pose.reset()

    def _detect(self, image: np.ndarray, t: float, tracked_box: np.ndarray | None, dets: list | None = None) -> list:
        """Run the detector (unless this frame's ``dets`` are given); returns the detections to
        (re)start the track from, best first."""
        if dets is None:
            dets = self.detector.detect(image)
        self._dets = dets
        strong = [d for d in dets if d.score >= self.options.min_detection_score]
        self._last_detect_t = t
        self._faces = len(strong)
        chosen = None
        if tracked_box is not None:
            ious = [float(iou(d.box, tracked_box)[0]) for d in strong]
            if ious and max(ious) > 0.1:
                chosen = strong[int(np.argmax(ious))]
            cands = [chosen] if chosen is not None else []
        elif strong:
            # no track: the largest confident face becomes the candidate
            chosen = strong[int(np.argmax([d.box[2] * d.box[3] * d.score for d in strong]))]
            cands = [chosen]
        else:
            cands = dets[: self.options.max_candidates]
        self._others = np.array([d.box for d in strong if d is not chosen], np.float32).reshape(-1, 4)
        return cands

    def process(self, image: np.ndarray, t: float, frame_index: int = -1) -> FaceObservation:
        from liveness.tracking.mesh import roi_from_detection, roi_from_landmarks

        h, w = image.shape[:2]
        o = self.options
        redetected = False
        landmarks = None
        score = 0.0
        frame_dets = None  # the detector's output on this frame, if it ran

        if self._roi is not None:
            periodic = self._last_detect_t is None or t - self._last_detect_t >= o.detect_interval_s
            if periodic:
                self._detect(image, t, self._box_prev)
                frame_dets = self._dets
            res = self.mesh.run(image, self._roi)
            if res.score >= o.min_presence:
                landmarks, score = res.landmarks, res.score
            else:
                self._roi = None
                self.pose.reset()
        if landmarks is None:
            redetected = True
            for det in self._detect(image, t, None, frame_dets):
                res = self.mesh.run(image, roi_from_detection(det))
                if res.score >= o.min_presence:
                    landmarks, score = res.landmarks, res.score
                    break

        keep = image if o.keep_image else None
        if landmarks is None:
            self._roi = None
            self._box_prev = None
            return FaceObservation(
                t, frame_index, w, h, False, self._faces, other_boxes=self._others,
                redetected=redetected, image=keep,
            )
        self._roi = roi_from_landmarks(landmarks)
        box = _box(landmarks)
        self._box_prev = box
        pose = self.pose.estimate(landmarks, w, h)
        quality = face_quality(image, box)
        return FaceObservation(
            t, frame_index, w, h, True, max(self._faces, 1 + len(self._others)), box, landmarks,
            float(score), pose, quality, self._others, redetected, keep,
        )
