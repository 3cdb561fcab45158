"""Helpers for the server tests: a stand-in tracker (tests only), synthetic frames, a running
server on a loopback port, and a pure-Python aiortc client."""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from liveness import Event, FaceObservation, HeadPose, Score, Session, Signal, Verdict
from liveness.core.analyser import FrameContext

PROTOCOL = "liveness.dc/1"


def disc_frame(i: int, w: int = 640, h: int = 480, fps: float = 30.0) -> np.ndarray:
    """A grey frame with a bright disc (the stand-in "face") swinging left and right."""
    img = np.full((h, w, 3), 60, np.uint8)
    cx = int(w / 2 + 0.25 * w * np.sin(2 * np.pi * i / (3 * fps)))
    cy, r = h // 2, h // 6
    yy, xx = np.ogrid[:h, :w]
    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (230, 200, 170)
    return img


class DiscTracker:
    """Stand-in tracker for tests: finds the bright disc; yaw follows its horizontal offset."""

    def __init__(self, delay_s: float = 0.0, fail_after: int | None = None) -> None:
        self.delay_s = delay_s
        self.fail_after = fail_after
        self.calls = 0
        self.resets = 0

    def process(self, image: np.ndarray, t: float, frame_index: int = -1) -> FaceObservation:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise RuntimeError("stand-in tracker failure")
        if self.delay_s:
            time.sleep(self.delay_s)
        h, w = image.shape[:2]
        mask = image[:, :, 0] > 180
        ys, xs = np.nonzero(mask)
        if xs.size < 50:
            return FaceObservation(t, frame_index, w, h, False, 0, image=image)
        box = np.array([xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], np.float32)
        cx = (xs.min() + xs.max()) / 2
        yaw = float(40.0 * (cx - w / 2) / (w / 2))
        pose = HeadPose(yaw, 0.0, 0.0, np.zeros(3), np.array([0.0, 0.0, 50.0]))
        return FaceObservation(t, frame_index, w, h, True, 1, box=box, score=0.99, pose=pose, image=image)

    def reset(self) -> None:
        self.resets += 1


class CentreAnalyser:
    """Stand-in analyser: how far the face is from the image centre (0..1)."""

    name = "centre"

    def __init__(self) -> None:
        self.values: list[float] = []

    def update(self, obs: FaceObservation, ctx: FrameContext) -> tuple[Score, ...]:
        if not obs.face or obs.box is None:
            return ()
        v = float(abs(obs.box[0] + obs.box[2] / 2 - obs.width / 2) / (obs.width / 2))
        self.values.append(v)
        return (Score(self.name, obs.t, v),)

    def signals(self) -> dict[str, Signal]:
        if not self.values:
            return {self.name: Signal(self.name, None, 0)}
        return {self.name: Signal(self.name, float(np.median(self.values)), len(self.values))}

    def reset(self) -> None:
        self.values.clear()


class FakeChallenges:
    """Stand-in challenge engine (an analyser and a ``ChallengeSource``): prompts each planned
    kind on the next frame after the last decision and passes it 0.3 s later (the real engine
    lives in liveness.challenges.engine)."""

    name = "challenge_breakdown"

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._queue: list[str] = []
        self._open: tuple[str, float] | None = None
        self._results: list[_Passed] = []

    def start(self, t: float, n: int | None = None, kinds: list[str] | None = None) -> list[str]:
        self._queue = list(kinds) if kinds else ["turn_left", "blink_twice", "smile"][: n or 3]
        return list(self._queue)

    def update(self, obs: FaceObservation, ctx: FrameContext) -> tuple[Score, ...]:
        if self._open is None and self._queue:
            k = self._queue.pop(0)
            self._open = (k, obs.t)
            ctx.emit(Event(obs.t, "challenge.prompt", f"do {k}", (("kind", k),)))
        elif self._open is not None and obs.t - self._open[1] >= 0.3:
            k, t0 = self._open
            self._open = None
            self._results.append(_Passed(k, obs.t - t0))
            ctx.emit(Event(obs.t, "challenge.result", f"{k}: passed", (("kind", k), ("passed", True), ("latency_s", obs.t - t0))))
        return ()

    def results(self) -> list[_Passed]:
        return list(self._results)

    def signals(self) -> dict[str, Signal]:
        return {self.name: Signal(self.name, None, 0)}


class _Passed:
    def __init__(self, kind: str, latency_s: float) -> None:
        self.kind, self.latency_s = kind, latency_s

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": True, "latency_s": round(self.latency_s, 3)}


class CentreFusion:
    """Stand-in fusion: the risk is the ``centre`` signal; ``suspicious`` above 0.5."""

    def fuse(self, signals: Any, observations: Any) -> Verdict:
        s = signals.get("centre")
        if s is None or s.value is None:
            return Verdict("inconclusive", None, ("no centre signal yet",))
        v = float(s.value)
        return Verdict("suspicious" if v > 0.5 else "no_signs", v, ("stand-in fusion",), assurance=("passive",))

    def describe(self) -> dict[str, Any]:
        return {"name": "centre stand-in (tests)"}


def disc_factory(challenges: bool = False, fusion: bool = False, **kw: Any) -> Callable[[], Session]:
    def make() -> Session:
        analysers: list[Any] = [CentreAnalyser()]
        if challenges:
            analysers.append(FakeChallenges())
        return Session(DiscTracker(**kw), analysers, fusion=CentreFusion() if fusion else None)

    return make


class FrameTrack:
    """An aiortc video track sending given RGB frames at ``fps`` (looping); records each
    frame's pts and send time (the capture timestamp)."""

    def __new__(cls, *a: Any, **k: Any) -> Any:  # build lazily so importing needs no aiortc
        from aiortc import VideoStreamTrack

        class _Track(VideoStreamTrack):
            def __init__(self, frames: Callable[[int], np.ndarray], fps: float = 30.0) -> None:
                super().__init__()
                self.frames = frames
                self.fps = fps
                self.i = 0
                self.sent: dict[int, float] = {}
                self._start: float | None = None

            async def recv(self) -> Any:
                from av import VideoFrame

                if self._start is None:
                    self._start = time.monotonic()
                target = self._start + self.i / self.fps
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                img = self.frames(self.i)
                frame = VideoFrame.from_ndarray(img, format="rgb24")
                pts = int(round(self.i * 90000 / self.fps))
                frame.pts = pts
                frame.time_base = fractions.Fraction(1, 90000)
                self.sent[pts] = time.monotonic()
                self.i += 1
                return frame

        return _Track(*a, **k)


class Client:
    """A pure-Python WebRTC client: offer with one video track and the 'liveness' channel."""

    def __init__(self, track: Any) -> None:
        self.track = track
        self.pc: Any = None
        self.channel: Any = None
        self.messages: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.opened = asyncio.Event()
        self.bye = asyncio.Event()

    async def connect(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        import aiohttp
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = RTCPeerConnection()
        self.channel = self.pc.createDataChannel("liveness")
        self.pc.addTrack(self.track)

        @self.channel.on("open")
        def _open() -> None:
            self.opened.set()

        @self.channel.on("message")
        def _msg(text: str) -> None:
            self.arrivals.append(time.monotonic())
            m = json.loads(text)
            self.messages.append(m)
            if m.get("type") == "bye":
                self.bye.set()

        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with aiohttp.ClientSession() as http, http.post(
            url, json={"type": "offer", "sdp": self.pc.localDescription.sdp, "source": "test"}, headers=headers or {}
        ) as r:
            body = await r.json()
            if r.status != 200:
                raise RuntimeError(f"offer refused: {r.status} {body}")
        await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        return body

    def send(self, cmd: str, args: dict[str, Any] | None = None, cid: str = "x") -> None:
        self.channel.send(json.dumps({"v": PROTOCOL, "type": "command", "id": cid, "cmd": cmd, "args": args or {}}))

    def of_type(self, t: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == t]

    async def wait_for(self, pred: Callable[[], bool], timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            await asyncio.sleep(0.05)
        return pred()

    async def close(self) -> None:
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()


@contextlib.asynccontextmanager
async def running_server(options: Any, factory: Callable[[], Session] | None):  # noqa: ANN201
    """The app on a free loopback port; yields (base_url, app)."""
    from aiohttp import web

    from liveness.apps.serve import create_app

    app = create_app(options, factory)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


class ServerThread:
    """The app on a loopback port in a background thread with its own event loop (for tests
    whose own thread drives a browser)."""

    def __init__(self, options: Any, factory: Callable[[], Session] | None) -> None:
        import threading

        self.options = options
        self.factory = factory
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.base = ""
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()

    async def _start(self) -> None:
        from aiohttp import web

        from liveness.apps.serve import create_app

        self.runner = web.AppRunner(create_app(self.options, self.factory))
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"

    def __enter__(self) -> ServerThread:
        self._thread.start()
        self._ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: Any) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop)
        with contextlib.suppress(Exception):
            fut.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    def request(self, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, Any]:
        import urllib.error
        import urllib.request

        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if key:
            req.add_header("X-API-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def write_y4m(path: Any, frames: list[np.ndarray], fps: int) -> None:
    """Write RGB frames as a 4:2:0 YUV4MPEG2 file (what Chromium's fake camera plays)."""
    import cv2

    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for img in frames:
            f.write(b"FRAME\n")
            f.write(cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2YUV_I420).tobytes())


def fit_4x3(img: np.ndarray, w: int = 640, h: int = 480) -> np.ndarray:
    """Centre-crop to 4:3 and resize."""
    import cv2

    ih, iw = img.shape[:2]
    if iw * 3 > ih * 4:
        nw = ih * 4 // 3
        img = img[:, (iw - nw) // 2 : (iw - nw) // 2 + nw]
    else:
        nh = iw * 3 // 4
        img = img[(ih - nh) // 2 : (ih - nh) // 2 + nh]
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
