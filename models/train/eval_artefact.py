"""Quick video- and frame-level evaluation of the artefact detector on the dev clips.

    .venv/bin/python -m models.train.eval_artefact [--model models/onnx/artefact.onnx]

First run: tracks every clip of ``../shared/data/manifest.csv`` (every ``--stride``-th frame) and
caches the aligned 128-px crops and landmarks per clip under ``.cache/clips/`` (ignored; never
committed). Later runs only re-score the cached crops, so a new model is evaluated in seconds.
The REAL clips' caches are also a training source (``train_artefact --clips``); the FAKE clips'
caches are read by this evaluation only.

Prints video-level AUC (clip score = the analyser's summary rule over the per-frame scores),
frame-level AUC, and the same restricted to clips not used in training.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.sbi_data import shared_data  # noqa: E402
from models.train.train_artefact import auc  # noqa: E402


def manifest(data: Path) -> list[dict[str, str]]:
    with open(data / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


def clip_key(row: dict[str, str]) -> str:
    return f"{row['label']}__{Path(row['path']).stem}"


def cache_clip(data: Path, row: dict[str, str], out: Path, stride: int) -> Path:
    from liveness.sources.video import open_video
    from liveness.tracking.crop import align_crop, transform_points
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    p = out / f"{clip_key(row)}.npz"
    if p.is_file():
        return p
    tr = FaceTracker.from_options(TrackerOptions())
    ts, crops, lms, lmc = [], [], [], []
    for f in open_video(data / row["path"], stride=stride):
        obs = tr.process(f.image, f.t, f.index)
        if not obs.face:
            continue
        crop, m = align_crop(f.image, obs.landmarks, 128)
        ts.append(f.t)
        crops.append(crop)
        lms.append(obs.landmarks.astype(np.float32))
        lmc.append(transform_points(obs.landmarks, m))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(
        p, t=np.asarray(ts), crops=np.asarray(crops, np.uint8).reshape(-1, 128, 128, 3),
        landmarks=np.asarray(lms, np.float32).reshape(-1, 478, 3),
        lm_crop=np.asarray(lmc, np.float32).reshape(-1, 478, 2),
    )  # fmt: skip
    return p


def score_crops(sess, crops: np.ndarray) -> np.ndarray:  # noqa: ANN001
    out = []
    for i in range(0, len(crops), 64):
        out.append(sess.run(None, {"input": crops[i : i + 64].astype(np.float32)})[0][:, 0])
    return np.concatenate(out) if out else np.zeros(0)


def clip_summary(t: np.ndarray, p: np.ndarray, quantile: float, smooth_s: float) -> float:
    from liveness.core.analyser import ScoreSeries
    from liveness.core.types import Score

    s = ScoreSeries("artefact", quantile=quantile, smooth_s=smooth_s, min_n=1)
    for ti, v in zip(t, p, strict=True):
        s.add(Score("artefact", float(ti), float(v)))
    return float(s.summary().value) if len(s) else float("nan")


def sharpness_clip(t: np.ndarray, crops: np.ndarray, lm_crop: np.ndarray) -> tuple[float, float]:
    """``SharpnessGapAnalyser`` over the cached 128-px crops (the analyser itself measures on a
    192-px crop of the frame): (clip value, median raw log energy ratio)."""
    from liveness.core.analyser import FrameContext
    from liveness.core.types import FaceObservation
    from liveness.signals.artefact import SharpnessGapAnalyser, SharpnessGapOptions

    a = SharpnessGapAnalyser(SharpnessGapOptions(rate_hz=None, crop=128, min_face_px=0))
    lm = np.zeros((len(lm_crop), 478, 3), np.float32)
    lm[:, :, :2] = lm_crop
    for i in range(len(t)):
        obs = FaceObservation(float(t[i]), i, 128, 128, True, 1, np.zeros(4, np.float32), lm[i], 1.0, image=crops[i])
        a.update(obs, FrameContext(obs.t))
    sig = a.summary()
    d = dict(sig.details)
    return (float(sig.value) if sig.value is not None else 0.0), float(d.get("ratio_median", np.nan))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "onnx" / "artefact.onnx")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "clips")
    ap.add_argument("--stride", type=int, default=5)
    ap.add_argument("--every", type=int, default=1, help="score every n-th cached frame")
    ap.add_argument("--quantile", type=float, default=0.9)
    ap.add_argument("--smooth", type=float, default=1.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--cache-only", action="store_true")
    a = ap.parse_args(argv)

    data = shared_data()
    rows = manifest(data)
    from models.train.train_artefact import TRAIN_CLIP_PREFIXES

    paths = {}
    # the real training clips first: training can start before the evaluation clips are cached
    order = sorted(rows, key=lambda r: not (r["label"] == "real" and Path(r["path"]).stem.startswith(TRAIN_CLIP_PREFIXES)))
    for i, r in enumerate(order):
        paths[clip_key(r)] = cache_clip(data, r, a.cache, a.stride)
        print(f"[{i + 1}/{len(rows)}] cached {clip_key(r)}", flush=True, file=sys.stderr)
    if a.cache_only:
        return

    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(a.model), so, providers=["CPUExecutionProvider"])

    res = []
    fy, fs = [], []
    for r in rows:
        z = np.load(paths[clip_key(r)])
        t, crops = z["t"][:: a.every], z["crops"][:: a.every]
        logit = score_crops(sess, crops)
        p = 1 / (1 + np.exp(-logit))
        y = int(r["label"] == "fake")
        sg, ratio = sharpness_clip(t, crops, z["lm_crop"][:: a.every])
        seen = y == 0 and Path(r["path"]).stem.startswith(TRAIN_CLIP_PREFIXES)
        res.append({
            "clip": r["path"], "label": r["label"], "attack": r["attack"], "in_training": seen,
            "frames": int(len(p)), "score": clip_summary(t, p, a.quantile, a.smooth),
            "mean": float(p.mean()) if len(p) else None,
            "median": float(np.median(p)) if len(p) else None,
            "sharpness_gap": sg, "hf_ratio_median": ratio,
        })  # fmt: skip
        fy.append(np.full(len(p), y))
        fs.append(p)
    y = np.array([r["label"] == "fake" for r in res])
    sc = np.array([r["score"] for r in res])
    unseen = np.array([not r["in_training"] for r in res])
    fy_, fs_ = np.concatenate(fy), np.concatenate(fs)
    summary = {
        "video_auc": auc(y, sc),
        "video_auc_mean": auc(y, np.array([r["mean"] for r in res])),
        "video_auc_unseen_reals": auc(y[unseen], sc[unseen]),
        "frame_auc": auc(fy_, fs_),
        "sharpness_gap_video_auc": auc(y, np.array([r["sharpness_gap"] for r in res])),
        "hf_ratio_fixed_threshold_video_auc": auc(y, -np.array([r["hf_ratio_median"] for r in res])),
        "n_fake": int(y.sum()), "n_real": int((~y).sum()), "n_real_unseen": int((~y & unseen).sum()),
        "frames": int(len(fs_)),
    }  # fmt: skip
    for r in sorted(res, key=lambda r: -r["score"]):
        print(f"{r['label']:4} {r['score']:.3f} {r['median']:.3f} {'T' if r['in_training'] else ' '} {r['clip']}")
    print(json.dumps(summary, indent=1))
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "clips": res}, indent=1))


if __name__ == "__main__":
    main()
