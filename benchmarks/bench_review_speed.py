"""Offline review speed and memory (issue 16): the whole ``liveness review`` process per clip.

    .venv/bin/python benchmarks/bench_review_speed.py --seconds 60 --json speed.json
    .venv/bin/python benchmarks/bench_review_speed.py --long 600,1800,3600 --long-size 320x240 --long-args "--stride 30"
    .venv/bin/python benchmarks/bench_review_speed.py --trace LONG.mp4

Speed: synthetic 720p30 and 1080p30 clips (the avatar demo, 12 s rendered once, looped to
``--seconds`` by copying its packets, so the loop costs no encoding) or ``--clip`` files, each
reviewed by a fresh ``liveness review FILE --json ... -q`` process per mode (``--modes``: the
every-frame default, ``--decode-ahead``, ``--fast``, ...). Per run: wall seconds, x real time
(video seconds / wall), CPU seconds per video second (user + system of the review process and
its threads, from ``wait4``), peak RSS; ``startup`` is the same for a 1-s clip (imports, model
checks and loading), so the per-second figures of long files are the others minus it.

Long files (``--long``): a small clip looped to each duration, reviewed once each; the peak
RSS against the duration shows whether memory stays flat. ``--long-args`` keeps the cost low
(``--stride 30`` analyses one frame a second, every frame is still decoded). ``--trace``: the
RSS of an in-process every-frame review every 600 frames, i.e. the memory one analysed frame
keeps.

The machine's load average is printed with every run: CPU seconds stay meaningful on a busy
machine, wall clock only on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODES = {
    "default": [],
    "ahead": ["--decode-ahead", "4"],
    "fast": ["--fast"],
    "threads2": ["--threads", "2"],
    "fast+threads2": ["--fast", "--threads", "2"],
}


def loop_clip(src: Path, out: Path, seconds: float) -> Path:
    """``src`` repeated (packets copied, timestamps shifted) until ``seconds`` long."""
    import av

    with av.open(str(src)) as ic:
        ist = ic.streams.video[0]
        pk = [p for p in ic.demux(ist) if p.pts is not None]
        tb = ist.time_base
    pts = sorted(p.pts for p in pk)
    span = pts[-1] - pts[0] + (pts[-1] - pts[-2])
    with av.open(str(src)) as ic, av.open(str(out), "w") as oc:
        ist = ic.streams.video[0]
        ost = oc.add_stream_from_template(ist)
        k = 0
        while k * span * tb < seconds:
            ic.seek(0)
            for p in ic.demux(ist):
                if p.pts is None:
                    continue
                p.pts += k * span
                p.dts = (p.dts if p.dts is not None else p.pts) + k * span
                p.stream = ost
                oc.mux(p)
            k += 1
    return out


def synthetic(folder: Path, size: tuple[int, int], seconds: float, fps: float = 30.0) -> Path:
    from liveness.testing.clips import make_demo_clip

    w, h = size
    base = folder / f"avatar_{h}p{fps:g}_12s.mp4"
    if not base.is_file():
        make_demo_clip(base, 12.0, fps, size)
    if seconds <= 12.0:
        return base
    out = folder / f"avatar_{h}p{fps:g}_{seconds:g}s.mp4"
    return out if out.is_file() else loop_clip(base, out, seconds)


def _make(kind: str, *args: str) -> Path:
    """Make a clip in a child process: this process stays small, because a child's peak RSS
    (``wait4``) counts the memory of the process it was forked from."""
    out = subprocess.run([sys.executable, __file__, "--_make", kind, *args], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def trace(video: str, every: int = 600) -> dict[str, Any]:
    """In this process: review ``video`` (every frame) and read the RSS every ``every``
    analysed frames; the slope is the memory each analysed frame keeps."""
    from liveness.apps.review import review

    marks: list[tuple[int, float]] = []

    def hook(ev: Any) -> None:
        if ev.stage == "frame" and ev.completed and ev.completed % every == 0:
            marks.append((int(ev.completed), round(_rss_mib(), 1)))

    review(video, hook=hook)
    (n0, r0), (n1, r1) = marks[0], marks[-1]
    return {"video": Path(video).name, "marks": marks,
            "kib_per_frame": round((r1 - r0) * 1024 / max(n1 - n0, 1), 3)}


def run_review(video: Path, args: list[str], nice: int) -> dict[str, Any]:
    """One ``liveness review`` process: wall, CPU (user + sys) and peak RSS from ``wait4``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, "-m", "liveness.apps.cli", "review", str(video), "--json", str(out), "-q", *args]
        if nice:
            cmd = ["nice", "-n", str(nice), *cmd]
        load = os.getloadavg()[0]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read().decode() if proc.stderr else ""
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit {proc.returncode}: {err[-400:]}")
        doc = json.loads(out.read_text())
    dur = float(doc["source"]["duration_s"])
    cpu = ru.ru_utime + ru.ru_stime
    return {
        "video": video.name, "args": " ".join(args), "duration_s": round(dur, 2),
        "analysed_frames": doc["source"]["frames"], "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
        "x_real_time": round(dur / wall, 2), "cpu_per_video_s": round(cpu / dur, 4),
        "peak_rss_mib": round(ru.ru_maxrss / 1024, 1), "load_before": round(load, 2),
        "load_after": round(os.getloadavg()[0], 2), "verdict": doc["verdict"]["label"],
    }


def _print(r: dict[str, Any], startup: dict[str, Any] | None = None) -> None:
    net = ""
    if startup is not None and r["duration_s"] > startup["duration_s"]:
        d = r["duration_s"] - startup["duration_s"]
        net = (f"  net of startup: {d / max(r['wall_s'] - startup['wall_s'], 1e-3):6.2f}x, "
               f"{(r['cpu_s'] - startup['cpu_s']) / d:.3f} CPU s/s")
    print(f"{r['video']:28s} {r['args'] or 'default':28s} {r['duration_s']:7.1f}s  frames {r['analysed_frames']:6d}  "
          f"wall {r['wall_s']:7.2f}s  {r['x_real_time']:6.2f}x  CPU {r['cpu_per_video_s']:.3f} s/s  "
          f"RSS {r['peak_rss_mib']:6.1f} MiB  load {r['load_before']:.2f}->{r['load_after']:.2f}{net}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the synthetic speed clips")
    ap.add_argument("--sizes", default="1280x720,1920x1080")
    ap.add_argument("--clip", action="append", default=[], help="a video file to time too (repeatable)")
    ap.add_argument("--modes", default="default,ahead,fast",
                    help=f"comma-separated, of {sorted(MODES)}, or extra review arguments in quotes")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--long", default="", help="durations (s) of the long-file memory check, e.g. 600,1800,3600")
    ap.add_argument("--long-size", default="320x240")
    ap.add_argument("--long-args", default="--stride 30", help="review arguments of the long files")
    ap.add_argument("--nice", type=int, default=0, help="run the reviews under nice -n N")
    ap.add_argument("--work", default=None, help="folder for the generated clips (kept; default a temporary one)")
    ap.add_argument("--json", default=None, help="write every run here")
    ap.add_argument("--trace", default=None, help="a video: RSS every 600 analysed frames of an in-process "
                    "every-frame review (KiB kept per frame)")
    ap.add_argument("--_make", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.trace:
        tr = trace(a.trace)
        print(json.dumps(tr))
        if a.json:
            Path(a.json).write_text(json.dumps(tr, indent=1))
        return 0
    if a._make:  # the child of _make
        kind, *rest = a._make
        if kind == "synthetic":
            print(synthetic(Path(rest[0]), (int(rest[1]), int(rest[2])), float(rest[3])))
        elif kind == "demo":
            from liveness.testing.clips import make_demo_clip

            print(make_demo_clip(rest[0], float(rest[1]), 30.0, (int(rest[2]), int(rest[3]))))
        else:
            print(loop_clip(Path(rest[0]), Path(rest[1]), float(rest[2])))
        return 0

    work = Path(a.work or tempfile.mkdtemp(prefix="bench-review-"))
    work.mkdir(parents=True, exist_ok=True)
    runs: list[dict[str, Any]] = []
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()}, clips in {work}", flush=True)
    modes = [MODES.get(m.strip(), shlex.split(m)) for m in a.modes.split(",") if m.strip()]
    if a.seconds > 0:
        sizes = [tuple(int(v) for v in s.lower().split("x")) for s in a.sizes.split(",") if s]
        videos = [_make("synthetic", str(work), str(w), str(h), str(a.seconds)) for w, h in sizes]
        videos += [Path(c) for c in a.clip]
        startup = None
        if sizes:
            one = work / "avatar_1s.mp4"
            if not one.is_file():
                _make("demo", str(one), "1", str(sizes[0][0]), str(sizes[0][1]))
            startup = run_review(one, [], a.nice)
            startup["role"] = "startup"
            runs.append(startup)
            _print(startup)
        for _ in range(a.repeats):
            for v in videos:
                for m in modes:
                    r = run_review(v, m, a.nice)
                    r["role"] = "speed"
                    runs.append(r)
                    _print(r, startup)
    if a.long:
        w, h = (int(v) for v in a.long_size.lower().split("x"))
        base = _make("synthetic", str(work), str(w), str(h), "12")
        for s in (float(x) for x in a.long.split(",") if x):
            v = work / f"long_{h}p_{s:g}s.mp4"
            if not v.is_file():
                _make("loop", str(base), str(v), str(s))
            r = run_review(v, shlex.split(a.long_args), a.nice)
            r["role"] = "long"
            runs.append(r)
            _print(r)
    if a.json:
        Path(a.json).write_text(json.dumps({"runs": runs, "cores": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
