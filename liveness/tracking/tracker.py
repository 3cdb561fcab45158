"""Face tracking: detect when there is no track, follow the face from the previous mesh,
re-detect on loss and periodically (to count faces and catch a new arrival).

Two detectors: the short-range one (cheap, faces that fill a good part of the frame) runs first;
when it finds nothing, a full-range search looks for small and distant faces — the full-range
model on the whole frame, then on overlapping tiles (a 40-px face in a 1080p frame spans only
4 input pixels of the whole frame, but 12 of a 640-px tile), each weak tile detection re-detected
on a zoomed region before the mesh verifies it. A search that finds nothing is not repeated for
``full_search_interval_s``, which bounds its cost while no face is in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.mathx import iou
from liveness.core.types import FaceObservation, FaceQuality

if TYPE_CHECKING:
    from liveness.tracking.detector import Detection
    from liveness.tracking.mesh import MeshResult, Roi

__all__ = ["FaceTracker", "TrackerOptions", "face_quality"]


@dataclass(frozen=True)
class TrackerOptions:
    """``detect_interval_s``: how often the detector runs while a face is tracked (counts the
    faces in the frame and notices new arrivals; the track itself follows the mesh). ``min_presence``: mesh face-presence score under which the track is
    lost. When no track exists and no detection reaches ``min_detection_score``, up to
    ``max_candidates`` weaker detections (>= ``min_candidate_score``) are verified by the mesh's
    face-presence score — this recovers faces half out of the frame, which the detector scores low
    but the mesh still recognises. ``threads``: ONNX Runtime intra-op threads per model.

    Small faces: with ``full_range``, when the short-range detector finds no face that the mesh
    confirms, the full-range search runs (whole frame, then tiles sized so that a face
    ``min_face_px`` high spans about 12 input pixels), at most once per ``full_search_interval_s``
    while it keeps finding nothing. A tracked face whose box is smaller than ``small_face_frac``
    of the frame's long side (too small for the short-range model) is re-detected periodically
    by the full-range model instead. ``max_search_tiles`` bounds the tiles of one search (8 for
    1080p at the default ``min_face_px``; on larger frames the tiles grow instead, and the
    smallest face found grows with them).

    Other faces (a gallery of call tiles, people behind the candidate): with ``count_full_range``
    each detector run also runs the full-range model once on the whole frame (a face of a 3x3
    gallery at 1080p, 100-300 px, is 7-20 px to the short-range model and 10-30 px to the
    full-range one), and on frames larger than a search tile, at most once per
    ``count_tiles_interval_s``, on the small-face search's tiles too (faces down to
    ``min_face_px``; what they found is held until the next tiled count); the confident faces
    (>= ``min_detection_score``, >= ``min_face_px`` / 2) that are none of the short-range
    model's faces are counted in ``faces`` and reported in ``other_boxes``. They never become
    the candidate, which stays the tracked face."""

    detect_interval_s: float = 1.0
    min_detection_score: float = 0.5
    min_candidate_score: float = 0.1
    max_candidates: int = 5
    min_presence: float = 0.5
    threads: int = 1
    keep_image: bool = True
    full_range: bool = True
    min_face_px: float = 40.0
    full_search_interval_s: float = 0.5
    small_face_frac: float = 0.2
    max_search_tiles: int = 16
    count_full_range: bool = True
    count_tiles_interval_s: float = 5.0

    def __post_init__(self) -> None:
        if self.min_face_px < 8:
            raise ConfigError("min_face_px must be >= 8")
        if self.full_search_interval_s < 0:
            raise ConfigError("full_search_interval_s must be >= 0")
        if not 0 <= self.small_face_frac <= 1:
            raise ConfigError("small_face_frac must lie in [0, 1]")
        if not self.count_tiles_interval_s > 0:
            raise ConfigError("count_tiles_interval_s must be > 0 (inf: never)")
        if self.max_search_tiles < 1:
            raise ConfigError("max_search_tiles must be >= 1")
        if self.detect_interval_s <= 0:
            raise ConfigError("detect_interval_s must be > 0")
        if not all(0 <= v <= 1 for v in (self.min_detection_score, self.min_candidate_score, self.min_presence)):
            raise ConfigError("scores must lie in [0, 1]")
        if self.max_candidates < 1:
            raise ConfigError("max_candidates must be >= 1")
        if self.threads < 1:
            raise ConfigError("threads must be >= 1")


#: a face ``min_face_px`` high should span this many full-range input pixels in a tile
_TILE_FACE_INPUT_PX = 12.0
#: the whole-frame full-range pass finds faces from about this many input pixels
_WHOLE_FACE_INPUT_PX = 14.0
#: a weak tile detection is re-detected on a square this many times its size around it ...
_ZOOM = 4.0
#: ... when it scores at least this: real faces 40-60 px high score 0.57-0.9 in a tile (240
#: dev scenes, lit, dim and portrait), the model's own weak detections on flat background
#: 0.1-0.3 (zooming those would be most of the cost of a search that finds nothing)
_ZOOM_MIN_SCORE = 0.3
#: a weak short-range detection (a face of 15 % of the frame or more: its box is accurate) is
#: confirmed only by a re-detection of about its size, within this factor either way (the
#: full-range model finds a 46-px "face" in the crest of a helmet whose face plate the
#: short-range model weakly detects at 105 px; the full-range search's own candidates, from 6-12
#: input px, have less accurate sizes and are not held to it)
_ZOOM_SIZE_RATIO = 1.6


def search_tiles(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Square tiles (x, y, w, h) covering a ``width`` x ``height`` frame, spread evenly so that
    neighbours overlap by at least ``overlap`` px (a face smaller than that lies wholly inside
    one tile). A frame side no longer than ``tile`` gets one tile along it."""

    def starts(n: int) -> list[int]:
        if n <= tile:
            return [0]
        k = int(np.ceil((n - overlap) / (tile - overlap)))
        return [round(i * (n - tile) / (k - 1)) for i in range(k)]

    tw, th = min(tile, width), min(tile, height)
    return [(x, y, tw, th) for y in starts(height) for x in starts(width)]


def _box(landmarks: np.ndarray) -> np.ndarray:
    xy = np.ascontiguousarray(landmarks[:468, :2].T)  # contiguous rows: 6x faster than by column
    lo = xy.min(axis=1)
    hi = xy.max(axis=1)
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
    other detected faces are reported in ``other_boxes`` and counted in ``faces``.

    ``calls`` counts the model runs since construction (``short_range``, ``full_range``,
    ``mesh``) and ``full_searches`` the full-range searches, for cost accounting."""

    def __init__(self, options: TrackerOptions | None = None) -> None:
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh
        from liveness.tracking.pose import PoseEstimator

        self.options = options or TrackerOptions()
        o = self.options
        self.detector = FaceDetector(threads=o.threads, min_score=o.min_candidate_score)
        self.full_detector = (
            FaceDetector(threads=o.threads, min_score=o.min_candidate_score, model="full_range", stretch_contrast=True)
            if o.full_range
            else None
        )
        self.mesh = FaceMesh(threads=o.threads)
        self.pose = PoseEstimator()
        self.calls = {"short_range": 0, "full_range": 0, "mesh": 0}
        self.full_searches = 0
        self.reset()

    @classmethod
    def from_options(cls, options: TrackerOptions) -> FaceTracker:
        return cls(options)

    @staticmethod
    def required_models(options: TrackerOptions | None = None) -> tuple[str, ...]:
        """The registry models a tracker of ``options`` loads (the detectors, the mesh)."""
        from liveness.tracking.detector import DETECTOR_MODELS
        from liveness.tracking.mesh import MODEL_NAME as MESH

        o = options or TrackerOptions()
        full = (DETECTOR_MODELS["full_range"].registry_name,) if o.full_range else ()
        return (DETECTOR_MODELS["short_range"].registry_name, *full, MESH)

    def reset(self) -> None:
        self._roi: Roi | None = None
        self._last_detect_t: float | None = None
        self._box_prev: np.ndarray | None = None
        self._dets: list = []
        self._others = np.zeros((0, 4), np.float32)
        self._faces = 0
        self._strong: list[Detection] = []
        self._extra: list[Detection] = []
        self._held: list[Detection] = []
        self._whole: list[Detection] | None = None
        self._count_t: float | None = None
        self._chosen: Detection | None = None
        self._full_fail_t: float | None = None
        self.pose.reset()

    def _run_mesh(self, image: np.ndarray, roi: Roi) -> MeshResult:
        self.calls["mesh"] += 1
        return self.mesh.run(image, roi)

    def _small(self, box: np.ndarray | None, w: int, h: int) -> bool:
        """A tracked face too small for the short-range model."""
        return (
            self.full_detector is not None
            and box is not None
            and max(float(box[2]), float(box[3])) < self.options.small_face_frac * max(w, h)
        )

    def _full_detect(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[Detection]:
        assert self.full_detector is not None
        self.calls["full_range"] += 1
        return self.full_detector.detect(image, region)

    def _tiled(self, w: int, h: int) -> bool:
        """A frame larger than one search tile."""
        return max(w, h) > 1.25 * max(192, int(round(self.options.min_face_px * 192 / _TILE_FACE_INPUT_PX)))

    def _tile_pass(self, image: np.ndarray) -> list[Detection]:
        """The full-range model on overlapping tiles, merged."""
        from liveness.tracking.detector import merge_detections

        o = self.options
        h, w = image.shape[:2]
        tile = max(192, int(round(o.min_face_px * 192 / _TILE_FACE_INPUT_PX)))
        # neighbours overlap by more than the faces the whole-frame pass may miss; the
        # tiles see every face the whole-frame pass saw, larger
        overlap = max(int(2 * o.min_face_px), int(np.ceil(max(w, h) * _WHOLE_FACE_INPUT_PX / 192)))
        # the grid reaches 3/4 of a face height past the frame: a face at the frame's edge is
        # not at a tile's edge (where the model misses it)
        m = int(np.ceil(0.75 * o.min_face_px))
        grid = search_tiles(w + 2 * m, h + 2 * m, tile, overlap)
        while len(grid) > o.max_search_tiles:  # very large frames: coarser tiles, bounded cost
            tile = int(tile * 1.2)
            grid = search_tiles(w + 2 * m, h + 2 * m, tile, overlap)
        found = []
        for x, y, tw, th in grid:
            found.extend(self._full_detect(image, (x - m, y - m, tw, th)))
        assert self.full_detector is not None  # set up before any search
        return merge_detections(found, self.full_detector.options.nms_iou)

    def _count_pool(self, image: np.ndarray, t: float, whole: list[Detection] | None) -> list[Detection]:
        """The full-range faces to count others from: this frame's whole-frame pass (run here
        when not given) and the last tiled count's faces (a new one when due)."""
        o = self.options
        if whole is None:
            whole = self._full_detect(image)
        h, w = image.shape[:2]
        if self._tiled(w, h) and (self._count_t is None or not 0 <= t - self._count_t < o.count_tiles_interval_s):
            self._count_t = t
            self._held = [d for d in self._tile_pass(image) if d.score >= o.min_detection_score]
        return [*whole, *self._held]

    def _full_search(self, image: np.ndarray) -> list[Detection]:
        """Small and distant faces: the full-range model on the whole frame and, when that finds
        no confident face, on overlapping tiles; then each of the best detections is re-detected
        on a zoomed region around it, which gives the mesh an accurate box and a score worth
        trusting: only what that re-detection confirms (>= ``min_detection_score``) is returned,
        best first (the mesh's presence score alone accepts some textured backgrounds)."""

        o = self.options
        self.full_searches += 1
        h, w = image.shape[:2]
        pool = self._full_detect(image)
        self._whole = pool  # this frame's whole-frame pass, for counting the other faces
        if not any(d.score >= o.min_detection_score for d in pool) and self._tiled(w, h):
            pool = self._tile_pass(image)
        # nothing much smaller than the smallest face searched for (on noise, the zoomed search
        # of a speck finds specks), nothing as weak as the model's detections of flat background
        pool = [d for d in pool if max(float(d.box[2]), float(d.box[3])) >= 0.5 * o.min_face_px
                and d.score >= _ZOOM_MIN_SCORE]
        return self._confirm(image, pool[: o.max_candidates])

    def _confirm(self, image: np.ndarray, dets: list[Detection], size_ratio: float = np.inf) -> list[Detection]:
        """Re-detect each weak detection with the full-range model on a square ``_ZOOM`` times
        its size around it (black past the frame); keep the re-detections that reach
        ``min_detection_score`` (and ``min_face_px / 2``), centred within the weak box and
        within ``size_ratio`` of its size either way, best first. The mesh's presence score
        alone accepts some textured backgrounds, and, from a huge weak box on a large frame, a
        small face somewhere inside it."""
        o = self.options
        out = []
        for d in dets:
            cx, cy = d.box[0] + d.box[2] / 2, d.box[1] + d.box[3] / 2
            side = _ZOOM * max(float(d.box[2]), float(d.box[3]))
            size = max(float(d.box[2]), float(d.box[3]))
            zoom = [
                z for z in self._full_detect(image, (int(cx - side / 2), int(cy - side / 2), int(side), int(side)))
                if abs(z.box[0] + z.box[2] / 2 - cx) < d.box[2] and abs(z.box[1] + z.box[3] / 2 - cy) < d.box[3]
                and 1 / size_ratio < max(float(z.box[2]), float(z.box[3])) / size < size_ratio
            ]
            best = max(zoom, key=lambda z: z.score, default=None)
            if (
                best is not None
                and best.score >= o.min_detection_score
                and max(float(best.box[2]), float(best.box[3])) >= 0.5 * o.min_face_px
            ):
                out.append(best)
        out.sort(key=lambda d: -d.score)
        return out

    def _detect(self, image: np.ndarray, t: float, tracked_box: np.ndarray | None, dets: list | None = None) -> list:
        """Run the detector (unless this frame's ``dets`` are given); returns the detections to
        (re)start the track from, best first. A small tracked face is re-detected by the
        full-range model."""
        whole = self._whole
        if dets is None:
            h, w = image.shape[:2]
            if self._small(tracked_box, w, h):
                dets = whole = self._full_detect(image)
            else:
                self.calls["short_range"] += 1
                dets = self.detector.detect(image)
        extra: list[Detection] = []
        if self.full_detector is not None and self.options.count_full_range:
            extra = self._count_pool(image, t, whole)
        self._dets = dets
        strong = [d for d in dets if d.score >= self.options.min_detection_score]
        self._strong = strong
        self._extra = self._other_faces(strong, extra, tracked_box)
        self._last_detect_t = t
        self._faces = len(strong) + len(self._extra)
        self._chosen = None
        if tracked_box is not None:
            ious = [float(iou(d.box, tracked_box)[0]) for d in strong]
            if ious and max(ious) > 0.1:
                self._chosen = strong[int(np.argmax(ious))]
            cands = [self._chosen] if self._chosen is not None else []
        elif strong:
            # no track: the largest confident face becomes the candidate (the next ones are
            # tried when the mesh rejects it)
            order = np.argsort([-d.box[2] * d.box[3] * d.score for d in strong], kind="stable")
            cands = [strong[i] for i in order[: self.options.max_candidates]]
        else:
            cands = dets[: self.options.max_candidates]
        self._set_others()
        return cands

    def _other_faces(self, strong: list[Detection], extra: list[Detection], tracked: np.ndarray | None) -> list[Detection]:
        """The full-range model's confident faces that are none of ``strong`` nor the tracked
        face (no IoU over 0.2 and no centre inside one of their boxes, nor theirs inside it)."""
        o = self.options
        known = [d.box for d in strong] + ([tracked] if tracked is not None else [])
        out: list[Detection] = []

        def inside(p: np.ndarray, b: np.ndarray) -> bool:
            return bool(b[0] <= p[0] <= b[0] + b[2] and b[1] <= p[1] <= b[1] + b[3])

        for d in extra:
            if d.score < o.min_detection_score or max(float(d.box[2]), float(d.box[3])) < 0.5 * o.min_face_px:
                continue
            c = d.box[:2] + d.box[2:] / 2
            if any(float(iou(d.box, b)[0]) > 0.2 or inside(c, b) or inside(b[:2] + b[2:] / 2, d.box)
                   for b in known + [e.box for e in out]):
                continue
            out.append(d)
        return out

    def _set_others(self) -> None:
        boxes = [d.box for d in self._strong if d is not self._chosen] + [d.box for d in self._extra]
        self._others = np.array(boxes, np.float32).reshape(-1, 4)

    def _start(self, image: np.ndarray, cands: list[Detection]) -> tuple[np.ndarray | None, float]:
        """Start a track from the first candidate the mesh confirms: (landmarks, presence)."""
        from liveness.tracking.mesh import roi_from_detection

        for det in cands:
            res = self._run_mesh(image, roi_from_detection(det))
            if res.score >= self.options.min_presence:
                if any(det is d for d in self._strong):
                    self._chosen = det
                    self._set_others()
                return res.landmarks, float(res.score)
        return None, 0.0

    def process(self, image: np.ndarray, t: float, frame_index: int = -1) -> FaceObservation:
        from liveness.tracking.mesh import roi_from_landmarks

        h, w = image.shape[:2]
        o = self.options
        self._whole = None  # set by a full search on this frame
        redetected = False
        landmarks = None
        score = 0.0
        frame_dets = None  # the detector's output on this frame, if it ran

        if self._roi is not None:
            periodic = self._last_detect_t is None or t - self._last_detect_t >= o.detect_interval_s
            if periodic:
                self._detect(image, t, self._box_prev)
                frame_dets = self._dets
            res = self._run_mesh(image, self._roi)
            if res.score >= o.min_presence:
                landmarks, score = res.landmarks, res.score
            else:
                self._roi = None
                self.pose.reset()
        if landmarks is None:
            redetected = True
            cands = self._detect(image, t, None, frame_dets)
            if cands and not self._strong and self.full_detector is not None:
                # weak detections only: what the full-range model confirms on a zoom
                cands = self._confirm(image, cands, _ZOOM_SIZE_RATIO)
            landmarks, score = self._start(image, cands)
        if (
            landmarks is None
            and self.full_detector is not None
            and (self._full_fail_t is None or not 0 <= t - self._full_fail_t < o.full_search_interval_s)
        ):
            landmarks, score = self._start(image, self._detect(image, t, None, self._full_search(image)))
            self._full_fail_t = None if landmarks is not None else t

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
