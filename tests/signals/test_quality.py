"""QualityMonitor: debounced quality events and the unusable-frame fraction."""

from __future__ import annotations

import numpy as np
import pytest

from liveness import ConfigError, FaceObservation, FaceQuality
from liveness.signals.quality import QualityMonitor, QualityOptions, frame_quality
from tests._feed import step

FPS = 25.0


def obs(i: int, *, face: bool = True, faces: int | None = None, size: float = 150.0,
        brightness: float = 120.0, sharpness: float = 80.0, inside: float = 1.0,
        image: np.ndarray | None = None, box: tuple[float, ...] | None = None) -> FaceObservation:
    t = i / FPS
    if not face:
        return FaceObservation(t, i, 640, 480, False, faces or 0, image=image)
    b = np.array(box if box is not None else (200, 150, size, size), np.float32)
    q = None if image is not None else FaceQuality(size, sharpness, brightness, inside)
    return FaceObservation(t, i, 640, 480, True, faces if faces is not None else 1, box=b,
                           quality=q, image=image)


def run(mon: QualityMonitor, seq: list[FaceObservation]):
    events = []
    for o in seq:
        events.extend(step(mon, o)[1])
    return events


def test_good_frames_give_no_events_and_zero_unusable():
    mon = QualityMonitor()
    ev = run(mon, [obs(i) for i in range(100)])
    assert ev == []
    s = mon.summary()
    assert s.name == "quality" and s.value == 0.0 and s.n == 100 and s.segments == ()
    assert dict(s.details)["usable_fraction"] == 1.0


def test_absent_face_range_begins_and_ends_debounced():
    mon = QualityMonitor(QualityOptions(min_duration_s=0.5, release_s=0.5))
    seq = [obs(i) for i in range(25)] + [obs(i, face=False) for i in range(25, 75)] + [
        obs(i) for i in range(75, 125)]
    ev = run(mon, seq)
    kinds = [(e.kind, dict(e.data)["state"]) for e in ev]
    assert kinds == [("quality.no_face", "begin"), ("quality.no_face", "end")]
    end = dict(ev[1].data)
    assert end["start"] == pytest.approx(1.0)
    assert end["end"] == pytest.approx(74 / FPS)
    s = mon.summary()
    assert s.value == pytest.approx(50 / 125)
    assert len(s.segments) == 1 and s.segments[0].start == pytest.approx(1.0)
    assert [r.kind for r in mon.ranges()] == ["no_face"]


def test_short_dropout_is_debounced():
    mon = QualityMonitor(QualityOptions(min_duration_s=0.5))
    seq = [obs(i) for i in range(20)] + [obs(i, face=False) for i in range(20, 25)] + [
        obs(i) for i in range(25, 60)]
    assert run(mon, seq) == []
    assert mon.summary().value == pytest.approx(5 / 60)  # still counted as unusable frames


def test_dark_small_blurred_out_of_frame_and_several_faces():
    mon = QualityMonitor()
    seq = ([obs(i, brightness=15) for i in range(0, 30)]
           + [obs(i, size=30) for i in range(30, 60)]
           + [obs(i, sharpness=1.0) for i in range(60, 90)]
           + [obs(i, inside=0.5) for i in range(90, 120)]
           + [obs(i, faces=3) for i in range(120, 150)]
           + [obs(i) for i in range(150, 200)])
    ev = run(mon, seq)
    begun = [e.kind for e in ev if dict(e.data)["state"] == "begin"]
    assert begun == ["quality.dark", "quality.small", "quality.blurred", "quality.out_of_frame",
                     "quality.several_faces"]
    ended = [e.kind for e in ev if dict(e.data)["state"] == "end"]
    assert sorted(ended) == sorted(begun)
    # several faces does not make a frame unusable
    assert mon.summary().value == pytest.approx(120 / 200)


def test_open_range_is_listed_and_reset_forgets():
    mon = QualityMonitor()
    run(mon, [obs(i, face=False) for i in range(40)])
    r = mon.ranges()
    assert len(r) == 1 and r[0].kind == "no_face" and r[0].end is None
    mon.reset()
    assert mon.ranges() == [] and mon.summary().value is None


def test_quality_computed_from_image_when_tracker_leaves_it_out():
    dark = np.full((480, 640, 3), 10, np.uint8)
    q = frame_quality(obs(0, image=dark, box=(600, 100, 100, 100)))
    assert q is not None
    assert q.brightness == pytest.approx(10.0)
    assert q.sharpness == pytest.approx(0.0)
    assert q.inside == pytest.approx(0.4)
    mon = QualityMonitor()
    ev = run(mon, [obs(i, image=dark, box=(600, 100, 100, 100)) for i in range(30)])
    assert {e.kind for e in ev} == {"quality.dark", "quality.blurred", "quality.out_of_frame"}


def test_bad_options_raise_config_error():
    with pytest.raises(ConfigError):
        QualityOptions(min_size_px=-1)
    with pytest.raises(ConfigError):
        QualityOptions(min_brightness=200, max_brightness=100)


def test_session_collects_quality_events():
    from liveness import Session

    class Blind:
        def process(self, image, t, frame_index=-1):
            return FaceObservation(t, frame_index, image.shape[1], image.shape[0], False, 0)

        def reset(self):
            pass

    s = Session(Blind(), [QualityMonitor()])
    img = np.zeros((48, 64, 3), np.uint8)
    for i in range(30):
        s.process(img, i / FPS)
    assert [e.kind for e in s.events] == ["quality.no_face"]
    assert s.signals()["quality"].value == 1.0
