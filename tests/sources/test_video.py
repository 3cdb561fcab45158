from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from liveness import InputError
from liveness.sources.video import open_video
from tests.conftest import write_clip


def _frames(n: int, w: int = 96, h: int = 64) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[: h // 2, : w // 3] = (255, 0, 0)  # red block top-left marks orientation
        img[h // 2 :, :, 1] = (i * 20) % 255
        out.append(img)
    return out


def test_reads_frames_with_stream_timestamps(tmp_path: Path):
    p = write_clip(tmp_path / "a.mp4", _frames(10), fps=20)
    src = open_video(p)
    frames = list(src)
    assert len(frames) == 10
    assert src.info.width == 96 and src.info.height == 64
    ts = np.array([f.t for f in frames])
    assert np.all(np.diff(ts) > 0)
    assert np.allclose(np.diff(ts), 1 / 20, atol=1e-3)
    assert frames[0].image.shape == (64, 96, 3) and frames[0].image.dtype == np.uint8


def test_variable_frame_rate_timestamps_come_from_stream(tmp_path: Path):
    pts = [0, 40, 80, 200, 240, 520]  # ms, irregular gaps (multiples of the 1/25 s codec tick)
    p = tmp_path / "vfr.mkv"
    write_clip(p, _frames(len(pts)), fps=25, codec="mpeg4", pts=pts)
    ts = [f.t for f in open_video(p)]
    assert np.allclose(ts, np.array(pts) / 1000.0, atol=2e-3)


def test_rotation_metadata_is_honoured(tmp_path: Path):
    p = write_clip(tmp_path / "rot.mp4", _frames(3), rotation=90)
    src = open_video(p)
    assert src.info.rotation == 90
    img = next(iter(src)).image
    assert img.shape == (96, 64, 3)
    # 90° counter-clockwise: the red top-left block moves to the bottom-left
    assert img[-5, 5, 0] > 200 and img[5, 5, 0] < 50


def test_stride_and_max_side(tmp_path: Path):
    p = write_clip(tmp_path / "b.mp4", _frames(9, 320, 240))
    src = open_video(p, stride=3, max_side=160)
    frames = list(src)
    assert [f.index for f in frames] == [0, 3, 6]
    assert frames[0].image.shape == (120, 160, 3)
    # the file's own size, and the size of the frames handed out, apart
    assert (src.info.width, src.info.height) == (320, 240)
    assert (src.info.frame_width, src.info.frame_height) == (160, 120)
    assert src.complete is True and src.decoded_frames == 9


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10, bytes(range(256)) * 40])
def test_garbage_is_a_clear_input_error(tmp_path: Path, content: bytes):
    p = tmp_path / "x.mp4"
    p.write_bytes(content)
    with pytest.raises(InputError):
        list(open_video(p))


def test_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="no such file"):
        open_video(tmp_path / "nope.mp4")


def test_truncated_file_keeps_decoded_frames(tmp_path: Path):
    p = write_clip(tmp_path / "c.mp4", _frames(30, 160, 120))
    data = p.read_bytes()
    q = tmp_path / "cut.mp4"
    q.write_bytes(data[: int(len(data) * 0.6)])
    try:
        frames = list(open_video(q))
    except InputError:
        return  # mp4 without its index may be unreadable: a clear error is fine
    assert 0 < len(frames) <= 30


def test_start_end_keep_that_part_with_the_files_times(tmp_path: Path):
    p = write_clip(tmp_path / "d.mp4", _frames(60), fps=20)  # 3 s
    full = list(open_video(p))
    src = open_video(p, start=1.0, end=2.0)
    part = list(src)
    want = [f for f in full if 1.0 - 1e-6 <= f.t < 2.0 - 1e-6]
    assert len(part) == len(want) == 20
    assert [f.t for f in part] == pytest.approx([f.t for f in want])
    assert all(np.array_equal(a.image, b.image) for a, b in zip(part, want, strict=True))
    assert src.complete is True  # stopped at --end, not cut off
    tail = list(open_video(p, start=2.5, stride=2))
    assert [f.t for f in tail] == pytest.approx([f.t for f in full if f.t >= 2.5 - 1e-6][::2])
    with pytest.raises(InputError, match="no video frames between"):
        list(open_video(p, start=10.0))
    for bad in ({"start": -1.0}, {"start": 2.0, "end": 1.0}, {"start": float("nan")}):
        with pytest.raises(InputError):
            open_video(p, **bad)
