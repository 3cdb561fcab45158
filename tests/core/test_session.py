from __future__ import annotations

import numpy as np
import pytest

from liveness import (
    Event,
    FaceObservation,
    InputError,
    Score,
    ScoreSeries,
    Session,
    Signal,
    TimestampError,
)
from liveness.core.hooks import TimingHook


class FakeTracker:
    def __init__(self) -> None:
        self.calls = 0

    def process(self, image, t, frame_index=-1):
        self.calls += 1
        h, w = image.shape[:2]
        return FaceObservation(t, frame_index, w, h, True, 1, np.array([1, 2, 3, 4], np.float32), image=image)

    def reset(self) -> None:
        self.calls = 0


class Constant:
    def __init__(self, name: str, value: float) -> None:
        self.name = name
        self.value = value
        self.series = ScoreSeries(name, min_n=1)

    def update(self, obs, ctx):
        s = Score(self.name, obs.t, self.value)
        self.series.add(s)
        return (s,)

    def signals(self):
        return {self.name: self.series.summary()}

    def reset(self) -> None:
        self.series.reset()


class Broken(Constant):
    def update(self, obs, ctx):
        raise RuntimeError("boom")


def img() -> np.ndarray:
    return np.zeros((8, 8, 3), np.uint8)


def test_process_runs_tracker_and_analysers_and_hooks():
    hook = TimingHook()
    s = Session(FakeTracker(), [Constant("a", 0.2), Constant("b", 0.9)], hook=hook)
    for i in range(5):
        r = s.process(img(), i * 0.1)
    assert [sc.signal for sc in r.scores] == ["a", "b"]
    sig = s.signals()
    assert sig["a"].value == pytest.approx(0.2) and sig["b"].value == pytest.approx(0.9)
    assert s.frames == 5 and all(o.image is None for o in s.observations)
    assert hook.ms["track"] and len(hook.ms["a"]) == 5
    assert r.to_dict()["b"] == pytest.approx(0.9)


def test_timestamps_must_increase():
    s = Session(FakeTracker())
    s.process(img(), 1.0)
    with pytest.raises(TimestampError):
        s.process(img(), 1.0)
    with pytest.raises(TimestampError):
        s.process(img(), 0.5)
    with pytest.raises(TimestampError):
        s.process(img(), float("nan"))


@pytest.mark.parametrize("bad", [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32), np.zeros((8, 8, 4), np.uint8), "x"])
def test_bad_images_are_input_errors(bad):
    with pytest.raises(InputError):
        Session(FakeTracker()).process(bad, 0.0)


def test_broken_analyser_is_disabled_not_fatal():
    s = Session(FakeTracker(), [Broken("x", 0.5), Constant("ok", 0.1)])
    r1 = s.process(img(), 0.0)
    r2 = s.process(img(), 0.1)
    assert [e.kind for e in r1.events] == ["error.analyser"]
    assert [sc.signal for sc in r2.scores] == ["ok"]
    assert "x" not in s.signals()


def test_verdict_without_fusion_is_inconclusive_and_reset_clears():
    s = Session(FakeTracker(), [Constant("a", 0.3)])
    s.process(img(), 0.0)
    assert s.verdict().label == "inconclusive"
    s.reset()
    assert s.frames == 0
    s.process(img(), 0.0)  # timestamps start over after reset


def test_score_series_short_segment_still_shows():
    ser = ScoreSeries("x", quantile=0.9, smooth_s=1.0, flag=0.5)
    t = np.arange(0, 30, 0.2)
    v = np.where((t > 10) & (t < 14), 0.9, 0.1)  # a 4-s swap in 30 s
    for ti, vi in zip(t, v, strict=True):
        ser.add(Score("x", float(ti), float(vi)))
    sig = ser.summary()
    assert sig.value > 0.8
    assert len(sig.segments) == 1
    assert 9.8 < sig.segments[0].start < 10.8 and 13.0 < sig.segments[0].end < 14.2
    # a single-frame spike does not
    ser.reset()
    for ti in t:
        ser.add(Score("x", float(ti), 0.95 if abs(ti - 5) < 0.01 else 0.1))
    assert ser.summary().value < 0.2


class Watcher(Constant):
    """Reads the scores the analysers before it gave for the same frame."""

    def __init__(self) -> None:
        super().__init__("watch", 0.0)
        self.seen: list[tuple[float, list[str]]] = []

    def update(self, obs, ctx):
        self.seen.append((obs.t, [s.signal for s in ctx.scores]))
        return ()


def test_breakdown_analysers_see_the_earlier_scores_of_the_frame():
    w = Watcher()
    s = Session(FakeTracker(), [Constant("a", 0.2), Constant("b", 0.9), w])
    s.process(img(), 0.0)
    s.process(img(), 0.1)
    assert w.seen == [(0.0, ["a", "b"]), (0.1, ["a", "b"])]


class Pair(Constant):
    """One analyser owning two signals, emitting an event on its second frame."""

    def update(self, obs, ctx):
        if obs.frame_index == 1:
            ctx.emit(Event(obs.t, "pair.second", "second frame"))
        s = Score(self.name, obs.t, self.value)
        self.series.add(s)
        return (s, Score("pair_half", obs.t, self.value / 2))

    def signals(self):
        return {self.name: self.series.summary(), "pair_half": Signal("pair_half", self.value / 2, len(self.series))}


def test_an_analyser_may_own_several_signals_and_emit_events():
    s = Session(FakeTracker(), [Pair("pair", 0.8)])
    r0, r1 = s.process(img(), 0.0), s.process(img(), 0.1)
    assert [x.signal for x in r1.scores] == ["pair", "pair_half"] and r0.events == ()
    assert [e.kind for e in r1.events] == ["pair.second"] and [e.kind for e in s.events] == ["pair.second"]
    assert list(s.signals()) == ["pair", "pair_half"] and s.signals()["pair_half"].value == pytest.approx(0.4)


class Old:
    """The v1 shape (update(obs) -> Score | None, summary()): refused once, at construction."""

    name = "old"

    def update(self, obs):
        return None

    def summary(self):
        return Signal("old", None, 0)

    def reset(self):
        pass


def test_parts_are_checked_once_when_the_session_is_built():
    from liveness import ConfigError

    with pytest.raises(ConfigError, match="not an analyser"):
        Session(FakeTracker(), [Old()])
    with pytest.raises(ConfigError, match="not a tracker"):
        Session(object(), [])
    with pytest.raises(ConfigError, match="two analysers"):
        Session(FakeTracker(), [Constant("a", 0.1), Constant("a", 0.2)])
    with pytest.raises(ConfigError, match="not a fusion"):
        Session(FakeTracker(), [], fusion=object())
    with pytest.raises(ConfigError, match="mode"):
        Session(FakeTracker(), [], mode="stream")


class SizeTracker(FakeTracker):
    def __init__(self) -> None:
        super().__init__()
        self.shapes: list[tuple[int, int]] = []
        self.resets = 0

    def process(self, image, t, frame_index=-1):
        self.shapes.append(image.shape[:2])
        h, w = image.shape[:2]
        return FaceObservation(t, frame_index, w, h, True, 1, np.array([10, 20, 30, 40], np.float32),
                               landmarks=np.zeros((478, 3), np.float32), image=image)

    def reset(self) -> None:
        self.resets += 1


def test_region_of_interest_and_downscale_per_call_map_back_to_the_frame():
    tr = SizeTracker()
    s = Session(tr, [])
    frame = np.zeros((480, 640, 3), np.uint8)
    r = s.process(frame, 0.0, roi=(0.5, 0.0, 0.5, 1.0), max_side=240)
    assert tr.shapes[-1] == (240, 160)  # the right half (320 x 480), then fitted into 240 px
    assert r.roi == (0.5, 0.0, 0.5, 1.0) and r.origin == (320, 0) and r.scale == pytest.approx(0.5)
    assert r.frame_box(r.obs.box) == [340.0, 40.0, 60.0, 80.0]
    resets = tr.resets
    s.process(frame, 0.1, roi=(0.5, 0.0, 0.5, 1.0))
    assert tr.resets == resets  # same region: the track is kept
    r = s.process(frame, 0.2, roi=(0.0, 0.0, 0.01, 0.01))  # too small: the whole frame
    assert tr.resets == resets + 1 and r.roi is None and tr.shapes[-1] == (480, 640)
    s.process(frame, 0.3)
    assert tr.resets == resets + 2  # back to the whole frame: a new region again


def test_live_mode_keeps_a_light_record():
    video, live = Session(SizeTracker(), []), Session(SizeTracker(), [], mode="live")
    for s in (video, live):
        s.process(img(), 0.0)
    assert video.observations[0].landmarks is not None and video.observations[0].image is None
    assert live.observations[0].landmarks is None and live.mode == "live"
    v, o = video.observations[0], live.observations[0]
    # what the fusion reads stays; what a frame's result already carried does not
    assert (o.t, o.face, o.faces, o.quality, o.score) == (v.t, v.face, v.faces, v.quality, v.score)
    assert o.box is None and o.pose is None and o.image is None and o.other_boxes.shape == (0, 4)


def test_event_data_never_overwrites_its_kind():
    from liveness import Event

    d = Event(1.0, "challenge.prompt", "turn left", (("kind", "turn_left"), ("limit_s", 5.0))).to_dict()
    assert d["kind"] == "challenge.prompt" and d["data"] == {"kind": "turn_left", "limit_s": 5.0}


@pytest.mark.parametrize("t0", [0.0, 1.7e9])  # stream time, or a wall clock (float64 needed)
def test_start_challenges_needs_an_engine_and_prompts_arrive_as_events(t0):
    from liveness import ConfigError
    from liveness.challenges.engine import ChallengeEngine, EngineOptions

    with pytest.raises(ConfigError):
        Session(FakeTracker()).start_challenges()
    s = Session(FakeTracker(), [ChallengeEngine(EngineOptions())])
    s.process(img(), t0)
    planned = s.start_challenges(kinds=["turn_left"])
    assert planned == ["turn_left"]
    kinds = []
    for i in range(1, 200):
        kinds += [e.kind for e in s.process(img(), t0 + i / 15).events]
    assert "challenge.prompt" in kinds and "challenge.result" in kinds
    assert s.observations  # results survive in the session's record
