"""Video-level AUC of the geometric analysers (pose_consistency, face_slip, face_smoothness) on the dev set,
on the paired DeepFaceLive clips (same footage, real vs swapped) and overall.

Tracking is the slow part, so each clip's tracker output (landmarks, boxes, quality) is cached
as an .npz under ``--cache`` and the analysers are replayed over the decoded frames; change an
analyser and re-run in a minute or two.

    .venv/bin/python benchmarks/analyser_eval.py [--manifest ../shared/data/manifest.csv]
        [--cache /tmp/liveness_analyser_cache] [--tracker ours|mediapipe] [--json out.json]

``--tracker mediapipe`` uses MediaPipe's legacy face mesh (refined, 478 points; the optional
``benchmark`` extra) instead of ours - same landmark topology - to compare trackers.
Besides the analysers' clip values it prints the per-clip statistics the analysers report in
``Signal.details`` and "pair wins": the fraction of DFL pairs where the swapped half scores
above its own original.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness import FaceObservation, FaceQuality  # noqa: E402
from liveness.apps.eval import auc  # noqa: E402
from liveness.core.analyser import FrameContext  # noqa: E402
from liveness.signals.face_slip import FaceSlipAnalyser  # noqa: E402
from liveness.signals.pose_consistency import PoseConsistencyAnalyser  # noqa: E402
from liveness.signals.quality import QualityMonitor  # noqa: E402
from liveness.sources.video import open_video  # noqa: E402


def _shared() -> Path:
    import os

    env = os.environ.get("LIVENESS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def track_clip(path: Path, tracker_kind: str) -> dict[str, np.ndarray]:
    """Per-frame tracker output of one clip as arrays (NaN where no face)."""
    t, faces, boxes, lms, q = [], [], [], [], []
    w = h = 0
    if tracker_kind == "ours":
        from liveness.tracking.tracker import FaceTracker, TrackerOptions

        tracker = FaceTracker.from_options(TrackerOptions())
        for fr in open_video(path):
            o = tracker.process(fr.image, fr.t, fr.index)
            h, w = fr.image.shape[:2]
            t.append(fr.t)
            faces.append(o.faces)
            if o.face and o.landmarks is not None and o.box is not None:
                boxes.append(o.box)
                lms.append(o.landmarks)
                qq = o.quality
                q.append([qq.size_px, qq.sharpness, qq.brightness, qq.inside] if qq else [np.nan] * 4)
            else:
                boxes.append(np.full(4, np.nan))
                lms.append(np.full((478, 3), np.nan))
                q.append([np.nan] * 4)
    else:
        import mediapipe as mp  # optional benchmark extra

        fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=3,
                                             refine_landmarks=True)
        from liveness.tracking.tracker import face_quality

        for fr in open_video(path):
            img = fr.image
            h, w = img.shape[:2]
            res = fm.process(img)
            t.append(fr.t)
            if res.multi_face_landmarks:
                a = np.array([[p.x * w, p.y * h, p.z * w] for p in res.multi_face_landmarks[0].landmark],
                             np.float32)
                lo, hi = a[:468, :2].min(0), a[:468, :2].max(0)
                box = np.r_[lo, hi - lo].astype(np.float32)
                qq = face_quality(img, box)
                faces.append(len(res.multi_face_landmarks))
                boxes.append(box)
                lms.append(a)
                q.append([qq.size_px, qq.sharpness, qq.brightness, qq.inside])
            else:
                faces.append(0)
                boxes.append(np.full(4, np.nan))
                lms.append(np.full((478, 3), np.nan))
                q.append([np.nan] * 4)
    return {"t": np.asarray(t, np.float64), "faces": np.asarray(faces, np.int32),
            "box": np.asarray(boxes, np.float32), "lm": np.asarray(lms, np.float32),
            "quality": np.asarray(q, np.float32), "wh": np.array([w, h])}


COST_MS: dict[str, list[float]] = {}


def replay(path: Path, cache: dict[str, np.ndarray]) -> dict[str, dict]:
    """Run fresh analysers over the clip's frames with the cached tracker output (their
    per-frame ``update`` wall time goes to ``COST_MS``)."""
    analysers = [PoseConsistencyAnalyser(), FaceSlipAnalyser(), QualityMonitor()]  # slip owns face_smoothness
    n = len(cache["t"])
    for i, fr in enumerate(open_video(path)):
        if i >= n:
            break
        h, w = fr.image.shape[:2]
        t = float(cache["t"][i])
        lm = cache["lm"][i]
        if np.isfinite(lm).all():
            qq = cache["quality"][i]
            quality = FaceQuality(*map(float, qq)) if np.isfinite(qq).all() else None
            obs = FaceObservation(t, i, w, h, True, int(cache["faces"][i]), box=cache["box"][i],
                                  landmarks=lm, quality=quality, image=fr.image)
        else:
            obs = FaceObservation(t, i, w, h, False, int(cache["faces"][i]), image=fr.image)
        for a in analysers:
            t0 = time.perf_counter()
            a.update(obs, FrameContext(t))
            COST_MS.setdefault(a.name, []).append((time.perf_counter() - t0) * 1e3)
    return {name: sig.to_dict() for a in analysers for name, sig in a.signals().items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--manifest", type=Path, default=_shared() / "manifest.csv")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/liveness_analyser_cache"))
    ap.add_argument("--tracker", choices=["ours", "mediapipe"], default="ours")
    ap.add_argument("--limit", type=int, default=0, help="first N clips only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    if not args.manifest.is_file():
        print(f"no manifest at {args.manifest}", file=sys.stderr)
        return 2
    root = args.manifest.parent
    rows = list(csv.DictReader(args.manifest.open()))
    if args.limit:
        rows = rows[: args.limit]
    cdir = args.cache / args.tracker
    cdir.mkdir(parents=True, exist_ok=True)
    clips = []
    for k, r in enumerate(rows):
        key = r["path"].replace("/", "__").rsplit(".", 1)[0]
        cf = cdir / f"{key}.npz"
        if cf.is_file():
            with np.load(cf) as z:
                cache = {name: z[name] for name in z.files}
        else:
            cache = track_clip(root / r["path"], args.tracker)
            np.savez_compressed(cf, **cache)
        sig = replay(root / r["path"], cache)
        clips.append({"path": r["path"], "label": r["label"], "attack": r["attack"],
                      "pair": r["pair"], "signals": sig})
        vals = " ".join(f"{n}={s['value']}" for n, s in sig.items())
        print(f"[{k + 1}/{len(rows)}] {r['label']:4s} {r['path']}: {vals}", flush=True)

    out = {"tracker": args.tracker, "clips": clips, "metrics": {}}
    names = sorted({(n, d) for c in clips for n, s in c["signals"].items()
                    for d in ["value", *s["details"]]})
    print(f"\n{'signal / statistic':44s} {'AUC all':>8s} {'AUC dfl':>8s} {'pair wins':>10s}")
    for n, d in names:
        def val(c: dict, n: str = n, d: str = d) -> float:
            s = c["signals"][n]
            v = s["value"] if d == "value" else s["details"].get(d)
            return float("nan") if v is None else float(v)

        real = [val(c) for c in clips if c["label"] == "real"]
        fake = [val(c) for c in clips if c["label"] == "fake"]
        rd = [val(c) for c in clips if c["label"] == "real" and c["pair"].startswith("dfl_")]
        fd = [val(c) for c in clips if c["label"] == "fake" and c["pair"].startswith("dfl_")]
        pairs: dict[str, dict[str, float]] = {}
        for c in clips:
            if c["pair"].startswith("dfl_"):
                pairs.setdefault(c["pair"], {})[c["label"]] = val(c)
        wins = [p["fake"] > p["real"] for p in pairs.values()
                if len(p) == 2 and np.isfinite(p["fake"]) and np.isfinite(p["real"])]
        m = {"auc_all": auc(real, fake), "auc_dfl": auc(rd, fd),
             "pair_wins": float(np.mean(wins)) if wins else None, "pairs": len(wins),
             "n_real": len(real), "n_fake": len(fake)}
        out["metrics"][f"{n}.{d}"] = m

        def f(x: float | None) -> str:
            return "   -   " if x is None else f"{x:8.3f}"

        print(f"{n + '.' + d:44s} {f(m['auc_all'])} {f(m['auc_dfl'])} {f(m['pair_wins'])} ({len(wins)})")
    out["cost_ms"] = {k: {"median": float(np.median(v)), "p95": float(np.quantile(v, 0.95)),
                          "frames": len(v)} for k, v in COST_MS.items()}
    print("\nper-frame update() cost, ms: " + ", ".join(
        f"{k} median {v['median']:.2f} p95 {v['p95']:.2f}" for k, v in out["cost_ms"].items()))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
