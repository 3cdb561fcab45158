"""Identity continuity on the dev clips: same-person and different-person checks with the
face embedding (dlib ResNet in ONNX), and its cost.

    .venv/bin/python benchmarks/identity_eval.py [--manifest ../shared/data/manifest.csv]
        [--cache /tmp/liveness_identity_cache] [--threshold 0.6] [--json out.json]

For each clip the tracker runs over the frames (every ``--stride``-th decoded frame) and a
sample is embedded every 0.5 s, as ``IdentityAnalyser`` does live (same quality gate). Each
clip's samples (time, yaw, quality, embedding) are cached as .npz under ``--cache``.

Figures (real clips only, ``label == real``):

* same person: each clip's enrolment is the robust centroid of its first good frontal samples
  (``IdentityAnalyser``'s enrolment); every later sample of the clip must lie within the
  threshold of it. Reported per clip and overall.
* different people: every sample of clip B against the enrolment of clip A, for every ordered
  pair of clips showing different people; must lie beyond the threshold. Also clip-level
  (enrolment vs enrolment).
* same person across clips (e.g. ``dfl_Kim_Jarrey_0`` vs ``_1``): reported for information.

People: ``dfl_<Name>_<k>`` clips of one Name are one person; ``dflsample_Obama*`` are one
person; ``SAME_PERSON`` lists further groups found by looking at the clips (see README_identity).
Fake clips are embedded too and their identity signals are printed for information.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness._embedding import FaceEmbedder  # noqa: E402
from liveness._identity import IdentityOptions, good_sample, robust_centroid  # noqa: E402
from liveness._tracker import FaceTracker, TrackerOptions  # noqa: E402
from liveness._video import open_video  # noqa: E402

#: clips showing the same person that their names do not tell (checked by eye).
SAME_PERSON: tuple[tuple[str, ...], ...] = ()


def _shared() -> Path:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def person_of(clip: str) -> str:
    stem = Path(clip).stem
    for group in SAME_PERSON:
        if stem in group:
            return group[0]
    m = re.match(r"dfl_(.+)_\d+$", stem)
    if m:
        return m.group(1)
    if stem.startswith("dflsample_Obama"):
        return "Obama"
    return stem


EMBED_MS: list[float] = []


def embed_clip(path: Path, stride: int, opts: IdentityOptions, embedder: FaceEmbedder) -> dict:
    tracker = FaceTracker.from_options(TrackerOptions())
    rows: list[tuple] = []
    embs: list[np.ndarray] = []
    next_t = -1.0
    for fr in open_video(path, stride=stride):
        o = tracker.process(fr.image, fr.t, fr.index)
        if fr.t < next_t or not o.face or o.landmarks is None:
            continue
        next_t = fr.t + opts.sample_interval_s
        t0 = time.perf_counter()
        e = embedder.embed_face(fr.image, o.landmarks)
        EMBED_MS.append((time.perf_counter() - t0) * 1e3)
        q = o.quality
        rows.append((fr.t, o.pose.yaw if o.pose else np.nan, o.pose.pitch if o.pose else np.nan,
                     q.size_px if q else np.nan, q.sharpness if q else np.nan,
                     q.inside if q else np.nan, float(good_sample(o, opts))))
        embs.append(e)
    a = np.asarray(rows, np.float64).reshape(-1, 7)
    return {"t": a[:, 0], "yaw": a[:, 1], "pitch": a[:, 2], "size": a[:, 3], "sharp": a[:, 4],
            "inside": a[:, 5], "good": a[:, 6] > 0, "emb": np.asarray(embs, np.float32).reshape(-1, 128)}


def enrolment(d: dict, opts: IdentityOptions) -> np.ndarray | None:
    ok = d["good"] & (np.abs(d["yaw"]) <= opts.enroll_max_yaw)
    e = d["emb"][ok][: opts.enroll_samples]
    if len(e) < min(3, opts.enroll_samples):
        return None
    return robust_centroid(e, opts.threshold)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, default=_shared() / "manifest.csv")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/liveness_identity_cache"))
    ap.add_argument("--stride", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=None)
    ap.add_argument("--reals-only", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not args.manifest.is_file():
        raise SystemExit(f"{args.manifest}: not found (set LIVENESS_SHARED_DATA)")
    root = args.manifest.parent
    opts = IdentityOptions() if args.threshold is None else IdentityOptions(threshold=args.threshold)
    thr = opts.threshold
    with args.manifest.open() as f:
        rows = list(csv.DictReader(f))
    if args.reals_only:
        rows = [r for r in rows if r["label"] == "real"]
    rows.sort(key=lambda r: r["label"] != "real")
    args.cache.mkdir(parents=True, exist_ok=True)
    embedder = FaceEmbedder(threads=1)
    data: dict[str, dict] = {}
    for r in rows:
        key = r["path"].replace("/", "__").removesuffix(".mp4")
        cp = args.cache / f"{key}_s{args.stride}.npz"
        if cp.is_file():
            z = np.load(cp)
            d = {k: z[k] for k in z.files}
        else:
            t0 = time.perf_counter()
            d = embed_clip(root / r["path"], args.stride, opts, embedder)
            np.savez(cp, **d)
            print(f"  embedded {r['path']}: {len(d['t'])} samples in {time.perf_counter() - t0:.0f}s",
                  flush=True)
        data[r["path"]] = d

    reals = [r["path"] for r in rows if r["label"] == "real"]
    enrol = {p: enrolment(data[p], opts) for p in data}
    out: dict = {"threshold": thr, "clips": {}}

    # same person within a clip
    n_ok = n_all = 0
    print(f"\nSame person within each real clip (threshold {thr}):")
    print(f"{'clip':44s} {'samples':>7s} {'pass %':>7s} {'median d':>8s} {'max d':>6s}")
    worst = []
    for p in reals:
        d, c = data[p], enrol[p]
        if c is None:
            print(f"{p:44s}  no enrolment (too few good frontal samples)")
            continue
        dist = np.linalg.norm(d["emb"][d["good"]] - c, axis=1)
        ok = int((dist < thr).sum())
        n_ok += ok
        n_all += len(dist)
        worst.append(ok / max(len(dist), 1))
        out["clips"][p] = {"samples": len(dist), "pass": ok / max(len(dist), 1),
                           "median_d": float(np.median(dist)), "max_d": float(dist.max())}
        print(f"{p:44s} {len(dist):7d} {100 * ok / max(len(dist), 1):7.1f} {np.median(dist):8.3f} "
              f"{dist.max():6.3f}")
    same = n_ok / max(n_all, 1)
    print(f"overall: {100 * same:.2f}% of {n_all} sampled frames pass; worst clip "
          f"{100 * min(worst):.1f}%")

    # different people
    sep = tot = 0
    clip_sep = clip_tot = 0
    same_x: list[float] = []
    closest: list[tuple[float, str, str]] = []
    for a in reals:
        if enrol[a] is None:
            continue
        for b in reals:
            if a == b or enrol[b] is None:
                continue
            db = data[b]
            dist = np.linalg.norm(db["emb"][db["good"]] - enrol[a], axis=1)
            if person_of(a) == person_of(b):
                same_x.extend(dist.tolist())
                continue
            sep += int((dist >= thr).sum())
            tot += len(dist)
            dc = float(np.linalg.norm(enrol[a] - enrol[b]))
            clip_sep += dc >= thr
            clip_tot += 1
            closest.append((float(np.quantile(dist, 0.05)) if len(dist) else 9.0, a, b))
    diff = sep / max(tot, 1)
    print(f"\nDifferent people: {100 * diff:.2f}% of {tot} (sample, other clip's enrolment) pairs "
          f"told apart; clip level {clip_sep}/{clip_tot}")
    closest.sort()
    print("closest different-person clip pairs (5th percentile of sample distances):")
    for q, a, b in closest[:8]:
        print(f"  {q:.3f}  {a} vs {b}")
    if same_x:
        sx = np.asarray(same_x)
        print(f"same person across clips: {100 * (sx < thr).mean():.1f}% of {len(sx)} pairs within "
              f"threshold (median d {np.median(sx):.3f})")
    out.update({"same_person_pass": same, "same_person_n": n_all, "different_people_separated": diff,
                "different_people_n": tot, "clip_level_separated": clip_sep / max(clip_tot, 1)})

    # identity signals on every clip (information)
    from liveness._identity import replay_signals

    print(f"\n{'clip':44s} {'label':5s} {'change':>7s} {'instab':>7s}")
    sig_rows = []
    for r in rows:
        d = data[r["path"]]
        s = replay_signals(d, opts)
        sig_rows.append((r["label"], s))
        out["clips"].setdefault(r["path"], {}).update({"signals": s})
        print(f"{r['path']:44s} {r['label']:5s} {_fmt(s['identity_change'])} {_fmt(s['identity_instability'])}")
    try:
        from liveness._eval import auc

        for name in ("identity_change", "identity_instability"):
            neg = [s[name] for lab, s in sig_rows if lab == "real" and s[name] is not None]
            pos = [s[name] for lab, s in sig_rows if lab == "fake" and s[name] is not None]
            a = auc(neg, pos)
            if a is not None:
                print(f"video AUC {name}: {a:.3f} (real {len(neg)}, fake {len(pos)})")
                out[f"auc_{name}"] = a
    except Exception as exc:  # informative only
        print(f"(AUC not computed: {exc})")
    if EMBED_MS:
        print(f"\nchip + embedding: median {np.median(EMBED_MS):.1f} ms/face over {len(EMBED_MS)} faces "
              "(one thread, this run)")
        out["embed_ms_median"] = float(np.median(EMBED_MS))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def _fmt(v: float | None) -> str:
    return f"{v:7.3f}" if v is not None else "      -"


if __name__ == "__main__":
    main()
