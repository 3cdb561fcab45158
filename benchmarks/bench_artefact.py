"""Cost of the swap detector (``artefact``) per face: chip + mask cut and ONNX inference, one ORT thread.

    python benchmarks/bench_artefact.py [--repeats 7] [--n 200] [--model PATH]

Frames: the astronaut photo (skimage) at 640x480 and 1280x720 with a face-mesh landmark set
(from the converted mesh when it is installed, else a synthetic one: the crop cost does not depend
on where the points are). Reports the median over repeats of the per-face mean (ms) for the cut
(``face_chip`` + ``chip_mask``),
the inference and both (wall clock), the same pair as CPU time of the calling thread (ONNX Runtime
with one intra-op thread computes on the caller's thread, so this stays meaningful on a machine
shared with other jobs, where wall-clock time counts the waits), and the model-free
sharpness-gap cue beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.signals.artefact import hf_energy_ratio  # noqa: E402
from liveness.signals.embedding import face_chip  # noqa: E402
from liveness.signals.swap_chip import chip_mask  # noqa: E402
from liveness.tracking.crop import CROP_TEMPLATE, align_crop, transform_points  # noqa: E402


def _frame_and_landmarks(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import astronaut

    img = np.ascontiguousarray(astronaut())
    try:
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks

        frame = cv2.resize(img, (w, h))
        d = max(FaceDetector(threads=1).detect(frame), key=lambda d: d.score)
        mesh = FaceMesh(threads=1)
        lm = mesh.run(frame, roi_from_detection(d)).landmarks
        lm = mesh.run(frame, roi_from_landmarks(lm)).landmarks
        return frame, lm
    except Exception:
        frame = cv2.resize(img, (w, h))
        rng = np.random.default_rng(0)
        side = 0.5 * h
        lm = np.zeros((478, 3), np.float32)
        lm[:, :2] = rng.uniform(0.3, 0.7, (478, 2)) * side + [w / 2 - side / 2, h / 2 - side / 2]
        key = CROP_TEMPLATE * side + [w / 2 - side / 2, h / 2 - side / 2]
        for ix, p in zip(((33, 133), (362, 263), (1,), (61,), (291,)), key, strict=True):
            lm[list(ix), :2] = p
        return frame, lm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--model", type=Path, default=None, help="ONNX file (default: the registry's)")
    a = ap.parse_args()
    cv2.setNumThreads(1)  # one thread for OpenCV too

    import onnxruntime as ort

    if a.model is None:
        from liveness.core.registry import ort_session

        sess = ort_session("artefact", 1)
    else:
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(a.model), so, providers=["CPUExecutionProvider"])

    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| frame | cut ms | inference ms | cut+inference ms (wall) | cut+inference ms (CPU time) | sharpness-gap ms |")
    print("|---|---|---|---|---|---|")
    for w, h in ((640, 480), (1280, 720)):
        frame, lm = _frame_and_landmarks(w, h)
        chip = np.empty((150, 150, 3), np.uint8)
        crop192 = np.empty((192, 192, 3), np.uint8)
        x = np.empty((1, 150, 150, 3), np.float32)
        m = np.empty((1, 150, 150), np.float32)
        box = (0.0, 0.0, float(w), float(h))

        def cut(frame=frame, lm=lm, box=box, chip=chip, m=m, x=x) -> None:  # noqa: ANN001
            face_chip(frame, lm, out=chip)
            chip_mask(lm, box, out=m[0])
            x[0] = chip

        for _ in range(20):  # warm-up
            cut()
            sess.run(None, {"chip": x, "mask": m})
        res = {k: [] for k in ("crop", "inf", "sharp", "cpu")}
        for _ in range(a.repeats):
            tc = ti = ts = 0.0
            c0 = time.thread_time()
            for _ in range(a.n):
                t0 = time.perf_counter()
                cut()
                t1 = time.perf_counter()
                sess.run(None, {"chip": x, "mask": m})
                t2 = time.perf_counter()
                tc, ti = tc + t1 - t0, ti + t2 - t1
            res["cpu"].append((time.thread_time() - c0) / a.n * 1e3)
            for _ in range(a.n):
                t2 = time.perf_counter()
                _, mm = align_crop(frame, lm, 192, out=crop192)
                hf_energy_ratio(crop192, transform_points(lm, mm))
                ts += time.perf_counter() - t2
            res["crop"].append(tc / a.n * 1e3)
            res["inf"].append(ti / a.n * 1e3)
            res["sharp"].append(ts / a.n * 1e3)
        med = {k: float(np.median(v)) for k, v in res.items()}
        tot = float(np.median(np.add(res["crop"], res["inf"])))
        print(f"| {w}x{h} | {med['crop']:.2f} | {med['inf']:.2f} | {tot:.2f} | {med['cpu']:.2f} | {med['sharp']:.2f} |")


if __name__ == "__main__":
    main()
