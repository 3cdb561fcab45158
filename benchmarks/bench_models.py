"""Per-call cost of the face models, one ONNX Runtime thread, median of N calls.

    .venv/bin/python benchmarks/bench_models.py [--n 50]

Times the raw model calls (session.run on a prepared input) and the full wrapper calls
(``FaceDetector.detect`` on a 640x480 frame incl. letterbox/decode/NMS; ``FaceMesh.run`` incl.
the warpAffine crop and mapping back) on skimage's astronaut photo.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from liveness.core.registry import MODELS, ort_session  # noqa: E402
from liveness.tracking.detector import FaceDetector  # noqa: E402
from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks  # noqa: E402


def median_ms(fn, n: int) -> tuple[float, float]:
    """(wall, cpu) medians in ms. The CPU time of the calling thread (ONNX Runtime runs a
    one-thread session on it) is robust to other processes competing for the cores."""
    for _ in range(5):
        fn()
    wall, cpu = [], []
    for _ in range(n):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - t)
    return float(np.median(wall) * 1000), float(np.median(cpu) * 1000)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    args = ap.parse_args()
    img = data.astronaut()
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[:, 64:576] = cv2.resize(img, (512, 480))
    out = {}
    for name in ("face_detector", "face_mesh"):
        sess = ort_session(name, 1)
        spec = MODELS[name]
        x = np.random.default_rng(0).random(spec.input_shape, dtype=np.float32)
        out[f"{name} model"] = median_ms(lambda s=sess, x=x, k=spec.input_name: s.run(None, {k: x}), args.n)
    det = FaceDetector(threads=1)
    mesh = FaceMesh(threads=1)
    d = det.detect(frame)[0]
    roi = roi_from_landmarks(mesh.run(frame, roi_from_detection(d)).landmarks)
    out["FaceDetector.detect 640x480"] = median_ms(lambda: det.detect(frame), args.n)
    out["FaceMesh.run"] = median_ms(lambda: mesh.run(frame, roi), args.n)
    print(json.dumps({k: {"wall_ms": round(v[0], 3), "cpu_ms": round(v[1], 3)} for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
