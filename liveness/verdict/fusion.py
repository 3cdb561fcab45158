"""Fusion: per-signal clip scores -> one calibrated risk, a verdict label and its reasons.

The risk is a logistic model over the clip-level signal values (each 0..1, higher = more likely
not genuine). Its coefficients live in ``liveness/_fusion_params.json``, written by
``models/train/fit_fusion.py`` from a ``liveness eval --json`` file (see that script for the
procedure: non-negative logistic regression on dev clips, clip-grouped cross-validation, operating
thresholds chosen on out-of-fold risks for a low false-alarm rate on real people).

Rules the model does not learn from dev data are kept beside it in the same file: challenge results
(``challenge`` = fraction of challenges failed, ``challenge_breakdown`` = how much the other signals
broke down during the challenges) add to the risk logit with fixed, documented weights. Every
contribution is non-decreasing in its signal, so the risk is monotonic in every signal.

Labels:

- ``inconclusive``: too little usable face (no face, too small, too dark/bright, blurred, cut off
  by the frame edge) — from the ``quality`` signal (unusable fraction) or, without it, from the
  observations' :class:`~liveness.FaceQuality`; also when no evidence signal has a value.
- ``fake``: risk >= ``thresholds["fake"]``; ``suspicious``: risk >= ``thresholds["suspicious"]``;
- below both: ``genuine`` only when an active check backs it — a passed challenge sequence (at
  least ``min_challenges`` prompts, all passed) or a match with a reference photo or enrolment
  (``reference_mismatch`` below ``reference_match``); otherwise ``no_signs``: the passive checks
  found nothing, which is not a clearance (they miss most whole-clip swaps).

``Verdict.assurance`` names the kinds of check the label rests on (``passive``, ``challenges``,
``reference``): for an alarm, those whose signals drove the risk up; otherwise the passive checks
when any was measured, plus each active check that passed. Inconclusive verdicts rest on none.

A missing signal (``None`` value: model absent, too few frames) contributes nothing: it is
treated as looking like a typical genuine clip (the model's centre is the mean over dev reals).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.types import FaceObservation, FaceQuality, Segment, Signal, Verdict, VerdictLabel

__all__ = [
    "Contribution",
    "Fusion",
    "FusionOptions",
    "FusionParams",
    "QualityAssessment",
    "confusion_table",
    "format_confusion_table",
    "load_params",
    "observations_from_review",
    "signals_from_review",
    "verdict_from_review",
]

PARAMS_SCHEMA = "liveness.fusion/1"
_EPS = 0.005  # clip before a logit transform


# ---------------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A fixed contribution ``weight * (value - center)`` to the risk logit (``weight`` >= 0)."""

    weight: float
    center: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class FusionParams:
    """The fitted (or default) fusion model; see the module docstring."""

    features: tuple[str, ...]
    transform: str  # "identity" or "logit"
    center: np.ndarray  # (F,) in transformed units (mean over dev reals)
    scale: np.ndarray  # (F,) > 0
    coef: np.ndarray  # (F,) >= 0
    intercept: float
    thresholds: Mapping[str, float]  # {"suspicious": t1, "fake": t2}, t1 <= t2
    rules: Mapping[str, Rule] = field(default_factory=dict)
    unfitted_weight: float = 0.0  # weight on the mean of signals the model does not know
    unfitted_center: float = 0.5
    exclude: tuple[str, ...] = ("quality", "verdict")
    fitted: bool = False
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = len(self.features)
        for nm in ("center", "scale", "coef"):
            a = getattr(self, nm)
            if np.shape(a) != (f,):
                raise ConfigError(f"fusion params: {nm} must have {f} values")
        if np.any(np.asarray(self.coef) < 0):
            raise ConfigError("fusion params: coefficients must be >= 0 (risk monotonic in each signal)")
        if np.any(np.asarray(self.scale) <= 0):
            raise ConfigError("fusion params: scales must be > 0")
        if self.transform not in ("identity", "logit"):
            raise ConfigError(f"fusion params: unknown transform {self.transform!r}")
        ts, tf = self.thresholds.get("suspicious"), self.thresholds.get("fake")
        if ts is None or tf is None or not (0.0 <= ts <= tf <= 1.0):
            raise ConfigError("fusion params: need thresholds 0 <= suspicious <= fake <= 1")
        if any(r.weight < 0 for r in self.rules.values()) or self.unfitted_weight < 0:
            raise ConfigError("fusion params: rule weights must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionParams:
        if d.get("schema") != PARAMS_SCHEMA:
            raise ConfigError(f"fusion params: schema {d.get('schema')!r}, expected {PARAMS_SCHEMA!r}")
        try:
            return cls(
                features=tuple(d["features"]),
                transform=d.get("transform", "identity"),
                center=np.asarray(d["center"], np.float64),
                scale=np.asarray(d["scale"], np.float64),
                coef=np.asarray(d["coef"], np.float64),
                intercept=float(d["intercept"]),
                thresholds={k: float(v) for k, v in d["thresholds"].items()},
                rules={k: Rule(float(r["weight"]), float(r.get("center", 0.0)), str(r.get("reason", "")))
                       for k, r in d.get("rules", {}).items()},
                unfitted_weight=float(d.get("unfitted_weight", 0.0)),
                unfitted_center=float(d.get("unfitted_center", 0.5)),
                exclude=tuple(d.get("exclude", ("quality", "verdict"))),
                fitted=bool(d.get("fitted", False)),
                provenance=dict(d.get("provenance", {})),
                metrics=dict(d.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"fusion params: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PARAMS_SCHEMA,
            "fitted": self.fitted,
            "features": list(self.features),
            "transform": self.transform,
            "center": [float(x) for x in self.center],
            "scale": [float(x) for x in self.scale],
            "coef": [float(x) for x in self.coef],
            "intercept": float(self.intercept),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "rules": {k: {"weight": r.weight, "center": r.center, "reason": r.reason}
                      for k, r in self.rules.items()},
            "unfitted_weight": self.unfitted_weight,
            "unfitted_center": self.unfitted_center,
            "exclude": list(self.exclude),
            "metrics": dict(self.metrics),
            "provenance": dict(self.provenance),
        }

    def transform_values(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.transform == "logit":
            x = np.clip(x, _EPS, 1.0 - _EPS)
            return np.log(x / (1.0 - x))
        return x


def load_params(path: str | Path | None = None) -> FusionParams:
    """The fusion parameters at ``path``, or the packaged ``_fusion_params.json``."""
    try:
        if path is None:
            text = resources.files("liveness").joinpath("_fusion_params.json").read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        d = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read fusion params {path or '_fusion_params.json'}: {exc}") from exc
    return FusionParams.from_dict(d)


# ---------------------------------------------------------------------------------------------
# options, quality
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FusionOptions:
    """``params``: path of a fusion params JSON (None = the packaged one). Quality gates decide
    when a clip is ``inconclusive``: a frame is usable when a face was found with
    ``size_px >= min_face_px``, ``min_brightness <= brightness <= max_brightness``,
    ``sharpness >= min_sharpness`` and ``inside >= min_inside``; the clip needs a usable
    fraction >= ``min_usable_fraction`` and >= ``min_usable_frames`` usable frames."""

    params: str | None = None
    quality_signal: str = "quality"
    min_usable_fraction: float = 0.3
    min_usable_frames: int = 10
    min_face_px: float = 40.0
    min_brightness: float = 30.0
    max_brightness: float = 235.0
    min_sharpness: float = 4.0
    min_inside: float = 0.75
    max_reasons: int = 4
    min_contribution: float = 0.25  # logit units for a signal to count as driving the risk
    min_challenges: int = 3  # prompts answered, all passed, for challenges to back "genuine"
    reference_match: float = 0.5  # reference_mismatch below this = the face matches the reference

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_usable_fraction <= 1.0:
            raise ConfigError("min_usable_fraction must be in [0, 1]")
        if self.min_usable_frames < 0 or self.max_reasons < 1 or self.min_challenges < 1:
            raise ConfigError("min_usable_frames must be >= 0, max_reasons and min_challenges >= 1")
        if self.min_brightness > self.max_brightness:
            raise ConfigError("min_brightness must be <= max_brightness")


@dataclass(frozen=True)
class QualityAssessment:
    """How much of the footage shows a usable face. ``usable_fraction`` None = unknown."""

    frames: int
    usable: int
    usable_fraction: float | None
    problems: tuple[tuple[str, float], ...] = ()  # (problem, fraction of frames)

    def to_dict(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "usable": self.usable,
            "usable_fraction": None if self.usable_fraction is None else round(self.usable_fraction, 4),
            "problems": {k: round(v, 4) for k, v in self.problems},
        }


def assess_quality(observations: Sequence[FaceObservation], opt: FusionOptions) -> QualityAssessment:
    """Usable-face fraction from the observations' face flag and :class:`FaceQuality`."""
    n = len(observations)
    if n == 0:
        return QualityAssessment(0, 0, None)
    face = np.zeros(n, bool)
    q = np.full((n, 4), np.nan)  # size, brightness, sharpness, inside
    for i, o in enumerate(observations):  # per observation, not per pixel
        face[i] = bool(o.face)
        if o.face and o.quality is not None:
            qq = o.quality
            q[i] = (qq.size_px, qq.brightness, qq.sharpness, qq.inside)
    known = face & np.isfinite(q).all(axis=1)
    with np.errstate(invalid="ignore"):
        small = known & (q[:, 0] < opt.min_face_px)
        dark = known & (q[:, 1] < opt.min_brightness)
        bright = known & (q[:, 1] > opt.max_brightness)
        blur = known & (q[:, 2] < opt.min_sharpness)
        cut = known & (q[:, 3] < opt.min_inside)
    # a face without a quality record counts as usable (tracker gave no quality)
    usable = face & ~(small | dark | bright | blur | cut)
    problems = [
        ("no face", float((~face).mean())),
        ("face too small", float(small.mean())),
        ("too dark", float(dark.mean())),
        ("over-exposed", float(bright.mean())),
        ("blurred", float(blur.mean())),
        ("face cut off by the frame edge", float(cut.mean())),
    ]
    return QualityAssessment(
        n, int(usable.sum()), float(usable.mean()), tuple((k, v) for k, v in problems if v > 0)
    )


# ---------------------------------------------------------------------------------------------
# fusion
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Contribution:
    """One signal's share of the risk logit (relative to a typical genuine clip)."""

    signal: str
    value: float
    logit: float
    kind: str  # "model", "rule" or "unfitted"

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "value": round(self.value, 4), "logit": round(self.logit, 4),
                "kind": self.kind}


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# signals of the active checks -> the assurance they give; every other evidence signal is passive
_ACTIVE = {"challenge": "challenges", "challenge_breakdown": "challenges", "reference_mismatch": "reference"}
_ASSURANCE_ORDER = ("passive", "challenges", "reference")


def _ordered(kinds: Iterable[str]) -> tuple[Any, ...]:
    got = set(kinds)
    return tuple(k for k in _ASSURANCE_ORDER if k in got)


def _fmt_range(s: Segment) -> str:
    return f"{s.start:.1f}s" if abs(s.end - s.start) < 0.05 else f"{s.start:.1f}-{s.end:.1f}s"


class Fusion:
    """Implements the :class:`~liveness.core.session.Fusion` protocol."""

    def __init__(self, params: FusionParams | None = None, options: FusionOptions | None = None) -> None:
        self.options = options or FusionOptions()
        self.params = params if params is not None else load_params(self.options.params)

    @classmethod
    def from_options(cls, options: FusionOptions | None = None) -> Fusion:
        options = options or FusionOptions()
        return cls(None, options)

    @property
    def thresholds(self) -> dict[str, float]:
        return dict(self.params.thresholds)

    def describe(self) -> dict[str, Any]:
        """Provenance of the fusion model for review documents and reports."""
        p = self.params
        prov = dict(p.provenance)
        return {
            "fitted": p.fitted,
            "features": list(p.features),
            "thresholds": {k: round(float(v), 6) for k, v in p.thresholds.items()},
            "rules": sorted(p.rules),
            "eval_sha256": prov.get("eval_sha256"),
            "fitted_on": prov.get("date"),
            "command": prov.get("command"),
        }

    # -- clip values -> risk ------------------------------------------------------------------
    def contributions(self, values: Mapping[str, float | None]) -> tuple[float | None, list[Contribution]]:
        """Risk logit and per-signal contributions from clip-level values (None = missing).
        The logit is None when no evidence signal has a value."""
        p = self.params
        contrib: list[Contribution] = []
        z = p.intercept
        any_value = False
        if p.features:
            x = np.array([_num(values.get(f)) for f in p.features], np.float64)
            have = np.isfinite(x)
            any_value |= bool(have.any())
            tx = p.transform_values(np.where(have, x, 0.5))
            c = np.where(have, p.coef * (tx - p.center) / p.scale, 0.0)
            z += float(c.sum())
            contrib += [Contribution(f, float(x[i]), float(c[i]), "model")
                        for i, f in enumerate(p.features) if have[i]]
        for name, rule in p.rules.items():
            if name in p.features:
                continue
            v = _num(values.get(name))
            if math.isfinite(v):
                any_value = True
                c = rule.weight * (v - rule.center)
                z += c
                contrib.append(Contribution(name, v, c, "rule"))
        if p.unfitted_weight > 0:
            known = set(p.features) | set(p.rules) | set(p.exclude) | {self.options.quality_signal}
            rest = {k: _num(v) for k, v in values.items() if k not in known}
            rest = {k: v for k, v in rest.items() if math.isfinite(v)}
            if rest:
                any_value = True
                w = p.unfitted_weight / len(rest)
                for k, v in rest.items():
                    c = w * (v - p.unfitted_center)
                    z += c
                    contrib.append(Contribution(k, v, c, "unfitted"))
        if not any_value:
            return None, contrib
        return z, contrib

    def risk(self, values: Mapping[str, float | None]) -> float | None:
        """Calibrated risk 0..1 from clip-level signal values (None = no evidence)."""
        z, _ = self.contributions(values)
        return None if z is None else _sigmoid(z)

    def label(self, risk: float | None, backed: bool = False) -> VerdictLabel:
        """The label of ``risk``; below the alarm thresholds ``genuine`` only when ``backed`` by
        an active check (see the module docstring), else ``no_signs``."""
        if risk is None:
            return "inconclusive"
        if risk >= self.params.thresholds["fake"]:
            return "fake"
        if risk >= self.params.thresholds["suspicious"]:
            return "suspicious"
        return "genuine" if backed else "no_signs"

    def _active_checks(self, signals: Mapping[str, Signal | None]) -> tuple[list[str], list[str]]:
        """(active checks that passed, reasons saying so or why they cannot back "genuine")."""
        opt = self.options
        passed: list[str] = []
        notes: list[str] = []
        ch = signals.get("challenge")
        if ch is not None and ch.value is not None and ch.n > 0:
            if ch.value <= 0.0 and ch.n >= opt.min_challenges:
                passed.append("challenges")
                notes.append(f"backed by challenges: {ch.n} of {ch.n} passed")
            elif ch.value <= 0.0:
                notes.append(f"{ch.n} challenge{'s' if ch.n != 1 else ''} passed; a sequence of at least "
                             f"{opt.min_challenges} is needed to back a genuine label")
            else:
                failed = int(round(ch.value * ch.n))
                notes.append(f"{failed} of {ch.n} challenges failed: not enough for an alarm, and no "
                             "backing for a genuine label")
        ref = signals.get("reference_mismatch")
        if ref is not None and ref.value is not None:
            if ref.value < opt.reference_match:
                passed.append("reference")
                notes.append(f"backed by the reference: the face matches it (reference_mismatch {ref.value:.2f})")
            else:
                notes.append(f"the face does not clearly match the reference (reference_mismatch {ref.value:.2f})")
        return passed, notes

    # -- the protocol ---------------------------------------------------------------------------
    def quality(self, signals: Mapping[str, Signal | None], observations: Sequence[FaceObservation]) -> QualityAssessment:
        qs = signals.get(self.options.quality_signal)
        if qs is not None and qs.value is not None and math.isfinite(qs.value):
            frames = len(observations) or qs.n
            frac = float(np.clip(1.0 - qs.value, 0.0, 1.0))
            problems = tuple(
                (k.removesuffix("_fraction").replace("_", " "), float(v)) for k, v in qs.details
                if k.endswith("_fraction") and k not in ("usable_fraction", "several_faces_fraction") and v > 0
            )
            return QualityAssessment(frames, int(round(frac * frames)), frac, problems)
        return assess_quality(observations, self.options)

    def fuse(self, signals: Mapping[str, Signal | None], observations: Sequence[FaceObservation]) -> Verdict:
        opt = self.options
        qa = self.quality(signals, observations)
        values = {k: (s.value if s is not None else None) for k, s in signals.items()
                  if k != opt.quality_signal}
        z, contrib = self.contributions(values)
        risk = None if z is None else _sigmoid(z)

        drivers = sorted((c for c in contrib if c.logit >= opt.min_contribution), key=lambda c: -c.logit)
        drivers = drivers[: opt.max_reasons]
        reasons: list[str] = []
        segments: list[Segment] = []
        for c in drivers:
            sig = signals.get(c.signal)
            segs = tuple(sig.segments) if sig is not None else ()
            where = ""
            if segs:
                top = sorted(segs, key=lambda s: -s.value)[:3]
                where = ", flagged " + ", ".join(_fmt_range(s) for s in sorted(top, key=lambda s: s.start))
                segments += [Segment(s.start, s.end, s.value, f"{c.signal}: {s.reason}" if s.reason else c.signal)
                             for s in segs]
            reasons.append(f"{c.signal} {c.value:.2f} (+{c.logit:.2f} logit){where}")
        segments.sort(key=lambda s: (s.start, s.end))

        missing = sorted(k for k, s in signals.items()
                         if k != opt.quality_signal and (s is None or s.value is None))
        low_quality = qa.usable_fraction is not None and (
            qa.usable_fraction < opt.min_usable_fraction or qa.usable < opt.min_usable_frames
        )
        if low_quality:
            probs = ", ".join(f"{k} {v:.0%}" for k, v in sorted(qa.problems, key=lambda kv: -kv[1])[:3])
            head = (f"too little usable face: {qa.usable_fraction:.0%} of {qa.frames} frames usable"
                    + (f" ({probs})" if probs else ""))
            return Verdict("inconclusive", risk, (head, *reasons), tuple(segments))
        if risk is None:
            msg = "no evidence signal has a value" + (f" (missing: {', '.join(missing)})" if missing else "")
            return Verdict("inconclusive", None, (msg,), ())
        passed, notes = self._active_checks(signals)
        label = self.label(risk, backed=bool(passed))
        if label in ("fake", "suspicious"):
            up = [c for c in drivers if c.logit > 0] or [c for c in contrib if c.logit > 0]
            assurance = _ordered(_ACTIVE.get(c.signal, "passive") for c in up) or ("passive",)
        else:
            measured = any(c.signal not in _ACTIVE for c in contrib)
            assurance = _ordered((["passive"] if measured else []) + passed)
            reasons[:0] = notes
        if not drivers:
            reasons.append("no signal stands out from genuine footage")
        if missing:
            reasons.append("not measured: " + ", ".join(missing))
        return Verdict(label, risk, tuple(reasons), tuple(segments), assurance)


# ---------------------------------------------------------------------------------------------
# re-fusing a stored review document (eval cache, reports)
# ---------------------------------------------------------------------------------------------
def signals_from_review(doc: Mapping[str, Any]) -> dict[str, Signal]:
    """The :class:`Signal` objects of a ``liveness.review/1`` document."""
    out: dict[str, Signal] = {}
    for name, d in (doc.get("signals") or {}).items():
        if not isinstance(d, Mapping):
            continue
        v = _num(d.get("value"))
        segs = tuple(
            Segment(float(s["start"]), float(s["end"]), _num0(s.get("value")), str(s.get("reason", "")))
            for s in d.get("segments") or () if s.get("start") is not None and s.get("end") is not None
        )
        details = tuple((str(k), float(x)) for k, x in (d.get("details") or {}).items()
                        if isinstance(x, (int, float)))
        out[name] = Signal(name, v if math.isfinite(v) else None, int(d.get("n") or 0), segs, details)
    return out


def observations_from_review(doc: Mapping[str, Any]) -> list[FaceObservation]:
    """Light :class:`FaceObservation` records (face flag, box, quality) from a review timeline."""
    src = doc.get("source") or {}  # boxes are in the analysed frames' pixels
    w = int(src.get("analysed_width") or src.get("width") or 0)
    h = int(src.get("analysed_height") or src.get("height") or 0)
    obs = []
    for i, r in enumerate(doc.get("timeline") or ()):
        q = r.get("face_quality")
        quality = None
        if r.get("face") and isinstance(q, Mapping):
            vals = [_num(q.get(k)) for k in ("size_px", "sharpness", "brightness", "inside")]
            if all(math.isfinite(x) for x in vals):
                quality = FaceQuality(*vals)
        box = r.get("box")
        obs.append(FaceObservation(
            t=float(r.get("t", i)), frame_index=i, width=w, height=h, face=bool(r.get("face")),
            faces=int(r.get("faces") or 0),
            box=np.asarray(box, np.float32) if r.get("face") and box is not None else None,
            quality=quality,
        ))
    return obs


def verdict_from_review(doc: Mapping[str, Any], fusion: Fusion | None = None) -> Verdict:
    """Fuse a stored review document again (e.g. after a refit of the fusion parameters)."""
    fusion = fusion or Fusion()
    return fusion.fuse(signals_from_review(doc), observations_from_review(doc))


def _num0(v: Any) -> float:
    x = _num(v)
    return x if math.isfinite(x) else 0.0


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


# ---------------------------------------------------------------------------------------------
# confusion table (for ``liveness eval``)
# ---------------------------------------------------------------------------------------------
_LABELS = ("genuine", "no_signs", "suspicious", "fake", "inconclusive")


def _clip_label(clip: Mapping[str, Any], thresholds: Mapping[str, float] | None) -> str:
    v = clip.get("verdict") or {}
    label = v.get("label")
    risk = _num(v.get("risk"))
    # "genuine" needs an active check behind it; a stored "genuine" without one (documents
    # from before ``assurance`` existed) counts as "no_signs"
    backed = label == "genuine" and bool(set(v.get("assurance") or ()) & {"challenges", "reference"})
    if thresholds is None:
        if label in _LABELS:
            return "no_signs" if label == "genuine" and not backed else label
        thresholds = load_params().thresholds
    if label == "inconclusive" or not math.isfinite(risk):
        return "inconclusive"
    if risk >= thresholds["fake"]:
        return "fake"
    if risk >= thresholds["suspicious"]:
        return "suspicious"
    return "genuine" if backed else "no_signs"


def confusion_table(
    clips: Iterable[Mapping[str, Any]], thresholds: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """APCER per attack kind and BPCER from eval clips (``liveness.eval/1`` rows).

    Labels come from each clip's ``verdict.label``, or — when ``thresholds``
    (``{"suspicious", "fake"}``) are given — from ``verdict.risk`` at those thresholds
    (``inconclusive`` stays; below them ``genuine`` when the clip's verdict was a backed
    ``genuine``, else ``no_signs``). An alarm is ``suspicious`` or ``fake``; ``no_signs`` is not
    flagged, like ``genuine``. Rates leave inconclusive clips out of the denominator and report
    them separately:

    - ``apcer``: attacks labelled genuine or no_signs / decided attacks (missed alarms);
    - ``apcer_fake``: attacks not labelled fake / decided attacks;
    - ``bpcer``: reals with an alarm / decided reals; ``bpcer_fake``: reals labelled fake.
    """

    def empty() -> dict[str, int]:
        return {"n": 0, **dict.fromkeys(_LABELS, 0)}

    rows: dict[str, dict[str, int]] = {}
    for c in clips:
        real = str(c.get("label", "")).lower() == "real"
        kind = "real" if real else str(c.get("attack") or "fake")
        r = rows.setdefault(kind, empty())
        r["n"] += 1
        r[_clip_label(c, thresholds)] += 1

    def rates(r: dict[str, int], real: bool) -> dict[str, Any]:
        decided = r["n"] - r["inconclusive"]
        missed = r["genuine"] + r["no_signs"]
        out: dict[str, Any] = dict(r)
        out["inconclusive_rate"] = r["inconclusive"] / r["n"] if r["n"] else None
        if real:
            out["bpcer"] = (r["suspicious"] + r["fake"]) / decided if decided else None
            out["bpcer_fake"] = r["fake"] / decided if decided else None
        else:
            out["apcer"] = missed / decided if decided else None
            out["apcer_fake"] = (missed + r["suspicious"]) / decided if decided else None
        return out

    attacks = {k: rates(v, False) for k, v in sorted(rows.items()) if k != "real"}
    tot = empty()
    for k, v in rows.items():
        if k != "real":
            for f in tot:
                tot[f] += v[f]
    return {
        "thresholds": dict(thresholds) if thresholds is not None else None,
        "real": rates(rows.get("real", empty()), True),
        "attacks": attacks,
        "all_attacks": rates(tot, False),
    }


def format_confusion_table(table: Mapping[str, Any]) -> str:
    """Plain-text rendering of :func:`confusion_table`: one row per class, columns aligned
    whatever the length of the attack names."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    head = ["class", "n", "genuine", "no signs", "suspic.", "fake", "inconc.", "error (alarm)", "error (fake)"]
    body: list[list[str]] = []

    def add(name: str, r: Mapping[str, Any], e1: str, e2: str) -> None:
        body.append([name, *(str(r.get(k, 0)) for k in ("n", *_LABELS)), pct(r.get(e1)), pct(r.get(e2))])

    add("real (BPCER)", table["real"], "bpcer", "bpcer_fake")
    for k, a in [*table["attacks"].items(), ("all attacks", table["all_attacks"])]:
        add(f"{k} (APCER)", a, "apcer", "apcer_fake")
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = []
    th = table.get("thresholds")
    if th:
        lines.append(f"operating thresholds: suspicious >= {th['suspicious']:.3f}, fake >= {th['fake']:.3f}")
    for row in [head, *body]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
