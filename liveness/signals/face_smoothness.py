"""Face smoothness: the other direction of face slip's measurements (a mesh that moves less
than the image noise around the face suggests a generated inner face). It measures nothing
itself: it reads a :class:`~liveness.signals.face_slip.FaceSlipAnalyser` (or anything with
the same three measurements, :class:`SlipMeasurements`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from liveness.core.analyser import FrameContext
from liveness.core.errors import ConfigError
from liveness.core.mathx import logistic
from liveness.core.types import FaceObservation, Score, Signal

__all__ = ["FaceSmoothnessAnalyser", "FaceSmoothnessOptions", "SlipMeasurements", "smoothness_signal"]


class SlipMeasurements(Protocol):
    """What face smoothness reads of a face slip analyser."""

    @property
    def frame_count(self) -> int: ...

    def mesh_to_ring(self, min_frames: int = 30) -> float | None: ...

    def mesh_smoothness(self) -> float | None: ...


@dataclass(frozen=True)
class FaceSmoothnessOptions:
    """Clip value = logistic of ``log(ratio_mid / mesh_to_ring) / width``: a mesh that moves
    less than the image noise around the face suggests a generated inner face. ``ratio_mid``
    is a loose prior (mesh residual equal to the ring's own flow residual), not a fit; AUC does
    not depend on it. ``min_frames``: frames needed before a value is given."""

    ratio_mid: float = 1.0
    width: float = 0.3
    min_frames: int = 30

    def __post_init__(self) -> None:
        if self.ratio_mid <= 0 or self.width <= 0 or self.min_frames < 3:
            raise ConfigError("ratio_mid > 0, width > 0 and min_frames >= 3 required")


def smoothness_signal(slip: SlipMeasurements, o: FaceSmoothnessOptions) -> Signal:
    """``face_smoothness``: the *other* direction of face slip. Swapped faces were measured
    smoother than real ones (the mesh follows a clean generated texture), so this clip-level
    signal is high when the mesh's inner-vs-contour residual is small relative to the image's
    own flow noise in the head ring (:meth:`~liveness.signals.face_slip.FaceSlipAnalyser.mesh_to_ring`); no per-frame
    scores, no segments."""
    r = slip.mesh_to_ring(o.min_frames)
    n = slip.frame_count  # not len(slip.frames): that builds every frame's record, each snapshot
    if r is None:
        return Signal("face_smoothness", None, n)
    value = logistic(np.log(o.ratio_mid / max(r, 1e-9)) / o.width)
    details: list[tuple[str, float]] = [("mesh_to_ring", r)]
    hf = slip.mesh_smoothness()
    if hf is not None:
        details.append(("mesh_hf_to_flow_hf", hf))
    return Signal("face_smoothness", value, n, (), tuple(details))


class FaceSmoothnessAnalyser:
    """``face_smoothness`` of a face slip analyser as an analyser of its own. The slip
    analyser reports it already (:meth:`~liveness.signals.face_slip.FaceSlipAnalyser.signals`); this one serves a session
    that wants it with other :class:`FaceSmoothnessOptions`. It measures nothing itself."""

    name = "face_smoothness"

    def __init__(self, slip: SlipMeasurements, options: FaceSmoothnessOptions | None = None) -> None:
        self.slip = slip
        self.options = options or FaceSmoothnessOptions()

    @classmethod
    def from_options(cls, options: FaceSmoothnessOptions, slip: SlipMeasurements) -> FaceSmoothnessAnalyser:
        return cls(slip, options)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> Sequence[Score]:
        return ()

    def signals(self) -> dict[str, Signal]:
        return {self.name: self.summary()}

    def summary(self) -> Signal:
        return smoothness_signal(self.slip, self.options)

    def reset(self) -> None:
        """Nothing of its own: the slip analyser it reads is reset by its session."""
