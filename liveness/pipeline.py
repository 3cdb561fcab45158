"""The one place analysers are wired into review, eval and serve."""

from __future__ import annotations

from dataclasses import dataclass, field

from liveness.core.analyser import Analyser
from liveness.core.hooks import Hook
from liveness.core.session import Session
from liveness.tracking.tracker import FaceTracker, TrackerOptions

__all__ = ["PipelineOptions", "build_session", "default_analysers"]


@dataclass(frozen=True)
class PipelineOptions:
    """Options of a full pipeline. ``live`` selects rates suited to a live stream (analysers
    sample by time, so offline review can afford denser sampling). ``references`` are paths of
    reference photos or enrolment files for the identity check."""

    tracker: TrackerOptions = field(default_factory=TrackerOptions)
    live: bool = False
    references: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        from dataclasses import asdict

        return asdict(self)


def default_analysers(options: PipelineOptions | None = None) -> list[Analyser]:
    """Every analyser of the default pipeline, in the order they run."""
    options = options or PipelineOptions()
    analysers: list[Analyser] = []
    from liveness.signals.face_slip import FaceSlipAnalyser, FaceSmoothnessAnalyser
    from liveness.signals.pose_consistency import PoseConsistencyAnalyser
    from liveness.signals.quality import QualityMonitor

    slip = FaceSlipAnalyser()
    analysers += [QualityMonitor(), PoseConsistencyAnalyser(), slip, FaceSmoothnessAnalyser(slip)]
    from liveness.signals.identity import IdentityAnalyser, IdentityOptions, load_references

    threads = options.tracker.threads
    refs = load_references(options.references, threads) if options.references else None
    identity = IdentityAnalyser(IdentityOptions(threads=threads), references=refs)
    analysers += identity.analysers()  # identity_change, identity_instability[, reference_mismatch]
    from liveness.signals.artefact import (
        ArtefactAnalyser,
        ArtefactOptions,
        SharpnessGapAnalyser,
        SharpnessGapOptions,
    )

    rate = 5.0 if options.live else 15.0  # analysed faces per second
    analysers += [
        ArtefactAnalyser(ArtefactOptions(rate_hz=rate, threads=threads)),
        SharpnessGapAnalyser(SharpnessGapOptions(rate_hz=rate)),
    ]
    from liveness.challenges.engine import ChallengeEngine, ChallengeResponse, OpportunisticAnalyser

    engine = ChallengeEngine()  # prompts only when started (serve console / Session API)
    analysers += [engine, ChallengeResponse(engine), OpportunisticAnalyser()]
    return analysers


def build_session(options: PipelineOptions | None = None, hook: Hook | None = None) -> Session:
    """A ready :class:`Session` with the default tracker, analysers and fusion."""
    options = options or PipelineOptions()
    tracker = FaceTracker.from_options(options.tracker)
    from liveness.verdict.fusion import Fusion

    fusion = Fusion()
    return Session(tracker, default_analysers(options), fusion=fusion, hook=hook)
