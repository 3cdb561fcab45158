"""Model inputs cut from skimage's astronaut photo, shared by the conversion and reference scripts.

Also writes the package's built-in demo photo from the same source (NASA, public domain)::

    python models/convert/astronaut.py --write-jpeg liveness/_data/astronaut.jpg
"""

from __future__ import annotations

import numpy as np

#: model input = uint8 / divisor + offset
SCALING = {
    "face_detector": (127.5, -1.0),
    "face_mesh": (255.0, 0.0),
    "face_mesh_468": (255.0, 0.0),
    "iris": (255.0, 0.0),
    "face_detector_full": (127.5, -1.0),
    "palm_detector_lite": (255.0, 0.0),
    "palm_detector_full": (255.0, 0.0),
    "hand_landmark_lite": (255.0, 0.0),
    "hand_landmark_full": (255.0, 0.0),
}


def to_float(u8: np.ndarray, divisor: float, offset: float) -> np.ndarray:
    """(H, W, 3) uint8 -> (1, H, W, 3) float32 model input."""
    return (u8.astype(np.float32) / np.float32(divisor) + np.float32(offset))[None]


def astronaut_inputs() -> dict[str, np.ndarray]:
    """Model inputs cut from skimage's astronaut photo (a real face shipped in a PyPI package).

    Detector: the whole 512x512 photo resized to 128x128, [-1, 1]. Mesh: the 192x192 crop around
    the face (fixed square box, no rotation), [0, 1]. Iris: a 64x64 crop around one eye, [0, 1].
    Full-range face detector: the whole photo resized to 192x192, [-1, 1]. Palm detectors: the
    whole photo at 192x192, [0, 1]. Hand landmarks: the lower-left quarter (the suit's sleeve and
    glove; the photo has no bare hand) at 224x224, [0, 1] — real image content for the numbers;
    frames with real hands are in ``hand_frames.py``."""
    import cv2
    from skimage import data

    img = data.astronaut()  # RGB uint8 512x512
    det_u8 = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA)
    face = img[20:260, 110:350]  # 240x240 square around the face
    mesh_u8 = cv2.resize(face, (192, 192), interpolation=cv2.INTER_AREA)
    eye_u8 = np.ascontiguousarray(img[85:149, 170:234])  # 64x64 around the subject's right eye
    det192_u8 = cv2.resize(img, (192, 192), interpolation=cv2.INTER_AREA)
    hand_u8 = cv2.resize(img[256:512, 0:256], (224, 224), interpolation=cv2.INTER_AREA)
    extra = {
        "face_detector_full": det192_u8,
        "palm_detector_lite": det192_u8,
        "palm_detector_full": det192_u8,
        "hand_landmark_lite": hand_u8,
        "hand_landmark_full": hand_u8,
    }
    return {
        **{k: to_float(v, *SCALING[k]) for k, v in extra.items()},
        **{f"{k}_u8": v for k, v in extra.items()},
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


#: a small face: the photo shrunk by SMALL_SCALE into a SMALL_CANVAS (h, w) grey canvas at
#: SMALL_XY (the face is then ~45 px in 640 px: too small for the short-range detector, within
#: the full-range one's reach on the whole frame)
SMALL_SCALE = 0.45
SMALL_CANVAS = (480, 640)
SMALL_XY = (300, 150)


def small_face_scene() -> np.ndarray:
    import cv2
    from skimage import data

    small = cv2.resize(data.astronaut(), None, fx=SMALL_SCALE, fy=SMALL_SCALE, interpolation=cv2.INTER_AREA)
    canvas = np.full((*SMALL_CANVAS, 3), 96, np.uint8)
    x, y = SMALL_XY
    canvas[y : y + small.shape[0], x : x + small.shape[1]] = small
    return canvas


def write_jpeg(path: str, quality: int = 90) -> None:
    """``skimage.data.astronaut()`` as the JPEG that ``liveness.testing.avatar.astronaut_photo`` reads."""
    import cv2
    from skimage import data

    ok = cv2.imwrite(path, cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR),
                     [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_OPTIMIZE, 1])
    if not ok:
        raise SystemExit(f"cannot write {path}")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="write the package's demo photo")
    ap.add_argument("--write-jpeg", metavar="PATH", required=True)
    ap.add_argument("--quality", type=int, default=90)
    a = ap.parse_args()
    write_jpeg(a.write_jpeg, a.quality)
