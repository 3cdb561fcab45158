"""Video clips of the synthetic avatar: a scripted clip with its per-frame ground truth, and the
built-in demo input of ``liveness review`` (no arguments).

    python -m liveness.testing.clips OUT.mp4 --script "turn_left@1 smile@4" --seconds 7
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import cv2

from liveness.core.errors import ConfigError, InputError
from liveness.testing.avatar import Avatar
from liveness.testing.script import Action, AvatarScript

__all__ = ["make_demo_clip", "write_clip"]


def write_clip(path: str | Path, avatar: Avatar, script: AvatarScript, seconds: float, fps: float = 15.0,
               *, ground_truth: bool = True, crf: int = 20) -> Path:
    """Render ``seconds`` of ``script`` to a video (PyAV, H.264) and, beside it,
    ``<path>.json`` with the ground truth per frame. Returns the video path."""
    import av

    if seconds <= 0 or fps <= 0:
        raise ConfigError("seconds and fps must be > 0")
    path = Path(path)
    w, h = avatar.size
    n = int(round(seconds * fps))
    rows = []
    from fractions import Fraction

    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(crf), "preset": "veryfast"}
        for i in range(n):
            t = i / fps
            s = script.state_at(t)
            img, gt = avatar.render(s)
            gt.pop("_landmarks", None)
            gt.pop("_hand_landmarks", None)
            rows.append({"t": round(t, 4), "frame": i, "action": script.active(t), **gt})
            fr = av.VideoFrame.from_ndarray(img, format="rgb24")
            for pkt in st.encode(fr):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    if ground_truth:
        meta = {"schema": "liveness.avatar/1", "fps": fps, "width": w, "height": h, "frames": n,
                "script": [asdict(a) for a in script.actions], "idle": script.idle, "seed": script.seed,
                "conventions": "yaw>0: nose toward image right (candidate's left); pitch>0: up",
                "frames_gt": rows}
        path.with_suffix(path.suffix + ".json").write_text(json.dumps(meta))
    return path


def make_demo_clip(path: str | Path, seconds: float = 12.0, fps: float = 15.0,
                   size: tuple[int, int] = (640, 480)) -> Path:
    """The built-in demo input: the astronaut avatar turning, blinking, smiling, opening the
    mouth and covering half the face (an animated photo: itself an attack sample)."""
    plan = ["turn_left", "blink_twice", "open_mouth", "turn_right", "smile", "cover_half_face",
            "raise_eyebrows", "lean_closer"]
    acts, t = [], 1.0
    for k in plan:
        if t + 1.5 > seconds:
            break
        acts.append(Action(k, t))
        t += Action(k, t).duration + 0.6
    return write_clip(path, Avatar.astronaut(size=size), AvatarScript(acts, idle=True, seed=1), seconds, fps)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m liveness.testing.clips", description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output video (.mp4)")
    ap.add_argument("--script", default="", help='e.g. "turn_left@1 blink_twice@4"; empty = demo plan')
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--photo", default=None, help="face photo (default: the packaged astronaut photo)")
    ap.add_argument("--no-idle", action="store_true", help="no sway or natural blinks")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    try:
        w, h = (int(v) for v in a.size.lower().split("x"))
        if not a.script:
            p = make_demo_clip(a.out, a.seconds or 12.0, a.fps, (w, h))
        else:
            script = AvatarScript.parse(a.script, idle=not a.no_idle, seed=a.seed)
            end = max((x.start + x.duration for x in script.actions), default=0.0) + 1.0
            if a.photo:
                img = cv2.imread(a.photo, cv2.IMREAD_COLOR)
                if img is None:
                    raise InputError(f"cannot read photo {a.photo}")
                av_ = Avatar.from_photo(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), size=(w, h))
            else:
                av_ = Avatar.astronaut(size=(w, h))
            p = write_clip(a.out, av_, script, a.seconds or end, a.fps)
    except (ConfigError, InputError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())

