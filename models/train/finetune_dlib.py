"""Does *fine-tuning* a face-pretrained network beat training from scratch for the artefact
detector? dlib's face-recognition ResNet (CC0; ``models/onnx/face_embedding.onnx``, converted to
torch with ``onnx2torch``) up to its 256-d pooled features, plus a linear head, trained end to
end on fakes made from REAL faces only — self-blends (``sbi_data``), identity blends
(``identity_blend``, ``--synth identity``) or half of each (``--synth mix``); the same crops and
person/clip split as ``train_artefact`` — then scored on the dev clips' cached crops (never
trained on).

    pip install onnx2torch torch==2.13.0
    nice .venv/bin/python -m models.train.finetune_dlib --epochs 4 --steps 100 --seed 0
    nice .venv/bin/python -m models.train.finetune_dlib --synth identity --epochs 4 --steps 100 --seed 0

The 128-px aligned crop is resized to the network's 150-px input (no dlib chip alignment: the
fine-tune adapts to our crop). Prints the validation curve (held-out synthetic AUC), then dev
video AUC (mean and q90 of the per-crop scores), frame AUC and how often a fake beats its own
original. An experiment: it exports nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.identity_blend import IdentityBlend  # noqa: E402
from models.train.probe_backbone import dev_metrics, load_dev  # noqa: E402
from models.train.sbi_data import BlendOptions, SelfBlend, load_cache  # noqa: E402
from models.train.train_artefact import auc, load_clip_crops, make_batch, split_groups  # noqa: E402

SIDE = 150


def build(torch):  # noqa: ANN001, ANN201
    """dlib's ResNet up to the pooled 256-d features (as torch) and a linear head."""
    import onnx
    import onnx2torch
    from onnx.utils import Extractor

    from liveness.core.registry import model_path

    m = onnx.shape_inference.infer_shapes(onnx.load(str(model_path("face_embedding"))))
    flat = next(n.output[0] for n in m.graph.node if n.op_type == "Flatten")
    sub = Extractor(m).extract_model([m.graph.input[0].name], [flat])
    body = onnx2torch.convert(sub)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = body
            self.head = torch.nn.Linear(256, 1)

        def forward(self, x):  # noqa: ANN001, ANN202  (N, 150, 150, 3) float 0..255
            return self.head(self.body(x))

    return Net()


def to_input(imgs: np.ndarray) -> np.ndarray:
    return np.stack([cv2.resize(x, (SIDE, SIDE), interpolation=cv2.INTER_LINEAR) for x in imgs]).astype(np.float32)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sbi")
    ap.add_argument("--clips", type=Path, default=ROOT / ".cache" / "clips")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16, help="pairs per batch")
    ap.add_argument("--lr", type=float, default=1e-4, help="backbone learning rate (head x10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--synth", choices=("sbi", "identity", "mix"), default="sbi",
                    help="self-blends, identity blends (identity_blend.py), or half of each")
    a = ap.parse_args(argv)

    import torch

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    crops, lms, groups = load_cache(a.cache)
    c2, l2, g2 = load_clip_crops(a.clips)
    crops, lms, groups = np.concatenate([crops, c2]), np.concatenate([lms, l2]), np.concatenate([groups, g2])
    val = split_groups(groups, a.seed)
    if a.synth != "sbi":  # identity blends need landmarks on both faces
        has = np.isfinite(lms[:, 0, 0])
        crops, lms, groups, val = crops[has], lms[has], groups[has], val[has]
    tr_idx, va_idx = np.flatnonzero(~val), np.flatnonzero(val)
    sb = SelfBlend(BlendOptions())
    ib = IdentityBlend(crops, lms, groups) if a.synth != "sbi" else None

    def batch(idx: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if ib is None or (a.synth == "mix" and rng.random() < 0.5):
            x, y = make_batch(sb, crops, lms, idx, rng)
            return to_input(x.astype(np.uint8)), y
        xs = []
        for i in idx:
            xs += sb.global_aug([crops[i], ib.fake(int(i), rng)], rng, bool(rng.random() < 0.5))
        return to_input(np.stack(xs)), np.tile(np.array([0.0, 1.0], np.float32), len(idx))

    vrng = np.random.default_rng(12345)
    vsel = va_idx if len(va_idx) <= 400 else vrng.choice(va_idx, 400, replace=False)
    vx, vy = batch(vsel, vrng)

    net = build(torch)
    opt = torch.optim.AdamW([{"params": net.body.parameters(), "lr": a.lr},
                             {"params": net.head.parameters(), "lr": a.lr * 10}], weight_decay=1e-4)
    lossf = torch.nn.BCEWithLogitsLoss()

    def score(x: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return np.concatenate([net(torch.from_numpy(x[i : i + 64])).numpy()[:, 0] for i in range(0, len(x), 64)])

    t0 = time.time()
    for ep in range(a.epochs):
        net.train()
        tl = 0.0
        for _ in range(a.steps):
            x, y = batch(rng.choice(tr_idx, a.batch, replace=False), rng)
            loss = lossf(net(torch.from_numpy(x))[:, 0], torch.from_numpy(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            tl += float(loss.detach())
        print(json.dumps({"epoch": ep + 1, "train_loss": round(tl / a.steps, 4),
                          "val_auc": round(auc(vy, score(vx)), 4), "minutes": round((time.time() - t0) / 60, 1)}),
              flush=True)

    dev = load_dev(a.clips, lambda z: z["crops"])
    print("| dev video AUC (mean) | (q90) | dev frame AUC | fake beats its original |")
    print(f"| {dev_metrics(dev, lambda crops: score(to_input(crops)))} |")


if __name__ == "__main__":
    main()
