"""Offline review of one video file: the `liveness.review/1` JSON document."""

from __future__ import annotations

import base64
import datetime as _dt
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import InputError
from liveness.core.hooks import Hook, HookEvent, TimingHook
from liveness.core.registry import model_hashes
from liveness.core.session import Event, Session
from liveness.pipeline import PipelineOptions, build_session
from liveness.sources.video import VideoSource, open_video

__all__ = ["SCHEMA", "ReviewOptions", "review_video"]

SCHEMA = "liveness.review/1"


@dataclass(frozen=True)
class ReviewOptions:
    """``max_side``: frames larger than this are downsized before analysis (keeps aspect).
    ``stride``: analyse every n-th decoded frame. ``thumbnails``: number of evidence frames to
    embed (JPEG, base64) — 0 for none."""

    pipeline: PipelineOptions = field(default_factory=PipelineOptions)
    max_side: int | None = 1280
    stride: int = 1
    thumbnails: int = 0

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _provenance(options: ReviewOptions, session: Session) -> dict[str, Any]:
    from liveness import __version__

    models = model_hashes()
    return {
        "package": "interview-liveness",
        "version": __version__,
        "python": platform.python_version(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "models": models,
        "options": options.to_dict(),
        "analysers": [a.name for a in session.analysers],
        "fusion": session.fusion.describe() if hasattr(session.fusion, "describe") else None,
    }


def review_video(
    path: str | Path,
    options: ReviewOptions | None = None,
    *,
    hook: Hook | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """Analyse every (or every ``stride``-th) frame of ``path``; returns the review document."""
    options = options or ReviewOptions()
    src = open_video(path, max_side=options.max_side, stride=options.stride)
    timing = TimingHook(hook)
    if session is None:
        session = build_session(options.pipeline, hook=timing)
    else:
        session.hook = timing
    total = src.info.frames // options.stride if src.info.frames else None
    timeline: list[dict[str, Any]] = []
    t_dec = time.perf_counter()
    for frame in src:
        timing(HookEvent("decode", frame.t, (time.perf_counter() - t_dec) * 1e3))
        res = session.process(frame.image, frame.t, total=total)
        timeline.append(res.to_dict())
        t_dec = time.perf_counter()
    if not timeline:
        raise InputError(f"{path}: no frames were analysed")

    signals = session.signals()
    verdict = session.verdict()
    info = src.info
    events = [e.to_dict() for e in session.events]
    if src.complete is False:
        events.append(_truncated_event(src))
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "source": {
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
        },
        "timeline": timeline,
        "signals": {k: v.to_dict() for k, v in signals.items()},
        "verdict": verdict.to_dict(),
        "events": events,
        "challenges": _challenges(session),
        "summary": _summary(session),
        "timing": timing.to_dict(),
        "provenance": _provenance(options, session),
    }
    if options.thumbnails:
        doc["thumbnails"] = grab_thumbnails(path, options, _telling_times(doc, options.thumbnails))
    return doc


def _truncated_event(src: VideoSource) -> dict[str, Any]:
    """The ``input_truncated`` event of a file that ends before its declared duration."""
    got, declared = float(src.decoded_s or 0.0), float(src.info.duration_s)
    n, m = src.decoded_frames, src.info.frames
    of_frames = f"{n} of {m} frames" if m else f"{n} frames"
    msg = (f"the file ends early: {got:.1f} s of its declared {declared:.1f} s could be decoded "
           f"({of_frames}); only that part was reviewed") if declared > 0 else (
           f"the file is damaged: decoding stopped after {got:.1f} s ({of_frames}); only that part was reviewed")
    return Event(round(got, 4), "input_truncated", msg,
                 (("decoded_s", round(got, 3)), ("declared_s", round(declared, 3)),
                  ("decoded_frames", n), ("declared_frames", m))).to_dict()


def _challenges(session: Session) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for a in session.analysers:
        results = getattr(a, "results", None)
        if callable(results):
            out.extend(r.to_dict() for r in results())
    return out


def _summary(session: Session) -> dict[str, Any]:
    obs = session.observations
    n = len(obs)
    faces = [o for o in obs if o.face]
    multi = sum(1 for o in obs if o.faces > 1)
    d: dict[str, Any] = {
        "frames": n,
        "face_frames": len(faces),
        "face_fraction": round(len(faces) / n, 4) if n else 0.0,
        "multi_face_frames": multi,
    }
    if faces:
        yaw = np.array([o.pose.yaw for o in faces if o.pose is not None])
        size = np.array([o.quality.size_px for o in faces if o.quality is not None])
        if yaw.size:
            d["yaw_range"] = [round(float(yaw.min()), 1), round(float(yaw.max()), 1)]
        if size.size:
            d["median_face_px"] = round(float(np.median(size)), 1)
    return d


def _telling_times(doc: dict[str, Any], k: int) -> list[float]:
    try:
        from liveness.verdict.report import telling_times

        return list(telling_times(doc, k=k))
    except ImportError:
        pass
    # fallback: evenly spaced face frames
    ts = [r["t"] for r in doc["timeline"] if r.get("face")]
    if not ts:
        return []
    idx = np.linspace(0, len(ts) - 1, num=min(k, len(ts))).round().astype(int)
    return [ts[i] for i in idx]


def grab_thumbnails(
    path: str | Path, options: ReviewOptions, times: Sequence[float], width: int = 320
) -> list[dict[str, Any]]:
    """JPEG thumbnails (base64) of the frames nearest to ``times`` (one extra decode pass)."""
    if not times:
        return []
    want = sorted(set(float(t) for t in times))
    best: dict[float, tuple[float, np.ndarray, float]] = {}
    for frame in open_video(path, max_side=options.max_side, stride=options.stride):
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
        h, w = img.shape[:2]
        s = width / w
        small = cv2.resize(img, (width, max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            out.append({"t": round(ft, 3), "jpeg_b64": base64.b64encode(buf.tobytes()).decode("ascii")})
    return out
