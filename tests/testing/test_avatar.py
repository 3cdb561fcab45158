"""The synthetic avatar: rendering, ground truth, video writing, and every challenge performed
(and not performed) on rendered frames through the real tracker."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from liveness import ConfigError, InputError
from liveness.challenges.engine import ChallengeEngine, EngineOptions
from liveness.challenges.spec import CHALLENGES
from liveness.testing import (
    Action,
    Avatar,
    AvatarScript,
    AvatarState,
    make_demo_clip,
    write_clip,
)
from liveness.testing.clips import main
from tests._feed import step

FPS = 15.0


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return Avatar.astronaut(size=(640, 480))


@pytest.fixture(scope="module")
def tracker_factory():
    try:
        from liveness.tracking.tracker import FaceTracker, TrackerOptions

        FaceTracker.from_options(TrackerOptions())
    except Exception as exc:  # models missing in a stripped checkout
        pytest.skip(f"tracker unavailable: {exc}")
    return lambda: FaceTracker.from_options(TrackerOptions())


def test_render_frame_and_ground_truth(avatar):
    img, gt = avatar.render(AvatarState())
    assert img.shape == (480, 640, 3) and img.dtype == np.uint8
    x, y, w, h = gt["box"]
    assert 0 < x < 640 and 0 < y < 480 and 60 < w < 400 and 60 < h < 400
    assert gt["_landmarks"].shape == (468, 2)
    # the face differs from the background and moves with the pose
    img2, gt2 = avatar.render(AvatarState(yaw=40))
    assert np.abs(img.astype(int) - img2.astype(int)).mean() > 1.0
    assert gt2["_landmarks"][1, 0] > gt["_landmarks"][1, 0] + 10  # nose toward image right
    # deterministic
    again, _ = avatar.render(AvatarState())
    assert np.array_equal(img, again)


def test_expressions_move_the_right_points(avatar):
    lm0 = avatar.landmarks(AvatarState())
    iod = np.linalg.norm(lm0[33] - lm0[263])
    gap = lambda lm: np.linalg.norm(lm[13] - lm[14]) / iod  # noqa: E731
    assert gap(avatar.landmarks(AvatarState(mouth=1))) > gap(lm0) + 0.15
    lid = lambda lm: np.linalg.norm(lm[159] - lm[145])  # noqa: E731
    assert lid(avatar.landmarks(AvatarState(blink=1))) < 0.3 * lid(lm0)
    wid = lambda lm: np.linalg.norm(lm[61] - lm[291])  # noqa: E731
    assert wid(avatar.landmarks(AvatarState(smile=1))) > 1.15 * wid(lm0)
    brow = lambda lm: lm[145, 1] - lm[105, 1]  # noqa: E731
    assert brow(avatar.landmarks(AvatarState(brows=1))) > 1.15 * brow(lm0)
    lean = avatar.landmarks(AvatarState(lean=1))
    assert np.linalg.norm(lean[33] - lean[263]) > 1.3 * iod
    # the hand covers one half of the face only
    a, _ = avatar.render(AvatarState())
    b, _ = avatar.render(AvatarState(hand=1, hand_side=1))
    xs = lm0[:468, 0]
    mid = float(np.median(xs))
    diff = np.abs(a.astype(int) - b.astype(int)).sum(2)
    y0, y1 = int(lm0[:468, 1].min()), int(lm0[:468, 1].max())
    right = diff[y0:y1, int(mid) + 5:int(xs.max())].mean()
    left = diff[y0:y1, int(xs.min()):int(mid) - 25].mean()
    assert right > 4 * left


def test_script_parse_and_states():
    s = AvatarScript.parse("turn_left@1 blink_twice@3.5", idle=False)
    assert [a.kind for a in s.actions] == ["turn_left", "blink_twice"]
    assert s.state_at(0.5).yaw == 0.0
    assert s.state_at(1.0 + 0.5 + 0.3).yaw == pytest.approx(50.0)
    assert s.active(1.2) == "turn_left" and s.active(2.9) is None
    assert max(s.state_at(3.5 + i / 100).blink for i in range(30)) == pytest.approx(1.0)
    with pytest.raises(ConfigError):
        AvatarScript.parse("moonwalk@1")
    with pytest.raises(ConfigError):
        AvatarScript.parse("smile")
    with pytest.raises(InputError):
        Avatar(np.zeros((10, 10), np.uint8), np.zeros((478, 3)))


def test_write_clip_with_ground_truth(tmp_path, avatar):
    from liveness.sources.video import open_video

    p = write_clip(tmp_path / "a.mp4", avatar, AvatarScript.parse("smile@0.3"), seconds=1.0, fps=10)
    gt = json.loads((tmp_path / "a.mp4.json").read_text())
    assert gt["schema"] == "liveness.avatar/1" and gt["frames"] == 10
    rows = gt["frames_gt"]
    assert len(rows) == 10 and rows[5]["action"] == "smile" and rows[5]["smile"] > 0
    frames = list(open_video(p))
    assert len(frames) == 10
    assert frames[0].image.shape == (480, 640, 3)


def test_cli_and_demo_clip(tmp_path):
    out = tmp_path / "cli.mp4"
    assert main([str(out), "--script", "blink@0.2", "--seconds", "0.6", "--size", "320x240"]) == 0
    assert out.is_file() and (tmp_path / "cli.mp4.json").is_file()
    assert main([str(tmp_path / "bad.mp4"), "--script", "fly@1"]) == 2
    demo = make_demo_clip(tmp_path / "demo.mp4", seconds=2.0, fps=8, size=(320, 240))
    assert demo.is_file() and demo.stat().st_size > 1000


@pytest.fixture(scope="module")
def hand_avatar(shared) -> Avatar:
    """The avatar covering its face with a real hand (cut from a dev frame at run time)."""
    from liveness.testing.hand import HandSprite

    return Avatar.astronaut(size=(640, 480), hand=HandSprite.from_dev_data(shared))


def _run_tracked(avatar, tracker, script, kind, seconds):
    eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(3))
    eng.start(0.0, kinds=[kind])
    for i in range(int(seconds * FPS)):
        t = i / FPS
        img, _ = avatar.render(script.state_at(t))
        step(eng, tracker.process(img, t, i))
        if eng.pending == 0:
            break
    return eng.results()[0]


@pytest.mark.parametrize("kind", sorted(set(CHALLENGES) - {"cover_half_face"}))
def test_challenge_on_rendered_video_through_the_tracker(avatar, tracker_factory, kind):
    """Every challenge passes when the avatar performs it and fails when it does not (the
    cover, which needs a real hand, below)."""
    done = _run_tracked(avatar, tracker_factory(), AvatarScript([Action(kind, 1.8)], seed=5), kind, 8.0)
    assert done.passed, done.to_dict()
    idle = _run_tracked(avatar, tracker_factory(), AvatarScript([], seed=5), kind, 8.0)
    assert not idle.passed and idle.reason == "timeout", idle.to_dict()


def test_pose_ground_truth_matches_tracker(avatar, tracker_factory):
    tr = tracker_factory()
    errs = []
    for i, yaw in enumerate([0, 10, 20, 30, 20, 0, -10, -20, -30]):
        img, _ = avatar.render(AvatarState(yaw=yaw))
        obs = tr.process(img, i / FPS, i)
        assert obs.face
        errs.append(obs.pose.yaw - yaw)
    assert np.all(np.diff([e + y for e, y in zip(errs, [0, 10, 20, 30, 20, 0, -10, -20, -30], strict=True)][:4]) > 0)
    assert np.median(np.abs(errs)) < 8.0


@pytest.mark.shared
@pytest.mark.parametrize("side", [-1, 1])
def test_cover_passes_with_a_hand_and_fails_without(avatar, hand_avatar, tracker_factory, side):
    """Through the real face tracker and hand tracker on rendered video: covering half the face
    with a real hand (cut from a dev frame) passes, with a low face-under-hand score; the same
    cover with the drawn hand, which changes that half as much but is no hand to the hand
    tracker, fails as ``no_hand``; no cover at all times out; and the swap that paints the face
    over the real hand fails, scoring high."""
    from liveness.testing.hand import paint_face_over_hand

    script = AvatarScript([Action("cover_half_face", 1.8, side=side)], seed=5)
    done = _run_tracked(hand_avatar, tracker_factory(), script, "cover_half_face", 8.0)
    assert done.passed and done.reason == "performed", done.to_dict()
    assert dict(done.breakdown_signals)["face_under_hand"] < 0.3, done.to_dict()
    drawn = _run_tracked(avatar, tracker_factory(), script, "cover_half_face", 8.0)
    assert not drawn.passed and drawn.reason == "no_hand", drawn.to_dict()
    idle = _run_tracked(hand_avatar, tracker_factory(), AvatarScript([], seed=5), "cover_half_face", 8.0)
    assert not idle.passed and idle.reason == "timeout", idle.to_dict()

    class Swapped:  # the covered frames with the face painted back over the hand
        def render(self, s):
            img, gt = hand_avatar.render(s)
            if s.hand > 0:
                bare, _ = avatar.render(AvatarState(**{**s.to_dict(), "hand": 0.0}))
                img = paint_face_over_hand(img, bare, gt["_landmarks"])
            return img, gt

    swap = _run_tracked(Swapped(), tracker_factory(), script, "cover_half_face", 8.0)
    assert not swap.passed, swap.to_dict()
    assert dict(swap.breakdown_signals).get("face_under_hand", 1.0) >= 0.5, swap.to_dict()
