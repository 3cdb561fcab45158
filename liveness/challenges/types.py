"""The thresholds of the challenge verifiers and the record of one answered prompt (the
thresholds are explained in :mod:`liveness.challenges.verifiers`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from liveness.core.errors import ConfigError

__all__ = ["ChallengeResult", "ChallengeThresholds"]


# -- thresholds -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ChallengeThresholds:
    """Documented in the module docstring; all relative to the pre-prompt baseline."""

    turn_abs_deg: float = 35.0
    turn_delta_deg: float = 20.0
    turn_baseline_max_deg: float = 20.0
    look_delta_deg: float = 15.0
    blink_closed: float = 0.6
    blink_open: float = 0.8
    blink_max_s: float = 0.8
    blink_pair_s: float = 1.5
    blink_yaw_tol: float = 20.0
    blink_pitch_tol: float = 15.0
    mouth_delta: float = 0.15
    mouth_abs: float = 0.28
    smile_ratio: float = 1.12
    brow_ratio: float = 1.10
    cover_change: float = 0.5
    cover_other_frac: float = 0.5
    cover_score_frac: float = 0.6
    cover_return_px: float = 1.0  # face must come back within this many IODs of the baseline
    cover_max_loss_s: float = 3.0
    cover_hold_s: float = 0.2
    cover_move_iod: float = 1.0
    cover_release: float = 0.7
    cover_shift_iod: float = 0.0  # rigid head moves compensated in the half change, IODs (0 = off)
    cover_hand: bool = True  # a cover passes only with a tracked hand on the face
    cover_hand_coverage: float = 0.15  # ... over at least this fraction of the face region
    lean_ratio: float = 1.25
    hold_frames: int = 2
    mirrored: bool = False  # True when the video is a mirrored self-view (swaps left/right)

    def __post_init__(self) -> None:
        if self.hold_frames < 1:
            raise ConfigError("hold_frames must be >= 1")
        if not 0 < self.blink_closed < self.blink_open <= 1.0:
            raise ConfigError("need 0 < blink_closed < blink_open <= 1")


# -- results --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChallengeResult:
    """The outcome of one prompt. ``latency_s``: prompt → decision; ``onset_s``: prompt → first
    frame moving toward the answer (None if none); ``peak``: the best value of the challenge's
    measure (units in ``measure``); ``evidence``: frame timestamps that decided it (s)."""

    index: int
    kind: str
    prompt_t: float
    decided_t: float
    passed: bool
    reason: str  # "performed", "timeout", "no_face", "no_hand" (covered, but no hand on the face)
    measure: str
    peak: float | None
    threshold: float
    baseline: float | None
    latency_s: float
    onset_s: float | None
    evidence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    breakdown: float | None = None
    breakdown_signals: tuple[tuple[str, float], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def f(x: float | None, nd: int = 4) -> float | None:
            return None if x is None or not np.isfinite(x) else round(float(x), nd)

        return {
            "index": self.index,
            "kind": self.kind,
            "prompt_t": f(self.prompt_t),
            "decided_t": f(self.decided_t),
            "passed": self.passed,
            "reason": self.reason,
            "measure": self.measure,
            "peak": f(self.peak),
            "threshold": f(self.threshold),
            "baseline": f(self.baseline),
            "latency_s": f(self.latency_s, 3),
            "onset_s": f(self.onset_s, 3),
            "evidence": [round(float(t), 4) for t in self.evidence],
            "breakdown": f(self.breakdown),
            "breakdown_signals": {k: f(v) for k, v in self.breakdown_signals},
        }
