"""aiortc's receiver, tuned for ``liveness serve``: a lower-latency video jitter buffer and a
cheaper VP8 decoder.

aiortc's ``JitterBuffer`` treats a video frame as complete only when the first packet of the
*next* frame arrives, which holds every frame back by one frame interval (33 ms at 30 fps).
Senders (browsers, aiortc) set the RTP marker bit on the last packet of each frame, so a
frame whose packets are contiguous from the buffer's origin up to a marked packet is complete
at that packet. :class:`MarkerJitterBuffer` emits it then, and otherwise behaves like the
original (next-timestamp rule, same loss and reordering handling). Audio is untouched.

:func:`install` swaps it into ``aiortc.rtcrtpreceiver`` for receivers created afterwards (a
process-wide change, made by ``liveness serve``'s app unless ``ServeOptions.marker_jitter``
is off).

:func:`install_vp8_decoder` has the receivers decode VP8 with FFmpeg's own decoder, single
threaded, instead of aiortc's libvpx one: the same pictures (bit for bit on the benchmark's
640x480 stream), about two thirds of the CPU (0.50 vs 0.80 ms a frame). Made by the app unless
``ServeOptions.ffmpeg_vp8`` is off; where PyAV's FFmpeg has no ``vp8`` decoder, aiortc's stays.
"""

from __future__ import annotations

from typing import Any

__all__ = ["install", "install_vp8_decoder", "installed", "vp8_decoder_installed"]

_state = {"installed": False, "vp8": False}


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


def _ffmpeg_vp8() -> type | None:
    """aiortc's VP8 decoder class with FFmpeg's ``vp8`` decoder in it, or None without one."""
    import av
    from aiortc.codecs.vpx import Vp8Decoder

    if "vp8" not in av.codecs_available:
        return None

    class FfmpegVp8Decoder(Vp8Decoder):
        """aiortc's :class:`Vp8Decoder` (its ``decode``), FFmpeg's decoder: one thread, since
        each stream has its decoder thread and the sessions share the cores."""

        def __init__(self) -> None:
            self.codec = av.CodecContext.create("vp8", "r")
            self.codec.thread_count = 1

    return FfmpegVp8Decoder


def install_vp8_decoder() -> bool:
    """Decode VP8 with FFmpeg's decoder in aiortc receivers' decoder threads from now on
    (idempotent); False, and aiortc's libvpx decoder kept, where FFmpeg has none."""
    if _state["vp8"]:
        return True
    cls = _ffmpeg_vp8()
    if cls is None:
        return False
    import aiortc.rtcrtpreceiver as rx

    original = rx.get_decoder

    def get_decoder(codec: Any) -> Any:
        if codec.mimeType.lower() == "video/vp8":
            return cls()
        return original(codec)

    setattr(rx, "get_decoder", get_decoder)  # noqa: B010  # the decoder thread's own name, replaced
    _state["vp8"] = True
    return True


def vp8_decoder_installed() -> bool:
    return _state["vp8"]
