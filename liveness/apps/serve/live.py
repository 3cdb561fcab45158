"""One live session's lifecycle: a WebRTC peer, its newest-frame slot
(:mod:`liveness.sources.webrtc`), its analysis worker, its record (:mod:`.recorder`), and the
clients (data channel, watch WebSockets) its results go to.

Each session has at most one frame in the shared thread pool at a time, so one slow or failing
session cannot starve the others. The core :class:`~liveness.Session` is driven only through its
API: ``process`` (with the console's region of interest), ``start_challenges``, ``signals``,
``verdict``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from liveness.apps.serve.clients import Counters, Sink, candidate_view
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.protocol import PROTOCOL, Command, dumps, event_dict, message, result_body
from liveness.apps.serve.recorder import Recorder
from liveness.apps.serve.store import Store
from liveness.core.errors import LivenessError, TimestampError
from liveness.core.session import Session
from liveness.sources.webrtc import FrameSlot, frame_rgb, frame_time

__all__ = ["Counters", "LiveSession", "Sink", "event_dict"]

log = logging.getLogger("liveness.serve")

_MAX_CONSECUTIVE_ERRORS = 30
_END_ATTEMPTS, _END_RETRY_S = 5, 2.0  # the final write of a record: tries, pause between them
_MAX_PENDING = 16  # commands waiting for the next frame (a flood without media must not grow)
_RESULT_BURST_S = 1.0  # result-rate credit: up to result_hz x this many results may come back to back


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
        self.recorder = Recorder()
        self._consumer: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._crop: tuple[float, float, float, float] | None = None
        self._pending: deque[Callable[[float], list[dict[str, Any]]]] = deque()
        self._next_send = 0.0
        self._next_snapshot = 0.0
        self._snapshot_cost = 0.0
        self._ending: asyncio.Task[None] | None = None
        self._disconnect_timer: asyncio.TimerHandle | None = None
        self._consecutive_errors = 0
        self._flushing: asyncio.Task[None] | None = None
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
        """Send to every client: the full message to consoles, :func:`candidate_view` of it
        (never a verdict, score or prompt) to candidate peers."""
        text = dumps(msg)
        cand = candidate_view(msg)
        cand_text = None if cand is None else dumps(cand)
        for s in list(self.sinks):
            if s.closed:
                self.sinks.remove(s)
                continue
            if s.full:
                s.send(text)
            elif cand_text is not None:
                s.send(cand_text)

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
                self.recorder.add_event(ev)
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
                ev = {"t": self.recorder.last_t or 0.0, "kind": "error.analysis", "message": f"frame analysis failed: {exc!r}", "data": {}}
                self.recorder.add_event(ev)
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
                self.recorder.add_event(e)
                self.broadcast(message("event", **e))
            if now_mono >= self._next_send:  # at most result_hz on average, bursts catch up
                # a token bucket holding one second of results: frames that arrive in bursts
                # (as WebRTC delivers them) or at the rate limit with jitter all get their result
                rperiod = 1.0 / self.options.result_hz
                self._next_send = max(self._next_send, now_mono - _RESULT_BURST_S) + rperiod
                self.counters.sent += 1
                self.broadcast(message("result", **result))
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Store the record in the background, one write at a time: a slow or locked database
        never holds up the analysis (the recorder keeps what it could not write)."""
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self.recorder.flush(self))

    def _analyse(self, frame: Any, recv_wall: float) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        """Runs on the thread pool. One call at a time per session."""
        core = self.core
        if core is None:  # the session ended meanwhile
            return None
        t0 = time.perf_counter()
        c0 = time.thread_time()  # CPU per stage (Counters.cpu_ms)
        try:
            t = core.check_time(frame_time(frame, recv_wall, self.started))
        except TimestampError:
            self.counters.skipped += 1
            return None
        rec = self.recorder
        rec.start(t)

        events: list[dict[str, Any]] = []
        while self._pending:  # commands queued by the event loop (deque: thread-safe popleft)
            fn = self._pending.popleft()
            try:
                events.extend(fn(t))
            except LivenessError as exc:
                events.append({"t": t, "kind": "error.command", "message": str(exc), "data": {}})

        c = self.counters
        cpu = c.cpu_ms
        c1 = time.thread_time()
        img = frame_rgb(frame)
        H, W = img.shape[:2]
        c2 = time.thread_time()
        # read the region once: the event loop may change it meanwhile
        fr = core.process(img, t, roi=self._crop, max_side=self.options.max_side)
        c3 = time.thread_time()
        cpu["convert"] += (c2 - c1) * 1e3
        cpu["process"] += (c3 - c2) * 1e3
        obs = fr.obs
        c.width, c.height, c.analysed_width, c.analysed_height = W, H, obs.width, obs.height
        c.analysed += 1
        c._out_times.append(time.monotonic())

        result = result_body(fr, t, frame.pts, recv_wall, W, H)
        events.extend(event_dict(e) for e in fr.events)
        rec.add_frame(t, obs, result["signals"], events, self.options.thumbnails)

        # the clip-level snapshot (signals, verdict) at status_hz, adaptively slower when costly
        now = time.monotonic()
        snap_cpu = 0.0
        if now >= self._next_snapshot:
            ts, cs = time.perf_counter(), time.thread_time()
            self.snapshot = self._summaries()
            self._snapshot_cost = time.perf_counter() - ts
            snap_cpu = time.thread_time() - cs
            cpu["snapshot"] += snap_cpu * 1e3
            self._next_snapshot = now + max(1.0 / self.options.status_hz, 20 * self._snapshot_cost)
        v = self.snapshot.get("verdict")
        if v is not None:
            result["risk"] = v.get("risk")
            result["label"] = v.get("label")
        c.analyse_ms.append((time.perf_counter() - t0) * 1e3)
        cpu["other"] += (time.thread_time() - c0 - (c3 - c1) - snap_cpu) * 1e3
        return result, events

    def _summaries(self) -> dict[str, Any]:
        core = self.core
        if core is None:
            return {"signals": {}, "verdict": None}
        signals = core.signals()
        verdict = core.verdict(signals).to_dict() if core.fusion is not None else None
        return {"signals": {k: v.to_dict() for k, v in signals.items()}, "verdict": verdict}

    # -- commands ----------------------------------------------------------------------------
    def handle_command(self, cmd: Command) -> dict[str, Any]:
        """Apply a validated command; returns the ``ack`` message."""
        ok, error, data = True, None, {}
        if self.state == "ended" and cmd.cmd != "ping":
            ok, error = False, "session has ended"
        elif cmd.cmd == "ping":
            data = {"server_wall": round(time.time(), 4)}
        elif cmd.cmd == "set_crop":  # the session drops the track when the region changes
            a = cmd.args
            self._crop = (float(a["x"]), float(a["y"]), float(a["w"]), float(a["h"]))
        elif cmd.cmd == "clear_crop":
            self._crop = None
        elif cmd.cmd == "stop":
            self.request_end(str(cmd.args.get("reason") or "stopped by the console"))
        elif cmd.cmd == "start_challenges":
            core = self.core
            if core is None or not core.can_challenge:
                ok, error = False, "this server's pipeline has no challenge engine"
            elif len(self._pending) >= _MAX_PENDING:
                ok, error = False, "too many commands are waiting for the next frame"
            else:
                count = int(cmd.args.get("count", 3))
                kinds = cmd.args.get("kinds")

                def start(t: float) -> list[dict[str, Any]]:
                    core.start_challenges(count, kinds, t)  # prompts come as events
                    return []

                self._pending.append(start)
        return message("ack", id=cmd.id, cmd=cmd.cmd, ok=ok, error=error, **data)

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
        ev = {"t": self.recorder.last_t or 0.0, "kind": "session.ended", "message": reason, "data": {}}
        self.recorder.add_event(ev)
        if self._flushing is not None:  # the write in flight ends first
            with contextlib.suppress(Exception):
                await self._flushing
        for attempt in range(_END_ATTEMPTS):  # a locked or lost database is given a while
            try:
                await self.recorder.flush(self, final=True)  # safe to repeat: it keeps what failed
                await self.store.call(self.store.set_state, self.id, "ended", ended=self.ended, end_reason=reason)
                break
            except Exception as exc:
                if attempt + 1 == _END_ATTEMPTS:
                    log.error("session %s: storing the end failed: %r", self.id, exc)
                else:
                    log.warning("session %s: storing the end failed, retrying: %r", self.id, exc)
                    await asyncio.sleep(_END_RETRY_S)
        self.state = "ended"
        self.broadcast(message("event", **ev))
        self.broadcast(message("bye", reason=reason, verdict=self.snapshot.get("verdict"), counters=self.counters.to_dict()))
        if self.pc is not None:
            with contextlib.suppress(Exception):
                await self.pc.close()
        # an ended session stays listed for a while: let its pipeline (models, record) and its
        # peer connection (receivers, jitter buffers, rate counters) go now
        self.core = None
        self.pc = None
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

