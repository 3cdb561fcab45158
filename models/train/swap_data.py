"""Training data of the swap detector (issue 13): every real and fake item we can name, as
aligned face chips with their validity masks, cached once.

    .venv/bin/python -m models.train.swap_data [--shard 0/2]     # fills .cache/swap/

Items:

* the dev clips (``../shared/data/manifest.csv``);
* ``../shared/data/train/manifest.csv``: clips, whole images and tight face crops of 18
  generators and their originals, and more real people on camera;
* ``--utk`` real UTKFace crops (``faces/utkface``), chosen with ``--seed``.

Each item becomes :class:`Item` (label, generator, ``group`` = what a split keeps together,
``domain`` = the source whose style it carries) and an ``.npz`` of ``chips`` (n, 150, 150, 3)
uint8 and ``masks`` (n, 150, 150) uint8 made by :func:`liveness.signals.swap_chip.swap_chip`, the
same rule the shipped analyser uses. A still is padded by reflection before it is tracked and
its mask is 1 only inside the original picture, so neither a black border nor a mirrored pad can
be evidence. A clip is tracked with the product's :class:`FaceTracker` and ``--per-clip`` chips
are kept, spread over the clip.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.sbi_data import shared_data  # noqa: E402

CACHE = ROOT / ".cache" / "swap"
FACELESS_SYNTHETIC = 40  # synthetic faceless items, 5 chips each

__all__ = ["Item", "items", "cache_item", "load_item", "CACHE"]


@dataclass(frozen=True)
class Item:
    key: str  # cache file stem, unique
    path: Path
    label: int  # 1 = fake
    kind: str  # clip | image | crop
    generator: str  # "none" for real
    group: str  # split unit: a fake and its original share one
    pair: str
    domain: str  # dev_dfl | dev_other | dfdc | tools | deeplivecam | cam | utk | faceless


def _dev_group(stem: str) -> str:
    m = re.match(r"(dfl_[A-Za-z]+_[A-Za-z]+)_\d+$", stem)
    if m:
        return "dev:" + m.group(1)
    if stem.startswith("roop_"):
        return "dev:roop"
    return "dev:" + stem


def items(data: Path | None = None, utk: int = 1000, seed: int = 0) -> list[Item]:
    data = data or shared_data()
    out: list[Item] = []
    with open(data / "manifest.csv", newline="") as f:
        for r in csv.DictReader(f):
            stem = Path(r["path"]).stem
            fake = r["label"] == "fake"
            gen = ("deepfacelive" if r["attack"] == "faceswap_realtime" else "roop") if fake else "none"
            out.append(Item(
                key=f"dev__{r['label']}__{stem}", path=data / r["path"], label=int(fake), kind="clip",
                generator=gen, group=_dev_group(stem), pair=r["pair"],
                domain="dev_dfl" if stem.startswith("dfl_") else "dev_other",
            ))  # fmt: skip
    tm = data / "train" / "manifest.csv"
    if tm.is_file():
        with open(tm, newline="") as f:
            for r in csv.DictReader(f):
                p = Path(r["path"])
                fake = r["label"] == "fake"
                if r["generator"] == "dfdc" or "dfdc" in r["path"].lower():
                    dom = "dfdc"
                elif r["generator"] == "deeplivecam":
                    dom = "deeplivecam"
                elif r["kind"] == "clip" and not fake and not r["pair"]:
                    dom = "cam"
                else:
                    dom = "tools"
                out.append(Item(
                    key=f"train__{r['label']}__{p.parent.name}__{p.stem}", path=data / "train" / p,
                    label=int(fake), kind=r["kind"], generator=r["generator"] if fake else "none",
                    group="train:" + r["group"], pair=r["pair"], domain=dom,
                ))  # fmt: skip
    # faceless chips (training only: a background control): the frames of the train folder's
    # real clips with the face geometry moved off the face, and synthetic textures
    for it in [x for x in out if x.domain == "cam"]:
        out.append(Item(key=f"faceless__{it.path.stem}", path=it.path, label=0, kind="faceless",
                        generator="none", group=it.group, pair="", domain="faceless"))
    for k in range(FACELESS_SYNTHETIC):
        out.append(Item(key=f"faceless__synthetic_{k}", path=Path("synthetic"), label=0, kind="faceless",
                        generator="none", group=f"synthetic:{k}", pair="", domain="faceless"))
    faces = sorted((data / "faces" / "utkface").glob("*.jpg"))
    if utk and faces:
        rng = np.random.default_rng(seed)
        for i in sorted(rng.choice(len(faces), min(utk, len(faces)), replace=False)):
            p = faces[int(i)]
            out.append(Item(key=f"utk__{p.stem}", path=p, label=0, kind="crop", generator="none",
                            group="utk:" + p.stem, pair="", domain="utk"))
    return out


# --------------------------------------------------------------------------------------------
# chips
# --------------------------------------------------------------------------------------------
class _Stills:
    """Largest face of a still image, padded by reflection first (landmarks in image pixels)."""

    def __init__(self) -> None:
        from models.train.sbi_data import MeshLandmarker

        self.lm = MeshLandmarker(refine=True)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]] | None:
        h, w = rgb.shape[:2]
        pad = max(h, w) // 2
        big = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        lm = self.lm(big)
        if lm is None:
            return None
        return big, lm, (float(pad), float(pad), float(pad + w), float(pad + h))


def _clip_chips(path: Path, per_clip: int) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    from liveness.signals.swap_chip import swap_chip
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tr = FaceTracker.from_options(TrackerOptions())
    src = open_video(path)
    n = int(src.info.frames or 0)
    stride = max(1, n // (per_clip * 3)) if n > 1 else 2
    chips, masks, ts = [], [], []
    for fr in open_video(path, stride=stride):
        obs = tr.process(fr.image, fr.t, fr.index)
        if not obs.face or obs.landmarks is None:
            continue
        if obs.quality is not None and obs.quality.size_px < 40:
            continue
        c = swap_chip(fr.image, obs.landmarks)
        chips.append(c.chip)
        masks.append(c.mask)
        ts.append(fr.t)
    if len(chips) > per_clip:
        idx = np.unique(np.linspace(0, len(chips) - 1, per_clip).round().astype(int))
        chips, masks, ts = [chips[i] for i in idx], [masks[i] for i in idx], [ts[i] for i in idx]
    return chips, masks, ts


def _synthetic_textures(k: int, n: int = 5) -> list[np.ndarray]:
    """Faceless pictures: smooth gradients, blurred noise at several scales, stripes."""
    rng = np.random.default_rng(1000 + k)
    out = []
    for _ in range(n):
        h, w = 360, 480
        kind = int(rng.integers(3))
        if kind == 0:
            a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            t = np.linspace(0, 1, w)[None, :, None] if rng.random() < 0.5 else np.linspace(0, 1, h)[:, None, None]
            img = np.broadcast_to(a + (b - a) * t, (h, w, 3))
        elif kind == 1:
            s = int(rng.choice([4, 16, 64]))
            small = rng.uniform(0, 255, (max(2, h // s), max(2, w // s), 3)).astype(np.float32)
            img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
        else:
            period = rng.uniform(8, 60)
            x = np.arange(w)[None, :, None]
            img = 127 + 100 * np.sin(2 * np.pi * x / period + rng.uniform(0, 6)) * np.ones((h, 1, 3))
            img = img * rng.uniform(0.5, 1.0, 3)
        img = img + rng.normal(0, rng.uniform(0, 6), (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _faceless_chips(it: Item) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Chips with a face's geometry but no face in them (see ``items``)."""
    from liveness.signals.swap_chip import swap_chip
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker

    chips, masks, ts = [], [], []
    if it.path.name == "synthetic":
        k = int(it.key.rsplit("_", 1)[1])
        rng = np.random.default_rng(k)
        for img in _synthetic_textures(k):
            h, w = img.shape[:2]
            side = rng.uniform(0.2, 0.6) * h
            lm = np.zeros((478, 3), np.float32)
            # a plausible five-point layout at a random place (only the five points matter)
            from liveness.signals.embedding import DLIB_TEMPLATE_5, MESH_POINTS_5

            cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
            five = DLIB_TEMPLATE_5 - 0.5
            lm[:, :2] = (cx, cy)
            lm[list(MESH_POINTS_5), :2] = five * side + (cx, cy)
            c = swap_chip(img, lm)
            chips.append(c.chip)
            masks.append(c.mask)
            ts.append(0.0)
        return chips, masks, ts
    tr = FaceTracker()
    frames = []
    for fr in open_video(it.path, stride=10):
        obs = tr.process(fr.image, fr.t, fr.index)
        if obs.face and obs.landmarks is not None:
            frames.append((fr, obs.landmarks))
    for fr, lm in [frames[i] for i in np.unique(np.linspace(0, len(frames) - 1, 4).round().astype(int))] if frames else []:
        h, w = fr.image.shape[:2]
        for dx, dy in ((-0.4, 0.0), (0.4, 0.0), (0.0, 0.35), (0.35, -0.3)):
            c = swap_chip(fr.image, lm + np.array([dx * w, dy * h, 0], np.float32))
            if c.mask.mean() > 0.3:
                chips.append(c.chip)
                masks.append(c.mask)
                ts.append(fr.t)
    return chips, masks, ts


def cache_item(it: Item, stills: _Stills | None, per_clip: int = 24, out: Path = CACHE) -> Path:
    from liveness.signals.swap_chip import swap_chip

    p = out / f"{it.key}.npz"
    if p.is_file():
        return p
    if it.kind == "faceless":
        chips, masks, ts = _faceless_chips(it)
    elif it.kind == "clip":
        chips, masks, ts = _clip_chips(it.path, per_clip)
    else:
        assert stills is not None
        bgr = cv2.imread(str(it.path), cv2.IMREAD_COLOR)
        chips, masks, ts = [], [], []
        if bgr is not None:
            r = stills(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if r is not None:
                big, lm, valid = r
                c = swap_chip(big, lm, valid)
                chips, masks, ts = [c.chip], [c.mask], [0.0]
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        p, chips=np.asarray(chips, np.uint8).reshape(-1, 150, 150, 3),
        masks=np.asarray(masks, np.uint8).reshape(-1, 150, 150), t=np.asarray(ts, np.float64),
    )  # fmt: skip
    return p


def load_item(it: Item, out: Path = CACHE) -> tuple[np.ndarray, np.ndarray]:
    z = np.load(out / f"{it.key}.npz")
    return z["chips"], z["masks"].astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--utk", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per-clip", type=int, default=24)
    ap.add_argument("--shard", default="0/1", help="i/n: only every n-th item from the i-th")
    ap.add_argument("--out", type=Path, default=CACHE)
    a = ap.parse_args(argv)
    i, n = (int(v) for v in a.shard.split("/"))
    its = items(utk=a.utk, seed=a.seed)
    # clips first (slow), spread over shards
    its.sort(key=lambda x: (x.kind != "clip", x.key))
    mine = its[i::n]
    stills = _Stills()
    t0 = time.time()
    empty = 0
    for k, it in enumerate(mine):
        p = cache_item(it, stills, a.per_clip, a.out)
        if len(np.load(p)["chips"]) == 0:
            empty += 1
        if k % 100 == 0:
            print(f"{k}/{len(mine)} {time.time() - t0:.0f}s empty={empty} {it.key}", flush=True)
    print(f"done {len(mine)} items, {empty} without a face, {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
