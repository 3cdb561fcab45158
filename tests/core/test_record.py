"""The flat records of a long review: compact observations and timeline rows on disk."""

from __future__ import annotations

import json
import math
from dataclasses import astuple

import numpy as np

from liveness.core.record import CompactObservations, SpilledRows
from liveness.core.review import Review
from liveness.core.types import FaceObservation, FaceQuality, HeadPose, Verdict


def _obs(i: int, face: bool = True) -> FaceObservation:
    if not face:
        return FaceObservation(t=i / 30, frame_index=i, width=640, height=480, face=False, faces=0)
    return FaceObservation(
        t=i / 30, frame_index=i, width=640, height=480, face=True, faces=1 + i % 2,
        box=np.array([10.5 + i, 20.25, 100.0, 120.0], np.float32), landmarks=np.ones((478, 3), np.float32),
        score=0.9 - i / 1000, pose=HeadPose(-3.0 + i, 1.5, 0.25, np.array([0.1, 0.2, 0.3]), np.array([1.0, -2.0, 60.0])),
        quality=FaceQuality(109.54451, 312.123456789, 140.0 + i / 7, 1.0), redetected=i == 2,
    )


def test_compact_observations_give_back_the_values_appended_without_landmarks():
    rec = CompactObservations()
    given = [_obs(i, face=i != 3) for i in range(6)]
    for o in given:
        rec.append(o)
    assert len(rec) == 6 and len(list(rec)) == 6
    for a, b in zip(given, rec, strict=True):
        assert (a.t, a.frame_index, a.width, a.height, a.face, a.faces, a.redetected) == (
            b.t, b.frame_index, b.width, b.height, b.face, b.faces, b.redetected)
        assert b.landmarks is None and b.image is None
        if a.face:
            assert np.array_equal(a.box, b.box) and b.box.dtype == np.float32 and a.score == b.score
            assert a.quality == b.quality  # exact, not rounded
            assert (a.pose.yaw, a.pose.pitch, a.pose.roll) == (b.pose.yaw, b.pose.pitch, b.pose.roll)
            assert np.array_equal(a.pose.rvec, b.pose.rvec) and np.array_equal(a.pose.tvec, b.pose.tvec)
        else:
            assert b.box is None and b.pose is None and b.quality is None
    assert rec[-1].frame_index == 5 and [o.frame_index for o in rec[1:3]] == [1, 2]
    assert math.isnan(rec.yaw()[3]) and rec.yaw()[4] == 1.0
    assert rec.faces()[:, 0].tolist() == [1, 1, 1, 0, 1, 1]


def test_spilled_rows_read_back_in_order_and_by_index():
    rows = [{"t": i / 10, "face": i % 2 == 0, "box": [1.5, 2.0, 3.0, 4.0], "name": "é"} for i in range(2500)]
    sp = SpilledRows(rows)
    assert len(sp) == 2500 and sp[0] == rows[0] and sp[-1] == rows[-1] and sp[1234] == rows[1234]
    assert list(sp) == rows
    assert [json.loads(x) for x in sp.lines(chunk=300)] == rows  # chunks smaller than many rows


def test_streamed_json_is_the_document():
    rows = SpilledRows([{"t": 0.0, "face": False}, {"t": 0.1, "face": True, "score": float("nan")}])
    rev = Review(source={"path": "x.mp4"}, timeline=rows, signals={}, verdict=Verdict("inconclusive", None))
    text = "".join(rev.json_chunks())
    assert json.loads(text).keys() == rev.to_dict().keys()
    assert json.dumps(json.loads(text), sort_keys=True) == json.dumps(rev.to_dict(), sort_keys=True)
    empty = Review(source={}, timeline=(), signals={}, verdict=Verdict("inconclusive", None))
    assert json.loads("".join(empty.json_chunks()))["timeline"] == []


def test_dataclass_columns_give_the_arrays_a_list_of_records_gives():
    from dataclasses import dataclass

    import pytest

    from liveness.core.record import DataclassColumns

    @dataclass(frozen=True)
    class Rec:
        t: float
        v: np.ndarray

    rng = np.random.default_rng(0)
    recs = [Rec(i / 3, rng.normal(size=2).astype(np.float32 if i % 3 else np.float64)) for i in range(7)]
    col = DataclassColumns(Rec)
    for r in recs:
        col.append(r)
    want = np.array([r.v for r in recs])
    got = col.column("v")
    assert got.dtype == want.dtype and np.array_equal(got, want) and np.array_equal(col.column("t"), [r.t for r in recs])
    only32 = DataclassColumns(Rec)
    for r in recs[1:3]:
        only32.append(r)
    assert only32.column("v").dtype == np.float32 and only32[1].v.dtype == np.float32
    assert len(col) == 7 and col[2].t == recs[2].t and np.array_equal(col[-1].v, recs[-1].v)
    with pytest.raises(ValueError):
        col.append(Rec(1.0, np.zeros(3)))
    assert len(col.column("t")) == 7  # nothing of the refused record was stored
    col.clear()
    assert len(col) == 0 and col.column("t").shape == (0,)


def test_light_observations_give_back_a_live_sessions_light_record():
    from liveness.core.record import LightObservations

    rec = LightObservations()
    given = [_obs(i, face=i != 3) for i in range(6)]
    for o in given:
        rec.append(o)
    assert len(rec) == 6 and len(list(rec)) == 6
    for a, b in zip(given, rec, strict=True):
        assert (a.t, a.frame_index, a.width, a.height, a.face, a.faces, a.redetected) == (
            b.t, b.frame_index, b.width, b.height, b.face, b.faces, b.redetected)
        assert b.score == np.float32(a.score)  # score and quality in single precision
        assert (b.quality is None) == (a.quality is None)
        if a.quality is not None:
            assert astuple(b.quality) == tuple(float(np.float32(v)) for v in astuple(a.quality))
        assert b.box is None and b.pose is None and b.landmarks is None and b.other_boxes.shape == (0, 4)
    assert rec[-1].frame_index == 5 and [o.frame_index for o in rec[1:3]] == [1, 2]


def test_dataclass_columns_in_single_precision():
    from dataclasses import dataclass

    import pytest

    from liveness.core.record import DataclassColumns

    @dataclass(frozen=True)
    class Rec:
        t: float
        v: np.ndarray

    col = DataclassColumns(Rec, float32=("v",))
    for i in range(5):
        col.append(Rec(1000.0 + i / 3, np.array([i / 3, 0.1])))
    assert col.column("t").tolist() == [1000.0 + i / 3 for i in range(5)]  # exact
    v = col.column("v")
    assert v.dtype == np.float64 and np.allclose(v[:, 0], np.arange(5) / 3, atol=1e-7)
    assert v[1, 0] != 1 / 3 and col[1].v[0] == np.float32(1 / 3)
    with pytest.raises(ValueError):
        DataclassColumns(Rec, float32=("w",))


def test_dataclass_columns_leave_out_omitted_fields_and_give_them_back_as_nan():
    from dataclasses import dataclass

    import pytest

    from liveness.core.record import DataclassColumns

    @dataclass(frozen=True)
    class Rec:
        t: float
        a: float
        v: np.ndarray
        w: np.ndarray

    col = DataclassColumns(Rec, float32=("v",), omit=("a", "w"))
    for i in range(4):
        col.append(Rec(i / 3, 10.0 + i, np.array([i, -i], np.float32), np.array([1.0, 2.0, 3.0])))
    assert set(col._cols) == {"t", "v"}  # nothing of the omitted fields is stored
    assert np.isnan(col.column("a")).all() and col.column("a").shape == (4,)
    assert col.column("w").shape == (4, 3) and np.isnan(col.column("w")).all()
    assert math.isnan(col.first("a")) and col.first("t") == 0.0
    r = col[2]
    assert math.isnan(r.a) and r.w.shape == (3,) and np.isnan(r.w).all() and r.v.tolist() == [2.0, -2.0]
    assert col.column("v").dtype == np.float32 and not col._codes  # one dtype: no code a record
    col.drop_first(3)
    assert len(col) == 1 and col.column("t").tolist() == [1.0] and col.column("w").shape == (1, 3)
    with pytest.raises(ValueError):
        DataclassColumns(Rec, omit=("nope",))
