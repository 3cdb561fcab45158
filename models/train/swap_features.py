"""Features of every cached chip through the swap detector's own feature graph, raw and degraded.

    .venv/bin/python -m models.train.swap_features [--shard 0/2]   # .cache/swap_features/

For each item of ``swap_data`` (its chips must be cached): ``raw`` (n, F) float32, the features
of each chip as the product computes them, and ``aug`` (n, F), the features of the same chip
after one global degradation (down-up resampling, Gaussian blur, JPEG or an unsharp mask, drawn
from a seed of the item's ``group`` and the chip's index, so a fake and its own original get the
same one). Training on both teaches the head that a global degradation is not evidence.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.swap_data import CACHE, Item, items, load_item  # noqa: E402

FEATURES = ROOT / ".cache" / "swap_features"

__all__ = ["FEATURES", "FeatureRunner", "degrade", "feature_dir", "load_features", "pair_rng"]


def feature_dir(regions: tuple[str, ...] | None = None) -> Path:
    """The cache of features pooled over ``regions`` (the shipped ones: :data:`FEATURES`)."""
    from models.train.swap_graph import REGIONS

    if regions is None or tuple(regions) == REGIONS:
        return FEATURES
    return FEATURES.with_name(FEATURES.name + "_" + "-".join(regions))


def pair_rng(group: str, index: int, seed: int = 0) -> np.random.Generator:
    """The augmentation generator of chip ``index`` of any item of ``group``: the same for a
    fake and its original."""
    h = hashlib.sha256(f"{seed}:{group}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def degrade(chip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random global degradation of a (H, W, 3) uint8 image."""
    op = int(rng.integers(4))
    h, w = chip.shape[:2]
    if op == 0:
        f = float(rng.uniform(0.4, 0.7))
        small = cv2.resize(chip, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if op == 1:
        return cv2.GaussianBlur(chip, (0, 0), float(rng.uniform(0.6, 1.5)))
    if op == 2:
        q = int(rng.integers(30, 71))
        ok, buf = cv2.imencode(".jpg", chip[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])
    a = float(rng.uniform(0.5, 1.5))
    blur = cv2.GaussianBlur(chip, (0, 0), 1.5)
    return cv2.addWeighted(chip, 1 + a, blur, -a, 0)


class FeatureRunner:
    """One ONNX Runtime session of the feature graph (one thread)."""

    def __init__(self, threads: int = 1, regions: tuple[str, ...] | None = None) -> None:
        import onnxruntime as ort

        from models.train.swap_graph import REGIONS, feature_graph

        model, self.layout = feature_graph(tuple(regions) if regions else REGIONS)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        self.sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])

    def __call__(self, chip: np.ndarray, mask: np.ndarray) -> np.ndarray:
        x = np.asarray(chip, np.float32)[None]
        m = np.asarray(mask, np.float32)[None]
        return self.sess.run(None, {"chip": x, "mask": m})[0][0]


def extract(it: Item, run: FeatureRunner, seed: int = 0, out: Path = FEATURES) -> Path:
    p = out / f"{it.key}.npz"
    if p.is_file():
        return p
    chips, masks = load_item(it, CACHE)
    raw, aug = [], []
    for k, (c, m) in enumerate(zip(chips, masks, strict=True)):
        raw.append(run(c, m))
        aug.append(run(degrade(c, pair_rng(it.group, k, seed)), m))
    out.mkdir(parents=True, exist_ok=True)
    f = sum(st[4] for st in run.layout)  # features per chip
    np.savez(p, raw=np.asarray(raw, np.float32).reshape(-1, f), aug=np.asarray(aug, np.float32).reshape(-1, f))
    return p


def load_features(it: Item, out: Path = FEATURES) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(out / f"{it.key}.npz")
    return z["raw"], z["aug"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--regions", default="", help="pooling regions, comma-separated (default: the shipped ones)")
    ap.add_argument("--out", type=Path, default=None, help="default: the cache of those regions")
    a = ap.parse_args(argv)
    regions = tuple(x for x in a.regions.split(",") if x) or None
    out = a.out or feature_dir(regions)
    i, n = (int(v) for v in a.shard.split("/"))
    mine = sorted(items(), key=lambda x: x.key)[i::n]
    run = FeatureRunner(regions=regions)
    t0 = time.time()
    for k, it in enumerate(mine):
        extract(it, run, a.seed, out)
        if k % 200 == 0:
            print(f"{k}/{len(mine)} {time.time() - t0:.0f}s", flush=True)
    print(f"done {len(mine)} items {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
