"""Counting the other faces (issue 15, item 6): the cost of the full-range count per frame, and
what it finds, on a 3x3 call gallery at 1920x1080 (the first frames of nine real dev clips) and
on one face filling a 1080p frame (the first of them, resized).

    python benchmarks/bench_several_faces.py --seconds 6

CPU ms per frame (one ONNX Runtime thread, OpenCV single-threaded), the tracker run at 15 fps
over the same still frame with ``count_full_range`` off and on; the faces it reports.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.sources.video import open_video  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402


def frames(data: Path) -> dict[str, np.ndarray]:
    with (data / "manifest.csv").open(newline="") as f:
        real = [r["path"] for r in csv.DictReader(f) if r["label"] == "real"]
    firsts = [next(iter(open_video(data / c))).image for c in real[:40:4][:9]]
    small = [cv2.resize(t, (640, 360), interpolation=cv2.INTER_AREA) for t in firsts]
    gallery = np.concatenate([np.concatenate(small[3 * r:3 * r + 3], 1) for r in range(3)], 0)
    return {"gallery 3x3 1080p": gallery,
            "one face 1080p": cv2.resize(firsts[0], (1920, 1080), interpolation=cv2.INTER_LINEAR)}


def run(img: np.ndarray, count: bool, seconds: float) -> dict[str, float]:
    ft = FaceTracker(TrackerOptions(count_full_range=count))
    cpu, faces = [], []
    for i in range(int(seconds * 15)):
        c = time.process_time()
        o = ft.process(img, i / 15, i)
        cpu.append((time.process_time() - c) * 1e3)
        faces.append(o.faces)
    return {"cpu_ms_mean": round(float(np.mean(cpu[1:])), 2), "cpu_ms_median": round(float(np.median(cpu[1:])), 2),
            "faces_min": int(min(faces)), "faces_max": int(max(faces)), "full_range_calls": ft.calls["full_range"]}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seconds", type=float, default=6.0)
    a = ap.parse_args()
    cv2.setNumThreads(1)
    out = {name: {f"count_{'on' if c else 'off'}": run(img, c, a.seconds) for c in (False, True)}
           for name, img in frames(a.data).items()}
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
