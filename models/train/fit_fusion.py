"""Fit the fusion model (``liveness/_fusion_params.json``) from a ``liveness eval --json`` file.

Procedure (deterministic: same eval file -> same params):

1. Read the clips of a ``liveness.eval/1`` file: label (real / fake), attack kind, pair, and the
   clip-level value of every signal (``None`` = missing). Excluded signals (``quality``: footage
   quality is never evidence of fakery) are left out; a signal needs a value on
   ``--min-present`` clips and some spread to become a feature.
2. Model: logistic regression on standardised signals, coefficients constrained >= 0 (each signal
   is "higher = more likely not genuine", so the risk is monotonic in every signal and a noisy
   signal can only be switched off, never inverted), class-balanced weights (risk 0.5 = even odds
   at equal priors), L2 penalty. Missing values sit at the centre (the mean over dev reals), so a
   missing signal contributes nothing.
3. Clip-grouped cross-validation: leave one group out, where a group is a person / footage
   (``pair`` without its trailing ``_<n>``, else the file stem), so the real and swapped halves
   of one recording and all clips of one person are always on the same side. The transform
   (identity / logit) and the penalty are chosen by out-of-fold video AUC (ties -> identity and
   the stronger penalty).
4. Operating thresholds from the out-of-fold risks of dev reals: ``suspicious`` (an alarm) at
   BPCER <= ``--bpcer`` (default 5 %), ``fake`` at BPCER <= ``--bpcer-fake`` (default 1 %), each
   set halfway between the highest real risk allowed below it and the next risk above.
5. Final coefficients are fitted on all dev clips and written with metrics and provenance
   (eval file sha256, date, command).

    python models/train/fit_fusion.py out/eval/dev.json --out liveness/_fusion_params.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import minimize

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liveness.verdict.fusion import PARAMS_SCHEMA, FusionParams  # noqa: E402

DEFAULT_RULES = {
    "challenge": {"weight": 4.0, "center": 0.0, "reason": "fraction of challenges failed"},
    "challenge_breakdown": {"weight": 4.0, "center": 0.3, "reason": "signals broke down during challenges"},
    # only present with a reference photo / enrolment; not in the dev eval, so a fixed rule:
    # 0.5 is the identity threshold (distance 0.55), 0.99 adds +2.9 to the logit
    "reference_mismatch": {"weight": 6.0, "center": 0.5,
                           "reason": "the face does not match the reference identity (enrolment or photo)"},
}
EPS = 0.005
LAMBDAS = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
TRANSFORMS = ("identity", "logit")


# ----------------------------------------------------------------------------------------------
@dataclass
class Data:
    names: list[str]  # feature names
    x: np.ndarray  # (N, F) raw values, nan = missing
    y: np.ndarray  # (N,) 1 = fake
    groups: list[str]
    attacks: list[str]
    paths: list[str]


def group_of(clip: dict[str, Any]) -> str:
    pair = str(clip.get("pair") or "").strip()
    base = pair or Path(str(clip.get("path", ""))).stem
    return re.sub(r"_\d+$", "", base) or base


def load_eval(path: Path, exclude: Sequence[str], min_present: int) -> tuple[Data, dict[str, int]]:
    doc = json.loads(path.read_text("utf-8"))
    if doc.get("schema") not in (None, "liveness.eval/1"):
        raise SystemExit(f"{path}: schema {doc.get('schema')!r}, expected 'liveness.eval/1'")
    clips = [c for c in doc["clips"] if str(c.get("label", "")).lower() in ("real", "fake")]
    if not clips:
        raise SystemExit(f"{path}: no labelled clips")
    names = sorted({k for c in clips for k in (c.get("signals") or {})} - set(exclude))
    raw = np.array([[_num((c.get("signals") or {}).get(k)) for k in names] for c in clips], np.float64)
    raw = raw.reshape(len(clips), len(names))
    present = np.isfinite(raw).sum(axis=0)
    keep = []
    for j in range(len(names)):
        col = raw[:, j][np.isfinite(raw[:, j])]
        if present[j] >= min_present and col.size and np.ptp(col) > 1e-9:
            keep.append(j)
    coverage = {k: int(present[j]) for j, k in enumerate(names)}
    y = np.array([str(c["label"]).lower() == "fake" for c in clips], np.float64)
    return Data(
        [names[j] for j in keep], raw[:, keep], y, [group_of(c) for c in clips],
        [str(c.get("attack") or ("none" if y[i] == 0 else "fake")) for i, c in enumerate(clips)],
        [str(c.get("path", "")) for c in clips],
    ), coverage


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def transform(x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "logit":
        c = np.clip(x, EPS, 1 - EPS)
        return np.log(c / (1 - c))
    return x.copy()


def auc(score: np.ndarray, y: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half; nan when a class is empty."""
    m = np.isfinite(score)
    s, yy = score[m], y[m]
    pos, neg = s[yy == 1], s[yy == 0]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    gt = (pos[:, None] > neg[None, :]).sum()
    eq = (pos[:, None] == neg[None, :]).sum()
    return float((gt + 0.5 * eq) / (len(pos) * len(neg)))


# ----------------------------------------------------------------------------------------------
@dataclass
class Model:
    kind: str
    center: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        tx = transform(np.where(np.isfinite(x), x, 0.5), self.kind)
        z = np.where(np.isfinite(x), (tx - self.center) / self.scale, 0.0)
        return self.intercept + z @ self.coef

    def risk(self, x: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logit(x)))


def standardise(x: np.ndarray, y: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tx = transform(x, kind)
    f = x.shape[1]
    center, scale = np.zeros(f), np.ones(f)
    for j in range(f):
        col = tx[:, j]
        ok = np.isfinite(col)
        real = ok & (y == 0)
        center[j] = col[real].mean() if real.any() else (col[ok].mean() if ok.any() else 0.0)
        sd = col[ok].std() if ok.sum() > 1 else 1.0
        scale[j] = sd if sd > 1e-6 else 1.0
    z = np.where(np.isfinite(tx), (tx - center) / scale, 0.0)
    return z, center, scale


def fit(x: np.ndarray, y: np.ndarray, kind: str, lam: float) -> Model:
    z, center, scale = standardise(x, y, kind)
    n, f = z.shape
    n1, n0 = max(y.sum(), 1.0), max((1 - y).sum(), 1.0)
    w = np.where(y == 1, 0.5 * n / n1, 0.5 * n / n0)

    def loss(p: np.ndarray) -> tuple[float, np.ndarray]:
        b, c = p[0], p[1:]
        s = b + z @ c
        # log(1 + exp(-s)) for y=1, log(1 + exp(s)) for y=0, stably
        m = np.where(y == 1, -s, s)
        ll = np.logaddexp(0.0, m)
        g_s = w * np.where(y == 1, -1.0, 1.0) / (1.0 + np.exp(-m))
        val = float((w * ll).sum() / n + lam * (c @ c))
        grad = np.concatenate([[g_s.sum() / n], z.T @ g_s / n + 2 * lam * c])
        return val, grad

    p0 = np.zeros(f + 1)
    bounds = [(None, None)] + [(0.0, None)] * f
    res = minimize(loss, p0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 2000, "gtol": 1e-9, "ftol": 1e-12})
    return Model(kind, center, scale, np.maximum(res.x[1:], 0.0), float(res.x[0]))


def oof_risk(d: Data, kind: str, lam: float) -> np.ndarray:
    """Leave-one-group-out out-of-fold risks."""
    out = np.full(len(d.y), np.nan)
    groups = np.array(d.groups)
    for g in sorted(set(d.groups)):
        test = groups == g
        train = ~test
        if len(set(d.y[train])) < 2:
            continue
        out[test] = fit(d.x[train], d.y[train], kind, lam).risk(d.x[test])
    return out


def threshold_for_bpcer(risk: np.ndarray, y: np.ndarray, bpcer: float) -> float:
    """Smallest-alarm threshold with (reals at or above it) / reals <= bpcer, set halfway to the
    next risk above the highest real allowed below it."""
    real = np.sort(risk[(y == 0) & np.isfinite(risk)])[::-1]
    if real.size == 0:
        return 0.5
    k = int(math.floor(bpcer * real.size + 1e-9))
    if k >= real.size:
        return float(real[-1])
    r = real[k]  # the highest real risk that must stay below the threshold
    above = risk[np.isfinite(risk) & (risk > r)]
    nxt = float(above.min()) if above.size else min(1.0, r + 2 * (1.0 - r) * 0.25)
    return float(min(1.0, (r + nxt) / 2))


def rates(risk: np.ndarray, y: np.ndarray, attacks: Sequence[str], th: dict[str, float]) -> dict[str, Any]:
    alarm = risk >= th["suspicious"]
    fake = risk >= th["fake"]
    real = y == 0
    out: dict[str, Any] = {
        "bpcer": float(alarm[real].mean()) if real.any() else None,
        "bpcer_fake": float(fake[real].mean()) if real.any() else None,
        "apcer": {},
    }
    att = np.array(attacks)
    for a in sorted(set(att[y == 1])):
        m = (y == 1) & (att == a)
        out["apcer"][a] = {"n": int(m.sum()), "alarm_missed": float((~alarm[m]).mean()),
                           "fake_missed": float((~fake[m]).mean())}
    m = y == 1
    if m.any():
        out["apcer"]["all"] = {"n": int(m.sum()), "alarm_missed": float((~alarm[m]).mean()),
                               "fake_missed": float((~fake[m]).mean())}
    return out


def run(eval_path: Path, *, exclude: Sequence[str] = ("quality", "verdict"), min_present: int = 10,
        bpcer: float = 0.05, bpcer_fake: float = 0.01, command: str = "",
        transforms: Sequence[str] = TRANSFORMS, lambdas: Sequence[float] = LAMBDAS,
        ) -> tuple[dict[str, Any], str]:
    d, coverage = load_eval(eval_path, exclude, min_present)
    lines = [f"{len(d.y)} clips ({int(d.y.sum())} fake, {int((1 - d.y).sum())} real), "
             f"{len(set(d.groups))} groups; features: {', '.join(d.names) or '(none)'}"]
    single = {k: auc(d.x[:, j], d.y) for j, k in enumerate(d.names)}
    for k in sorted(coverage):
        a = single.get(k)
        lines.append(f"  {k:<24} present {coverage[k]:>3}/{len(d.y)}  video AUC "
                     + (f"{a:.3f}" if a is not None and math.isfinite(a) else "  -  (not a feature)"))
    if not d.names:
        raise SystemExit("no usable signal in the eval file: nothing to fit")

    best: tuple[float, int, float, str, np.ndarray] | None = None
    for ti, kind in enumerate(transforms):
        for lam in lambdas:
            r = oof_risk(d, kind, lam)
            a = auc(r, d.y)
            lines.append(f"  cv {kind:<8} lambda {lam:<6} out-of-fold AUC {a:.4f}")
            key = (round(a, 6), -ti, lam)
            if best is None or key > (best[0], best[1], best[2]):
                best = (round(a, 6), -ti, lam, kind, r)
    assert best is not None
    _, _, lam, kind, oof = best
    th = {"suspicious": threshold_for_bpcer(oof, d.y, bpcer),
          "fake": threshold_for_bpcer(oof, d.y, bpcer_fake)}
    th["fake"] = max(th["fake"], th["suspicious"])
    model = fit(d.x, d.y, kind, lam)
    ins = model.risk(d.x)
    metrics = {
        "n_clips": len(d.y), "n_fake": int(d.y.sum()), "n_real": int((1 - d.y).sum()),
        "n_groups": len(set(d.groups)),
        "single_signal_auc": {k: round(v, 4) for k, v in single.items()},
        "best_single_signal_auc": round(max(v for v in single.values() if math.isfinite(v)), 4),
        "fused_auc_oof": round(auc(oof, d.y), 4),
        "fused_auc_in_sample": round(auc(ins, d.y), 4),
        "transform": kind, "lambda": lam,
        "oof_at_thresholds": rates(oof, d.y, d.attacks, th),
        "in_sample_at_thresholds": rates(ins, d.y, d.attacks, th),
        "bpcer_target": bpcer, "bpcer_fake_target": bpcer_fake,
    }
    params = {
        "schema": PARAMS_SCHEMA, "fitted": True, "features": d.names, "transform": kind,
        "center": [round(float(v), 6) for v in model.center],
        "scale": [round(float(v), 6) for v in model.scale],
        "coef": [round(float(v), 6) for v in model.coef],
        "intercept": round(model.intercept, 6),
        "thresholds": {k: round(v, 6) for k, v in th.items()},
        "rules": {k: v for k, v in DEFAULT_RULES.items() if k not in d.names},
        "unfitted_weight": 0.0, "unfitted_center": 0.5, "exclude": list(exclude),
        "metrics": metrics,
        "provenance": {
            "eval_file": str(eval_path),
            "eval_sha256": hashlib.sha256(eval_path.read_bytes()).hexdigest(),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": command,
            "git_commit": _git_commit(),
            "procedure": "models/train/fit_fusion.py: non-negative class-balanced L2 logistic "
                         "regression, leave-one-group-out CV (group = person/footage)",
        },
    }
    FusionParams.from_dict(params)  # validate
    if not np.any(model.coef > 0):
        lines.append("WARNING: no signal carries evidence on these clips (every coefficient is 0): "
                     "the fused risk is constant")
    # the confusion table of the fitted fusion, in-sample (clips judged inconclusive stay so)
    from liveness.verdict.fusion import Fusion, confusion_table, format_confusion_table

    fusion = Fusion(FusionParams.from_dict(params))
    doc = json.loads(eval_path.read_text("utf-8"))
    rows = []
    for c in doc["clips"]:
        if str(c.get("label", "")).lower() not in ("real", "fake"):
            continue
        old = c.get("verdict") or {}
        risk = fusion.risk({k: v for k, v in (c.get("signals") or {}).items() if k not in exclude})
        rows.append({**c, "verdict": {"risk": risk,
                                      "label": "inconclusive" if old.get("label") == "inconclusive" else None}})
    metrics["confusion_in_sample"] = confusion_table(rows, th)
    lines.append("in-sample confusion table of the fitted fusion:")
    lines.append(format_confusion_table(metrics["confusion_in_sample"]))
    lines.append(f"chosen: {kind}, lambda {lam}; coef "
                 + ", ".join(f"{k}={c:.3f}" for k, c in zip(d.names, model.coef, strict=True)))
    lines.append(f"fused video AUC: out-of-fold {metrics['fused_auc_oof']:.4f}, in-sample "
                 f"{metrics['fused_auc_in_sample']:.4f}; best single signal "
                 f"{metrics['best_single_signal_auc']:.4f}")
    oo = metrics["oof_at_thresholds"]
    lines.append(f"thresholds suspicious {th['suspicious']:.4f} fake {th['fake']:.4f}: out-of-fold "
                 f"BPCER {oo['bpcer']:.3f} (fake {oo['bpcer_fake']:.3f}); APCER (alarm missed) "
                 + ", ".join(f"{k} {v['alarm_missed']:.3f}" for k, v in oo["apcer"].items()))
    return params, "\n".join(lines)


def _git_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("eval_json", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "liveness" / "_fusion_params.json")
    ap.add_argument("--exclude", nargs="*", default=["quality", "verdict"],
                    help="signals never used as evidence ('verdict' is the old fused risk)")
    ap.add_argument("--min-present", type=int, default=10)
    ap.add_argument("--bpcer", type=float, default=0.05)
    ap.add_argument("--bpcer-fake", type=float, default=0.01)
    a = ap.parse_args(argv)
    cmd = "python models/train/fit_fusion.py " + " ".join(
        shlex.quote(x) for x in (argv if argv is not None else sys.argv[1:]))
    params, text = run(a.eval_json, exclude=a.exclude, min_present=a.min_present, bpcer=a.bpcer,
                       bpcer_fake=a.bpcer_fake, command=cmd)
    print(text)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(params, indent=1) + "\n", "utf-8")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
