"""A lower-latency video jitter buffer for aiortc's receiver.

aiortc's ``JitterBuffer`` treats a video frame as complete only when the first packet of the
*next* frame arrives, which holds every frame back by one frame interval (33 ms at 30 fps).
Senders (browsers, aiortc) set the RTP marker bit on the last packet of each frame, so a
frame whose packets are contiguous from the buffer's origin up to a marked packet is complete
at that packet. :class:`MarkerJitterBuffer` emits it then, and otherwise behaves like the
original (next-timestamp rule, same loss and reordering handling). Audio is untouched.

:func:`install` swaps it into ``aiortc.rtcrtpreceiver`` for receivers created afterwards (a
process-wide change, made by ``liveness serve``'s app unless ``ServeOptions.marker_jitter``
is off).
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "installed"]

_state = {"installed": False}


def _make() -> type:
    from aiortc.jitterbuffer import JitterBuffer, JitterFrame

    class MarkerJitterBuffer(JitterBuffer):
        def _remove_frame(self, sequence_number: int) -> Any:
            if not self._is_video:
                return super()._remove_frame(sequence_number)
            packets: list[Any] = []
            timestamp = None
            origin = self._origin
            assert origin is not None  # frames are removed only once packets arrived
            for count in range(self.capacity):
                packet = self._packets[(origin + count) % self._capacity]
                if packet is None:
                    return None
                if timestamp is None:
                    timestamp = packet.timestamp
                elif packet.timestamp != timestamp:  # completed by the next frame (original rule)
                    frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
                    self.remove(count)
                    return frame
                packets.append(packet)
                if packet.marker:  # the sender marked this frame's last packet
                    frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=timestamp)
                    self.remove(count + 1)
                    return frame
            return None

    return MarkerJitterBuffer


def install() -> None:
    """Use the marker-aware buffer for aiortc receivers created from now on (idempotent)."""
    if _state["installed"]:
        return
    import aiortc.rtcrtpreceiver as rx

    setattr(rx, "JitterBuffer", _make())  # noqa: B010  # the receiver's own name, replaced
    _state["installed"] = True


def installed() -> bool:
    return _state["installed"]
