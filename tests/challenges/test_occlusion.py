"""FaceUnderHand: how much of the face a hand covers and how face-like it stays under it
(liveness/challenges/occlusion.py), on the avatar with its drawn hand and a hand source that
reports where the renderer drew it (the real hand tracker on a real hand: tests/testing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from liveness import ConfigError, HandTracker
from liveness.challenges.occlusion import (
    FaceUnderHand,
    FaceUnderHandOptions,
    HandReading,
    cover_swap_score,
    hand_shape_mask,
)
from liveness.core.protocols import HandSource
from liveness.pipeline import default_analysers
from liveness.testing import Avatar, AvatarState
from liveness.testing.hand import paint_face_over_hand
from tests._hands import AvatarHands, NoHands


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return Avatar.astronaut(size=(480, 360))


def _reading(t: float, cov: float, like: float = float("nan"), hands: int = 1) -> HandReading:
    return HandReading(t, hands, cov, like, 0.99)


def test_hand_tracker_is_a_hand_source_and_the_pipeline_gives_the_engine_one():
    assert isinstance(HandTracker(), HandSource) and isinstance(NoHands(), HandSource)
    eng = next(a for a in default_analysers() if a.name == "challenge_breakdown")
    assert isinstance(eng._hand_source, HandTracker)
    with pytest.raises(ConfigError):
        FaceUnderHand(object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        FaceUnderHandOptions(crop=8)


def test_hand_shape_mask():
    lm = np.zeros((21, 2))
    lm[0] = (50, 90)
    lm[1:5] = np.linspace((40, 80), (25, 60), 4)
    for k, x in enumerate((40, 47, 54, 61)):
        lm[5 + 4 * k:9 + 4 * k] = np.linspace((x, 65), (x, 30), 4)
    m = hand_shape_mask((100, 100), lm)
    assert m.dtype == np.uint8 and m[80, 50] == 255 and m[35, 47] == 255 and m[10, 90] == 0
    assert not hand_shape_mask((100, 100), np.full((21, 2), np.nan)).any()


def test_no_reference_or_no_image_reads_nan(avatar):
    cue = FaceUnderHand(NoHands())
    obs = avatar.observation(AvatarState(), 0.0, 0, image=True)
    r = cue.measure(obs)
    assert np.isnan(r.coverage) and not cue.has_reference
    assert not cue.set_reference(avatar.observation(AvatarState(), 0.0, 0))  # no image
    assert cue.set_reference(obs)
    r = cue.measure(avatar.observation(AvatarState(), 0.1, 1, image=True))
    assert r.hands == 0 and r.coverage == 0.0 and np.isnan(r.face_likeness)
    json.dumps(r.to_dict())


@pytest.mark.parametrize("side", [-1, 1])
def test_coverage_follows_the_hand_and_the_face_painted_over_it_reads_face_like(avatar, side):
    """The drawn hand sliding over one half: coverage grows with it to about half the face;
    under the hand the frame is unlike the face (likeness low); with the face painted back
    over the hand (the swap attack), the same hand positions read face-like."""
    states = [AvatarState(hand=a, hand_side=side) for a in (0.0, 0.3, 0.6, 1.0)]
    rows = {}
    for attack in (False, True):
        cue = FaceUnderHand(AvatarHands(avatar, lambda t: states[min(int(round(t * 10)) - 1, 3)]))
        cue.set_reference(avatar.observation(AvatarState(), 0.0, 0, image=True))
        out = []
        for i, s in enumerate(states):
            obs = avatar.observation(s, (i + 1) / 10, i + 1, image=True)
            if attack and s.hand > 0:
                bare = avatar.render(AvatarState())[0]
                img = paint_face_over_hand(obs.image, bare, avatar.render(s)[1]["_landmarks"])
                obs = avatar.observation(s, obs.t, obs.frame_index)
                obs = type(obs)(**{**obs.__dict__, "image": img})
            out.append(cue.measure(obs))
        rows[attack] = out
    cov = [r.coverage for r in rows[False]]
    assert cov[0] == 0.0 and cov[1] < cov[2] < cov[3] and 0.3 < cov[3] < 0.7, cov
    assert [r.coverage for r in rows[True]] == pytest.approx(cov, abs=0.02)  # same hand places
    assert rows[False][3].face_likeness < 0.2, rows[False][3]
    assert rows[True][3].face_likeness > 0.6, rows[True][3]  # (the feathered oval edge keeps some hand)


def test_cover_swap_score():
    # no hand came near: nothing to judge
    assert cover_swap_score([_reading(0.1 * i, 0.0, hands=0) for i in range(10)]) == (None, ())
    # a hand on the face, unlike the face under it: low
    genuine = [_reading(0.1 * i, 0.5, 0.05) for i in range(10)]
    score, parts = cover_swap_score(genuine)
    assert score == pytest.approx(0.05) and dict(parts)["hand_held"] == pytest.approx(0.5)
    # the same with the face under the hand: high
    assert cover_swap_score([_reading(0.1 * i, 0.5, 0.85) for i in range(10)])[0] == pytest.approx(0.85)
    # a hand beside the face that never stays on it (one frame at 0.2 does not count)
    vanished = [_reading(0.1 * i, 0.02) for i in range(10)]
    vanished[4] = _reading(0.4, 0.2, 0.1)
    score, parts = cover_swap_score(vanished)
    assert score == pytest.approx(1.0 - 0.02 / 0.3) and dict(parts)["hand_vanished"] == score
