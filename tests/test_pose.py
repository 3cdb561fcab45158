"""solvePnP head pose on landmarks projected from the canonical face with known angles."""

from __future__ import annotations

import numpy as np
import pytest

from liveness._pose import PoseEstimator, canonical_face, euler_from_rvec, project, rvec_from_euler


def landmarks_for(yaw: float, pitch: float, roll: float, w: int = 640, h: int = 480, dist: float = 60.0):
    rv = rvec_from_euler(yaw, pitch, roll)
    pts = project(rv, np.array([0.0, 0.0, dist]), w, h)
    return np.concatenate([pts, np.zeros((len(pts), 1))], axis=1).astype(np.float32)


@pytest.mark.parametrize("angles", [(0, 0, 0), (30, 0, 0), (-45, 10, 5), (10, -20, -15), (60, 5, 0), (0, 25, 30)])
def test_pose_recovers_known_angles(angles):
    est = PoseEstimator().estimate(landmarks_for(*angles), 640, 480)
    assert (est.yaw, est.pitch, est.roll) == pytest.approx(angles, abs=0.5)
    assert est.tvec[2] == pytest.approx(60.0, rel=0.02)


def test_documented_signs():
    nose = 1
    front = landmarks_for(0, 0, 0)
    assert landmarks_for(20, 0, 0)[nose, 0] > front[nose, 0] + 5  # yaw > 0: nose to image right
    assert landmarks_for(0, 20, 0)[nose, 1] < front[nose, 1] - 5  # pitch > 0: nose up
    # roll > 0: counter-clockwise, so the subject's right eye (image left) goes down
    r = landmarks_for(0, 0, 20)
    assert r[33, 1] > front[33, 1] + 3 and r[263, 1] < front[263, 1] - 3


def test_euler_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        a = rng.uniform([-80, -60, -60], [80, 60, 60])
        assert euler_from_rvec(rvec_from_euler(*a)) == pytest.approx(tuple(a), abs=1e-6)


def test_canonical_face_shape():
    f = canonical_face()
    assert f.vertices.shape == (468, 3) and f.triangles.shape[1] == 3 and f.uv.shape == (468, 2)
    assert f.triangles.min() >= 0 and f.triangles.max() < 468
