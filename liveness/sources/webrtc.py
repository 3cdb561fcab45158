"""The WebRTC side of a live session's input: the newest-frame slot between the network and
the analysis, and the adapter from an aiortc/PyAV frame to an RGB image and a timestamp.

Media path (aiortc issue #1192): ``recv()`` is drained by a consumer task that only stores the
newest frame in a one-slot mailbox (replacing a frame that was not analysed yet counts as a
drop); a separate worker takes the newest frame and runs the analysis on a thread pool. A slow
analysis therefore never builds a queue or stalls the network side.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from liveness.core.errors import InputError

__all__ = ["FrameSlot", "frame_rgb", "frame_time"]


class FrameSlot:
    """A one-item mailbox: :meth:`put` replaces the held item; :meth:`get` waits for one."""

    def __init__(self) -> None:
        self._item: Any = None
        self._event = asyncio.Event()
        self._closed = False

    def put(self, item: Any) -> bool:
        """Store ``item``; True when an unconsumed item was replaced (a drop)."""
        dropped = self._item is not None
        self._item = item
        self._event.set()
        return dropped

    async def get(self) -> Any:
        """The newest item, or None once closed."""
        while self._item is None:
            if self._closed:
                return None
            self._event.clear()
            await self._event.wait()
        item, self._item = self._item, None
        return item

    def close(self) -> None:
        self._closed = True
        self._event.set()


def frame_time(frame: Any, recv_wall: float, started_wall: float | None) -> float:
    """The frame's presentation time (s); without one, its arrival time since the start."""
    t = frame.time
    if t is None:
        t = recv_wall - (started_wall or recv_wall)
    return float(t)


def frame_rgb(frame: Any) -> np.ndarray:
    """The frame as an RGB uint8 array; a frame PyAV cannot convert is an :class:`InputError`
    (the boundary where PyAV's errors become ours)."""
    import av

    try:
        return np.asarray(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, ValueError) as exc:
        raise InputError(f"cannot convert the received frame: {exc}") from exc
