"""CPU per analysed frame of the live pipeline, per stage (issue 16 item 3).

    .venv/bin/python benchmarks/bench_live_cost.py [--clips 6] [--seconds 12] [--fps 15] [--json OUT]

Dev clips from ``../shared/data`` (every ``--every``-th real and fake clip of the manifest, alternating)
fitted to 640x480 (``tests._serve_util.fit_4x3``), fed at ``--fps`` timestamps to the session
``liveness serve`` builds for a live call (``build_session(PipelineOptions(live=True))``),
``max_side`` as the server's default. Per stage (tracker, each analyser, the server's
snapshot of signals and verdict at its status rate) ``time.thread_time()`` around the call,
so the figures are CPU, not wall, and stay meaningful on a loaded machine (every model runs
with one ONNX Runtime thread, in the calling thread). The first ``--warm`` frames of each clip (lazy model loading) are not counted.
``--set name.field=value`` overrides an
analyser's live option (e.g. ``--set artefact.rate_hz=5``) to measure a schedule; ``--before
A,B`` runs a second schedule on each clip right before it (same load), for a before/after.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def clip_frames(path: Path, seconds: float, fps: float) -> list[tuple[float, np.ndarray]]:
    """The clip's frames resampled to ``fps`` (nearest earlier frame), fitted to 640x480."""
    from liveness.sources.video import open_video
    from tests._serve_util import fit_4x3

    out: list[tuple[float, np.ndarray]] = []
    nxt = 0.0
    for fr in open_video(path):
        if fr.t > seconds:
            break
        if fr.t + 1e-6 >= nxt:
            out.append((len(out) / fps, fit_4x3(fr.image)))
            nxt += 1.0 / fps
    return out


def _pipeline(sets: list[str]) -> Any:
    """Live pipeline options with ``name.field=value`` overrides of analysers' default options."""
    from liveness.pipeline import ANALYSERS, PipelineOptions

    base = PipelineOptions(live=True)
    over: dict[str, Any] = {}
    for s in sets:
        key, value = s.split("=", 1)
        name, fld = key.split(".", 1)
        reg = next(r for r in ANALYSERS if r.name == name)
        opts = over.get(name) or reg.defaults(base)
        over[name] = dataclasses.replace(opts, **{fld: None if value.lower() == "none" else float(value)})
    return PipelineOptions(live=True, analysers=tuple(over.items()))


def measure(frames: list[tuple[float, np.ndarray]], sets: list[str], status_hz: float, warm: int) -> tuple[dict[str, list[float]], dict[str, float | None]]:
    from liveness.apps.serve import ServeOptions
    from liveness.pipeline import build_session

    session = build_session(_pipeline(sets))
    cpu: dict[str, list[float]] = {"track": []}
    tracker_process = session.tracker.process

    def timed_track(*a: Any, **k: Any) -> Any:
        c = time.thread_time()
        out = tracker_process(*a, **k)
        cpu["track"].append((time.thread_time() - c) * 1e3)
        return out

    session.tracker.process = timed_track  # type: ignore[method-assign]
    for an in session.analysers:
        cpu[an.name] = []
        update = an.update

        def timed(obs: Any, ctx: Any, _u: Any = update, _l: list[float] = cpu[an.name]) -> Any:
            c = time.thread_time()
            out = list(_u(obs, ctx))
            _l.append((time.thread_time() - c) * 1e3)
            return out

        an.update = timed  # type: ignore[method-assign]
    cpu["frame"], cpu["snapshot"] = [], []
    max_side = ServeOptions().max_side
    next_snap = 0.0
    for i, (t, img) in enumerate(frames):
        if i == warm:  # the first frames load models (lazily) and warm caches: not counted
            for v in cpu.values():
                v.clear()
        c = time.thread_time()
        session.process(img, t, max_side=max_side)
        cpu["frame"].append((time.thread_time() - c) * 1e3)
        if t >= next_snap:  # the server's clip-level snapshot at status_hz (wall rate there)
            c = time.thread_time()
            sig = session.signals()
            session.verdict(sig)
            cpu["snapshot"].append((time.thread_time() - c) * 1e3)
            next_snap = t + 1.0 / status_hz
    sig = session.signals()
    values: dict[str, float | None] = {k: None if v.value is None else float(v.value) for k, v in sig.items()}
    values["verdict_risk"] = session.verdict(sig).risk
    return cpu, values


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--clips", type=int, default=6, help="clips (alternating real and fake rows)")
    ap.add_argument("--every", type=int, default=3, help="take every N-th real and every N-th fake clip")
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--warm", type=int, default=15, help="first frames of each clip not counted")
    ap.add_argument("--set", action="append", default=[], help="name.field=value (an analyser's option)")
    ap.add_argument("--before", help="comma-separated name.field=value: a second schedule, run on each clip too")
    ap.add_argument("--json")
    a = ap.parse_args()
    from liveness.apps.serve import ServeOptions

    with (a.data / "manifest.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["path"].startswith("video/")]
    by_label = [[r for r in rows if r["label"] == lab][:: a.every] for lab in ("real", "fake")]
    rows = [r for pair in zip(*by_label, strict=False) for r in pair][: a.clips]  # real, fake, real, ...
    status_hz = ServeOptions().status_hz
    schedules = {"after": a.set}
    if a.before is not None:
        schedules = {"before": [x for x in a.before.split(",") if x], "after": a.set}
    total: dict[str, dict[str, list[float]]] = {k: {} for k in schedules}
    clips: dict[str, list[dict[str, Any]]] = {k: [] for k in schedules}
    load0 = os.getloadavg()
    for r in rows:
        frames = clip_frames(a.data / r["path"], a.seconds, a.fps)
        for name, sets in schedules.items():  # same clip, schedules one after the other
            cpu, values = measure(frames, sets, status_hz, a.warm)
            clips[name].append({"path": r["path"], "label": r["label"], "signals": values})
            for k, v in cpu.items():
                total[name].setdefault(k, []).extend(v)
            print(f"{name} {r['path']}: {len(cpu['frame'])} frames, {np.mean(cpu['frame']):.2f} ms CPU/frame (mean)",
                  flush=True)
    out: dict[str, Any] = {"fps": a.fps, "schedules": schedules, "load_average_start": load0,
                           "load_average_end": os.getloadavg(), "clips": clips, "stages": {}}
    for name in schedules:
        n = len(total[name]["frame"])
        # per analysed frame: the stage's total CPU / frames (a stage that runs at a lower rate
        # costs its mean over all frames, not its median when it runs)
        out["stages"][name] = {k: {"calls": len(v), "median_ms": round(float(np.median(v)), 3),
                                   "per_frame_ms": round(float(np.sum(v) / n), 3)} for k, v in total[name].items()}
    names = list(schedules)
    print("| stage | " + " | ".join(f"{n}: median ms when it runs / CPU ms per analysed frame" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for k in out["stages"][names[-1]]:
        cells = [f"{out['stages'][n][k]['median_ms']} / {out['stages'][n][k]['per_frame_ms']}" for n in names]
        print(f"| {k} | " + " | ".join(cells) + " |")
    print(json.dumps({k: v for k, v in out.items() if k not in ("stages", "clips")}))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
