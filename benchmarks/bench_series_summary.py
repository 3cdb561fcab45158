"""What a live snapshot pays for one score series' summary as a call goes on (issue 16 item 3).

    nice -n 10 .venv/bin/python benchmarks/bench_series_summary.py [--rate 15] [--minutes 1,3,10]
        [--reads 10] [--horizon 600]

A live session reads every analyser's ``signals()`` once a second; each reads its
``ScoreSeries.summary()`` (a high quantile of a moving median, and the runs above its flag).
For each call length: a series fed ``--rate`` scores a second (random values, a few high runs)
for that long, as a live analyser with ``--horizon`` feeds it, then read the way the snapshot
reads it (``--reads`` times, a second of new scores between reads) — the moving medians of
scores whose window has closed are kept, so a read computes only the new ones — and, in the
same run, the same summary of a fresh series of the same scores (every median computed, as a
series without that store did at every read). Prints the median ms of a read, both ways, and
checks that the two give the same signal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=15.0, help="scores a second")
    ap.add_argument("--minutes", default="1,3,10", help="call lengths (comma-separated)")
    ap.add_argument("--reads", type=int, default=10)
    ap.add_argument("--horizon", type=float, default=600.0)
    a = ap.parse_args()
    import numpy as np

    from liveness import Score, ScoreSeries

    rng = np.random.default_rng(0)
    print(f"{'call':>8} {'scores kept':>12} {'read, kept medians ms':>22} {'read, all medians ms':>21} {'ratio':>6}")
    for minutes in (float(m) for m in a.minutes.split(",")):
        n = int(minutes * 60 * a.rate)
        t = np.arange(n + a.reads * int(a.rate)) / a.rate
        v = rng.uniform(0, 0.4, len(t))
        for start in rng.uniform(0, t[-1], 6):
            v[(t >= start) & (t < start + 3)] = 0.9
        live = ScoreSeries("x")
        for i in range(n):
            live.add(Score("x", float(t[i]), float(v[i])), a.horizon)
        live.summary()  # the reads before this point of the call
        kept, fresh = [], []
        i = n
        for _ in range(a.reads):
            for _ in range(int(a.rate)):
                live.add(Score("x", float(t[i]), float(v[i])), a.horizon)
                i += 1
            c0 = time.thread_time()
            got = live.summary()
            kept.append((time.thread_time() - c0) * 1e3)
            other = ScoreSeries("x")
            other._t, other._v = array(live._t.typecode, live._t), array(live._v.typecode, live._v)
            other._folded, other._folded_n = list(live._folded), live._folded_n
            other._folded_max, other._horizon = live._folded_max, live._horizon
            c0 = time.thread_time()
            want = other.summary()
            fresh.append((time.thread_time() - c0) * 1e3)
            if (got.value != want.value or got.segments != want.segments) and not live.folded:
                print(f"{minutes} min: the two reads differ: {got.value} {want.value}", file=sys.stderr)
                return 1  # (past a fold the kept medians next to it also saw the scores folded away)
        k, f = statistics.median(kept), statistics.median(fresh)
        print(f"{minutes:6.0f} m {len(live):12d} {k:22.2f} {f:21.2f} {f / k:6.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
