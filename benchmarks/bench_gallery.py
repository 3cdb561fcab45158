"""False-match rate of the face-reuse gallery (``liveness serve --face-gallery``), 1:1 and 1:N.

    nice python benchmarks/bench_gallery.py [--data ../shared/data] [--out .cache/gallery]

Embeds (the package's own 128-D embedding, through the tracker's mesh, as the server does):

* every UTKFace crop of ``faces/utkface`` (5,868 photos; the file names carry
  ``age_gender_race``): a gallery of different people, one photo each. Every pair is an
  impostor pair (UTKFace has no identity labels, so a rare second photo of one person counts as
  a false match: the rates are an upper bound);
* every dev clip (``manifest.csv``): the robust centroid of its good frontal samples (one every
  0.5 s), as a review stores it, and the centroids of its first and second half. Genuine pairs:
  the two halves of one recording, and the DeepFaceLive fakes that wear the same celebrity face
  model in different recordings (the swapped face recurs: what the gallery is meant to find).

Prints and writes ``summary.json``: the 1:1 false-match rate at several thresholds (overall and
per UTKFace group), the 1:N rate (a new person matching anyone in a gallery of N others) at
several N, the genuine match rates, and the closest cross-identity dev-clip pairs. Embeddings
are cached in ``--out``; nothing derived from the footage goes into the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

THRESHOLDS = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60)
SIZES = (10, 100, 1000, 5000)
RACES = {0: "White", 1: "Black", 2: "Asian", 3: "Indian", 4: "Others"}
GENDERS = {0: "male", 1: "female"}


def age_band(a: int) -> str:
    return "0-17" if a < 18 else "18-39" if a < 40 else "40-59" if a < 60 else "60+"


def embed_utk(folder: Path, cache: Path, border: str = "replicate") -> tuple[np.ndarray, list[dict]]:
    if cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return z["emb"], json.loads(str(z["meta"]))
    import cv2

    from liveness.signals.embedding import FaceEmbedder
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tracker = FaceTracker.from_options(TrackerOptions(threads=1, keep_image=False))
    embedder = FaceEmbedder(1)
    embs, meta = [], []
    files = sorted(folder.glob("*.jpg"))
    t0 = time.time()
    for i, f in enumerate(files):
        m = re.match(r"^(\d+)_(\d)_(\d)_", f.name)
        img = cv2.imread(str(f))
        if m is None or img is None:
            continue
        # the crops are tight: the detector needs a margin, and about 16 % of the embedding's
        # chip lies outside the crop. A black margin is the same in every photo and pulls all
        # embeddings together (distances about 0.1 shorter): edge pixels repeated outwards vary
        # from photo to photo as a real background does (--border constant measures the other).
        bt = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
        rgb = cv2.cvtColor(cv2.copyMakeBorder(img, 60, 60, 60, 60, bt), cv2.COLOR_BGR2RGB)
        tracker.reset()
        o = tracker.process(rgb, 0.0, 0)
        if o.face:
            o2 = tracker.process(rgb, 1e-3, 1)
            o = o2 if o2.face else o
        if not o.face or o.landmarks is None:
            continue
        embs.append(embedder.embed_face(rgb, o.landmarks))
        meta.append({"file": f.name, "age": int(m[1]), "gender": int(m[2]), "race": int(m[3])})
        if i % 500 == 0:
            print(f"utkface {i}/{len(files)} {time.time() - t0:.0f} s", file=sys.stderr)
    emb = np.stack(embs).astype(np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, emb=emb, meta=json.dumps(meta))
    return emb, meta


def embed_clips(data: Path, cache: Path) -> list[dict]:
    if cache.is_file():
        return json.loads(cache.read_text())
    from liveness.signals.embedding import FaceEmbedder
    from liveness.signals.identity import IdentityOptions, good_sample, robust_centroid
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    opts = IdentityOptions()
    embedder = FaceEmbedder(1)
    out = []
    with (data / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        tracker = FaceTracker.from_options(TrackerOptions(threads=1, keep_image=False))
        samples: list[tuple[float, np.ndarray]] = []
        next_t = -1.0
        for fr in open_video(data / r["path"], max_side=1280):
            o = tracker.process(fr.image, fr.t, fr.index)
            if fr.t < next_t or not good_sample(o, opts):
                continue
            if o.pose is not None and abs(o.pose.yaw) > opts.enroll_max_yaw:
                continue
            next_t = fr.t + 0.5
            samples.append((fr.t, embedder.embed_face(fr.image, o.landmarks)))
        if len(samples) < 4:
            print(f"{r['path']}: {len(samples)} samples, left out", file=sys.stderr)
            continue
        e = np.stack([s for _, s in samples])
        h = len(e) // 2
        out.append({
            "path": r["path"], "label": r["label"], "pair": r["pair"], "samples": len(e),
            "centroid": robust_centroid(e, opts.threshold).tolist(),
            "first": robust_centroid(e[:h], opts.threshold).tolist(),
            "second": robust_centroid(e[h:], opts.threshold).tolist(),
        })
        print(f"{r['path']}: {len(e)} samples", file=sys.stderr)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out))
    return out


def pair_distances(emb: np.ndarray) -> np.ndarray:
    """(N, N) euclidean distances (float32), the diagonal set to inf."""
    sq = (emb.astype(np.float64) ** 2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * emb.astype(np.float64) @ emb.astype(np.float64).T
    d = np.sqrt(np.maximum(d2, 0.0)).astype(np.float32)
    np.fill_diagonal(d, np.inf)
    return d


def one_to_n(d: np.ndarray, t: float, n: int, rng: np.random.Generator, probes: np.ndarray | None = None,
             reps: int = 3) -> float:
    """Share of probes (people not in the gallery) whose nearest of ``n`` random others lies
    within ``t``."""
    idx = np.arange(len(d)) if probes is None else probes
    hits = tot = 0
    for _ in range(reps):
        for p in idx:
            others = rng.choice(len(d) - 1, size=min(n, len(d) - 1), replace=False)
            others[others >= p] += 1
            hits += bool(d[p, others].min() < t)
            tot += 1
    return hits / tot


def celeb(path: str) -> str | None:
    m = re.match(r"video/fake/dfl_(.+)_\d+\.mp4$", path)
    return m[1] if m else None


def identity(c: dict) -> str:
    """The dev clip's identity as far as the manifest tells: a DeepFaceLive fake wears its
    celebrity face model; anything else is its own recording."""
    return f"celeb:{celeb(c['path'])}" if celeb(c["path"]) else f"clip:{c['path']}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--out", default=str(ROOT / ".cache" / "gallery"))
    ap.add_argument("--probes", type=int, default=1500, help="probes per 1:N estimate")
    ap.add_argument("--border", choices=("replicate", "constant"), default="replicate",
                    help="margin added around the UTKFace crops (see embed_utk)")
    a = ap.parse_args()
    data, out = Path(a.data), Path(a.out)
    if not (data / "manifest.csv").is_file():
        print(f"{data}: no dev data", file=sys.stderr)
        return 2
    emb, meta = embed_utk(data / "faces" / "utkface", out / f"utkface_{a.border}.npz", a.border)
    clips = embed_clips(data, out / "clips.json")
    rng = np.random.default_rng(0)
    d = pair_distances(emb)
    iu = np.triu_indices(len(d), 1)
    imp = d[iu]
    res: dict = {"utkface_faces": len(emb), "utkface_pairs": int(imp.size), "thresholds": list(THRESHOLDS)}
    res["fmr_1to1"] = {f"{t:.2f}": float((imp < t).mean()) for t in THRESHOLDS}
    res["impostor_quantiles"] = {q: float(np.quantile(imp, float(q))) for q in ("0.0001", "0.001", "0.01", "0.05")}
    probes = rng.choice(len(d), size=min(a.probes, len(d)), replace=False)
    res["fmr_1toN"] = {f"{t:.2f}": {str(n): one_to_n(d, t, n, rng, probes, reps=1) for n in SIZES}
                       for t in THRESHOLDS if t <= 0.5}
    # adults only (job candidates): probes and gallery of people 18 and over
    adult = np.nonzero(np.array([m["age"] >= 18 for m in meta]))[0]
    da = d[np.ix_(adult, adult)]
    res["adults"] = len(adult)
    res["fmr_1to1_adults"] = {f"{t:.2f}": float((da[np.triu_indices(len(adult), 1)] < t).mean()) for t in THRESHOLDS}
    pa = rng.choice(len(adult), size=min(a.probes, len(adult)), replace=False)
    res["fmr_1toN_adults"] = {f"{t:.2f}": {str(n): one_to_n(da, t, n, rng, pa, reps=1) for n in SIZES if n < len(adult)}
                              for t in THRESHOLDS if t <= 0.5}
    del da
    groups: dict[str, dict] = {}
    race = np.array([m["race"] for m in meta])
    gender = np.array([m["gender"] for m in meta])
    band = np.array([age_band(m["age"]) for m in meta])
    for kind, lab, names in (("race", race, RACES), ("gender", gender, GENDERS),
                             ("age", band, {b: b for b in ("0-17", "18-39", "40-59", "60+")})):
        for key, name in names.items():
            sel = np.nonzero((lab == key) & (band != "0-17" if kind != "age" else True))[0]
            if len(sel) < 30:
                continue
            sub = d[np.ix_(sel, sel)]
            within = sub[np.triu_indices(len(sel), 1)]
            # probes of the group against 1,000 random others (adults for the adult groups)
            pool = np.arange(len(d)) if kind == "age" else adult
            pos = np.searchsorted(pool, sel)
            pr = rng.choice(pos, size=min(400, len(pos)), replace=False)
            dp = d if kind == "age" else d[np.ix_(adult, adult)]
            groups[f"{kind}:{name}"] = {
                "faces": int(len(sel)),
                "fmr_1to1_within": {f"{t:.2f}": float((within < t).mean()) for t in (0.30, 0.35, 0.40, 0.45)},
                "fmr_1to1000_mixed": {f"{t:.2f}": one_to_n(dp, t, 1000, rng, pr, reps=1) for t in (0.30, 0.35, 0.40)},
            }
            del dp
    res["groups"] = groups  # race and gender groups: adults only; age bands: everyone

    # dev clips: genuine pairs (two halves of one recording; one celebrity face model in two
    # recordings) and cross-identity pairs
    halves = np.array([np.linalg.norm(np.subtract(c["first"], c["second"])) for c in clips])
    res["clips"] = len(clips)
    res["genuine_halves"] = {"pairs": len(halves), "median": float(np.median(halves)), "max": float(halves.max()),
                             "tmr": {f"{t:.2f}": float((halves < t).mean()) for t in THRESHOLDS}}
    cen = np.array([c["centroid"] for c in clips], np.float32)
    dc = pair_distances(cen)
    ids = [identity(c) for c in clips]
    same_celeb, cross = [], []
    for i in range(len(clips)):
        for j in range(i + 1, len(clips)):
            if ids[i] == ids[j] and ids[i].startswith("celeb:"):
                same_celeb.append(float(dc[i, j]))
            elif clips[i]["pair"] and clips[i]["pair"] == clips[j]["pair"]:
                continue  # the same footage before/after a swap: same head, other face
            elif ids[i] != ids[j]:
                cross.append((float(dc[i, j]), clips[i]["path"], clips[j]["path"]))
    sc = np.array(same_celeb)
    res["genuine_same_face_model"] = {"pairs": len(sc), "median": float(np.median(sc)), "max": float(sc.max()),
                                      "tmr": {f"{t:.2f}": float((sc < t).mean()) for t in THRESHOLDS}}
    cd = np.array([c[0] for c in cross])
    res["dev_cross_pairs"] = {"pairs": len(cd), "fmr": {f"{t:.2f}": float((cd < t).mean()) for t in THRESHOLDS},
                              "closest": [{"d": round(x, 3), "a": p, "b": q} for x, p, q in sorted(cross)[:12]]}
    out.mkdir(parents=True, exist_ok=True)
    res["border"] = a.border
    (out / f"summary_{a.border}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
