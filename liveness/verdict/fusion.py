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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from liveness.core.errors import ConfigError
from liveness.core.mathx import logistic
from liveness.core.review import Review
from liveness.core.types import FaceObservation, Segment, Signal, Verdict, VerdictLabel
from liveness.core.usable import USABLE, UsableFace
from liveness.verdict.confusion import confusion_table, format_confusion_table
from liveness.verdict.gate import QualityAssessment, assess_quality
from liveness.verdict.params import PARAMS_SCHEMA, FusionParams, Rule, load_params

__all__ = [
    "PARAMS_SCHEMA",
    "Contribution",
    "Fusion",
    "FusionOptions",
    "FusionParams",
    "QualityAssessment",
    "Rule",
    "assess_quality",
    "confusion_table",
    "format_confusion_table",
    "load_params",
    "observations_from_review",
    "signals_from_review",
    "verdict_from_review",
]

# ---------------------------------------------------------------------------------------------
# options, quality
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FusionOptions:
    """``params``: path of a fusion params JSON (None = the packaged one). Quality gates decide
    when a clip is ``inconclusive``: a frame is usable when a face was found with
    ``size_px >= min_face_px``, ``min_brightness <= brightness <= max_brightness``,
    ``sharpness >= min_sharpness`` and ``inside >= min_inside`` (defaults: the one usable-face
    rule, :data:`liveness.core.usable.USABLE`, which the quality monitor uses too); the clip
    needs a usable fraction >= ``min_usable_fraction`` and >= ``min_usable_frames`` usable frames."""

    params: str | None = None
    quality_signal: str = "quality"
    min_usable_fraction: float = 0.3
    min_usable_frames: int = 10
    min_face_px: float = USABLE.min_size_px
    min_brightness: float = USABLE.min_brightness
    max_brightness: float = USABLE.max_brightness
    min_sharpness: float = USABLE.min_sharpness
    min_inside: float = USABLE.min_inside
    max_reasons: int = 4
    min_contribution: float = 0.25  # logit units for a signal to count as driving the risk
    min_challenges: int = 3  # prompts answered, all passed, for challenges to back "genuine"
    reference_match: float = 0.5  # reference_mismatch below this = the face matches the reference

    def usable(self) -> UsableFace:
        """These options' usable-face thresholds (by default the one rule, :data:`USABLE`)."""
        return UsableFace(self.min_face_px, self.min_brightness, self.max_brightness,
                          self.min_sharpness, self.min_inside)

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_usable_fraction <= 1.0:
            raise ConfigError("min_usable_fraction must be in [0, 1]")
        if self.min_usable_frames < 0 or self.max_reasons < 1 or self.min_challenges < 1:
            raise ConfigError("min_usable_frames must be >= 0, max_reasons and min_challenges >= 1")
        if self.min_brightness > self.max_brightness:
            raise ConfigError("min_brightness must be <= max_brightness")


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
                ci = rule.weight * (v - rule.center)
                z += ci
                contrib.append(Contribution(name, v, ci, "rule"))
        if p.unfitted_weight > 0:
            known = set(p.features) | set(p.rules) | set(p.exclude) | {self.options.quality_signal}
            rest = {k: _num(v) for k, v in values.items() if k not in known}
            rest = {k: v for k, v in rest.items() if math.isfinite(v)}
            if rest:
                any_value = True
                w = p.unfitted_weight / len(rest)
                for k, v in rest.items():
                    ci = w * (v - p.unfitted_center)
                    z += ci
                    contrib.append(Contribution(k, v, ci, "unfitted"))
        if not any_value:
            return None, contrib
        return z, contrib

    def risk(self, values: Mapping[str, float | None]) -> float | None:
        """Calibrated risk 0..1 from clip-level signal values (None = no evidence)."""
        z, _ = self.contributions(values)
        return None if z is None else logistic(z)

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
            frames = max(len(observations), qs.n)  # a live record keeps its horizon; the signal counts the call
            frac = float(np.clip(1.0 - qs.value, 0.0, 1.0))
            problems = tuple(
                (k.removesuffix("_fraction").replace("_", " "), float(v)) for k, v in qs.details
                if k.endswith("_fraction") and k not in ("usable_fraction", "several_faces_fraction") and v > 0
            )
            return QualityAssessment(frames, int(round(frac * frames)), frac, problems)
        return assess_quality(observations, self.options.usable())

    def fuse(self, signals: Mapping[str, Signal | None], observations: Sequence[FaceObservation]) -> Verdict:
        opt = self.options
        qa = self.quality(signals, observations)
        values = {k: (s.value if s is not None else None) for k, s in signals.items()
                  if k != opt.quality_signal}
        z, contrib = self.contributions(values)
        risk = None if z is None else logistic(z)

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
    return dict(Review.from_dict(doc).signals)


def observations_from_review(doc: Mapping[str, Any]) -> list[FaceObservation]:
    """Light :class:`FaceObservation` records (face flag, box, quality) from a review timeline."""
    return Review.from_dict(doc).observations()


def verdict_from_review(doc: Mapping[str, Any], fusion: Fusion | None = None) -> Verdict:
    """Fuse a stored review document again (e.g. after a refit of the fusion parameters)."""
    fusion = fusion or Fusion()
    review = Review.from_dict(doc)
    return fusion.fuse(review.signals, review.observations())


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


