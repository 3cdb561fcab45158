"""The hand watch outside the challenges (liveness/challenges/hand_watch.py): a low-rate look
for a hand near the face, episodes followed every frame and scored with the face-under-hand cue,
a new signal the fusion does not weigh. Ground-truth observations with a hand-source double; the
real face and hand trackers on a rendered clip with a real dev hand (../shared, skipped without)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from liveness import ConfigError
from liveness.challenges.hand_watch import HandWatchAnalyser, HandWatchOptions
from liveness.core.analyser import FrameContext
from liveness.testing import Action, Avatar, AvatarScript, AvatarState
from liveness.testing.hand import paint_face_over_hand
from liveness.verdict.fusion import Fusion
from tests._hands import AvatarHands, NoHands

FPS = 15.0


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return Avatar.astronaut(size=(480, 360))


def _run(analyser: HandWatchAnalyser, avatar: Avatar, state_at, seconds: float, attack: bool = False) -> None:
    for i in range(int(seconds * FPS)):
        t = i / FPS
        s = state_at(t)
        obs = avatar.observation(s, t, i, image=True)
        if attack and s.hand > 0:
            bare = avatar.render(replace(s, hand=0.0))[0]
            obs = replace(obs, image=paint_face_over_hand(obs.image, bare, avatar.render(s)[1]["_landmarks"]))
        analyser.update(obs, FrameContext(t))


def test_options_are_checked():
    for bad in ({"rate_hz": 0.0}, {"release_s": -1.0}, {"max_episode_s": 0.0}, {"min_coverage": 0.0},
                {"min_covered": 0}):
        with pytest.raises(ConfigError):
            HandWatchOptions(**bad)
    with pytest.raises(ConfigError):
        HandWatchAnalyser(hands=object())  # type: ignore[arg-type]


def test_disabled_it_runs_nothing_and_reports_no_signal(avatar):
    src = NoHands()
    src.calls = 0
    hw = HandWatchAnalyser(HandWatchOptions(enabled=False), hands=src)
    _run(hw, avatar, lambda t: AvatarState(), 2.0)
    assert src.calls == 0 and hw.signals() == {}


def test_without_a_hand_it_looks_at_the_low_rate_only(avatar):
    src = NoHands()
    src.calls = 0
    hw = HandWatchAnalyser(HandWatchOptions(rate_hz=2.0), hands=src)
    _run(hw, avatar, lambda t: AvatarState(), 4.0)  # 60 frames
    assert 7 <= src.calls <= 9  # 2 a second, not 15
    sig = hw.signals()["hand_over_face"]
    assert sig.value is None and dict(sig.details) == {"n_near": 0.0, "n_covered": 0.0, "hand_calls": float(src.calls)}
    json.dumps(sig.to_dict())


def _cover(t: float) -> AvatarState:
    """The hand over the image-right half from 1.3 s to 2.5 s, away otherwise."""
    return AvatarState(hand=1.0 if 1.3 <= t < 2.5 else 0.0, hand_side=1)


@pytest.mark.parametrize("attack", [False, True])
def test_a_hand_over_the_face_is_followed_every_frame_and_scored(avatar, attack):
    """A look finds the hand, then every frame is measured until the hand is gone for
    ``release_s``; the genuine hand reads unlike the face, the face painted over it face-like."""
    src = AvatarHands(avatar, _cover)
    hw = HandWatchAnalyser(HandWatchOptions(rate_hz=2.0, release_s=0.5), hands=src)
    _run(hw, avatar, _cover, 4.0, attack=attack)
    (ep,) = hw.episodes
    assert 1.3 <= ep.start <= 1.3 + 0.5 + 1 / FPS and ep.end == pytest.approx(37 / FPS)  # the last frame before 2.5 s
    assert ep.covered >= 3 and 0.3 < ep.max_coverage < 0.7
    # followed on every frame of the episode (and half a second past it), looked at 2/s otherwise
    assert src.calls <= 9 + ep.frames and ep.frames >= (2.5 - ep.start + 0.5) * FPS - 1
    sig = hw.signals()["hand_over_face"]
    assert sig.n == 1 and dict(sig.details)["n_covered"] == 1.0
    if attack:
        assert sig.value > 0.6 and len(sig.segments) == 1
    else:
        assert sig.value < 0.2 and sig.segments == ()


def test_a_hand_already_on_the_face_is_not_taken_as_the_reference(avatar):
    """No face without a hand seen yet: the look refuses to open an episode against a reference
    that holds the hand; once the hand has gone, a look takes the face and watches again."""
    state = lambda t: AvatarState(hand=1.0 if t < 1.5 else 0.0)  # noqa: E731
    hw = HandWatchAnalyser(HandWatchOptions(rate_hz=2.0), hands=AvatarHands(avatar, state))
    _run(hw, avatar, state, 3.0)
    assert hw.episodes == () and hw.signals()["hand_over_face"].value is None


def test_a_hand_that_stays_is_followed_for_max_episode_s_only(avatar):
    state = lambda t: AvatarState(hand=1.0 if t >= 1.0 else 0.0)  # noqa: E731
    src = AvatarHands(avatar, state)
    hw = HandWatchAnalyser(HandWatchOptions(rate_hz=2.0, max_episode_s=1.0), hands=src)
    _run(hw, avatar, state, 5.0)
    assert len(hw.episodes) == 1 and hw.episodes[0].frames <= FPS + 1
    assert src.calls <= 2 + FPS + 1 + 2 * 4  # looks before, one second followed, looks after


def test_the_packaged_fusion_leaves_hand_over_face_out_of_the_risk():
    """A signal the fusion was not fitted on counts nothing: the same risk and contributions
    with or without ``hand_over_face``, whatever its value."""
    fusion = Fusion()
    assert "hand_over_face" not in fusion.params.features and "hand_over_face" not in fusion.params.rules
    assert fusion.params.unfitted_weight == 0.0
    base = {f: 0.4 for f in fusion.params.features}
    for v in (0.0, 0.5, 1.0):
        z0, c0 = fusion.contributions(base)
        z1, c1 = fusion.contributions({**base, "hand_over_face": v})
        assert z1 == z0 and c1 == c0


# -- the real trackers ----------------------------------------------------------------------------
def _rendered(shared, attack: bool) -> list[tuple[np.ndarray, float]]:
    """4 s at 15 fps: an avatar of a dev face raises a real dev hand over its image-left half at
    1.2 s, unprompted; ``attack``: the face painted back over the hand."""
    from liveness.sources.video import open_video
    from liveness.testing.hand import HandSprite

    sprite = HandSprite.from_dev_data(shared)
    av = Avatar.from_photo(next(iter(open_video(shared / "video/real/dfl_Ewon_Spice_0.mp4"))).image, size=(640, 480))
    script = AvatarScript([Action("cover_half_face", 1.2, side=-1)], seed=0)
    out = []
    for i in range(60):
        t = i / FPS
        s = script.state_at(t)
        bare, gt = av.render(replace(s, hand=0.0))
        img = sprite.cover(bare, gt["_landmarks"], s.hand, s.hand_side)[0] if s.hand > 0 else bare
        if attack and s.hand > 0:
            img = paint_face_over_hand(img, bare, gt["_landmarks"])
        out.append((img, t))
    return out


@pytest.mark.shared
def test_through_the_real_trackers_the_swap_over_a_natural_hand_scores_high(shared):
    from liveness.tracking.hands import HandOptions, HandTracker
    from liveness.tracking.tracker import FaceTracker

    values = {}
    for attack in (False, True):
        ft = FaceTracker()
        hw = HandWatchAnalyser(HandWatchOptions(), hands=HandTracker(HandOptions(max_hands=1)))
        for i, (img, t) in enumerate(_rendered(shared, attack)):
            hw.update(ft.process(img, t, i), FrameContext(t))
        values[attack] = hw.signals()["hand_over_face"].value
        assert len(hw.episodes) == 1 and hw.calls < 60  # a low-rate watch, then one followed episode
    assert values[False] is not None and values[False] < 0.3, values
    assert values[True] is not None and values[True] > 0.6, values


@pytest.mark.shared
def test_switching_it_on_changes_no_other_signal_and_not_the_risk(shared):
    """The whole pipeline on the rendered hand clip, hand watch off (the offline default) and on:
    every other signal and the verdict's risk are identical; only ``hand_over_face`` is added."""
    from liveness.pipeline import PipelineOptions, build_session

    frames = _rendered(shared, attack=True)
    out = {}
    for on in (False, True):
        opts = PipelineOptions(analysers=(("hand_watch", HandWatchOptions(enabled=on)),)) if on else PipelineOptions()
        session = build_session(opts)
        for img, t in frames:
            session.process(img, t)
        out[on] = ({k: s.to_dict() for k, s in session.signals().items()}, session.verdict())
    (off_sig, off_v), (on_sig, on_v) = out[False], out[True]
    assert "hand_over_face" not in off_sig and on_sig["hand_over_face"]["value"] > 0.6
    assert {k: v for k, v in on_sig.items() if k != "hand_over_face"} == off_sig
    assert on_v.risk == off_v.risk and on_v.label == off_v.label
