"""128-D face embedding (dlib's face recognition ResNet, converted to ONNX) and its aligned chip.

The chip is cut the way dlib's ``get_face_chip_details(shape, 150, 0.25)`` cuts it from its
5-point landmarks (outer/inner corners of both eyes, bottom of the nose): a least-squares
similarity transform from dlib's template to the image points, here taken from the 478-point
MediaPipe mesh, and one ``cv2.warpAffine``. Two chips of the same person are within euclidean
distance 0.6 of each other (dlib's threshold); see ``benchmarks/README_identity.md`` for the
figures measured on the dev clips.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import InputError
from liveness.core.image import check_rgb

__all__ = [
    "CHIP_SIZE",
    "DLIB_TEMPLATE_5",
    "MESH_POINTS_5",
    "FaceEmbedder",
    "chip_transform",
    "embedding_distance",
    "face_chip",
    "load_reference",
    "similarity_transform",
]

CHIP_SIZE = 150
PADDING = 0.25

#: dlib's 5-point template (get_face_chip_details, unpadded unit square): image-right eye outer
#: and inner corner, image-left eye outer and inner corner, bottom of the nose.
DLIB_TEMPLATE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ],
    np.float64,
)

#: The MediaPipe mesh points at dlib's 5 landmarks (same order as ``DLIB_TEMPLATE_5``).
MESH_POINTS_5 = np.array([263, 362, 33, 133, 2], np.intp)


def _template(size: int = CHIP_SIZE, padding: float = PADDING) -> np.ndarray:
    return (padding + DLIB_TEMPLATE_5) / (2 * padding + 1) * size


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points
    (N, 2) onto ``dst`` (N, 2) (Umeyama 1991); returns a (2, 3) float64 matrix."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    var = (s0**2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sv, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1.0
    r = u @ e @ vt
    scale = float((sv * np.diag(e)).sum() / var) if var > 0 else 1.0
    m = np.empty((2, 3), np.float64)
    m[:, :2] = scale * r
    m[:, 2] = md - scale * r @ ms
    return m


def chip_transform(landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = PADDING) -> np.ndarray:
    """(2, 3) matrix mapping chip pixels to image pixels, fitted like dlib (template -> image)."""
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[0] < 478 or lm.shape[1] < 2:
        raise InputError(f"expected (478, 2|3) mesh landmarks, got {lm.shape}")
    return similarity_transform(_template(size, padding), lm[MESH_POINTS_5, :2])


def embedding_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance(s) between embeddings (broadcasting over leading axes)."""
    return np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32), axis=-1)


def face_chip(rgb: np.ndarray, landmarks: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The aligned (150, 150, 3) uint8 RGB chip of ``rgb`` (cut like dlib from the mesh's five
    points); pixels that fall outside the image are black. Written into ``out`` when given."""
    check_rgb(rgb)
    m = chip_transform(landmarks)
    scale = float(np.hypot(m[0, 0], m[1, 0]))  # image px per chip px
    src = rgb
    if scale > 2.0:
        # dlib samples from an image pyramid when shrinking a lot; a box-filtered copy at
        # about 1 image px per chip px does the same job against aliasing.
        f = int(scale)
        h, w = rgb.shape[:2]
        src = cv2.resize(rgb, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        sx, sy = (w // f) / w, (h // f) / h
        m = np.diag([sx, sy]) @ m
        m[:, 2] += np.array([0.5 * sx - 0.5, 0.5 * sy - 0.5])
    if out is None:
        out = np.empty((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
    cv2.warpAffine(
        src, m, (CHIP_SIZE, CHIP_SIZE), dst=out,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT,
    )
    return out


class FaceEmbedder:
    """``chip(rgb, landmarks)`` -> (150, 150, 3) uint8 aligned chip; ``embed(chip)`` -> (128,)
    float32; ``embed_face(rgb, landmarks)`` does both. The ONNX session is created on first use
    through the model registry (one per process and thread count)."""

    model_name = "face_embedding"

    def __init__(self, threads: int = 1) -> None:
        self.threads = int(threads)
        self._sess: Any = None
        self._input = np.zeros((1, CHIP_SIZE, CHIP_SIZE, 3), np.float32)
        self._chip = np.zeros((CHIP_SIZE, CHIP_SIZE, 3), np.uint8)

    def _session(self) -> Any:
        if self._sess is None:
            from liveness.core.registry import ort_session

            self._sess = ort_session(self.model_name, self.threads)
        return self._sess

    def chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The aligned 150x150 RGB chip (a new array)."""
        return face_chip(rgb, landmarks)

    def embed(self, chip: np.ndarray) -> np.ndarray:
        """(128,) float32 embedding of one aligned chip."""
        if not isinstance(chip, np.ndarray) or chip.shape != (CHIP_SIZE, CHIP_SIZE, 3):
            raise InputError(f"expected a ({CHIP_SIZE}, {CHIP_SIZE}, 3) chip")
        self._input[0] = chip
        out = self._session().run(None, {"chip": self._input})[0]
        return np.asarray(out[0], np.float32).copy()

    def embed_face(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return self.embed(self.chip(rgb, landmarks))


def _read_rgb(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), np.uint8) if path.is_file() else None
    if data is None or data.size == 0:
        raise InputError(f"{path}: cannot read the reference photo (missing or empty file)")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"{path}: not an image OpenCV can decode")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_reference(
    photo: str | Path | np.ndarray, embedder: FaceEmbedder | None = None, threads: int = 1
) -> np.ndarray:
    """(128,) embedding of the largest face in a reference photo (path or RGB array).

    Raises :class:`InputError` when the photo cannot be read or shows no face."""
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    if isinstance(photo, np.ndarray):
        rgb, label = photo, "reference image"
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise InputError("reference image must be RGB uint8 (H, W, 3)")
    else:
        label = str(photo)
        rgb = _read_rgb(Path(photo))
    tracker = FaceTracker.from_options(TrackerOptions(threads=threads, keep_image=False))
    obs = tracker.process(rgb, 0.0, 0)
    if obs.face:
        obs2 = tracker.process(rgb, 1e-3, 1)  # second mesh pass from the first mesh's ROI
        obs = obs2 if obs2.face else obs
    if not obs.face or obs.landmarks is None:
        raise InputError(f"{label}: no face found in the reference photo")
    embedder = embedder or FaceEmbedder(threads)
    return embedder.embed_face(rgb, obs.landmarks)
