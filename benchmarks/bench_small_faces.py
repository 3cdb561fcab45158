"""Small and distant faces: what the full-range search costs and what it finds (issue 15).

    .venv/bin/python benchmarks/bench_small_faces.py [--repeats 15] [--per-cell 40] [--json out.json]

1. **Model and detector calls** (one ONNX Runtime thread, median of ``--n`` calls, CPU time of the
   calling thread): the short- and full-range models alone, ``FaceDetector.detect`` on whole
   frames of each size, and a full-range call on one 640-px search tile.
2. **Tracker paths** (skimage's astronaut, shrunk to a 40-px face in the frame, or full size;
   medians over ``--repeats`` repeats, CPU time of this process, ms per frame):
   - *large face, tracked*: the ordinary path (mesh every frame, short-range re-detection 1/s);
   - *small face, tracked*: mesh every frame, full-range re-detection 1/s;
   - *cold-start search*: one frame, fresh tracker: short-range + the whole full-range search
     (whole frame, tiles, zoomed re-detections, mesh), what finding a small face costs once;
   - *no face in view*, 3 s at 30 fps of an empty room (the astronaut's background), with the
     full-range search (at most once per 0.5 s) and without it; the ratio is the bounded extra.
3. **Found rates** on dev frames (tests/_small_faces.py: real frames shrunk into 1920x1080 /
   1080x1920 canvases, dim variant), short-range only vs with the full-range search, per face
   height and condition, ``--per-cell`` frames each, fresh tracker per frame. Needs ../shared.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.core.registry import MODELS, ort_session  # noqa: E402
from liveness.tracking.detector import FaceDetector  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402
from tests._small_faces import CONDITIONS, FACE_HEIGHTS, Source, found, make_scene  # noqa: E402

SIZES = {"640x480": (480, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}


def median_ms(fn, n: int) -> float:
    for _ in range(3):
        fn()
    cpu = []
    for _ in range(n):
        c = time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
    return float(np.median(cpu) * 1000)


def astronaut_source() -> Source:
    from skimage import data

    img = np.ascontiguousarray(data.astronaut())
    obs = FaceTracker(TrackerOptions(keep_image=False, full_range=False)).process(img, 0.0)
    return Source("astronaut", img, obs.box.copy())


def scene(src: Source, hw: tuple[int, int], face_h: float, seed: int = 3) -> np.ndarray:
    """The astronaut at ``face_h`` in a frame of size ``hw`` (the landscape condition's recipe)."""
    return make_scene(src, face_h, "landscape", np.random.default_rng(seed), canvas_hw=hw).image


def models_part(n: int) -> dict:
    out: dict[str, float] = {}
    for name in ("face_detector", "face_detector_full"):
        sess, spec = ort_session(name, 1), MODELS[name]
        x = np.random.default_rng(0).random(spec.input_shape, dtype=np.float32)
        out[f"{name} model call"] = median_ms(lambda s=sess, x=x: s.run(None, {"input": x}), n)
    src = astronaut_source()
    short, full = FaceDetector(model="short_range"), FaceDetector(model="full_range", stretch_contrast=True)
    for label, hw in SIZES.items():
        img = scene(src, hw, 0.3 * hw[0])
        out[f"short_range detect {label}"] = median_ms(lambda img=img: short.detect(img), n)
        out[f"full_range detect {label}"] = median_ms(lambda img=img: full.detect(img), n)
    img = scene(src, (1080, 1920), 40)
    out["full_range detect, one 640-px tile of 1920x1080"] = median_ms(lambda: full.detect(img, (600, 300, 640, 640)), n)
    return out


def tracker_part(repeats: int) -> dict:
    src = astronaut_source()
    res: dict[str, dict] = {}
    for label in ("1280x720", "1920x1080"):
        hw = SIZES[label]
        large, small = scene(src, hw, 0.35 * hw[0]), scene(src, hw, 40)
        empty = np.ascontiguousarray(np.broadcast_to(src.image[5:6, 5:6], (*hw, 3)))  # the wall behind her
        rows: dict[str, list[float]] = {k: [] for k in (
            "large face, tracked", "small face, tracked", "cold-start search", "no face, with full range",
            "no face, short range only")}
        calls: dict[str, dict] = {}
        for _ in range(repeats):
            for key, img, frames, full in (
                ("large face, tracked", large, 60, True),
                ("small face, tracked", small, 60, True),
                ("no face, with full range", empty, 90, True),
                ("no face, short range only", empty, 90, False),
            ):
                tr = FaceTracker(TrackerOptions(keep_image=False, full_range=full))
                tr.process(img, 0.0)  # acquisition excluded
                c = time.process_time()
                for i in range(1, frames + 1):
                    tr.process(img, i / 30)
                rows[key].append((time.process_time() - c) * 1000 / frames)
                calls[key] = {**tr.calls, "full_searches": tr.full_searches, "frames": frames + 1}
            tr = FaceTracker(TrackerOptions(keep_image=False))
            c = time.process_time()
            obs = tr.process(small, 0.0)
            rows["cold-start search"].append((time.process_time() - c) * 1000)
            calls["cold-start search"] = {**tr.calls, "found": bool(obs.face)}
        med = {k: float(np.median(v)) for k, v in rows.items()}
        med["no face: with / without full range"] = med["no face, with full range"] / med["no face, short range only"]
        med["small / large face, tracked"] = med["small face, tracked"] / med["large face, tracked"]
        res[label] = {"ms_per_frame": med, "calls": calls}
    return res


def found_part(per_cell: int) -> dict | None:
    from tests.conftest import shared_data

    shared = shared_data()
    if shared is None:
        print("../shared/data absent: no found rates", file=sys.stderr)
        return None
    from tests._small_faces import load_sources, scenes

    sources = load_sources(shared)
    out: dict[str, dict] = {"sources": len(sources)}
    trackers = {"short range only": FaceTracker(TrackerOptions(keep_image=False, full_range=False)),
                "with full range": FaceTracker(TrackerOptions(keep_image=False))}
    for cond in CONDITIONS:
        for fh in FACE_HEIGHTS:
            cell = {}
            sc = scenes(sources, cond, fh, per_cell, seed=1)
            for name, tr in trackers.items():
                hits = 0
                for s in sc:
                    tr.reset()
                    hits += found(tr.process(s.image, 0.0), s)
                cell[name] = hits / per_cell
            out[f"{cond} {fh}px"] = cell
            print(cond, fh, cell, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--per-cell", type=int, default=40)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-found", action="store_true")
    args = ap.parse_args()
    import cv2

    cv2.setNumThreads(1)
    out = {"models_cpu_ms": models_part(args.n)}
    print(json.dumps(out, indent=2), flush=True)
    out["tracker"] = tracker_part(args.repeats)
    print(json.dumps(out["tracker"], indent=2), flush=True)
    if not args.skip_found:
        out["found"] = found_part(args.per_cell)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
