"""Model inputs cut from skimage's astronaut photo, shared by the conversion and reference scripts."""

from __future__ import annotations

import numpy as np

#: model input = uint8 / divisor + offset
SCALING = {
    "face_detector": (127.5, -1.0),
    "face_mesh": (255.0, 0.0),
    "face_mesh_468": (255.0, 0.0),
    "iris": (255.0, 0.0),
}


def to_float(u8: np.ndarray, divisor: float, offset: float) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, H, W, 3) float32 model input."""
    return (u8.astype(np.float32) / np.float32(divisor) + np.float32(offset))[None]


def astronaut_inputs() -> dict[str, np.ndarray]:
    """Model inputs cut from skimage's astronaut photo (a real face shipped in a PyPI package).

    Detector: the whole 512x512 photo resized to 128x128, [-1, 1]. Mesh: the 192x192 crop around
    the face (fixed square box, no rotation), [0, 1]. Iris: a 64x64 crop around one eye, [0, 1]."""
    import cv2
    from skimage import data

    img = data.astronaut()  # RGB uint8 512x512
    det_u8 = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    face = img[20:260, 110:350]  # 240x240 square around the face
    mesh_u8 = cv2.resize(face, (192, 192), interpolation=cv2.INTER_AREA)
    eye_u8 = np.ascontiguousarray(img[85:149, 170:234])  # 64x64 around the subject's right eye
    return {
        "face_detector": to_float(det_u8, *SCALING["face_detector"]),
        "face_mesh": to_float(mesh_u8, *SCALING["face_mesh"]),
        "face_mesh_468": to_float(mesh_u8, *SCALING["face_mesh_468"]),
        "iris": to_float(eye_u8, *SCALING["iris"]),
        "face_detector_u8": det_u8,
        "face_mesh_u8": mesh_u8,
        "face_mesh_468_u8": mesh_u8,
        "iris_u8": eye_u8,
        "mesh_crop_u8": mesh_u8,
    }
