"""``liveness.apps.serve.rtp``: FFmpeg's VP8 decoder in aiortc's receivers gives the pictures
aiortc's libvpx decoder gives."""

from __future__ import annotations

import fractions

import numpy as np
import pytest

pytest.importorskip("aiortc")

import av  # noqa: E402

from liveness.apps.serve import rtp  # noqa: E402


def _vp8_frames(n: int = 20) -> list:
    """A 320x240 VP8 stream as aiortc's receiver hands it to the decoder (one JitterFrame a
    picture): a moving gradient with noise, encoded by libvpx in real-time mode."""
    from aiortc.jitterbuffer import JitterFrame

    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.bit_rate = 320, 240, "yuv420p", 400_000
    enc.time_base = fractions.Fraction(1, 15)
    enc.options = {"deadline": "realtime", "lag-in-frames": "0"}
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:240, 0:320]
    out = []
    for i in range(n):
        img = np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, (xx + yy) % 256], -1).astype(
            np.uint8
        )
        img = np.clip(img + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        f.pts = i
        out += [JitterFrame(data=bytes(p), timestamp=i * 6000) for p in enc.encode(f)]
    out += [JitterFrame(data=bytes(p), timestamp=n * 6000) for p in enc.encode(None)]
    return out


def _decode(decoder, frames) -> list[np.ndarray]:
    return [f.to_ndarray(format="rgb24") for jf in frames for f in decoder.decode(jf)]


def test_ffmpeg_vp8_decoder_gives_libvpx_pictures():
    if "vp8" not in av.codecs_available:
        pytest.skip("this FFmpeg has no vp8 decoder")
    from aiortc.codecs.vpx import Vp8Decoder

    frames = _vp8_frames()
    ours = rtp._ffmpeg_vp8()
    assert ours is not None
    a, b = _decode(Vp8Decoder(), frames), _decode(ours(), frames)
    assert len(a) == len(b) == 20
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


def test_installed_decoder_takes_vp8_only(monkeypatch):
    if "vp8" not in av.codecs_available:
        pytest.skip("this FFmpeg has no vp8 decoder")
    import aiortc.rtcrtpreceiver as rx
    from aiortc.codecs import get_decoder
    from aiortc.codecs.h264 import H264Decoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    monkeypatch.setattr(rx, "get_decoder", get_decoder)  # undone after the test
    monkeypatch.setitem(rtp._state, "vp8", False)
    assert rtp.install_vp8_decoder() and rtp.vp8_decoder_installed()
    assert rtp.install_vp8_decoder(), "idempotent"
    vp8 = rx.get_decoder(
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
    )
    assert vp8.codec.name == "vp8" and vp8.codec.thread_count == 1
    h264 = rx.get_decoder(
        RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=97)
    )
    assert isinstance(h264, H264Decoder)


def test_without_an_ffmpeg_vp8_decoder_aiortc_keeps_its_own(monkeypatch):
    import aiortc.rtcrtpreceiver as rx

    monkeypatch.setattr(av, "codecs_available", set(av.codecs_available) - {"vp8"})
    monkeypatch.setitem(rtp._state, "vp8", False)
    before = rx.get_decoder
    assert rtp.install_vp8_decoder() is False and not rtp.vp8_decoder_installed()
    assert rx.get_decoder is before
