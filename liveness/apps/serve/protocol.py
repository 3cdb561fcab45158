"""The data-channel protocol ``liveness.dc/1``: JSON text messages, one object each.

Every message carries ``"v": "liveness.dc/1"`` and a ``"type"``. Server → client: ``hello``,
``result``, ``event``, ``status``, ``ack``, ``bye``. Client → server: ``command``. The same
messages flow over the WebRTC data channel (label ``liveness``) and over the watch WebSocket
(``/api/sessions/{id}/watch``). See ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liveness.core.errors import InputError
from liveness.core.types import Event, FrameResult

__all__ = [
    "COMMANDS",
    "PROTOCOL",
    "Command",
    "command_id",
    "dumps",
    "event_dict",
    "message",
    "parse_command",
    "result_body",
]

PROTOCOL = "liveness.dc/1"

# command name -> allowed argument names
COMMANDS: dict[str, tuple[str, ...]] = {
    "start_challenges": ("count", "kinds"),
    "set_crop": ("x", "y", "w", "h"),
    "clear_crop": (),
    "stop": ("reason",),
    "ping": (),
}

_MAX_MESSAGE = 16 * 1024
_MAX_DEPTH = 16  # a command nests three levels


def _too_deep(obj: Any, limit: int) -> bool:
    """Whether a parsed JSON value nests lists and objects more than ``limit`` levels (no
    recursion: the value may be as deep as the parser allowed)."""
    stack = [(obj, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return True
            stack.extend((c, depth + 1) for c in (v.values() if isinstance(v, dict) else v))
    return False


@dataclass(frozen=True)
class Command:
    """A parsed command: ``id`` is echoed in the ``ack``."""

    id: str | None
    cmd: str
    args: dict[str, Any]


def _clean(x: Any) -> Any:
    if isinstance(x, float):
        return round(x, 4) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalar
        return _clean(x.item())
    return x


def message(type_: str, **fields: Any) -> dict[str, Any]:
    """A protocol message (a plain dict, JSON-safe: non-finite floats become null)."""
    return {"v": PROTOCOL, "type": type_, **_clean(fields)}


def dumps(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), allow_nan=False)


def parse_command(text: str | bytes) -> Command:
    """Parse and validate one client message; raises :class:`InputError` with a clear reason."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("message is not UTF-8") from exc
    if len(text) > _MAX_MESSAGE:
        raise InputError("message too long")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"message is not JSON: {exc.msg}") from exc
    except ValueError as exc:  # an integer of more than 4300 digits
        raise InputError(f"message is not usable JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[..." within the size limit
        raise InputError("message is nested too deeply") from exc
    if _too_deep(obj, _MAX_DEPTH):  # whatever the interpreter's recursion limit
        raise InputError("message is nested too deeply")
    if not isinstance(obj, dict):
        raise InputError("message must be a JSON object")
    if obj.get("v") != PROTOCOL:
        raise InputError(f"unsupported protocol {obj.get('v')!r}; expected {PROTOCOL!r}")
    if obj.get("type") != "command":
        raise InputError(f"unexpected message type {obj.get('type')!r}")
    cid = obj.get("id")
    if cid is not None and not isinstance(cid, (str, int)):
        raise InputError("id must be a string or integer")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or cmd not in COMMANDS:
        raise InputError(f"unknown command {cmd!r}; known: {sorted(COMMANDS)}")
    args = obj.get("args") or {}
    if not isinstance(args, dict):
        raise InputError("args must be an object")
    unknown = set(args) - set(COMMANDS[cmd])
    if unknown:
        raise InputError(f"unknown argument(s) for {cmd}: {sorted(unknown)}")
    _validate(cmd, args)
    return Command(None if cid is None else str(cid), cmd, dict(args))


def command_id(text: str | bytes) -> str | None:
    """The ``id`` of a (possibly invalid) command, for its ``ack``; None when unreadable."""
    try:
        obj = json.loads(text)
    except (ValueError, TypeError, RecursionError):
        return None
    cid = obj.get("id") if isinstance(obj, dict) else None
    return str(cid) if isinstance(cid, (str, int)) and len(str(cid)) <= 64 else None


def _num(args: dict[str, Any], k: str, lo: float, hi: float) -> float:
    v = args.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (isinstance(v, float) and not math.isfinite(v)):
        raise InputError(f"{k} must be a number")  # (an int of any size is finite: compared, not converted)
    if not lo <= v <= hi:
        raise InputError(f"{k}={v} outside [{lo}, {hi}]")
    return float(v)


def _validate(cmd: str, args: dict[str, Any]) -> None:
    if cmd == "set_crop":
        x, y = _num(args, "x", 0, 1), _num(args, "y", 0, 1)
        w, h = _num(args, "w", 0, 1), _num(args, "h", 0, 1)
        if w < 0.02 or h < 0.02 or x + w > 1.0001 or y + h > 1.0001:
            raise InputError("crop must lie inside the frame and be at least 2% of it")
    elif cmd == "start_challenges":
        if "count" in args:
            _num(args, "count", 1, 10)
        kinds = args.get("kinds")
        if kinds is not None and (
            not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds) or len(kinds) > 20
        ):
            raise InputError("kinds must be a list of challenge names")
    elif cmd == "stop":
        r = args.get("reason")
        if r is not None and (not isinstance(r, str) or len(r) > 200):
            raise InputError("reason must be a short string")


def event_dict(e: Event) -> dict[str, Any]:
    """An event as a protocol body: ``t``, ``kind``, ``message`` and its ``data`` nested (so a
    data field never shadows the event's own fields)."""
    return {"t": round(float(e.t), 4), "kind": e.kind, "message": e.message, "data": dict(e.data)}


def result_body(fr: FrameResult, t: float, pts: int | None, recv_wall: float, width: int, height: int) -> dict[str, Any]:
    """A ``result`` message's body for one analysed frame: its time, the face (box and other
    faces in the received frame's pixels), the crop and this frame's finite scores."""
    obs = fr.obs
    d = obs.to_dict()
    if d.get("box") is not None:
        d["box"] = fr.frame_box(d["box"])
    if obs.other_boxes is not None and len(obs.other_boxes):
        d["other_boxes"] = [fr.frame_box(b) for b in obs.other_boxes]
    sig = {s.signal: round(float(s.value), 4) for s in fr.scores if np.isfinite(s.value)}
    return {"t": round(t, 4), "pts": pts, "frame": obs.frame_index, "recv_wall": round(recv_wall, 4),
            "width": width, "height": height, "crop": list(fr.roi) if fr.roi else None, **d, "signals": sig}
