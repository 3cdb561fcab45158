"""The small typed protocols a :class:`~liveness.Session` is composed of (checked once, when the
session is built): the tracker, the fusion, and an optional challenge source; and the hand source
the challenge engine asks where a hand lies over the face (:class:`~liveness.HandTracker`, or a
test double)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from liveness.core.types import FaceObservation, Signal, Verdict

__all__ = ["ChallengeSource", "Fusion", "HandLike", "HandSource", "HandsLike", "ResultRecord", "Tracker"]


@runtime_checkable
class Tracker(Protocol):
    """Finds and follows the face: one observation per frame, ``reset`` drops the track."""

    def process(self, image: np.ndarray, t: float, frame_index: int = -1) -> FaceObservation: ...

    def reset(self) -> None: ...


@runtime_checkable
class Fusion(Protocol):
    """Turns the clip-level signals (and the light per-frame record) into a verdict;
    ``describe`` says what it is (parameters, provenance) for the review document."""

    def fuse(self, signals: Mapping[str, Signal], observations: Sequence[FaceObservation]) -> Verdict: ...

    def describe(self) -> dict[str, Any]: ...


class ResultRecord(Protocol):
    """A finished challenge as the review document stores it."""

    def to_dict(self) -> dict[str, Any]: ...


@runtime_checkable
class ChallengeSource(Protocol):
    """An analyser that prompts challenges (the challenge engine, or a test double).
    ``start`` plans a sequence beginning after ``t`` and returns its kinds; ``results`` are the
    finished challenges, in order. Prompts and results are emitted as events."""

    def start(self, t: float, n: int | None = None, kinds: Sequence[str] | None = None) -> list[str]: ...

    def results(self) -> Sequence[ResultRecord]: ...


class HandLike(Protocol):
    """One hand as a hand source reports it: ``landmarks`` (21, 2+) image pixels in MediaPipe's
    hand order (wrist, thumb, index, middle, ring, pinky), ``presence`` 0..1."""

    @property
    def landmarks(self) -> np.ndarray: ...

    @property
    def presence(self) -> float: ...


class HandsLike(Protocol):
    """What one call of a hand source saw: its ``hands``, best first."""

    @property
    def hands(self) -> Sequence[HandLike]: ...


@runtime_checkable
class HandSource(Protocol):
    """Finds hands in a frame (in the window ``region`` (x, y, w, h) when given); ``t`` increases
    from call to call; ``reset`` forgets the previous call. :class:`~liveness.HandTracker` is one."""

    def process(self, image: np.ndarray, t: float, region: tuple[int, int, int, int] | None = None) -> HandsLike: ...

    def reset(self) -> None: ...
