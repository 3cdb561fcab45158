"""Mutated media for fuzzing :func:`liveness.open_video` and :func:`liveness.apps.review.review`
(``benchmarks/fuzz_media.py`` runs thousands; the tests run a hypothesis-chosen subset).

Seeds are tiny clips made on the spot (H.264 MP4, VP8 WebM, MPEG-4 MKV, MJPEG AVI, Y4M) and a PNG
image; each mutation (truncation, bit flips, random overwrites, splices of two seeds, edited
container headers, absurd declared sizes, random bytes, an image renamed as a video) is a pure
function of its seed bytes and an integer seed, so every case can be replayed.
"""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MUTATIONS", "make_seeds", "mutate"]


def _frames(n: int = 8, w: int = 64, h: int = 48) -> list[np.ndarray]:
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[h // 4 : 3 * h // 4, (i * 4) % (w // 2) : (i * 4) % (w // 2) + w // 3] = (220, 190, 160)
        out.append(img)
    return out


def _encode(fmt: str, codec: str, pix: str = "yuv420p") -> bytes:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        s: Any = c.add_stream(codec, rate=15)
        s.width, s.height = 64, 48
        s.pix_fmt = pix
        for img in _frames():
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return buf.getvalue()


def make_seeds() -> dict[str, bytes]:
    """{name with extension: bytes} of the seed files."""
    import cv2

    seeds = {
        "h264.mp4": _encode("mp4", "libx264"),
        "vp8.webm": _encode("webm", "libvpx"),
        "mpeg4.mkv": _encode("matroska", "mpeg4"),
        "mjpeg.avi": _encode("avi", "mjpeg", "yuvj420p"),
    }
    y4m = b"YUV4MPEG2 W64 H48 F15:1 Ip A1:1 C420jpeg\n"
    for img in _frames():
        y4m += b"FRAME\n" + cv2.cvtColor(img, cv2.COLOR_RGB2YUV_I420).tobytes()
    seeds["raw.y4m"] = y4m
    ok, png = cv2.imencode(".png", _frames(1)[0])
    seeds["image.png"] = png.tobytes()
    return seeds


Mutation = Callable[[bytes, random.Random, dict[str, bytes]], bytes]


def _truncate(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    return b[: r.randrange(0, max(1, len(b)))]


def _bitflip(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    a = bytearray(b)
    for _ in range(r.choice((1, 4, 32, 256))):
        i = r.randrange(len(a))
        a[i] ^= 1 << r.randrange(8)
    return bytes(a)


def _overwrite(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    a = bytearray(b)
    i = r.randrange(len(a))
    n = min(len(a) - i, r.choice((4, 64, 1024)))
    a[i : i + n] = r.randbytes(n)
    return bytes(a)


def _splice(b: bytes, r: random.Random, seeds: dict[str, bytes]) -> bytes:
    other = seeds[r.choice(sorted(seeds))]
    return b[: r.randrange(1, len(b))] + other[r.randrange(0, len(other)) :]


def _repeat(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    i = r.randrange(len(b))
    j = min(len(b), i + r.randrange(1, 4096))
    return b[:j] + b[i:j] * r.randrange(1, 50) + b[j:]


_BOXES = (b"ftyp", b"moov", b"mvhd", b"tkhd", b"mdhd", b"stsd", b"stsz", b"stco", b"stts", b"avcC", b"mdat")
_ABSURD = (0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 0x80000000, 0x00010000, 0xFFFF0000)


def _header(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    """Edit fields after an MP4 box name, an EBML / RIFF header or the Y4M header."""
    a = bytearray(b)
    spots = [m.start() for box in _BOXES for m in re.finditer(re.escape(box), b[:65536])]
    spots += [0] if b[:4] in (b"\x1aE\xdf\xa3", b"RIFF") else []
    if not spots:
        spots = [0]
    at = r.choice(spots) + r.choice((-4, 4, 8, 12, 16, 20, 24))
    at = max(0, min(len(a) - 4, at))
    a[at : at + 4] = r.choice(_ABSURD).to_bytes(4, "big")
    return bytes(a)


def _absurd_size(b: bytes, r: random.Random, seeds: dict[str, bytes]) -> bytes:
    """A Y4M whose header declares an absurd frame size or rate over the frames of the seed."""
    w, h = r.choice(((0, 48), (64, 0), (100000, 100000), (65535, 65535), (20000, 20000), (1, 1), (-5, 48), (64, 47)))
    f = r.choice(("15:1", "0:1", "1:0", "1000000:1", "x"))
    body = seeds["raw.y4m"].split(b"\n", 1)[1]
    return f"YUV4MPEG2 W{w} H{h} F{f} Ip A1:1 C420jpeg\n".encode() + body


def _random(b: bytes, r: random.Random, _s: dict[str, bytes]) -> bytes:
    return r.randbytes(r.choice((1, 16, 1000, 100000)))


def _image(b: bytes, r: random.Random, seeds: dict[str, bytes]) -> bytes:
    return seeds["image.png"]


MUTATIONS: dict[str, Mutation] = {
    "truncate": _truncate, "bitflip": _bitflip, "overwrite": _overwrite, "splice": _splice,
    "repeat": _repeat, "header": _header, "absurd_size": _absurd_size, "random": _random,
    "image_as_video": _image,
}


def mutate(seeds: dict[str, bytes], case: int, folder: Path) -> tuple[Path, str]:
    """Write case number ``case`` (deterministic) into ``folder``; returns (path, description)."""
    r = random.Random(case)
    seed = r.choice(sorted(k for k in seeds if k != "image.png"))
    kind = sorted(MUTATIONS)[case % len(MUTATIONS)]
    data = MUTATIONS[kind](seeds[seed], r, seeds)
    ext = seed.rsplit(".", 1)[1] if kind not in ("image_as_video", "absurd_size") else ("mp4" if kind == "image_as_video" else "y4m")
    path = Path(folder) / f"case{case:05d}.{ext}"
    path.write_bytes(data)
    return path, f"{kind} of {seed}"
