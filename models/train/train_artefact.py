"""Train the face-swap artefact detector from REAL faces only (self-blended images) and export
it to ONNX.

    .venv/bin/python -m models.train.sbi_data --out .cache/sbi          # once: crops + landmarks
    .venv/bin/python -m models.train.eval_artefact --cache-only         # once: dev-clip crops
    nice -n 5 .venv/bin/python -m models.train.train_artefact --cache .cache/sbi --clips .cache/clips \
        --arch hf --epochs 8 --steps 40 --seed 0 --out models/onnx/artefact.onnx

The network (``--arch hf``, the shipped one) is a fixed block-statistics front end with a small
trainable CNN behind it, built for CPU real time (``--arch plain``: a plain 3x3-conv CNN on the
pixels). Its ONNX input is
``input``: (N, 128, 128, 3) float32 RGB in [0, 255] — the aligned crop of
``liveness.tracking.crop.align_crop(rgb, landmarks, 128)`` as is; the layout change and normalisation
are inside the graph. Output ``logit``: (N, 1); sigmoid(logit) = probability of a blended face.

Validation: self-blended pairs of held-out people/clips (fixed seed) every epoch → AUC; the
curve, sha256 and parity are written to ``--log`` (``models/cards/artefact.train.json``).

To retrain on your own licensed faces: ``python -m models.train.sbi_data --faces DIR --out
.cache/own`` (any folder of face images), then this script with ``--cache .cache/own``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.sbi_data import CROP, BlendOptions, SelfBlend, load_cache  # noqa: E402

# Real clips used for training (their frames are self-blended like the UTKFace crops). The
# paired real clips (DeepFaceLive originals, the roop target) are kept out so that the dev
# evaluation on pairs sees only unseen footage. Fake clips are never training data.
TRAIN_CLIP_PREFIXES = ("liveportrait_", "hdtf_", "retalking_", "dflsample_")


def load_clip_crops(clips: Path, every: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aligned crops + crop landmarks of the REAL training clips cached by ``eval_artefact``."""
    crops, lms, groups = [], [], []
    for p in sorted(clips.glob("real__*.npz")):
        name = p.stem.split("__", 1)[1]
        if not name.startswith(TRAIN_CLIP_PREFIXES):
            continue
        z = np.load(p)
        c, lm = z["crops"][::every], z["lm_crop"][::every]
        crops.append(c)
        lms.append(lm)
        groups += [f"clip/{name}"] * len(c)
    if not crops:
        return np.zeros((0, CROP, CROP, 3), np.uint8), np.zeros((0, 478, 2), np.float32), np.zeros(0, str)
    return np.concatenate(crops), np.concatenate(lms), np.asarray(groups)


def _torch():
    import torch

    return torch


def build_model(arch: str = "plain"):  # noqa: ANN201
    """``plain``: a 3x3 conv stack on the 128-px crop. ``hf``: fixed (untrained) filters measure
    local high-frequency energy, gradient and colour statistics in 4x4 blocks of the crop, and a
    small trainable CNN reads the resulting 32x32 maps — cheap enough to train on a busy CPU."""
    torch = _torch()
    nn = torch.nn
    F = torch.nn.functional

    class ConvBN(nn.Sequential):
        def __init__(self, ci: int, co: int, k: int = 3, s: int = 1, g: int = 1, act: bool = True) -> None:
            layers = [nn.Conv2d(ci, co, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(co)]
            if act:
                layers.append(nn.ReLU(inplace=True))
            super().__init__(*layers)

    class ArtefactNet(nn.Module):
        """Plain 3x3 conv stack (oneDNN-friendly for training on a CPU), ~45 M MACs at 128 px."""

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.full((1, 3, 1, 1), 127.5))
            self.register_buffer("std", torch.full((1, 3, 1, 1), 64.0))
            cfg = [(3, 16, 2), (16, 32, 2), (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 128, 2),
                   (128, 128, 1)]  # fmt: skip
            self.body = nn.Sequential(*[ConvBN(a, b, 3, s) for a, b, s in cfg])
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(256, 1)

        def forward(self, x):  # noqa: ANN001, ANN202
            # x: (N, H, W, 3) float RGB 0..255
            x = (x.permute(0, 3, 1, 2) - self.mean) / self.std
            x = self.body(x)
            x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
            return self.fc(self.drop(x))

    class HFFront(nn.Module):
        """Fixed front end: (N, 128, 128, 3) RGB 0..255 -> (N, 12, 32, 32) block statistics."""

        def __init__(self) -> None:
            super().__init__()
            g = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
            g = (g[:, None] * g[None, :]) / 256.0
            self.register_buffer("g5", g.view(1, 1, 5, 5))
            sob = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0
            self.register_buffer("sob", torch.stack([sob, sob.t()]).view(2, 1, 3, 3))
            self.register_buffer("lw", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

        def forward(self, x):  # noqa: ANN001, ANN202
            x = x.permute(0, 3, 1, 2) / 255.0
            y = (x * self.lw).sum(1, keepdim=True)
            b1 = F.conv2d(F.pad(y, (2, 2, 2, 2), mode="reflect"), self.g5)
            b2 = F.conv2d(F.pad(b1, (2, 2, 2, 2), mode="reflect"), self.g5)
            hp = (y - b1).abs()  # finest scale
            bp = (b1 - b2).abs()  # next scale
            gr = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), self.sob).abs().sum(1, keepdim=True)
            m = F.avg_pool2d(x, 4)
            sd = (F.avg_pool2d(x * x, 4) - m * m).clamp_min(0).add(1e-6).sqrt()
            e = [F.avg_pool2d(v, 4).add(1e-3).log() for v in (hp, bp, gr)]
            hx = F.avg_pool2d(hp, 4)
            ratio = (hx + 1e-3).log() - (F.avg_pool2d(bp, 4) + 1e-3).log()
            return torch.cat(e + [ratio, (m - 0.5) * 4, sd.add(1e-3).log(), (F.avg_pool2d(y, 4) - 0.5) * 4, hx * 20], 1)

    class HFNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.front = HFFront()
            self.bn0 = nn.BatchNorm2d(12)
            cfg = [(12, 32, 1), (32, 48, 2), (48, 48, 1), (48, 96, 2), (96, 96, 1)]
            self.body = nn.Sequential(*[ConvBN(a, b, 3, s) for a, b, s in cfg])
            self.drop = nn.Dropout(0.2)
            self.fc = nn.Linear(192, 1)

        def forward(self, x):  # noqa: ANN001, ANN202
            x = self.body(self.bn0(self.front(x)))
            x = torch.cat([x.mean(dim=(2, 3)), x.amax(dim=(2, 3))], dim=1)
            return self.fc(self.drop(x))

    if arch == "plain":
        return ArtefactNet()
    if arch == "hf":
        return HFNet()
    raise ValueError(f"unknown arch {arch!r}")


def auc(y: np.ndarray, s: np.ndarray) -> float:
    """ROC AUC by the rank-sum statistic (ties count half)."""
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def split_groups(groups: np.ndarray, seed: int, val_frac: float = 0.12) -> np.ndarray:
    """Boolean validation mask, whole groups (a UTKFace person-image, a clip) at a time, chosen
    by a hash of the group name so the split is stable across runs and machines."""
    def h(g: str) -> float:
        return int(hashlib.sha256(f"{seed}:{g}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF

    uniq = np.unique(groups)
    val = {g for g in uniq if h(str(g)) < val_frac}
    return np.array([g in val for g in groups])


def make_batch(
    sb: SelfBlend, crops: np.ndarray, lms: np.ndarray | None, idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for i in idx:
        lm = None if lms is None or not np.isfinite(lms[i, 0, 0]) else lms[i]
        real, fake, _ = sb.pair(crops[i], lm, rng)
        xs += [real, fake]
        ys += [0.0, 1.0]
    return np.stack(xs).astype(np.float32), np.asarray(ys, np.float32)


def export_onnx(model, path: Path, sample: np.ndarray) -> float:  # noqa: ANN001
    """Export, then check torch vs ONNX Runtime parity; returns the max abs logit difference."""
    torch = _torch()
    import onnxruntime as ort

    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    x = torch.from_numpy(sample)
    torch.onnx.export(
        model, (x,), str(path), input_names=["input"], output_names=["logit"],
        dynamic_axes={"input": {0: "n"}, "logit": {0: "n"}}, opset_version=17, dynamo=False,
    )
    import onnx

    m = onnx.load(str(path))
    m.producer_name = "interview-liveness/train_artefact"
    m.doc_string = "Self-blended-image face-swap artefact detector; input NHWC RGB float32 0..255"
    onnx.save(m, str(path))
    with torch.no_grad():
        ref = model(x).numpy()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": sample})[0]
    return float(np.abs(ref - got).max())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="train the self-blended-image artefact detector")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sbi")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "onnx" / "artefact.onnx")
    ap.add_argument("--log", type=Path, default=ROOT / "models" / "cards" / "artefact.train.json")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--steps", type=int, default=150, help="batches per epoch")
    ap.add_argument("--batch", type=int, default=24, help="pairs per batch (2x images)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--clips", type=Path, default=None, help="clip crop cache (.cache/clips)")
    ap.add_argument("--clip-every", type=int, default=3)
    ap.add_argument("--arch", choices=("plain", "hf"), default="hf")
    ap.add_argument("--no-landmarks", action="store_true", help="ellipse masks instead of mesh hulls")
    ap.add_argument("--init", type=Path, default=None, help="start from these torch weights")
    a = ap.parse_args(argv)

    torch = _torch()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)

    crops, lms, groups = load_cache(a.cache)
    if lms.shape[1:] != (478, 2):  # a cache without landmarks: ellipse masks for these crops
        lms = np.full((len(crops), 478, 2), np.nan, np.float32)
    if a.clips is not None:
        c2, l2, g2 = load_clip_crops(a.clips, a.clip_every)
        print(f"clips: {len(c2)} crops from {len(np.unique(g2))} real clips", flush=True)
        crops, lms, groups = np.concatenate([crops, c2]), np.concatenate([lms, l2]), np.concatenate([groups, g2])
    if a.no_landmarks:
        lms = None
    val = split_groups(groups, a.seed)
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    print(f"train {len(tr_idx)} crops, val {len(va_idx)} crops ({len(np.unique(groups[val]))} groups)", flush=True)

    sb = SelfBlend(BlendOptions())
    vrng = np.random.default_rng(12345)
    vsel = va_idx if len(va_idx) <= 600 else vrng.choice(va_idx, 600, replace=False)
    vx, vy = make_batch(sb, crops, lms, vsel, vrng)

    model = build_model(a.arch)
    if a.init is not None:
        model.load_state_dict(torch.load(a.init))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    total = a.epochs * a.steps
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=total, pct_start=0.15)
    lossf = torch.nn.BCEWithLogitsLoss()

    def evaluate() -> tuple[float, float]:
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(vx), 128):
                out.append(model(torch.from_numpy(vx[i : i + 128])).numpy()[:, 0])
        s = np.concatenate(out)
        loss = float(lossf(torch.from_numpy(s), torch.from_numpy(vy)))
        return auc(vy, s), loss

    curve = []
    t0 = time.time()
    for ep in range(a.epochs):
        model.train()
        tl, tg = 0.0, 0.0
        for _ in range(a.steps):
            idx = rng.choice(tr_idx, a.batch, replace=False)
            t1 = time.time()
            x, y = make_batch(sb, crops, lms, idx, rng)
            tg += time.time() - t1
            logit = model(torch.from_numpy(x))[:, 0]
            loss = lossf(logit, torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tl += float(loss.detach())
        vauc, vloss = evaluate()
        row = {"epoch": ep + 1, "train_loss": round(tl / a.steps, 4), "val_loss": round(vloss, 4),
               "val_auc": round(vauc, 4), "minutes": round((time.time() - t0) / 60, 2)}  # fmt: skip
        curve.append(row)
        print(json.dumps(row), f"(data {tg:.0f}s)", flush=True)

    a.cache.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), a.cache / (a.out.stem + ".pt"))
    diff = export_onnx(model, a.out, vx[:8])
    digest = hashlib.sha256(a.out.read_bytes()).hexdigest()
    info = {
        "command": "python -m models.train.train_artefact " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": a.seed, "epochs": a.epochs, "steps": a.steps, "batch_pairs": a.batch, "lr": a.lr,
        "train_crops": int(len(tr_idx)), "val_crops": int(len(va_idx)), "curve": curve,
        "arch": a.arch, "onnx_parity_max_abs_logit": diff, "sha256": digest, "input": [None, CROP, CROP, 3],
    }  # fmt: skip
    a.log.parent.mkdir(parents=True, exist_ok=True)
    a.log.write_text(json.dumps(info, indent=1) + "\n")
    print(f"exported {a.out} sha256={digest} parity={diff:.2e}", flush=True)


if __name__ == "__main__":
    main()
