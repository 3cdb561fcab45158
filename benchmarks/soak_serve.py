"""Soak of ``liveness serve``: N live WebRTC streams held for many minutes against one server.

The server runs in its own process (the full default pipeline unless ``--standin``); N aiortc
clients in this process each stream 640x480 video at 15 fps for ``--minutes``: a real dev clip per
stream (``../shared/data/video/real``, decoded once, played forwards and backwards so the loop
has no cut) or, where the data is absent, the built-in synthetic face. Every ``--every`` seconds
the script samples the server's RSS (``/proc/PID/status``), its open file descriptors
(``/proc/PID/fd``), and each session's state and ``analysed`` counter (``GET
/api/sessions/{id}``), plus the result messages each client received. At the end the clients
hang up and every session must reach ``ended``.

Bounds (checked after ``--warmup`` seconds; the first sample after it is the baseline):

* RSS growth < ``--max-rss-growth`` % (5): with ``--rss-window S`` (180), the median RSS of the
  samples in the last S seconds against that of the first S seconds after the warm-up (the
  server's heap trims make its RSS saw by ~10-25 MiB between them, so one sample at each end
  measures where in the saw it fell); ``--rss-window 0``: the last sample against the first.
  The single-sample growth and the largest sample are reported either way;
* open fds flat: last - baseline <= ``--max-fd-growth`` (2);
* no stuck session: every interval of every stream analyses >= 1 frame and returns results,
  every session stays ``live`` while streaming and is ``ended`` within 60 s of its hang-up;
* analysed fps steady: per stream, the median over the last third of the run is >= 80 % of the
  median over the first third, and no interval falls under 25 % of the stream's median.

    nice -n 10 .venv/bin/python benchmarks/soak_serve.py [--minutes 30] [--streams 4] [--standin]
        [--every 10] [--warmup 180] [--rss-window 180] [--json OUT]

Prints one JSON line per sample, then a Markdown table; exits 1 if a bound is broken.
``--live-horizon`` sets the server's ``--live-horizon`` (seconds of per-frame history a live
session keeps; 600 as served). ``--standin`` serves live sessions of a stand-in tracker and no
analyser: the transport and the server alone. Diagnosis: ``SOAK_TRACE=FILE`` (and
``SOAK_TRACE_AFTER=S``, 120) makes the server append its RSS, glibc heap statistics and the
Python object types that grew to FILE every 30 s; ``SOAK_TRACEMALLOC=FILE`` the allocation
sites whose kept bytes grew most (``tracemalloc``, every 60 s; it slows the server's Python).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._proc import cpu_s, free_port, rss_mib  # noqa: E402

KEY = "soak-key-0123456789"
DATA = ROOT.parent / "shared" / "data" / "video" / "real"
#: dev clips (real people, >= 640 px wide), one per stream in turn
CLIPS = ("dflsample_Twitch1.mp4", "retalking_face1.mp4", "retalking_face2.mp4", "roop_target.mp4")
FPS = 15


# -- samples and the summary (pure; tested) ------------------------------------------------------
@dataclass(frozen=True)
class StreamSample:
    """One stream at one sample: the session's state and totals so far."""

    state: str
    analysed: int
    results: int  # result messages the client has received


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the streams started
    rss_mib: float
    fds: int
    load_1m: float
    streams: tuple[StreamSample, ...]
    cpu_s: float = float("nan")  # the server process's CPU seconds so far (user + system)


@dataclass(frozen=True)
class StreamFigures:
    fps_min: float
    fps_median: float
    fps_first_third: float
    fps_last_third: float
    stalled_intervals: int  # intervals with no analysed frame or no result
    not_live: int  # samples where the session was not 'live'


@dataclass(frozen=True)
class Summary:
    minutes: float
    warmup_s: float
    samples: int
    rss_first: float  # the baseline: first sample after the warm-up
    rss_last: float
    rss_max: float
    rss_growth_pct: float  # last sample vs the baseline sample
    rss_kib_per_frame: float  # RSS growth per frame analysed (all streams) after the baseline
    fd_first: int
    fd_last: int
    fd_max: int
    load_min: float
    load_max: float
    streams: tuple[StreamFigures, ...]
    ended: tuple[bool, ...]  # each session 'ended' after its hang-up
    # the server's CPU ms per analysed frame (all streams), median over the intervals of the
    # first and of the last third after the baseline: does a frame cost more late in a call?
    cpu_ms_first_third: float = float("nan")
    cpu_ms_last_third: float = float("nan")
    # median RSS over the first / last ``rss_window_s`` after the warm-up and their growth (the
    # bound's figure; with a window of 0 they are the first and last samples)
    rss_window_s: float = 0.0
    rss_first_median: float = float("nan")
    rss_last_median: float = float("nan")
    rss_median_growth_pct: float = float("nan")

    @property
    def stuck(self) -> int:
        return sum(s.stalled_intervals > 0 or s.not_live > 0 for s in self.streams) + sum(not e for e in self.ended)


@dataclass(frozen=True)
class Bounds:
    max_rss_growth_pct: float = 5.0
    max_fd_growth: int = 2
    min_fps_trend: float = 0.8  # last third / first third
    min_fps_floor: float = 0.25  # any interval / the stream's median


def summarise(samples: list[Sample], warmup_s: float, ended: tuple[bool, ...], rss_window_s: float = 0.0) -> Summary:
    """The figures of a soak: baseline = the first sample at or after ``warmup_s``; per-stream
    fps = analysed frames per interval between consecutive samples after the baseline; the RSS
    growth of the bound = median of the last ``rss_window_s`` seconds' samples against that of
    the first ``rss_window_s`` after the warm-up (0: the last and the first sample)."""
    if not samples:
        raise ValueError("no samples")
    after = [s for s in samples if s.t >= warmup_s]
    if len(after) < 2:
        raise ValueError(f"need >= 2 samples after the {warmup_s:.0f} s warm-up, have {len(after)}")
    rss = [s.rss_mib for s in after]
    fds = [s.fds for s in after]
    n = len(after[0].streams)
    figs = []
    for k in range(n):
        fps, stalled = [], 0
        for a, b in zip(after, after[1:], strict=False):
            da = b.streams[k].analysed - a.streams[k].analysed
            dr = b.streams[k].results - a.streams[k].results
            fps.append(da / (b.t - a.t))
            stalled += da <= 0 or dr <= 0
        third = max(1, len(fps) // 3)
        figs.append(StreamFigures(
            fps_min=round(min(fps), 2),
            fps_median=round(float(np.median(fps)), 2),
            fps_first_third=round(float(np.median(fps[:third])), 2),
            fps_last_third=round(float(np.median(fps[-third:])), 2),
            stalled_intervals=stalled,
            not_live=sum(s.streams[k].state != "live" for s in after),
        ))
    loads = [s.load_1m for s in samples]
    cpu = []
    for a, b in zip(after, after[1:], strict=False):
        da = sum(b.streams[k].analysed - a.streams[k].analysed for k in range(n))
        cpu.append(1e3 * (b.cpu_s - a.cpu_s) / da if da > 0 else float("nan"))
    third = max(1, len(cpu) // 3)
    first_w = [s.rss_mib for s in after if s.t <= after[0].t + rss_window_s]
    last_w = [s.rss_mib for s in after if s.t >= after[-1].t - rss_window_s]
    m0, m1 = float(np.median(first_w)), float(np.median(last_w))
    frames = sum(after[-1].streams[k].analysed - after[0].streams[k].analysed for k in range(n))
    return Summary(
        minutes=round(samples[-1].t / 60, 1), warmup_s=warmup_s, samples=len(samples),
        rss_first=round(rss[0], 1), rss_last=round(rss[-1], 1), rss_max=round(max(rss), 1),
        rss_growth_pct=round(100 * (rss[-1] - rss[0]) / rss[0], 2),
        rss_kib_per_frame=round(1024 * (rss[-1] - rss[0]) / max(frames, 1), 2),
        fd_first=fds[0], fd_last=fds[-1], fd_max=max(fds),
        load_min=round(min(loads), 2), load_max=round(max(loads), 2),
        streams=tuple(figs), ended=ended,
        rss_window_s=rss_window_s, rss_first_median=round(m0, 1), rss_last_median=round(m1, 1),
        rss_median_growth_pct=round(100 * (m1 - m0) / m0, 2),
        cpu_ms_first_third=_finite_median(cpu[:third]), cpu_ms_last_third=_finite_median(cpu[-third:]),
    )


def _finite_median(xs: list[float]) -> float:
    """The median of the finite values, rounded to 0.01 (NaN when there is none)."""
    ok = [x for x in xs if np.isfinite(x)]
    return round(float(np.median(ok)), 2) if ok else float("nan")


def violations(s: Summary, b: Bounds) -> list[str]:
    """Each broken bound, in words (empty: all met)."""
    out = []
    if s.rss_median_growth_pct >= b.max_rss_growth_pct:
        out.append(f"RSS grew {s.rss_median_growth_pct} % (bound < {b.max_rss_growth_pct} %)")
    if s.fd_last - s.fd_first > b.max_fd_growth:
        out.append(f"open fds {s.fd_first} -> {s.fd_last} (bound +{b.max_fd_growth})")
    for i, f in enumerate(s.streams):
        if f.stalled_intervals:
            out.append(f"stream {i}: {f.stalled_intervals} interval(s) with no analysed frame or result")
        if f.not_live:
            out.append(f"stream {i}: {f.not_live} sample(s) not 'live'")
        if f.fps_last_third < b.min_fps_trend * f.fps_first_third:
            out.append(f"stream {i}: fps fell from {f.fps_first_third} to {f.fps_last_third} (first vs last third)")
        if f.fps_min < b.min_fps_floor * f.fps_median:
            out.append(f"stream {i}: an interval at {f.fps_min} fps (median {f.fps_median})")
    for i, e in enumerate(s.ended):
        if not e:
            out.append(f"stream {i}: session not 'ended' after the hang-up")
    return out


def markdown(s: Summary) -> str:
    rows = [
        "| figure | value |",
        "|---|---|",
        f"| duration / samples | {s.minutes} min / {s.samples} (baseline after {s.warmup_s:.0f} s warm-up) |",
        f"| load average (1 min) min / max | {s.load_min} / {s.load_max} |",
        f"| server RSS first / last / max MiB | {s.rss_first} / {s.rss_last} / {s.rss_max} |",
        f"| RSS growth, last vs first sample | {s.rss_growth_pct} % ({s.rss_kib_per_frame} KiB per analysed frame) |",
        f"| RSS median, first / last {s.rss_window_s:.0f} s after the warm-up, MiB | {s.rss_first_median} / "
        f"{s.rss_last_median} |",
        f"| **RSS growth (the bound's figure)** | **{s.rss_median_growth_pct} %** |",
        f"| open fds first / last / max | {s.fd_first} / {s.fd_last} / {s.fd_max} |",
    ]
    for i, f in enumerate(s.streams):
        rows.append(f"| stream {i} analysed fps min / median (first → last third) "
                    f"| {f.fps_min} / {f.fps_median} ({f.fps_first_third} → {f.fps_last_third}) |")
    rows.append(f"| server CPU ms per analysed frame, first → last third | {s.cpu_ms_first_third} → "
                f"{s.cpu_ms_last_third} |")
    rows.append(f"| stuck sessions | {s.stuck} |")
    return "\n".join(rows)


# -- the run ------------------------------------------------------------------------------------




def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _trace_memory(out: Path, after_s: float, every_s: float = 30.0) -> None:
    """Diagnosis (``SOAK_TRACE=FILE``), cheap enough not to slow the server: after ``after_s``
    (``SOAK_TRACE_AFTER``) and then every ``every_s`` append to FILE the RSS, glibc's heap
    statistics (``mallinfo2``: bytes in use, free inside the heap, in mmapped blocks), Python's
    allocated blocks and the object types whose count grew most since the first line."""
    import gc
    import threading
    from collections import Counter

    from benchmarks._proc import heap_mib

    def run() -> None:
        time.sleep(after_s)
        base: Counter[str] | None = None
        t0 = time.monotonic()
        while True:
            rss = rss_mib()
            counts = Counter(type(o).__name__ for o in gc.get_objects())
            if base is None:
                base = counts
            m = heap_mib()
            heap = "" if m is None else (
                f"heap in use {m['in_use']:.1f} MiB, free in heap {m['free']:.1f} MiB, "
                f"mmapped {m['mmapped']:.1f} MiB in {m['blocks']:.0f} blocks, arena {m['arena']:.1f} MiB")
            grew = (counts - base).most_common(8)
            with out.open("a") as f:
                f.write(f"{time.monotonic() - t0:5.0f} s: RSS {rss:.1f} MiB; {heap}; Python blocks "
                        f"{sys.getallocatedblocks()}; objects grew: {grew}\n")
            time.sleep(every_s)

    threading.Thread(target=run, daemon=True, name="soak-trace").start()


def _trace_python(out: Path, after_s: float, every_s: float = 60.0, top: int = 12) -> None:
    """Diagnosis (``SOAK_TRACEMALLOC=FILE``; slows the server's Python code): from ``after_s``
    on, ``tracemalloc`` snapshots every ``every_s``; appends to FILE the traced total and the
    allocation sites (file:line) whose kept bytes grew most since the first snapshot."""
    import threading
    import tracemalloc

    def run() -> None:
        time.sleep(after_s)
        tracemalloc.start(1)
        time.sleep(5.0)
        first = tracemalloc.take_snapshot()
        t0 = time.monotonic()
        while True:
            time.sleep(every_s)
            snap = tracemalloc.take_snapshot()
            stats = snap.compare_to(first, "lineno")
            with out.open("a") as f:
                f.write(f"{time.monotonic() - t0:5.0f} s: traced {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MiB\n")
                for st in stats[:top]:
                    f.write(f"    {st.size_diff / 1024:+9.1f} KiB {st.count_diff:+8d} blocks  {st.traceback}\n")

    threading.Thread(target=run, daemon=True, name="soak-tracemalloc").start()


def _serve(port: int, standin: bool, threads: int, db: str, horizon_s: float) -> None:
    from aiohttp import web

    from liveness.apps.serve import ServeOptions, create_app

    factory = None
    if standin:  # transport and server only: a live session of the stand-in tracker, no analyser
        from liveness import Session
        from tests._serve_util import DiscTracker

        def factory() -> Session:
            return Session(DiscTracker(), [], mode="live", horizon_s=horizon_s)

    opts = ServeOptions(api_key=KEY, db=db, threads=threads, port=port, max_sessions=64, live_horizon_s=horizon_s)
    if os.environ.get("SOAK_TRACE"):
        _trace_memory(Path(os.environ["SOAK_TRACE"]), float(os.environ.get("SOAK_TRACE_AFTER", "120")))
    if os.environ.get("SOAK_TRACEMALLOC"):
        _trace_python(Path(os.environ["SOAK_TRACEMALLOC"]), float(os.environ.get("SOAK_TRACE_AFTER", "120")))
    web.run_app(create_app(opts, factory), host="127.0.0.1", port=port, print=None, access_log=None)


def clip_frames(k: int, seconds: float) -> tuple[str, list[np.ndarray]]:
    """Stream k's frames (640x480 RGB, 15 fps) and where they came from."""
    from tests._serve_util import fit_4x3

    path = DATA / CLIPS[k % len(CLIPS)]
    if path.exists():
        import av

        out: list[np.ndarray] = []
        with av.open(str(path)) as c:
            st = c.streams.video[0]
            rate = float(st.average_rate or FPS)
            step, acc = rate / FPS, 0.0
            for i, f in enumerate(c.decode(video=0)):
                if i >= acc:
                    out.append(fit_4x3(f.to_ndarray(format="rgb24")))
                    acc += step
                if len(out) >= seconds * FPS:
                    break
        return path.name, out
    import av

    from liveness.testing import make_demo_clip

    with tempfile.TemporaryDirectory() as d:
        clip = make_demo_clip(Path(d) / "a.mp4", seconds=seconds, fps=FPS, size=(640, 480))
        with av.open(str(clip)) as c:
            frames = [fit_4x3(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    return "synthetic face", frames


class _Track:
    """An aiortc track playing frames forwards then backwards at 15 fps (paced)."""

    def __new__(cls, frames: list[np.ndarray]) -> Any:
        from aiortc import VideoStreamTrack

        class T(VideoStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                self.order = list(range(len(frames))) + list(range(len(frames) - 2, 0, -1))
                self.i = 0
                self.start: float | None = None

            async def recv(self) -> Any:
                from av import VideoFrame

                if self.start is None:
                    self.start = time.monotonic()
                delay = self.start + self.i / FPS - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                frame = VideoFrame.from_ndarray(frames[self.order[self.i % len(self.order)]], format="rgb24")
                frame.pts = int(round(self.i * 90000 / FPS))
                frame.time_base = fractions.Fraction(1, 90000)
                self.i += 1
                return frame

        return T()


class _Peer:
    """A lean client: counts results instead of keeping every message."""

    def __init__(self, frames: list[np.ndarray]) -> None:
        self.frames = frames
        self.results = 0
        self.bye: str | None = None
        self.pc: Any = None

    async def connect(self, http: Any, url: str) -> None:
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = RTCPeerConnection()
        ch = self.pc.createDataChannel("liveness")
        self.pc.addTrack(_Track(self.frames))

        @ch.on("message")
        def _msg(text: str) -> None:
            m = json.loads(text)
            if m.get("type") == "result":
                self.results += 1
            elif m.get("type") == "bye":
                self.bye = str(m.get("reason"))

        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with http.post(url, json={"type": "offer", "sdp": self.pc.localDescription.sdp, "source": "soak"},
                             headers={"X-API-Key": KEY}) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"offer refused: {r.status} {body}")
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))

    async def close(self) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()


async def _soak(base: str, pid: int, streams: list[list[np.ndarray]], args: argparse.Namespace) -> tuple[list[Sample], tuple[bool, ...]]:
    import aiohttp

    hdr = {"X-API-Key": KEY}
    samples: list[Sample] = []
    async with aiohttp.ClientSession() as http:

        async def status(sid: str) -> dict[str, Any]:
            async with http.get(f"{base}/api/sessions/{sid}", headers=hdr) as r:
                return dict(await r.json())

        sids, peers = [], []
        for k, frames in enumerate(streams):
            async with http.post(f"{base}/api/sessions", json={"label": f"soak {k}"}, headers=hdr) as r:
                s = await r.json()
            peer = _Peer(frames)
            await peer.connect(http, s["offer_url"])
            sids.append(s["id"])
            peers.append(peer)
        end = time.monotonic() + 120
        while time.monotonic() < end and min(p.results for p in peers) == 0:
            await asyncio.sleep(0.5)
        t0 = time.monotonic()
        stop = t0 + args.minutes * 60
        nxt = t0
        try:
            while True:
                st = [await status(sid) for sid in sids]
                smp = Sample(
                    t=round(time.monotonic() - t0, 1), rss_mib=rss_mib(pid), fds=_fds(pid), load_1m=os.getloadavg()[0],
                    cpu_s=cpu_s(pid),
                    streams=tuple(StreamSample(str(x.get("state")), int((x.get("counters") or {}).get("analysed") or 0), p.results)
                                  for x, p in zip(st, peers, strict=True)),
                )
                samples.append(smp)
                print(json.dumps(asdict(smp)), flush=True)
                if args.json:
                    with Path(args.json).with_suffix(".samples.jsonl").open("a") as f:
                        f.write(json.dumps(asdict(smp)) + "\n")
                nxt += args.every
                if nxt > stop + 1e-6:
                    break
                await asyncio.sleep(max(0.0, nxt - time.monotonic()))
        finally:
            for p in peers:
                await p.close()
        ended = []
        deadline = time.monotonic() + 60
        for sid in sids:
            while True:
                state = (await status(sid)).get("state")
                if state == "ended" or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            ended.append(state == "ended")
    return samples, tuple(ended)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=180.0, help="seconds before the RSS / fd baseline")
    ap.add_argument("--rss-window", type=float, default=180.0, metavar="S",
                    help="the RSS growth compares the medians of the first and last S seconds after the warm-up "
                         "(0: the first and last sample)")
    ap.add_argument("--threads", type=int, default=2, help="server analysis threads")
    ap.add_argument("--clip-seconds", type=float, default=8.0, help="seconds of each clip to loop")
    ap.add_argument("--standin", action="store_true", help="the tests' stand-in tracker (transport only)")
    ap.add_argument("--live-horizon", type=float, default=600.0, metavar="S",
                    help="the server's --live-horizon (seconds of per-frame history a live session keeps)")
    ap.add_argument("--max-rss-growth", type=float, default=5.0, help="%%")
    ap.add_argument("--max-fd-growth", type=int, default=2)
    ap.add_argument("--json", help="write the summary here (and the samples beside it, .samples.jsonl)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        _serve(args.serve, args.standin, args.threads, args.db, args.live_horizon)
        return 0
    if args.streams < 1 or args.minutes <= 0 or args.every <= 0:
        ap.error("--streams >= 1, --minutes > 0 and --every > 0")
    if args.standin:
        from tests._serve_util import disc_frame

        sources = ["stand-in disc"] * args.streams
        streams = [[disc_frame(i, fps=FPS) for i in range(int(args.clip_seconds * FPS))]] * args.streams
    else:
        got = [clip_frames(k, args.clip_seconds) for k in range(args.streams)]
        sources, streams = [g[0] for g in got], [g[1] for g in got]
    print(f"machine: {os.cpu_count()} cores; load average {os.getloadavg()}; pipeline "
          f"{'stand-in' if args.standin else 'default'}; streams: {sources}", flush=True)
    if args.json and Path(args.json).with_suffix(".samples.jsonl").exists():
        Path(args.json).with_suffix(".samples.jsonl").unlink()
    with tempfile.TemporaryDirectory() as d:
        port = free_port()
        cmd = [sys.executable, __file__, "--serve", str(port), "--threads", str(args.threads), "--db", str(Path(d) / "soak.db"),
               "--live-horizon", str(args.live_horizon)]
        if args.standin:
            cmd.append("--standin")
        log = (Path(d) / "server.log").open("w")
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            end = time.monotonic() + 120
            while time.monotonic() < end:
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None:
                        raise RuntimeError("the server exited at start") from None
                    time.sleep(0.2)
            samples, ended = asyncio.run(_soak(f"http://127.0.0.1:{port}", proc.pid, streams, args))
        finally:
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            tail = (Path(d) / "server.log").read_text()[-3000:]
    if tail.strip():
        print("server log (tail):\n" + tail, flush=True)
    summary = summarise(samples, args.warmup, ended, args.rss_window)
    bad = violations(summary, Bounds(max_rss_growth_pct=args.max_rss_growth, max_fd_growth=args.max_fd_growth))
    print(markdown(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"pipeline": "stand-in" if args.standin else "default", "sources": sources,
                                               "summary": asdict(summary), "violations": bad}, indent=1))
    for v in bad:
        print("BOUND BROKEN:", v)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
