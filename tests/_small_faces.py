"""Small and difficult faces built from real dev frames (shared by tests/tracking/test_small_faces.py and
benchmarks/bench_small_faces.py).

A dev frame (``../shared/data/video/real``, read at run time, never stored) is shrunk so that its
face is ``face_h`` pixels high (the face mesh's forehead-to-chin extent, measured by the tracker on
the full-size frame) and placed at a random position in a large canvas: 1920x1080 landscape or
1080x1920 portrait. The rest of the canvas continues the frame's own edges outward (replicated
border): the room's colours, no invented texture and no second face. ``dark`` multiplies the
canvas by 0.3 and adds Gaussian noise (sigma 3 grey levels), a dim room on a webcam.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CONDITIONS = {
    "landscape": ((1080, 1920), False),
    "dark": ((1080, 1920), True),
    "portrait": ((1920, 1080), False),
}
FACE_HEIGHTS = (40, 60, 80, 120)
DARK_GAIN = 0.3
DARK_NOISE = 3.0


@dataclass(frozen=True)
class Source:
    clip: str
    image: np.ndarray  # RGB frame at its own size
    box: np.ndarray  # face box (x, y, w, h) from the mesh on that frame
    landmarks: np.ndarray | None = None  # the mesh's (478, 3) landmarks on that frame


@dataclass(frozen=True)
class Scene:
    image: np.ndarray
    box: np.ndarray  # where the face is in the canvas (x, y, w, h)
    clip: str
    landmarks: np.ndarray | None = None  # the source's landmarks moved into the canvas (x, y)


def load_sources(shared: Path, frame_index: int = 5) -> list[Source]:
    """Frame ``frame_index`` of every real dev clip whose face the tracker finds at full size."""
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    with (shared / "manifest.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["label"] == "real"]
    tr = FaceTracker(TrackerOptions(keep_image=False, full_range=False))
    out = []
    for r in rows:
        for fr in open_video(shared / r["path"]):
            if fr.index < frame_index:
                continue
            tr.reset()
            obs = tr.process(fr.image, 0.0)
            if obs.face:
                out.append(Source(r["path"], np.ascontiguousarray(fr.image), obs.box.copy(), obs.landmarks.copy()))
            break
    return out


def make_scene(src: Source, face_h: float, condition: str, rng: np.random.Generator,
               canvas_hw: tuple[int, int] | None = None) -> Scene:
    """``src`` at face height ``face_h`` in the condition's canvas (or one of ``canvas_hw``)."""
    (ch, cw), dark = CONDITIONS[condition]
    if canvas_hw is not None:
        ch, cw = canvas_hw
    s = face_h / float(src.box[3])
    small = cv2.resize(src.image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    sh, sw = min(small.shape[0], ch), min(small.shape[1], cw)
    small = small[:sh, :sw]
    x, y = int(rng.integers(0, cw - sw + 1)), int(rng.integers(0, ch - sh + 1))
    canvas = cv2.copyMakeBorder(small, y, ch - sh - y, x, cw - sw - x, cv2.BORDER_REPLICATE)
    if dark:
        noise = rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(DARK_NOISE)
        canvas = np.clip(canvas.astype(np.float32) * np.float32(DARK_GAIN) + noise, 0, 255).astype(np.uint8)
    box = np.array([src.box[0] * s + x, src.box[1] * s + y, src.box[2] * s, src.box[3] * s], np.float32)
    lm = None if src.landmarks is None else src.landmarks[:, :2] * s + np.array([x, y], np.float32)
    return Scene(canvas, box, src.clip, lm)


def found(obs: object, scene: Scene) -> bool:
    """The tracker's face is the placed one: centre within half a face height, size within
    a factor 1.5."""
    if not getattr(obs, "face", False):
        return False
    b, g = obs.box, scene.box  # type: ignore[attr-defined]
    dc = np.abs((b[:2] + b[2:] / 2) - (g[:2] + g[2:] / 2))
    return bool(np.all(dc < 0.5 * g[3]) and 1 / 1.5 < b[3] / g[3] < 1.5)


def scenes(sources: list[Source], condition: str, face_h: float, n: int, seed: int = 0) -> list[Scene]:
    """``n`` scenes, sources taken in turn (a different start per size and condition)."""
    rng = np.random.default_rng([seed, int(face_h), list(CONDITIONS).index(condition)])
    start = int(rng.integers(0, len(sources)))
    return [make_scene(sources[(start + 7 * i) % len(sources)], face_h, condition, rng) for i in range(n)]
