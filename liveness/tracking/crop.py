"""Aligned face crops from the 478-point face mesh.

One similarity transform (rotation, uniform scale, translation) maps five stable mesh points —
the two eye centres, the nose tip and the two mouth corners — onto a fixed template, and one
``cv2.warpAffine`` cuts the crop. The template leaves room around the face: the whole face
outline, some hair above the brows and some neck below the chin are inside the crop, so the
blending boundary of a face swap is visible to the analysers that use it.

Template (fractions of the crop side): eye centres 0.25 apart at height 0.40, mouth corners
at height ~0.69. A frontal face of any size, position or in-plane rotation gives the same crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from liveness.core.errors import InputError
from liveness.core.image import check_rgb

__all__ = [
    "ALIGN_POINTS",
    "CROP_TEMPLATE",
    "align_crop",
    "align_matrix",
    "face_oval",
    "transform_points",
]

# MediaPipe face-mesh indices. Eye centres are the mean of each eye's two corners.
_RIGHT_EYE = (33, 133)  # subject's right eye: outer, inner corner (image left in a frontal view)
_LEFT_EYE = (362, 263)  # subject's left eye: inner, outer corner
_NOSE_TIP = 1
_MOUTH_RIGHT = 61
_MOUTH_LEFT = 291
ALIGN_POINTS = (_RIGHT_EYE, _LEFT_EYE, (_NOSE_TIP,), (_MOUTH_RIGHT,), (_MOUTH_LEFT,))

# Five-point template in units of the crop side (x right, y down). Proportions follow the usual
# 112-px face-recognition template (eyes ~35 px apart), scaled so the eye distance is 0.25 of the
# crop and shifted so the eyes sit at 0.40 of the height.
_ARC = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float64,
)
_EYE_DIST = 0.25
_EYE_Y = 0.40
CROP_TEMPLATE = np.empty_like(_ARC)
CROP_TEMPLATE[:, 0] = (_ARC[:, 0] - 56.0) * (_EYE_DIST / 35.2372) + 0.5
CROP_TEMPLATE[:, 1] = (_ARC[:, 1] - 51.6) * (_EYE_DIST / 35.2372) + _EYE_Y

# Face outline (MediaPipe FACEMESH_FACE_OVAL), in order around the face.
_FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip


def face_oval() -> np.ndarray:
    """Indices of the mesh's face-outline points, in order around the face."""
    return np.asarray(_FACE_OVAL, np.int64)


_KEY_IDX = np.array([i for ix in ALIGN_POINTS for i in ix], np.intp)
_KEY_AVG = np.zeros((len(ALIGN_POINTS), len(_KEY_IDX)))
_col = 0
for _r, _ix in enumerate(ALIGN_POINTS):
    _KEY_AVG[_r, _col : _col + len(_ix)] = 1.0 / len(_ix)
    _col += len(_ix)


def _key_points(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks)
    if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
        raise InputError(f"expected face-mesh landmarks of shape (478, 2|3), got {lm.shape}")
    pts = _KEY_AVG @ lm[_KEY_IDX, :2].astype(np.float64)
    if not np.isfinite(pts).all():
        raise InputError("landmarks contain non-finite values")
    return pts


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (rotation, uniform scale, translation; no reflection)
    mapping src -> dst, 2x3. In 2-D the Umeyama solution has the closed form
    a = sum(s.d) / sum|s|^2, b = sum(s x d) / sum|s|^2 on centred points."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = float((s * s).sum())
    if var_s <= 1e-12:
        raise InputError("degenerate landmarks (all points coincide)")
    a = float((s * d).sum()) / var_s
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var_s
    m = np.array([[a, -b, 0.0], [b, a, 0.0]])
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def align_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 similarity matrix taking image pixels to crop pixels for a ``size``-px crop."""
    if size < 8:
        raise InputError(f"crop size must be >= 8 px, got {size}")
    return _similarity(_key_points(landmarks), CROP_TEMPLATE * float(size))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine matrix to (N, >=2) points; returns (N, 2) float32."""
    p = np.asarray(points, np.float64)[:, :2]
    return (p @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def align_crop(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    size: int = 128,
    *,
    out: np.ndarray | None = None,
    border: int = cv2.BORDER_REPLICATE,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut the aligned ``size`` x ``size`` face crop. Returns ``(crop, matrix)`` where ``matrix``
    (2x3, float64) maps image pixels to crop pixels. ``out`` may be a preallocated
    (size, size, 3) uint8 array that receives the crop."""
    check_rgb(rgb)
    m = align_matrix(landmarks, size)
    if out is not None and (out.shape != (size, size, 3) or out.dtype != np.uint8):
        raise InputError(f"out must be a ({size}, {size}, 3) uint8 array")
    if border != cv2.BORDER_CONSTANT and _inside(m, size, rgb.shape[1], rgb.shape[0]):
        border = cv2.BORDER_CONSTANT  # same pixels, and OpenCV's fast path (~10x faster)
    crop = cv2.warpAffine(
        rgb, m, (size, size), dst=out, flags=cv2.INTER_LINEAR, borderMode=border
    )
    return crop, m


def _inside(m: np.ndarray, size: int, w: int, h: int) -> bool:
    """Whether every source pixel the crop samples (bilinear footprint) lies inside the image."""
    a = m[:, :2]
    det = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    if abs(det) < 1e-12:
        return False
    inv = np.array([[a[1, 1], -a[0, 1]], [-a[1, 0], a[0, 0]]]) / det
    c = np.array([[0.0, 0.0], [size - 1.0, 0.0], [0.0, size - 1.0], [size - 1.0, size - 1.0]])
    src = (c - m[:, 2]) @ inv.T
    return bool(src.min() >= 1.0 and src[:, 0].max() <= w - 2.0 and src[:, 1].max() <= h - 2.0)
