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

``IdentityAnalyser`` computes all three from one set of samples (its :meth:`~IdentityAnalyser.signals`),
so the embedding is computed once per sampled frame. The stored reference,
:class:`~liveness.signals.enrollment.Enrollment`, lives in ``enrollment.py``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from liveness.core.analyser import FrameContext, ScoreSeries, runs_above
from liveness.core.errors import ConfigError
from liveness.core.mathx import logistic
from liveness.core.types import FaceObservation, Score, Signal

__all__ = [
    "IdentityAnalyser",
    "IdentityOptions",
    "IdentitySample",
    "good_sample",
    "replay_signals",
    "robust_centroid",
]

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


#: embeddings a live session keeps of its samples (spread evenly over the call): an hour-long
#: call keeps 128 kB of them, not 4 MB
LIVE_EMBEDDINGS = 256


def _summarise(series: ScoreSeries, details: Sequence[tuple[str, float]], max_gap: float) -> Signal:
    """``series.summary`` with segments that bridge the gaps between samples and carry a reason."""
    sig = series.summary(details)
    if sig.value is None:
        return sig
    reason = _REASONS[series.name]
    segs = runs_above(series.times, series.smoothed(), series.flag, reason, max_gap)
    return replace(sig, segments=series.with_folded(segs, reason, max_gap))


class IdentityAnalyser:
    """Signal ``identity_change``; :meth:`analysers` adds ``identity_instability`` and (with
    references) ``reference_mismatch``. Pure: the embedder is passed in (or created lazily from
    the registry) and nothing is read or written.

    Memory: the samples' times, yaws and distances are kept as flat arrays (40 B a sample). In a
    ``video`` session every sample keeps its embedding (:attr:`samples`, read for a review's
    gallery embedding); in a ``live`` one (``FrameContext.mode``) at most
    :data:`LIVE_EMBEDDINGS`, every k-th sample's, k doubling as the call goes on. The signals
    never read stored embeddings (the centroid is a running sum), so they are the same in both."""

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
        self._pending: list[tuple[float, float, np.ndarray]] = []
        self._enrol_pool: list[np.ndarray] = []
        self._enrol: np.ndarray | None = None
        self._n_scored = 0
        self._sum = np.zeros(128, np.float64)
        # the samples, flat: t, yaw, d_enrol, d_centroid, d_reference (NaN for None)
        self._cols = tuple(array("d") for _ in range(5))
        self._emb = np.empty((16, 128), np.float32)  # the kept embeddings, in sample order
        self._emb_of = array("q")  # the sample index of each kept embedding
        self._stride = 1  # live: every stride-th sample keeps its embedding
        self._live = False
        self.change = ScoreSeries("identity_change", quantile=0.9, smooth_s=o.smooth_s, flag=0.5, min_n=3)
        self.instability = ScoreSeries(
            "identity_instability", quantile=0.9, smooth_s=o.smooth_s, flag=0.5, min_n=3
        )
        self.mismatch = ScoreSeries("reference_mismatch", quantile=0.5, smooth_s=o.smooth_s, flag=0.5, min_n=2)

    @property
    def enrolment(self) -> np.ndarray | None:
        return None if self._enrol is None else self._enrol.copy()

    @property
    def n_samples(self) -> int:
        """Samples scored so far (each embedded once)."""
        return len(self._cols[0])

    @property
    def samples(self) -> list[IdentitySample]:
        """The scored samples that kept their embedding, in order: all of them in a ``video``
        session, at most :data:`LIVE_EMBEDDINGS` spread over a ``live`` one."""
        t, yaw, de, dc, dr = self._cols
        opt = lambda v: None if v != v else v  # noqa: E731 - NaN stands for None
        return [IdentitySample(t[i], yaw[i], self._emb[k].copy(), opt(de[i]), opt(dc[i]), opt(dr[i]))
                for k, i in enumerate(self._emb_of)]

    def _keep(self, i: int, emb: np.ndarray) -> None:
        """Store sample ``i``'s embedding when it is kept (see the class)."""
        if self._live and i % self._stride:
            return
        k = len(self._emb_of)
        if self._live and k >= LIVE_EMBEDDINGS:  # full: keep every other, twice the stride
            keep = [j for j in range(k) if self._emb_of[j] % (2 * self._stride) == 0]
            self._emb[: len(keep)] = self._emb[keep]
            self._emb_of = array("q", (self._emb_of[j] for j in keep))
            self._stride *= 2
            if i % self._stride:
                return
            k = len(keep)
        if k == len(self._emb):
            grown = np.empty((2 * k, 128), np.float32)
            grown[:k] = self._emb
            self._emb = grown
        self._emb[k] = emb
        self._emb_of.append(i)

    def _embedder_(self) -> Any:
        if self._embedder is None:
            from liveness.signals.embedding import FaceEmbedder

            self._embedder = FaceEmbedder(self.options.threads)
        return self._embedder

    # -- feeding -----------------------------------------------------------------------
    def _observe(self, obs: FaceObservation) -> dict[str, Score | None]:
        """Embed and score ``obs`` when a sample is due and the face is good enough."""
        if not self.wants_sample(obs.t) or obs.image is None or not good_sample(obs, self.options):
            return {}
        emb = self._embedder_().embed_face(obs.image, obs.landmarks)
        yaw = float(obs.pose.yaw) if obs.pose is not None else 0.0
        return self.add_sample(obs.t, yaw, emb)

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
        self._n_scored += 1
        self._sum += emb
        centroid = (self._sum / self._n_scored).astype(np.float32)
        d_enrol = float(np.linalg.norm(emb - self._enrol))
        d_cent = float(np.linalg.norm(emb - centroid))
        d_ref = None
        if self.references is not None:
            d_ref = float(np.linalg.norm(self.references - emb, axis=1).min())
        self._keep(self.n_samples, emb)
        for col, v in zip(self._cols, (t, yaw, d_enrol, d_cent, np.nan if d_ref is None else d_ref), strict=True):
            col.append(v)
        # refine the enrolment with samples that clearly agree with it
        if (d_enrol < o.enroll_update and abs(yaw) <= o.enroll_max_yaw
                and len(self._enrol_pool) < o.enroll_max):
            self._enrol_pool.append(emb)
            self._enrol = robust_centroid(np.stack(self._enrol_pool), o.threshold)
        out: dict[str, Score | None] = {}
        frontal = abs(yaw) <= o.change_max_yaw
        if frontal:
            s = Score("identity_change", t, logistic((d_enrol - o.threshold) / o.scale))
            self.change.add(s)
            out["identity_change"] = s
        expected = o.instability_base + o.instability_per_deg * abs(yaw)
        s = Score("identity_instability", t, logistic((d_cent - expected) / o.scale),
                  weight=1.0 + abs(yaw) / 30.0)
        self.instability.add(s)
        out["identity_instability"] = s
        if d_ref is not None and frontal:
            s = Score("reference_mismatch", t, logistic((d_ref - o.threshold) / o.scale))
            self.mismatch.add(s)
            out["reference_mismatch"] = s
        return out

    # -- analyser protocol ---------------------------------------------------------------
    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        """The scores of this frame's sample (none when the frame is not sampled)."""
        self._live = ctx.mode == "live"
        return tuple(s for s in self._observe(obs).values() if s is not None)

    def signals(self) -> dict[str, Signal]:
        """``identity_change``, ``identity_instability`` and, with references,
        ``reference_mismatch``: one set of samples, embedded once per sampled frame."""
        out = {self.name: self.summary(), "identity_instability": self._summary_of("identity_instability")}
        if self.references is not None:
            out["reference_mismatch"] = self._summary_of("reference_mismatch")
        return out

    def summary(self) -> Signal:
        d = [("samples", float(self.n_samples))]
        dist = np.array(self._cols[2], np.float64)
        dist = dist[~np.isnan(dist)]
        if len(dist):
            d += [("d_enrol_median", float(np.median(dist))), ("d_enrol_max", float(np.max(dist)))]
        return _summarise(self.change, d, self._gap())

    def _gap(self) -> float:
        return 2.5 * max(self.options.sample_interval_s, 0.2)

    def _summary_of(self, name: str) -> Signal:
        if name == "identity_instability":
            yaw = np.abs(np.array(self._cols[1], np.float64))
            dc = np.array(self._cols[3], np.float64)
            det: list[tuple[str, float]] = []
            if len(yaw) >= 3:
                det.append(("abs_yaw_max", float(yaw.max())))
                if np.ptp(yaw) > 5:
                    det.append(("slope_per_deg", float(np.polyfit(yaw, dc, 1)[0])))
            return _summarise(self.instability, det, self._gap())
        dr = np.array(self._cols[4], np.float64)
        dr = dr[~np.isnan(dr)]
        det = [("d_reference_median", float(np.median(dr)))] if len(dr) else []
        return _summarise(self.mismatch, det, self._gap())


def replay_signals(d: dict[str, np.ndarray], options: IdentityOptions | None = None) -> dict[str, float | None]:
    """Clip values of the identity signals from cached samples (arrays ``t``, ``yaw``, ``good``,
    ``emb``), as :class:`IdentityAnalyser` would give them live."""
    a = IdentityAnalyser(options, embedder=False)
    for t, yaw, good, e in zip(d["t"], d["yaw"], d["good"], d["emb"], strict=True):
        if good and a.wants_sample(float(t)):
            a.add_sample(float(t), float(yaw) if np.isfinite(yaw) else 0.0, e)
    sig = a.signals()
    return {"identity_change": sig["identity_change"].value,
            "identity_instability": sig["identity_instability"].value}


