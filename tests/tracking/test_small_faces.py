"""Small, dim and portrait faces built from real dev frames (see tests/_small_faces.py): the
tracker finds the face from a cold start on >= 98 % of frames down to 40 px face height, with the
full-range search; the short-range detector alone finds almost none of them.

The full-range search's cost and the found rates per size and condition, with and without it, are
in benchmarks/bench_small_faces.py and benchmarks/README.md."""

from __future__ import annotations

import numpy as np
import pytest

from liveness.tracking.tracker import FaceTracker, TrackerOptions, search_tiles
from tests._small_faces import CONDITIONS, FACE_HEIGHTS, found, load_sources, scenes

PER_CELL = 16  # scenes per (condition, face height): 3 x 4 x 16 = 192 frames


@pytest.fixture(scope="module")
def sources(shared):
    src = load_sources(shared)
    assert len(src) >= 40, len(src)
    return src


@pytest.mark.shared
def test_small_faces_found_from_a_cold_start(sources):
    """Every frame is a new scene and a fresh search (tracker reset): what a first detection, or a
    re-detection after a loss, achieves. Once found, the mesh (which upsamples a 40-px face's
    60-px crop to 192 px) lands where the mesh on the full-size frame does."""
    tr = FaceTracker(TrackerOptions(keep_image=False))
    rates: dict[tuple[str, int], float] = {}
    mesh_err: dict[int, list[float]] = {fh: [] for fh in FACE_HEIGHTS}
    for cond in CONDITIONS:
        for fh in FACE_HEIGHTS:
            hits = 0
            for sc in scenes(sources, cond, fh, PER_CELL):
                tr.reset()
                obs = tr.process(sc.image, 0.0)
                hits += found(obs, sc)
                if found(obs, sc):
                    # the mesh on the upsampled crop of a small face vs the mesh at full size
                    err = np.linalg.norm(obs.landmarks[:468, :2] - sc.landmarks[:468], axis=1)
                    mesh_err[fh].append(float(np.median(err)) / fh)
            rates[(cond, fh)] = hits / PER_CELL
    print({f"{c} {h}px": r for (c, h), r in rates.items()})
    print({fh: round(float(np.median(e)), 4) for fh, e in mesh_err.items()})
    # 40 px: median landmark error ~1.7 % of the face height (0.7 px), worst scene ~3 %
    assert max(max(e) for e in mesh_err.values()) < 0.06, mesh_err
    assert np.median(mesh_err[40]) < 0.03
    for fh in FACE_HEIGHTS:
        overall = np.mean([rates[(c, fh)] for c in CONDITIONS])
        assert overall >= 0.98, (fh, rates)
    assert min(rates.values()) >= 15 / 16, rates


@pytest.mark.shared
def test_short_range_alone_misses_them(sources):
    """The same scenes at 40 and 80 px without the full-range search: the short-range model does
    not see faces this small (this is what the full-range search is for)."""
    tr = FaceTracker(TrackerOptions(keep_image=False, full_range=False))
    hits = n = 0
    for cond in CONDITIONS:
        for fh in (40, 80):
            for sc in scenes(sources, cond, fh, 6):
                tr.reset()
                hits += found(tr.process(sc.image, 0.0), sc)
                n += 1
    assert hits / n < 0.2, hits / n


@pytest.mark.shared
def test_small_face_is_tracked_through_a_clip(shared):
    """A real clip shrunk to a 40-px face in a 1080p frame, frame after frame: one full-range
    search finds it, the mesh follows it, the periodic re-detection uses the full-range model
    (the face is too small for the short-range one) and the face is found on >= 98 % of frames."""
    from liveness.sources.video import open_video
    from tests._small_faces import Source, make_scene

    clip = "video/real/dfl_Kim_Jarrey_1.mp4"
    probe = FaceTracker(TrackerOptions(keep_image=False, full_range=False))
    tr = FaceTracker(TrackerOptions(keep_image=False))
    hits = n = 0
    scale = None
    for fr in open_video(shared / clip):
        if fr.index >= 60:
            break
        truth = probe.process(fr.image, fr.t)
        if not truth.face:
            continue
        # one scale and one placement for the whole clip: the person sits at 2-3 m
        scale = scale or 40.0 / float(truth.box[3])
        sc = make_scene(Source(clip, fr.image, truth.box), scale * float(truth.box[3]), "landscape",
                        np.random.default_rng(7))
        obs = tr.process(sc.image, fr.t)
        hits += found(obs, sc)
        n += 1
    assert n >= 50 and hits / n >= 0.98, (hits, n)
    assert tr.full_searches <= 2, tr.full_searches
    # re-detections every second, with the full-range model: a few calls, not a search per frame
    assert tr.calls["short_range"] <= 3 and tr.calls["full_range"] < 40, tr.calls


def test_search_tiles_cover_the_frame_with_overlap():
    for w, h, tile, ov in ((1920, 1080, 640, 160), (1080, 1920, 640, 160), (1280, 720, 512, 128), (600, 400, 640, 160)):
        tiles = search_tiles(w, h, tile, ov)
        cover = np.zeros((h, w), np.int32)
        for x, y, tw, th in tiles:
            assert 0 <= x and 0 <= y and x + tw <= w and y + th <= h
            cover[y : y + th, x : x + tw] += 1
        assert cover.min() >= 1
        xs = sorted({t[0] for t in tiles})
        ys = sorted({t[1] for t in tiles})
        tw, th = tiles[0][2], tiles[0][3]
        # neighbours overlap by at least `ov`, so a face smaller than that lies inside one tile
        assert all(b - a <= tw - ov for a, b in zip(xs, xs[1:], strict=False))
        assert all(b - a <= th - ov for a, b in zip(ys, ys[1:], strict=False))
    assert len(search_tiles(1920, 1080, 640, 160)) == 8
    assert search_tiles(600, 400, 640, 160) == [(0, 0, 600, 400)]


def test_no_face_full_range_search_is_rate_limited():
    """Nothing in view for 3 s at 30 fps: the full-range search runs once per
    full_search_interval_s, not on every frame."""
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(120, 20, (1080, 1920, 3)), 0, 255).astype(np.uint8)
    tr = FaceTracker(TrackerOptions(keep_image=False, full_search_interval_s=0.5))
    for i in range(90):
        assert not tr.process(frame, i / 30).face
    assert tr.full_searches == 6, tr.full_searches
    assert tr.calls["short_range"] == 90


def test_full_range_search_on_a_small_synthetic_face(astronaut):
    """Without dev data: the astronaut at a 40-px face height in a 1080p frame is found by the
    full-range tile search and followed; the short-range detector alone does not find it."""
    from tests._small_faces import Source, make_scene

    probe = FaceTracker(TrackerOptions(keep_image=False, full_range=False))
    truth = probe.process(astronaut, 0.0)
    src = Source("astronaut", astronaut, truth.box)
    for cond in CONDITIONS:
        sc = make_scene(src, 40, cond, np.random.default_rng(3))
        probe.reset()
        assert not found(probe.process(sc.image, 0.0), sc)
        tr = FaceTracker(TrackerOptions(keep_image=False))
        for i in range(3):
            obs = tr.process(sc.image, i / 30)
            assert found(obs, sc), (cond, i)
        assert tr.full_searches == 1
        # the mesh runs on a 60-px crop upsampled to 192 px: the landmarks sit on the face
        lm = obs.landmarks
        assert lm[33, 0] < lm[263, 0] and lm[159, 1] < lm[13, 1] < lm[152, 1]
        assert obs.score > 0.9
