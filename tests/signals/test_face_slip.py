"""FaceSlipAnalyser on synthetic clips built in code: a textured head moving over a textured
background, with an inner face that moves with it (genuine), jitters against it (slip) or is
replaced for one frame (flash)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness import ConfigError, FaceObservation, ModelError
from liveness.signals.face_slip import (
    FaceSlipAnalyser,
    FaceSlipOptions,
    FaceSmoothnessAnalyser,
    FaceSmoothnessOptions,
    SlipMeter,
)
from liveness.tracking.regions import CONTOUR
from tests._feed import own
from tests._synthetic_face import canonical_vertices, observation, project, rotation

W, H, FPS = 320, 240, 25.0
T0 = np.array([0.0, 0.0, 40.0])


def texture(seed: int, size: tuple[int, int] = (H, W)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = rng.normal(0, 1, size).astype(np.float32)
    t = cv2.GaussianBlur(n, (0, 0), 1.5)
    t = (t - t.mean()) / t.std()
    return np.clip(128 + 40 * t, 0, 255).astype(np.uint8)


def shift(img: np.ndarray, d: np.ndarray) -> np.ndarray:
    m = np.array([[1, 0, d[0]], [0, 1, d[1]]], np.float64)
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)


class Clip:
    """Frames and observations of a synthetic talking head."""

    def __init__(self, n: int = 150, *, jitter: slice | None = None, jitter_px: float = 1.5,
                 flash_at: int | None = None, blink_at: int | None = None,
                 lm_noise: float = 0.0, seed: int = 0) -> None:
        v = canonical_vertices()
        self.base = project(v, rotation(0), T0, W, H)
        rng = np.random.default_rng(seed)
        self.bg = texture(seed + 1)
        self.head = texture(seed + 2)
        self.inner = texture(seed + 3)
        self.other = texture(seed + 4)
        self.n, self.jitter, self.jitter_px, self.flash_at = n, jitter, jitter_px, flash_at
        self.blink_at = blink_at
        self.lm_noise = rng.normal(0, lm_noise, (n, 478, 2)).astype(np.float32)
        t = np.arange(n) / FPS
        self.d = np.c_[30 * np.sin(1.5 * t), 12 * np.sin(t + 1)]  # smooth head motion (px)
        self.j = rng.normal(0, jitter_px, (n, 2))
        c = self.base[:468, :2].mean(axis=0)
        contour = self.base[CONTOUR, :2]
        self.head_poly = (c + (contour - c) * 1.6).astype(np.int32)
        self.inner_poly = (c + (contour - c) * 0.75).astype(np.int32)

    def frame(self, i: int) -> tuple[np.ndarray, FaceObservation]:
        d = self.d[i]
        j = self.j[i] if self.jitter is not None and self.jitter.start <= i < self.jitter.stop else 0 * d
        mh = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mh, [self.head_poly + np.round(d).astype(np.int32)], 1)
        mi = np.zeros((H, W), np.uint8)
        cv2.fillPoly(mi, [self.inner_poly + np.round(d).astype(np.int32)], 1)
        g = self.bg.copy()
        head = shift(self.head, d)
        g[mh > 0] = head[mh > 0]
        src = self.other if i == self.flash_at else self.inner
        inner = shift(src, d + j)
        g[mi > 0] = inner[mi > 0]
        if i == self.blink_at:  # only the eye band changes for one frame (like a blink)
            eye_y = int(self.base[[33, 263], 1].mean() + d[1])
            band = np.zeros_like(mi)
            band[eye_y - 20 : eye_y + 6] = 1
            other = shift(self.other, d)
            sel = (mi > 0) & (band > 0)
            g[sel] = other[sel]
        img = np.repeat(g[:, :, None], 3, axis=2)
        lm = self.base.copy()
        lm[:, :2] += d.astype(np.float32) + self.lm_noise[i]
        return img, observation(lm, i / FPS, i, W, H, image=img)

    def run(self, a: FaceSlipAnalyser) -> list:
        out = []
        for i in range(self.n):
            _, o = self.frame(i)
            out.append(own(a, o))
        return out


def test_meter_sees_no_slip_when_inner_face_moves_with_the_head():
    m = SlipMeter()
    clip = Clip(40)
    frames = [m.measure(clip.frame(i)[1]) for i in range(40)]
    frames = [f for f in frames if f is not None and np.isfinite(f.flow_slip)]
    assert len(frames) >= 35
    slip = np.median([f.flow_slip for f in frames])
    head = np.median([f.head_motion for f in frames])
    assert head > 0.005  # the head does move (face widths per frame)
    assert slip < 0.2 * head


def test_meter_measures_jitter_of_the_inner_face():
    m = SlipMeter()
    clip = Clip(40, jitter=slice(0, 40), jitter_px=1.5)
    frames = [m.measure(clip.frame(i)[1]) for i in range(40)]
    slip = np.median([f.flow_slip for f in frames if f is not None and np.isfinite(f.flow_slip)])
    # 1.5 px jitter per axis on a ~120 px wide face: about 2*1.5*sqrt(2)/120 face widths
    assert 0.01 < slip < 0.06


def test_steady_genuine_face_scores_low():
    a = FaceSlipAnalyser()
    Clip(150).run(a)
    s = a.summary()
    assert s.value is not None and s.n > 100
    assert s.value < 0.3
    assert s.segments == ()


def test_jitter_segment_is_flagged_with_its_time_range():
    a = FaceSlipAnalyser()
    scores = Clip(200, jitter=slice(120, 170)).run(a)
    s = a.summary()
    assert s.value is not None and s.value > 0.7
    seg = max(s.segments, key=lambda g: g.end - g.start)
    assert 4.6 < seg.start < 5.2 and 6.4 < seg.end < 7.0
    inside = [x.value for x in scores[125:165] if x is not None]
    before = [x.value for x in scores[40:115] if x is not None]
    assert np.median(inside) > 0.8 and np.median(before) < 0.2


def test_single_frame_flash_is_found():
    a = FaceSlipAnalyser()
    Clip(100, flash_at=60).run(a)
    fl = a.flashes()
    assert len(fl) == 1
    assert fl[0].start == pytest.approx(60 / FPS, abs=1e-6)
    assert dict(a.summary().details)["flashes"] == 1.0
    b = FaceSlipAnalyser()
    Clip(100).run(b)
    assert b.flashes() == ()
    c = FaceSlipAnalyser()
    Clip(100, blink_at=60).run(c)
    assert c.flashes() == ()  # a change confined to the eyes is not the face showing through


def test_no_face_breaks_the_pair_and_reset_forgets():
    a = FaceSlipAnalyser()
    clip = Clip(30)
    img, o = clip.frame(0)
    assert own(a, o) is None  # first frame has no predecessor
    assert own(a, FaceObservation(0.05, 1, W, H, False, 0, image=img)) is None
    _, o2 = clip.frame(2)
    assert own(a, o2) is None  # pair broken by the missing face
    a.reset()
    assert a.summary().value is None and a.frames == []


def test_smoothness_is_high_for_a_mesh_smoother_than_the_image():
    values = {}
    for noise in (0.01, 1.0):
        slip = FaceSlipAnalyser()
        smooth = FaceSmoothnessAnalyser(slip)
        clip = Clip(80, lm_noise=noise)
        for i in range(clip.n):
            _, o = clip.frame(i)
            own(slip, o)
            assert own(smooth, o) is None
        s = smooth.summary()
        assert s.name == "face_smoothness" and s.value is not None and 0 <= s.value <= 1
        assert slip.signals()["face_smoothness"] == s  # the slip analyser reports it too
        values[noise] = s.value
        assert dict(s.details)["mesh_to_ring"] > 0
    # a mesh that hardly moves against the head ring (generated-face-like) scores higher than
    # a mesh jittering by 1 px
    assert values[0.01] > 0.5 > values[1.0]


def test_smoothness_needs_enough_frames():
    slip = FaceSlipAnalyser()
    smooth = FaceSmoothnessAnalyser.from_options(FaceSmoothnessOptions(min_frames=30), slip)
    Clip(10).run(slip)
    assert smooth.summary().value is None
    with pytest.raises(ConfigError):
        FaceSmoothnessOptions(width=0)


def test_bad_options():
    with pytest.raises(ConfigError):
        FaceSlipOptions(roi=8)
    with pytest.raises(ConfigError):
        FaceSlipOptions(fb_max=0)


def _shared() -> Path:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.shared
def test_real_clip_runs_and_scores_within_range():
    root = _shared()
    if not (root / "manifest.csv").is_file():
        pytest.skip(f"no dev data at {root}")
    try:
        from liveness.sources.video import open_video
        from liveness.tracking.tracker import FaceTracker, TrackerOptions

        tracker = FaceTracker.from_options(TrackerOptions())
    except Exception as exc:  # models not converted in this checkout
        pytest.skip(f"tracker unavailable: {exc}")
    rows = [r for r in csv.DictReader((root / "manifest.csv").open()) if r["label"] == "real"]
    from liveness.signals.pose_consistency import PoseConsistencyAnalyser
    from liveness.signals.quality import QualityMonitor

    analysers = [FaceSlipAnalyser(), PoseConsistencyAnalyser(), QualityMonitor()]
    for i, fr in enumerate(open_video(root / rows[0]["path"])):
        if i >= 100:
            break
        try:
            obs = tracker.process(fr.image, fr.t, fr.index)
        except ModelError as exc:
            pytest.skip(f"face models not available: {exc}")
        for an in analysers:
            s = own(an, obs)
            assert s is None or 0.0 <= s.value <= 1.0
    sig = analysers[0].summary()
    assert sig.n > 50 and sig.value is not None and 0 <= sig.value <= 1
    assert analysers[2].summary().value is not None


def test_frame_count_is_the_number_of_frames_without_building_them():
    from liveness.signals.face_slip import SlipFrame, smoothness_signal

    a = FaceSlipAnalyser()
    for i in range(40):
        a._frames.append(SlipFrame(i / 15, 0.01, 0.02, 0.1, np.zeros(2), np.zeros(2), 0.01 + i * 1e-4,
                                   np.zeros(2), np.ones(4)))
    assert a.frame_count == len(a.frames) == 40
    assert smoothness_signal(a, a.options.smoothness).n == 40
