"""Media fuzzing: mutated inputs (liveness.testing.fuzz) through open_video (full decode) and,
for every ``--review-every``-th case, the full default review; never a traceback, never a hang,
bounded memory. Each case runs in a worker process watched by this one: a case past
``--timeout`` s is a hang (the worker is killed and replaced); the worker's peak RSS is sampled.

    nice -n 10 .venv/bin/python benchmarks/fuzz_media.py --cases 2000 --json out/fuzz.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path


def _worker(q_in: mp.Queue, q_out: mp.Queue, review_every: int) -> None:
    from liveness import InputError
    from liveness.apps.review import ReviewOptions, review
    from liveness.sources.video import open_video

    while True:
        job = q_in.get()
        if job is None:
            return
        case, path = job
        try:
            frames = len(list(open_video(path, max_side=320)))
            outcome = f"decoded {frames} frames"
            if review_every and case % review_every == 0:
                doc = review(path, ReviewOptions(max_side=320))
                outcome = f"review {doc.verdict.label} ({len(doc.timeline)} frames)"
            kind = "review" if "review" in outcome else "decoded"
        except InputError as exc:
            kind, outcome = "input_error", str(exc)
        except BaseException as exc:  # noqa: BLE001 - exactly what the fuzzer looks for
            kind, outcome = "crash", "".join(traceback.format_exception(exc))[-2000:]
        q_out.put((case, kind, outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=2000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--review-every", type=int, default=20)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    from liveness.testing.fuzz import make_seeds, mutate

    seeds = make_seeds()
    folder = Path(tempfile.mkdtemp(prefix="liveness-fuzz-"))
    ctx = mp.get_context("spawn")
    counts: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    bad: list[dict[str, object]] = []
    peak_rss, slowest = 0.0, (0.0, -1)

    def start() -> tuple[mp.Process, mp.Queue, mp.Queue]:
        qi, qo = ctx.Queue(), ctx.Queue()
        p = ctx.Process(target=_worker, args=(qi, qo, a.review_every), daemon=True)
        p.start()
        return p, qi, qo

    proc, qi, qo = start()
    t_all = time.monotonic()
    for case in range(a.start, a.start + a.cases):
        path, desc = mutate(seeds, case, folder)
        qi.put((case, str(path)))
        t0 = time.monotonic()
        try:
            _, kind, outcome, rss = qo.get(timeout=a.timeout)
        except Exception:  # queue.Empty: a hang, or the worker died (a native crash)
            kind = "hang" if proc.is_alive() else f"died (exit {proc.exitcode})"
            outcome, rss = "", 0.0
            proc.kill()
            proc.join()
            proc, qi, qo = start()
        dt = time.monotonic() - t0
        slowest = max(slowest, (dt, case))
        peak_rss = max(peak_rss, rss)
        counts[kind] += 1
        by_kind.setdefault(desc.split()[0], Counter())[kind] += 1
        if kind not in ("input_error", "decoded", "review"):
            bad.append({"case": case, "input": desc, "kind": kind, "detail": outcome})
            print(f"case {case} ({desc}): {kind}\n{outcome}", file=sys.stderr)
        path.unlink()
        if (case - a.start + 1) % 200 == 0:
            print(f"{case - a.start + 1} cases: {dict(counts)}, peak RSS {peak_rss:.0f} MiB", file=sys.stderr)
    qi.put(None)
    proc.join(10)
    doc = {"cases": a.cases, "outcomes": dict(counts), "by_mutation": {k: dict(v) for k, v in sorted(by_kind.items())},
           "failures": bad, "worker_peak_rss_mib": round(peak_rss, 1), "slowest_case_s": round(slowest[0], 2),
           "slowest_case": slowest[1], "wall_s": round(time.monotonic() - t_all, 1), "timeout_s": a.timeout}
    print(json.dumps(doc, indent=1))
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(doc, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
