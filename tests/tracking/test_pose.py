"""solvePnP head pose on landmarks projected from the canonical face with known angles."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.tracking.pose import (
    PoseEstimator,
    canonical_face,
    euler_from_rvec,
    project,
    rvec_from_euler,
)


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


def test_refine_pose_reaches_the_solvepnp_optimum_on_noisy_points():
    import cv2

    from liveness.tracking.pose import camera_matrix, refine_pose

    rng = np.random.default_rng(1)
    obj = canonical_face().object_points
    k = camera_matrix(1280, 720)
    for _ in range(10):
        yaw, pitch, roll = rng.uniform([-60, -30, -30], [60, 30, 30])
        lm = landmarks_for(yaw, pitch, roll, 1280, 720)[:, :2].astype(np.float64)
        lm += rng.normal(0, 1.5, lm.shape)  # pixel noise: the optimum is no longer the true pose
        _, rv0, tv0 = cv2.solvePnP(obj, lm, k, np.zeros(4), flags=cv2.SOLVEPNP_SQPNP)
        rv, tv = cv2.solvePnPRefineLM(obj, lm, k, np.zeros(4), rv0, tv0,
                                      (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 500, 1e-14))
        # start 5 degrees and 2 cm away, as from a previous frame
        start_r = rvec_from_euler(yaw + 5, pitch - 5, roll + 3)
        sol = refine_pose(obj, lm, k, start_r, tv0.reshape(3) + np.array([2.0, -1.0, 2.0]))
        assert sol is not None
        assert euler_from_rvec(sol[0]) == pytest.approx(euler_from_rvec(rv), abs=0.01)
        assert sol[1].reshape(3) == pytest.approx(tv.reshape(3), abs=0.01)


def test_refine_pose_refuses_a_pose_behind_the_camera():
    from liveness.tracking.pose import camera_matrix, refine_pose

    obj = canonical_face().object_points
    lm = landmarks_for(0, 0, 0)[:, :2].astype(np.float64)
    assert refine_pose(obj, lm, camera_matrix(640, 480), np.zeros(3), np.array([0.0, 0.0, -60.0])) is None


def test_estimator_follows_a_moving_head_from_its_previous_solution():
    est = PoseEstimator()
    for yaw in range(-40, 41, 4):
        p = est.estimate(landmarks_for(yaw, 0.3 * yaw, -0.2 * yaw), 640, 480)
        assert (p.yaw, p.pitch, p.roll) == pytest.approx((yaw, 0.3 * yaw, -0.2 * yaw), abs=0.05)


def test_degenerate_landmarks_give_no_pose():
    """Landmarks collapsed onto (almost) one point — a mesh run on a speck — give no pose, not
    OpenCV's assertion error."""
    est = PoseEstimator()
    lm = np.full((478, 3), 500.0, np.float32)
    lm[:, :2] += np.random.default_rng(0).normal(0, 1e-4, (478, 2)).astype(np.float32)
    assert est.estimate(lm, 1920, 1080) is None
