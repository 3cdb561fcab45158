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

People: every real clip shows its own person except the groups in ``SAME_PERSON`` (checked by
eye; the ``dfl_<Name>`` prefix is the swap model's name, not the person in the real half).
Fake clips are embedded too and their identity signals are printed for information.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.signals.embedding import FaceEmbedder  # noqa: E402
from liveness.signals.identity import IdentityAnalyser, IdentityOptions, good_sample  # noqa: E402
from liveness.sources.video import open_video  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402

#: Clips showing the same person, checked by eye on a contact sheet of all real clips. The
#: ``dfl_<Name>_<k>`` prefix names DeepFaceLive's *swap face model*, not the person in the real
#: (left) half: ``dfl_Kim_Jarrey_0..3`` show four different people, and ``dfl_Kim_Jarrey_0`` is the
#: same Obama footage as ``dflsample_Obama*``. Every other real clip shows its own person.
SAME_PERSON: tuple[tuple[str, ...], ...] = (
    ("dflsample_Obama", "dflsample_Obama_speaking", "dfl_Kim_Jarrey_0"),
)


def _shared() -> Path:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def person_of(clip: str) -> str:
    stem = Path(clip).stem
    for group in SAME_PERSON:
        if stem in group:
            return group[0]
    return stem


EMBED_MS: list[float] = []
#: the cache holds a sample every 0.2 s; replays pick from it on the analyser's own schedule
#: (``enroll_interval_s`` until enrolled, then ``sample_interval_s``).
CACHE_INTERVAL_S = 0.2


def embed_clip(path: Path, stride: int, opts: IdentityOptions, embedder: FaceEmbedder) -> dict:
    tracker = FaceTracker.from_options(TrackerOptions())
    rows: list[tuple] = []
    embs: list[np.ndarray] = []
    next_t = -1.0
    for fr in open_video(path, stride=stride):
        o = tracker.process(fr.image, fr.t, fr.index)
        if fr.t < next_t or not o.face or o.landmarks is None:
            continue
        next_t = fr.t + CACHE_INTERVAL_S
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


def replay(d: dict, opts: IdentityOptions) -> IdentityAnalyser:
    """The clip's cached samples through a fresh IdentityAnalyser (as it runs live)."""
    a = IdentityAnalyser(opts, embedder=False)
    for t, yaw, good, e in zip(d["t"], d["yaw"], d["good"], d["emb"], strict=True):
        if good and a.wants_sample(float(t)):
            a.add_sample(float(t), float(yaw) if np.isfinite(yaw) else 0.0, e)
    return a


def figures(data: dict[str, dict], reals: list[str], opts: IdentityOptions) -> dict:
    """Same-person pass rate (each sample vs its clip's enrolment at the time) and
    different-people separation (each sample vs the other clip's final enrolment)."""
    thr = opts.threshold
    an = {p: replay(data[p], opts) for p in reals}
    enrol = {p: an[p].enrolment for p in reals}
    lim = opts.change_max_yaw  # identity_change scores samples up to this |yaw|
    same = {p: np.array([s.d_enrol for s in an[p].samples if abs(s.yaw) <= lim])
            for p in reals if enrol[p] is not None}
    embs = {p: np.array([s.embedding for s in an[p].samples if abs(s.yaw) <= lim]).reshape(-1, 128)
            for p in reals}
    cross: list[float] = []
    cross_smooth: list[float] = []
    pairs: list[tuple[float, str, str]] = []
    clip_sep = clip_tot = 0
    for a in same:
        for b in same:
            if a == b or person_of(a) == person_of(b):
                continue
            dist = np.linalg.norm(embs[b] - enrol[a], axis=1)
            if not len(dist):
                continue
            cross.extend(dist.tolist())
            # what the analyser flags: a short moving median of the per-sample distance
            k = 3 if len(dist) >= 3 else 1
            sm = np.array([np.median(dist[max(0, i - k // 2): i + k // 2 + 1]) for i in range(len(dist))])
            cross_smooth.extend(sm.tolist())
            pairs.append((float(np.quantile(dist, 0.05)), a, b))
            clip_sep += float(np.linalg.norm(enrol[a] - enrol[b])) >= thr
            clip_tot += 1
    pairs.sort()
    all_same = np.concatenate(list(same.values())) if same else np.zeros(0)
    cr, cs = np.asarray(cross), np.asarray(cross_smooth)
    return {
        "threshold": thr,
        "no_enrolment": [p for p in reals if enrol[p] is None],
        "per_clip": {p: {"samples": int(len(v)), "pass": float((v < thr).mean()) if len(v) else None,
                         "median_d": float(np.median(v)) if len(v) else None,
                         "max_d": float(v.max()) if len(v) else None} for p, v in same.items()},
        "same_person_pass": float((all_same < thr).mean()),
        "same_person_n": int(all_same.size),
        "worst_clip_pass": float(min((v < thr).mean() for v in same.values() if len(v))),
        "different_people_separated": float((cr >= thr).mean()),
        "different_people_separated_smoothed": float((cs >= thr).mean()),
        "different_people_n": int(cr.size),
        "clip_level_separated": clip_sep / max(clip_tot, 1),
        "clip_pairs": clip_tot,
        "closest_pairs": pairs[:8],
        "same_d": all_same,
        "cross_d": cr,
    }


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
        cp = args.cache / f"{key}_s{args.stride}_i{CACHE_INTERVAL_S}.npz"
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
    out: dict = {"threshold": thr, "clips": {}}
    f = figures(data, reals, opts)
    print(f"\nSame person within each real clip (threshold {thr}; every sample with |yaw| <= "
          f"{opts.change_max_yaw:.0f} vs the clip's enrolment at that time):")
    print(f"{'clip':44s} {'samples':>7s} {'pass %':>7s} {'median d':>8s} {'max d':>6s}")
    for p, c in f["per_clip"].items():
        if c["samples"]:
            print(f"{p:44s} {c['samples']:7d} {100 * c['pass']:7.1f} {c['median_d']:8.3f} {c['max_d']:6.3f}")
    for p in f["no_enrolment"]:
        print(f"{p:44s}  no enrolment (fewer than {opts.enroll_samples} good frontal samples)")
    print(f"overall: {100 * f['same_person_pass']:.2f}% of {f['same_person_n']} sampled frames pass; "
          f"worst clip {100 * f['worst_clip_pass']:.1f}%")
    print(f"\nDifferent people: {100 * f['different_people_separated']:.2f}% of "
          f"{f['different_people_n']} (sample, other clip's enrolment) pairs told apart "
          f"({100 * f['different_people_separated_smoothed']:.2f}% after the analyser's 3-sample "
          f"median); clip level {100 * f['clip_level_separated']:.2f}% of {f['clip_pairs']} pairs")
    print("closest different-person clip pairs (5th percentile of sample distances):")
    for q, a, b in f["closest_pairs"]:
        print(f"  {q:.3f}  {a} vs {b}")
    print("\nthreshold sweep (same-person pass / different-people separated, per sample):")
    for t in (0.45, 0.5, 0.55, 0.6):
        print(f"  {t:.2f}: {100 * (f['same_d'] < t).mean():6.2f}% / {100 * (f['cross_d'] >= t).mean():6.2f}%")
    out.update({k: v for k, v in f.items() if k not in ("same_d", "cross_d", "per_clip")})
    out["clips"] = {p: dict(c) for p, c in f["per_clip"].items()}

    # reference check on the paired clips: enrol from the genuine half ("first meeting"), review
    # the swapped half of the same footage with that enrolment as the reference
    pair_rows = []
    by_pair: dict[str, dict[str, str]] = {}
    for r in rows:
        if r.get("pair"):
            by_pair.setdefault(r["pair"], {})[r["label"]] = r["path"]
    for pair, m in sorted(by_pair.items()):
        if "real" not in m or "fake" not in m:
            continue
        enr = replay(data[m["real"]], opts).enrolment
        if enr is None:
            continue
        for lab in ("fake",):
            a = IdentityAnalyser(opts, embedder=False, references=enr[None])
            d = data[m[lab]]
            for t, yaw, good, e in zip(d["t"], d["yaw"], d["good"], d["emb"], strict=True):
                if good and a.wants_sample(float(t)):
                    a.add_sample(float(t), float(yaw) if np.isfinite(yaw) else 0.0, e)
            sig = a.signals()["reference_mismatch"]
            dmed = dict(sig.details).get("d_reference_median")
            pair_rows.append((pair, sig.value, dmed))
    if pair_rows:
        flagged = sum(1 for _, v, _ in pair_rows if v is not None and v > 0.5)
        print(f"\nReference check, swapped half vs the enrolment of its genuine half: flagged "
              f"{flagged}/{len(pair_rows)} (reference_mismatch > 0.5)")
        for pair, v, dmed in pair_rows:
            print(f"  {pair:28s} mismatch {_fmt(v)}  median d {dmed if dmed is None else round(dmed, 3)}")
        out["reference_pairs"] = {"flagged": flagged, "n": len(pair_rows),
                                  "rows": [[p, v, dm] for p, v, dm in pair_rows]}

    # identity signals on every clip (information)
    from liveness.signals.identity import replay_signals

    print(f"\n{'clip':44s} {'label':5s} {'change':>7s} {'instab':>7s}")
    sig_rows = []
    for r in rows:
        d = data[r["path"]]
        s = replay_signals(d, opts)
        sig_rows.append((r["label"], s))
        out["clips"].setdefault(r["path"], {}).update({"signals": s})
        print(f"{r['path']:44s} {r['label']:5s} {_fmt(s['identity_change'])} {_fmt(s['identity_instability'])}")
    try:
        from liveness.apps.eval import auc

        for name in ("identity_change", "identity_instability"):
            neg = [s[name] for lab, s in sig_rows if lab == "real" and s[name] is not None]
            pos = [s[name] for lab, s in sig_rows if lab == "fake" and s[name] is not None]
            a = auc(neg, pos)
            if a is not None:
                print(f"video AUC {name}: {a:.3f} (real {len(neg)}, fake {len(pos)})")
                out[f"auc_{name}"] = a
    except Exception as exc:  # informative only
        print(f"(AUC not computed: {exc})")
    cost = bench_cost(embedder)
    print(f"\ncost, one thread, median of 30 (astronaut photo): chip {cost['chip_ms']:.2f} ms, "
          f"embedding {cost['embed_ms']:.1f} ms wall (min {cost['embed_min_ms']:.1f} ms), "
          f"{cost['embed_cpu_ms']:.1f} ms CPU per face")
    out["cost"] = cost
    if EMBED_MS:
        print(f"\nchip + embedding: median {np.median(EMBED_MS):.1f} ms/face over {len(EMBED_MS)} faces "
              "(one thread, this run)")
        out["embed_ms_median"] = float(np.median(EMBED_MS))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


def bench_cost(embedder: FaceEmbedder, repeats: int = 30) -> dict[str, float]:
    import skimage.data

    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    im = np.ascontiguousarray(skimage.data.astronaut())
    tr = FaceTracker.from_options(TrackerOptions(keep_image=False))
    tr.process(im, 0.0, 0)
    lm = tr.process(im, 0.001, 1).landmarks
    chip = embedder.chip(im, lm)
    for _ in range(3):
        embedder.embed(chip)
    tc, te, cpu = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        chip = embedder.chip(im, lm)
        t1 = time.perf_counter()
        c1 = time.thread_time()
        embedder.embed(chip)
        c2 = time.thread_time()
        t2 = time.perf_counter()
        tc.append((t1 - t0) * 1e3)
        te.append((t2 - t1) * 1e3)
        cpu.append((c2 - c1) * 1e3)
    # CPU time of the (single) inference thread: what the embedding costs when the machine is
    # shared, without the time spent waiting for a core
    return {"chip_ms": float(np.median(tc)), "embed_ms": float(np.median(te)),
            "embed_min_ms": float(np.min(te)), "embed_cpu_ms": float(np.median(cpu))}


def _fmt(v: float | None) -> str:
    return f"{v:7.3f}" if v is not None else "      -"


if __name__ == "__main__":
    main()
