"""Video file frame source through PyAV: any container/codec FFmpeg reads, rotation metadata
honoured, timestamps from the stream (variable frame rate safe)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import InputError
from liveness.core.files import file_sha256
from liveness.core.image import fit_size

__all__ = ["VideoFrame", "VideoInfo", "VideoSource", "file_sha256", "open_video"]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video file. ``width``/``height`` are the file's own frame
    size in display orientation (after rotation); ``frame_width``/``frame_height`` the size of
    the frames a :class:`VideoSource` yields (smaller when ``max_side`` downsizes; 0 = the same)."""

    path: str
    sha256: str
    width: int  # the file's own, after rotation
    height: int
    fps: float  # average frame rate reported by the stream (informative; timestamps rule)
    duration_s: float  # declared by the container (0 if unknown)
    frames: int  # frames in the stream as reported by the container (0 if unknown)
    codec: str
    rotation: int  # degrees counter-clockwise applied to decoded frames
    frame_width: int = 0
    frame_height: int = 0

    def __post_init__(self) -> None:
        if not self.frame_width or not self.frame_height:
            object.__setattr__(self, "frame_width", self.width)
            object.__setattr__(self, "frame_height", self.height)

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


#: Declared frame sizes beyond these are refused (a damaged or hostile header must not make the
#: decoder allocate gigabytes): larger than 8K on a side or 40 megapixels.
MAX_SIDE = 8192
MAX_PIXELS = 40_000_000


class VideoSource:
    """Iterate the frames of a video file. Use :func:`open_video`.

    ``max_side`` downsizes frames whose longer side exceeds it (keeps aspect); ``stride`` keeps
    every n-th decoded frame. ``start`` / ``end`` (seconds of the stream, ``end`` None = to the
    end) keep only the frames in [start, end): the file is seeked to the keyframe before
    ``start``, decoding stops at ``end``, and timestamps stay the stream's. Timestamps are always the stream's, strictly increasing (frames
    with repeated or missing timestamps are given one just after the previous).

    A file that ends early (cut off while copying or recording) yields the frames it has; after
    a full iteration :attr:`complete` says whether the decoded part reached the declared
    duration (within two frames or 2 %) without a decoding error, and :attr:`decoded_s` /
    :attr:`decoded_frames` how much was decoded.
    """

    def __init__(self, path: str | Path, *, max_side: int | None = None, stride: int = 1,
                 start: float = 0.0, end: float | None = None) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such file")
        if stride < 1:
            raise InputError("stride must be >= 1")
        if not (np.isfinite(start) and start >= 0):
            raise InputError(f"start must be a time >= 0 s, got {start}")
        if end is not None and not (np.isfinite(end) and end > start):
            raise InputError(f"end must be after start ({start} s), got {end}")
        self.max_side = max_side
        self.stride = stride
        self.start = float(start)
        self.end = None if end is None else float(end)
        self.complete: bool | None = None  # known after a full iteration
        self.decoded_s: float | None = None
        self.decoded_frames = 0
        try:
            if self.path.stat().st_size == 0:
                raise InputError(f"{self.path}: the file is empty (0 bytes)")
            container = av.open(str(self.path))
        except InputError:
            raise
        except Exception as exc:  # PyAV raises many FFmpeg error types
            raise InputError(f"{self.path}: not a readable video: {_reason(exc)}") from exc
        try:
            if not container.streams.video:
                raise InputError(f"{self.path}: contains no video stream")
            stream = container.streams.video[0]
            if stream.codec_context is None:
                raise InputError(f"{self.path}: the video stream's codec is unknown or its header is damaged")
            w, h = stream.codec_context.width, stream.codec_context.height
            if not w or not h:
                raise InputError(f"{self.path}: video stream has no frame size")
            if max(w, h) > MAX_SIDE or w * h > MAX_PIXELS:
                raise InputError(f"{self.path}: declared frame size {w}x{h} is beyond what is read "
                                 f"({MAX_SIDE} px a side, {MAX_PIXELS // 10**6} megapixels)")
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
        except InputError:
            raise
        except Exception as exc:  # a damaged header can fail in many ways
            raise InputError(f"{self.path}: not a readable video: {_reason(exc)}") from exc
        finally:
            container.close()
        if rotation % 180:
            w, h = h, w
        fw, fh = fit_size(w, h, max_side)  # the one downscaling rule
        try:
            sha = file_sha256(self.path)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot be read: {_reason(exc)}") from exc
        self.info = VideoInfo(str(self.path), sha, w, h, fps, duration, frames, codec, rotation, fw, fh)

    def __iter__(self) -> Iterator[VideoFrame]:
        return self.frames()

    def frames(self, want: Callable[[float], bool] | None = None,
               sparse: Callable[[float], bool] | None = None) -> Iterator[VideoFrame]:
        """The frames, as iterating does; ``want(t)`` (called for each frame the stride keeps)
        says whether it is yielded: a frame not wanted is decoded but never converted to RGB.
        ``sparse(t)`` says whether the decoder may drop non-reference frames after the one at
        ``t`` (they are then never decoded) until it says no again."""
        import av

        try:
            container = av.open(str(self.path))
        except Exception as exc:  # the file changed since it was opened
            raise InputError(f"{self.path}: not a readable video: {_reason(exc)}") from exc
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base) if stream.time_base else 1.0 / (self.info.fps or 30.0)
            start = stream.start_time if stream.start_time is not None else None
            last_t = -np.inf
            idx = 0
            kept = 0
            step = 1.0 / self.info.fps if self.info.fps else 1 / 30
            broken = False
            ended = False
            ctx = stream.codec_context
            skipping = False
            if self.start > 0:
                if start is None:
                    start = 0
                # to the keyframe at or before ``start``; the frames before it are decoded, not kept
                container.seek(int(start + self.start / tb), stream=stream, backward=True, any_frame=False)
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
                    if t < self.start - 1e-6:
                        continue
                    if self.end is not None and t >= self.end - 1e-6:
                        ended = True
                        break
                    if idx % self.stride == 0 and (want is None or want(float(t))):
                        img = self._convert(frame)
                        yield VideoFrame(img, float(t), idx)
                        kept += 1
                    idx += 1
                    if sparse is not None and sparse(float(t)) != skipping:
                        skipping = not skipping
                        ctx.skip_frame = "NONREF" if skipping else "DEFAULT"
            except (av.error.FFmpegError, ValueError, TypeError, OverflowError) as exc:
                if kept == 0:
                    raise InputError(f"{self.path}: cannot decode the video: {_reason(exc)}") from exc
                broken = True  # a damaged or cut-off file: keep what was decoded
            if kept == 0:
                if self.start > 0 or self.end is not None:
                    raise InputError(f"{self.path}: no video frames between {self.start:g} s and "
                                     f"{'the end' if self.end is None else f'{self.end:g} s'}")
                raise InputError(f"{self.path}: no decodable video frames")
            self.decoded_frames = idx
            self.decoded_s = float(last_t + step)  # the last frame lasts one frame interval
            declared = self.info.duration_s
            if self.end is not None and declared > 0:
                declared = min(declared, self.end)
            short = not ended and declared > 0 and self.decoded_s < declared - max(2 * step, 0.02 * declared)
            self.complete = not (broken or short)
        finally:
            container.close()

    def _convert(self, frame: Any) -> np.ndarray:
        w, h = self.info.frame_width, self.info.frame_height
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


def _reason(exc: BaseException) -> str:
    """A plain reason for an FFmpeg or OS error: no error numbers, no repeated path."""
    import av

    if isinstance(exc, av.error.InvalidDataError):
        return "its data is not in a video format FFmpeg knows, or the file is damaged"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = getattr(exc, "strerror", None)
    if not text:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else type(exc).__name__
    text = str(text).strip()
    return (text[:1].lower() + text[1:])[:200]


def open_video(path: str | Path, *, max_side: int | None = None, stride: int = 1,
               start: float = 0.0, end: float | None = None) -> VideoSource:
    """Open a video file for reading (``start``/``end``: only that part, seconds); raises
    :class:`InputError` when it is not a readable video."""
    return VideoSource(path, max_side=max_side, stride=stride, start=start, end=end)
