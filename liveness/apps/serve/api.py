"""The JSON API: sessions (create, list, status, stop, commands), their stored report (JSON and
HTML) and thumbnails, and the watch WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from typing import Any

from aiohttp import WSMsgType, web

from liveness.apps.serve.auth import (
    WATCH_PROTOCOL,
    hash_token,
    new_session_id,
    new_token,
    origin_allowed,
    watch_token,
    watch_token_offered,
)
from liveness.apps.serve.live import LiveSession, Sink
from liveness.apps.serve.openapi import openapi_spec
from liveness.apps.serve.protocol import PROTOCOL, parse_command
from liveness.apps.serve.rtc import on_client_message
from liveness.apps.serve.state import ID_RE, get_live, json_error, read_json, require_key, state_of
from liveness.core.errors import InputError
from liveness.core.review import SERVE_REPORT_SCHEMA, Review
from liveness.core.types import Event, Signal, Verdict
from liveness.core.version import __version__
from liveness.verdict.report import render_html

__all__ = ["command", "create_session", "health", "list_sessions", "openapi", "session_report",
           "session_report_html", "session_status", "stop", "thumbnail", "watch"]

log = logging.getLogger("liveness.serve")


async def health(request: web.Request) -> web.Response:
    st = state_of(request)
    return web.json_response({"ok": True, "version": __version__, "protocol": PROTOCOL, "live_sessions": st.live_count()})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec(__version__))


def _base_url(request: web.Request) -> str:
    st = state_of(request)
    if st.options.public_url:
        return st.options.public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


async def create_session(request: web.Request) -> web.Response:
    require_key(request)
    st = state_of(request)
    body = await read_json(request) if request.can_read_body else {}
    label = body.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        return json_error(400, "label must be a string of at most 200 characters")
    ttl = body.get("token_ttl_s", st.options.token_ttl_s)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 10 <= ttl <= 7 * 86400:
        return json_error(400, "token_ttl_s must be a number of seconds in [10, 604800]")
    if st.live_count() >= st.options.max_sessions:
        return json_error(503, f"the server is at its limit of {st.options.max_sessions} live sessions")
    if st.pending_count() >= st.options.max_pending_sessions:
        return json_error(503, f"the server holds {st.options.max_pending_sessions} sessions created and not yet "
                               "joined (--max-pending-sessions): join or stop some, or wait for their links to expire")
    sid = new_session_id()
    token = new_token()
    expires = time.time() + float(ttl)
    await st.store.call(st.store.create_session, sid, label, hash_token(token), expires, {"token_ttl_s": ttl})
    live = LiveSession(sid, label, st.factory, st.pool, st.store, st.options, on_end=None)
    live.token_expires = expires
    st.sessions[sid] = live
    base = _base_url(request)
    return web.json_response(
        {
            "id": sid,
            "label": label,
            "state": live.state,
            "join_url": f"{base}/join/{token}",
            "token": token,
            "token_expires": expires,
            "offer_url": f"{base}/api/sessions/{sid}/offer",
            "candidate_offer_url": f"{base}/api/join/{token}/offer",
            "watch_url": f"{base.replace('http', 'ws', 1)}/api/sessions/{sid}/watch",
            "watch_token": watch_token(st.options.api_key, sid) if st.options.api_key else None,
            "protocol": PROTOCOL,
        },
        status=201,
    )


async def list_sessions(request: web.Request) -> web.Response:
    require_key(request)
    st = state_of(request)
    rows = await st.store.call(st.store.list_sessions, 100)
    for r in rows:
        live = st.sessions.get(r["id"])
        if live is not None:
            r["state"] = live.state
    return web.json_response({"sessions": rows})


async def session_status(request: web.Request) -> web.Response:
    require_key(request)
    st = state_of(request)
    sid = request.match_info["sid"]
    live = st.sessions.get(sid)
    if live is not None:
        return web.json_response(live.status())
    row = await st.store.call(st.store.get_session, sid) if ID_RE.match(sid) else None
    if row is None:
        return json_error(404, "no such session")
    return web.json_response(
        {"id": sid, "label": row["label"], "state": row["state"], "source": row["source"], "created": row["created"],
         "started": row["started"], "ended": row["ended"], "end_reason": row["end_reason"],
         "counters": row["counters"], "signals": row["signals"] or {}, "verdict": row["verdict"]}
    )


async def session_report(request: web.Request) -> web.Response:
    require_key(request)
    doc = await _report_doc(request)
    sid = doc["session"]["id"]
    return web.json_response(
        {"schema": "liveness.serve-report/1", "version": __version__, "session": doc["session"],
         "events": doc["events"], "seconds": doc["seconds"],
         "thumbnails": [dict(t, url=f"/api/sessions/{sid}/thumbnails/{t['id']}.jpg") for t in doc["thumbnails"]],
         "html": f"/api/sessions/{sid}/report.html"}
    )


async def _report_doc(request: web.Request) -> dict[str, Any]:
    st = state_of(request)
    sid = request.match_info["sid"]
    row = await st.store.call(st.store.get_session, sid) if ID_RE.match(sid) else None
    if row is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such session"}), content_type="application/json")
    live = st.sessions.get(sid)
    if live is not None and live.state != "ended":
        row.update(state=live.state, counters=live.counters.to_dict(), signals=live.snapshot.get("signals"),
                   verdict=live.snapshot.get("verdict"))
    events = await st.store.call(st.store.events, sid)
    seconds = await st.store.call(st.store.seconds, sid)
    thumbs = await st.store.call(st.store.thumbnails, sid)
    row.pop("token_expires", None)
    row.pop("token_used", None)
    return {"session": row, "events": events, "seconds": seconds, "thumbnails": thumbs}


async def session_report_html(request: web.Request) -> web.Response:
    """The stored record rendered as the self-contained HTML evidence report (per-second
    timeline, signals, verdict, challenges, events, thumbnails when kept)."""
    require_key(request)
    st = state_of(request)
    doc = await _report_doc(request)
    ses = doc["session"]

    thumbs = []
    for t in doc["thumbnails"]:
        jpeg = await st.store.call(st.store.thumbnail, ses["id"], t["id"])
        if jpeg:
            thumbs.append({"t": t["t"], "jpeg_b64": base64.b64encode(jpeg).decode(), "caption": t["reason"]})
    counters = ses.get("counters") or {}
    verdict = ses.get("verdict")
    review = Review(
        schema=SERVE_REPORT_SCHEMA,
        source={"path": f"live session {ses['id']} {ses.get('label') or ''}".strip(),
                "width": counters.get("width"), "height": counters.get("height"),
                "analysed_width": counters.get("analysed_width"),
                "analysed_height": counters.get("analysed_height"),
                "duration_s": (doc["seconds"][-1]["second"] + 1) if doc["seconds"] else None,
                "frames": counters.get("analysed")},
        timeline=tuple(
            {"t": r["second"] + 0.5, "face": r["face_fraction"] >= 0.5, "face_fraction": r["face_fraction"],
             "yaw": r["yaw"], "pitch": r["pitch"], "roll": r["roll"], **r["signals"]}
            for r in doc["seconds"]
        ),
        signals={k: Signal.from_dict(k, v) for k, v in (ses.get("signals") or {}).items()},
        verdict=(Verdict.from_dict(verdict) if verdict
                 else Verdict("inconclusive", None, ("no verdict stored",))),
        events=tuple(Event.from_dict(e) for e in doc["events"]),
        challenges=tuple(e["data"] for e in doc["events"] if e["kind"] == "challenge.result"),
        thumbnails=tuple(thumbs),
        provenance={"server": f"liveness serve {__version__}", "session": ses["id"], "state": ses["state"],
                    "source": ses.get("source"), "created": ses.get("created"), "started": ses.get("started"),
                    "ended": ses.get("ended"), "end_reason": ses.get("end_reason"),
                    "counters": json.dumps(ses.get("counters")),
                    "note": "timeline rows are per-second means of the live analysis"},
    )
    html = await asyncio.get_running_loop().run_in_executor(st.pool, render_html, review)
    resp = web.Response(text=html, content_type="text/html")
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
    return resp


async def thumbnail(request: web.Request) -> web.Response:
    require_key(request)
    st = state_of(request)
    sid = request.match_info["sid"]
    try:
        tid = int(request.match_info["tid"])
    except ValueError:
        return json_error(404, "no such thumbnail")
    jpeg = await st.store.call(st.store.thumbnail, sid, tid)
    if jpeg is None:
        return json_error(404, "no such thumbnail")
    return web.Response(body=jpeg, content_type="image/jpeg")


async def command(request: web.Request) -> web.Response:
    require_key(request)
    live = get_live(request)
    body = await request.read()  # bytes: text that is not UTF-8 is the parser's 400, not a 500
    try:
        cmd = parse_command(body)
    except InputError as exc:
        return json_error(400, str(exc))
    ack = live.handle_command(cmd)
    return web.json_response(ack, status=200 if ack["ok"] else 409)


async def stop(request: web.Request) -> web.Response:
    require_key(request)
    live = get_live(request)
    await live.end("stopped through the API")
    return web.json_response(live.status())


async def watch(request: web.Request) -> web.StreamResponse:
    """The session's messages over a WebSocket, with the API key or (from a browser, as a
    subprotocol) the session's watch token; a page may open it only from an allowed origin."""
    o = state_of(request).options
    if not origin_allowed(request, o.cors_origins, o.public_url):
        return json_error(403, "this origin may not watch sessions (see --cors-origin)")
    token = watch_token_offered(request)
    if token is None or o.api_key is None:
        require_key(request)
    elif not (ID_RE.match(request.match_info["sid"]) and hmac.compare_digest(
            token.encode("utf-8"), watch_token(o.api_key, request.match_info["sid"]).encode("utf-8"))):
        return json_error(401, "invalid watch token")
    live = get_live(request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024, protocols=(WATCH_PROTOCOL,))
    await ws.prepare(request)
    queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=256)

    def enqueue(text: str) -> None:
        if queue.full():  # slow watcher: drop its oldest message
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
        queue.put_nowait(text)

    async def pump() -> None:
        while True:
            text = await queue.get()
            if text is None or ws.closed:
                return
            await ws.send_str(text)

    sink = Sink(enqueue, True, f"ws-{live.id}")
    pump_task = asyncio.create_task(pump())
    live.add_sink(sink)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                on_client_message(live, sink, msg.data, True)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        live.remove_sink(sink)
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
    return ws
