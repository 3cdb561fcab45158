"""HandSprite (a real hand cut from a frame and pasted over a face) and the swap-over-hand attack
(liveness/testing/hand.py). The geometry on a drawn hand; the dev hand through the real hand
tracker (../shared data, skipped without it)."""

from __future__ import annotations

import numpy as np
import pytest

from liveness import InputError
from liveness.challenges.occlusion import hand_shape_mask
from liveness.testing import Avatar, AvatarState
from liveness.testing.hand import HandSprite, face_oval_mask, paint_face_over_hand
from liveness.tracking.hands import HandTracker, region_around

SKIN = (205, 150, 125)


def _drawn_hand() -> tuple[np.ndarray, np.ndarray]:
    """A skin-coloured hand shape on a grey wall, fingers up, and its 21 landmarks."""
    lm = np.zeros((21, 2))
    lm[0] = (95, 170)
    lm[1:5] = np.linspace((80, 150), (55, 105), 4)
    for k, x in enumerate((82, 95, 108, 121)):
        lm[5 + 4 * k:9 + 4 * k] = np.linspace((x, 115), (x, 55 + 3 * abs(k - 1.5)), 4)
    img = np.full((200, 200, 3), 90, np.uint8)
    img[hand_shape_mask((200, 200), lm) > 0] = SKIN
    return img, lm


def test_cut_keeps_the_hand_and_not_the_wall():
    img, lm = _drawn_hand()
    sp = HandSprite.cut(img, lm)
    assert sp.rgb.shape[:2] == sp.alpha.shape and sp.landmarks.shape == (21, 2)
    skin = np.all(sp.rgb == SKIN, axis=2)
    assert sp.alpha[skin].mean() > 0.9 and sp.alpha[~skin].mean() < 0.2
    assert sp.length == pytest.approx(np.linalg.norm(lm[12] - lm[0]), abs=0.5)
    assert abs(sp.angle) < 1.0  # fingers up
    with pytest.raises(InputError):
        HandSprite.cut(img, lm[:20])
    with pytest.raises(InputError):
        HandSprite.cut(np.full((200, 200, 3), 90, np.uint8), lm)  # no skin under the landmarks
    with pytest.raises(InputError):
        HandSprite.cut(img[..., 0], lm)


@pytest.mark.parametrize("length,angle", [(150.0, 0.0), (80.0, 30.0), (-120.0, -20.0)])
def test_matrix_puts_the_palm_where_asked(length, angle):
    img, lm = _drawn_hand()
    sp = HandSprite.cut(img, lm)
    m = sp.matrix((300.0, 200.0), length, angle)
    out = np.c_[sp.landmarks, np.ones(21)] @ m.T
    assert out[[0, 5, 9, 13, 17]].mean(0) == pytest.approx((300.0, 200.0), abs=1e-4)
    assert np.linalg.norm(out[12] - out[0]) == pytest.approx(abs(length), rel=1e-5)
    d = out[9] - out[0]
    assert np.degrees(np.arctan2(d[0], -d[1])) == pytest.approx(angle, abs=1e-4)
    # a negative length mirrors: the thumb goes to the other side of the hand's axis
    def cross(p: np.ndarray) -> float:
        a, b = p[9] - p[0], p[4] - p[0]
        return float(np.sign(a[0] * b[1] - a[1] * b[0]))

    side, side0 = cross(out), cross(sp.landmarks)
    assert side == (side0 if length > 0 else -side0)


def test_paste_cover_and_the_swap_over_hand():
    img, lm = _drawn_hand()
    sp = HandSprite.cut(img, lm)
    av = Avatar.astronaut(size=(480, 360))
    bare, gt = av.render(AvatarState())
    face = gt["_landmarks"]
    covered, hand = sp.cover(bare, face, 1.0, 1)
    assert covered.shape == bare.shape and hand.shape == (21, 2)
    assert hand[[0, 5, 9, 13, 17], 0].mean() > face[:, 0].mean()  # on the image-right half
    assert sp.cover(bare, face, 0.0, 1)[0] is bare
    changed = np.abs(covered.astype(int) - bare.astype(int)).sum(2) > 30
    oval = face_oval_mask(bare.shape[:2], face) > 0.5
    assert (changed & oval).sum() > 2000
    attack = paint_face_over_hand(covered, bare, face)
    inner = face_oval_mask(bare.shape[:2], face, 4.0) > 0.99
    # the face is back inside the oval, the hand stays outside it
    assert np.abs(attack[inner].astype(int) - bare[inner].astype(int)).max() <= 1
    assert np.array_equal(attack[~oval], covered[~oval])
    with pytest.raises(InputError):
        paint_face_over_hand(covered, bare[:10], face)


@pytest.mark.shared
def test_the_dev_hand_is_found_by_the_hand_tracker_over_a_face(shared):
    """The dev hand cut from its frame, pasted over the avatar's face (either side), is found by
    the real hand tracker where it was pasted; painted over by the face it is not found on the
    face any more."""
    sp = HandSprite.from_dev_data(shared)
    assert sp.length > 60 and 0.3 < sp.alpha.mean() < 0.9
    av = Avatar.astronaut(size=(640, 480))
    bare, gt = av.render(AvatarState())
    face = gt["_landmarks"]
    box = np.r_[face.min(0), np.ptp(face, 0)]
    for side in (-1, 1):
        covered, true = sp.cover(bare, face, 1.0, side)
        res = HandTracker().process(covered, 0.0, region=region_around(box))
        assert len(res.hands) == 1
        err = np.median(np.linalg.norm(res.hands[0].landmarks[:, :2] - true, axis=1))
        assert err < 0.1 * np.linalg.norm(true[12] - true[0]), err
        attack = paint_face_over_hand(covered, bare, face)
        for h in HandTracker().process(attack, 0.0, region=region_around(box)).hands:
            inside = face_oval_mask(bare.shape[:2], face)[h.landmarks[:, 1].astype(int).clip(0, 479),
                                                          h.landmarks[:, 0].astype(int).clip(0, 639)]
            assert inside.mean() < 0.5
    with pytest.raises(InputError):
        HandSprite.from_dev_data(shared, clip="video/real/none.mp4")
