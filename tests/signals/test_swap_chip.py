"""The swap detector's chip and mask: one rule for training crops and live frames."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.signals.embedding import FaceEmbedder, chip_transform, face_chip
from liveness.signals.swap_chip import chip_mask, swap_chip
from liveness.testing.avatar import astronaut_photo, photo_landmarks


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    rgb = astronaut_photo()
    return rgb, photo_landmarks(rgb)


def test_chip_is_the_embedders_chip_and_a_full_frame_face_is_all_valid(face) -> None:  # noqa: ANN001
    rgb, lm = face
    sc = swap_chip(rgb, lm)
    assert sc.chip.shape == (150, 150, 3) and sc.mask.shape == (150, 150)
    np.testing.assert_array_equal(sc.chip, FaceEmbedder().chip(rgb, lm))
    assert sc.mask.min() == 1.0


def test_mask_marks_what_lies_outside_the_valid_box(face) -> None:  # noqa: ANN001
    _, lm = face
    m = chip_transform(lm)
    # a box that ends at the face's centre column: about half the chip lies outside it
    cx = float((m @ np.array([75.0, 75.0, 1.0]))[0])
    mask = chip_mask(lm, (0.0, 0.0, cx, 512.0))
    assert 0.35 < mask.mean() < 0.65
    assert set(np.unique(mask)) <= {0.0, 1.0}


def test_a_face_at_the_frame_edge_is_masked_where_the_chip_leaves_the_frame(face) -> None:  # noqa: ANN001
    rgb, lm = face
    x0 = int(lm[:, 0].min())  # cut the photo at the face's left edge
    cut, lm_cut = np.ascontiguousarray(rgb[:, x0:]), lm - np.array([x0, 0, 0], np.float32)
    sc = swap_chip(cut, lm_cut)
    assert 0.0 < sc.mask.mean() < 1.0
    # a valid pixel owes nothing to the border the warp fills in: with a white border instead
    # of a black one (the chip of the inverted image, inverted) only masked pixels change (by
    # more than 1: the warp rounds halves up, so inverting an exact tie moves a pixel by 1)
    white = 255 - face_chip(255 - cut, lm_cut)
    changed = np.any(np.abs(white.astype(np.int16) - sc.chip) > 1, axis=2)
    assert changed.any() and not np.any(changed & (sc.mask == 1))
    assert sc.to_dict()["valid_fraction"] == pytest.approx(float(sc.mask.mean()))
