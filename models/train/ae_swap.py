"""Autoencoder swaps made from REAL faces only: the way DeepFaceLive/DeepFaceLab-style swappers make
a face (an encoder-decoder redraws the inner face, which is colour-matched and blended back
into the frame), with our own small autoencoder trained here on the cached real face crops.

Self-blended images (``sbi_data``) teach blending boundaries and colour mismatch; a swapped face
is also *redrawn* by a decoder, which changes its texture (smoother skin, no sensor noise,
upsampling patterns). ``AESwap.pair`` makes (real, fake) from one crop: the fake's inner face is
the autoencoder's reconstruction of that same face, colour-transferred (Reinhard, in Lab, as
DeepFaceLive's ``rct``) and blended in through an eroded, feathered landmark hull; part of the
original detail is sometimes added back (a better decoder). The identity never changes, so only
the redraw and the blend tell the two apart.

    .venv/bin/python -m models.train.ae_swap --cache .cache/sbi --clips .cache/clips --epochs 6

trains the autoencoder (seed 0) and stores it with the reconstructions of every cached crop in
``.cache/ae_swap.npz`` (ignored; never committed).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.sbi_data import CROP, deform_mask, hull_mask, load_cache  # noqa: E402


def build_ae():  # noqa: ANN201
    """Conv encoder (128 -> 8x8x32 bottleneck) and a pixel-shuffle decoder, as DeepFaceLab's
    SAEHD decoders upscale."""
    import torch

    nn = torch.nn

    def down(ci: int, co: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(ci, co, 5, 2, 2), nn.LeakyReLU(0.1, inplace=True))

    def up(ci: int, co: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(ci, co * 4, 3, 1, 1), nn.LeakyReLU(0.1, inplace=True), nn.PixelShuffle(2))

    class AE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc = nn.Sequential(down(3, 32), down(32, 64), down(64, 128), down(128, 256), nn.Conv2d(256, 32, 1))
            self.dec = nn.Sequential(
                nn.Conv2d(32, 256, 1), nn.LeakyReLU(0.1, inplace=True),
                up(256, 128), up(128, 64), up(64, 32), up(32, 32),
                nn.Conv2d(32, 3, 3, 1, 1), nn.Sigmoid(),
            )

        def forward(self, x):  # noqa: ANN001, ANN202
            return self.dec(self.enc(x))

    return AE()


def train_ae(crops: np.ndarray, epochs: int, seed: int, batch: int = 32, log=print):  # noqa: ANN001, ANN201
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build_ae()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-5)
    steps = epochs * (len(crops) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    step = 0
    t0 = time.time()
    for ep in range(epochs):
        order = rng.permutation(len(crops))
        tot = 0.0
        for b in range(len(crops) // batch):
            idx = order[b * batch : (b + 1) * batch]
            x = torch.from_numpy(crops[idx]).permute(0, 3, 1, 2).float() / 255.0
            if rng.random() < 0.5:
                x = x.flip(3)
            y = net(x)
            # L1 on pixels and on gradients (keeps edges from washing out entirely)
            loss = (y - x).abs().mean()
            for d in (2, 3):
                loss = loss + 0.5 * (y.diff(dim=d) - x.diff(dim=d)).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            tot += float(loss.detach())
        log(f"ae epoch {ep + 1}/{epochs}: loss {tot / max(1, len(crops) // batch):.4f} ({time.time() - t0:.0f} s)")
    net.eval()
    return net


def reconstruct(net, crops: np.ndarray, batch: int = 64) -> np.ndarray:  # noqa: ANN001
    import torch

    out = np.empty_like(crops)
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            x = torch.from_numpy(crops[i : i + batch]).permute(0, 3, 1, 2).float() / 255.0
            y = net(x).permute(0, 2, 3, 1).numpy()
            out[i : i + batch] = np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out


def color_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Reinhard colour transfer in Lab over the mask: ``src``'s statistics -> ``ref``'s."""
    m = mask > 0.5
    if m.sum() < 16:
        return src
    a = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    am, asd = a[m].mean(0), a[m].std(0) + 1e-3
    bm, bsd = b[m].mean(0), b[m].std(0) + 1e-3
    out = (a - am) * (bsd / asd) + bm
    return cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


class AESwap:
    """``pair(i, rng) -> (real, fake, mask)`` for cached crop ``i`` and its reconstruction."""

    def __init__(self, crops: np.ndarray, lms: np.ndarray, recon: np.ndarray, p_detail: float = 0.5) -> None:
        self.crops, self.lms, self.recon = crops, lms, recon
        self.p_detail = p_detail

    def fake(self, i: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        crop, rec = self.crops[i], self.recon[i]
        base = hull_mask(self.lms[i], crop.shape[0], rng, 0.5)
        # DeepFaceLive's mask: erode then blur, both random
        k = int(rng.integers(0, 6))
        if k:
            base = cv2.erode(base, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        mask = deform_mask(base, rng)
        src = color_transfer(rec, crop, base) if rng.random() < 0.8 else rec
        if rng.random() < self.p_detail:  # a better decoder: part of the real detail survives
            x = crop.astype(np.float32)
            detail = x - cv2.GaussianBlur(x, (0, 0), rng.uniform(0.8, 2.0))
            src = np.clip(src.astype(np.float32) + rng.uniform(0.2, 0.7) * detail, 0, 255).astype(np.uint8)
        if rng.random() < 0.3:  # and sometimes a sharpened output
            b = cv2.GaussianBlur(src, (0, 0), rng.uniform(0.6, 1.2))
            src = cv2.addWeighted(src, 1.5, b, -0.5, 0)
        a = mask[..., None]
        fake = crop.astype(np.float32) * (1 - a) + src.astype(np.float32) * a
        return np.clip(fake + 0.5, 0, 255).astype(np.uint8), mask


def main(argv: list[str] | None = None) -> None:
    from models.train.train_artefact import load_clip_crops

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sbi")
    ap.add_argument("--clips", type=Path, default=ROOT / ".cache" / "clips")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "ae_swap.npz")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    crops, lms, groups = load_cache(a.cache)
    cc, cl, cg = load_clip_crops(a.clips)
    crops, lms, groups = np.concatenate([crops, cc]), np.concatenate([lms, cl]), np.concatenate([groups, cg])
    assert crops.shape[1] == CROP
    net = train_ae(crops, a.epochs, a.seed)
    recon = reconstruct(net, crops)
    np.savez(a.out, crops=crops, lms=lms, groups=groups, recon=recon)
    torch.save(net.state_dict(), a.out.with_suffix(".pt"))
    err = np.abs(recon.astype(np.float32) - crops).mean()
    print(f"saved {len(crops)} crops + reconstructions (mean abs error {err:.2f}/255) -> {a.out}")


if __name__ == "__main__":
    main()
