"""Self-blended fakes for the swap detector (issue 13, the candidate "self-blends added or not").

    .venv/bin/python -m models.train.swap_sbi [--shard 0/2] [--per-item 2]   # .cache/swap_features_sbi/

For every real item of ``swap_data`` (chips cached; the faceless background control left out):
``--per-item`` of its chips, evenly spread, each with its own inner face replaced by a
transformed copy of itself (Shiohara & Yamasaki, CVPR 2022, as ``sbi_data.SelfBlend``: colour,
sharpness, resolution and geometry changes of the copy, blended through a deformed, feathered
mask). The mask starts from the canonical face outline as it lies in the aligned chip
(``swap_graph._hull_raw``), so the blend boundary falls where a face swapper's does. Stored as
the features of the detector's own feature graph: ``raw`` (the blended chip) and ``aug`` (the
blended chip after the global degradation its source chip gets in ``swap_features``, drawn
from the same ``pair_rng``), ``index`` (which chips of the item).

Training only (``train_swap --sbi W``): a self-blend joins the training fold of the real item it
was made from, as a fake, so it never teaches anything about an item that is scored.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.swap_data import CACHE, Item, items, load_item  # noqa: E402
from models.train.swap_features import FEATURES, FeatureRunner, degrade, pair_rng  # noqa: E402

SBI_FEATURES = FEATURES.with_name(FEATURES.name + "_sbi")

__all__ = ["SBI_FEATURES", "blend_chip", "load_sbi"]


def _rng(key: str, index: int, seed: int) -> np.random.Generator:
    h = hashlib.sha256(f"sbi:{seed}:{key}:{index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


@functools.cache
def _outline() -> np.ndarray:
    """The canonical face outline in the aligned chip (built once; read only)."""
    from models.train.swap_graph import _hull_raw

    hull = _hull_raw()
    hull.flags.writeable = False
    return hull


def blend_chip(chip: np.ndarray, valid: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(150, 150, 3) uint8: ``chip`` with its inner face replaced by a transformed copy of
    itself, blended only where ``valid`` (the chip's validity mask) is 1."""
    from models.train.sbi_data import BlendOptions, deform_mask, source_transform

    s = chip.shape[0]
    o = BlendOptions(size=s)
    mask = deform_mask(_outline(), rng) * np.asarray(valid, np.float32)
    src = source_transform(chip, rng, o)
    a = (mask * float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0])))[..., None]
    out = chip.astype(np.float32) * (1 - a) + src.astype(np.float32) * a
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def extract(it: Item, run: FeatureRunner, per_item: int, seed: int = 0, out: Path = SBI_FEATURES) -> Path | None:
    p = out / f"{it.key}.npz"
    if p.is_file():
        return p
    chips, masks = load_item(it, CACHE)
    if len(chips) == 0:
        return None
    sel = np.unique(np.linspace(0, len(chips) - 1, min(len(chips), per_item)).round().astype(int))
    raw, aug = [], []
    for k in sel:
        fake = blend_chip(chips[k], masks[k], _rng(it.key, int(k), seed))
        raw.append(run(fake, masks[k]))
        aug.append(run(degrade(fake, pair_rng(it.group, int(k), seed)), masks[k]))
    out.mkdir(parents=True, exist_ok=True)
    np.savez(p, raw=np.asarray(raw, np.float32), aug=np.asarray(aug, np.float32), index=sel)
    return p


def load_sbi(it: Item, out: Path = SBI_FEATURES) -> tuple[np.ndarray, np.ndarray] | None:
    """The self-blends of real item ``it`` (raw, aug), or None where none were made."""
    p = out / f"{it.key}.npz"
    if not p.is_file():
        return None
    z = np.load(p)
    return z["raw"], z["aug"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shard", default="0/1")
    ap.add_argument("--per-item", type=int, default=2, help="self-blends per real item")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    i, n = (int(v) for v in a.shard.split("/"))
    reals = [it for it in items() if it.label == 0 and it.domain != "faceless"]
    mine = sorted(reals, key=lambda x: x.key)[i::n]
    run = FeatureRunner()
    t0 = time.time()
    for k, it in enumerate(mine):
        extract(it, run, a.per_item, a.seed)
        if k % 200 == 0:
            print(f"{k}/{len(mine)} {time.time() - t0:.0f}s", flush=True)
    print(f"done {len(mine)} real items {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
