"""Replay resistance of the challenge engine, measured.

1. **Replay**: every real dev clip (``../shared/data/manifest.csv``, label ``real``) plays the
   part of a recording fed into the call. It never answers prompts. Random 3-challenge
   sequences (``secrets.SystemRandom``, as in production) start at random times; the clip
   loops, as a replayed recording would. Pass rate = sequences with all three answered.
2. **Avatar**: the synthetic astronaut avatar answers every prompt with a human-like latency
   drawn uniformly from 0.5-2.5 s. Its performances (every challenge kind, several variants of
   strength, speed and hand side) and a long idle stretch are rendered and tracked by the real
   tracker once; sequences are then simulated by splicing the tracked performance into the
   idle stream at prompt + latency.

The replays feed the engine feature rows, not frames, so no hand can be tracked: both run
with ``cover_hand=False``, i.e. they measure the cover's face-only check (the hand that a
cover now also needs is measured by ``bench_face_under_hand.py`` and the tests through the real
hand tracker). With the hand required, a replay never passes a cover.

Tracker output is cached per clip (``--cache``, default /tmp/liveness_challenge_cache), so
re-runs only replay. Usage::

    python benchmarks/challenge_replay.py --per-clip 40 --avatar-sequences 1000 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.challenges.engine import ChallengeEngine, EngineOptions  # noqa: E402
from liveness.challenges.types import ChallengeThresholds  # noqa: E402
from liveness.challenges.verifiers import CHALLENGES, frame_features  # noqa: E402
from liveness.testing import Action, Avatar, AvatarScript  # noqa: E402

AV_FPS = 15.0
#: feature rows carry no frame: the cover's face-only check (see the module docstring)
OPTIONS = EngineOptions(thresholds=ChallengeThresholds(cover_hand=False))
LEAD_S = 0.8  # neutral lead-in before the action in each rendered performance


def shared_data() -> Path | None:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    p = Path(env) if env else ROOT.parent / "shared" / "data"
    return p if (p / "manifest.csv").is_file() else None


def track_frames(frames) -> np.ndarray:
    """Rows of frame_features for (image, t) pairs through a fresh real tracker."""
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tr = FaceTracker.from_options(TrackerOptions())
    rows = [frame_features(tr.process(img, t, i)) for i, (img, t) in enumerate(frames)]
    return np.stack(rows)


def real_rows(path: Path, cache: Path) -> np.ndarray:
    from liveness.sources.video import open_video

    key = cache / f"real_{path.stem}_{path.stat().st_size}.npy"
    if key.is_file():
        return np.load(key)
    rows = track_frames((f.image, f.t) for f in open_video(path))
    np.save(key, rows)
    return rows


def avatar_library(cache: Path, variants: int) -> tuple[np.ndarray, dict[str, list[np.ndarray]]]:
    """Tracked idle stream (30 s) and tracked performances per kind (several variants)."""
    av = None
    idle_key = cache / "avatar_idle.npy"
    if idle_key.is_file():
        idle = np.load(idle_key)
    else:
        av = Avatar.astronaut()
        sc = AvatarScript([], idle=True, seed=7)
        idle = track_frames((av.render(sc.state_at(i / AV_FPS))[0], i / AV_FPS) for i in range(int(30 * AV_FPS)))
        np.save(idle_key, idle)
    lib: dict[str, list[np.ndarray]] = {}
    rng = np.random.default_rng(11)
    for kind in CHALLENGES:
        lib[kind] = []
        for v in range(variants):
            # turns: 47-55 deg (the tracker loses the astronaut's face past ~55 deg to the right)
            amount = float(rng.uniform(0.95, 1.1) if kind.startswith("turn") else rng.uniform(0.95, 1.2))
            amount = 1.0 if kind == "blink_twice" else amount
            speed = float(rng.uniform(0.8, 1.25))
            side = int(rng.choice([-1, 1]))
            key = cache / f"avatar_{kind}_{v}.npy"
            if key.is_file():
                lib[kind].append(np.load(key))
                continue
            av = av or Avatar.astronaut()
            act = Action(kind, LEAD_S, amount=amount, speed=speed, side=side)
            sc = AvatarScript([act], idle=True, seed=100 + v)
            n = int((LEAD_S + act.duration + 0.8) * AV_FPS)
            rows = track_frames((av.render(sc.state_at(i / AV_FPS))[0], i / AV_FPS) for i in range(n))
            np.save(key, rows)
            lib[kind].append(rows)
    return idle, lib


def replay_sequence(rows: np.ndarray, rng: secrets.SystemRandom, max_s: float = 90.0) -> list:
    """One random sequence at a random start time over a looping recording."""
    t = rows[:, 0].astype(np.float64)
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1 / 25
    period = t[-1] - t[0] + dt
    i0 = rng.randrange(len(rows))
    eng = ChallengeEngine(OPTIONS)
    started = False
    k = 0
    while True:
        j = (i0 + k) % len(rows)
        loops = (i0 + k) // len(rows)
        row = rows[j].copy()
        row[0] = t[j] + loops * period
        if not started:
            eng.start(float(row[0]) - 1e-6, n=3)
            start_t = float(row[0])
            started = True
        eng.update_features(row)
        k += 1
        if eng.pending == 0 or row[0] - start_t > max_s:
            break
    return eng.sequence_results()


def avatar_sequence(idle: np.ndarray, lib: dict[str, list[np.ndarray]], rng: secrets.SystemRandom,
                    max_s: float = 90.0) -> tuple[list, list[float]]:
    """One random sequence answered by the avatar with latencies U(0.5, 2.5) s."""
    eng = ChallengeEngine(OPTIONS)
    n_idle = len(idle)
    k0 = rng.randrange(n_idle)
    spliced: list[tuple[float, float, np.ndarray]] = []  # (t_from, t_to, rows with t shifted)
    lat: list[float] = []
    t0 = k0 / AV_FPS
    eng.start(t0 - 1e-6, n=3)
    k = 0
    while True:
        tk = (k0 + k) / AV_FPS
        row = None
        for a, b, seg in spliced:
            if a <= tk <= b:
                j = int(np.argmin(np.abs(seg[:, 0] - tk)))
                row = seg[j].copy()
                break
        if row is None:
            row = idle[(k0 + k) % n_idle].copy()
        row[0] = tk
        eng.update_features(row)
        for ev in eng.events():
            if ev.kind == "challenge.prompt":
                kind = dict(ev.data)["kind"]
                latency = rng.uniform(0.5, 2.5)
                lat.append(latency)
                seg = lib[kind][rng.randrange(len(lib[kind]))].copy()
                # the action starts at LEAD_S in the segment's own time; splice from 0.3 s before it
                shift = ev.t + latency - LEAD_S
                seg[:, 0] = seg[:, 0] + shift
                seg = seg[seg[:, 0] >= ev.t + latency - 0.3]
                spliced.append((float(seg[0, 0]), float(seg[-1, 0]), seg))
        k += 1
        if eng.pending == 0 or tk - t0 > max_s:
            break
    return eng.sequence_results(), lat


def summarise(seqs: list[list]) -> dict:
    n = len(seqs)
    passed = sum(1 for s in seqs if len(s) == 3 and all(r.passed for r in s))
    per = defaultdict(lambda: [0, 0])
    lat = []
    for s in seqs:
        for r in s:
            per[r.kind][0] += int(r.passed)
            per[r.kind][1] += 1
            if r.passed:
                lat.append(r.latency_s)
    return {
        "sequences": n,
        "passed": passed,
        "pass_rate": passed / n if n else None,
        "per_kind_pass_rate": {k: round(v[0] / v[1], 4) for k, v in sorted(per.items())},
        "per_kind_n": {k: v[1] for k, v in sorted(per.items())},
        "median_decision_latency_s": float(np.median(lat)) if lat else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-clip", type=int, default=40, help="replay sequences per real clip")
    ap.add_argument("--avatar-sequences", type=int, default=1000)
    ap.add_argument("--variants", type=int, default=4, help="rendered performances per kind")
    ap.add_argument("--cache", default="/tmp/liveness_challenge_cache")
    ap.add_argument("--limit-clips", type=int, default=0, help="only the first N real clips (0 = all)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    cache = Path(a.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rng = secrets.SystemRandom()
    import hashlib

    out: dict = {"command": " ".join(sys.argv), "models": {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16]
        for p in sorted((ROOT / "models" / "onnx").glob("*")) if p.suffix in (".onnx", ".npz")}}

    t0 = time.perf_counter()
    idle, lib = avatar_library(cache, a.variants)
    out["avatar_library_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    seqs, lats = [], []
    for _ in range(a.avatar_sequences):
        s, lat = avatar_sequence(idle, lib, rng)
        seqs.append(s)
        lats.extend(lat)
    out["avatar"] = summarise(seqs)
    out["avatar"]["latency_range_s"] = [round(min(lats), 3), round(max(lats), 3)] if lats else None
    out["avatar"]["simulate_s"] = round(time.perf_counter() - t0, 1)
    print("avatar:", json.dumps(out["avatar"]), flush=True)

    data = shared_data()
    if data is None:
        print("../shared/data is absent: replay part skipped", file=sys.stderr)
    else:
        with (data / "manifest.csv").open(newline="") as f:
            clips = [r for r in csv.DictReader(f) if r["label"] == "real"]
        if a.limit_clips:
            clips = clips[: a.limit_clips]
        t0 = time.perf_counter()
        rows = {}
        for r in clips:
            rows[r["path"]] = real_rows(data / r["path"], cache)
        out["replay_track_s"] = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        seqs, per_clip = [], {}
        for path, rr in rows.items():
            clip_seqs = [replay_sequence(rr, rng) for _ in range(a.per_clip)]
            seqs.extend(clip_seqs)
            per_clip[path] = sum(1 for s in clip_seqs if len(s) == 3 and all(x.passed for x in s))
        out["replay"] = summarise(seqs)
        out["replay"]["clips"] = len(rows)
        out["replay"]["clips_with_any_pass"] = {k: v for k, v in per_clip.items() if v}
        single = Counter()
        for s in seqs:
            for r in s:
                single[(r.kind, r.passed)] += 1
        out["replay"]["simulate_s"] = round(time.perf_counter() - t0, 1)
        print("replay:", json.dumps(out["replay"]), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
