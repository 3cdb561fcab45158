"""The analysis schedule of ``liveness review --fast`` and the review's flat records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liveness.apps.cli import main
from liveness.apps.review import ReviewOptions, review
from liveness.apps.schedule import ScheduleOptions, Scheduler
from liveness.core.errors import ConfigError
from liveness.core.record import CompactObservations
from liveness.core.types import Event, FaceObservation, FrameResult, HeadPose
from tests.conftest import write_clip


def _res(t: float, face: bool = True, yaw: float = 0.0, x: float = 100.0, events: tuple[Event, ...] = ()) -> FrameResult:
    obs = FaceObservation(t=t, frame_index=0, width=640, height=480, face=face, faces=int(face),
                          box=np.array([x, 100, 100, 100], np.float32) if face else None, score=0.95 if face else 0.0,
                          pose=HeadPose(yaw, 0.0, 0.0, np.zeros(3), np.zeros(3)) if face else None)
    return FrameResult(obs, (), events)


def _run(s: Scheduler, fps: float, seconds: float, result=lambda t: _res(t)) -> list[float]:
    got = []
    for i in range(int(seconds * fps)):
        t = i / fps
        if s.want(t):
            got.append(t)
            s.observe(result(t))
    return got


def test_a_still_face_is_analysed_at_the_base_rate():
    got = _run(Scheduler(ScheduleOptions(base_fps=10)), 30, 3.0)
    assert len(got) == 30 and np.allclose(np.diff(got), 0.1, atol=1e-6)


def test_a_head_turn_a_lost_face_and_an_event_open_dense_windows():
    opts = ScheduleOptions(base_fps=10, dense_s=0.5, turn_deg_s=60)
    turn = _run(Scheduler(opts), 30, 3.0, lambda t: _res(t, yaw=100 * t if 1.0 <= t < 1.2 else 0.0))
    assert sum(1.1 <= t < 1.6 for t in turn) == 15  # every frame for 0.5 s after the turn is seen
    lost = _run(Scheduler(opts), 30, 3.0, lambda t: _res(t, face=t < 2.0))
    assert sum(2.0 <= t < 2.5 for t in lost) == 15
    ev = _run(Scheduler(opts), 30, 3.0, lambda t: _res(t, events=(Event(t, "quality.dark", "dark"),) if abs(t - 1.0) < 1e-6 else ()))
    assert sum(1.0 <= t < 1.5 for t in ev) == 15 and sum(t < 1.0 for t in ev) == 10
    with pytest.raises(ConfigError):
        ScheduleOptions(base_fps=0)
    with pytest.raises(ConfigError):
        ReviewOptions(schedule=ScheduleOptions(), decode_ahead=2)


@pytest.fixture(scope="module")
def clip(tmp_path_factory, astronaut) -> Path:
    import cv2

    frames = [cv2.warpAffine(astronaut, np.float32([[1, 0, i / 3], [0, 1, 0]]), (512, 512),
                             borderMode=cv2.BORDER_REFLECT) for i in range(45)]
    return write_clip(tmp_path_factory.mktemp("sched") / "slow.mp4", frames, fps=30)


def test_every_frame_review_keeps_a_compact_record_and_decoding_ahead_changes_nothing(clip: Path):
    from liveness.core.record import SpilledRows

    a = review(clip)
    b = review(clip, ReviewOptions(decode_ahead=3))
    assert isinstance(a.timeline, SpilledRows) and len(a.timeline) == 45
    da, db = a.to_dict(), b.to_dict()
    for k in ("timeline", "signals", "verdict", "events", "summary"):
        assert json.dumps(da[k]) == json.dumps(db[k])  # NaN details compare as text
    assert a.summary == b.summary and a.summary["face_frames"] == 45
    assert json.loads("".join(a.json_chunks()))["timeline"] == a.to_dict()["timeline"]


def test_fast_review_analyses_fewer_frames_in_time_order(clip: Path, tmp_path: Path):
    out = tmp_path / "fast.json"
    assert main(["review", str(clip), "--fast", "--json", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    ts = [r["t"] for r in doc["timeline"]]
    assert 10 <= len(ts) < 45 and ts == sorted(ts) and doc["source"]["frames"] == len(ts)
    assert doc["provenance"]["options"]["schedule"]["base_fps"] == 10.0
    assert doc["summary"]["face_fraction"] == 1.0
    assert main(["review", str(clip), "--fast-fps", "5", "-q"]) == 2  # --fast-fps needs --fast


def test_the_record_turns_compact_only_before_the_first_frame(astronaut):
    from liveness.pipeline import build_session

    s = build_session()
    s.use_compact_record()
    s.process(astronaut, 0.0)
    assert isinstance(s.observations, CompactObservations) and len(s.observations) == 1
    s2 = build_session()
    s2.process(astronaut, 0.0)
    with pytest.raises(ConfigError):
        s2.use_compact_record()
