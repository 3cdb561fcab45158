"""Shared fixtures: dev-data location and clips built in code."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def shared_data() -> Path | None:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    p = Path(env) if env else ROOT.parent / "shared" / "data"
    return p if (p / "manifest.csv").is_file() else None


@pytest.fixture(scope="session")
def shared() -> Path:
    p = shared_data()
    if p is None:
        pytest.skip("../shared/data is absent (dev clips are not part of the repository)")
    return p


@pytest.fixture(scope="session")
def manifest(shared: Path) -> list[dict[str, str]]:
    with (shared / "manifest.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25, codec: str = "libx264",
               rotation: int = 0, pts: list[int] | None = None) -> Path:
    """Write RGB frames to a video file with PyAV."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p"
        if rotation:
            s.set_display_rotation(rotation)
        for i, img in enumerate(frames):
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            if pts is not None:
                fr.pts = pts[i]
                from fractions import Fraction

                fr.time_base = Fraction(1, 1000)
            for pkt in s.encode(fr):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """The package's built-in photo (parity tests against recorded model outputs use
    scikit-image's lossless original instead: see test_models.py and test_embedding.py)."""
    from liveness.testing import astronaut_photo

    return astronaut_photo()
