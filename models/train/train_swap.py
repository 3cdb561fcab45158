"""Train and evaluate the swap detector (issue 13): frozen backbone features, one linear head.

    .venv/bin/python -m models.train.swap_data --shard 0/2 & ... --shard 1/2    # chips, once
    .venv/bin/python -m models.train.swap_features --shard 0/2 & ... 1/2       # features, once
    .venv/bin/python -m models.train.train_swap --eval                        # protocol tables
    .venv/bin/python -m models.train.train_swap --ship                        # models/onnx/swap_detector.onnx

Unit of evaluation: an item (a clip, an image or a crop: the mean of its chips' logits). Protocol,
printed as markdown tables and written into the model card by ``--ship``:

* grouped 5-fold AUC over every item (folds by ``group``: a fake and its original stay together),
  overall, per domain, and the mean over domains;
* leave-one-tool-out: for each generator with >= 3 fake items, fit without that generator's items
  and their groups, then score its fakes against their own originals and against 20 % of the
  other real groups, also held out;
* pair win rate (a fake above its own original) and chip-level AUC.

Candidates (options, all in the same protocol): ``--regions`` pools each stage over other regions
of the chip (``swap_graph.region_mask``: the boundary ring, the outer area; features from
``swap_features --regions`` of the same list), ``--max-chips`` trains on more of a clip's chips,
``--pair-center`` adds pair-centred copies of paired chips, ``--hidden`` fits an MLP head,
``--sbi W`` adds self-blends of the real training items as fakes (``models.train.swap_sbi``).

Faceless chips (``swap_data``'s background control: backgrounds of the train folder's real clips
and synthetic textures) are training reals only; no table counts them.

Weighting: every item weighs the same within its source, whatever its number of chips; each fake
generator weighs sqrt(its item count) in all (DFDC's 1,370 crops count like 37 items, a tool with
4 items like 2), and the real domains weigh in proportion to sqrt(item count) too, the reals
summing to the fakes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.swap_data import Item, items  # noqa: E402
from models.train.swap_features import feature_dir, load_features  # noqa: E402
from models.train.swap_graph import REGIONS, Layout  # noqa: E402

OUT = ROOT / "models" / "onnx" / "swap_detector.onnx"


@dataclass
class Data:
    its: list[Item]
    raw: list[np.ndarray]  # per item (n_i, F)
    aug: list[np.ndarray]
    y: np.ndarray  # per item
    group: np.ndarray
    gen: np.ndarray
    dom: np.ndarray
    # per item: its self-blends' features (raw, aug) where ``swap_sbi`` made any (real items)
    sbi: list[tuple[np.ndarray, np.ndarray] | None] | None = None


def with_sbi(d: Data) -> Data:
    """``d`` with the self-blends of its real items (``models.train.swap_sbi``) loaded."""
    from models.train.swap_sbi import load_sbi

    d.sbi = [load_sbi(it) if it.label == 0 and it.domain != "faceless" else None for it in d.its]
    return d


def load(exclude_domains: tuple[str, ...] = (), regions: tuple[str, ...] = REGIONS) -> Data:
    its, raw, aug = [], [], []
    src = feature_dir(regions)
    for it in items():
        if it.domain in exclude_domains:
            continue
        r, a = load_features(it, src)
        if len(r) == 0:
            continue
        its.append(it)
        raw.append(r)
        aug.append(a)
    return Data(its, raw, aug, np.array([i.label for i in its]), np.array([i.group for i in its]),
                np.array([i.generator for i in its]), np.array([i.domain for i in its]))


def item_weights(d: Data, idx: np.ndarray) -> np.ndarray:
    """Per training item: fakes weigh 1/sqrt(n of their generator), reals 1/sqrt(n of their
    domain), reals rescaled to the fakes' total."""
    w = np.zeros(len(idx))
    y = d.y[idx]
    for key_arr, lab in ((d.gen[idx], 1), (d.dom[idx], 0)):
        sel = y == lab
        keys, inv, cnt = np.unique(key_arr[sel], return_inverse=True, return_counts=True)
        w[sel] = 1.0 / np.sqrt(cnt[inv])
    if (y == 0).any() and (y == 1).any():
        w[y == 0] *= w[y == 1].sum() / w[y == 0].sum()
    return w / w.mean()


@dataclass
class Head:
    mu: np.ndarray
    sd: np.ndarray
    w: np.ndarray
    b: float
    w1: np.ndarray | None = None  # (F, H): a hidden ReLU layer before w (an MLP head), or none
    b1: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mu) / self.sd
        if self.w1 is not None:
            z = np.maximum(z @ self.w1 + self.b1, 0.0)
        return z @ self.w + self.b


def fit(d: Data, idx: np.ndarray, C: float, use_aug: bool = True, cols: np.ndarray | None = None,
        max_chips: int = 8, train_exclude: tuple[str, ...] = (), scale: np.ndarray | None = None,
        pair_center: float = 0.0, hidden: int = 0, sbi: float = 0.0) -> Head:
    """Weighted logistic regression on standardised features of the items ``idx`` (raw chips,
    and their degraded copies with ``use_aug``; at most ``max_chips`` per item, evenly spread;
    items of the domains ``train_exclude`` left out). ``scale``: per-column factors applied after
    standardising (a block scaled down is penalised more by the L2 term). ``pair_center`` > 0:
    the chips of every pair with a fake and a real among ``idx`` also enter centred on their
    pair (the fakes' and the reals' mean averaged), with that fraction of their weight: what
    differs between a fake and its own original, with identity, lighting and crop style taken out.
    ``hidden`` > 0: an MLP head (one ReLU layer of that width, L2 ``alpha`` = 1 / C, as the linear head) instead.
    ``sbi`` > 0: the self-blends of the real training items (``d.sbi``) enter as fakes, each
    item's with ``sbi`` times that item's weight."""
    from sklearn.linear_model import LogisticRegression

    idx = np.asarray([i for i in idx if d.dom[i] not in train_exclude], np.int64)
    iw = item_weights(d, idx)
    centre: dict[str, np.ndarray] = {}
    if pair_center > 0:
        by: dict[str, list[list[np.ndarray]]] = defaultdict(lambda: [[], []])
        for i in idx:
            if d.dom[i] == "faceless":
                continue
            r = d.raw[i] if cols is None else d.raw[i][:, cols]
            by[d.its[i].pair or d.its[i].group][int(d.y[i])].append(r.mean(0))
        centre = {k: 0.5 * (np.mean(v[0], 0) + np.mean(v[1], 0)) for k, v in by.items() if v[0] and v[1]}
        g_mu = np.mean(list(centre.values()), 0) if centre else None
    xs, ys, ws = [], [], []
    for i, wi in zip(idx, iw, strict=True):
        n_i = len(d.raw[i])
        sel = np.unique(np.linspace(0, n_i - 1, min(n_i, max_chips)).round().astype(int))
        r = (d.raw[i] if cols is None else d.raw[i][:, cols])[sel]
        parts = [r]
        if use_aug:
            parts.append((d.aug[i] if cols is None else d.aug[i][:, cols])[sel])
        n = sum(len(p) for p in parts)
        for p in parts:
            xs.append(p)
            ys.append(np.full(len(p), d.y[i]))
            ws.append(np.full(len(p), wi / n))
        blends = d.sbi[i] if sbi > 0 and d.sbi is not None else None
        if blends is not None:
            bp = [blends[0] if cols is None else blends[0][:, cols]]
            if use_aug:
                bp.append(blends[1] if cols is None else blends[1][:, cols])
            nb = sum(len(p) for p in bp)
            for p in bp:
                xs.append(p)
                ys.append(np.ones(len(p), np.int64))
                ws.append(np.full(len(p), sbi * wi / nb))
        key = d.its[i].pair or d.its[i].group
        if key in centre and d.dom[i] != "faceless":
            xs.append(r - centre[key] + g_mu)
            ys.append(np.full(len(r), d.y[i]))
            ws.append(np.full(len(r), pair_center * wi / len(r)))
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(ys)
    sw = np.concatenate(ws)
    mu = x.mean(0)
    sd = x.std(0) + 1e-3
    if scale is not None:
        sd = sd / scale
    if hidden:
        from sklearn.neural_network import MLPClassifier

        mlp = MLPClassifier((hidden,), alpha=1.0 / C, batch_size=256, learning_rate_init=1e-3,
                            max_iter=30, random_state=0, tol=1e-5, n_iter_no_change=30)
        mlp.fit((x - mu) / sd, y, sample_weight=sw * len(sw) / sw.sum())
        return Head(mu, sd, mlp.coefs_[1][:, 0].copy(), float(mlp.intercepts_[1][0]),
                    mlp.coefs_[0].copy(), mlp.intercepts_[0].copy())
    lr = LogisticRegression(C=C, max_iter=500, tol=1e-4)
    lr.fit((x - mu) / sd, y, sample_weight=sw * len(sw) / sw.sum())
    return Head(mu, sd, lr.coef_[0].copy(), float(lr.intercept_[0]))


def auc(y: np.ndarray, s: np.ndarray) -> float:
    from scipy.stats import rankdata

    y = np.asarray(y).astype(bool)
    if y.all() or not y.any():
        return float("nan")
    r = rankdata(s)
    return float((r[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum()))


def _fold_of(group: str, k: int, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest(), 16) % k


def item_scores(d: Data, head: Head, idx: np.ndarray, cols: np.ndarray | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
    chips = [head(d.raw[i] if cols is None else d.raw[i][:, cols]) for i in idx]
    return np.array([c.mean() for c in chips]), chips


def grouped_cv(d: Data, C: float, k: int = 5, seed: int = 0, **kw) -> tuple[np.ndarray, list[np.ndarray]]:  # noqa: ANN003
    """Out-of-fold item scores (and chip scores) of every item."""
    fold = np.array([_fold_of(g, k, seed) for g in d.group])
    s = np.zeros(len(d.y))
    chips: list[np.ndarray] = [np.zeros(0)] * len(d.y)
    for f in range(k):
        te = np.flatnonzero(fold == f)
        h = fit(d, np.flatnonzero(fold != f), C, **kw)
        s[te], cs = item_scores(d, h, te, kw.get("cols"))
        for i, c in zip(te, cs, strict=True):
            chips[i] = c
    return s, chips


def pair_wins(d: Data, s: np.ndarray) -> tuple[int, int]:
    """Fakes whose score is above that of their own original (same pair id or, where the
    source gives none, the same group)."""
    real: dict[str, list[float]] = defaultdict(list)
    for it, v in zip(d.its, s, strict=True):
        if not it.label:
            real[it.pair or it.group].append(v)
    wins = tot = 0
    for it, v in zip(d.its, s, strict=True):
        key = it.pair or it.group
        if it.label and key in real:
            tot += 1
            wins += int(v > np.mean(real[key]))
    return wins, tot


def scored(d: Data, keep: np.ndarray) -> Data:
    """The items ``keep`` of ``d`` (boolean mask)."""
    ix = np.flatnonzero(keep)
    return Data([d.its[i] for i in ix], [d.raw[i] for i in ix], [d.aug[i] for i in ix], d.y[ix], d.group[ix],
                d.gen[ix], d.dom[ix])


def report_cv(d: Data, s: np.ndarray, chips: list[np.ndarray]) -> tuple[str, dict[str, float]]:
    keep = d.dom != "faceless"  # training-only background control
    if not keep.all():
        s, chips = s[keep], [c for c, k in zip(chips, keep, strict=True) if k]
        d = scored(d, keep)
    rows = ["| domain | real | fake | AUC |", "|---|---|---|---|"]
    per = {}
    for dom in sorted(set(d.dom)):
        m = d.dom == dom
        a = auc(d.y[m], s[m])
        per[dom] = a
        rows.append(f"| {dom} | {int((d.y[m] == 0).sum())} | {int((d.y[m] == 1).sum())} | {a:.3f} |")
    a_all = auc(d.y, s)
    fin = [v for v in per.values() if np.isfinite(v)]
    # each domain's fakes against all reals (domains with fakes only)
    cross = {}
    for dom in sorted(set(d.dom[d.y == 1])):
        m = (d.y == 0) | (d.dom == dom)
        cross[dom] = auc(d.y[m], s[m])
    w, t = pair_wins(d, s)
    cl = np.concatenate([np.full(len(c), d.y[i]) for i, c in enumerate(chips)])
    cs = np.concatenate(chips)
    rows.append(f"| **all** | {int((d.y == 0).sum())} | {int((d.y == 1).sum())} | **{a_all:.3f}** |")
    rows.append("")
    rows.append("| fakes of | against every real item: AUC |")
    rows.append("|---|---|")
    rows += [f"| {k} | {v:.3f} |" for k, v in cross.items()]
    bal = float(np.mean(list(cross.values())))
    rows.append(f"| **mean over fake domains** | **{bal:.3f}** |")
    rows.append("")
    rows.append(f"within-domain mean AUC {np.mean(fin):.3f}; pair win rate {w}/{t}; chip-level AUC {auc(cl, cs):.3f}")
    return "\n".join(rows), {"auc": a_all, "balanced": bal, "pair_wins": w / max(t, 1), "chip_auc": auc(cl, cs)}


def loto(d: Data, C: float, seed: int = 0, **kw) -> tuple[str, float]:  # noqa: ANN003
    rng = np.random.default_rng(seed)
    gens = [g for g in sorted(set(d.gen[d.y == 1])) if (d.gen == g).sum() >= 3]
    real_groups = sorted(set(d.group[d.y == 0]))
    rows = ["| held-out generator | fakes | reals | AUC | fake above its original |", "|---|---|---|---|---|"]
    res = []
    for g in gens:
        gg = set(d.group[d.gen == g])
        extra = set(rng.choice(real_groups, max(1, len(real_groups) // 5), replace=False)) - gg
        test = np.flatnonzero(((d.gen == g)) | ((d.y == 0) & np.isin(d.group, list(gg | extra)) & (d.dom != "faceless")))
        train = np.flatnonzero(~np.isin(d.group, list(gg | extra)) & (d.gen != g))
        h = fit(d, train, C, **kw)
        s, _ = item_scores(d, h, test, kw.get("cols"))
        a = auc(d.y[test], s)
        sub = Data([d.its[i] for i in test], [], [], d.y[test], d.group[test], d.gen[test], d.dom[test])
        w, t = pair_wins(sub, s)
        res.append(a)
        rows.append(f"| {g} | {int((d.y[test] == 1).sum())} | {int((d.y[test] == 0).sum())} | {a:.3f} | {w}/{t} |")
    m = float(np.mean(res))
    rows.append(f"| **mean** | | | **{m:.3f}** | |")
    return "\n".join(rows), m


def columns(layout: Layout, backbones: tuple[str, ...]) -> np.ndarray:
    cols, o = [], 0
    for bb, _k, _c, _hw, width in layout:
        if bb in backbones:
            cols.append(np.arange(o, o + width))
        o += width
    return np.concatenate(cols)


def dlib_scale(lay: Layout, cols: np.ndarray, factor: float) -> np.ndarray:
    """``fit``'s per-column ``scale``: ``factor`` on the dlib columns among ``cols``, 1 elsewhere."""
    return np.where(np.isin(cols, columns(lay, ("dlib",))), factor, 1.0)


def layout(regions: tuple[str, ...] = REGIONS) -> Layout:
    from models.train.swap_graph import feature_graph

    return feature_graph(regions)[1]


def platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4).fit(s[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--backbones", default="dlib,mesh")
    ap.add_argument("--regions", default=",".join(REGIONS), help="pooling regions (swap_graph.ALL_REGIONS)")
    ap.add_argument("--no-aug", action="store_true")
    ap.add_argument("--exclude", default="", help="domains left out of training and evaluation")
    ap.add_argument("--train-exclude", default="", help="domains left out of training only")
    ap.add_argument("--max-chips", type=int, default=8, help="training chips per item at most")
    ap.add_argument("--scale-dlib", type=float, default=1.0,
                    help="factor on the standardised dlib features (< 1: penalised more)")
    ap.add_argument("--eval", action="store_true", help="grouped CV + leave-one-tool-out tables")
    ap.add_argument("--no-loto", action="store_true")
    ap.add_argument("--ship", action="store_true", help="fit on everything, write the ONNX + tables")
    ap.add_argument("--pair-center", type=float, default=0.0,
                    help="weight of pair-centred copies of the paired chips (0: none)")
    ap.add_argument("--hidden", type=int, default=0, help="an MLP head with this many ReLU units (0: linear)")
    ap.add_argument("--sbi", type=float, default=0.0,
                    help="self-blends of the real training items as fakes, at this times their weight "
                         "(models.train.swap_sbi first; 0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--oof", type=Path, default=None, help="write out-of-fold item scores (JSON)")
    a = ap.parse_args(argv)
    if a.ship and a.hidden:
        ap.error("--hidden is a candidate for --eval only: --ship exports a linear head")
    if a.sbi > 0 and tuple(x for x in a.regions.split(",") if x) != REGIONS:
        ap.error("--sbi: the self-blends' features are pooled over the shipped regions only")
    t0 = time.time()
    regions = tuple(x for x in a.regions.split(",") if x)
    d = load(tuple(x for x in a.exclude.split(",") if x), regions)
    if a.sbi > 0:
        d = with_sbi(d)
        print(f"self-blends of {sum(b is not None for b in d.sbi or [])} real items, weight {a.sbi}", flush=True)
    lay = layout(regions)
    cols = columns(lay, tuple(a.backbones.split(",")))
    scale = dlib_scale(lay, cols, a.scale_dlib)
    kw = {"use_aug": not a.no_aug, "cols": cols, "max_chips": a.max_chips,
          "train_exclude": tuple(x for x in a.train_exclude.split(",") if x), "scale": scale,
          "pair_center": a.pair_center, "hidden": a.hidden, "sbi": a.sbi}
    print(f"{len(d.y)} items ({int(d.y.sum())} fake), {len(cols)} features, C={a.C}, aug={not a.no_aug} "
          f"[{time.time() - t0:.0f}s]", flush=True)
    s, chips = grouped_cv(d, a.C, seed=a.seed, **kw)
    cv_table, cv = report_cv(d, s, chips)
    print(cv_table, flush=True)
    print(f"[{time.time() - t0:.0f}s]", flush=True)
    if a.oof:
        a.oof.write_text(json.dumps({it.key: float(v) for it, v in zip(d.its, s, strict=True)}, indent=0))
    lt_table, lt = "", float("nan")
    if not a.no_loto:
        lt_table, lt = loto(d, a.C, seed=a.seed, **kw)
        print(lt_table, flush=True)
        print(f"[{time.time() - t0:.0f}s]", flush=True)
    if a.ship:
        pa, pb = platt(s, d.y)  # calibration on out-of-fold item scores
        h = fit(d, np.arange(len(d.y)), a.C, **kw)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        args = " ".join(argv if argv is not None else sys.argv[1:])
        export(h, cols, lay, (pa, pb), OUT, f"interview-liveness swap detector; train_swap {args} at {commit}",
               regions)
        meta = {"command": f"python -m models.train.train_swap {args}", "C": a.C, "backbones": a.backbones,
                "regions": list(regions),
                "scale_dlib": a.scale_dlib, "pair_center": a.pair_center, "sbi": a.sbi,
                "aug": not a.no_aug, "max_chips": a.max_chips, "seed": a.seed, "platt": [pa, pb],
                "items": int(len(d.y)), "fakes": int(d.y.sum()), "cv": cv, "loto_mean": lt}
        (ROOT / "models" / "cards" / "swap_detector.train.json").write_text(json.dumps(meta, indent=1) + "\n")
        (ROOT / "models" / "cards" / "swap_detector.tables.md").write_text(
            f"### Grouped 5-fold (out of fold)\n\n{cv_table}\n\n### Leave one tool out\n\n{lt_table}\n")
        print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB) [{time.time() - t0:.0f}s]")


def export(h: Head, cols: np.ndarray, lay: Layout, cal: tuple[float, float],
           path: Path, doc: str, regions: tuple[str, ...] = REGIONS) -> None:
    """The detector ONNX: the feature graph, then the head with standardisation and the Platt
    calibration ``cal`` = (a, b) folded into one MatMul + Add."""
    import onnx

    from models.train.swap_graph import detector_graph

    pa, pb = cal
    w_full = np.zeros(sum(st[4] for st in lay))
    w_full[cols] = pa * h.w / h.sd
    b = pa * (h.b - float((h.mu / h.sd) @ h.w)) + pb
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(detector_graph(w_full, b, doc, regions), str(path))

if __name__ == "__main__":
    main()
