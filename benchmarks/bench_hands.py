"""Per-call cost of the HandTracker (issue 15), lite and full models, 640x480 and 1280x720.

    .venv/bin/python benchmarks/bench_hands.py [--n 40] [--json out.json]

One ONNX Runtime thread, OpenCV single-threaded; medians of ``--n`` calls of the CPU time of the
calling thread (the machine is shared; wall time is inflated by other jobs). Rows:

- the models alone (``session.run`` on a prepared input);
- ``process`` from scratch (``reset()`` before each call): the palm search on the whole frame and
  the landmark model on each hand found;
- ``process`` in the window around the face (``region_around(face_box)``, 3x the face);
- ``process`` following the previous call's hands (calls 1/30 s apart): landmarks only while
  ``max_hands`` hands are held (``max_hands=1`` here), else the palm search too;
- the face tracker's per-frame cost on the same frames, for scale.

Frames: the dev frame with a hand on the cheek (``hand_frames.py``, read from ../shared, never
stored), resized to each size; without ../shared, skimage's astronaut (no hand: the palm search
runs and finds nothing, the landmark rows are then the model alone).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "models" / "convert"))

from liveness.core.registry import MODELS, ort_session  # noqa: E402
from liveness.tracking.hands import HandOptions, HandTracker, region_around  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402

SIZES = {"640x480": (640, 480), "1280x720": (1280, 720)}


def median_ms(fn, n: int) -> float:
    for _ in range(3):
        fn()
    cpu = []
    for _ in range(n):
        c = time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
    return float(np.median(cpu) * 1000)


def source_frame() -> tuple[np.ndarray, str]:
    from tests.conftest import shared_data

    shared = shared_data()
    if shared is not None:
        from hand_frames import HAND_FRAMES, read_frame

        f = next(f for f in HAND_FRAMES if "Silwan" in f.clip)
        return read_frame(shared / f.clip, f.index), f"{f.clip} frame {f.index}"
    from skimage import data

    return np.ascontiguousarray(data.astronaut()), "astronaut (no hand)"


def fit(img: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Letterbox ``img`` into a black frame of size ``wh`` (aspect kept)."""
    w, h = wh
    s = min(w / img.shape[1], h / img.shape[0])
    small = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
    out = np.zeros((h, w, 3), np.uint8)
    y, x = (h - small.shape[0]) // 2, (w - small.shape[1]) // 2
    out[y : y + small.shape[0], x : x + small.shape[1]] = small
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    img, label = source_frame()
    out: dict = {"frame": label, "models_cpu_ms": {}, "calls_cpu_ms": {}}
    for name in ("palm_detector_lite", "palm_detector_full", "hand_landmark_lite", "hand_landmark_full"):
        sess, spec = ort_session(name, 1), MODELS[name]
        x = np.random.default_rng(0).random(spec.input_shape, dtype=np.float32)
        out["models_cpu_ms"][name] = median_ms(lambda s=sess, x=x: s.run(None, {"input": x}), args.n)
    for size, wh in SIZES.items():
        frame = fit(img, wh)
        face = FaceTracker(TrackerOptions(keep_image=False))
        obs = face.process(frame, 0.0)
        t = [1.0]

        def track_face(face=face, frame=frame, t=t) -> None:
            t[0] += 1 / 30
            face.process(frame, t[0])

        row: dict[str, float | int] = {"face tracker, per frame": median_ms(track_face, args.n)}
        region = region_around(obs.box) if obs.face else None
        for model in ("lite", "full"):
            ht = HandTracker(HandOptions(model=model, max_hands=1))
            clock = [10.0]

            def fresh(ht=ht, frame=frame, clock=clock, region=None) -> None:
                ht.reset()
                clock[0] += 1.0
                ht.process(frame, clock[0], region=region)

            def follow(ht=ht, frame=frame, clock=clock) -> None:
                clock[0] += 1 / 30
                ht.process(frame, clock[0])

            ht.reset()
            row[f"{model}: hands found"] = len(ht.process(frame, 1.0).hands)
            row[f"{model}: process, whole frame, from scratch"] = median_ms(fresh, args.n)
            if region is not None:
                row[f"{model}: process, around the face, from scratch"] = median_ms(
                    lambda f=fresh, r=region: f(region=r), args.n)
            ht.reset()
            clock[0] += 1.0
            ht.process(frame, clock[0])
            row[f"{model}: process, following the previous call"] = median_ms(follow, args.n)
            calls0 = dict(ht.calls)
            for _ in range(30):
                follow()
            row[f"{model}: palm searches in 30 following calls"] = ht.calls["palm"] - calls0["palm"]
        out["calls_cpu_ms"][size] = row
        print(size, json.dumps(row, indent=1), flush=True)
    print(json.dumps(out["models_cpu_ms"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
