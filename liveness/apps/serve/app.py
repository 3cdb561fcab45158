"""The aiohttp application: pages, JSON API, WebRTC offers, watch WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from liveness import __version__
from liveness.apps.serve.auth import (
    COOKIE,
    console_cookie_value,
    hash_token,
    is_authorised,
    key_status,
    new_session_id,
    new_token,
)
from liveness.apps.serve.live import LiveSession, Sink
from liveness.apps.serve.openapi import openapi_spec
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.protocol import PROTOCOL, command_id, dumps, message, parse_command
from liveness.apps.serve.store import Store
from liveness.core.errors import InputError
from liveness.core.session import Session

__all__ = ["create_app", "plugin_dir"]

log = logging.getLogger("liveness.serve")

SessionFactory = Callable[[], Session]

_KEY_OPTIONS = web.AppKey("options", ServeOptions)
_KEY_STATE: web.AppKey[_State] = web.AppKey("state")


def plugin_dir() -> Path:
    """The browser files: ``liveness/_plugin`` in an installed package, ``plugin/`` in a checkout."""
    here = Path(__file__).resolve().parent.parent.parent  # the package folder
    for d in (here / "_plugin", here.parent / "plugin"):
        if (d / "console.html").is_file():
            return d
    raise FileNotFoundError("the plugin/ browser files are missing from this installation")


def default_factory() -> Session:
    """The full default pipeline in live mode."""
    from liveness.pipeline import PipelineOptions, build_session

    try:
        opts = PipelineOptions(live=True)
    except TypeError:  # pragma: no cover - older pipeline options
        opts = PipelineOptions()
    return build_session(opts)


class _State:
    def __init__(self, options: ServeOptions, factory: SessionFactory) -> None:
        self.options = options
        self.factory = factory
        self.store = Store(options.db)
        self.pool = ThreadPoolExecutor(options.threads, thread_name_prefix="liveness-analysis")
        self.sessions: dict[str, LiveSession] = {}
        self.ticker: asyncio.Task[None] | None = None

    def live_count(self) -> int:
        return sum(1 for s in self.sessions.values() if s.state in ("connecting", "live"))


_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def _json_error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def _state(request: web.Request) -> _State:
    return request.app[_KEY_STATE]


def _require_key(request: web.Request) -> None:
    st = _state(request)
    status = key_status(request, st.options.api_key)
    if status != "ok":
        text = ("invalid API key" if status == "invalid"
                else "API key required (X-API-Key or Authorization: Bearer)")
        raise web.HTTPUnauthorized(text=json.dumps({"error": text}), content_type="application/json")


async def _read_json(request: web.Request, limit: int = 256 * 1024) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}), content_type="application/json") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json")
    return body


def _get_live(request: web.Request) -> LiveSession:
    sid = request.match_info["sid"]
    if not _ID_RE.match(sid):
        raise web.HTTPNotFound(text=json.dumps({"error": "no such session"}), content_type="application/json")
    live = _state(request).sessions.get(sid)
    if live is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such live session"}), content_type="application/json")
    return live


# -- middleware ----------------------------------------------------------------------------------
def _cors_middleware(origins: tuple[str, ...]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def cors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = origin is not None and ("*" in origins or origin in origins)
        if request.method == "OPTIONS" and allowed and request.path.startswith("/api/"):
            resp: web.StreamResponse = web.Response(status=204)
        else:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                if allowed:
                    exc.headers["Access-Control-Allow-Origin"] = origin or ""
                    exc.headers["Vary"] = "Origin"
                raise
        if allowed and request.path.startswith("/api/"):
            resp.headers["Access-Control-Allow-Origin"] = origin or ""
            resp.headers["Vary"] = "Origin"
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization, X-API-Key"
            resp.headers["Access-Control-Max-Age"] = "600"
        return resp

    return cors


@web.middleware
async def _headers_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def _csp(frame_ancestors: str) -> str:
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; "
        f"connect-src 'self' ws: wss:; frame-ancestors {frame_ancestors}; base-uri 'none'; form-action 'self'"
    )


def _page(request: web.Request, name: str, frame_ancestors: str = "'self'", **subst: str) -> web.Response:
    text = (plugin_dir() / name).read_text(encoding="utf-8")
    for k, v in subst.items():
        text = text.replace("{{" + k + "}}", v)
    resp = web.Response(text=text, content_type="text/html")
    resp.headers["Content-Security-Policy"] = _csp(frame_ancestors)
    return resp


# -- pages ---------------------------------------------------------------------------------------
_LOGIN_ERROR = '<p class="error" id="login-error" role="alert">Wrong API key: try again.</p>'


async def console_page(request: web.Request) -> web.Response:
    st = _state(request)
    if not is_authorised(request, st.options.api_key):
        return _page(request, "login.html", error="")
    from liveness.verdict.explain import console_tables

    # the console's plain-language texts (label wording, one line per signal) come from the
    # same tables as the HTML report, as JSON in a non-executed script element
    tables = json.dumps(console_tables(), ensure_ascii=False).replace("<", "\\u003c")
    signout = '<a href="/logout" id="signout">sign out</a>' if st.options.auth_enabled else ""
    return _page(request, "console.html", version=__version__, signout=signout, tables=tables)


async def login(request: web.Request) -> web.Response:
    st = _state(request)
    form = await request.post()
    key = str(form.get("key", ""))
    if st.options.api_key is None:
        raise web.HTTPFound("/")
    import hmac

    if not hmac.compare_digest(key.encode("utf-8"), st.options.api_key.encode("utf-8")):
        await asyncio.sleep(0.5)  # slow down guessing
        resp = _page(request, "login.html", error=_LOGIN_ERROR)
        resp.set_status(401)
        return resp
    resp = web.HTTPFound("/")
    resp.set_cookie(COOKIE, console_cookie_value(st.options.api_key), httponly=True, samesite="Strict", path="/")
    raise resp


async def logout(request: web.Request) -> web.Response:
    resp = web.HTTPFound("/")
    resp.del_cookie(COOKIE, path="/")
    raise resp


def _link_open(row: dict[str, Any] | None) -> bool:
    """A candidate link's session row is usable: unused, unexpired, session still waiting."""
    return (row is not None and row["token_used"] is None and (row["token_expires"] or 0) > time.time()
            and row["state"] == "created")


async def join_page(request: web.Request) -> web.Response:
    st = _state(request)
    token = request.match_info["token"]
    row = None
    if _TOKEN_RE.match(token):
        row = await st.store.call(st.store.session_for_token, hash_token(token))
    if not _link_open(row):
        resp = _page(request, "join_invalid.html")
        resp.set_status(404)
        return resp
    origins = " ".join(o for o in st.options.cors_origins if o != "*")
    ancestors = "*" if "*" in st.options.cors_origins else ("'self' " + origins).strip()
    return _page(request, "join.html", frame_ancestors=ancestors)


async def plugin_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if not re.match(r"^[a-z0-9_-]+\.(js|css|svg|png)$", name):
        raise web.HTTPNotFound()
    p = plugin_dir() / name
    if not p.is_file():
        raise web.HTTPNotFound()
    resp = web.FileResponse(p)
    if name.endswith(".js"):
        resp.headers["Access-Control-Allow-Origin"] = "*"  # the embed SDK may be loaded cross-origin
    return resp


# -- API -----------------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    st = _state(request)
    return web.json_response({"ok": True, "version": __version__, "protocol": PROTOCOL, "live_sessions": st.live_count()})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec(__version__))


def _base_url(request: web.Request) -> str:
    st = _state(request)
    if st.options.public_url:
        return st.options.public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


async def create_session(request: web.Request) -> web.Response:
    _require_key(request)
    st = _state(request)
    body = await _read_json(request) if request.can_read_body else {}
    label = body.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        return _json_error(400, "label must be a string of at most 200 characters")
    ttl = body.get("token_ttl_s", st.options.token_ttl_s)
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 10 <= ttl <= 7 * 86400:
        return _json_error(400, "token_ttl_s must be a number of seconds in [10, 604800]")
    if st.live_count() >= st.options.max_sessions:
        return _json_error(503, f"the server is at its limit of {st.options.max_sessions} live sessions")
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
            "protocol": PROTOCOL,
        },
        status=201,
    )


async def list_sessions(request: web.Request) -> web.Response:
    _require_key(request)
    st = _state(request)
    rows = await st.store.call(st.store.list_sessions, 100)
    for r in rows:
        live = st.sessions.get(r["id"])
        if live is not None:
            r["state"] = live.state
    return web.json_response({"sessions": rows})


async def session_status(request: web.Request) -> web.Response:
    _require_key(request)
    st = _state(request)
    sid = request.match_info["sid"]
    live = st.sessions.get(sid)
    if live is not None:
        return web.json_response(live.status())
    row = await st.store.call(st.store.get_session, sid) if _ID_RE.match(sid) else None
    if row is None:
        return _json_error(404, "no such session")
    return web.json_response(
        {"id": sid, "label": row["label"], "state": row["state"], "source": row["source"], "created": row["created"],
         "started": row["started"], "ended": row["ended"], "end_reason": row["end_reason"],
         "counters": row["counters"], "signals": row["signals"] or {}, "verdict": row["verdict"]}
    )


async def session_report(request: web.Request) -> web.Response:
    _require_key(request)
    doc = await _report_doc(request)
    sid = doc["session"]["id"]
    return web.json_response(
        {"schema": "liveness.serve-report/1", "version": __version__, "session": doc["session"],
         "events": doc["events"], "seconds": doc["seconds"],
         "thumbnails": [dict(t, url=f"/api/sessions/{sid}/thumbnails/{t['id']}.jpg") for t in doc["thumbnails"]],
         "html": f"/api/sessions/{sid}/report.html"}
    )


async def _report_doc(request: web.Request) -> dict[str, Any]:
    st = _state(request)
    sid = request.match_info["sid"]
    row = await st.store.call(st.store.get_session, sid) if _ID_RE.match(sid) else None
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
    _require_key(request)
    st = _state(request)
    doc = await _report_doc(request)
    ses = doc["session"]
    import base64

    thumbs = []
    for t in doc["thumbnails"]:
        jpeg = await st.store.call(st.store.thumbnail, ses["id"], t["id"])
        if jpeg:
            thumbs.append({"t": t["t"], "jpeg_b64": base64.b64encode(jpeg).decode(), "caption": t["reason"]})
    counters = ses.get("counters") or {}
    review = {
        "schema": "liveness.serve-report/1",
        "source": {"path": f"live session {ses['id']} {ses.get('label') or ''}".strip(),
                   "width": counters.get("width"), "height": counters.get("height"),
                   "analysed_width": counters.get("analysed_width"),
                   "analysed_height": counters.get("analysed_height"),
                   "duration_s": (doc["seconds"][-1]["second"] + 1) if doc["seconds"] else None,
                   "frames": counters.get("analysed")},
        "timeline": [
            {"t": r["second"] + 0.5, "face": r["face_fraction"] >= 0.5, "face_fraction": r["face_fraction"],
             "yaw": r["yaw"], "pitch": r["pitch"], "roll": r["roll"], **r["signals"]}
            for r in doc["seconds"]
        ],
        "signals": ses.get("signals") or {},
        "verdict": ses.get("verdict") or {"label": "inconclusive", "risk": None, "reasons": ["no verdict stored"]},
        "events": [{"t": e["t"], "kind": e["kind"], "message": e["message"], "data": e["data"]} for e in doc["events"]],
        "challenges": [e["data"] for e in doc["events"] if e["kind"] == "challenge.result"],
        "thumbnails": thumbs,
        "provenance": {"server": f"liveness serve {__version__}", "session": ses["id"], "state": ses["state"],
                       "source": ses.get("source"), "created": ses.get("created"), "started": ses.get("started"),
                       "ended": ses.get("ended"), "end_reason": ses.get("end_reason"),
                       "counters": json.dumps(ses.get("counters")),
                       "note": "timeline rows are per-second means of the live analysis"},
    }
    from liveness.verdict.report import render_html

    html = await asyncio.get_running_loop().run_in_executor(st.pool, render_html, review)
    resp = web.Response(text=html, content_type="text/html")
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return resp


async def thumbnail(request: web.Request) -> web.Response:
    _require_key(request)
    st = _state(request)
    sid = request.match_info["sid"]
    try:
        tid = int(request.match_info["tid"])
    except ValueError:
        return _json_error(404, "no such thumbnail")
    jpeg = await st.store.call(st.store.thumbnail, sid, tid)
    if jpeg is None:
        return _json_error(404, "no such thumbnail")
    return web.Response(body=jpeg, content_type="image/jpeg")


def _parse_offer(body: dict[str, Any], full: bool) -> tuple[str, str] | web.Response:
    """(sdp, source) of an offer body, or the 400 answer."""
    sdp, typ = body.get("sdp"), body.get("type", "offer")
    if not isinstance(sdp, str) or typ != "offer" or "m=video" not in sdp:
        return _json_error(400, "expected {\"type\": \"offer\", \"sdp\": ...} with a video track")
    source = body.get("source", "camera" if not full else "console")
    if not isinstance(source, str) or len(source) > 40:
        return _json_error(400, "source must be a short string")
    return sdp, source


async def _answer(
    request: web.Request, live: LiveSession, full: bool, body: dict[str, Any] | None = None,
    commit: Callable[[], Awaitable[bool]] | None = None,
) -> web.Response:
    """Answer an offer. A malformed offer (bad body or an SDP aiortc refuses) gets a 400 and
    leaves the session as it was, so the console or the candidate can try again. ``commit``
    runs once the answer is made; if it returns False the session ends and the answer is a 404."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    if body is None:
        body = await _read_json(request)
    parsed = _parse_offer(body, full)
    if isinstance(parsed, web.Response):
        return parsed
    sdp, source = parsed
    if live.pc is not None or live.state != "created":
        return _json_error(409, f"this session already has a peer or has ended (state {live.state})")
    # claim the session before the first await: a second offer arriving while the pipeline is
    # being built gets a 409 instead of building (and leaking) a second one
    live.role = "console" if full else "candidate"
    live.source = source
    live.state = "connecting"
    if live.core is None:  # build the pipeline first: a missing model is an answer, not a hang
        try:
            live.core = await asyncio.get_running_loop().run_in_executor(live.pool, live.factory)
        except Exception as exc:
            log.error("session %s: cannot build the analysis pipeline: %r", live.id, exc)
            live.request_end(f"analysis pipeline unavailable: {exc}")
            return _json_error(503, f"the analysis pipeline is unavailable: {exc}")
    pc = RTCPeerConnection()  # no STUN/TURN: host candidates only
    live.pc = pc
    got_video = asyncio.Event()

    @pc.on("datachannel")
    def on_datachannel(channel: Any) -> None:
        sink = Sink(channel.send, full, f"dc-{live.id}")

        def send_if_open(text: str) -> None:
            if channel.readyState == "open" and channel.bufferedAmount < 1 << 20:
                channel.send(text)

        sink._send = send_if_open  # noqa: SLF001
        live.add_sink(sink)

        @channel.on("message")
        def on_message(msg: str | bytes) -> None:
            _on_client_message(live, sink, msg, full)

        @channel.on("close")
        def on_close() -> None:
            live.remove_sink(sink)
            if live.state in ("connecting", "live"):  # the peer closed its connection
                live.request_end("peer closed the connection")

    @pc.on("track")
    def on_track(track: Any) -> None:
        if track.kind == "video" and not got_video.is_set():
            got_video.set()
            asyncio.ensure_future(live.start_media(track))
        else:
            from aiortc.contrib.media import MediaBlackhole

            hole = MediaBlackhole()
            hole.addTrack(track)
            asyncio.ensure_future(hole.start())

    @pc.on("connectionstatechange")
    async def on_state() -> None:
        if live.pc is pc:  # a refused offer's connection closing is not the session's end
            live.on_connection_state(pc.connectionState)

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
    except Exception as exc:
        log.info("session %s: bad offer: %r", live.id, exc)
        live.pc = None
        with contextlib.suppress(Exception):
            await pc.close()
        if live.state == "connecting":  # release the claim: the peer may send a good offer
            live.state, live.role, live.source = "created", None, None
        return _json_error(400, f"cannot use this offer: {exc}")
    if commit is not None and not await commit():
        # the link expired or was spent in the moment the answer took: media may already
        # flow, so this session ends rather than going back to waiting
        live.request_end("the join link expired or was used while connecting")
        return _json_error(404, "this link is invalid, expired or already used")
    await live.store.call(live.store.set_state, live.id, "connecting", source=source)
    return web.json_response({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp, "session": live.id})


def _on_client_message(live: LiveSession, sink: Sink, msg: str | bytes, full: bool) -> None:
    try:
        cmd = parse_command(msg)
    except InputError as exc:
        sink.send(dumps(message("ack", id=command_id(msg), ok=False, error=str(exc))))
        return
    if not full and cmd.cmd != "ping":
        sink.send(dumps(message("ack", id=cmd.id, cmd=cmd.cmd, ok=False, error="commands need the console role")))
        return
    sink.send(dumps(live.handle_command(cmd)))


async def console_offer(request: web.Request) -> web.Response:
    _require_key(request)
    return await _answer(request, _get_live(request), full=True)


async def candidate_offer(request: web.Request) -> web.Response:
    """The single-use link is spent only by an offer that is answered: a malformed body or an
    SDP that cannot be used gets a 400 and the link still works."""
    st = _state(request)
    token = request.match_info["token"]
    gone = _json_error(404, "this link is invalid, expired or already used")
    if not _TOKEN_RE.match(token):
        return gone
    body = await _read_json(request)
    parsed = _parse_offer(body, False)
    if isinstance(parsed, web.Response):
        return parsed
    th = hash_token(token)
    row = await st.store.call(st.store.session_for_token, th)
    if not _link_open(row) or row["id"] not in st.sessions:
        return gone
    live = st.sessions[row["id"]]

    async def spend() -> bool:  # atomic: of two racing offers only one can spend the link
        return await st.store.call(st.store.consume_token, th, time.time()) == live.id

    return await _answer(request, live, full=False, body=body, commit=spend)


async def command(request: web.Request) -> web.Response:
    _require_key(request)
    live = _get_live(request)
    body = await request.text()
    try:
        cmd = parse_command(body)
    except InputError as exc:
        return _json_error(400, str(exc))
    ack = live.handle_command(cmd)
    return web.json_response(ack, status=200 if ack["ok"] else 409)


async def stop(request: web.Request) -> web.Response:
    _require_key(request)
    live = _get_live(request)
    await live.end("stopped through the API")
    return web.json_response(live.status())


async def watch(request: web.Request) -> web.StreamResponse:
    _require_key(request)
    live = _get_live(request)
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=64 * 1024)
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
                _on_client_message(live, sink, msg.data, True)
            elif msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
    finally:
        live.remove_sink(sink)
        pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump_task
    return ws


# -- lifecycle -----------------------------------------------------------------------------------
async def _ticker(st: _State) -> None:
    """Status messages at ``status_hz``; expired, never-joined sessions are dropped from memory."""
    while True:
        await asyncio.sleep(1.0 / st.options.status_hz)
        now = time.time()
        for sid, live in list(st.sessions.items()):
            try:  # one session's failure (or a store error) must not stop the ticker for all
                if live.state == "live":
                    live.broadcast(live.status_message())
                    last = live.last_frame_mono or (live.started_mono or time.monotonic())
                    if time.monotonic() - last > st.options.media_timeout_s:
                        live.request_end(f"no media for {st.options.media_timeout_s:g} s")
                elif live.state == "created" and live.token_expires is not None and live.token_expires < now and live.pc is None:
                    st.sessions.pop(sid, None)
                    await st.store.call(st.store.set_state, sid, "expired")
                elif live.state == "ended" and live.ended is not None and now - live.ended > 600:
                    st.sessions.pop(sid, None)
            except Exception:
                log.exception("status tick failed for session %s", sid)


async def _on_startup(app: web.Application) -> None:
    st = app[_KEY_STATE]
    n = await st.store.call(st.store.mark_interrupted)
    if n:
        log.info("marked %d sessions of a previous run as ended", n)
    st.ticker = asyncio.create_task(_ticker(st))


async def _on_shutdown(app: web.Application) -> None:
    st = app[_KEY_STATE]
    if st.ticker is not None:
        st.ticker.cancel()
    await asyncio.gather(*(s.end("server shutting down") for s in st.sessions.values() if s.state != "ended"),
                         return_exceptions=True)


async def _on_cleanup(app: web.Application) -> None:
    st = app[_KEY_STATE]
    st.pool.shutdown(wait=True, cancel_futures=True)
    st.store.close()


def create_app(options: ServeOptions | None = None, factory: SessionFactory | None = None) -> web.Application:
    """The server application. ``factory`` builds one core :class:`liveness.Session` per live
    session (default: the full pipeline of ``liveness.pipeline.build_session``)."""
    options = options or ServeOptions()
    if options.marker_jitter:
        from liveness.apps.serve.rtp import install

        install()
    st = _State(options, factory or default_factory)
    app = web.Application(
        middlewares=[_cors_middleware(options.cors_origins), _headers_middleware], client_max_size=1024 * 1024
    )
    app[_KEY_OPTIONS] = options
    app[_KEY_STATE] = st
    r = app.router
    r.add_get("/", console_page)
    r.add_post("/login", login)
    r.add_get("/logout", logout)
    r.add_get("/join/{token}", join_page)
    r.add_get("/plugin/{name}", plugin_file)
    r.add_get("/api/health", health)
    r.add_get("/api/openapi.json", openapi)
    r.add_post("/api/sessions", create_session)
    r.add_get("/api/sessions", list_sessions)
    r.add_get("/api/sessions/{sid}", session_status)
    r.add_get("/api/sessions/{sid}/report", session_report)
    r.add_get("/api/sessions/{sid}/report.html", session_report_html)
    r.add_get("/api/sessions/{sid}/thumbnails/{tid}.jpg", thumbnail)
    r.add_post("/api/sessions/{sid}/offer", console_offer)
    r.add_post("/api/sessions/{sid}/commands", command)
    r.add_post("/api/sessions/{sid}/stop", stop)
    r.add_get("/api/sessions/{sid}/watch", watch)
    r.add_post("/api/join/{token}/offer", candidate_offer)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app
