"""A hypothesis-chosen subset of the media fuzzer (benchmarks/fuzz_media.py runs thousands):
every mutated file ends as a clear InputError or as decoded frames / a review, never another
exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liveness import InputError
from liveness.sources.video import MAX_SIDE, open_video
from liveness.testing.fuzz import MUTATIONS, make_seeds, mutate

_SEEDS: dict[str, bytes] = {}


def _seeds() -> dict[str, bytes]:
    if not _SEEDS:
        _SEEDS.update(make_seeds())
    return _SEEDS


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.integers(min_value=0, max_value=10**6))
def test_mutated_media_is_an_input_error_or_frames(case: int) -> None:
    with tempfile.TemporaryDirectory() as d:
        path, desc = mutate(_seeds(), case, Path(d))
        try:
            frames = list(open_video(path, max_side=320))
        except InputError as exc:
            assert str(exc).startswith(str(path)), desc  # the message names the file
        else:
            assert frames and all(f.image.ndim == 3 and f.image.dtype.name == "uint8" for f in frames), desc
            assert all(b.t > a.t for a, b in zip(frames, frames[1:], strict=False)), desc


def test_every_mutation_kind_is_drawn() -> None:
    kinds = {mutate(_seeds(), c, Path(tempfile.mkdtemp()))[1].split()[0] for c in range(len(MUTATIONS))}
    assert kinds == set(MUTATIONS)


def test_absurd_declared_size_is_refused_before_decoding(tmp_path: Path) -> None:
    body = _seeds()["raw.y4m"].split(b"\n", 1)[1]
    p = tmp_path / "huge.y4m"
    p.write_bytes(f"YUV4MPEG2 W{MAX_SIDE * 2} H{MAX_SIDE} F15:1 Ip A1:1 C420jpeg\n".encode() + body)
    with pytest.raises(InputError, match="declared frame size"):
        open_video(p)


def test_review_of_a_damaged_file_is_a_review_or_input_error(tmp_path: Path) -> None:
    from liveness.apps.review import ReviewOptions, review

    data = _seeds()["h264.mp4"]
    p = tmp_path / "cut.mp4"
    p.write_bytes(data[: len(data) * 2 // 3])
    try:
        doc = review(p, ReviewOptions(max_side=160))
    except InputError:
        return
    assert doc.timeline and doc.source["complete"] is False  # a cut file says so
