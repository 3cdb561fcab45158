"""interview-liveness: is the face on this video call real?"""

from ._analyser import Analyser, ScoreSeries
from ._errors import ConfigError, InputError, LivenessError, ModelError, TimestampError
from ._hooks import Hook, HookEvent, TimingHook
from ._session import Event, FrameResult, Session
from ._types import FaceObservation, FaceQuality, HeadPose, Score, Segment, Signal, Verdict

__version__ = "0.1.0"

__all__ = [
    "Analyser",
    "ConfigError",
    "Event",
    "FaceObservation",
    "FaceQuality",
    "FrameResult",
    "HeadPose",
    "Hook",
    "HookEvent",
    "InputError",
    "LivenessError",
    "ModelError",
    "Score",
    "ScoreSeries",
    "Segment",
    "Session",
    "Signal",
    "TimestampError",
    "TimingHook",
    "Verdict",
    "__version__",
]
