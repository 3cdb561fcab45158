"""Latency and capacity of ``liveness serve`` on loopback.

1. Latency: one aiortc client streams 640x480 frames at 30 fps; for every result that comes
   back over the data channel, capture→result = arrival time - the time the client made the
   frame (the result carries the frame's capture timestamp, pts/90 kHz, which maps back to the
   client's frame). Includes VP8 encode, transport, decode, the newest-frame slot, analysis
   and the data channel. Server CPU per stream from /proc (the server is its own process).
2. Capacity: N concurrent streams (30 fps each) against one server; per-stream analysed fps
   over a measuring window; the largest N where every stream keeps >= 10 analysed fps.
   The clients run on the same machine (their VP8 encoding competes for the same cores), so
   the capacity figure is conservative for a server whose clients are elsewhere.

    python benchmarks/bench_serve.py [--seconds 20] [--streams 1,2,3,4,6] [--max-fps 0]
        [--threads 2] [--fps 30] [--standin] [--live-set NAME.FIELD=VALUE,...] [--json OUT]

``--standin`` uses the tests' stand-in tracker (transport cost only). Without it the server
runs the full default pipeline (``liveness.pipeline.build_session``, live mode); ``--live-set``
overrides analysers' live options there (as ``bench_live_cost.py --set``), e.g. the schedule
before a change. ``--fps``: the clients' frame rate. Per run: server CPU ms per analysed and
per received frame, cores per stream, and the streams one core would hold at that cost
(1 / cores per stream: meaningful when every stream is analysed at the rate sent); server RSS
before the first session and with every session live, and the difference per session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proc import cpu_s, free_port  # noqa: E402

KEY = "bench-key-0123456789"
HZ = os.sysconf("SC_CLK_TCK")


#: the server's threads by kind (their OS names, set in the server by ``_name_threads``)
THREAD_KINDS = ("loop", "analysis", "decoder", "store", "other")


def _name_threads() -> None:
    """Give each Python thread started from now on an OS name that says its kind (read back
    from ``/proc/<pid>/task/<tid>/comm`` by ``_thread_cpu_s``): the analysis pool, aiortc's
    VP8 decoder threads, the store's thread, anything else. The main thread runs the event
    loop (RTP, SRTP, jitter buffer, data channel, HTTP)."""
    import ctypes
    import threading

    libc = ctypes.CDLL(None)
    run = threading.Thread.run

    def named_run(self: threading.Thread) -> None:
        n = self.name
        kind = ("analysis" if "liveness-analysis" in n else "decoder" if "decoder" in n
                else "store" if "liveness-store" in n else "other")
        libc.prctl(15, kind.encode())  # PR_SET_NAME, this thread
        run(self)

    threading.Thread.run = named_run  # type: ignore[method-assign]


def _thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of the server's live threads, summed by kind (``THREAD_KINDS``)."""
    out = dict.fromkeys(THREAD_KINDS, 0.0)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            parts = (task / "stat").read_text().rsplit(")", 1)[1].split()
            comm = (task / "comm").read_text().strip()
        except OSError:  # the thread ended meanwhile
            continue
        kind = "loop" if task.name == str(pid) else comm if comm in THREAD_KINDS else "other"
        out[kind] += (int(parts[11]) + int(parts[12])) / HZ
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(port: int, standin: bool, threads: int, max_fps: float, live_set: str = "", root: str = "") -> None:
    """Run the server (in the benchmark's child process); ``root``: the checkout whose
    ``liveness`` it runs (default this one)."""
    if root:
        sys.path.insert(0, str(Path(root).resolve()))
    from aiohttp import web

    from liveness.apps.serve import ServeOptions, create_app

    _name_threads()
    factory = None
    if standin:
        from tests._serve_util import disc_factory

        factory = disc_factory()
    elif live_set:
        from benchmarks.bench_live_cost import _pipeline
        from liveness.pipeline import build_session

        pipeline = _pipeline([x for x in live_set.split(",") if x])

        def factory() -> object:
            return build_session(pipeline)

    opts = ServeOptions(api_key=KEY, db=":memory:", threads=threads, max_fps=max_fps, port=port, max_sessions=64)
    web.run_app(create_app(opts, factory), host="127.0.0.1", port=port, print=None, access_log=None)


def frames_640(standin: bool, n: int = 90, fps: float = 30.0) -> list[np.ndarray]:
    import cv2

    from tests._serve_util import disc_frame, fit_4x3

    if standin:
        return [disc_frame(i) for i in range(n)]
    try:
        import tempfile

        import av

        from liveness.testing import make_demo_clip

        with tempfile.TemporaryDirectory() as d:
            clip = make_demo_clip(Path(d) / "a.mp4", seconds=n / 15, fps=15, size=(640, 480))
            with av.open(str(clip)) as c:
                out = [fit_4x3(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        if fps <= 15:
            return out
        # 15 fps clip played at 30 fps: repeat frames (the stream still carries 30 distinct pts)
        return [out[i // 2] for i in range(2 * len(out))]
    except ImportError:
        from skimage import data

        face = fit_4x3(data.astronaut())
        return [cv2.warpAffine(face, np.float32([[1, 0, 10 * np.sin(i / 8)], [0, 1, 0]]), (640, 480),
                               borderMode=cv2.BORDER_REFLECT) for i in range(n)]


async def _measure(base: str, pid: int, n: int, frames: list[np.ndarray], seconds: float, warm: float,
                   fps: float = 30.0) -> dict:
    """Connect n clients, warm up, then measure one common window."""
    import aiohttp

    from tests._serve_util import Client, FrameTrack

    hdr = {"X-API-Key": KEY}
    async with aiohttp.ClientSession() as http:

        async def connect() -> tuple[str, Client, object]:
            async with http.post(f"{base}/api/sessions", json={"label": "bench"}, headers=hdr) as r:
                s = await r.json()
            track = FrameTrack(lambda i: frames[i % len(frames)], fps=fps)
            client = Client(track)
            await client.connect(s["offer_url"], hdr)
            await client.wait_for(lambda: len(client.of_type("result")) > 0, 90)
            return s["id"], client, track

        conns = await asyncio.gather(*(connect() for _ in range(n)))
        await asyncio.sleep(warm)

        async def counters(sid: str) -> dict:
            async with http.get(f"{base}/api/sessions/{sid}", headers=hdr) as r:
                return (await r.json())["counters"]

        c0 = [await counters(sid) for sid, _, _ in conns]
        m0 = [len(c.messages) for _, c, _ in conns]
        th0, cpu0, me0, t0 = _thread_cpu_s(pid), cpu_s(pid), time.process_time(), time.monotonic()
        await asyncio.sleep(seconds)
        th1, cpu1, me1, t1 = _thread_cpu_s(pid), cpu_s(pid), time.process_time(), time.monotonic()
        rss = _rss_mb(pid)  # every session live
        m1 = [len(c.messages) for _, c, _ in conns]
        c1 = [await counters(sid) for sid, _, _ in conns]
        per = []
        for (_, client, track), a, b, i0, i1 in zip(conns, c0, c1, m0, m1, strict=True):
            lat, results, faces = [], 0, 0
            for m, arr in zip(client.messages[i0:i1], client.arrivals[i0:i1], strict=True):
                if m.get("type") != "result" or m.get("pts") is None:
                    continue
                results += 1
                faces += bool(m.get("face"))
                for p in (m["pts"], m["pts"] + 1, m["pts"] - 1):  # aiortc's timebase rounding: +-1 tick
                    if p in track.sent:
                        lat.append((arr - track.sent[p]) * 1e3)
                        break
            per.append({
                "latency_ms": lat,
                "unmatched": results - len(lat),
                "results_per_s": results / (t1 - t0),
                "face_fraction": faces / max(results, 1),
                "analysed": b["analysed"] - a["analysed"],
                "analysed_fps": (b["analysed"] - a["analysed"]) / (t1 - t0),
                "received": b["received"] - a["received"],
                "received_fps": (b["received"] - a["received"]) / (t1 - t0),
                "server_latency_p50": b["latency_ms_p50"],
                "server_latency_p95": b["latency_ms_p95"],
                "analyse_ms_p50": b["analyse_ms_p50"],
                # the analysis thread's CPU by stage (absent from servers before the counter)
                "stage_cpu_ms": {k: b["cpu_ms"][k] - a["cpu_ms"].get(k, 0.0) for k in b["cpu_ms"]}
                if "cpu_ms" in b and "cpu_ms" in a else {},
            })
        for _, client, _ in conns:
            await client.close()
    # a thread that ended within the window (none should) is missing from th1: its CPU counts
    # in server_cpu_s only; a thread started within it counts from zero
    threads = {k: max(th1[k] - th0[k], 0.0) for k in THREAD_KINDS}
    return {"per": per, "rss_mb": rss, "server_cpu_s": cpu1 - cpu0, "thread_cpu_s": threads, "client_cpu_s": me1 - me0, "window_s": t1 - t0}


def run_streams(n: int, args: argparse.Namespace, frames: list[np.ndarray]) -> dict:
    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(port), "--threads", str(args.threads), "--max-fps", str(args.max_fps)]
    if args.standin:
        cmd.append("--standin")
    if args.live_set:
        cmd += ["--live-set", args.live_set]
    if args.server_root:
        cmd += ["--server-root", args.server_root]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        load = os.getloadavg()[0]
        time.sleep(1.0)
        rss0 = _rss_mb(proc.pid)  # the started server, no session yet
        out = asyncio.run(_measure(f"http://127.0.0.1:{port}", proc.pid, n, frames, args.seconds, args.warm, args.fps))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    per, win = out["per"], out["window_s"]
    lat = np.concatenate([np.asarray(o["latency_ms"]) for o in per])
    fps = [o["analysed_fps"] for o in per]
    analysed = sum(o["analysed"] for o in per)
    received = sum(o["received"] for o in per)
    cpu_ms_frame = out["server_cpu_s"] * 1e3 / max(analysed, 1)
    per_stream = out["server_cpu_s"] / win / n
    return {
        "streams": n,
        "load_average_1m": round(load, 2),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        "results": int(lat.size),
        "unmatched_results": sum(o["unmatched"] for o in per),
        "results_per_s_min": round(min(o["results_per_s"] for o in per), 1),
        "analysed_fps_min": round(min(fps), 1),
        "analysed_fps_mean": round(float(np.mean(fps)), 1),
        "received_fps_mean": round(float(np.mean([o["received_fps"] for o in per])), 1),
        "server_latency_ms_p50": [o["server_latency_p50"] for o in per],
        "server_latency_ms_p95": [o["server_latency_p95"] for o in per],
        "analyse_ms_p50": [o["analyse_ms_p50"] for o in per],
        "face_fraction_min": round(min(o["face_fraction"] for o in per), 3),
        "server_cpu_cores": round(out["server_cpu_s"] / win, 3),
        "server_cpu_cores_per_stream": round(per_stream, 3),
        "server_cpu_ms_per_analysed_frame": round(cpu_ms_frame, 2),
        "server_cpu_ms_per_received_frame": round(out["server_cpu_s"] * 1e3 / max(received, 1), 2),
        # the same by thread kind: event loop (RTP, SRTP, jitter buffer, data channel), analysis
        # pool (RGB conversion, analysis, snapshot), aiortc's VP8 decoders, store, other
        "thread_cpu_ms_per_received_frame": {k: round(v * 1e3 / max(received, 1), 2)
                                             for k, v in out["thread_cpu_s"].items()},
        # the analysis thread's own CPU by stage (RGB conversion, process, snapshot, other)
        "stage_cpu_ms_per_received_frame": {
            k: round(sum(o["stage_cpu_ms"].get(k, 0.0) for o in per) / max(received, 1), 2)
            for k in sorted({k for o in per for k in o["stage_cpu_ms"]})},
        "streams_per_core": round(1.0 / per_stream, 2) if per_stream > 0 else None,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "client_cpu_cores": round(out["client_cpu_s"] / win, 3),
        "server_rss_mb_idle": round(rss0, 1),
        "server_rss_mb": round(out["rss_mb"], 1),
        "rss_mb_per_session": round((out["rss_mb"] - rss0) / n, 1),
    }


def markdown(summary: dict) -> str:
    """The runs as a Markdown table (for benchmarks/README_serve.md)."""
    head = ("| streams | load avg (1 min) | capture→result p50 / p95 ms | server recv→result p50 / p95 ms "
            "| analysed fps (min / mean) | received fps | server CPU cores | CPU ms / analysed frame "
            "| CPU ms / received frame | cores / stream | streams / core |")
    out = [head, "|" + "---|" * 11]
    for r in summary["runs"]:
        sp50 = max(x for x in r["server_latency_ms_p50"] if x is not None) if any(r["server_latency_ms_p50"]) else None
        sp95 = max(x for x in r["server_latency_ms_p95"] if x is not None) if any(r["server_latency_ms_p95"]) else None
        out.append(
            f"| {r['streams']} | {r['load_average_1m']} | {r['latency_ms_p50']} / {r['latency_ms_p95']} "
            f"| {sp50} / {sp95} | {r['analysed_fps_min']} / {r['analysed_fps_mean']} | {r['received_fps_mean']} "
            f"| {r['server_cpu_cores']} | {r['server_cpu_ms_per_analysed_frame']} "
            f"| {r.get('server_cpu_ms_per_received_frame')} | {r.get('server_cpu_cores_per_stream')} "
            f"| {r.get('streams_per_core')} |"
        )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring window per run")
    ap.add_argument("--warm", type=float, default=3.0, help="warm-up before measuring")
    ap.add_argument("--streams", default="1,2,3,4", help="stream counts for the capacity sweep")
    ap.add_argument("--threads", type=int, default=2, help="server analysis threads")
    ap.add_argument("--max-fps", type=float, default=0.0, help="server per-session analysis cap")
    ap.add_argument("--standin", action="store_true", help="stand-in tracker (transport only)")
    ap.add_argument("--min-fps", type=float, default=10.0, help="the sweep stops below this (0: never)")
    ap.add_argument("--fps", type=float, default=30.0, help="frames per second each client sends")
    ap.add_argument("--live-set", default="", help="NAME.FIELD=VALUE,...: analysers' live options on the server")
    ap.add_argument("--server-root", default="", help="run the server from this checkout's liveness "
                    "(e.g. an export of the commit before a change, for a before/after in one run)")
    ap.add_argument("--json", help="write results here")
    ap.add_argument("--markdown", help="print the table of a --json result file and exit")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.standin, args.threads, args.max_fps, args.live_set, args.server_root)
        return 0
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())))
        return 0
    frames = frames_640(args.standin, fps=args.fps)
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}", flush=True)
    runs = []
    for n in [int(x) for x in args.streams.split(",")]:
        r = run_streams(n, args, frames)
        runs.append(r)
        print(json.dumps(r), flush=True)
        if r["analysed_fps_min"] < args.min_fps:
            break
    ok = [r["streams"] for r in runs if r["analysed_fps_min"] >= 10]
    summary = {
        "pipeline": "stand-in" if args.standin else "default",
        "max_fps": args.max_fps,
        "fps_sent": args.fps,
        "live_set": args.live_set,
        "server_root": args.server_root or str(ROOT),
        "threads": args.threads,
        "cores": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "capacity_streams_at_10fps": max(ok) if ok else 0,
        "runs": runs,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}))
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
