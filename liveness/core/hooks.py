"""Progress and timing hooks: one callable receives every stage timing and progress step."""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Hook", "HookEvent", "TimingHook"]


@dataclass(frozen=True)
class HookEvent:
    """``stage`` is "decode", "track", an analyser name, or "frame" (one frame done).
    ``t`` is the frame timestamp (s), ``ms`` the stage's wall time; ``completed``/``total``
    count frames for progress bars (``total`` None when unknown, e.g. live)."""

    stage: str
    t: float
    ms: float
    completed: int | None = None
    total: int | None = None


Hook = Callable[[HookEvent], None]


class TimingHook:
    """Accumulates per-stage wall time (flat float arrays: 8 bytes a stage and frame, so an
    hour-long review keeps its timings in a few MB); usable alone or chained to another hook."""

    def __init__(self, then: Hook | None = None) -> None:
        self.then = then
        self.ms: dict[str, array[float]] = {}

    def __call__(self, ev: HookEvent) -> None:
        if ev.stage != "frame":
            a = self.ms.get(ev.stage)
            if a is None:
                a = self.ms[ev.stage] = array("d")
            a.append(ev.ms)
        if self.then is not None:
            self.then(ev)

    def to_dict(self) -> dict[str, Any]:
        import numpy as np

        return {
            k: {"n": len(v), "median_ms": round(float(np.median(v)), 3), "total_ms": round(float(np.sum(v)), 1)}
            for k, v in self.ms.items()
        }
