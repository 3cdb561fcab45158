"""A live session's memory stays bounded over a long call (issue 18, the soak).

A live session runs for hours, so what it keeps per analysed frame decides how its memory grows.
This feeds a live :class:`Session` (the per-frame analysers of the default pipeline; a stand-in
tracker repeating a synthetic moving head and a stand-in embedder, so no model runs) with a short
horizon, past it, then 3N more frames, and measures with ``tracemalloc`` the bytes kept per frame
in between. Before the histories were made flat it was ~1.5 kB a frame, flat ~450 B; with the
horizon the per-frame record, the score series and the analysers' measurements stop growing,
and only identity's samples (2 a second at most in a call) and capped embeddings remain.
"""

from __future__ import annotations

import gc
import tracemalloc
from dataclasses import replace

import numpy as np

from liveness import FaceQuality, HeadPose, Session
from liveness.challenges.opportunistic import OpportunisticAnalyser
from liveness.core.record import LightObservations
from liveness.signals.artefact import SharpnessGapAnalyser, SharpnessGapOptions
from liveness.signals.face_slip import FaceSlipAnalyser
from liveness.signals.identity import LIVE_EMBEDDINGS, IdentityAnalyser
from liveness.signals.pose_consistency import PoseConsistencyAnalyser
from liveness.signals.quality import QualityMonitor
from tests.signals.test_face_slip import Clip

N = 300  # frames before the measurement (the identity embeddings reach their cap by then)
DT = 0.5  # seconds between analysed frames: one identity sample a frame
HORIZON_S = 60.0  # the live history kept (600 s by default): folded well before the measurement


class LoopTracker:
    """Plays the frames of a synthetic clip in a loop, as observations of the frame given."""

    def __init__(self, clip: Clip) -> None:
        self.obs = []
        for i in range(clip.n):
            _, o = clip.frame(i)
            yaw = 10.0 * np.sin(i / 5)
            pose = HeadPose(yaw, 0.0, 0.0, np.array([0.0, np.radians(yaw), 0.0]), np.array([0.0, 0.0, 40.0]))
            self.obs.append(replace(o, pose=pose, quality=FaceQuality(120.0, 80.0, 128.0, 1.0), score=0.9))

    def process(self, image, t, frame_index=-1):
        return replace(self.obs[frame_index % len(self.obs)], t=t, frame_index=frame_index)

    def reset(self) -> None:
        pass


class Embedder:
    """The same person with a little noise, one embedding a call."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(0)
        self.base = self.rng.normal(0, 1, 128).astype(np.float32)
        self.base *= 0.5 / np.linalg.norm(self.base)

    def embed_face(self, rgb, lm):
        return (self.base + self.rng.normal(0, 0.01, 128)).astype(np.float32)


def _session() -> tuple[Session, IdentityAnalyser]:
    identity = IdentityAnalyser(embedder=Embedder())
    analysers = [QualityMonitor(), PoseConsistencyAnalyser(), FaceSlipAnalyser(), identity,
                 SharpnessGapAnalyser(SharpnessGapOptions(rate_hz=5.0)), OpportunisticAnalyser()]
    return Session(LoopTracker(Clip(n=40)), analysers, mode="live", horizon_s=HORIZON_S), identity


def _kept(session: Session, start: int, n: int, image: np.ndarray) -> int:
    for i in range(start, start + n):
        session.process(image, i * DT)
    session.signals()  # summaries allocate and free; what stays is the history
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def test_a_live_session_keeps_little_per_frame_and_caps_its_embeddings():
    session, identity = _session()
    image = np.zeros((8, 8, 3), np.uint8)  # the stand-in tracker ignores it
    for i in range(N):  # warm-up: windows, baselines and the embeddings' cap fill up
        session.process(image, i * DT)
    session.signals()
    tracemalloc.start()
    try:
        _kept(session, N, 3 * N, image)  # the flat arrays' capacities settle (they shrink when folded)
        a = _kept(session, 4 * N, 0, image)
        b = _kept(session, 4 * N, 3 * N, image)
    finally:
        tracemalloc.stop()
    per_frame = (b - a) / (3 * N)
    # past the horizon, what still grows is identity's samples (~40 B a sample in flat columns
    # plus ~16 B a score in its series; one sample a frame here, at most 2 a second in a call):
    # ~70 B a frame. It was ~450 B with every history growing, ~1.5 kB with lists of objects.
    assert per_frame < 120, f"{per_frame:.0f} B kept per analysed frame"
    assert isinstance(session.observations, LightObservations)
    assert len(session.observations) <= 1.25 * HORIZON_S / DT + 2
    assert identity.n_samples >= 7 * N - 10 and len(identity.samples) <= LIVE_EMBEDDINGS
    sig = session.signals()
    assert sig["identity_change"].n > 0 and sig["face_slip"].n > 0 and sig["quality"].n == 7 * N
    assert sig["face_slip"].n <= 1.25 * HORIZON_S / DT and dict(sig["face_slip"].details)["scores_total"] > 6 * N


def test_live_embeddings_are_spread_over_the_call_and_the_signals_do_not_change():
    live, video = IdentityAnalyser(embedder=False), IdentityAnalyser(embedder=False)
    live._live = True  # what a live session's frames set (FrameContext.mode)
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 128).astype(np.float32)
    base *= 0.5 / np.linalg.norm(base)
    for i in range(1000):
        emb = base + rng.normal(0, 0.02, 128).astype(np.float32)
        for a in (live, video):
            a.add_sample(i * 0.5, 5.0 * np.sin(i / 7), emb)
    assert len(video.samples) == 1000 and video.n_samples == live.n_samples == 1000
    kept = live.samples
    assert LIVE_EMBEDDINGS // 2 <= len(kept) <= LIVE_EMBEDDINGS
    ts = np.array([s.t for s in kept])
    assert ts[0] == 0.0 and ts[-1] > 0.9 * 999 * 0.5 and np.all(np.diff(ts) > 0)
    by_t = {s.t: s for s in video.samples}
    assert all(np.array_equal(s.embedding, by_t[s.t].embedding) and s.d_enrol == by_t[s.t].d_enrol for s in kept)
    assert live.signals() == video.signals()
