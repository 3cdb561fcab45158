"""The verdict's usable-face gate: how much of the footage shows a face good enough to judge.
A clip under the fusion's minimum is ``inconclusive``, whatever its signals say."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from liveness.core.types import FaceObservation
from liveness.core.usable import USABLE, UsableFace, unusable_conditions

__all__ = ["QualityAssessment", "assess_quality"]


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


def assess_quality(observations: Sequence[FaceObservation], gate: UsableFace = USABLE) -> QualityAssessment:
    """Usable-face fraction from the observations' face flag and :class:`FaceQuality`, by the
    one usable-face rule (:func:`liveness.core.usable.unusable_conditions`)."""
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
    c = unusable_conditions(q[:, 0], q[:, 1], q[:, 2], q[:, 3], gate)
    small, dark, bright = known & c["small"], known & c["dark"], known & c["bright"]
    blur, cut = known & c["blurred"], known & c["out_of_frame"]
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
