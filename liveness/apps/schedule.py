"""An analysis schedule for offline review: which decoded frames are analysed.

The every-frame review analyses each decoded frame. A :class:`ScheduleOptions` schedule
analyses ``base_fps`` frames a second and every frame for ``dense_s`` seconds after something
that needs them: the face appears or is lost, the number of faces changes, the head turns or
nods faster than ``turn_deg_s``, the face box moves faster than ``move_per_s`` of its size a
second, tracking confidence drops under ``min_score``, or an analyser reports an event.
Frames that are not analysed are decoded (the codec needs them) but never converted to RGB;
with ``skip_nonref`` the decoder also drops non-reference frames (B-frames) while the schedule
is sparse, so they are not even decoded.

The schedule changes the answers (the analysers see fewer, irregularly spaced frames): it is
off by default (``ReviewOptions.schedule`` None) and ``liveness review --fast`` turns it on.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from liveness.core.errors import ConfigError
from liveness.core.types import FrameResult

__all__ = ["Scheduler", "ScheduleOptions"]


@dataclass(frozen=True)
class ScheduleOptions:
    """See the module. ``base_fps``: analysed frames a second outside dense windows;
    ``dense_s``: length of a dense window (every frame) after a trigger."""

    base_fps: float = 10.0
    dense_s: float = 1.0
    turn_deg_s: float = 60.0
    move_per_s: float = 0.5
    min_score: float = 0.6
    skip_nonref: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.base_fps) and self.base_fps > 0):
            raise ConfigError(f"schedule base_fps must be > 0, got {self.base_fps}")
        for k in ("dense_s", "turn_deg_s", "move_per_s", "min_score"):
            v = getattr(self, k)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"schedule {k} must be >= 0, got {v}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Scheduler:
    """The state of one review's schedule: :meth:`want` per decoded frame (analyse it?),
    :meth:`observe` per analysed frame's result, :meth:`sparse` (may the decoder drop
    non-reference frames now?)."""

    def __init__(self, options: ScheduleOptions) -> None:
        self.options = options
        self._next = -math.inf  # next base-rate time
        self._dense_until = -math.inf
        self._last: tuple[float, bool, int, float, float, float, float, float] | None = None
        self.analysed = 0
        self.dense_frames = 0

    def want(self, t: float) -> bool:
        """Whether the frame at ``t`` is analysed."""
        if t < self._dense_until:
            self.dense_frames += 1
            return True
        if t >= self._next - 1e-6:
            period = 1.0 / self.options.base_fps  # on the base grid; a new grid after a gap
            self._next = self._next + period if t - self._next < period else t + period
            return True
        return False

    def sparse(self, t: float) -> bool:
        """Whether frames around ``t`` may be dropped by the decoder (outside a dense window)."""
        return self.options.skip_nonref and t >= self._dense_until

    def observe(self, res: FrameResult) -> None:
        """Read an analysed frame's result; a trigger opens a dense window from its time."""
        self.analysed += 1
        o = res.obs
        yaw = pitch = cx = cy = size = math.nan
        if o.face and o.pose is not None:
            yaw, pitch = float(o.pose.yaw), float(o.pose.pitch)
        if o.face and o.box is not None:
            x, y, w, h = (float(v) for v in o.box)
            cx, cy, size = x + w / 2, y + h / 2, max(1.0, math.sqrt(max(w * h, 0.0)))
        cur = (float(o.t), bool(o.face), int(o.faces), yaw, pitch, cx, cy, size)
        trig = bool(res.events) or (o.face and float(o.score) < self.options.min_score)
        last = self._last
        if last is not None and not trig:
            dt = max(cur[0] - last[0], 1e-3)
            if cur[1] != last[1] or cur[2] != last[2]:
                trig = True
            elif cur[1]:
                turn = max(abs(cur[3] - last[3]), abs(cur[4] - last[4])) / dt
                move = math.hypot(cur[5] - last[5], cur[6] - last[6]) / (cur[7] * dt)
                trig = (turn > self.options.turn_deg_s) or (move > self.options.move_per_s)
        self._last = cur
        if trig:
            self._dense_until = max(self._dense_until, cur[0] + self.options.dense_s)
