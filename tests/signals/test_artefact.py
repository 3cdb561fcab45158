"""Self-blended training data, the artefact analyser (ONNX) and the sharpness-gap cue."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liveness import ConfigError, FaceObservation  # noqa: E402
from liveness.signals.artefact import (  # noqa: E402
    ArtefactAnalyser,
    ArtefactOptions,
    SharpnessGapAnalyser,
    SharpnessGapOptions,
    hf_energy_ratio,
)
from liveness.tracking.crop import align_crop, face_oval, transform_points  # noqa: E402
from models.train.sbi_data import _BROW_TOP, SelfBlend  # noqa: E402
from tests._feed import own  # noqa: E402


def _ellipse_landmarks(size: int = 128, cx: float = 64, cy: float = 70, ax: float = 34, ay: float = 44):
    """Landmarks whose face outline is an ellipse and whose other points lie inside it."""
    rng = np.random.default_rng(0)
    lm = np.zeros((478, 2), np.float32)
    r = np.sqrt(rng.uniform(0, 0.8, 478))
    a = rng.uniform(0, 2 * np.pi, 478)
    lm[:, 0], lm[:, 1] = cx + ax * r * np.cos(a), cy + ay * r * np.sin(a)
    oval = face_oval()
    ang = np.linspace(-np.pi / 2, 1.5 * np.pi, len(oval), endpoint=False)
    lm[oval, 0], lm[oval, 1] = cx + ax * np.cos(ang), cy + ay * np.sin(ang)
    brows = list(_BROW_TOP)
    lm[brows, 0] = np.linspace(cx - 0.7 * ax, cx + 0.7 * ax, len(brows))
    lm[brows, 1] = cy - 0.55 * ay
    return lm


def _textured(size: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (size // 4, size // 4, 3), dtype=np.uint8), (size, size))
    return cv2.add(base, rng.integers(0, 40, (size, size, 3), dtype=np.uint8))


def test_self_blend_mask_is_where_the_face_is():
    crop = _textured()
    lm = _ellipse_landmarks()
    sb = SelfBlend()
    inside = np.zeros((128, 128), np.uint8)
    cv2.ellipse(inside, (64, 70), (34, 44), 0, 0, 360, 1, -1)
    far = cv2.dilate(inside, np.ones((31, 31), np.uint8)) == 0
    for seed in range(8):
        rng = np.random.default_rng(seed)
        fake, mask = sb.blend(crop, lm, rng)
        assert fake.shape == crop.shape and fake.dtype == np.uint8
        assert mask.shape == (128, 128) and 0 <= mask.min() and mask.max() <= 1
        ys, xs = np.nonzero(mask > 0.25)
        assert abs(xs.mean() - 64) < 10 and abs(ys.mean() - 70) < 10
        assert mask[far].max() < 0.05  # nothing is blended far outside the face
        diff = np.abs(fake.astype(np.int16) - crop).sum(2)
        assert diff[mask < 1e-3].max() <= 3  # pixels outside the mask are the original ones
        assert diff[inside > 0].mean() > 1.0  # and the face did change


def test_self_blend_pair_shares_global_augmentation():
    crop = _textured(seed=3)
    lm = _ellipse_landmarks()
    sb = SelfBlend()
    real, fake, mask = sb.pair(crop, lm, np.random.default_rng(5))
    far = mask < 1e-3
    # outside the blend, real and fake saw the same global change (JPEG/flip/gain)
    d = np.abs(real.astype(np.int16) - fake).sum(2)
    assert np.median(d[far]) <= 6
    assert d[mask > 0.5 * mask.max()].mean() > np.median(d[far]) + 1


def test_ellipse_fallback_without_landmarks():
    crop = _textured(seed=1)
    fake, mask = SelfBlend().blend(crop, None, np.random.default_rng(0))
    ys, xs = np.nonzero(mask > 0.5)
    assert len(xs) > 500 and abs(xs.mean() - 64) < 8


def test_options_validate():
    with pytest.raises(ConfigError):
        ArtefactOptions(rate_hz=0)
    with pytest.raises(ConfigError):
        ArtefactOptions(every_n=0)
    with pytest.raises(ConfigError):
        SharpnessGapOptions(baseline_n=1)


def test_hf_ratio_drops_when_inner_face_is_blurred():
    img = _textured(192, seed=4)
    lm = _ellipse_landmarks(192, 96, 105, 50, 65)
    r0 = hf_energy_ratio(img, lm)
    inner = np.zeros((192, 192), np.uint8)
    cv2.ellipse(inner, (96, 105), (50, 65), 0, 0, 360, 1, -1)
    blurred = np.where(inner[..., None] > 0, cv2.GaussianBlur(img, (0, 0), 1.5), img)
    assert hf_energy_ratio(blurred, lm) < r0 - 0.3


# --------------------------------------------------------------------------------------------
# on a real face (needs the converted mesh models and the trained artefact model)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut():
    try:
        from liveness.testing import astronaut_photo
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks

        img = astronaut_photo()
        det, mesh = FaceDetector(threads=1), FaceMesh(threads=1)
        d = max(det.detect(img), key=lambda d: d.score)
        res = mesh.run(img, roi_from_detection(d))
        lm = mesh.run(img, roi_from_landmarks(res.landmarks)).landmarks
    except Exception as exc:
        pytest.skip(f"face models unavailable: {exc}")
    return img, lm


def _obs(img, lm, t):
    return FaceObservation(t, int(t * 30), img.shape[1], img.shape[0], True, 1, np.array([0, 0, 100, 100], np.float32), lm, 1.0, image=img)


def _self_blended_frame(img, lm, seed):
    """The astronaut with her own face blended back in after colour change and down-up sampling
    (a self-blended image made in image space)."""
    rng = np.random.default_rng(seed)
    h, w = img.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(lm[face_oval(), :2]).astype(np.int32)), 1.0)
    mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((9, 9), np.uint8)), (0, 0), 4)[..., None]
    src = img.astype(np.float32) * rng.uniform(0.88, 0.92, 3) + rng.uniform(8, 14, 3)
    src = cv2.resize(cv2.resize(np.clip(src, 0, 255).astype(np.uint8), (w // 4, h // 4), interpolation=cv2.INTER_AREA), (w, h))
    return np.clip(img * (1 - mask) + src * mask, 0, 255).astype(np.uint8)


def test_artefact_rate_and_summary(astronaut):
    img, lm = astronaut
    a = ArtefactAnalyser(ArtefactOptions(rate_hz=5.0))
    try:
        out = [own(a, _obs(img, lm, i / 30)) for i in range(60)]
    except Exception as exc:
        pytest.skip(f"artefact model unavailable: {exc}")
    n = sum(s is not None for s in out)
    assert 9 <= n <= 11  # 2 s at 5 Hz
    sig = a.summary()
    assert sig.name == "artefact" and sig.n == n and 0 <= sig.value <= 1
    none = FaceObservation(3.0, 90, img.shape[1], img.shape[0], False, 0, image=img)
    assert own(a, none) is None
    a.reset()
    assert a.summary().n == 0


def test_short_swap_segment_shows_in_clip_score(astronaut, monkeypatch):
    """Issue 3: a swap over 4 s of a 30-s clip (13 %) must still raise the clip score (the
    summary rule; the detector's per-face scores are given)."""
    img, lm = astronaut
    state = {"t": 0.0}

    def score(self, rgb, landmarks):  # noqa: ANN001, ANN202
        return 0.9 if 10 <= state["t"] < 14 else 0.1

    monkeypatch.setattr(ArtefactAnalyser, "score_face", score)
    plain, mixed = ArtefactAnalyser(), ArtefactAnalyser()
    for i in range(300):  # 30 s at 10 fps, scored at 5 Hz
        state["t"] = t = i / 10
        own(mixed, _obs(img, lm, t))
        state["t"] = -1.0
        own(plain, _obs(img, lm, t))
    lo, hi = plain.summary().value, mixed.summary().value
    assert lo == pytest.approx(0.1) and hi > 0.5, (lo, hi)
    assert [(round(g.start), round(g.end)) for g in mixed.summary().segments] == [(10, 14)]


def test_sharpness_gap_rises_when_face_gets_blurry(astronaut):
    img, lm = astronaut
    a = SharpnessGapAnalyser(SharpnessGapOptions(rate_hz=None, baseline_n=5))
    rng = np.random.default_rng(0)
    vals = []
    for i in range(12):
        noisy = np.clip(img.astype(np.int16) + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
        frame = noisy if i < 8 else _self_blended_frame(noisy, lm, i)
        s = own(a, _obs(frame, lm, i / 10))
        vals.append(None if s is None else s.value)
    assert vals[:5] == [None] * 5  # baseline frames
    genuine, swapped = vals[5:8], vals[8:]
    assert max(genuine) < 0.5 and min(swapped) > max(genuine) + 0.2, vals
    assert a.summary().value is not None


def test_crop_landmarks_consistent(astronaut):
    img, lm = astronaut
    crop, m = align_crop(img, lm, 192)
    p = transform_points(lm, m)
    assert (p[:468] > 0).all() and (p[:468] < 192).all()
