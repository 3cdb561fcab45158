"""Tracker, landmarks and pose on a real photo (the packaged astronaut) and on dev clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness.tracking.tracker import FaceTracker, TrackerOptions, face_quality


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    return FaceTracker(TrackerOptions())


def rotate(img: np.ndarray, deg: float, center: tuple[float, float]) -> np.ndarray:
    m = cv2.getRotationMatrix2D(center, deg, 1.0)  # positive = counter-clockwise
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), borderMode=cv2.BORDER_REFLECT)


def test_astronaut_face_landmarks_and_pose(tracker, astronaut):
    tracker.reset()
    obs = tracker.process(astronaut, 0.0, 0)
    assert obs.face and obs.faces == 1
    x, y, w, h = obs.box
    # the astronaut's face lies roughly in x 160-260, y 50-190 of the 512x512 photo
    assert 130 < x + w / 2 < 290 and 40 < y + h / 2 < 200 and 60 < w < 200
    lm = obs.landmarks
    assert lm.shape == (478, 3)
    # eyes above the mouth, iris centres inside their eye corners
    assert lm[159, 1] < lm[13, 1] and lm[386, 1] < lm[13, 1]
    assert min(lm[33, 0], lm[133, 0]) < lm[468, 0] < max(lm[33, 0], lm[133, 0])
    assert abs(obs.pose.roll) < 25 and abs(obs.pose.pitch) < 30
    q = obs.quality
    assert q.inside == pytest.approx(1.0) and q.size_px > 60 and q.sharpness > 10


@pytest.mark.parametrize("deg", [-30, -12, 12, 30])
def test_roll_follows_in_plane_rotation(tracker, astronaut, deg):
    tracker.reset()
    base = tracker.process(astronaut, 0.0, 0)
    cx, cy = base.box[0] + base.box[2] / 2, base.box[1] + base.box[3] / 2
    tracker.reset()
    rot = tracker.process(rotate(astronaut, deg, (float(cx), float(cy))), 0.0, 0)
    assert rot.face
    assert rot.pose.roll - base.pose.roll == pytest.approx(deg, abs=3.0)


def test_mirrored_photo_mirrors_yaw_and_roll(tracker, astronaut):
    tracker.reset()
    a = tracker.process(astronaut, 0.0, 0)
    tracker.reset()
    b = tracker.process(np.ascontiguousarray(astronaut[:, ::-1]), 0.0, 0)
    assert a.pose.yaw == pytest.approx(-b.pose.yaw, abs=4.0)
    assert a.pose.roll == pytest.approx(-b.pose.roll, abs=3.0)
    assert a.pose.pitch == pytest.approx(b.pose.pitch, abs=4.0)


def test_tracking_follows_a_moving_face_without_redetecting_every_frame(astronaut):
    tr = FaceTracker(TrackerOptions(detect_interval_s=10.0))
    redetects = 0
    prev = None
    for i in range(12):
        m = np.float32([[1, 0, 3 * i], [0, 1, 2 * i]])
        img = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
        obs = tr.process(img, i / 30, i)
        assert obs.face
        redetects += obs.redetected
        if prev is not None:
            assert obs.box[0] - prev.box[0] == pytest.approx(3, abs=2.5)
        prev = obs
    assert redetects == 1


def test_no_face_is_a_result(tracker):
    tracker.reset()
    rng = np.random.default_rng(1)
    for i, img in enumerate([np.zeros((240, 320, 3), np.uint8), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8),
                             np.full((7, 5, 3), 128, np.uint8)]):
        obs = tracker.process(img, float(i), i)
        assert not obs.face and obs.box is None and obs.pose is None
        assert obs.to_dict()["face"] is False


def test_two_faces_are_counted_candidate_is_tracked(astronaut):
    tr = FaceTracker(TrackerOptions(detect_interval_s=0.01))
    face = astronaut[0:256, 100:356]
    canvas = np.zeros((300, 700, 3), np.uint8)
    canvas[20:276, 10:266] = face
    first = tr.process(canvas, 0.0, 0)
    assert first.face and first.faces == 1
    canvas2 = canvas.copy()
    canvas2[20:276, 420:676] = face  # a second person appears
    obs = tr.process(canvas2, 0.1, 1)
    assert obs.face and obs.faces == 2 and len(obs.other_boxes) == 1
    assert obs.box[0] < 300  # the candidate stays the tracked face on the left


def test_face_quality_partial_and_dark():
    img = np.zeros((100, 100, 3), np.uint8)
    q = face_quality(img, np.array([50, 50, 100, 100], np.float32))
    assert q.inside == pytest.approx(0.25) and q.brightness == 0.0


def _clip_face_fraction(path, until: float = float("inf")) -> tuple[float, int]:
    from liveness.sources.video import open_video

    tr = FaceTracker(TrackerOptions())
    n = found = 0
    for fr in open_video(path):
        if fr.t >= until:
            break
        obs = tr.process(fr.image, fr.t, fr.index)
        n += 1
        found += obs.face
    return found / n, n


# Clips where the face is really not visible for part of the clip (checked by eye): there the
# tracker must report no face, so the 98 % criterion applies to the visible part only.
COVERED = {
    # Iron Man's face plate closes over the face from ~2.3 s to the end (frames 69-80 of 81)
    "video/real/dfl_Silwan_Stillwone_3.mp4": 2.3,
}


@pytest.mark.shared
def test_face_found_on_98_percent_of_real_clip_frames(shared, manifest):
    """Every real dev clip (subsampled to keep CI short; the full set runs in benchmarks/)."""
    reals = [r for r in manifest if r["label"] == "real"]
    import os

    step = 1 if os.environ.get("LIVENESS_FULL") else 4
    bad = []
    for r in reals[::step]:
        frac, n = _clip_face_fraction(shared / r["path"], COVERED.get(r["path"], float("inf")))
        if frac < 0.98:
            bad.append((r["path"], round(frac, 3), n))
    assert not bad, bad


@pytest.mark.shared
def test_covered_face_is_reported_as_no_face(shared):
    """Where the helmet's face plate covers the face, no face is reported (not a false track)."""
    from liveness.sources.video import open_video

    path, start = next(iter(COVERED.items()))
    tr = FaceTracker(TrackerOptions())
    obs = [tr.process(fr.image, fr.t, fr.index) for fr in open_video(shared / path)]
    covered = [o.face for o in obs if o.t >= start + 0.1]
    assert covered and sum(covered) / len(covered) < 0.2
