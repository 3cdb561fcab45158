"""The default pipeline: one registration row per analyser, options reaching every analyser."""

from __future__ import annotations

import numpy as np
import pytest

from liveness import ConfigError, FaceObservation, Score, Signal
from liveness import pipeline as pl
from liveness.signals.artefact import ArtefactOptions
from liveness.signals.quality import QualityOptions

SIGNALS = ["quality", "pose_consistency", "face_slip", "face_smoothness", "identity_change",
           "identity_instability", "artefact", "sharpness_gap", "challenge_breakdown", "challenge",
           "opportunistic_breakdown"]


def test_default_analysers_and_their_signals_in_order():
    names = [n for a in pl.default_analysers() for n in a.signals()]
    assert names == SIGNALS
    assert [r.name for r in pl.ANALYSERS] == ["quality", "pose_consistency", "face_slip", "identity",
                                              "artefact", "sharpness_gap", "challenges", "opportunistic",
                                              "hand_watch"]
    # the hand watch reports only where it runs: live sessions (off offline: benchmarks/README_hands.md)
    live = [n for a in pl.default_analysers(pl.PipelineOptions(live=True)) for n in a.signals()]
    assert live == [*SIGNALS, "hand_over_face"]


def test_pipeline_options_reach_every_analyser():
    by_name = {r.name: a for r, a in zip(pl.ANALYSERS, pl.default_analysers(), strict=True)}
    assert all(hasattr(a, "options") for a in by_name.values())  # every analyser has its options
    assert by_name["artefact"].options.rate_hz == 15.0
    live = dict(zip((r.name for r in pl.ANALYSERS), pl.default_analysers(pl.PipelineOptions(live=True)), strict=True))
    assert live["artefact"].options.rate_hz == 2.0 and live["artefact"].options.smooth_s == 2.0
    assert live["sharpness_gap"].options.rate_hz == 5.0 and live["pose_consistency"].options.rate_hz == 7.5
    # the live schedule leaves offline review alone
    assert live["hand_watch"].options.rate_hz == 2.0 and live["hand_watch"].options.enabled
    assert by_name["artefact"].options.smooth_s == 1.0 and by_name["pose_consistency"].options.rate_hz is None
    opts = pl.PipelineOptions(analysers=(("artefact", ArtefactOptions(rate_hz=3.0)),
                                         ("quality", QualityOptions(min_size_px=90.0))))
    got = dict(zip((r.name for r in pl.ANALYSERS), pl.default_analysers(opts), strict=True))
    assert got["artefact"].options.rate_hz == 3.0 and got["quality"].options.min_size_px == 90.0
    with pytest.raises(ConfigError, match="unknown analysers"):
        pl.default_analysers(pl.PipelineOptions(analysers=(("nope", None),)))


def test_options_document_keeps_its_shape_when_unused():
    assert set(pl.PipelineOptions().to_dict()) == {"tracker", "live", "references"}
    assert "analysers" in pl.PipelineOptions(analysers=(("quality", QualityOptions()),)).to_dict()


class Brightness:
    """A new analyser: the mean brightness of the frame, as its own signal."""

    name = "brightness"

    def __init__(self, options=None) -> None:
        self.options = options
        self.values: list[float] = []

    def update(self, obs: FaceObservation, ctx) -> tuple[Score, ...]:
        v = float(obs.image.mean()) / 255.0 if obs.image is not None else float("nan")
        self.values.append(v)
        return (Score(self.name, obs.t, v),)

    def signals(self) -> dict[str, Signal]:
        return {self.name: Signal(self.name, float(np.nanmean(self.values)) if self.values else None, len(self.values))}

    def reset(self) -> None:
        self.values.clear()


def test_a_new_analyser_is_its_module_and_one_registration_row(monkeypatch):
    row = pl.Registration("brightness", lambda p: None, lambda o, p: Brightness(o))  # the one line
    monkeypatch.setattr(pl, "ANALYSERS", (*pl.ANALYSERS, row))
    names = [n for a in pl.default_analysers() for n in a.signals()]
    assert names == [*SIGNALS, "brightness"]
    got = pl.default_analysers(pl.PipelineOptions(analysers=(("brightness", "its options"),)))[-1]
    assert got.options == "its options"


def test_build_session_runs_in_the_pipelines_mode():
    assert pl.build_session().mode == "video" and pl.build_session(pl.PipelineOptions(live=True)).mode == "live"


def test_the_models_checked_at_build_include_those_loaded_later():
    """The challenge engine's hand tracker loads its models at the first cover challenge, the
    identity and artefact analysers at their first face: all are checked when the session is
    built (``required_models``), so none is loaded unchecked."""
    from liveness.challenges.engine import ChallengeEngine

    session = pl.build_session()
    engine = next(a for a in session.analysers if isinstance(a, ChallengeEngine))
    hands = next(v for v in vars(engine).values() if type(v).__name__ == "HandTracker")
    watch = next(a for a in session.analysers if a.name == "hand_over_face")
    assert watch._source.options.max_hands == 1  # the watch follows one hand (the cheap path)
    loaded_later = {hands._palm_name, hands._lm_name, watch._source._palm_name, "face_embedding", "artefact"}
    tracker = set(session.tracker.required_models(session.tracker.options))
    assert loaded_later | tracker <= set(pl.required_models())
