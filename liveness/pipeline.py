"""The one place analysers are wired into review, eval and serve.

:data:`ANALYSERS` is the registration table: one row per analyser of the default pipeline, in
the order they run (the challenge engine and the opportunistic analyser read the other
analysers' scores of each frame, so they come last). A row names the analyser's options, gives
their defaults for a pipeline (threads, the sampling rate of the running mode) and builds the
analyser from them. Adding an analyser is its own module plus one row here; its options are
then reachable as ``PipelineOptions(analysers=(("name", TheOptions(...)),))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liveness.challenges.engine import ChallengeEngine, EngineOptions
from liveness.challenges.hand_watch import HandWatchAnalyser, HandWatchOptions
from liveness.challenges.opportunistic import OpportunisticAnalyser, OpportunisticOptions
from liveness.core.analyser import Analyser, Mode
from liveness.core.errors import ConfigError
from liveness.core.hooks import Hook
from liveness.core.session import LIVE_HORIZON_S, Session
from liveness.signals.artefact import (
    ArtefactAnalyser,
    ArtefactOptions,
    SharpnessGapAnalyser,
    SharpnessGapOptions,
)
from liveness.signals.enrollment import load_references
from liveness.signals.face_slip import FaceSlipAnalyser, FaceSlipOptions
from liveness.signals.identity import IdentityAnalyser, IdentityOptions
from liveness.signals.pose_consistency import PoseConsistencyAnalyser, PoseConsistencyOptions
from liveness.signals.quality import QualityMonitor, QualityOptions
from liveness.tracking.hands import HandOptions, HandTracker
from liveness.tracking.tracker import FaceTracker, TrackerOptions
from liveness.verdict.fusion import Fusion, FusionOptions

__all__ = ["ANALYSERS", "PipelineOptions", "Registration", "build_session", "default_analysers", "required_models",
           "verify_pipeline"]


@dataclass(frozen=True)
class PipelineOptions:
    """Options of a full pipeline. ``live`` selects the live running mode and rates suited to a
    live stream (analysers sample by time, so offline review can afford denser sampling).
    ``references`` are paths of reference photos or enrolment files for the identity check.
    ``analysers``: (registered name, options) pairs that replace an analyser's default options
    (see :data:`ANALYSERS`); ``fusion``: the fusion's options (None: the defaults)."""

    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    live: bool = False
    references: tuple[str, ...] = ()
    analysers: tuple[tuple[str, Any], ...] = ()
    fusion: FusionOptions | None = None
    #: seconds of per-frame history a live session keeps (its signals describe that span; the
    #: segments of the whole call are kept): flat memory over a call of hours
    horizon_s: float = LIVE_HORIZON_S

    @property
    def mode(self) -> Mode:
        return "live" if self.live else "video"

    @property
    def threads(self) -> int:
        """ONNX Runtime threads per model (the tracker's setting, shared by every model)."""
        return self.tracker.threads

    @property
    def artefact_rate_hz(self) -> float:
        """Faces per second the swap detector (artefact) analyses: 2 Hz live (its ~11 ms a
        face is the dearest analyser of a live stream), ``rate_hz`` offline."""
        return 2.0 if self.live else self.rate_hz

    @property
    def pose_rate_hz(self) -> float | None:
        """Measurements per second of pose_consistency: 7.5 Hz live, every frame offline."""
        return 7.5 if self.live else None

    @property
    def rate_hz(self) -> float:
        """Faces per second the sampling analysers (artefact, sharpness gap) analyse."""
        return 5.0 if self.live else 15.0

    def options_for(self, name: str, default: Any) -> Any:
        """The options given for analyser ``name``, else ``default``."""
        return dict(self.analysers).get(name, default)

    def to_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        d = asdict(self)
        for k in ("analysers", "fusion"):  # the document's shape is unchanged when unused
            if not d[k]:
                del d[k]
        if not self.live or self.horizon_s == LIVE_HORIZON_S:
            del d["horizon_s"]
        return d


@dataclass(frozen=True)
class Registration:
    """One analyser of the default pipeline: ``defaults(pipeline options)`` gives its options
    when none are given, ``build(options, pipeline options)`` makes it."""

    name: str
    defaults: Callable[[PipelineOptions], Any]
    build: Callable[[Any, PipelineOptions], Analyser]
    models: tuple[str, ...] = ()  # the registry models it loads (checked when a session is built)


def _hands(p: PipelineOptions) -> HandTracker:
    """The challenge engine's hand tracker (its models load on the first cover challenge)."""
    return HandTracker(HandOptions(threads=p.threads))


def _watch_hands(p: PipelineOptions) -> HandTracker:
    """The hand watch's own hand tracker (one hand: following it is the cheap path)."""
    return HandTracker(HandOptions(max_hands=1, threads=p.threads))


def _references(p: PipelineOptions) -> Any:
    return load_references(p.references, p.threads) if p.references else None


#: the default analysers, in the order they run
ANALYSERS: tuple[Registration, ...] = (
    Registration("quality", lambda p: QualityOptions(), lambda o, p: QualityMonitor(o)),
    Registration("pose_consistency", lambda p: PoseConsistencyOptions(rate_hz=p.pose_rate_hz), lambda o, p: PoseConsistencyAnalyser(o)),
    Registration("face_slip", lambda p: FaceSlipOptions(), lambda o, p: FaceSlipAnalyser(o)),
    Registration("identity", lambda p: IdentityOptions(threads=p.threads), lambda o, p: IdentityAnalyser(o, references=_references(p)), ("face_embedding",)),
    Registration("artefact", lambda p: ArtefactOptions(rate_hz=p.artefact_rate_hz, smooth_s=2.0 if p.live else 1.0, threads=p.threads), lambda o, p: ArtefactAnalyser(o), ("artefact",)),
    Registration("sharpness_gap", lambda p: SharpnessGapOptions(rate_hz=p.rate_hz), lambda o, p: SharpnessGapAnalyser(o)),
    Registration("challenges", lambda p: EngineOptions(), lambda o, p: ChallengeEngine(o, hands=_hands(p)), HandTracker.required_models()),  # prompts only when started
    Registration("opportunistic", lambda p: OpportunisticOptions(), lambda o, p: OpportunisticAnalyser(o)),
    # last, so no other analyser sees its scores; on in live sessions only (benchmarks/README_hands.md);
    # it looks at 2 Hz: 1 Hz scored fewer of the rendered hand episodes (benchmarks/README_serve.md)
    Registration("hand_watch", lambda p: HandWatchOptions(enabled=p.live), lambda o, p: HandWatchAnalyser(o, hands=_watch_hands(p)), HandTracker.required_models()),
)  # fmt: skip


def default_analysers(options: PipelineOptions | None = None) -> list[Analyser]:
    """Every analyser of the default pipeline, in the order they run."""
    options = options or PipelineOptions()
    known = {r.name for r in ANALYSERS}
    unknown = sorted(n for n, _ in options.analysers if n not in known)
    if unknown:
        raise ConfigError(f"PipelineOptions.analysers: unknown analysers {unknown}; known: {sorted(known)}")
    return [r.build(options.options_for(r.name, r.defaults(options)), options) for r in ANALYSERS]


def required_models(options: PipelineOptions | None = None) -> tuple[str, ...]:
    """The registry models the pipeline of ``options`` loads: the tracker's, then each
    analyser's, once each."""
    options = options or PipelineOptions()
    names = FaceTracker.required_models(options.tracker) + tuple(m for r in ANALYSERS for m in r.models)
    return tuple(dict.fromkeys(names))


def verify_pipeline(options: PipelineOptions | None = None) -> None:
    """Check every model file of the pipeline of ``options`` against its registry sha256: a
    missing or altered one is a :class:`~liveness.ModelError` now (each file is hashed once per
    process). :func:`build_session` calls it; ``liveness serve`` calls it at start."""
    from liveness.core.registry import verify_models

    verify_models(required_models(options))


def build_session(options: PipelineOptions | None = None, hook: Hook | None = None) -> Session:
    """A ready :class:`Session` with the default tracker, analysers and fusion, in the running
    mode of ``options.live``. Every model file it will load is checked first
    (:func:`verify_pipeline`): a missing or corrupted one is a :class:`~liveness.ModelError`
    here, not at the first frame."""
    options = options or PipelineOptions()
    verify_pipeline(options)
    tracker = FaceTracker.from_options(options.tracker)
    fusion = Fusion.from_options(options.fusion)
    return Session(tracker, default_analysers(options), fusion=fusion, hook=hook, mode=options.mode,
                   horizon_s=options.horizon_s)
