"""Protocol fuzzing of ``liveness serve``: thousands of fuzzed signalling cases
(:mod:`liveness.testing.serve_fuzz`: malformed SDP and ICE candidates, data-channel and
watch-socket messages of wrong types and sizes, bad command and offer bodies, offers after
stop, concurrent offers, floods) against a server in its own process, while a second live
session streams frames beside them. The server must give no 5xx, leave no message unanswered,
keep every scenario invariant, stay up, keep the steady session's analysed rate, and its memory
must stay bounded.

    nice -n 10 .venv/bin/python benchmarks/fuzz_protocol.py --cases 3000 --json out/fuzz_protocol.json

``--full`` runs the full default pipeline for the steady session (default: the tests' stand-in
tracker, since the fuzzed surface is the signalling, not the analysis).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "fuzz-key-0123456789"

from benchmarks._proc import free_port, rss_mib  # noqa: E402
from liveness.testing.serve_fuzz import KINDS  # noqa: E402


def _serve(port: int, full: bool) -> None:
    from aiohttp import web

    from liveness.apps.serve import ServeOptions, create_app

    factory = None
    if not full:
        from tests._serve_util import disc_factory

        factory = disc_factory()
    opts = ServeOptions(api_key=KEY, db=":memory:", threads=2, port=port, max_sessions=100_000,
                        api_requests_per_s=100_000, media_timeout_s=600)
    web.run_app(create_app(opts, factory), host="127.0.0.1", port=port, print=None, access_log=None)


async def _run(base: str, pid: int, cases: int, seed: int, batch: int, kinds: tuple[str, ...],
               scenario_every: int) -> dict:
    import aiohttp

    from liveness.testing.serve_fuzz import fuzz_server
    from tests._serve_util import Client, FrameTrack, disc_frame

    hdr = {"X-API-Key": KEY}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/sessions", json={"label": "steady"}, headers=hdr) as r:
            s = await r.json()
        steady = Client(FrameTrack(disc_frame, fps=15))
        await steady.connect(s["offer_url"], hdr)
        await steady.wait_for(lambda: len(steady.of_type("result")) >= 15, 120)
        n0, t0 = len(steady.of_type("result")), time.monotonic()
        await asyncio.sleep(5)
        before = (len(steady.of_type("result")) - n0) / (time.monotonic() - t0)
        rss0 = rss_mib(pid)
        reports, rss, rates = [], [], []
        done = 0
        while done < cases:
            n = min(batch, cases - done)
            n1, t1 = len(steady.of_type("result")), time.monotonic()
            rep = await fuzz_server(base, KEY, n, seed=seed + done, scenario_every=scenario_every, kinds=kinds)
            rates.append((len(steady.of_type("result")) - n1) / (time.monotonic() - t1))
            rss.append(rss_mib(pid))
            reports.append(rep)
            done += n
            print(f"  {done}/{cases} cases, {sum(len(x.findings) for x in reports)} findings, "
                  f"server RSS {rss[-1]:.0f} MiB, steady {rates[-1]:.1f} results/s", file=sys.stderr)
        async with http.get(f"{base}/api/health") as r:
            health = await r.json()
        ended = steady.bye.is_set()
        await steady.close()
    counts: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for rep in reports:
        for k, v in rep.counts:
            counts[k] = counts.get(k, 0) + v
        for code, v in rep.statuses:
            statuses[str(code)] = statuses.get(str(code), 0) + v
    findings = [f.__dict__ for rep in reports for f in rep.findings]
    return {
        "cases": cases, "seed": seed, "kinds": list(kinds), "scenario_every": scenario_every, "seconds": round(sum(r.seconds for r in reports), 1),
        "counts": counts, "statuses": dict(sorted(statuses.items())),
        "answered": sum(r.answered for r in reports), "unanswered": sum(r.unanswered for r in reports),
        "findings": len(findings), "first_findings": findings[:20],
        "server_up": bool(health.get("ok")), "steady_session_ended": ended,
        "steady_results_per_s": {"before": round(before, 2), "during_min": round(min(rates), 2),
                                 "during_mean": round(sum(rates) / len(rates), 2)},
        "server_rss_mib": {"before": round(rss0, 1), "after": round(rss[-1], 1), "max": round(max(rss), 1)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=500, help="cases per fuzzing round (memory sampled after each)")
    ap.add_argument("--kinds", default=",".join(KINDS), help=f"cases to send, of {','.join(KINDS)}")
    ap.add_argument("--scenario-every", type=int, default=50, help="a scenario after every N cases (0: none)")
    ap.add_argument("--full", action="store_true", help="the full default pipeline for the steady session")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    port = free_port()
    proc = mp.get_context("spawn").Process(target=_serve, args=(port, a.full), daemon=True)
    proc.start()
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        end = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/api/health", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.3)
        assert proc.pid is not None
        out = asyncio.run(_run(base, proc.pid, a.cases, a.seed, a.batch, tuple(a.kinds.split(",")),
                               a.scenario_every))
        out["server_alive"] = proc.is_alive()
    finally:
        proc.terminate()
        proc.join(10)
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(text + "\n")
    bad = out["findings"] or out["unanswered"] or not out["server_up"] or out["steady_session_ended"]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
