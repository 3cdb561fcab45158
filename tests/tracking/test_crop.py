"""Aligned face crop: template geometry, rotation/scale invariance, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness import InputError
from liveness.tracking.crop import (
    ALIGN_POINTS,
    CROP_TEMPLATE,
    align_crop,
    align_matrix,
    transform_points,
)


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured 400x400 image and 478 'landmarks' whose five key points sit like a face's."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(0, 255, (50, 50, 3), dtype=np.uint8), (400, 400), interpolation=cv2.INTER_CUBIC)
    cv2.circle(img, (200, 200), 60, (255, 0, 0), -1)
    lm = np.zeros((478, 3), np.float32)
    lm[:, :2] = rng.uniform(120, 280, (478, 2))
    key = CROP_TEMPLATE * 200 + 100  # a face of ~50 px eye distance around the image centre
    for (ix, pt) in zip(ALIGN_POINTS, key, strict=True):
        lm[list(ix), :2] = pt  # every index of a key point at the key position
    return img, lm


def _rotate(img: np.ndarray, lm: np.ndarray, deg: float, scale: float, shift: tuple[float, float]):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, scale)
    m[:, 2] += shift
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    lm2 = lm.copy()
    lm2[:, :2] = transform_points(lm, m)
    return out, lm2


def test_key_points_land_on_template():
    img, lm = _scene()
    crop, m = align_crop(img, lm, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    for ix, tpl in zip(ALIGN_POINTS, CROP_TEMPLATE, strict=True):
        p = transform_points(lm[list(ix)], m).mean(0)
        np.testing.assert_allclose(p, tpl * 128, atol=1e-3)


@pytest.mark.parametrize("deg,scale", [(30.0, 1.0), (-45.0, 0.7), (90.0, 1.3)])
def test_rotated_face_gives_same_crop(deg, scale):
    img, lm = _scene(1)
    ref, _ = align_crop(img, lm, 128)
    img2, lm2 = _rotate(img, lm, deg, scale, (12.0, -7.0))
    got, _ = align_crop(img2, lm2, 128)
    # interior of the crop (borders may see reflected padding); resampling noise only
    diff = np.abs(ref[16:-16, 16:-16].astype(np.float32) - got[16:-16, 16:-16]).mean()
    assert diff < 6.0, diff
    unrelated = np.abs(ref[16:-16, 16:-16].astype(np.float32) - np.roll(got, 20, axis=1)[16:-16, 16:-16]).mean()
    assert unrelated > 4 * diff


def test_preallocated_output_and_matrix():
    img, lm = _scene(2)
    out = np.zeros((96, 96, 3), np.uint8)
    crop, m = align_crop(img, lm, 96, out=out)
    assert crop is out or np.shares_memory(crop, out)
    np.testing.assert_allclose(m, align_matrix(lm, 96))


def test_bad_input():
    img, lm = _scene()
    with pytest.raises(InputError):
        align_crop(img.astype(np.float32), lm)
    with pytest.raises(InputError):
        align_crop(img, lm[:10])
    bad = lm.copy()
    bad[33, 0] = np.nan
    with pytest.raises(InputError):
        align_crop(img, bad)
    with pytest.raises(InputError):
        align_crop(img, np.zeros((478, 3), np.float32))
    with pytest.raises(InputError):
        align_crop(img, lm, 4)


def test_astronaut_rotation_with_mesh():
    """On a real face: the mesh of the photo rotated by 25 degrees gives the same aligned crop."""
    try:
        from liveness.testing import astronaut_photo
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks

        det, mesh = FaceDetector(threads=1), FaceMesh(threads=1)

        def landmarks(rgb):
            d = max(det.detect(rgb), key=lambda d: d.score)
            res = mesh.run(rgb, roi_from_detection(d))
            return mesh.run(rgb, roi_from_landmarks(res.landmarks)).landmarks

        img = astronaut_photo()
        lm = landmarks(img)
    except Exception as exc:  # models not converted in this checkout
        pytest.skip(f"face models unavailable: {exc}")
    ref, _ = align_crop(img, lm, 128)
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 25, 1.0)
    rot = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    got, _ = align_crop(rot, landmarks(rot), 128)
    diff = np.abs(ref[16:-16, 16:-16].astype(np.float32) - got[16:-16, 16:-16]).mean()
    assert diff < 12.0, diff
