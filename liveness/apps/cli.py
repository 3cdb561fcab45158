"""`liveness` command line: review, eval, serve, enroll."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from liveness.apps.common import (
    check_writable,
    progress_hook,
    single_threaded_opencv,
    write_text,
)
from liveness.apps.enroll import add_enroll_parser
from liveness.apps.serve.cli import add_serve_parser
from liveness.core.errors import InputError, LivenessError

__all__ = ["build_parser", "main"]


def _pipeline_options(args: argparse.Namespace) -> Any:
    from liveness.pipeline import PipelineOptions
    from liveness.tracking.tracker import TrackerOptions

    return PipelineOptions(
        tracker=TrackerOptions(threads=args.threads),
        references=tuple(getattr(args, "reference", None) or ()),
    )


def cmd_review_batch(args: argparse.Namespace) -> int:
    """Several files or folders: one report each into ``--out`` plus an index (see ``_batch``)."""
    from liveness.apps.batch import BatchOptions, BatchProgress, review_batch

    if args.start or args.end is not None:
        raise InputError("--start/--end review a part of one file, not a batch")
    if args.fast or args.decode_ahead:
        raise InputError("--fast/--decode-ahead review one file; a batch reviews every frame")
    if not args.out:
        raise InputError("reviewing several files or a folder needs --out DIR (one JSON + HTML per video)")
    if args.json or args.html:
        raise InputError("--json/--html name one report; with several videos use --out DIR")
    opts = BatchOptions(threads=args.threads, max_side=args.max_side, stride=args.stride,
                        thumbnails=args.thumbnails, references=tuple(args.reference or ()), workers=args.workers)
    progress = BatchProgress(quiet=args.quiet)
    try:
        rows = review_batch(args.video, args.out, opts, progress=progress, on_start=progress.start,
                            engine=args.engine, ray_address=args.ray_address)
    finally:
        progress.close()
    failed = [r for r in rows if r.get("error")]
    reused = sum(1 for r in rows if r.get("reused"))
    print(f"{len(rows) - len(failed)} of {len(rows)} videos reviewed ({reused} unchanged and reused), "
          f"{len(failed)} failed; index: {Path(args.out) / 'index.html'}", file=sys.stderr)
    return 1 if failed else 0


def _clock(text: str) -> float:
    """Seconds from ``SS[.s]``, ``MM:SS[.s]`` or ``HH:MM:SS[.s]`` (argparse type)."""
    parts = text.strip().split(":")
    try:
        if not 1 <= len(parts) <= 3:
            raise ValueError(text)
        vals = [float(p) for p in parts]
        if any(v < 0 or not math.isfinite(v) for v in vals) or any(v >= 60 for v in vals[1:]):
            raise ValueError(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a time: {text!r} (seconds, MM:SS or HH:MM:SS)") from None
    sec = 0.0
    for v in vals:
        sec = sec * 60 + v
    return sec


def _schedule(args: argparse.Namespace) -> Any:
    """The analysis schedule of ``--fast`` (None without it)."""
    from liveness.apps.schedule import ScheduleOptions

    if args.fast_fps is not None and not args.fast:
        raise InputError("--fast-fps goes with --fast")
    if not args.fast:
        return None
    return ScheduleOptions() if args.fast_fps is None else ScheduleOptions(base_fps=args.fast_fps)


def cmd_review(args: argparse.Namespace) -> int:
    from liveness.apps.review import ReviewOptions, review
    from liveness.verdict.explain import LABEL_HEADLINE, verdict_text

    videos = list(args.video or [])
    if len(videos) > 1 or args.out or any(Path(v).is_dir() for v in videos) or args.engine != "local":
        return cmd_review_batch(args)
    check_writable(args.json, "the review JSON")
    check_writable(args.html, "the HTML report")
    opts = ReviewOptions(
        pipeline=_pipeline_options(args),
        max_side=args.max_side,
        stride=args.stride,
        thumbnails=args.thumbnails if args.html else 0,
        start=args.start,
        end=args.end,
        schedule=_schedule(args),
        decode_ahead=args.decode_ahead,
    )
    with contextlib.ExitStack() as stack:
        video = videos[0] if videos else None
        if video is None:  # the demo clip lives in a temporary folder removed afterwards
            from liveness.testing import make_demo_clip

            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="liveness-demo-"))
            video = str(Path(tmp) / "demo_avatar.mp4")
            print("no VIDEO given: reviewing the built-in synthetic avatar demo (an animated photo, "
                  "made on the spot)", file=sys.stderr)
            make_demo_clip(video)
        hook = progress_hook(Path(video).name, args.quiet)
        if hook is not None:
            stack.callback(hook.close)
        rev = review(video, opts, hook=hook)
    if args.json:  # streamed: an hour-long timeline is never held whole
        write_text(args.json, rev.json_chunks())
    if args.html:
        from liveness.verdict.report import render_html

        write_text(args.html, render_html(rev.to_dict()))
    v = rev.verdict.to_dict()
    s = dict(rev.summary)
    doc: dict[str, Any] = {"events": [e.to_dict() for e in rev.events], "signals": {k: x.to_dict() for k, x in rev.signals.items()}}
    risk = "n/a" if v.get("risk") is None else f"{v['risk']:.2f}"
    label = str(v.get("label"))
    print(
        f"{Path(video).name}: {LABEL_HEADLINE.get(label, label)} (risk {risk}); face on "
        f"{s['face_fraction'] * 100:.1f}% of {s['frames']} frames",
        file=sys.stderr,
    )
    print(f"  {verdict_text(label, v.get('assurance') or ())}", file=sys.stderr)
    for e in doc["events"]:
        if e.get("kind") == "input_truncated":
            print(f"  warning: {e['message']}", file=sys.stderr)
    for name, sig in doc["signals"].items():
        val = "n/a" if sig["value"] is None else f"{sig['value']:.3f}"
        print(f"  {name:24s} {val}", file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from liveness.apps.eval import run_eval

    return run_eval(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="liveness", description=__doc__)
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("review", help="analyse a video file")
    r.add_argument("video", nargs="*",
                   help="video file (default: a built-in synthetic demo clip); several files or folders "
                        "are reviewed as a batch into --out")
    r.add_argument("--json", metavar="OUT", help="write the review JSON here ('-' for stdout)")
    r.add_argument("--html", metavar="OUT", help="write a self-contained HTML report here")
    r.add_argument("--reference", action="append", metavar="PHOTO",
                   help="reference photo or enrolment file of the expected person (repeatable)")
    r.add_argument("--stride", type=int, default=1, help="analyse every n-th frame (default 1)")
    r.add_argument("--start", type=_clock, default=0.0, metavar="TIME",
                   help="review from this time of the file (seconds, MM:SS or HH:MM:SS)")
    r.add_argument("--end", type=_clock, default=None, metavar="TIME", help="... up to this time")
    r.add_argument("--max-side", type=int, default=1280, help="downsize frames larger than this")
    r.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    r.add_argument("--fast", action="store_true",
                   help="analyse 10 frames a second, every frame around head turns, face changes and "
                        "events (liveness.apps.schedule; the answers differ a little from the "
                        "every-frame default)")
    r.add_argument("--fast-fps", type=float, default=None, metavar="FPS",
                   help="with --fast: frames analysed a second outside the dense windows (default 10)")
    r.add_argument("--decode-ahead", type=int, default=0, metavar="N",
                   help="decode up to N frames ahead on a second thread (same answers; default 0; not "
                        "with --fast)")
    r.add_argument("--thumbnails", type=int, default=6, help="evidence frames in the HTML report")
    r.add_argument("--out", metavar="DIR", help="batch mode: one JSON + HTML report per video and an "
                   "index.html/index.json here; a rerun reuses unchanged reviews")
    r.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)),
                   help="batch mode: videos reviewed in parallel (default: up to 4 cores)")
    r.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="batch mode: review on this machine's processes (local) or as Ray tasks (ray; "
                        "pip install 'interview-liveness[ray]')")
    r.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="with --engine ray: the cluster (ray://head:10001, or auto); default: start a local Ray")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_review)

    e = sub.add_parser("eval", help="evaluate every signal over a manifest of labelled clips")
    e.add_argument("manifest", help="CSV with path,label[,attack,pair] columns")
    e.add_argument("--root", help="folder the manifest's paths are relative to (default: its folder)")
    e.add_argument("--json", metavar="OUT", help="write per-clip scores and metrics here")
    e.add_argument("--cache", metavar="DIR", help="per-clip review cache (resumable; default .cache/eval)")
    e.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2)), help="parallel clips")
    e.add_argument("--stride", type=int, default=1, help="analyse every n-th frame")
    e.add_argument("--max-side", type=int, default=1280)
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--fast", action="store_true", help="review with the --fast analysis schedule")
    e.add_argument("--limit", type=int, default=0, help="only the first N clips (0 = all)")
    e.add_argument("--artefact-model", metavar="ONNX", default=None,
                   help="a swap-detector file to use instead of the shipped one (e.g. retrained on "
                   "your own data, or a fold model of models/train/oof_eval.py)")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(func=cmd_eval)

    add_serve_parser(sub)
    add_enroll_parser(sub)
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it stops like Ctrl-C: written reports
    stay whole (atomic writes) and a batch rerun reuses them."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Any:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    with _sigterm_as_interrupt():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    single_threaded_opencv()
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from liveness.core.version import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except LivenessError as exc:
        print(f"liveness: error: {exc}", file=sys.stderr)
        return 2
    except _Terminated:
        print("liveness: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("liveness: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
