"""Result types: frozen dataclasses with plain numpy fields and ``to_dict()``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

__all__ = [
    "Event",
    "FaceObservation",
    "FaceQuality",
    "HeadPose",
    "Score",
    "Segment",
    "Signal",
    "Verdict",
    "FrameResult",
]


def _num(v: Any) -> float:
    """A JSON number (None, null or junk -> nan)."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _f(x: float | None, nd: int = 4) -> float | None:
    if x is None:
        return None
    x = float(x)
    if not np.isfinite(x):
        return None
    return round(x, nd)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees (yaw: + = candidate turns to their left / image right... see docs)
    and translation in the canonical face's units (centimetres) in camera coordinates."""

    yaw: float
    pitch: float
    roll: float
    rvec: np.ndarray  # (3,) Rodrigues rotation, camera <- canonical face
    tvec: np.ndarray  # (3,) translation (cm)

    def to_dict(self) -> dict[str, Any]:
        return {
            "yaw": _f(self.yaw, 2),
            "pitch": _f(self.pitch, 2),
            "roll": _f(self.roll, 2),
            "tvec": [_f(v, 3) for v in self.tvec],
        }


@dataclass(frozen=True)
class FaceQuality:
    """Per-face image quality. ``inside`` is the fraction of the face box inside the frame."""

    size_px: float  # sqrt(box area) in pixels
    sharpness: float  # variance of the Laplacian on the face region (grey, 0-255 scale)
    brightness: float  # mean luma of the face region, 0-255
    inside: float  # 0..1

    def to_dict(self) -> dict[str, Any]:
        return {
            "size_px": _f(self.size_px, 1),
            "sharpness": _f(self.sharpness, 1),
            "brightness": _f(self.brightness, 1),
            "inside": _f(self.inside, 3),
        }


@dataclass(frozen=True, eq=False)
class FaceObservation:
    """What the tracker saw in one frame.

    ``face`` is False when no face was found; then the face fields are None.
    ``image`` is the RGB frame the observation was made on (not serialised).
    """

    t: float
    frame_index: int
    width: int
    height: int
    face: bool
    faces: int
    box: np.ndarray | None = None  # (4,) x, y, w, h in pixels
    landmarks: np.ndarray | None = None  # (478, 3) float32, x/y pixels, z in pixel scale
    score: float = 0.0  # tracking confidence 0..1
    pose: HeadPose | None = None
    quality: FaceQuality | None = None
    other_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    redetected: bool = False
    image: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "t": _f(self.t, 4),
            "face": self.face,
            "faces": self.faces,
        }
        if self.face and self.box is not None:
            d["box"] = [_f(v, 1) for v in self.box]
            d["score"] = _f(self.score, 3)
            if self.pose is not None:
                d.update(self.pose.to_dict())
            if self.quality is not None:
                d["face_quality"] = self.quality.to_dict()
        return d


@dataclass(frozen=True)
class Score:
    """One analyser's per-frame output. ``value`` is 0..1, higher = more likely not genuine."""

    signal: str
    t: float
    value: float
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "t": _f(self.t), "value": _f(self.value), "weight": _f(self.weight)}


@dataclass(frozen=True)
class Segment:
    """A flagged time range with the peak value inside it."""

    start: float
    end: float
    value: float
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"start": _f(self.start, 3), "end": _f(self.end, 3), "value": _f(self.value), "reason": self.reason}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Segment:
        """A segment of a document (a missing or non-finite peak value reads as 0)."""
        v = _num(d.get("value"))
        return cls(float(d["start"]), float(d["end"]), v if np.isfinite(v) else 0.0, str(d.get("reason", "")))


@dataclass(frozen=True)
class Signal:
    """An analyser's clip-level summary. ``value`` None = not enough evidence."""

    name: str
    value: float | None
    n: int
    segments: tuple[Segment, ...] = ()
    details: tuple[tuple[str, float], ...] = ()  # named numeric facts, e.g. (("median", 0.2),)

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _f(self.value),
            "n": self.n,
            "segments": [s.to_dict() for s in self.segments],
            "details": {k: _f(v) for k, v in self.details},
        }

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Signal:
        """The signal of a review document's ``signals[name]`` (``to_dict``'s inverse, rounded)."""
        v = _num(d.get("value"))
        segs = tuple(Segment.from_dict(s) for s in d.get("segments") or ()
                     if s.get("start") is not None and s.get("end") is not None)
        details = tuple((str(k), float(x)) for k, x in (d.get("details") or {}).items()
                        if isinstance(x, (int, float)))
        return cls(name, v if np.isfinite(v) else None, int(d.get("n") or 0), segs, details)


VerdictLabel = Literal["genuine", "no_signs", "suspicious", "fake", "inconclusive"]
#: the checks a verdict can rest on (``Verdict.assurance``): passive analysis of the footage,
#: a prompted challenge sequence, a comparison with a reference photo or enrolment
Assurance = Literal["passive", "challenges", "reference"]


@dataclass(frozen=True)
class Verdict:
    """The fused answer: a risk 0..1, a label and the reasons behind it.

    ``label``: ``fake`` / ``suspicious`` (an alarm), ``genuine`` (no alarm and an active check
    backs it: a passed challenge sequence or a match with a reference), ``no_signs`` (no alarm
    from passive checks alone: nothing found, which is no clearance), ``inconclusive``.
    ``assurance``: the kinds of check the label rests on, in the order ``passive``,
    ``challenges``, ``reference`` (empty when inconclusive)."""

    label: VerdictLabel
    risk: float | None
    reasons: tuple[str, ...] = ()
    segments: tuple[Segment, ...] = ()
    assurance: tuple[Assurance, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "risk": _f(self.risk),
            "assurance": list(self.assurance),
            "reasons": list(self.reasons),
            "segments": [s.to_dict() for s in self.segments],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        given = d.get("label", "inconclusive")
        label: VerdictLabel = next((x for x in _LABELS if x == given), "inconclusive")
        risk = _num(d.get("risk"))
        return cls(
            label,
            risk if np.isfinite(risk) else None,
            tuple(str(r) for r in d.get("reasons") or ()),
            tuple(Segment.from_dict(s) for s in d.get("segments") or ()),
            tuple(a for a in d.get("assurance") or () if a in _ASSURANCE),
        )


_LABELS: tuple[VerdictLabel, ...] = get_args(VerdictLabel)
_ASSURANCE: tuple[Assurance, ...] = get_args(Assurance)


@dataclass(frozen=True)
class Event:
    """Something that happened at time ``t``: a quality event, a challenge prompt or result.
    ``kind`` is a dotted name (e.g. "quality.no_face", "challenge.prompt", "challenge.result");
    ``data`` holds plain JSON-able values."""

    t: float
    kind: str
    message: str
    data: tuple[tuple[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"t": round(float(self.t), 4), "kind": self.kind, "message": self.message}
        if self.data:
            d["data"] = dict(self.data)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        data = d.get("data") or {}
        return cls(_num(d.get("t")), str(d.get("kind", "")), str(d.get("message", "")),
                   tuple(data.items()) if isinstance(data, Mapping) else ())


#: a region of interest: (x, y, w, h) as fractions of the frame's width and height
Roi = tuple[float, float, float, float]


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: the observation, this frame's scores and events. ``roi`` is the
    region of interest that was analysed (None: the whole frame); ``origin`` (pixels) and
    ``scale`` map the analysed image back to the frame given: frame = origin + analysed / scale
    (:meth:`frame_box`)."""

    obs: FaceObservation
    scores: tuple[Score, ...] = ()
    events: tuple[Event, ...] = ()
    roi: Roi | None = None
    origin: tuple[int, int] = (0, 0)
    scale: float = 1.0

    def frame_box(self, box: Any) -> list[float]:
        """An (x, y, w, h) box of the analysed image in the given frame's pixels (rounded to 0.1)."""
        x, y, w, h = (float(v) for v in box)
        s, (ox, oy) = self.scale, self.origin
        return [round(x / s + ox, 1), round(y / s + oy, 1), round(w / s, 1), round(h / s, 1)]

    def to_dict(self) -> dict[str, Any]:
        d = self.obs.to_dict()
        for s in self.scores:
            d[s.signal] = round(float(s.value), 4)
        return d
