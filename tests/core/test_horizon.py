"""A live horizon bounds what a session keeps and loses no evidence (issue 18, the soak).

A live call may last hours; its analysers keep about the last ``horizon_s`` seconds of per-frame
history and fold what is older into segments, peaks and counts. These tests build the series
and the sessions in code.
"""

from __future__ import annotations

import numpy as np
import pytest

from liveness import ConfigError, Score, ScoreSeries, Segment, Session
from liveness.core.analyser import MAX_FOLDED_SEGMENTS, runs_above, thin_segments
from liveness.core.record import DataclassColumns, LightObservations, trim_before
from liveness.signals.face_slip import SlipFrame
from liveness.signals.quality import QualityMonitor
from tests.core.test_live_memory import LoopTracker
from tests.signals.test_face_slip import Clip

DT = 0.1


def _scores(n: int, high: list[tuple[float, float]], seed: int = 0) -> list[Score]:
    """``n`` scores ``DT`` s apart: low noise, 0.9 inside each (start, end) of ``high``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        t = i * DT
        v = 0.9 if any(a <= t <= b for a, b in high) else float(rng.uniform(0.0, 0.3))
        out.append(Score("x", t, v))
    return out


def test_a_bounded_series_keeps_its_horizon_and_the_segments_and_peak_of_the_whole_call():
    high = [(10.0, 20.0), (55.0, 65.0), (2900.0, 2930.0)]
    bounded, full = ScoreSeries("x"), ScoreSeries("x")
    longest = 0
    for s in _scores(30_000, high):  # 3,000 s
        bounded.add(s, horizon_s=100.0)
        full.add(s)
        longest = max(longest, len(bounded))
    assert longest <= 1.25 * 100.0 / DT + 2  # never more than 1.25 horizons of scores
    assert len(full) == 30_000 and bounded.folded + len(bounded) == 30_000
    segs_b, segs_f = bounded.segments("r"), full.segments("r")
    assert len(segs_f) == 3
    assert [(round(g.start, 1), round(g.end, 1), g.reason) for g in segs_b] == [
        (round(g.start, 1), round(g.end, 1), g.reason) for g in segs_f
    ]
    sb, sf = bounded.summary(), full.summary()
    det = dict(sb.details)
    assert det["scores_total"] == 30_000 and det["horizon_s"] == 100.0
    # a bounded (live) series keeps its values in single precision
    assert det["earlier_max"] == pytest.approx(0.9, abs=1e-6)
    assert det["max"] == pytest.approx(dict(sf.details)["max"], abs=1e-6)
    assert sb.n == len(bounded) < sf.n
    # the clip value now describes the last horizon: the late segment is 30 s of the 100-125 s kept
    assert sb.value == pytest.approx(0.9, abs=1e-6) and sf.value < 0.5
    assert bounded._v.itemsize == 4 and full._v.itemsize == 8 and full.values[full.times.searchsorted(15.0)] == 0.9  # offline: exact
    bounded.reset()
    bounded.add(next(iter(_scores(1, []))))
    assert bounded._v.itemsize == 8  # reset: a new series, offline again until a horizon is given


def test_a_segment_across_a_fold_stays_one_segment():
    s = ScoreSeries("x")
    for sc in _scores(6_000, [(30.0, 200.0)]):  # one long run across several folds
        s.add(sc, horizon_s=40.0)
    segs = s.segments()
    assert (
        len(segs) == 1
        and segs[0].start == pytest.approx(30.0, abs=0.6)
        and segs[0].end == pytest.approx(200.0, abs=0.6)
    )


def test_without_a_horizon_a_series_is_unchanged():
    a, b = ScoreSeries("x"), ScoreSeries("x")
    for sc in _scores(3_000, [(50.0, 60.0)]):
        a.add(sc)
        b.add(sc, None)
    assert a.summary() == b.summary() and a.folded == 0
    assert "scores_total" not in dict(a.summary().details)


def test_thinning_folded_segments_joins_across_the_smallest_gaps():
    segs = [Segment(float(i), i + 0.5, 0.6, "r") for i in range(8)]
    segs[4] = Segment(40.0, 40.5, 0.9, "r")  # far from its neighbours: its gaps are the largest
    segs[5:] = [Segment(41.0 + i, 41.5 + i, 0.6, "r") for i in range(3)]
    thin_segments(segs)
    assert len(segs) == 4
    assert all(a.end < b.start for a, b in zip(segs, segs[1:], strict=False))
    assert segs[0].start == 0.0 and segs[-1].end == 43.5 and max(g.value for g in segs) == 0.9
    many = [Segment(float(i), i + 0.1, 0.7, "r") for i in range(3 * MAX_FOLDED_SEGMENTS)]
    s = ScoreSeries("x")
    s._folded = many  # what the fold does when the list grows past its cap
    thin_segments(s._folded)
    assert len(s._folded) == 3 * MAX_FOLDED_SEGMENTS - (3 * MAX_FOLDED_SEGMENTS) // 2


def test_flat_records_drop_their_oldest_rows():
    rec = LightObservations()
    tracker = LoopTracker(Clip(n=5))
    for i in range(20):
        rec.append(tracker.process(None, float(i), i))
    assert rec.drop_before(5.0) == 5 and len(rec) == 15 and rec.first_t == 5.0
    assert (
        rec[0].frame_index == 5 and rec[-1].frame_index == 19 and rec[0].quality == rec[-1].quality
    )
    cols = DataclassColumns(SlipFrame, float32=("flow_slip",))
    for i in range(6):
        v = np.full(2, float(i))
        cols.append(SlipFrame(float(i), i * 0.5, 0.1, 0.0, v, v, 0.2, v, np.full(4, float(i))))
    cols.drop_first(4)
    assert len(cols) == 2 and cols.first("t") == 4.0
    assert cols.column("thumb_corr").tolist() == [[4.0] * 4, [5.0] * 4] and cols.column(
        "flow_slip"
    ).tolist() == [2.0, 2.5]
    from array import array

    t, v = array("d", [0.0, 1.0, 2.0, 3.0]), array("d", [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    assert (
        trim_before(t, 2.0, (v, 2)) == 2
        and list(t) == [2.0, 3.0]
        and list(v) == [2.0, 2.0, 3.0, 3.0]
    )
    assert trim_before(array("d"), 1.0) == 0


def test_a_live_session_record_and_quality_keep_their_horizon_and_whole_call_counts():
    q = QualityMonitor()
    s = Session(LoopTracker(Clip(n=40)), [q], mode="live", horizon_s=20.0)
    image = np.zeros((8, 8, 3), np.uint8)
    for i in range(1_000):  # 100 s
        s.process(image, i * DT)
    assert len(s.observations) <= 1.25 * 20.0 / DT + 2 and s.frames == 1_000
    sig = s.signals()["quality"]
    assert sig.n == 1_000 and sig.value is not None  # fractions of the whole call
    video = Session(LoopTracker(Clip(n=40)), [QualityMonitor()])
    for i in range(1_000):
        video.process(image, i * DT)
    assert len(video.observations) == 1_000 and video.signals()["quality"] == sig


@pytest.mark.parametrize("h", [0.0, 5.0, float("inf"), float("nan")])
def test_a_horizon_must_be_a_finite_span_of_at_least_ten_seconds(h):
    with pytest.raises(ConfigError):
        Session(LoopTracker(Clip(n=5)), [], mode="live", horizon_s=h)


def _medians(t: np.ndarray, v: np.ndarray, half: float) -> np.ndarray:
    return np.array([np.median(v[(t >= ti - half) & (t <= ti + half)]) for ti in t])


def test_moving_medians_kept_once_their_window_closed_are_those_computed_afresh():
    """A summary read while the scores come (as a live snapshot does) gives the same moving
    medians as one computed over all the scores at the end, and computes only the new ones."""
    rng = np.random.default_rng(3)
    s = ScoreSeries("x", smooth_s=1.0)
    t = np.cumsum(rng.uniform(0.02, 0.2, 3000))
    v = rng.uniform(0, 1, 3000)
    for i, (ti, vi) in enumerate(zip(t, v, strict=True)):
        s.add(Score("x", float(ti), float(vi)))
        if rng.uniform() < 0.05 or i == len(t) - 1:
            got = s.smoothed()
            want = _medians(t[: i + 1], v[: i + 1], 0.5)
            assert np.array_equal(got, want)
            # what is kept is exactly the scores whose window no later score can enter
            assert len(s._sm) == int(np.sum(t[: i + 1] < t[i] - 0.5))
    assert s.segments() == runs_above(t, _medians(t, v, 0.5), s.flag)


def test_runs_above_walks_only_the_samples_above_and_gives_the_same_runs():
    t = np.arange(20) * 0.1
    v = np.zeros(20)
    v[[2, 3, 5, 12, 13]] = [0.6, 0.9, 0.7, 0.8, 0.55]
    v[8] = np.nan
    segs = runs_above(t, v, 0.5, "r", max_gap=0.25)
    assert [(round(g.start, 2), round(g.end, 2), g.value, g.reason) for g in segs] == [
        (0.2, 0.5, 0.9, "r"), (1.2, 1.3, 0.8, "r")]
    assert runs_above(t, v, 0.5, max_gap=0.15)[0].end == pytest.approx(0.3)  # 0.3 -> 0.5 is a gap
    with pytest.raises(ValueError):
        runs_above(t, v[:-1], 0.5)
