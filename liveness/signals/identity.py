"""Identity continuity: is it the same person all along, and the person we expect?

A face swap keeps the real head and paints another identity on it. Three signals follow, from a
128-D face embedding (dlib's ResNet, ``_embedding.py``) of the tracked face sampled about every
0.5 s (small, blurred, cut-off or profile faces are skipped):

* ``identity_change`` — another person takes over within the session. The first good frontal
  samples make a robust enrolment (median of the samples that agree with each other); every
  later sample is scored by its distance to it (threshold 0.55, measured; dlib's own is 0.6).
* ``identity_instability`` — swaps lose the target identity when the head turns: the distance of
  each sample to the session's own centroid, beyond what a genuine face shows at that yaw
  (``expected = instability_base + instability_per_deg * |yaw|``, measured on the dev reals).
* ``reference_mismatch`` — only with reference embeddings (a photo, or an enrolment stored from
  an earlier meeting): distance of frontal samples to the nearest reference.

``IdentityAnalyser`` computes all three; ``identity_change`` is its own signal and the other two
are exposed as small analysers (:meth:`IdentityAnalyser.analysers`) that share its samples, so the
embedding is computed once per sampled frame. :class:`Enrollment` is the stored reference
(JSON, versioned, with the embedding model's sha256).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.analyser import Analyser, ScoreSeries, runs_above
from liveness.core.errors import ConfigError, InputError
from liveness.core.types import FaceObservation, Score, Signal

__all__ = [
    "ENROLLMENT_SCHEMA",
    "Enrollment",
    "IdentityAnalyser",
    "IdentityOptions",
    "IdentitySample",
    "add_enroll_parser",
    "enroll",
    "good_sample",
    "load_references",
    "replay_signals",
    "robust_centroid",
]

ENROLLMENT_SCHEMA = "liveness.enrollment/1"
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


@dataclass(frozen=True)
class IdentityOptions:
    """``threshold``: embedding distance above which two faces are different people. dlib's own
    threshold is 0.6; on the dev real clips 0.55 keeps every same-person sample inside (100 %)
    and separates 99.3 % of different-person samples, against 98.5 % at 0.6
    (``benchmarks/README_identity.md``).
    ``sample_interval_s``: time between embedded samples (``enroll_interval_s`` until the
    enrolment is made, so that short clips enrol too). Quality gate: ``min_face_px`` (sqrt of
    the face box area), ``min_sharpness`` (Laplacian variance), ``min_inside`` (fraction of the
    box inside the frame), ``max_abs_yaw``. Enrolment: the first ``enroll_samples`` good samples
    with ``|yaw| <= enroll_max_yaw``; later samples closer than ``enroll_update`` keep refining it
    up to ``enroll_max`` samples. ``change_max_yaw``: only samples up to this |yaw| are scored for
    identity change and reference mismatch (genuine embeddings drift at profile; that drift is
    ``identity_instability``'s business). ``scale``: width of the logistic that turns a distance
    margin into a 0..1 score."""

    threshold: float = 0.55
    sample_interval_s: float = 0.5
    enroll_interval_s: float = 0.2
    min_face_px: float = 60.0
    min_sharpness: float = 5.0
    min_inside: float = 0.9
    max_abs_yaw: float = 60.0
    enroll_samples: int = 3
    enroll_max_yaw: float = 30.0
    enroll_update: float = 0.4
    enroll_max: int = 20
    change_max_yaw: float = 35.0
    instability_base: float = 0.35
    instability_per_deg: float = 0.004
    scale: float = 0.05
    smooth_s: float = 1.5
    threads: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.threshold < 2:
            raise ConfigError("threshold must lie in (0, 2)")
        if self.sample_interval_s < 0 or self.enroll_interval_s < 0 or self.scale <= 0 or self.smooth_s < 0:
            raise ConfigError("sample_interval_s, smooth_s must be >= 0 and scale > 0")
        if self.enroll_samples < 1 or self.enroll_max < self.enroll_samples:
            raise ConfigError("need 1 <= enroll_samples <= enroll_max")
        if self.threads < 1:
            raise ConfigError("threads must be >= 1")


@dataclass(frozen=True)
class IdentitySample:
    """One embedded face. Distances are None until an enrolment / reference exists."""

    t: float
    yaw: float
    embedding: np.ndarray  # (128,) float32
    d_enrol: float | None = None
    d_centroid: float | None = None
    d_reference: float | None = None

    def to_dict(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(float(v), 4)  # noqa: E731
        return {"t": r(self.t), "yaw": r(self.yaw), "d_enrol": r(self.d_enrol),
                "d_centroid": r(self.d_centroid), "d_reference": r(self.d_reference)}


def good_sample(obs: FaceObservation, opts: IdentityOptions) -> bool:
    """Whether the face in ``obs`` is good enough to embed (size, sharpness, inside, yaw)."""
    if not obs.face or obs.landmarks is None:
        return False
    q = obs.quality
    if q is not None:
        if q.size_px < opts.min_face_px or q.sharpness < opts.min_sharpness or q.inside < opts.min_inside:
            return False
    if obs.pose is not None and abs(obs.pose.yaw) > opts.max_abs_yaw:
        return False
    return True


def robust_centroid(emb: np.ndarray, threshold: float = 0.6) -> np.ndarray:
    """Mean of the embeddings within ``threshold / 2`` of their coordinate-wise median (all of
    them when fewer agree): one odd sample cannot move the enrolment."""
    e = np.asarray(emb, np.float32).reshape(-1, 128)
    med = np.median(e, axis=0)
    d = np.linalg.norm(e - med, axis=1)
    keep = d <= threshold / 2
    if keep.sum() < max(1, len(e) // 2):
        keep = d <= np.median(d)
    return e[keep].mean(axis=0).astype(np.float32)


_REASONS = {
    "identity_change": "another person than the one enrolled at the start",
    "identity_instability": "identity drifts more than a genuine face does at this head angle",
    "reference_mismatch": "the face does not match the reference identity",
}


def _summarise(series: ScoreSeries, details: Sequence[tuple[str, float]], max_gap: float) -> Signal:
    """``series.summary`` with segments that bridge the gaps between samples and carry a reason."""
    sig = series.summary(details)
    if sig.value is None:
        return sig
    segs = runs_above(series.times, series.smoothed(), series.flag, _REASONS[series.name], max_gap)
    return replace(sig, segments=segs)


def _logistic(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(x, -50, 50))))


class IdentityAnalyser:
    """Signal ``identity_change``; :meth:`analysers` adds ``identity_instability`` and (with
    references) ``reference_mismatch``. Pure: the embedder is passed in (or created lazily from
    the registry) and nothing is read or written."""

    name = "identity_change"

    def __init__(
        self,
        options: IdentityOptions | None = None,
        *,
        embedder: Any = None,
        references: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> None:
        self.options = options or IdentityOptions()
        self._embedder = embedder
        refs = None
        if references is not None:
            refs = np.asarray(references, np.float32).reshape(-1, 128)
            if len(refs) == 0:
                refs = None
        self.references = refs
        self.reset()

    @classmethod
    def from_options(
        cls, options: IdentityOptions, *, embedder: Any = None, references: Any = None
    ) -> IdentityAnalyser:
        return cls(options, embedder=embedder, references=references)

    # -- state -------------------------------------------------------------------------
    def reset(self) -> None:
        o = self.options
        self._last_sample_t = -np.inf
        self._last: tuple[float, IdentitySample | None] | None = None
        self._pending: list[tuple[float, float, np.ndarray]] = []
        self._enrol_pool: list[np.ndarray] = []
        self._enrol: np.ndarray | None = None
        self._all: list[np.ndarray] = []
        self._sum = np.zeros(128, np.float64)
        self.samples: list[IdentitySample] = []
        self.change = ScoreSeries("identity_change", quantile=0.9, smooth_s=o.smooth_s, flag=0.5, min_n=3)
        self.instability = ScoreSeries(
            "identity_instability", quantile=0.9, smooth_s=o.smooth_s, flag=0.5, min_n=3
        )
        self.mismatch = ScoreSeries("reference_mismatch", quantile=0.5, smooth_s=o.smooth_s, flag=0.5, min_n=2)
        self._scores: dict[str, Score | None] = {}

    @property
    def enrolment(self) -> np.ndarray | None:
        return None if self._enrol is None else self._enrol.copy()

    def _embedder_(self) -> Any:
        if self._embedder is None:
            from liveness.signals.embedding import FaceEmbedder

            self._embedder = FaceEmbedder(self.options.threads)
        return self._embedder

    # -- feeding -----------------------------------------------------------------------
    def _observe(self, obs: FaceObservation) -> dict[str, Score | None]:
        """Sample ``obs`` once (idempotent per timestamp, so the child analysers can call it too)."""
        if self._last is not None and self._last[0] == obs.t:
            return self._scores
        self._scores = {}
        self._last = (obs.t, None)
        o = self.options
        if not self.wants_sample(obs.t) or obs.image is None or not good_sample(obs, o):
            return self._scores
        emb = self._embedder_().embed_face(obs.image, obs.landmarks)
        yaw = float(obs.pose.yaw) if obs.pose is not None else 0.0
        self._scores = self.add_sample(obs.t, yaw, emb)
        return self._scores

    def wants_sample(self, t: float) -> bool:
        """Whether a good face at time ``t`` is due to be embedded."""
        o = self.options
        step = o.enroll_interval_s if self._enrol is None else o.sample_interval_s
        return t >= self._last_sample_t + step - 1e-6

    def add_sample(self, t: float, yaw: float, emb: np.ndarray) -> dict[str, Score | None]:
        """Score one embedded sample (``update`` does this for sampled frames; replays of cached
        embeddings call it directly). Returns the per-signal scores of this sample."""
        o = self.options
        self._last_sample_t = t
        emb = np.asarray(emb, np.float32).reshape(128)
        scores: dict[str, Score | None] = {}
        if self._enrol is None:
            if abs(yaw) <= o.enroll_max_yaw:
                self._enrol_pool.append(emb)
            self._pending.append((t, yaw, emb))
            if len(self._enrol_pool) >= o.enroll_samples:
                self._enrol = robust_centroid(np.stack(self._enrol_pool), o.threshold)
                pending, self._pending = self._pending, []
                for pt, py, pe in pending:  # score what waited for the enrolment
                    scores = self._score(pt, py, pe)
            return scores
        return self._score(t, yaw, emb)

    def _score(self, t: float, yaw: float, emb: np.ndarray) -> dict[str, Score | None]:
        o = self.options
        assert self._enrol is not None
        self._all.append(emb)
        self._sum += emb
        centroid = (self._sum / len(self._all)).astype(np.float32)
        d_enrol = float(np.linalg.norm(emb - self._enrol))
        d_cent = float(np.linalg.norm(emb - centroid))
        d_ref = None
        if self.references is not None:
            d_ref = float(np.linalg.norm(self.references - emb, axis=1).min())
        self.samples.append(IdentitySample(t, yaw, emb, d_enrol, d_cent, d_ref))
        # refine the enrolment with samples that clearly agree with it
        if (d_enrol < o.enroll_update and abs(yaw) <= o.enroll_max_yaw
                and len(self._enrol_pool) < o.enroll_max):
            self._enrol_pool.append(emb)
            self._enrol = robust_centroid(np.stack(self._enrol_pool), o.threshold)
        out: dict[str, Score | None] = {}
        frontal = abs(yaw) <= o.change_max_yaw
        if frontal:
            s = Score("identity_change", t, _logistic((d_enrol - o.threshold) / o.scale))
            self.change.add(s)
            out["identity_change"] = s
        expected = o.instability_base + o.instability_per_deg * abs(yaw)
        s = Score("identity_instability", t, _logistic((d_cent - expected) / o.scale),
                  weight=1.0 + abs(yaw) / 30.0)
        self.instability.add(s)
        out["identity_instability"] = s
        if d_ref is not None and frontal:
            s = Score("reference_mismatch", t, _logistic((d_ref - o.threshold) / o.scale))
            self.mismatch.add(s)
            out["reference_mismatch"] = s
        return out

    # -- analyser protocol ---------------------------------------------------------------
    def update(self, obs: FaceObservation) -> Score | None:
        return self._observe(obs).get("identity_change")

    def summary(self) -> Signal:
        d = [("samples", float(len(self.samples)))]
        dist = [s.d_enrol for s in self.samples if s.d_enrol is not None]
        if dist:
            d += [("d_enrol_median", float(np.median(dist))), ("d_enrol_max", float(np.max(dist)))]
        return _summarise(self.change, d, self._gap())

    def _gap(self) -> float:
        return 2.5 * max(self.options.sample_interval_s, 0.2)

    def analysers(self) -> list[Analyser]:
        """This analyser and the ones sharing its samples (instability, reference mismatch)."""
        out: list[Analyser] = [self, _Child(self, "identity_instability")]
        if self.references is not None:
            out.append(_Child(self, "reference_mismatch"))
        return out

    def _summary_of(self, name: str) -> Signal:
        if name == "identity_instability":
            yaw = np.array([abs(s.yaw) for s in self.samples])
            dc = np.array([s.d_centroid for s in self.samples], float)
            det: list[tuple[str, float]] = []
            if len(yaw) >= 3:
                det.append(("abs_yaw_max", float(yaw.max())))
                if np.ptp(yaw) > 5:
                    det.append(("slope_per_deg", float(np.polyfit(yaw, dc, 1)[0])))
            return _summarise(self.instability, det, self._gap())
        dr = [s.d_reference for s in self.samples if s.d_reference is not None]
        det = [("d_reference_median", float(np.median(dr)))] if dr else []
        return _summarise(self.mismatch, det, self._gap())


class _Child:
    """A signal of :class:`IdentityAnalyser` as its own analyser (shares the parent's samples)."""

    def __init__(self, parent: IdentityAnalyser, name: str) -> None:
        self.parent = parent
        self.name = name

    def update(self, obs: FaceObservation) -> Score | None:
        return self.parent._observe(obs).get(self.name)

    def summary(self) -> Signal:
        return self.parent._summary_of(self.name)

    def reset(self) -> None:
        self.parent.reset()


def replay_signals(d: dict[str, np.ndarray], options: IdentityOptions | None = None) -> dict[str, float | None]:
    """Clip values of the identity signals from cached samples (arrays ``t``, ``yaw``, ``good``,
    ``emb``), as :class:`IdentityAnalyser` would give them live."""
    a = IdentityAnalyser(options, embedder=False)
    for t, yaw, good, e in zip(d["t"], d["yaw"], d["good"], d["emb"], strict=True):
        if good and a.wants_sample(float(t)):
            a.add_sample(float(t), float(yaw) if np.isfinite(yaw) else 0.0, e)
    return {"identity_change": a.summary().value, "identity_instability": a._summary_of("identity_instability").value}


# ----------------------------------------------------------------------------------- enrolment
@dataclass(frozen=True)
class Enrollment:
    """A stored reference identity: embeddings of one person, the embedding model's sha256 (an
    enrolment made with another model cannot be compared) and when/what it was made from."""

    embeddings: np.ndarray  # (K, 128) float32
    model_sha256: str
    created: str
    source: str = ""
    schema: str = ENROLLMENT_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "model": "face_embedding",
            "model_sha256": self.model_sha256,
            "created": self.created,
            "source": self.source,
            "embeddings": [[round(float(v), 7) for v in e] for e in self.embeddings],
            **self.extra,
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Enrollment:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: cannot read the enrolment file ({exc})") from exc
        if not isinstance(d, dict) or d.get("schema") != ENROLLMENT_SCHEMA:
            raise InputError(f"{p}: not a {ENROLLMENT_SCHEMA} enrolment file")
        from liveness.core.registry import MODELS

        want = MODELS["face_embedding"].sha256 if "face_embedding" in MODELS else None
        if want is not None and d.get("model_sha256") != want:
            raise InputError(
                f"{p}: made with another embedding model ({d.get('model_sha256')}); enrol again"
            )
        try:
            emb = np.asarray(d["embeddings"], np.float32).reshape(-1, 128)
        except (KeyError, ValueError) as exc:
            raise InputError(f"{p}: malformed embeddings") from exc
        if len(emb) == 0 or not np.isfinite(emb).all():
            raise InputError(f"{p}: no usable embeddings")
        return cls(emb, str(d["model_sha256"]), str(d.get("created", "")), str(d.get("source", "")))

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, source: str = "") -> Enrollment:
        from liveness.core.registry import MODELS

        spec = MODELS.get("face_embedding")
        return cls(
            np.asarray(embeddings, np.float32).reshape(-1, 128),
            spec.sha256 if spec else "",
            _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            source,
        )


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
        if p.suffix.lower() in _IMAGE_EXT:
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


def load_references(paths: Sequence[str | Path], threads: int = 1) -> np.ndarray:
    """(K, 128) reference embeddings from enrolment files (``.json``) and photos."""
    from liveness.signals.embedding import FaceEmbedder, load_reference

    embedder = FaceEmbedder(threads)
    out: list[np.ndarray] = []
    for p in map(Path, paths):
        if p.suffix.lower() == ".json":
            out.extend(Enrollment.load(p).embeddings)
        else:
            out.append(load_reference(p, embedder, threads))
    if not out:
        raise InputError("no reference given")
    return np.stack(out).astype(np.float32)


# ----------------------------------------------------------------------------------- CLI
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
