"""Head-pose consistency on synthetic landmark sequences (canonical face, known poses)."""

from __future__ import annotations

import numpy as np
import pytest

from liveness import ConfigError
from liveness.signals.pose_consistency import (
    PoseConsistencyAnalyser,
    PoseConsistencyOptions,
    PoseDisagreementEstimator,
)
from liveness.tracking.regions import CENTRAL, CONTOUR
from tests._feed import own
from tests._synthetic_face import canonical_vertices, observation, project, rotation

W, H, FPS = 640, 480, 25.0
T0 = np.array([0.0, 0.0, 45.0])


def sequence(n: int, yaw_fn, *, noise: float = 0.3, swap: slice | None = None,
             swap_yaw: float = 6.0, seed: int = 0):
    """Observations of a head following ``yaw_fn(t)``; inside ``swap`` the central face
    (eyes, brows, nose, mouth) is rendered with ``swap_yaw`` degrees more yaw than the head
    while the contour keeps the head's pose."""
    v = canonical_vertices()
    rng = np.random.default_rng(seed)
    obs = []
    inner_only = np.setdiff1d(np.arange(468), CONTOUR)
    for i in range(n):
        t = i / FPS
        yaw = yaw_fn(t)
        r = rotation(yaw, 3 * np.sin(t), 2 * np.cos(0.7 * t))
        lm = project(v, r, T0, W, H)
        if swap is not None and swap.start <= i < swap.stop:
            lm_c = project(v, rotation(yaw + swap_yaw, 3 * np.sin(t), 2 * np.cos(0.7 * t)), T0, W, H)
            lm[inner_only] = lm_c[inner_only]
        lm[:, :2] += rng.normal(0, noise, (478, 2)).astype(np.float32)
        obs.append(observation(lm, t, i, W, H))
    return obs


def run(a: PoseConsistencyAnalyser, obs):
    return [own(a, o) for o in obs]


def test_estimator_agrees_on_a_rigid_face_at_every_angle():
    est = PoseDisagreementEstimator(canonical_vertices())
    v = canonical_vertices()
    for yaw in (-40, -20, 0, 20, 40):
        est.reset()
        d = est.estimate(project(v, rotation(yaw, 5, -3), T0, W, H), W, H)
        assert d is not None
        assert d.rot_deg < 0.2 and d.trans_deg < 0.1
        assert d.yaw == pytest.approx(-yaw, abs=1.0) or d.yaw == pytest.approx(yaw, abs=1.0)


def test_estimator_sees_central_face_rotated_against_contour():
    v = canonical_vertices()
    est = PoseDisagreementEstimator(v)
    lm = project(v, rotation(0), T0, W, H)
    lm_c = project(v, rotation(8), T0, W, H)
    lm[CENTRAL] = lm_c[CENTRAL]
    d = est.estimate(lm, W, H)
    assert d is not None
    assert 1.0 < d.rot_deg < 8.0  # the whole-face fit shares the central points


def test_steady_genuine_face_scores_low_at_any_head_angle():
    values = []
    for yaw in (0.0, 25.0, -35.0):
        a = PoseConsistencyAnalyser(vertices=canonical_vertices())
        run(a, sequence(200, lambda t, y=yaw: y + 4 * np.sin(t)))
        s = a.summary()
        assert s.value is not None and s.n > 100
        values.append(s.value)
        assert s.value < 0.3, (yaw, s.value)
        assert s.segments == ()
    assert max(values) - min(values) < 0.25


def test_turning_genuine_face_scores_low():
    a = PoseConsistencyAnalyser(vertices=canonical_vertices())
    run(a, sequence(300, lambda t: 35 * np.sin(t / 2)))
    s = a.summary()
    assert s.value is not None and s.value < 0.3


def test_swap_segment_is_flagged_with_its_time_range():
    a = PoseConsistencyAnalyser(vertices=canonical_vertices())
    scores = run(a, sequence(300, lambda t: 10 * np.sin(t / 2), swap=slice(150, 200)))
    s = a.summary()
    assert s.value is not None and s.value > 0.7
    assert len(s.segments) >= 1
    seg = max(s.segments, key=lambda g: g.end - g.start)
    assert 5.5 < seg.start < 6.5 and 7.3 < seg.end < 8.5
    inside = [x.value for x in scores[150:200] if x is not None]
    before = [x.value for x in scores[60:150] if x is not None]
    assert np.median(inside) > 0.8 > 0.2 > np.median(before)


def test_rate_hz_thins_the_measurements_and_still_flags_a_swap():
    """Live sessions measure at 7.5 Hz (``PipelineOptions(live=True)``): every frame's
    measurement stands alone, so thinning keeps the swap segment and its time range."""
    a = PoseConsistencyAnalyser(PoseConsistencyOptions(rate_hz=FPS / 2), vertices=canonical_vertices())
    obs = sequence(300, lambda t: 10 * np.sin(t / 2), swap=slice(150, 200))
    scores = run(a, obs)
    assert all(x is None for x in scores[1::2]), "every other frame at half the frame rate"
    assert len(a._raw) == 150
    s = a.summary()
    assert s.value is not None and s.value > 0.7
    seg = max(s.segments, key=lambda g: g.end - g.start)
    assert 5.5 < seg.start < 6.5 and 7.3 < seg.end < 8.5
    a.reset()
    assert own(a, obs[0]) is None and len(a._raw) == 1, "reset forgets the last measurement time"


def test_no_face_and_small_face_give_no_score_and_reset_forgets():
    from liveness import FaceObservation

    a = PoseConsistencyAnalyser(vertices=canonical_vertices())
    assert own(a, FaceObservation(0.0, 0, W, H, False, 0)) is None
    tiny = np.array([0.0, 0.0, 0.0])
    v = canonical_vertices()
    lm = project(v, rotation(0), T0 + tiny + np.array([0, 0, 400.0]), W, H)  # far away: small face
    assert own(a, observation(lm, 0.1, 1, W, H)) is None
    run(a, sequence(50, lambda t: 0.0))
    a.reset()
    s = a.summary()
    assert s.value is None and s.n == 0


def test_bad_options():
    with pytest.raises(ConfigError):
        PoseConsistencyOptions(min_baseline=1)
    with pytest.raises(ConfigError):
        PoseConsistencyOptions(rate_hz=0.0)
    with pytest.raises(ConfigError):
        PoseDisagreementEstimator(np.zeros((10, 3)))
