"""One live session: a WebRTC peer, its newest-frame slot, its analysis worker, and the
clients (data channel, watch WebSockets) its results go to.

Media path (aiortc issue #1192): ``recv()`` is drained by a consumer task that only stores the
newest frame in a one-slot mailbox (replacing a frame that was not analysed yet counts as a
drop); a separate worker takes the newest frame and runs the analysis on the shared thread
pool. A slow analysis therefore never builds a queue or stalls the network side, and each
session has at most one frame in the pool at a time, so one slow or failing session cannot
starve the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.protocol import PROTOCOL, Command, dumps, message
from liveness.apps.serve.store import Store
from liveness.core.errors import LivenessError
from liveness.core.session import Event, Session

__all__ = ["Counters", "FrameSlot", "LiveSession", "Sink", "event_dict"]

log = logging.getLogger("liveness.serve")

_MAX_CONSECUTIVE_ERRORS = 30
_RESULT_BURST_S = 1.0  # result-rate credit: up to result_hz x this many results may come back to back


@dataclass
class Counters:
    """Per-session media counters. ``latency`` holds recent receive→result-sent times (ms);
    ``width``/``height`` the size of the latest received frame, ``analysed_width``/
    ``analysed_height`` the size it was analysed at (after the tile crop and ``max_side``)."""

    received: int = 0
    analysed: int = 0
    dropped: int = 0
    skipped: int = 0  # frames with a non-increasing timestamp
    errors: int = 0
    sent: int = 0
    width: int | None = None
    height: int | None = None
    analysed_width: int | None = None
    analysed_height: int | None = None
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=600))
    analyse_ms: deque[float] = field(default_factory=lambda: deque(maxlen=600))
    _in_times: deque[float] = field(default_factory=lambda: deque(maxlen=120))
    _out_times: deque[float] = field(default_factory=lambda: deque(maxlen=120))

    @staticmethod
    def _rate(times: deque[float], now: float) -> float:
        recent = [x for x in list(times) if now - x <= 2.0]  # list(): one atomic copy
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def to_dict(self) -> dict[str, Any]:
        now = time.monotonic()
        lat = np.asarray(list(self.latency), np.float64)
        ams = np.asarray(list(self.analyse_ms), np.float64)
        return {
            "received": self.received,
            "analysed": self.analysed,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "errors": self.errors,
            "results_sent": self.sent,
            "width": self.width,
            "height": self.height,
            "analysed_width": self.analysed_width,
            "analysed_height": self.analysed_height,
            "fps_received": round(self._rate(self._in_times, now), 2),
            "fps_analysed": round(self._rate(self._out_times, now), 2),
            "latency_ms_p50": round(float(np.percentile(lat, 50)), 2) if lat.size else None,
            "latency_ms_p95": round(float(np.percentile(lat, 95)), 2) if lat.size else None,
            "analyse_ms_p50": round(float(np.percentile(ams, 50)), 2) if ams.size else None,
        }


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


class Sink:
    """A client receiving protocol messages. ``full`` clients (the console, API-key holders)
    get results and events; candidate clients get only hello/ack/state/bye."""

    def __init__(self, send: Callable[[str], Any], full: bool, name: str) -> None:
        self._send = send
        self.full = full
        self.name = name
        self.closed = False

    def send(self, text: str) -> None:
        if self.closed:
            return
        try:
            self._send(text)
        except Exception as exc:  # a broken client is dropped, never the session
            log.debug("sink %s send failed: %r", self.name, exc)
            self.closed = True


_CANDIDATE_TYPES = {"hello", "ack", "state", "bye"}


@dataclass
class _Second:
    frames: int = 0
    faces: int = 0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    posed: int = 0
    sig: dict[str, list[float]] = field(default_factory=dict)

    def row(self, second: int) -> dict[str, Any]:
        n = max(self.posed, 1)
        return {
            "second": second,
            "frames": self.frames,
            "face_fraction": self.faces / max(self.frames, 1),
            "yaw": self.yaw / n if self.posed else None,
            "pitch": self.pitch / n if self.posed else None,
            "roll": self.roll / n if self.posed else None,
            "signals": {k: round(float(np.mean(v)), 4) for k, v in self.sig.items()},
        }


class LiveSession:
    """Server-side state of one session. Created by the app; the core
    :class:`liveness.Session` is built by ``factory`` when the media arrives."""

    def __init__(
        self,
        sid: str,
        label: str,
        factory: Callable[[], Session],
        pool: Executor,
        store: Store,
        options: ServeOptions,
        on_end: Callable[[LiveSession], None] | None = None,
    ) -> None:
        self.id = sid
        self.label = label
        self.factory = factory
        self.pool = pool
        self.store = store
        self.options = options
        self.on_end = on_end
        self.state = "created"
        self.role: str | None = None
        self.source: str | None = None
        self.end_reason: str | None = None
        self.created = time.time()
        self.token_expires: float | None = None
        self.started: float | None = None
        self.ended: float | None = None
        self.counters = Counters()
        self.core: Session | None = None
        self.pc: Any = None
        self.sinks: list[Sink] = []
        self.last_result: dict[str, Any] | None = None
        self.snapshot: dict[str, Any] = {"signals": {}, "verdict": None}
        self._slot = FrameSlot()
        self._consumer: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._crop: tuple[float, float, float, float] | None = None
        self._crop_changed = False
        self._pending: deque[Callable[[float], list[dict[str, Any]]]] = deque()
        self._last_t: float | None = None
        self._t0: float | None = None
        self._seconds: dict[int, _Second] = {}
        self._flushed_second = -1
        self._pending_events: list[dict[str, Any]] = []
        self._pending_thumbs: list[tuple[float, str, bytes]] = []
        self._pending_rows: list[dict[str, Any]] = []  # finished seconds not yet stored
        self._store_failing = False
        self._store_retry_at = 0.0
        self._next_send = 0.0
        self._next_snapshot = 0.0
        self._snapshot_cost = 0.0
        self._ending: asyncio.Task[None] | None = None
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self._consecutive_errors = 0
        self.last_frame_mono: float | None = None
        self.started_mono: float | None = None

    # -- clients -----------------------------------------------------------------------------
    def add_sink(self, sink: Sink) -> None:
        self.sinks.append(sink)
        sink.send(dumps(self.hello(sink.full)))

    def remove_sink(self, sink: Sink) -> None:
        sink.closed = True
        if sink in self.sinks:
            self.sinks.remove(sink)

    def hello(self, full: bool) -> dict[str, Any]:
        d: dict[str, Any] = {"session": self.id, "protocol": PROTOCOL, "state": self.state, "role": "console" if full else "candidate"}
        if full:
            d["label"] = self.label
            d["commands"] = ["start_challenges", "set_crop", "clear_crop", "stop", "ping"]
            d["crop"] = list(self._crop) if self._crop else None
        return message("hello", **d)

    def broadcast(self, msg: dict[str, Any]) -> None:
        text = dumps(msg)
        cand = msg["type"] in _CANDIDATE_TYPES
        for s in list(self.sinks):
            if s.closed:
                self.sinks.remove(s)
                continue
            if s.full or cand:
                s.send(text)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.broadcast(message("state", state=state))

    # -- media -------------------------------------------------------------------------------
    async def start_media(self, track: Any) -> None:
        """Begin consuming a remote video track."""
        loop = asyncio.get_running_loop()
        if self.state == "ended":
            return
        if self.core is None:
            try:
                self.core = await loop.run_in_executor(self.pool, self.factory)
            except Exception as exc:  # e.g. a model file is missing: end this session, say why
                log.error("session %s: cannot build the analysis pipeline: %r", self.id, exc)
                ev = {"t": 0.0, "kind": "error.pipeline", "message": f"cannot build the analysis pipeline: {exc}", "data": {}}
                self._pending_events.append(ev)
                self.broadcast(message("event", **ev))
                self.request_end("analysis pipeline unavailable")
                return
        self.started = time.time()
        self.started_mono = time.monotonic()
        self._set_state("live")
        await self.store.call(self.store.set_state, self.id, "live", source=self.source, started=self.started)
        self._consumer = asyncio.create_task(self._consume(track), name=f"consume-{self.id}")
        self._worker = asyncio.create_task(self._work(), name=f"work-{self.id}")

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # decoder trouble: end the session, keep the record
                log.warning("session %s: receive failed: %r", self.id, exc)
                break
            c = self.counters
            self.last_frame_mono = time.monotonic()
            c.received += 1
            c._in_times.append(time.monotonic())
            if self._slot.put((frame, time.time(), time.monotonic())):
                c.dropped += 1
        self.request_end("media ended")

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self.options.max_fps if self.options.max_fps > 0 else 0.0
        next_start = 0.0
        while True:
            if period:
                wait = next_start - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            item = await self._slot.get()
            if item is None:
                break
            if period:
                next_start = max(next_start + period, time.monotonic() - period)
            frame, recv_wall, recv_mono = item
            try:
                out = await loop.run_in_executor(self.pool, self._analyse, frame, recv_wall)
            except Exception as exc:
                self.counters.errors += 1
                self._consecutive_errors += 1
                log.warning("session %s: analysis failed: %r", self.id, exc)
                ev = {"t": self._last_t or 0.0, "kind": "error.analysis", "message": f"frame analysis failed: {exc!r}", "data": {}}
                self._pending_events.append(ev)
                self.broadcast(message("event", **ev))
                if self._consecutive_errors >= _MAX_CONSECUTIVE_ERRORS:
                    self.request_end("analysis keeps failing")
                    break
                continue
            self._consecutive_errors = 0
            if out is None:
                continue
            result, events = out
            now_mono = time.monotonic()
            lat = (now_mono - recv_mono) * 1e3
            self.counters.latency.append(lat)
            result["latency_ms"] = round(lat, 2)
            result["counters"] = {
                "received": self.counters.received,
                "analysed": self.counters.analysed,
                "dropped": self.counters.dropped,
            }
            self.last_result = result
            for e in events:
                self._pending_events.append(e)
                self.broadcast(message("event", **e))
            if now_mono >= self._next_send:  # at most result_hz on average, bursts catch up
                # a token bucket holding one second of results: frames that arrive in bursts
                # (as WebRTC delivers them) or at the rate limit with jitter all get their result
                rperiod = 1.0 / self.options.result_hz
                self._next_send = max(self._next_send, now_mono - _RESULT_BURST_S) + rperiod
                self.counters.sent += 1
                self.broadcast(message("result", **result))
            await self._maybe_flush()

    def _analyse(self, frame: Any, recv_wall: float) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Runs on the thread pool. One call at a time per session."""
        import cv2

        core = self.core
        if core is None:  # the session ended meanwhile
            return None
        t0 = time.perf_counter()
        t = frame.time
        if t is None:
            t = recv_wall - (self.started or recv_wall)
        t = float(t)
        if self._last_t is not None and t <= self._last_t:
            self.counters.skipped += 1
            return None
        self._last_t = t
        if self._t0 is None:
            self._t0 = t

        events: list[dict[str, Any]] = []
        while self._pending:  # commands queued by the event loop (deque: thread-safe popleft)
            fn = self._pending.popleft()
            try:
                events.extend(fn(t))
            except LivenessError as exc:
                events.append({"t": t, "kind": "error.command", "message": str(exc), "data": {}})
        if self._crop_changed:
            self._crop_changed = False
            core.tracker.reset()

        crop = self._crop  # read once: the event loop may change it meanwhile
        img = frame.to_ndarray(format="rgb24")
        H, W = img.shape[:2]
        ox = oy = 0
        applied = None
        if crop is not None:
            cx, cy, cw, ch = crop
            ox, oy = int(round(cx * W)), int(round(cy * H))
            x1, y1 = min(W, int(round((cx + cw) * W))), min(H, int(round((cy + ch) * H)))
            if x1 - ox >= 16 and y1 - oy >= 16:
                img = img[oy:y1, ox:x1]
                applied = crop
            else:
                ox = oy = 0
        scale = 1.0
        side = max(img.shape[:2])
        if side > self.options.max_side:
            scale = self.options.max_side / side
            img = cv2.resize(img, (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))), interpolation=cv2.INTER_AREA)
        img = np.ascontiguousarray(img)
        c = self.counters
        c.width, c.height, c.analysed_height, c.analysed_width = W, H, *img.shape[:2]

        fr = core.process(img, t)
        obs = fr.obs
        # a live session may run for hours: keep the session's per-frame record light (the
        # fusion reads face/quality; analysers keep their own state), not 478 landmarks a frame
        kept = core.observations
        if kept and kept[-1].landmarks is not None:
            kept[-1] = replace(kept[-1], landmarks=None, image=None)
        self.counters.analysed += 1
        self.counters._out_times.append(time.monotonic())

        d = obs.to_dict()
        box = d.get("box")
        if box is not None:
            d["box"] = [round(box[0] / scale + ox, 1), round(box[1] / scale + oy, 1), round(box[2] / scale, 1), round(box[3] / scale, 1)]
        if obs.other_boxes is not None and len(obs.other_boxes):
            d["other_boxes"] = [
                [round(float(b[0]) / scale + ox, 1), round(float(b[1]) / scale + oy, 1), round(float(b[2]) / scale, 1), round(float(b[3]) / scale, 1)]
                for b in obs.other_boxes
            ]
        sig = {s.signal: round(float(s.value), 4) for s in fr.scores if np.isfinite(s.value)}
        result: dict[str, Any] = {
            "t": round(t, 4),
            "pts": frame.pts,
            "frame": obs.frame_index,
            "recv_wall": round(recv_wall, 4),
            "width": W,
            "height": H,
            "crop": list(applied) if applied else None,
            **d,
            "signals": sig,
        }
        for e in fr.events:
            events.append(event_dict(e))

        # per-second summary
        sec = int(t - self._t0)
        s = self._seconds.setdefault(sec, _Second())
        s.frames += 1
        s.faces += int(obs.face)
        if obs.pose is not None:
            s.posed += 1
            s.yaw += obs.pose.yaw
            s.pitch += obs.pose.pitch
            s.roll += obs.pose.roll
        for k, v in sig.items():
            s.sig.setdefault(k, []).append(v)

        # thumbnails (evidence) only when enabled
        if self.options.thumbnails and events and obs.face and obs.box is not None:
            jpeg = _thumbnail(img, obs.box)
            if jpeg is not None:
                self._pending_thumbs.extend((e["t"], e["kind"], jpeg) for e in events)

        # the clip-level snapshot (signals, verdict) at status_hz, adaptively slower when costly
        now = time.monotonic()
        if now >= self._next_snapshot:
            ts = time.perf_counter()
            self.snapshot = self._summaries()
            self._snapshot_cost = time.perf_counter() - ts
            self._next_snapshot = now + max(1.0 / self.options.status_hz, 20 * self._snapshot_cost)
        v = self.snapshot.get("verdict")
        if v is not None:
            result["risk"] = v.get("risk")
            result["label"] = v.get("label")
        self.counters.analyse_ms.append((time.perf_counter() - t0) * 1e3)
        return result, events

    def _summaries(self) -> dict[str, Any]:
        core = self.core
        if core is None:
            return {"signals": {}, "verdict": None}
        signals = {k: v.to_dict() for k, v in core.signals().items()}
        verdict = core.verdict().to_dict() if core.fusion is not None else None
        return {"signals": signals, "verdict": verdict}

    async def _maybe_flush(self, final: bool = False) -> None:
        """Write finished seconds and pending events to the store. A failing store never stops
        the analysis: what could not be written stays queued and is retried at the next flush
        (an ``error.store`` event tells the watchers once per failing spell)."""
        if not self._seconds and not self._pending_events and not self._pending_thumbs and not self._pending_rows:
            return
        done = sorted(self._seconds) if final else sorted(self._seconds)[:-1]
        if not final and not done and len(self._pending_events) < 20 and not self._store_failing:
            return
        if not final and self._store_failing and time.monotonic() < self._store_retry_at:
            return  # a failing store is retried once a second, not on every frame
        self._pending_rows.extend(self._seconds.pop(k).row(k) for k in done)
        store = self.store
        try:
            if self._pending_rows:
                await store.call(store.add_seconds, self.id, self._pending_rows)
                wrote_second = self._pending_rows[-1]["second"]
                self._pending_rows = []
            else:
                wrote_second = None
            if self._pending_events:
                events = list(self._pending_events)
                await store.call(store.add_events, self.id, events)
                del self._pending_events[: len(events)]
            while self._pending_thumbs:
                t, kind, jpeg = self._pending_thumbs[0]
                await store.call(store.add_thumbnail, self.id, t, kind, jpeg)
                self._pending_thumbs.pop(0)
            if final or (wrote_second is not None and wrote_second % 5 == 0):
                await store.call(store.save_summary, self.id, self.counters.to_dict(),
                                 self.snapshot.get("signals", {}), self.snapshot.get("verdict"))
        except Exception as exc:
            self.counters.errors += 1
            if final:
                raise
            self._store_retry_at = time.monotonic() + 1.0
            if not self._store_failing:
                log.error("session %s: the store refused a write, keeping the data to retry: %r", self.id, exc)
                self._store_failing = True
                self.broadcast(message("event", t=self._last_t or 0.0, kind="error.store",
                                       message=f"storing results failed, will retry: {exc!r}", data={}))
            return
        if self._store_failing:
            log.info("session %s: the store accepts writes again", self.id)
        self._store_failing = False

    # -- commands ----------------------------------------------------------------------------
    def handle_command(self, cmd: Command) -> dict[str, Any]:
        """Apply a validated command; returns the ``ack`` message."""
        ok, error, data = True, None, {}
        if self.state == "ended" and cmd.cmd != "ping":
            ok, error = False, "session has ended"
        elif cmd.cmd == "ping":
            data = {"server_wall": round(time.time(), 4)}
        elif cmd.cmd == "set_crop":
            a = cmd.args
            self._crop = (float(a["x"]), float(a["y"]), float(a["w"]), float(a["h"]))
            self._crop_changed = True
        elif cmd.cmd == "clear_crop":
            self._crop = None
            self._crop_changed = True
        elif cmd.cmd == "stop":
            self.request_end(str(cmd.args.get("reason") or "stopped by the console"))
        elif cmd.cmd == "start_challenges":
            starter = self._challenge_starter()
            if starter is None:
                ok, error = False, "this server's pipeline has no challenge engine"
            else:
                count = int(cmd.args.get("count", 3))
                kinds = cmd.args.get("kinds")
                self._pending.append(lambda t: starter(t, count, kinds))
        return message("ack", id=cmd.id, cmd=cmd.cmd, ok=ok, error=error, **data)

    def _challenge_starter(self) -> Callable[[float, int, list[str] | None], list[dict[str, Any]]] | None:
        """Find the challenge engine's start call among the session's analysers."""
        core = self.core
        if core is None:
            return None
        for obj in core.analysers:
            for name in ("start_challenges", "start_sequence", "start"):
                fn = getattr(obj, name, None)
                if name == "start" and "challenge" not in (
                    str(getattr(obj, "name", "")) + type(obj).__name__
                ).lower():
                    continue
                if callable(fn):
                    return _bind_starter(fn)
        return None

    # -- ending ------------------------------------------------------------------------------
    def on_connection_state(self, state: str) -> None:
        if state in ("failed", "closed"):
            self.request_end(f"peer connection {state}")
        elif state == "disconnected":
            if self._disconnect_timer is None:
                loop = asyncio.get_running_loop()
                self._disconnect_timer = loop.call_later(
                    self.options.disconnect_grace_s, self.request_end, "peer vanished"
                )
        elif state == "connected" and self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
            self._disconnect_timer = None

    def request_end(self, reason: str) -> None:
        """End the session in the background (idempotent)."""
        if self._ending is None and self.state != "ended":
            self._ending = asyncio.get_running_loop().create_task(self._end(reason))

    async def end(self, reason: str) -> None:
        self.request_end(reason)
        if self._ending is not None:
            await asyncio.shield(self._ending)

    async def _end(self, reason: str) -> None:
        self.end_reason = reason
        self._slot.close()
        me = asyncio.current_task()
        if self._consumer is not None and self._consumer is not me:
            self._consumer.cancel()
        for task in (self._consumer, self._worker):
            if task is not None and task is not me:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, 30)
        if self._disconnect_timer is not None:
            self._disconnect_timer.cancel()
        if self.core is not None:
            loop = asyncio.get_running_loop()
            try:
                self.snapshot = await loop.run_in_executor(self.pool, self._summaries)
            except Exception as exc:
                log.warning("session %s: final summary failed: %r", self.id, exc)
        self.ended = time.time()
        ev = {"t": self._last_t or 0.0, "kind": "session.ended", "message": reason, "data": {}}
        self._pending_events.append(ev)
        try:
            await self._maybe_flush(final=True)
            await self.store.call(self.store.set_state, self.id, "ended", ended=self.ended, end_reason=reason)
        except Exception as exc:
            log.error("session %s: storing the end failed: %r", self.id, exc)
        self.state = "ended"
        self.broadcast(message("event", **ev))
        self.broadcast(message("bye", reason=reason, verdict=self.snapshot.get("verdict"), counters=self.counters.to_dict()))
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        # an ended session stays listed for a while: let its pipeline (models, record) go now
        self.core = None
        self._pending.clear()
        if self.on_end is not None:
            self.on_end(self)

    # -- reading -----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "state": self.state,
            "source": self.source,
            "created": self.created,
            "started": self.started,
            "ended": self.ended,
            "end_reason": self.end_reason,
            "crop": list(self._crop) if self._crop else None,
            "counters": self.counters.to_dict(),
            "last_result": self.last_result,
            "signals": self.snapshot.get("signals", {}),
            "verdict": self.snapshot.get("verdict"),
        }

    def status_message(self) -> dict[str, Any]:
        return message(
            "status",
            state=self.state,
            counters=self.counters.to_dict(),
            signals=self.snapshot.get("signals", {}),
            verdict=self.snapshot.get("verdict"),
        )


def event_dict(e: Event) -> dict[str, Any]:
    """An event as a protocol body: ``t``, ``kind``, ``message`` and its ``data`` nested (so a
    data field never shadows the event's own fields)."""
    return {"t": round(float(e.t), 4), "kind": e.kind, "message": e.message, "data": dict(e.data)}


def _bind_starter(fn: Callable[..., Any]) -> Callable[[float, int, list[str] | None], list[dict[str, Any]]]:
    params = inspect.signature(fn).parameters

    def start(t: float, count: int, kinds: list[str] | None) -> list[dict[str, Any]]:
        kw: dict[str, Any] = {}
        if "t" in params:
            kw["t"] = t
        for name in ("count", "n"):
            if name in params:
                kw[name] = count
        if kinds is not None and "kinds" in params:
            kw["kinds"] = kinds
        out = fn(**kw)
        evs: list[dict[str, Any]] = []
        if isinstance(out, list | tuple):
            for e in out:
                if hasattr(e, "to_dict"):
                    evs.append(e.to_dict())
        return evs

    return start


def _thumbnail(frame_img: np.ndarray, box: np.ndarray, size: int = 96) -> bytes | None:
    import cv2

    h, w = frame_img.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    m = 0.2 * max(bw, bh)
    x0, y0 = max(0, int(x - m)), max(0, int(y - m))
    x1, y1 = min(w, int(x + bw + m)), min(h, int(y + bh + m))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    crop = cv2.resize(frame_img[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
    return bytes(buf) if ok else None
