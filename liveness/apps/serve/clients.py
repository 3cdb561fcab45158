"""A live session's media counters and the clients its messages go to."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["CANDIDATE_FIELDS", "CANDIDATE_TYPES", "CPU_STAGES", "Counters", "Sink", "candidate_view"]

log = logging.getLogger("liveness.serve")

#: the stages of a live frame's analysis whose CPU time :class:`Counters` adds up
CPU_STAGES = ("convert", "process", "snapshot", "other")


@dataclass
class Counters:
    """Per-session media counters. ``latency`` holds recent receive→result-sent times (ms);
    ``width``/``height`` the size of the latest received frame, ``analysed_width``/
    ``analysed_height`` the size it was analysed at (after the tile crop and ``max_side``).
    ``cpu_ms``: CPU time (ms, the analysis thread's own, summed since the start) of each stage
    of the session's frame analysis (``CPU_STAGES``): the received frame's RGB conversion, the
    pipeline's ``process``, the clip-level snapshot (signals, verdict) and the rest (commands,
    the result message, the record)."""

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
    cpu_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CPU_STAGES, 0.0))
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
            "cpu_ms": {k: round(v, 1) for k, v in self.cpu_ms.items()},
        }


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


#: what a candidate peer may receive: these message types, with only these fields. A list of
#: what is allowed, not of what is withheld, so a field added to a message later (a verdict,
#: a score, a prompt) never reaches the candidate by accident.
CANDIDATE_FIELDS: dict[str, tuple[str, ...]] = {
    "hello": ("session", "protocol", "state", "role"),
    "ack": ("id", "cmd", "ok", "error", "server_wall"),
    "state": ("state",),
    "bye": ("reason",),
}

CANDIDATE_TYPES = frozenset(CANDIDATE_FIELDS)


def candidate_view(msg: dict[str, Any]) -> dict[str, Any] | None:
    """``msg`` as a candidate peer may see it (``CANDIDATE_FIELDS``), or None when a candidate
    gets no such message: the ``bye`` keeps its reason and loses the verdict and counters."""
    keep = CANDIDATE_FIELDS.get(str(msg.get("type")))
    if keep is None:
        return None
    return {"v": msg.get("v"), "type": msg["type"], **{k: msg[k] for k in keep if k in msg}}


