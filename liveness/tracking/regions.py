"""Named point sets of the 478-point face mesh (MediaPipe topology) used by the geometric
analysers: the central face (eyes, brows, nose, mouth), the outer contour, the rigid upper
inner face, and a ring around the head built outside the contour."""

from __future__ import annotations

import numpy as np

__all__ = [
    "BROWS",
    "CENTRAL",
    "CONTOUR",
    "EYES",
    "INNER_RIGID",
    "LIPS",
    "NOSE",
    "head_ring",
]

#: Outer face contour (the "face oval"), clockwise from the forehead centre.
CONTOUR = np.array([
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
], np.int64)

EYES = np.array([
    33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173,
    263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398,
], np.int64)

BROWS = np.array([
    46, 53, 52, 65, 55, 70, 63, 105, 66, 107,
    276, 283, 282, 295, 285, 300, 293, 334, 296, 336,
], np.int64)

NOSE = np.array([
    1, 2, 4, 5, 6, 19, 94, 168, 195, 197, 98, 327, 129, 358, 48, 278, 64, 294, 45, 275,
    220, 440, 115, 344,
], np.int64)

LIPS = np.array([
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 185, 40, 39, 37, 0, 267, 269, 270, 409,
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 191, 80, 81, 82, 13, 312, 311, 310, 415,
], np.int64)

#: Central face as in Yang, Li & Lyu (2019): eyes, brows, nose and mouth, no contour.
CENTRAL = np.unique(np.concatenate([EYES, BROWS, NOSE, LIPS]))

#: Points of the inner face that move rigidly with the skull (no mouth, no brows):
#: eye corners, nose bridge and tip, nostrils, upper cheeks.
INNER_RIGID = np.array([
    33, 133, 263, 362,  # eye corners
    6, 168, 197, 195, 5, 4, 1, 19,  # nose bridge and tip
    98, 327, 64, 294, 48, 278,  # nostrils
    117, 346, 118, 347, 50, 280, 36, 266, 205, 425,  # cheeks
], np.int64)


def head_ring(landmarks: np.ndarray, scale: float = 1.2) -> np.ndarray:
    """Points outside the face contour, pushed out from the face centre by ``scale``: forehead
    and hair line above, ears at the sides, jaw line and neck below. (36, 2) float32."""
    xy = np.asarray(landmarks, np.float32)[:, :2]
    c = xy[CONTOUR]
    centre = xy[INNER_RIGID].mean(axis=0)
    return (centre + (c - centre) * scale).astype(np.float32)
