"""interview-liveness: is the face on this video call real?

The core types are imported with the package; the pipeline, video, tracker, hand tracker,
analyser and fusion classes are loaded on first access (``liveness.build_session``), so ``import liveness`` stays light
and no model is ever loaded at import time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._analyser import Analyser, ScoreSeries
from ._errors import ConfigError, InputError, LivenessError, ModelError, TimestampError
from ._hooks import Hook, HookEvent, TimingHook
from ._session import Event, FrameResult, Session
from ._types import FaceObservation, FaceQuality, HeadPose, Score, Segment, Signal, Verdict

__version__ = "0.1.0"

# public name -> private module that defines it (loaded on first access)
_LAZY = {
    "build_session": "_pipeline", "PipelineOptions": "_pipeline", "default_analysers": "_pipeline",
    "open_video": "_video", "VideoFrame": "_video", "VideoInfo": "_video",
    "review_video": "_review", "ReviewOptions": "_review",
    "FaceTracker": "_tracker", "TrackerOptions": "_tracker",
    "HandTracker": "_hands", "HandOptions": "_hands", "HandResult": "_hands", "Hand": "_hands",
    "Fusion": "_fusion", "FusionOptions": "_fusion",
    "ArtefactAnalyser": "_artefact", "ArtefactOptions": "_artefact",
    "SharpnessGapAnalyser": "_artefact", "SharpnessGapOptions": "_artefact",
    "FaceSlipAnalyser": "_face_slip", "FaceSlipOptions": "_face_slip",
    "FaceSmoothnessAnalyser": "_face_slip", "FaceSmoothnessOptions": "_face_slip",
    "PoseConsistencyAnalyser": "_pose_consistency", "PoseConsistencyOptions": "_pose_consistency",
    "QualityMonitor": "_quality", "QualityOptions": "_quality",
    "IdentityAnalyser": "_identity", "IdentityOptions": "_identity", "Enrollment": "_identity",
    "load_references": "_identity",
    "ChallengeEngine": "_challenge_engine", "EngineOptions": "_challenge_engine",
    "OpportunisticAnalyser": "_challenge_engine", "OpportunisticOptions": "_challenge_engine",
}  # fmt: skip

if TYPE_CHECKING:
    from ._artefact import (
        ArtefactAnalyser,
        ArtefactOptions,
        SharpnessGapAnalyser,
        SharpnessGapOptions,
    )
    from ._challenge_engine import (
        ChallengeEngine,
        EngineOptions,
        OpportunisticAnalyser,
        OpportunisticOptions,
    )
    from ._face_slip import (
        FaceSlipAnalyser,
        FaceSlipOptions,
        FaceSmoothnessAnalyser,
        FaceSmoothnessOptions,
    )
    from ._fusion import Fusion, FusionOptions
    from ._hands import Hand, HandOptions, HandResult, HandTracker
    from ._identity import Enrollment, IdentityAnalyser, IdentityOptions, load_references
    from ._pipeline import PipelineOptions, build_session, default_analysers
    from ._pose_consistency import PoseConsistencyAnalyser, PoseConsistencyOptions
    from ._quality import QualityMonitor, QualityOptions
    from ._review import ReviewOptions, review_video
    from ._tracker import FaceTracker, TrackerOptions
    from ._video import VideoFrame, VideoInfo, open_video


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
