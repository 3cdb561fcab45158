"""``liveness enroll``: store a reference identity from photos and/or a first meeting's
recording, for ``liveness review --reference person.json``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import InputError
from liveness.signals.enrollment import IMAGE_SUFFIXES, Enrollment
from liveness.signals.identity import IdentityOptions, good_sample, robust_centroid

__all__ = ["add_enroll_parser", "enroll"]


def enroll(
    sources: Sequence[str | Path],
    *,
    options: IdentityOptions | None = None,
    max_per_video: int = 20,
) -> Enrollment:
    """Build an :class:`Enrollment` from photos and/or videos of one person (e.g. the first
    meeting's recording): each photo gives its face; each video gives up to ``max_per_video`` good
    frontal samples spread over it. Raises :class:`InputError` when nothing usable is found."""
    from liveness.signals.embedding import FaceEmbedder, load_reference

    opts = options or IdentityOptions()
    embedder = FaceEmbedder(opts.threads)
    embs: list[np.ndarray] = []
    for src in sources:
        p = Path(src)
        if p.suffix.lower() in IMAGE_SUFFIXES:
            embs.append(load_reference(p, embedder, opts.threads))
        else:
            embs.extend(_video_samples(p, opts, embedder, max_per_video))
    if not embs:
        raise InputError("no usable face found in " + ", ".join(map(str, sources)))
    e = np.stack(embs)
    c = robust_centroid(e, opts.threshold)
    keep = np.linalg.norm(e - c, axis=1) < opts.threshold
    if keep.sum() < len(e) / 2:
        raise InputError("the enrolment sources do not show one consistent person")
    return Enrollment.from_embeddings(e[keep], source=", ".join(p.name for p in map(Path, sources)))


def _video_samples(path: Path, opts: IdentityOptions, embedder: Any, n_max: int) -> list[np.ndarray]:
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tracker = FaceTracker.from_options(TrackerOptions(threads=opts.threads))
    out: list[tuple[float, np.ndarray]] = []
    next_t = -np.inf
    for fr in open_video(path):
        o = tracker.process(fr.image, fr.t, fr.index)
        if fr.t < next_t or not good_sample(o, opts):
            continue
        if o.pose is not None and abs(o.pose.yaw) > opts.enroll_max_yaw:
            continue
        next_t = fr.t + opts.sample_interval_s
        out.append((fr.t, embedder.embed_face(fr.image, o.landmarks)))
    if len(out) > n_max:
        idx = np.linspace(0, len(out) - 1, n_max).round().astype(int)
        out = [out[i] for i in idx]
    return [e for _, e in out]


def add_enroll_parser(sub: Any) -> None:
    """``liveness enroll SOURCE... --out person.json``: store a reference identity from photos
    and/or a first meeting's recording, for ``liveness review --reference person.json``."""
    e = sub.add_parser(
        "enroll",
        help="store a reference identity (photos or a first meeting's video) for later reviews",
    )
    e.add_argument("sources", nargs="+", help="photos and/or video files of the one person")
    e.add_argument("--out", "-o", required=True, metavar="JSON", help="enrolment file to write")
    e.add_argument("--max-per-video", type=int, default=20, help="samples kept per video")
    e.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model")
    e.set_defaults(func=_cmd_enroll)


def _cmd_enroll(args: Any) -> int:
    import sys

    for s in args.sources:
        if not Path(s).is_file():
            raise InputError(f"{s}: no such file")
    enr = enroll(args.sources, options=IdentityOptions(threads=args.threads),
                 max_per_video=args.max_per_video)
    enr.save(args.out)
    print(f"enrolled {len(enr.embeddings)} face sample(s) from {enr.source} -> {args.out}",
          file=sys.stderr)
    return 0
