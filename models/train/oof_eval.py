"""Out-of-fold evaluation of the whole product with the swap detector (issue 13, items 6 and 7).

    .venv/bin/python -m models.train.oof_eval [--workers 2]        # out/eval/oof.json

The dev clips and the training clips were both used to train the shipped detector, so their
``artefact`` scores from the shipped file are in-sample. Here every clip is reviewed by the real
product (``liveness eval``) with a detector that never saw it: the items are split into the same
5 folds by ``group`` as ``train_swap``'s grouped CV, a head is fitted without each fold
(calibrated with the shipped file's Platt parameters) and written as an ONNX file, and the clips
of that fold are evaluated with ``liveness eval --artefact-model`` that file. The five eval files
are merged into one, which the fusion refit reads:

    .venv/bin/python models/train/fit_fusion.py out/eval/oof.json --bpcer-fake 0.03 \\
        --out liveness/_fusion_params.json
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.swap_data import items  # noqa: E402
from models.train.swap_graph import REGIONS  # noqa: E402
from models.train.train_swap import _fold_of, columns, dlib_scale, export, fit, layout, load  # noqa: E402

FOLDS = ROOT / ".cache" / "swap_folds"


def _manifest_rows() -> list[dict[str, str]]:
    """Every clip of the dev and train manifests with an absolute path and its item key."""
    rows = []
    for it in items():
        if it.kind != "clip":
            continue
        attack = "none"
        if it.label:
            attack = "faceswap_realtime" if it.generator in ("deepfacelive", "deeplivecam") else (
                "reenactment" if it.generator == "aniportrait" else "faceswap")
        rows.append({"path": str(it.path), "label": "fake" if it.label else "real", "attack": attack,
                     "pair": it.pair, "generator": it.generator if it.label else "", "key": it.key,
                     "group": it.group})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "eval" / "oof.json")
    ap.add_argument("--train-json", type=Path, default=ROOT / "models" / "cards" / "swap_detector.train.json")
    a = ap.parse_args(argv)
    meta = json.loads(a.train_json.read_text())
    t0 = time.time()
    regions = tuple(meta.get("regions", REGIONS))
    d = load(regions=regions)
    lay = layout(regions)
    cols = columns(lay, tuple(meta["backbones"].split(",")))
    kw = {"use_aug": meta["aug"], "cols": cols, "max_chips": meta.get("max_chips", 8),
          "scale": dlib_scale(lay, cols, meta.get("scale_dlib", 1.0)), "pair_center": meta.get("pair_center", 0.0)}
    fold = np.array([_fold_of(g, a.folds, meta["seed"]) for g in d.group])
    rows = _manifest_rows()
    FOLDS.mkdir(parents=True, exist_ok=True)
    merged: dict = {}
    for f in range(a.folds):
        model = FOLDS / f"fold{f}.onnx"
        h = fit(d, np.flatnonzero(fold != f), meta["C"], **kw)
        export(h, cols, lay, tuple(meta["platt"]), model, f"fold {f} of {a.folds}", regions)
        mine = [r for r in rows if _fold_of(r["group"], a.folds, meta["seed"]) == f]
        csv_path = FOLDS / f"fold{f}.csv"
        with csv_path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, ["path", "label", "attack", "pair", "generator"], extrasaction="ignore")
            w.writeheader()
            w.writerows(mine)
        out = FOLDS / f"eval{f}.json"
        print(f"fold {f}: {len(mine)} clips [{time.time() - t0:.0f}s]", flush=True)
        subprocess.run([sys.executable, "-m", "liveness.apps.cli", "eval", str(csv_path), "--artefact-model", str(model),
                        "--json", str(out), "--workers", str(a.workers), "-q"], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
        doc = json.loads(out.read_text())
        if not merged:
            merged = {**doc, "manifest": "out-of-fold: models/train/oof_eval.py", "clips": [], "errors": {}}
        merged["clips"] += doc["clips"]
        merged["errors"].update(doc.get("errors") or {})
    from liveness.apps.eval import format_per_tool, format_table, metrics, per_tool

    ms = metrics(merged["clips"])
    merged["metrics"] = [m.to_dict() for m in ms]
    merged["per_tool"] = per_tool(merged["clips"])
    merged.pop("confusion", None)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(merged, indent=1))
    print(format_table(ms))
    print(format_per_tool(merged["per_tool"]))
    print(f"wrote {a.out} [{time.time() - t0:.0f}s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
