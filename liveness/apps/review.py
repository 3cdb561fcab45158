"""Offline review of one video file: the typed :class:`~liveness.core.review.Review` and its
`liveness.review/1` JSON document."""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import math
import platform
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from liveness.apps.schedule import ScheduleOptions, Scheduler
from liveness.core.errors import ConfigError, InputError
from liveness.core.hooks import Hook, HookEvent, TimingHook
from liveness.core.image import jpeg
from liveness.core.record import CompactObservations, SpilledRows
from liveness.core.registry import model_hashes
from liveness.core.review import REVIEW_SCHEMA, Review
from liveness.core.session import Session
from liveness.core.types import Event, Signal
from liveness.pipeline import PipelineOptions, build_session
from liveness.sources.video import VideoFrame, VideoSource, open_video
from liveness.verdict.report import telling_times

__all__ = ["SCHEMA", "ReviewOptions", "grab_thumbnails", "review", "review_video"]

SCHEMA = REVIEW_SCHEMA


@dataclass(frozen=True)
class ReviewOptions:
    """``max_side``: frames larger than this are downsized before analysis (keeps aspect).
    ``stride``: analyse every n-th decoded frame. ``thumbnails``: number of evidence frames to
    embed (JPEG, base64) — 0 for none. ``start`` / ``end``: review only that part of the file
    (seconds of the stream; ``end`` None = to the end); the timeline keeps the file's times.
    ``schedule``: analyse only some frames (:mod:`liveness.apps.schedule`; None = every frame,
    the default: a schedule changes the answers). ``decode_ahead``: decode (and convert) up to
    this many frames ahead on a second thread while the analysis runs (0 = on the same thread;
    the frames and answers are the same)."""

    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    max_side: int | None = 1280
    stride: int = 1
    thumbnails: int = 0
    start: float = 0.0
    end: float | None = None
    schedule: ScheduleOptions | None = None
    decode_ahead: int = 0

    def __post_init__(self) -> None:
        if self.decode_ahead < 0:
            raise ConfigError(f"decode_ahead must be >= 0, got {self.decode_ahead}")
        if self.decode_ahead and self.schedule is not None:  # the frames chosen would depend on timing
            raise ConfigError("decode_ahead and a schedule do not go together: a decoder running ahead "
                              "would choose the analysed frames before the analysis asks for them")

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        d = {**asdict(self), "pipeline": self.pipeline.to_dict()}
        for k in ("schedule", "decode_ahead"):  # the document's shape is unchanged when unused
            if not d[k]:
                del d[k]
        return d


def _provenance(options: ReviewOptions, session: Session, signals: Mapping[str, Signal]) -> dict[str, Any]:
    from liveness.core.version import __version__

    return {
        "package": "interview-liveness",
        "version": __version__,
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "models": model_hashes(),
        "options": options.to_dict(),
        "analysers": list(signals),
        "fusion": session.fusion.describe() if session.fusion is not None else None,
    }


def review(
    path: str | Path,
    options: ReviewOptions | None = None,
    *,
    hook: Hook | None = None,
    session: Session | None = None,
) -> Review:
    """Analyse every (or every ``stride``-th) frame of ``path``; returns the typed review."""
    options = options or ReviewOptions()
    src = open_video(path, max_side=options.max_side, stride=options.stride,
                     start=options.start, end=options.end)
    timing = TimingHook(hook)
    if session is None:
        session = build_session(options.pipeline, hook=timing)
    else:
        session.hook = timing
    session.use_compact_record()  # flat memory: an hour-long file keeps ~18 MB of record
    total = _expected_frames(src, options)
    timeline = SpilledRows()  # rows on disk, offsets in memory
    frames: Iterator[VideoFrame]
    sched = Scheduler(options.schedule) if options.schedule is not None else None
    if sched is not None:
        near_end = src.info.duration_s - 0.5 if src.info.duration_s > 0 else math.inf
        frames = src.frames(sched.want, lambda t: t < near_end and sched.sparse(t))
    else:
        frames = src.frames()
    if options.decode_ahead:
        frames = _ahead(frames, options.decode_ahead)
    t_dec = time.perf_counter()
    for frame in frames:
        timing(HookEvent("decode", frame.t, (time.perf_counter() - t_dec) * 1e3))
        res = session.process(frame.image, frame.t, total=total)
        timeline.append(res.to_dict())
        if sched is not None:
            sched.observe(res)
        t_dec = time.perf_counter()
    if not timeline:
        raise InputError(f"{path}: no frames were analysed")

    signals = session.signals()
    verdict = session.verdict(signals)
    info = src.info
    events = list(session.events)
    if src.complete is False:
        events.append(_truncated_event(src))
    source = {
        "path": str(path),
        "sha256": info.sha256,
        "width": info.width,
        "height": info.height,
        "analysed_width": info.frame_width,
        "analysed_height": info.frame_height,
        "fps": round(info.fps, 3),
        "duration_s": round(info.duration_s, 3),
        "frames": len(timeline),
        "codec": info.codec,
        "rotation": info.rotation,
        "complete": src.complete is not False,
    }
    doc = Review(
        source=source,
        timeline=timeline,
        signals=signals,
        verdict=verdict,
        events=tuple(events),
        challenges=tuple(r.to_dict() for r in session.challenge_results()),
        summary=_summary(session),
        timing=timing.to_dict(),
        provenance=_provenance(options, session, signals),
    )
    if options.thumbnails:
        times = telling_times(doc.to_dict(), k=options.thumbnails)
        doc = replace(doc, thumbnails=tuple(grab_thumbnails(path, options, times)))
    return doc


def review_video(
    path: str | Path,
    options: ReviewOptions | None = None,
    *,
    hook: Hook | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """Analyse every (or every ``stride``-th) frame of ``path``; returns the review document
    (``liveness.review/1``, the JSON form of :func:`review`)."""
    return review(path, options, hook=hook, session=session).to_dict()


def _ahead(frames: Iterator[VideoFrame], depth: int) -> Iterator[VideoFrame]:
    """``frames`` produced on a second thread, up to ``depth`` ahead (PyAV and the RGB
    conversion release the GIL while they work); its errors are raised here, in order."""
    import queue
    import threading

    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for f in frames:
                while not stop.is_set():
                    try:
                        q.put(("frame", f), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    th = threading.Thread(target=run, name="liveness-decode", daemon=True)
    th.start()
    try:
        while True:
            kind, val = q.get()
            if kind == "frame":
                yield val
            elif kind == "error":
                raise val
            else:
                return
    finally:
        stop.set()
        while th.is_alive():
            with contextlib.suppress(queue.Empty):
                q.get_nowait()
            th.join(timeout=0.05)


def _expected_frames(src: VideoSource, options: ReviewOptions) -> int | None:
    """Frames the review will analyse, from the container's count (None when it declares none;
    with a schedule, the frames its base rate would analyse)."""
    info = src.info
    if not info.frames:
        return None
    if options.schedule is not None and info.duration_s:
        end = info.duration_s if options.end is None else min(options.end, info.duration_s)
        return max(1, round((end - options.start) * min(options.schedule.base_fps, info.fps or 30.0)))
    if (options.start > 0 or options.end is not None) and info.fps and info.duration_s:
        end = info.duration_s if options.end is None else min(options.end, info.duration_s)
        return max(0, round((end - options.start) * info.fps)) // options.stride or None
    return info.frames // options.stride


def _truncated_event(src: VideoSource) -> Event:
    """The ``input_truncated`` event of a file that ends before its declared duration."""
    got, declared = float(src.decoded_s or 0.0), float(src.info.duration_s)
    n, m = src.decoded_frames, src.info.frames
    of_frames = f"{n} of {m} frames" if m else f"{n} frames"
    msg = (f"the file ends early: {got:.1f} s of its declared {declared:.1f} s could be decoded "
           f"({of_frames}); only that part was reviewed") if declared > 0 else (
           f"the file is damaged: decoding stopped after {got:.1f} s ({of_frames}); only that part was reviewed")
    return Event(round(got, 4), "input_truncated", msg,
                 (("decoded_s", round(got, 3)), ("declared_s", round(declared, 3)),
                  ("decoded_frames", n), ("declared_frames", m)))


def _summary(session: Session) -> dict[str, Any]:
    obs = session.observations
    n = len(obs)
    if isinstance(obs, CompactObservations):  # from its arrays, without rebuilding observations
        fc = obs.faces()
        face = fc[:, 0].astype(bool) if n else np.zeros(0, bool)
        n_faces, multi = int(face.sum()), int((fc[:, 1] > 1).sum()) if n else 0
        yaw_all, size_all = obs.yaw()[face], obs.quality()[face, 0]
        yaw, size = yaw_all[np.isfinite(yaw_all)], size_all[np.isfinite(size_all)]
    else:
        faces = [o for o in obs if o.face]
        n_faces, multi = len(faces), sum(1 for o in obs if o.faces > 1)
        yaw = np.array([o.pose.yaw for o in faces if o.pose is not None])
        size = np.array([o.quality.size_px for o in faces if o.quality is not None])
    d: dict[str, Any] = {
        "frames": n,
        "face_frames": n_faces,
        "face_fraction": round(n_faces / n, 4) if n else 0.0,
        "multi_face_frames": multi,
    }
    if n_faces:
        if yaw.size:
            d["yaw_range"] = [round(float(yaw.min()), 1), round(float(yaw.max()), 1)]
        if size.size:
            d["median_face_px"] = round(float(np.median(size)), 1)
    return d


def grab_thumbnails(
    path: str | Path, options: ReviewOptions, times: Sequence[float], width: int = 320
) -> list[dict[str, Any]]:
    """JPEG thumbnails (base64) of the frames nearest to ``times`` (one extra decode pass)."""
    if not times:
        return []
    want = sorted(set(float(t) for t in times))
    best: dict[float, tuple[float, np.ndarray, float]] = {}
    for frame in open_video(path, max_side=options.max_side, stride=options.stride,
                          start=options.start, end=options.end):
        for t in want:
            d = abs(frame.t - t)
            if t not in best or d < best[t][0]:
                best[t] = (d, frame.image, frame.t)
        if frame.t > want[-1] + 1.0:
            break
    out = []
    for t in want:
        if t not in best:
            continue
        _, img, ft = best[t]
        data = jpeg(img, width)
        if data is not None:
            out.append({"t": round(ft, 3), "jpeg_b64": base64.b64encode(data).decode("ascii")})
    return out
