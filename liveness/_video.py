"""Video file frame source through PyAV: any container/codec FFmpeg reads, rotation metadata
honoured, timestamps from the stream (variable frame rate safe)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._errors import InputError

__all__ = ["VideoFrame", "VideoInfo", "VideoSource", "file_sha256", "open_video"]


@dataclass(frozen=True)
class VideoInfo:
    path: str
    sha256: str
    width: int  # after rotation
    height: int
    fps: float  # average frame rate reported by the stream (informative; timestamps rule)
    duration_s: float
    frames: int  # frames in the stream as reported by the container (0 if unknown)
    codec: str
    rotation: int  # degrees counter-clockwise applied to decoded frames

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fps"] = round(self.fps, 3)
        d["duration_s"] = round(self.duration_s, 3)
        return d


@dataclass(frozen=True, eq=False)
class VideoFrame:
    image: np.ndarray  # RGB uint8 (H, W, 3), display orientation
    t: float  # presentation time in seconds from the stream start
    index: int  # decode order index


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class VideoSource:
    """Iterate the frames of a video file. Use :func:`open_video`.

    ``max_side`` downsizes frames whose longer side exceeds it (keeps aspect); ``stride`` keeps
    every n-th decoded frame. Timestamps are always the stream's, strictly increasing (frames
    with repeated or missing timestamps are given one just after the previous).
    """

    def __init__(self, path: str | Path, *, max_side: int | None = None, stride: int = 1) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if stride < 1:
            raise InputError("stride must be >= 1")
        self.max_side = max_side
        self.stride = stride
        try:
            container = av.open(str(self.path))
        except Exception as exc:  # PyAV raises many FFmpeg error types
            raise InputError(f"{self.path}: not a readable video ({_short(exc)})") from exc
        try:
            if not container.streams.video:
                raise InputError(f"{self.path}: contains no video stream")
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            if not w or not h:
                raise InputError(f"{self.path}: video stream has no frame size")
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1e6
            else:
                duration = 0.0
            frames = int(stream.frames or 0)
            if frames == 0 and fps and duration:
                frames = int(round(fps * duration))
            codec = stream.codec_context.name
            rotation = _stream_rotation(container)
        finally:
            container.close()
        if rotation % 180:
            w, h = h, w
        if max_side and max(w, h) > max_side:
            s = max_side / max(w, h)
            w, h = int(round(w * s)) // 2 * 2, int(round(h * s)) // 2 * 2
        self.info = VideoInfo(
            str(self.path), file_sha256(self.path), w, h, fps, duration, frames, codec, rotation
        )

    def __iter__(self) -> Iterator[VideoFrame]:
        import av

        container = av.open(str(self.path))
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base) if stream.time_base else 1.0 / (self.info.fps or 30.0)
            start = stream.start_time if stream.start_time is not None else None
            last_t = -np.inf
            idx = 0
            kept = 0
            step = 1.0 / self.info.fps if self.info.fps else 1 / 30
            try:
                for frame in container.decode(stream):
                    if frame.pts is None:
                        t = last_t + step if np.isfinite(last_t) else 0.0
                    else:
                        if start is None:
                            start = frame.pts
                        t = (frame.pts - start) * tb
                    if t <= last_t:
                        t = last_t + 1e-3
                    last_t = t
                    if idx % self.stride == 0:
                        img = self._convert(frame)
                        yield VideoFrame(img, float(t), idx)
                        kept += 1
                    idx += 1
            except av.error.FFmpegError as exc:
                if kept == 0:
                    raise InputError(f"{self.path}: cannot decode video ({_short(exc)})") from exc
                # a truncated file: keep what was decoded
            if kept == 0:
                raise InputError(f"{self.path}: no decodable video frames")
        finally:
            container.close()

    def _convert(self, frame: Any) -> np.ndarray:
        w, h = self.info.width, self.info.height
        rot = self.info.rotation
        if rot % 180:
            w, h = h, w
        img = frame.to_ndarray(format="rgb24", width=w, height=h)
        if rot:
            img = np.ascontiguousarray(np.rot90(img, k=(rot // 90) % 4))
        return img


def _stream_rotation(container: Any) -> int:
    """Rotation (degrees CCW, multiple of 90) from the first frame's display matrix."""
    try:
        for frame in container.decode(video=0):
            r = int(round((frame.rotation or 0) / 90.0)) * 90 % 360
            return r
    except Exception:
        return 0
    return 0


def _short(exc: BaseException) -> str:
    s = str(exc).strip().splitlines()
    return s[0][:200] if s else type(exc).__name__


def open_video(path: str | Path, *, max_side: int | None = None, stride: int = 1) -> VideoSource:
    """Open a video file for reading; raises :class:`InputError` when it is not a readable video."""
    return VideoSource(path, max_side=max_side, stride=stride)
