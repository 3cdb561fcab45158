"""What a live session keeps per analysed frame (issue 18, the soak): ``tracemalloc`` over the
real pipeline, in process.

    nice -n 10 .venv/bin/python benchmarks/trace_live_memory.py [--clip FILE] [--warmup 300]
        [--frames 1500] [--dt 0.2] [--top 15] [--horizon 600]

``build_session(PipelineOptions(live=True))`` is fed a dev clip (``dflsample_Twitch1``, its first
240 frames played forwards and backwards in a loop; ``--clip`` for another) with timestamps ``--dt`` seconds apart (0.2: the ~5 analysed fps per stream of the soak),
reading the signals and verdict every 200 frames as the server does. After ``--warmup`` frames
(models, arenas, the analysers' windows and baselines) it snapshots the traced memory, feeds
``--frames`` more twice, snapshotting after each, and prints for each window the bytes kept per
frame with the allocation sites that grew most (``Snapshot.compare_to(..., "traceback")``).
With ``--horizon`` shorter than the warm-up's span (e.g. 30 s), the histories are folded
before the first snapshot, so what grows is what the horizon does not bound.
One-off growth (a buffer resized once, a capped store filling up) falls mostly in the first
window; per-frame history (a list growing a block a frame, a flat array's share) in both, so
the second window is the steady rate.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CLIP = ROOT.parent / "shared" / "data" / "video" / "real" / "dflsample_Twitch1.mp4"


def frames(clip: Path) -> list:
    import liveness

    images = [f.image for f in liveness.open_video(str(clip))][:240]
    return images + images[::-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--frames", type=int, default=1500)
    ap.add_argument("--dt", type=float, default=0.2)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--horizon", type=float, default=600.0,
                    help="the live session's horizon_s (seconds of per-frame history kept; 600 as served)")
    a = ap.parse_args()
    if not a.clip.exists():
        print(f"{a.clip}: no such clip (the dev data lives in ../shared/data; --clip FILE)", file=sys.stderr)
        return 2

    from liveness.pipeline import PipelineOptions, build_session

    images = frames(a.clip)
    s = build_session(PipelineOptions(live=True, horizon_s=a.horizon))

    def feed(start: int, n: int) -> int:
        for i in range(start, start + n):
            s.process(images[i % len(images)], i * a.dt)
            if i % 200 == 0:
                s.verdict(s.signals())
        s.verdict(s.signals())
        gc.collect()
        return start + n

    t0 = time.perf_counter()
    i = feed(0, a.warmup)
    tracemalloc.start(12)
    skip = [tracemalloc.Filter(False, tracemalloc.__file__)]
    snaps = [tracemalloc.take_snapshot().filter_traces(skip)]
    for _ in range(2):  # two windows: one-off growth (a buffer resized once) falls mostly in the first
        i = feed(i, a.frames)
        snaps.append(tracemalloc.take_snapshot().filter_traces(skip))
    tracemalloc.stop()
    print(f"clip {a.clip.name}, {a.warmup} + 2 x {a.frames} frames {a.dt} s apart, {time.perf_counter() - t0:.0f} s")
    for w, (before, after) in enumerate(zip(snaps, snaps[1:], strict=False), 1):
        kept = sum(st.size_diff for st in after.compare_to(before, "filename"))
        print(f"window {w}: kept {kept} B, {kept / a.frames:.0f} B per analysed frame")
        for st in after.compare_to(before, "traceback")[: a.top]:
            own = [fr for fr in st.traceback if "/liveness/" in fr.filename and not fr.filename.endswith("session.py")]
            where = f"{Path(own[-1].filename).name}:{own[-1].lineno}" if own else str(st.traceback[-1])
            print(f"  {st.size_diff / a.frames:8.1f} B/frame  {st.count_diff:6d} blocks  {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
