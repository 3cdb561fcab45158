"""Several faces in the frame (issue 15, item 6): the candidate is the tracked face, the others
are counted (``faces``) and reported (``other_boxes``), in a 3x3 call gallery at 1080p whose
faces (120-300 px) the short-range detector alone does not see."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from liveness.core.mathx import iou
from liveness.tracking.tracker import FaceTracker, TrackerOptions

FPS = 15.0


def _gallery(tiles: list[np.ndarray]) -> np.ndarray:
    small = [cv2.resize(t, (640, 360), interpolation=cv2.INTER_AREA) for t in tiles]
    return np.concatenate([np.concatenate(small[3 * r:3 * r + 3], 1) for r in range(3)], 0)


def _tile(box: np.ndarray) -> tuple[int, int]:
    c = box[:2] + box[2:] / 2
    return int(c[0] // 640), int(c[1] // 360)


def _check(frame: np.ndarray, expect: int, seconds: float = 5.4) -> None:
    ft = FaceTracker(TrackerOptions())
    first = None
    calls = []
    for i in range(int(seconds * FPS)):  # five more detector runs, one more tiled count
        o = ft.process(frame, i / FPS, i)
        calls.append(ft.calls["full_range"])
        assert o.face and o.faces == expect and len(o.other_boxes) == expect - 1, (i, o.faces)
        first = o.box if first is None else first
        assert iou(o.box, first)[0] > 0.8  # the candidate stays the tracked face
        tiles = {_tile(b) for b in o.other_boxes}
        assert len(tiles) == expect - 1 and _tile(o.box) not in tiles  # one face per call tile
    # the cost: one whole-frame full-range call per detector run (1 s), the 8 tiles of 1080p
    # once per count_tiles_interval_s (5 s)
    steps = np.diff(calls)
    assert all(steps[k] == 1 for k in (14, 29, 44, 59)) and steps[74] == 1 + 8, calls
    assert steps.sum() == 4 + 9, calls
    # without the full-range count the short-range model sees only the largest faces
    few = FaceTracker(TrackerOptions(count_full_range=False)).process(frame, 0.0, 0)
    assert few.face and few.faces < expect


def test_a_gallery_of_one_photo(astronaut):
    _check(_gallery([astronaut[40:328]] * 9), 9)  # a 16:9 cut of the photo in every tile


@pytest.mark.shared
def test_a_gallery_of_nine_dev_faces(shared):
    """The first frames of nine real dev clips (webcams, a stream overlay, a film still, a
    portrait video) as a 3x3 call gallery at 1920x1080."""
    from liveness.sources.video import open_video

    with (shared / "manifest.csv").open(newline="") as f:
        real = [r["path"] for r in csv.DictReader(f) if r["label"] == "real"]
    clips = real[:40:4][:9]
    assert len(clips) == 9
    _check(_gallery([next(iter(open_video(shared / c))).image for c in clips]), 9)
