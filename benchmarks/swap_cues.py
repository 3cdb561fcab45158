"""Model-free temporal cues of real-time face swaps, measured on the dev clips (a diagnostic).

    .venv/bin/python benchmarks/swap_cues.py [--frames 150]

A swapper such as DeepFaceLive redraws and colour-matches the inner face frame by frame, so the
inner face could flicker against the head around it. Per frame (first ``--frames`` of every clip
in ``../shared/data/manifest.csv``, the real tracker): the mean Lab colour of the eroded face hull
minus that of a ring just outside it, and the log Laplacian energy inside minus the ring's. Clip
scores: the RMS of the colour difference's temporal high-pass (minus a 7-frame median), the mean
frame-to-frame step of the colour difference, and the std of the sharpness difference's
high-pass. Prints the video AUC (fakes vs reals) and how often a swap scores above its original.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import cv2
import numpy as np
from scipy.signal import medfilt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clip_cues(path: Path, frames: int) -> tuple[float, float, float]:
    from liveness.sources.video import open_video
    from liveness.tracking.crop import face_oval
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    oval = face_oval()
    tr = FaceTracker(TrackerOptions())
    diffs, sharp = [], []
    for k, f in enumerate(open_video(path)):
        if k >= frames:
            break
        o = tr.process(f.image, f.t, f.index)
        if not o.face:
            continue
        x, y, w, h = o.box
        pad = int(0.35 * max(w, h))
        x0, y0 = max(0, int(x) - pad), max(0, int(y) - pad)
        x1, y1 = min(f.image.shape[1], int(x + w) + pad), min(f.image.shape[0], int(y + h) + pad)
        sub = f.image[y0:y1, x0:x1]
        m = np.zeros(sub.shape[:2], np.uint8)
        cv2.fillConvexPoly(m, cv2.convexHull(np.round(o.landmarks[oval, :2] - [x0, y0]).astype(np.int32)), 1)
        s = max(3, int(0.06 * max(w, h)))
        kernel = np.ones((2 * s + 1, 2 * s + 1), np.uint8)
        inner = cv2.erode(m, kernel).astype(bool)
        ring = (cv2.dilate(m, kernel) - m).astype(bool)
        if inner.sum() < 20 or ring.sum() < 20:
            continue
        lab = cv2.cvtColor(sub, cv2.COLOR_RGB2LAB).astype(np.float32)
        diffs.append(lab[inner].mean(0) - lab[ring].mean(0))
        lap = np.abs(cv2.Laplacian(cv2.cvtColor(sub, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F))
        sharp.append(np.log(lap[inner].mean() + 1) - np.log(lap[ring].mean() + 1))
    if len(diffs) < 20:
        return (np.nan, np.nan, np.nan)
    d, sh = np.asarray(diffs), np.asarray(sharp)
    hp = np.stack([d[:, c] - medfilt(d[:, c], 7) for c in range(3)], 1)[3:-3]
    return (float(np.sqrt((hp**2).mean(0)).sum()), float(np.abs(np.diff(d, axis=0)).mean()),
            float(np.std((sh - medfilt(sh, 7))[3:-3])))


def main() -> None:
    from liveness.apps.eval import auc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    a = ap.parse_args()
    data = ROOT.parent / "shared" / "data"
    if not (data / "manifest.csv").is_file():
        raise SystemExit(f"needs the dev data at {data}")
    cv2.setNumThreads(1)
    rows = list(csv.DictReader(open(data / "manifest.csv", newline="")))
    res = {(Path(r["path"]).stem, r["label"]): clip_cues(data / r["path"], a.frames) for r in rows}
    labels = np.array([lab == "fake" for (_, lab) in res])
    names = ("colour-difference flicker (high-pass RMS)", "colour-difference frame step", "sharpness-gap flicker")
    print("| cue | video AUC | swap above its original |\n|---|---|---|")
    for j, name in enumerate(names):
        v = np.array([x[j] for x in res.values()])
        ok = np.isfinite(v)
        wins = [res[(st, "fake")][j] > res[(st, "real")][j] for (st, lab) in res if lab == "fake" and (st, "real") in res]
        print(f"| {name} | {auc(v[ok & ~labels], v[ok & labels]):.3f} | {sum(wins)}/{len(wins)} |")


if __name__ == "__main__":
    main()
