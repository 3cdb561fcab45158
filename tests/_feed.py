"""Feeding analysers (contract v2) one observation at a time in tests, outside a session."""

from __future__ import annotations

from collections.abc import Sequence

from liveness import FaceObservation, Score
from liveness.core.analyser import Analyser, FrameContext
from liveness.core.types import Event


def step(a: Analyser, obs: FaceObservation, scores: Sequence[Score] = ()) -> tuple[list[Score], list[Event]]:
    """One ``update`` with a fresh frame context (``scores``: the frame's earlier scores);
    returns this frame's scores and events."""
    ctx = FrameContext(obs.t)
    ctx.add_scores(scores)
    out = list(a.update(obs, ctx))
    return out, list(ctx.events)


def own(a: Analyser, obs: FaceObservation) -> Score | None:
    """The analyser's own (main-signal) score of this frame, or None."""
    out, _ = step(a, obs)
    return next((s for s in out if s.signal == a.name), None)
