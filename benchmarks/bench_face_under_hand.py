"""The swap-over-hand cue (issue 15, item 5): genuine covers against a face swapper that paints
the face over the hand, through the real face tracker and hand tracker.

Each cover is a 2.7-s clip (15 fps, 640x480) of an avatar covering one half of its face with a
real hand cut from a dev frame (``liveness.testing.hand.HandSprite``). Faces: the astronaut and
avatars made from the first frame of dev clips; hands: four hands of the dev frames; per cover a
random side, hand length (0.9-1.15 x the face height), tilt (-10..20 deg), offset (+-0.06 face
widths / heights), idle-motion seed and speed (0.8-1.25). The attack is the same clip with the
face's own texture (the frame rendered without the hand) pasted back over the hand inside the
face's oval, feathered 4 px (``paint_face_over_hand``): what a swapper without an occlusion mask
outputs. Each clip runs through ``FaceTracker`` and ``FaceUnderHand(HandTracker(), OPTIONS)`` with the
reference taken at 0.5 s, as the challenge engine does at the prompt; the score of a cover is
``cover_swap_score`` of its readings.

    python benchmarks/bench_face_under_hand.py --covers 200 --out /tmp/fuh.json

Needs ../shared/data (the hands and the dev faces). Prints the AUC (genuine = 0, attack = 1) and
each class's score quantiles, and writes every cover's score and readings to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from liveness.challenges.occlusion import FaceUnderHand, FaceUnderHandOptions, cover_swap_score  # noqa: E402
from liveness.sources.video import open_video  # noqa: E402
from liveness.testing import Action, Avatar, AvatarScript  # noqa: E402
from liveness.testing.hand import HandSprite, paint_face_over_hand  # noqa: E402
from liveness.tracking.hands import HandTracker  # noqa: E402
from liveness.tracking.tracker import FaceTracker, TrackerOptions  # noqa: E402

HANDS = (("video/real/dfl_Nicola_Badge_1.mp4", 110, "right"), ("video/real/dfl_Nicola_Badge_1.mp4", 110, "left"),
         ("video/real/dfl_Kim_Jarrey_3.mp4", 300, "right"), ("video/real/dfl_Bryan_Greynolds_1.mp4", 110, "right"))
FACES = ("video/real/dfl_Ewon_Spice_0.mp4", "video/real/dfl_Tim_Norland_0.mp4",
         "video/real/dfl_Yohanna_Coralson_0.mp4", "video/real/hdtf_RD_Radio2_000.mp4")
FPS, SECONDS, REF_T, COVER_T = 15.0, 2.7, 0.5, 0.7
OPTIONS = FaceUnderHandOptions()


def auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(score(pos) > score(neg)), ties counted half."""
    n, p = np.asarray(neg)[:, None], np.asarray(pos)[None, :]
    return float((p > n).mean() + 0.5 * (p == n).mean())


def first_frame(path: Path) -> np.ndarray:
    return next(iter(open_video(path))).image


def run_cover(avatar: Avatar, sprite: HandSprite, rng: np.random.Generator, attack: bool,
              seed: int) -> tuple[float | None, list[dict[str, object]], dict[str, float]]:
    side = int(rng.choice([-1, 1]))
    kw = {"reach": float(rng.uniform(0.9, 1.15)), "tilt": float(rng.uniform(-10, 20)),
          "offset": (float(rng.uniform(-0.06, 0.06)), float(rng.uniform(-0.06, 0.06)))}
    speed = float(rng.uniform(0.8, 1.25))
    script = AvatarScript([Action("cover_half_face", COVER_T, side=side, speed=speed)], seed=seed)
    ft, cue = FaceTracker(TrackerOptions()), FaceUnderHand(HandTracker(), OPTIONS)
    readings = []
    for i in range(int(SECONDS * FPS)):
        t = i / FPS
        s = script.state_at(t)
        bare, gt = avatar.render(replace(s, hand=0.0))
        img = sprite.cover(bare, gt["_landmarks"], s.hand, s.hand_side, **kw)[0] if s.hand > 0 else bare
        if attack and s.hand > 0:
            img = paint_face_over_hand(img, bare, gt["_landmarks"])
        obs = ft.process(img, t, i)
        if abs(t - REF_T) < 0.5 / FPS:
            cue.set_reference(obs)
        elif t > REF_T:
            readings.append(cue.measure(obs))
    score, _ = cover_swap_score(readings)
    return score, [r.to_dict() for r in readings], {"side": side, "speed": speed, **{k: v for k, v in kw.items() if k != "offset"}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--covers", type=int, default=200, help="covers per class")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--highpass", type=float, default=None, help="FaceUnderHandOptions.highpass_px")
    a = ap.parse_args(argv)
    if a.highpass is not None:
        global OPTIONS
        OPTIONS = FaceUnderHandOptions(highpass_px=a.highpass)
    sprites = [HandSprite.from_dev_data(a.data, *h) for h in HANDS]
    avatars = [Avatar.astronaut(size=(640, 480))] + [Avatar.from_photo(first_frame(a.data / f), size=(640, 480))
                                                     for f in FACES]
    rng = np.random.default_rng(a.seed)
    rows: list[dict[str, object]] = []
    t0 = time.perf_counter()
    for k in range(a.covers):
        av, sp = avatars[k % len(avatars)], sprites[(k // len(avatars)) % len(sprites)]
        state = rng.bit_generator.state
        for attack in (False, True):
            rng.bit_generator.state = state  # the same cover, genuine and attacked
            score, readings, params = run_cover(av, sp, rng, attack, seed=int(a.seed * 1000 + k))
            rows.append({"cover": k, "attack": attack, "face": k % len(avatars), "hand": (k // len(avatars)) % len(sprites),
                         "score": score, "params": params, "readings": readings})
        if (k + 1) % 20 == 0:
            print(f"{k + 1} covers, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    gen = np.array([r["score"] if r["score"] is not None else 0.0 for r in rows if not r["attack"]], np.float64)
    att = np.array([r["score"] if r["score"] is not None else 0.0 for r in rows if r["attack"]], np.float64)
    q = (0.1, 0.5, 0.9)
    summary = {"covers_per_class": a.covers, "auc": round(auc(gen, att), 4),
               "genuine_q10_50_90": [round(float(v), 3) for v in np.quantile(gen, q)],
               "attack_q10_50_90": [round(float(v), 3) for v in np.quantile(att, q)],
               "no_score_genuine": sum(r["score"] is None for r in rows if not r["attack"]),
               "no_score_attack": sum(r["score"] is None for r in rows if r["attack"]),
               "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(summary))
    if a.out is not None:
        a.out.write_text(json.dumps({"summary": summary, "covers": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
