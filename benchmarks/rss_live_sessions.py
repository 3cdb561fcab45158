"""Server-like RSS of live sessions in process, no WebRTC and no store (issue 18, the soak).

    nice -n 5 .venv/bin/python benchmarks/rss_live_sessions.py [--sessions 4] [--threads 2]
        [--frames 2400] [--horizon 20] [--clip FILE] [--trim-every N] [--malloc-arenas 2]

``--trim-every N`` trims every N frames a session too, timing each trim and the RSS it gives
back (the server's ticker trims every ``ServeOptions.trim_interval_s``).

``--sessions`` live sessions of the default pipeline (``PipelineOptions(live=True,
horizon_s=--horizon)``) share a pool of ``--threads`` analysis threads, as the server's do. Each
gets the frames of a dev clip (``dflsample_Twitch1``, 640x480, its first 120 frames forwards and
backwards) as a fresh buffer a frame, 1/15 s apart, and reads its signals and verdict every 30
frames. Every 300 frames per session it gives freed heap pages back (``malloc_trim``, as the
server's ticker does) and prints the process's RSS and glibc's bytes in use and free in the
heap. With a horizon shorter than the run (20 s = 300 frames), the histories are folded early
and a flat RSS shows that the analysis keeps nothing else per frame;
``benchmarks/soak_serve.py`` adds WebRTC and the store.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proc import heap_mib, rss_mib  # noqa: E402

CLIP = ROOT.parent / "shared" / "data" / "video" / "real" / "dflsample_Twitch1.mp4"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=2400, help="frames per session")
    ap.add_argument("--horizon", type=float, default=20.0, help="the sessions' horizon_s")
    ap.add_argument("--clip", type=Path, default=CLIP)
    ap.add_argument("--malloc-arenas", type=int, default=2, help="glibc arenas at most, as served (0: default)")
    ap.add_argument("--no-trim", action="store_true", help="never trim (RSS as glibc leaves it)")
    ap.add_argument("--trim-every", type=int, default=0, metavar="N",
                    help="also trim every N frames a session (75: every 5 s of the call), timed")
    a = ap.parse_args()
    if not a.clip.exists():
        print(f"{a.clip}: no such clip (the dev data lives in ../shared/data; --clip FILE)", file=sys.stderr)
        return 2
    import cv2

    import liveness
    from liveness.apps.serve.heap import limit_arenas, trim_heap

    limit_arenas(a.malloc_arenas)
    from liveness.pipeline import PipelineOptions, build_session

    images = [cv2.resize(f.image, (640, 480)) for f in liveness.open_video(str(a.clip))][:120]
    images += images[::-1]
    sessions = [build_session(PipelineOptions(live=True, horizon_s=a.horizon)) for _ in range(a.sessions)]
    locks = [threading.Lock() for _ in sessions]

    def step(k: int, i: int) -> None:
        with locks[k]:
            sessions[k].process(images[i % len(images)].copy(), i / 15.0)
            if i % 30 == 0:
                sessions[k].verdict(sessions[k].signals())

    trims: list[tuple[float, float]] = []
    t0 = time.perf_counter()
    with ThreadPoolExecutor(a.threads) as pool:
        for i in range(a.frames):
            for f in [pool.submit(step, k, i) for k in range(a.sessions)]:
                f.result()
            if a.trim_every and i % a.trim_every == 0:
                before = rss_mib()
                c0 = time.perf_counter()
                trim_heap()
                trims.append(((time.perf_counter() - c0) * 1e3, before - rss_mib()))
            if i % 300 == 0 or i == a.frames - 1:
                gc.collect()
                before = rss_mib()
                if not a.no_trim:
                    trim_heap()
                m = heap_mib() or {"in_use": float("nan"), "free": float("nan")}
                ms = statistics.median(x[0] for x in trims) if trims else float("nan")
                gave = statistics.median(x[1] for x in trims) if trims else float("nan")
                trims.clear()
                print(f"{i:6d} frames a session  {time.perf_counter() - t0:6.0f} s  RSS {before:7.1f} -> "
                      f"{rss_mib():7.1f} MiB  malloc in use {m['in_use']:7.1f} MiB, free in heap {m['free']:6.1f} MiB"
                      f"  trims: median {ms:.2f} ms, {gave:.1f} MiB given back", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
