"""The hand watch outside the challenges (issue 15, item 3: "a HandTracker that runs ... at a
low rate to catch a hand near the face"): what it costs per frame, and what it finds.

1. **Dev clips**: every ``--every``-th clip of ``manifest.csv`` (real and fake), the first
   ``--seconds`` of each at its own frame rate and size, each frame through ``FaceTracker``
   and then ``HandWatchAnalyser`` (the real ``HandTracker``, lite, one thread). CPU time per
   frame (``time.process_time``) of the tracker and of the watch; hand-source calls per second;
   natural hand-near-face episodes found and scored.
2. **Rendered clips** (``--rendered N``): an avatar made from a dev face raises a real dev hand
   over half its face once, unprompted (4 s at 15 fps, 640x480), genuine and as the
   swap-over-hand attack (``paint_face_over_hand``); the ``hand_over_face`` value of each.

    python benchmarks/bench_hand_watch.py --every 3 --seconds 6 --rendered 20 --out hw.json

Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.challenges.hand_watch import HandWatchAnalyser, HandWatchOptions  # noqa: E402
from liveness.challenges.occlusion import FaceUnderHand  # noqa: E402
from liveness.core.analyser import FrameContext  # noqa: E402
from liveness.sources.video import open_video  # noqa: E402
from liveness.testing import Action, Avatar, AvatarScript  # noqa: E402
from liveness.testing.hand import HandSprite, paint_face_over_hand  # noqa: E402
from liveness.tracking.hands import HandOptions, HandTracker  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402

HANDS = (("video/real/dfl_Nicola_Badge_1.mp4", 110, "right"), ("video/real/dfl_Kim_Jarrey_3.mp4", 300, "right"),
         ("video/real/dfl_Bryan_Greynolds_1.mp4", 110, "right"))
FACES = ("video/real/dfl_Ewon_Spice_0.mp4", "video/real/dfl_Tim_Norland_0.mp4",
         "video/real/dfl_Yohanna_Coralson_0.mp4", "video/real/hdtf_RD_Radio2_000.mp4")


def auc(neg: list[float], pos: list[float]) -> float:
    n, p = np.asarray(neg, np.float64)[:, None], np.asarray(pos, np.float64)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def dev_clips(data: Path, every: int, seconds: float, options: HandWatchOptions) -> dict[str, object]:
    with (data / "manifest.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))[::every]
    per_clip, track_ms, watch_ms, look_ms = [], [], [], []
    for r in rows:
        path = data / r["path"]
        ft = FaceTracker(TrackerOptions())
        hw = HandWatchAnalyser(options, hands=HandTracker(HandOptions(max_hands=1)))
        tr, wa, per_call = [], [], []
        t_end = 0.0
        for fr in open_video(path):
            if fr.t > seconds:
                break
            c0 = time.process_time()
            obs = ft.process(fr.image, fr.t, fr.index)
            c1 = time.process_time()
            calls, following = hw.calls, hw.following
            hw.update(obs, FrameContext(fr.t))
            c2 = time.process_time()
            tr.append(1e3 * (c1 - c0))
            wa.append(1e3 * (c2 - c1))
            if hw.calls > calls and not following:  # a look at the low rate (not following a hand)
                per_call.append(wa[-1])
            t_end = fr.t
        sig = hw.summary()
        d = dict(sig.details)
        per_clip.append({"path": r["path"], "label": r["label"], "frames": len(tr), "seconds": round(t_end, 2),
                         "track_ms_mean": round(float(np.mean(tr)), 3), "watch_ms_mean": round(float(np.mean(wa)), 3),
                         "hand_calls": int(d["hand_calls"]), "n_near": int(d["n_near"]),
                         "n_covered": int(d["n_covered"]), "value": sig.value,
                         "episodes": [e.__dict__ for e in hw.episodes]})
        track_ms += tr
        watch_ms += wa
        look_ms += per_call
        print(f"{r['path']}: {len(tr)} frames, track {np.mean(tr):.2f} ms, watch {np.mean(wa):.2f} ms/frame, "
              f"{int(d['hand_calls'])} calls, {int(d['n_near'])} near, value {sig.value}", file=sys.stderr)
    tm, wm = np.asarray(track_ms), np.asarray(watch_ms)
    secs = sum(float(c["seconds"]) for c in per_clip)  # type: ignore[arg-type]
    calls = sum(int(c["hand_calls"]) for c in per_clip)  # type: ignore[call-overload]
    looks = np.asarray(look_ms)
    return {
        "clips": len(per_clip), "frames": int(tm.size), "seconds": round(secs, 1),
        "tracker_ms_per_frame_mean_median": [round(float(tm.mean()), 3), round(float(np.median(tm)), 3)],
        "watch_ms_per_frame_mean_median": [round(float(wm.mean()), 3), round(float(np.median(wm)), 3)],
        "look_ms_median (one low-rate look: palm search near the face)": round(float(np.median(looks)), 3) if looks.size else None,
        "ratio_watch_to_tracker_mean": round(float(wm.mean() / tm.mean()), 4),
        "ratio_of_clip_means_median": round(float(np.median([c["watch_ms_mean"] / max(c["track_ms_mean"], 1e-9)  # type: ignore[operator]
                                                              for c in per_clip])), 4),
        "hand_calls_per_second": round(calls / max(secs, 1e-9), 2),
        "clips_with_episodes": sum(int(c["n_near"]) > 0 for c in per_clip),  # type: ignore[call-overload]
        "clips_scored": sum(c["value"] is not None for c in per_clip),
        "per_clip": per_clip,
    }


def rendered(data: Path, n: int, seed: int, options: HandWatchOptions) -> dict[str, object]:
    sprites = [HandSprite.from_dev_data(data, *h) for h in HANDS]
    avatars = [Avatar.from_photo(next(iter(open_video(data / f))).image, size=(640, 480)) for f in FACES]
    rng = np.random.default_rng(seed)
    rows: list[dict[str, object]] = []
    for k in range(n):
        av, sp = avatars[k % len(avatars)], sprites[k % len(sprites)]
        side, start = int(rng.choice([-1, 1])), float(rng.uniform(1.0, 1.6))
        kw = {"reach": float(rng.uniform(0.9, 1.15)), "tilt": float(rng.uniform(-10, 20))}
        script = AvatarScript([Action("cover_half_face", start, side=side, speed=float(rng.uniform(0.8, 1.2)))],
                              seed=seed * 1000 + k)
        for attack in (False, True):
            ft = FaceTracker(TrackerOptions())
            hw = HandWatchAnalyser(options, hands=HandTracker(HandOptions(max_hands=1)))
            # the cover challenge's cost on the same clip: the engine's cue (HandTracker() with its
            # defaults) on every frame from a prompt 0.5 s before the hand comes to the end
            cue, cue_ms, prompt = FaceUnderHand(HandTracker()), 0.0, start - 0.5
            wa: list[float] = []
            follow_flags: list[bool] = []
            for i in range(60):
                t = i / 15.0
                s = script.state_at(t)
                bare, gt = av.render(replace(s, hand=0.0))
                img = sp.cover(bare, gt["_landmarks"], s.hand, s.hand_side, **kw)[0] if s.hand > 0 else bare
                if attack and s.hand > 0:
                    img = paint_face_over_hand(img, bare, gt["_landmarks"])
                obs = ft.process(img, t, i)
                c0 = time.process_time()
                was = hw.following
                hw.update(obs, FrameContext(t))
                wa.append(1e3 * (time.process_time() - c0))
                follow_flags.append(was)
                if t >= prompt:
                    c0 = time.process_time()
                    if not cue.has_reference:
                        cue.set_reference(obs)
                    else:
                        cue.measure(obs)
                    cue_ms += 1e3 * (time.process_time() - c0)
            sig = hw.summary()
            followed = [w for w, f in zip(wa, follow_flags, strict=True) if f]
            rows.append({"clip": k, "attack": attack, "value": sig.value, "details": dict(sig.details),
                         "watch_ms_mean": round(float(np.mean(wa)), 3), "watch_ms_total": round(float(np.sum(wa)), 1),
                         "followed_frames": len(followed),
                         "followed_ms_median": round(float(np.median(followed)), 3) if followed else None,
                         "cover_challenge_ms_total": round(cue_ms, 1),
                         "cover_challenge_frames": sum(1 for i in range(60) if i / 15.0 >= prompt)})
    gen = [r["value"] for r in rows if not r["attack"]]
    att = [r["value"] for r in rows if r["attack"]]
    g = [float(v) if v is not None else 0.0 for v in gen]  # type: ignore[arg-type]
    a = [float(v) if v is not None else 0.0 for v in att]  # type: ignore[arg-type]
    return {"clips_per_class": n, "scored_genuine": sum(v is not None for v in gen),
            "scored_attack": sum(v is not None for v in att), "auc": round(auc(g, a), 4),
            "genuine_q10_50_90": [round(float(v), 3) for v in np.quantile(g, (0.1, 0.5, 0.9))],
            "attack_q10_50_90": [round(float(v), 3) for v in np.quantile(a, (0.1, 0.5, 0.9))],
            "watch_ms_per_frame_mean": round(float(np.mean([r["watch_ms_mean"] for r in rows])), 3),  # type: ignore[misc]
            "watch_ms_per_clip_median": round(float(np.median([r["watch_ms_total"] for r in rows])), 1),  # type: ignore[misc]
            "followed_ms_per_frame_median": round(float(np.median([r["followed_ms_median"] for r in rows  # type: ignore[misc]
                                                                    if r["followed_ms_median"] is not None])), 3),
            "cover_challenge_ms_per_cover_median": round(float(np.median([r["cover_challenge_ms_total"] for r in rows])), 1),  # type: ignore[misc]
            "cover_challenge_frames": rows[0]["cover_challenge_frames"] if rows else 0,
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--every", type=int, default=3, help="every n-th clip of the manifest")
    ap.add_argument("--seconds", type=float, default=6.0, help="seconds of each dev clip")
    ap.add_argument("--rendered", type=int, default=0, help="rendered clips per class (0: none)")
    ap.add_argument("--rate", type=float, default=HandWatchOptions().rate_hz)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    import cv2

    cv2.setNumThreads(1)
    options = HandWatchOptions(rate_hz=a.rate)
    warm = np.zeros((480, 640, 3), np.uint8)  # load the models before anything is timed
    FaceTracker(TrackerOptions()).process(warm, 0.0, 0)
    HandTracker(HandOptions(max_hands=1)).process(warm, 0.0)
    out: dict[str, object] = {"rate_hz": a.rate}
    t0 = time.perf_counter()
    if a.every > 0:
        out["dev"] = dev_clips(a.data, a.every, a.seconds, options)
    if a.rendered > 0:
        out["rendered"] = rendered(a.data, a.rendered, a.seed, options)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    brief = {k: ({kk: vv for kk, vv in v.items() if kk not in ("per_clip", "rows")} if isinstance(v, dict) else v)
             for k, v in out.items()}
    print(json.dumps(brief, indent=1))
    if a.out is not None:
        a.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
