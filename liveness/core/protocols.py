"""The small typed protocols a :class:`~liveness.Session` is composed of (checked once, when the
session is built): the tracker, the fusion, and an optional challenge source."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from liveness.core.types import FaceObservation, Signal, Verdict

__all__ = ["ChallengeSource", "Fusion", "ResultRecord", "Tracker"]


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
