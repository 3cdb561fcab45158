"""Records that keep a long review's memory flat.

:class:`CompactObservations` is a session's per-frame record (what the fusion and the summary
read: face flag, face count, box, score, pose, quality) in flat typed arrays, about 170 bytes a
frame instead of a :class:`FaceObservation` with its landmarks (~7 KB): an hour at 30 fps holds
~18 MB. Items are rebuilt on access, with the values that were appended (no rounding), without
landmarks, image or the other faces' boxes.

:class:`LightObservations` is a live session's record (face flag, counts, score, quality: no box or
pose) in the same way, 47 bytes a frame (score and quality in single precision): an hour-long
call at 15 fps holds ~2.5 MB.

:class:`SpilledRows` keeps a review's timeline rows (JSON objects) in an unnamed temporary file,
one compact JSON line a row, with only the rows' offsets in memory; rows are decoded on access.

:class:`DataclassColumns` keeps an analyser's per-frame dataclass records (floats and small
float arrays) as flat columns: a column comes back as the array ``np.array([getattr(r, name)
for r in records])`` would give, with the same values and dtype.
"""

from __future__ import annotations

import json
import tempfile
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, Generic, TypeVar, overload

import numpy as np

from liveness.core.types import FaceObservation, FaceQuality, HeadPose

__all__ = ["CompactObservations", "DataclassColumns", "LightObservations", "SpilledRows", "trim_before"]

_NAN = float("nan")
_NO_BOXES = np.zeros((0, 4), np.float32)  # shared by the light records
_NO_BOXES.flags.writeable = False
T = TypeVar("T")


def _quality_row(q: FaceQuality | None) -> tuple[float, ...]:
    return (_NAN,) * 4 if q is None else (float(q.size_px), float(q.sharpness), float(q.brightness), float(q.inside))


def trim_before(times: array[float], cut: float, *columns: tuple[array[Any], int]) -> int:
    """Drop the rows of flat ``times`` before ``cut`` and the same rows of each ``(column,
    width)`` (``width`` values a row); returns how many rows went."""
    if not len(times):
        return 0
    view = np.frombuffer(times, np.float64)
    k = int(np.searchsorted(view, cut, side="left"))
    del view  # the array cannot shrink while a view of it exists
    if k:
        del times[:k]
        for col, width in columns:
            del col[: k * width]
    return k


class _Records(Sequence[FaceObservation]):
    """A read-only sequence of observations kept in flat arrays: ``_t`` holds one time a record,
    ``_item(i)`` rebuilds record ``i`` (0 <= i < len)."""

    _t: array[float]

    def __len__(self) -> int:
        return len(self._t)

    @property
    def first_t(self) -> float:
        """The first kept record's time (NaN when empty), without rebuilding it."""
        return self._t[0] if len(self._t) else _NAN

    @overload
    def __getitem__(self, i: int) -> FaceObservation: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[FaceObservation]: ...

    def __getitem__(self, i: int | slice) -> FaceObservation | Sequence[FaceObservation]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("observation index out of range")
        return self._item(i)

    def _item(self, i: int) -> FaceObservation:
        raise NotImplementedError

    def __iter__(self) -> Iterator[FaceObservation]:
        for i in range(len(self)):
            yield self[i]


class CompactObservations(_Records):
    """A read-only sequence of light observations stored as typed arrays (see the module)."""

    def __init__(self) -> None:
        self._t = array("d")
        self._ints = array("l")  # frame_index, width, height, faces, flags (face | redetected<<1)
        self._box = array("f")  # 4 a frame
        self._score = array("d")
        self._pose = array("d")  # yaw, pitch, roll, rvec(3), tvec(3); NaN without a pose
        self._quality = array("d")  # size_px, sharpness, brightness, inside; NaN without

    def append(self, obs: FaceObservation) -> None:
        """Store ``obs``'s face flag, count, box, score, pose and quality."""
        self._t.append(float(obs.t))
        flags = int(bool(obs.face)) | (int(bool(obs.redetected)) << 1) | (int(obs.box is not None) << 2)
        self._ints.extend((int(obs.frame_index), int(obs.width), int(obs.height), int(obs.faces), flags))
        b = obs.box
        self._box.extend((0.0, 0.0, 0.0, 0.0) if b is None else (float(v) for v in np.asarray(b).reshape(4)))
        self._score.append(float(obs.score))
        p = obs.pose
        if p is None:
            self._pose.extend((_NAN,) * 9)
        else:
            self._pose.extend((float(p.yaw), float(p.pitch), float(p.roll),
                               *(float(v) for v in np.asarray(p.rvec).reshape(3)),
                               *(float(v) for v in np.asarray(p.tvec).reshape(3))))
        self._quality.extend(_quality_row(obs.quality))

    def _item(self, i: int) -> FaceObservation:
        idx, w, h, faces, flags = self._ints[5 * i: 5 * i + 5]
        pv = self._pose[9 * i: 9 * i + 9]
        pose = None if pv[0] != pv[0] else HeadPose(pv[0], pv[1], pv[2], np.array(pv[3:6]), np.array(pv[6:9]))
        qv = self._quality[4 * i: 4 * i + 4]
        quality = None if qv[0] != qv[0] else FaceQuality(*qv)
        box = np.array(self._box[4 * i: 4 * i + 4], np.float32) if flags & 4 else None
        return FaceObservation(t=self._t[i], frame_index=idx, width=w, height=h, face=bool(flags & 1),
                               faces=faces, box=box, score=self._score[i], pose=pose, quality=quality,
                               redetected=bool(flags & 2))

    def yaw(self) -> np.ndarray:
        """Every stored frame's yaw (NaN without a pose), without rebuilding observations."""
        return np.asarray(self._pose, np.float64).reshape(-1, 9)[:, 0].copy()

    def quality(self) -> np.ndarray:
        """(n, 4) size_px, sharpness, brightness, inside (NaN without a quality)."""
        return np.asarray(self._quality, np.float64).reshape(-1, 4).copy()

    def faces(self) -> np.ndarray:
        """(n, 2) int: face flag, face count."""
        ints = np.asarray(self._ints, np.int64).reshape(-1, 5)
        return np.stack([ints[:, 4] & 1, ints[:, 3]], axis=1)


class LightObservations(_Records):
    """A read-only sequence of a live session's light observations (see the module): items come
    back as the light record a live session kept before (time, index, size, face flag, count,
    score, quality, redetected; no box, pose, landmarks or other boxes), with the same values
    but for the score and the quality's four numbers, which are kept in single precision."""

    def __init__(self) -> None:
        self._t = array("d")
        self._index = array("q")
        self._size = array("i")  # width, height
        self._faces = array("H")
        self._flags = array("B")  # face | redetected << 1 | has quality << 2
        # single precision: a live verdict reads these against thresholds, never bit for bit
        self._score = array("f")
        self._quality = array("f")  # size_px, sharpness, brightness, inside; NaN without

    def append(self, obs: FaceObservation) -> None:
        """Store ``obs``'s time, index, size, face flag, count, score and quality."""
        q = obs.quality
        self._t.append(float(obs.t))
        self._index.append(int(obs.frame_index))
        self._size.extend((int(obs.width), int(obs.height)))
        self._faces.append(min(int(obs.faces), 0xFFFF))
        self._flags.append(int(bool(obs.face)) | (int(bool(obs.redetected)) << 1) | (int(q is not None) << 2))
        self._score.append(float(obs.score))
        self._quality.extend(_quality_row(q))

    def drop_before(self, t: float) -> int:
        """Forget the records before time ``t`` (a live session's horizon); returns how many."""
        return trim_before(self._t, t, (self._index, 1), (self._size, 2), (self._faces, 1), (self._flags, 1),
                           (self._score, 1), (self._quality, 4))

    def _item(self, i: int) -> FaceObservation:
        flags = self._flags[i]
        quality = FaceQuality(*self._quality[4 * i: 4 * i + 4]) if flags & 4 else None
        return FaceObservation(t=self._t[i], frame_index=self._index[i], width=self._size[2 * i],
                               height=self._size[2 * i + 1], face=bool(flags & 1), faces=self._faces[i],
                               score=self._score[i], quality=quality, other_boxes=_NO_BOXES,
                               redetected=bool(flags & 2))


class SpilledRows(Sequence[Mapping[str, Any]]):
    """JSON rows kept in an unnamed temporary file (see the module). ``append`` a row (a
    JSON-able mapping); read it back by index or in order; :meth:`lines` gives the stored
    compact JSON text of each row (for a streamed document)."""

    def __init__(self, rows: Sequence[Mapping[str, Any]] = ()) -> None:
        self._f = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the rows
        self._off = array("q", [0])
        self._end = 0
        for r in rows:
            self.append(r)

    def append(self, row: Mapping[str, Any]) -> None:
        data = json.dumps(row, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode("utf-8")
        self._f.seek(self._end)
        self._f.write(data)
        self._end += len(data)
        self._off.append(self._end)

    def __len__(self) -> int:
        return len(self._off) - 1

    def _raw(self, i: int) -> bytes:
        a, b = self._off[i], self._off[i + 1]
        self._f.seek(a)
        return self._f.read(b - a)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("row index out of range")
        return json.loads(self._raw(i))  # type: ignore[no-any-return]

    def lines(self, chunk: int = 1 << 20) -> Iterator[str]:
        """The rows' compact JSON texts, in order, read in chunks of about ``chunk`` bytes."""
        self._f.flush()
        n = len(self)
        i = 0
        while i < n:
            j = i
            while j < n and self._off[j + 1] - self._off[i] < chunk:
                j += 1
            j = max(j, i + 1)
            self._f.seek(self._off[i])
            buf = self._f.read(self._off[j] - self._off[i])
            base = self._off[i]
            for k in range(i, j):
                yield buf[self._off[k] - base: self._off[k + 1] - base].decode("utf-8")
            i = j

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        for line in self.lines():
            yield json.loads(line)

    def close(self) -> None:
        self._f.close()

    def __del__(self) -> None:
        try:
            self._f.close()
        except Exception:  # interpreter shutdown
            pass


class DataclassColumns(Sequence[T], Generic[T]):
    """Records of dataclass ``cls`` (fields: Python floats, or float NumPy arrays of one shape a
    field) stored as float64 columns plus each array's dtype; see the module. The fields named
    in ``float32`` are stored in single precision instead (half the memory; values rounded to
    float32, so only where that rounding does not matter). The fields named in ``omit`` are not
    kept at all: they come back as NaN (an array field as a float64 array of NaN of its shape),
    for fields no reader of these records uses."""

    def __init__(self, cls: type[T], float32: Sequence[str] = (), omit: Sequence[str] = ()) -> None:
        self._cls = cls
        self._names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
        unknown = (set(float32) | set(omit)) - set(self._names)
        if unknown:
            raise ValueError(f"float32 / omit: {sorted(unknown)} are not fields of {cls.__name__}")
        self._omit = frozenset(omit)
        self._cols: dict[str, array[float]] = {k: array("f" if k in float32 else "d") for k in self._names
                                               if k not in self._omit}
        self._shape: dict[str, tuple[int, ...] | None] = {}
        # an array field's dtype: one code for the column while every record's is the same
        # (``_code``), a code a record (``_codes``) from the first record whose dtype differs
        self._code: dict[str, int] = {}
        self._codes: dict[str, array[int]] = {}
        self._dtypes: list[np.dtype[Any]] = []
        self._n = 0

    def append(self, rec: T) -> None:
        vals = [getattr(rec, k) for k in self._names]
        for k, v in zip(self._names, vals, strict=True):  # check all before storing any
            shape = v.shape if isinstance(v, np.ndarray) else None
            if isinstance(v, np.ndarray) and v.dtype.kind != "f":
                raise TypeError(f"{k}: only float arrays are stored, got {v.dtype}")
            if k in self._shape and self._shape[k] != shape:
                raise ValueError(f"{k}: shape {shape}, the column's is {self._shape[k]}")
        for k, v in zip(self._names, vals, strict=True):
            if isinstance(v, np.ndarray):
                self._shape.setdefault(k, v.shape)
                if k in self._omit:
                    continue
                if v.dtype not in self._dtypes:
                    self._dtypes.append(v.dtype)
                self._note_code(k, self._dtypes.index(v.dtype))
                self._cols[k].extend(v.astype(np.float64).ravel().tolist())
            else:
                self._shape.setdefault(k, None)
                if k not in self._omit:
                    self._cols[k].append(float(v))
        self._n += 1

    def _note_code(self, k: str, code: int) -> None:
        """Record that record ``self._n`` of array field ``k`` has dtype ``code``."""
        if k in self._codes:
            self._codes[k].append(code)
        elif k not in self._code:
            self._code[k] = code
        elif self._code[k] != code:  # the first record of another dtype: a code a record from now
            self._codes[k] = array("B", [self._code[k]] * self._n + [code])

    def _dtype(self, k: str, i: int) -> np.dtype[Any]:
        return self._dtypes[self._codes[k][i] if k in self._codes else self._code[k]]

    def first(self, name: str) -> float:
        """The first record's scalar field ``name`` (NaN when empty), without a whole column."""
        if name in self._omit:
            return _NAN
        col = self._cols[name]
        return float(col[0]) if self._n and self._shape.get(name) is None else _NAN

    def drop_first(self, k: int) -> None:
        """Forget the first ``k`` records (a live analyser's horizon)."""
        k = max(0, min(int(k), self._n))
        if not k:
            return
        for name, col in self._cols.items():
            shape = self._shape.get(name)
            del col[: k * (int(np.prod(shape)) if shape else 1)]
        for codes in self._codes.values():
            del codes[:k]
        self._n -= k

    def column(self, name: str) -> np.ndarray:
        """Every record's ``name``, stacked (the dtype NumPy would give the list of them)."""
        shape = self._shape.get(name)
        if name in self._omit:
            return np.full((self._n, *(shape or ())), np.nan)
        col = np.array(self._cols[name], np.float64)  # a copy: a view would pin the array's size
        if shape is None:
            return col
        col = col.reshape((self._n, *shape))
        if name in self._codes:
            codes = set(self._codes[name])
        elif name in self._code and self._n:
            codes = {self._code[name]}
        else:
            return col
        dt = np.result_type(*(self._dtypes[c] for c in codes))
        return col.astype(dt)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[T]: ...

    def __getitem__(self, i: int | slice) -> T | Sequence[T]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("record index out of range")
        kw: dict[str, Any] = {}
        for k in self._names:
            shape = self._shape.get(k)
            if k in self._omit:
                kw[k] = _NAN if shape is None else np.full(shape, np.nan)
            elif shape is None:
                kw[k] = self._cols[k][i]
            else:
                m = int(np.prod(shape))
                kw[k] = np.array(self._cols[k][i * m: (i + 1) * m], self._dtype(k, i)).reshape(shape)
        return self._cls(**kw)

    def __iter__(self) -> Iterator[T]:
        for i in range(self._n):
            yield self[i]

    def clear(self) -> None:
        for col in self._cols.values():
            del col[:]
        self._shape.clear()
        self._code.clear()
        self._codes.clear()
        self._dtypes.clear()
        self._n = 0
