"""Avatar render speed: median ms per 640x480 frame on one thread (OpenCV and BLAS pinned to 1),
over a scripted clip with turns, blinks, mouth, smile, hand and lean.

    python benchmarks/bench_avatar.py [--frames 150] [--size 640x480]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from liveness.testing import Avatar, AvatarScript  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", default="640x480")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    w, h = (int(v) for v in a.size.split("x"))
    t0 = time.perf_counter()
    av = Avatar.astronaut(size=(w, h))
    build = time.perf_counter() - t0
    script = AvatarScript.parse("turn_left@0.5 blink_twice@2.5 open_mouth@3.5 smile@5.5 "
                                "cover_half_face@7.5 lean_closer@9.5 turn_right@11.5")
    ms, cpu = [], []
    for i in range(a.frames):
        s = script.state_at(i * 13.0 / a.frames)
        t, c = time.perf_counter(), time.process_time()
        av.render(s)
        ms.append((time.perf_counter() - t) * 1e3)
        cpu.append((time.process_time() - c) * 1e3)
    med, cmed = float(np.median(ms)), float(np.median(cpu))
    # CPU time is the figure that holds on a shared machine (one thread: CPU ms = wall ms when idle)
    print(f"avatar {w}x{h}: build {build:.2f} s (incl. mesh on the photo); render median CPU "
          f"{cmed:.1f} ms/frame ({1000 / cmed:.0f} fps on one core), wall median {med:.1f} ms, "
          f"over {a.frames} frames; load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
