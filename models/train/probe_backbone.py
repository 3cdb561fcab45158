"""Does a face-pretrained backbone help the artefact detector? A linear/MLP probe on FROZEN
features of the MediaPipe face-mesh network (Apache-2.0; ``models/onnx/face_mesh.onnx``) or of
dlib's face-recognition ResNet (CC0; ``models/onnx/face_embedding.onnx``), trained on synthetic
fakes made from REAL faces only, evaluated on the dev clips.

    .venv/bin/python -m models.train.probe_backbone --synth sbi            # self-blended fakes
    .venv/bin/python -m models.train.probe_backbone --synth ae --ae .cache/ae_swap.npz
    .venv/bin/python -m models.train.probe_backbone --synth sbi --backbone dlib

dlib features: the last residual sum of each of its five stages (32@35, 64@17, 128@8, 256@4,
256@2 of the 150-px aligned chip, made from the 128-px crop by ``FaceEmbedder.chip``), pooled the
same way (2,944 numbers per face).

Features: the output of each of the six backbone stages (16@96, 32@48, 64@24, 128@12, 128@6,
128@3 of the 192-px input; the aligned 128-px crop is resized to 192) pooled per channel — mean
and spread over the whole map, and the inner-face minus boundary-ring difference of both
(landmark hull masks) — 1,984 numbers per face. Probes: logistic regression and a 64-unit MLP
(torch, seed 0), standardised features. Training pairs come from the crop cache of
``sbi_data``/``eval_artefact`` (UTKFace + the real dev clips without a fake counterpart), split
by person/clip as ``train_artefact`` does; the dev clips' cached crops (``.cache/clips``) are
only scored. Prints: held-out synthetic AUC, video AUC (mean and q90 of the per-frame scores),
frame AUC, and how often a fake beats its own original (pairs).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.eval_artefact import clip_key, manifest  # noqa: E402
from models.train.sbi_data import SelfBlend, load_cache, shared_data  # noqa: E402
from models.train.train_artefact import auc, load_clip_crops, split_groups  # noqa: E402


def _pool(maps: list[np.ndarray], hull: np.ndarray) -> np.ndarray:
    """Per channel of each (1, C, H, W) map: mean and spread over the map, and inner-face minus
    boundary-ring difference of both (``hull`` = face-hull mask at the input's resolution)."""
    f = []
    for t in maps:
        t = t[0]
        ch, h, w = t.shape
        mm = cv2.resize(hull, (w, h), interpolation=cv2.INTER_AREA).reshape(-1)
        flat = t.reshape(ch, -1)
        inner, ring = mm > 0.75, (mm > 0.05) & (mm < 0.75)
        f += [flat.mean(1), flat.std(1)]
        if inner.sum() >= 2 and ring.sum() >= 2:
            fi, fr = flat[:, inner], flat[:, ring]
            f += [fi.mean(1) - fr.mean(1), fi.std(1) - fr.std(1)]
        else:
            f += [np.zeros(ch), np.zeros(ch)]
    return np.concatenate(f)


def _with_stage_outputs(name: str, stop: int | None, min_hw: int = 2):  # noqa: ANN202
    """An ONNX Runtime session of model ``name`` that also returns the last residual sum (Add) at
    each spatial resolution among its first ``stop`` nodes."""
    import onnx
    import onnxruntime as ort
    from onnx import shape_inference

    from liveness.core.registry import model_path

    m = onnx.load(str(model_path(name)))
    info = shape_inference.infer_shapes(m)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in info.graph.value_info}
    last: dict[tuple[int, ...], str] = {}
    for i, n in enumerate(m.graph.node):
        if stop is not None and i >= stop:
            break
        s = shapes.get(n.output[0]) if n.op_type == "Add" else None
        if s and len(s) == 4 and s[2] >= min_hw:
            last[s[1:]] = n.output[0]
    names = list(last.values())
    for nm in names:
        m.graph.output.append(onnx.helper.make_tensor_value_info(nm, onnx.TensorProto.FLOAT, None))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess, names


class DlibFeatures:
    """Frozen dlib face-recognition ResNet: its five stage outputs, pooled."""

    def __init__(self) -> None:
        from liveness.signals.embedding import FaceEmbedder
        from liveness.tracking.crop import face_oval

        self.sess, self.names = _with_stage_outputs("face_embedding", None)
        self.inp = self.sess.get_inputs()[0].name
        self.emb = FaceEmbedder()
        self.oval = face_oval()

    def __call__(self, crops: list[np.ndarray] | np.ndarray, lms: np.ndarray) -> np.ndarray:
        from liveness.signals.embedding import CHIP_SIZE, chip_transform

        out = []
        for c, lm in zip(crops, lms, strict=True):
            chip = self.emb.chip(np.ascontiguousarray(c), lm)
            inv = cv2.invertAffineTransform(chip_transform(lm))  # crop px -> chip px
            pts = lm[self.oval, :2] @ inv[:, :2].T + inv[:, 2]
            hull = np.zeros((CHIP_SIZE, CHIP_SIZE), np.float32)
            cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1.0)
            maps = self.sess.run(self.names, {self.inp: chip[None].astype(np.float32)})
            out.append(_pool(maps, hull))
        return np.asarray(out, np.float32)


class MeshFeatures:
    """Frozen face-mesh backbone: the six stage outputs as extra graph outputs."""

    def __init__(self) -> None:
        from liveness.tracking.crop import face_oval

        # the backbone ends before node 137 (the heads and the attention branches follow)
        self.sess, self.names = _with_stage_outputs("face_mesh", 137, min_hw=3)
        self.inp = self.sess.get_inputs()[0].name
        self.oval = face_oval()

    def __call__(self, crops: list[np.ndarray] | np.ndarray, lms: np.ndarray) -> np.ndarray:
        out = []
        for c, lm in zip(crops, lms, strict=True):
            x = cv2.resize(c, (192, 192), interpolation=cv2.INTER_LINEAR).astype(np.float32)[None] / 255.0
            hull = np.zeros(c.shape[:2], np.float32)
            cv2.fillConvexPoly(hull, cv2.convexHull(np.round(lm[self.oval, :2]).astype(np.int32)), 1.0)
            out.append(_pool(self.sess.run(self.names, {self.inp: x}), hull))
        return np.asarray(out, np.float32)


def load_dev(clips: Path, transform: Callable[[Any], Any]) -> list[tuple[bool, str, Any]]:
    """``(is_fake, stem, transform(npz))`` for every clip of the dev manifest, from the crop cache
    of ``eval_artefact`` (``crops``, ``lm_crop``)."""
    out = []
    for r in manifest(shared_data()):
        z = np.load(clips / f"{clip_key(r)}.npz")
        out.append((r["label"] == "fake", Path(r["path"]).stem, transform(z)))
    return out


def dev_metrics(dev: list[tuple[bool, str, Any]], score: Callable[[Any], np.ndarray]) -> str:
    """Markdown cells: video AUC of the clip mean and of its q90 of the per-crop scores, frame AUC,
    and how often a fake's mean beats its own original's."""
    lab, mean, q90, fl, fs, per = [], [], [], [], [], {}
    for is_fake, stem, x in dev:
        s = score(x)
        lab.append(is_fake)
        mean.append(s.mean())
        q90.append(np.quantile(s, 0.9))
        fl += [is_fake] * len(s)
        fs += list(s)
        per[(stem, is_fake)] = s.mean()
    wins = [per[(st, True)] > per[(st, False)] for (st, fk) in per if fk and (st, False) in per]
    y = np.asarray(lab)
    return (f"{auc(y, np.asarray(mean)):.3f} | {auc(y, np.asarray(q90)):.3f} | "
            f"{auc(np.asarray(fl), np.asarray(fs)):.3f} | {np.sum(wins)}/{len(wins)}")


def fit_probe(x: np.ndarray, y: np.ndarray, hidden: int = 0, seed: int = 0):  # noqa: ANN201
    import torch

    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.tensor((x - mu) / sd), torch.tensor(y, dtype=torch.float32)
    torch.manual_seed(seed)
    nn = torch.nn
    net = (nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, 1))
           if hidden else nn.Linear(x.shape[1], 1))
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3 if hidden else 1e-2, weight_decay=1e-3)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(net(xt).squeeze(1), yt).backward()
        opt.step()
    net.eval()
    return lambda a: net(torch.tensor((a - mu) / sd)).squeeze(1).detach().numpy()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", choices=("sbi", "ae"), default="sbi")
    ap.add_argument("--ae", type=Path, default=ROOT / ".cache" / "ae_swap.npz", help="ae_swap output")
    ap.add_argument("--cache", type=Path, default=ROOT / ".cache" / "sbi")
    ap.add_argument("--clips", type=Path, default=ROOT / ".cache" / "clips")
    ap.add_argument("--pairs", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backbone", choices=("mesh", "dlib"), default="mesh")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    feats = MeshFeatures() if a.backbone == "mesh" else DlibFeatures()
    sb = SelfBlend()
    if a.synth == "ae":
        from models.train.ae_swap import AESwap

        z = np.load(a.ae)
        crops, lms, groups = z["crops"], z["lms"], z["groups"]
        swap = AESwap(crops, lms, z["recon"])
    else:
        crops, lms, groups = load_cache(a.cache)
        cc, cl, cg = load_clip_crops(a.clips)
        crops, lms, groups = np.concatenate([crops, cc]), np.concatenate([lms, cl]), np.concatenate([groups, cg])
    val = split_groups(groups, a.seed)
    idx = rng.choice(len(crops), a.pairs)
    real, fake = [], []
    for i in idx:
        if a.synth == "ae":
            f, _ = swap.fake(int(i), rng)
            r, f = sb.global_aug([crops[i], f], rng, False)
        else:
            r, f, _ = sb.pair(crops[i], lms[i], rng)
        real.append(r)
        fake.append(f)
    xr, xf, g = feats(real, lms[idx]), feats(fake, lms[idx]), val[idx]

    dev = load_dev(a.clips, lambda z: feats(z["crops"], z["lm_crop"]))

    print(f"backbone: {a.backbone}; synthetic fakes: {a.synth}; {a.pairs} pairs ({int((~g).sum())} train / {int(g.sum())} held out)")
    print("| probe | held-out synthetic AUC | dev video AUC (mean) | (q90) | dev frame AUC | fake beats its original |")
    print("|---|---|---|---|---|---|")
    for name, hidden in (("linear", 0), ("MLP 64", 64)):
        tr = ~g
        f = fit_probe(np.concatenate([xr[tr], xf[tr]]), np.r_[np.zeros(tr.sum()), np.ones(tr.sum())], hidden, a.seed)
        s_auc = auc(np.r_[np.zeros(g.sum()), np.ones(g.sum())], np.r_[f(xr[g]), f(xf[g])])
        print(f"| {name} | {s_auc:.3f} | {dev_metrics(dev, f)} |")

if __name__ == "__main__":
    main()
