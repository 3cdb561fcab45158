"""`liveness eval`: review every clip of a labelled manifest and score every signal.

Metrics per signal (and for the fused verdict risk): video-level AUC, frame-level AUC, EER,
BPCER at the threshold giving APCER = 10 %, per-attack AUC, and per-clip scores. Higher scores
mean "more likely not genuine"; fakes are the positive class.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import InputError
from liveness.core.files import file_sha256, write_atomic
from liveness.verdict.confusion import confusion_table, format_confusion_table
from liveness.verdict.fusion import Fusion, verdict_from_review

__all__ = ["Metrics", "auc", "bpcer_at_apcer", "eer", "format_per_tool", "load_manifest", "metrics", "per_tool",
           "run_eval"]

EVAL_SCHEMA = "liveness.eval/1"


def _finite(xs: Sequence[float | None]) -> np.ndarray:
    return np.asarray([x for x in xs if x is not None and np.isfinite(x)], np.float64)


def auc(neg: Sequence[float], pos: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties count half)."""
    n, p = _finite(neg), _finite(pos)
    if n.size == 0 or p.size == 0:
        return None
    allv = np.concatenate([n, p])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(allv.size, np.float64)
    sv = allv[order]
    # average ranks for ties
    i = 0
    while i < sv.size:
        j = i
        while j + 1 < sv.size and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rp = ranks[n.size :].sum()
    return float((rp - p.size * (p.size + 1) / 2.0) / (p.size * n.size))


def _rates(neg: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    thr = np.unique(np.concatenate([neg, pos, [np.inf]]))
    bpcer = np.array([(neg >= t).mean() for t in thr])  # reals flagged
    apcer = np.array([(pos < t).mean() for t in thr])  # fakes passed
    return thr, apcer, bpcer


def eer(neg: Sequence[float], pos: Sequence[float]) -> float | None:
    n, p = _finite(neg), _finite(pos)
    if n.size == 0 or p.size == 0:
        return None
    _, apcer, bpcer = _rates(n, p)
    k = int(np.argmin(np.abs(apcer - bpcer)))
    return float((apcer[k] + bpcer[k]) / 2)


def bpcer_at_apcer(
    neg: Sequence[float], pos: Sequence[float], apcer_target: float = 0.10
) -> tuple[float | None, float | None]:
    """(BPCER, threshold) at the highest threshold whose APCER <= target."""
    n, p = _finite(neg), _finite(pos)
    if n.size == 0 or p.size == 0:
        return None, None
    thr, apcer, bpcer = _rates(n, p)
    ok = np.nonzero(apcer <= apcer_target + 1e-12)[0]
    k = int(ok.max())
    return float(bpcer[k]), float(thr[k])


@dataclass(frozen=True)
class Metrics:
    signal: str
    n_real: int
    n_fake: int
    video_auc: float | None
    frame_auc: float | None
    eer: float | None
    bpcer_at_apcer10: float | None
    threshold_apcer10: float | None
    per_attack_auc: tuple[tuple[str, float | None], ...]
    paired_auc: float | None = None  # only clips whose `pair` has both a real and a fake clip
    pair_wins: float | None = None  # fraction of such pairs where the fake scores above its real

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = asdict(self)
        d["per_attack_auc"] = dict(self.per_attack_auc)
        return d


def load_manifest(path: str | Path, root: str | Path | None = None) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    base = Path(root) if root else path.parent
    rows = []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "path" not in reader.fieldnames or "label" not in reader.fieldnames:
            raise InputError(f"{path}: manifest needs 'path' and 'label' columns")
        for r in reader:
            if (r.get("kind") or "clip").strip() != "clip":  # a training manifest's stills
                continue
            label = (r.get("label") or "").strip().lower()
            if label not in ("real", "fake"):
                raise InputError(f"{path}: label must be real or fake, got {label!r}")
            rows.append({
                "path": r["path"],
                "file": str(base / r["path"]),
                "label": label,
                "attack": (r.get("attack") or ("none" if label == "real" else "fake")).strip(),
                "pair": (r.get("pair") or "").strip(),
                "generator": (r.get("generator") or "").strip(),
            })
    if not rows:
        raise InputError(f"{path}: manifest has no clips")
    return rows


def _review_one(file: str, opts_json: str, cache_file: str) -> tuple[str, dict[str, Any] | None, str | None]:
    from liveness.apps.common import single_threaded_opencv
    from liveness.apps.review import ReviewOptions, review_video
    from liveness.apps.schedule import ScheduleOptions
    from liveness.pipeline import PipelineOptions
    from liveness.tracking.tracker import TrackerOptions

    single_threaded_opencv()  # spawned workers do not inherit the parent's setting
    o = json.loads(opts_json)
    pipeline = PipelineOptions(tracker=TrackerOptions(threads=o["threads"]))
    if o.get("artefact_model"):  # the artefact analyser's own defaults, with another model file
        from dataclasses import replace

        from liveness.pipeline import ANALYSERS

        reg = next(r for r in ANALYSERS if r.name == "artefact")
        pipeline = replace(pipeline, analysers=(("artefact", replace(reg.defaults(pipeline), model=o["artefact_model"])),))
    opts = ReviewOptions(
        pipeline=pipeline,
        max_side=o["max_side"],
        stride=o["stride"],
        schedule=ScheduleOptions() if o.get("fast") else None,
    )
    try:
        doc = review_video(file, opts)
    except Exception as exc:  # one bad clip must not end the evaluation
        return file, None, f"{type(exc).__name__}: {exc}"
    write_atomic(cache_file, json.dumps(doc))
    return file, doc, None


def _clip_entry(row: dict[str, str], doc: dict[str, Any]) -> dict[str, Any]:
    # fuse again with the current fusion parameters (cached reviews may predate a refit)
    doc = {**doc, "verdict": verdict_from_review(doc).to_dict()}
    sig = {k: v.get("value") for k, v in doc["signals"].items()}
    sig["verdict"] = doc["verdict"].get("risk")
    frames: dict[str, list[float]] = {}
    for r in doc["timeline"]:
        for k in doc["signals"]:
            v = r.get(k)
            if isinstance(v, (int, float)):
                frames.setdefault(k, []).append(float(v))
    return {
        "path": row["path"],
        "label": row["label"],
        "attack": row["attack"],
        "pair": row["pair"],
        "generator": row.get("generator", ""),
        "signals": sig,
        "verdict": doc["verdict"],
        "face_fraction": doc["summary"]["face_fraction"],
        "frames": frames,
    }


def metrics(clips: Sequence[dict[str, Any]]) -> list[Metrics]:
    names: list[str] = []
    for c in clips:
        for k in c["signals"]:
            if k not in names:
                names.append(k)
    out = []
    for name in names:
        neg = [c["signals"].get(name) for c in clips if c["label"] == "real"]
        pos = [c["signals"].get(name) for c in clips if c["label"] == "fake"]
        neg = [x for x in neg if x is not None]
        pos = [x for x in pos if x is not None]
        fneg = [v for c in clips if c["label"] == "real" for v in c["frames"].get(name, [])]
        fpos = [v for c in clips if c["label"] == "fake" for v in c["frames"].get(name, [])]
        attacks = sorted({c["attack"] for c in clips if c["label"] == "fake"})
        per = tuple(
            (a, auc(neg, [c["signals"].get(name) for c in clips if c["attack"] == a and c["signals"].get(name) is not None]))
            for a in attacks
        )
        b, thr = bpcer_at_apcer(neg, pos)
        pa, wins = _paired(clips, name)
        out.append(Metrics(name, len(neg), len(pos), auc(neg, pos), auc(fneg, fpos), eer(neg, pos), b, thr, per,
                           pa, wins))
    return out


def _paired(clips: Sequence[dict[str, Any]], name: str) -> tuple[float | None, float | None]:
    """AUC over the clips of real/fake pairs (same footage, only the face differs) and the share
    of pairs where the fake scores higher than its own real."""
    by_pair: dict[str, dict[str, list[float]]] = {}
    for c in clips:
        v = c["signals"].get(name)
        if c.get("pair") and v is not None:
            by_pair.setdefault(c["pair"], {}).setdefault(c["label"], []).append(float(v))
    both = {k: d for k, d in by_pair.items() if "real" in d and "fake" in d}
    if not both:
        return None, None
    neg = [v for d in both.values() for v in d["real"]]
    pos = [v for d in both.values() for v in d["fake"]]
    wins = [float(np.mean(d["fake"]) > np.mean(d["real"])) for d in both.values()]
    return auc(neg, pos), float(np.mean(wins))


def per_tool(clips: Sequence[dict[str, Any]], signals: Sequence[str] = ("artefact", "verdict")) -> list[dict[str, Any]]:
    """Per tool (the manifest's ``generator``, else its ``attack``): fakes, each signal's AUC of
    those fakes against every real clip, and the share of them the verdict flags (suspicious or
    fake)."""
    reals = [c for c in clips if c["label"] == "real"]
    tools = sorted({c.get("generator") or c["attack"] for c in clips if c["label"] == "fake"})
    out = []
    for tool in tools:
        fakes = [c for c in clips if c["label"] == "fake" and (c.get("generator") or c["attack"]) == tool]
        row: dict[str, Any] = {"tool": tool, "fakes": len(fakes)}
        for name in signals:
            row[name] = auc([c["signals"].get(name) for c in reals], [c["signals"].get(name) for c in fakes])
        row["flagged"] = float(np.mean([c["verdict"].get("label") in ("suspicious", "fake") for c in fakes]))
        out.append(row)
    return out


def format_per_tool(rows: Sequence[dict[str, Any]], signals: Sequence[str] = ("artefact", "verdict")) -> str:
    head = f"{'tool':24s} {'fakes':>5s} " + " ".join(f"{s[:10] + ' AUC':>14s}" for s in signals) + f" {'flagged':>7s}"
    lines = [head]
    for r in rows:
        vals = " ".join(f"{_fmt(r[s]):>14s}" for s in signals)
        lines.append(f"{r['tool'][:24]:24s} {r['fakes']:5d} {vals} {r['flagged']:7.2f}")
    return "\n".join(lines)


def _fmt(x: float | None, nd: int = 3) -> str:
    return "  n/a" if x is None else f"{x:.{nd}f}"


def format_table(ms: Sequence[Metrics]) -> str:
    lines = [f"{'signal':26s} {'n_real':>6s} {'n_fake':>6s} {'vAUC':>6s} {'fAUC':>6s} {'EER':>6s} "
             f"{'BPCER@APCER10':>13s} {'pairAUC':>7s} {'pairWin':>7s}  per-attack vAUC"]
    for m in ms:
        per = ", ".join(f"{a}={_fmt(v, 2)}" for a, v in m.per_attack_auc)
        lines.append(
            f"{m.signal:26s} {m.n_real:6d} {m.n_fake:6d} {_fmt(m.video_auc):>6s} {_fmt(m.frame_auc):>6s} "
            f"{_fmt(m.eer):>6s} {_fmt(m.bpcer_at_apcer10):>13s} {_fmt(m.paired_auc):>7s} {_fmt(m.pair_wins, 2):>7s}  {per}"
        )
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    rows = load_manifest(args.manifest, args.root)
    if args.limit:
        rows = rows[: args.limit]
    missing = [r["file"] for r in rows if not Path(r["file"]).is_file()]
    if missing:
        n = len(missing)
        raise InputError(f"{n} of the manifest's {len(rows)} clips {'is' if n == 1 else 'are'} not found "
                         f"(first: {missing[0]}); check the manifest's paths and --root")
    from liveness.apps.common import check_writable

    check_writable(args.json, "the eval JSON")
    cache = Path(args.cache or ".cache/eval")
    cache.mkdir(parents=True, exist_ok=True)
    opts: dict[str, Any] = {"threads": args.threads, "max_side": args.max_side, "stride": args.stride}
    if getattr(args, "fast", False):  # the cache key of the every-frame review is unchanged
        opts["fast"] = True
    model = getattr(args, "artefact_model", None)
    if model:
        if not Path(model).is_file():
            raise InputError(f"{model}: --artefact-model file not found")
        opts["artefact_model"] = str(Path(model).resolve())
        opts["artefact_model_sha256"] = file_sha256(model)
    from liveness.core.version import __version__

    okey = hashlib.sha256(json.dumps([opts, __version__, _models_key()], sort_keys=True).encode()).hexdigest()[:12]
    todo, docs = [], {}
    for r in rows:
        cf = cache / f"{file_sha256(r['file'])[:16]}_{okey}.json"
        r["cache"] = str(cf)
        if cf.is_file():
            try:
                docs[r["file"]] = json.loads(cf.read_text())
                continue
            except json.JSONDecodeError:
                pass
        todo.append(r)
    if not args.quiet:
        print(f"eval: {len(rows)} clips, {len(rows) - len(todo)} cached, {len(todo)} to review", file=sys.stderr)
    errors: dict[str, str] = {}
    if todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="clips", file=sys.stderr, disable=args.quiet)
        if args.workers <= 1:
            for r in todo:
                f, doc, err = _review_one(r["file"], json.dumps(opts), r["cache"])
                if doc is not None:
                    docs[f] = doc
                else:
                    errors[f] = err or "?"
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as ex:
                futs = [ex.submit(_review_one, r["file"], json.dumps(opts), r["cache"]) for r in todo]
                for fut in as_completed(futs):
                    f, doc, err = fut.result()
                    if doc is not None:
                        docs[f] = doc
                    else:
                        errors[f] = err or "?"
                    bar.update(1)
        bar.close()
    clips = [_clip_entry(r, docs[r["file"]]) for r in rows if r["file"] in docs]
    ms = metrics(clips)
    table = format_table(ms)
    print(table)
    print()
    print(f"{'clip':52s} {'label':5s} {'attack':18s} " + " ".join(f"{m.signal[:10]:>10s}" for m in ms))
    for c in clips:
        vals = " ".join(f"{_fmt(c['signals'].get(m.signal)):>10s}" for m in ms)
        print(f"{c['path'][-52:]:52s} {c['label']:5s} {c['attack'][:18]:18s} {vals}")
    tools = per_tool(clips)
    print()
    print("per tool: each fake tool against every real clip; flagged = verdict suspicious or fake")
    print(format_per_tool(tools))
    confusion = confusion_table(clips, Fusion().thresholds)
    print()
    print("fused verdict at the operating thresholds (APCER per attack kind, BPCER):")
    print(format_confusion_table(confusion))
    for f, e in errors.items():
        print(f"error: {f}: {e}", file=sys.stderr)
    if args.json:
        doc = {
            "schema": EVAL_SCHEMA,
            "manifest": str(args.manifest),
            "options": opts,
            "metrics": [m.to_dict() for m in ms],
            "clips": clips,
            "per_tool": tools,
            "errors": errors,
            "confusion": confusion,
        }
        p = Path(args.json)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(doc, indent=1))
    return 1 if errors and not clips else 0


def _models_key() -> list[str]:
    """Model hashes and a hash of the package's code: a cached review is reused only when
    neither changed (fusion parameters are excluded: cached reviews are re-fused)."""
    from liveness.core.registry import MODELS

    code = hashlib.sha256()
    pkg = Path(__file__).resolve().parent.parent
    for p in sorted(pkg.rglob("*.py")):
        code.update(str(p.relative_to(pkg)).encode())
        code.update(p.read_bytes())
    return sorted(f"{k}:{v.sha256}" for k, v in MODELS.items()) + [f"code:{code.hexdigest()}"]
