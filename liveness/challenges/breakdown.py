"""Swap-breakdown scoring: how much the other signals rise during a challenge or a natural
episode (head turn, occlusion, blink) against the candidate's own baseline just before it.

``rise = q90(during) - median(before)``, ``breakdown = clip(rise / scale, 0, 1)``; an episode's
breakdown is the largest over signals. A swap that fails at profile or under the hand shows as a
spike against the candidate's own baseline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import numpy as np

from liveness.core.types import Score

__all__ = ["SELF_SIGNALS", "ScoreHistory", "breakdown_scores", "score_items"]

#: the breakdown signals themselves (never scored against each other)
SELF_SIGNALS = frozenset({"challenge_breakdown", "opportunistic_breakdown", "challenge"})


class ScoreHistory:
    """Per-signal (t, value) history over a sliding window of ``keep_s`` seconds."""

    def __init__(self, keep_s: float = 30.0) -> None:
        self.keep_s = keep_s
        self._d: dict[str, deque[tuple[float, float]]] = {}

    def add(self, name: str, t: float, value: float) -> None:
        v = float(value)
        if not np.isfinite(v):
            return
        q = self._d.setdefault(name, deque())
        q.append((float(t), v))
        while q and q[0][0] < t - self.keep_s:
            q.popleft()

    def names(self) -> list[str]:
        return sorted(self._d)

    def window(self, name: str, a: float, b: float) -> np.ndarray:
        """Values with a <= t < b."""
        q = self._d.get(name)
        if not q:
            return np.zeros(0)
        return np.array([v for t, v in q if a <= t < b], np.float64)

    def clear(self) -> None:
        self._d.clear()


def breakdown_scores(hist: ScoreHistory, t0: float, t1: float, baseline_s: float = 2.0,
                     scale: float = 0.3, exclude: Iterable[str] = ()) -> tuple[float | None, tuple[tuple[str, float], ...]]:
    """Breakdown of every signal in ``hist`` over [t0, t1] against [t0 - baseline_s, t0):
    clip((q90(during) - median(before)) / scale, 0, 1); overall = max (None if no signal has
    >= 2 values in both windows)."""
    ex = set(exclude)
    per: list[tuple[str, float]] = []
    for name in hist.names():
        if name in ex or name in SELF_SIGNALS:
            continue
        before = hist.window(name, t0 - baseline_s, t0)
        during = hist.window(name, t0, t1 + 1e-9)
        if len(before) < 2 or len(during) < 2:
            continue
        rise = float(np.quantile(during, 0.9) - np.median(before))
        per.append((name, float(np.clip(rise / scale, 0.0, 1.0))))
    if not per:
        return None, ()
    return max(v for _, v in per), tuple(per)


def score_items(scores: Mapping[str, float] | Iterable[Score]) -> list[tuple[str, float]]:
    if isinstance(scores, Mapping):
        return [(str(k), float(v)) for k, v in scores.items()]
    return [(s.signal, float(s.value)) for s in scores]
