"""interview-liveness: is the face on this video call real?

The core types are imported with the package; the pipeline, video, tracker, hand tracker,
analyser and fusion classes are loaded on first access (``liveness.build_session``), so ``import liveness`` stays light
and no model is ever loaded at import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .core.analyser import Analyser, ScoreSeries
from .core.errors import ConfigError, InputError, LivenessError, ModelError, TimestampError
from .core.hooks import Hook, HookEvent, TimingHook
from .core.session import Session
from .core.types import (
    Event,
    FaceObservation,
    FaceQuality,
    FrameResult,
    HeadPose,
    Score,
    Segment,
    Signal,
    Verdict,
)
from .core.version import __version__

# public name -> module (below liveness) that defines it (loaded on first access)
_LAZY = {
    "build_session": "pipeline", "PipelineOptions": "pipeline", "default_analysers": "pipeline",
    "open_video": "sources.video", "VideoFrame": "sources.video", "VideoInfo": "sources.video",
    "review_video": "apps.review", "ReviewOptions": "apps.review",
    "FaceTracker": "tracking.tracker", "TrackerOptions": "tracking.tracker",
    "HandTracker": "tracking.hands", "HandOptions": "tracking.hands", "HandResult": "tracking.hands", "Hand": "tracking.hands",
    "Fusion": "verdict.fusion", "FusionOptions": "verdict.fusion",
    "ArtefactAnalyser": "signals.artefact", "ArtefactOptions": "signals.artefact",
    "SharpnessGapAnalyser": "signals.artefact", "SharpnessGapOptions": "signals.artefact",
    "FaceSlipAnalyser": "signals.face_slip", "FaceSlipOptions": "signals.face_slip",
    "FaceSmoothnessAnalyser": "signals.face_smoothness", "FaceSmoothnessOptions": "signals.face_smoothness",
    "PoseConsistencyAnalyser": "signals.pose_consistency", "PoseConsistencyOptions": "signals.pose_consistency",
    "QualityMonitor": "signals.quality", "QualityOptions": "signals.quality",
    "IdentityAnalyser": "signals.identity", "IdentityOptions": "signals.identity", "Enrollment": "signals.enrollment",
    "load_references": "signals.enrollment",
    "ChallengeEngine": "challenges.engine", "EngineOptions": "challenges.engine",
    "OpportunisticAnalyser": "challenges.opportunistic", "OpportunisticOptions": "challenges.opportunistic",
}  # fmt: skip

if TYPE_CHECKING:
    from .apps.review import ReviewOptions, review_video
    from .challenges.engine import ChallengeEngine, EngineOptions
    from .challenges.opportunistic import OpportunisticAnalyser, OpportunisticOptions
    from .pipeline import PipelineOptions, build_session, default_analysers
    from .signals.artefact import (
        ArtefactAnalyser,
        ArtefactOptions,
        SharpnessGapAnalyser,
        SharpnessGapOptions,
    )
    from .signals.enrollment import Enrollment, load_references
    from .signals.face_slip import FaceSlipAnalyser, FaceSlipOptions
    from .signals.face_smoothness import FaceSmoothnessAnalyser, FaceSmoothnessOptions
    from .signals.identity import IdentityAnalyser, IdentityOptions
    from .signals.pose_consistency import PoseConsistencyAnalyser, PoseConsistencyOptions
    from .signals.quality import QualityMonitor, QualityOptions
    from .sources.video import VideoFrame, VideoInfo, open_video
    from .tracking.hands import Hand, HandOptions, HandResult, HandTracker
    from .tracking.tracker import FaceTracker, TrackerOptions
    from .verdict.fusion import Fusion, FusionOptions


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'liveness' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "Analyser",
    "ArtefactAnalyser",
    "ArtefactOptions",
    "ChallengeEngine",
    "ConfigError",
    "EngineOptions",
    "Enrollment",
    "Event",
    "FaceObservation",
    "FaceQuality",
    "FaceSlipAnalyser",
    "FaceSlipOptions",
    "FaceSmoothnessAnalyser",
    "FaceSmoothnessOptions",
    "FaceTracker",
    "FrameResult",
    "Fusion",
    "FusionOptions",
    "Hand",
    "HandOptions",
    "HandResult",
    "HandTracker",
    "HeadPose",
    "Hook",
    "HookEvent",
    "IdentityAnalyser",
    "IdentityOptions",
    "InputError",
    "LivenessError",
    "ModelError",
    "OpportunisticAnalyser",
    "OpportunisticOptions",
    "PipelineOptions",
    "PoseConsistencyAnalyser",
    "PoseConsistencyOptions",
    "QualityMonitor",
    "QualityOptions",
    "ReviewOptions",
    "Score",
    "ScoreSeries",
    "Segment",
    "Session",
    "SharpnessGapAnalyser",
    "SharpnessGapOptions",
    "Signal",
    "TimestampError",
    "TimingHook",
    "TrackerOptions",
    "Verdict",
    "VideoFrame",
    "VideoInfo",
    "build_session",
    "default_analysers",
    "load_references",
    "open_video",
    "review_video",
    "__version__",
]
