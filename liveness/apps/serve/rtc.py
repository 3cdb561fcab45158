"""WebRTC signalling: an offer (the console's, or the candidate's through a single-use link)
becomes a peer connection whose video track feeds the live session, and whose data channel
carries the protocol."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from liveness.apps.serve.auth import (
    hash_token,
)
from liveness.apps.serve.live import LiveSession, Sink
from liveness.apps.serve.protocol import command_id, dumps, message, parse_command
from liveness.apps.serve.state import (
    TOKEN_RE,
    get_live,
    json_error,
    link_open,
    read_json,
    require_key,
    state_of,
)
from liveness.core.errors import InputError

__all__ = ["candidate_offer", "console_offer", "on_client_message"]

log = logging.getLogger("liveness.serve")


def _parse_offer(body: dict[str, Any], full: bool) -> tuple[str, str] | web.Response:
    """(sdp, source) of an offer body, or the 400 answer."""
    sdp, typ = body.get("sdp"), body.get("type", "offer")
    if not isinstance(sdp, str) or typ != "offer" or "m=video" not in sdp:
        return json_error(400, "expected {\"type\": \"offer\", \"sdp\": ...} with a video track")
    source = body.get("source", "camera" if not full else "console")
    if not isinstance(source, str) or len(source) > 40:
        return json_error(400, "source must be a short string")
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
        body = await read_json(request)
    parsed = _parse_offer(body, full)
    if isinstance(parsed, web.Response):
        return parsed
    sdp, source = parsed
    if live.pc is not None or live.state != "created":
        return json_error(409, f"this session already has a peer or has ended (state {live.state})")
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
            return json_error(503, f"the analysis pipeline is unavailable: {exc}")
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
            on_client_message(live, sink, msg, full)

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
        return json_error(400, f"cannot use this offer: {exc}")
    if commit is not None and not await commit():
        # the link expired or was spent in the moment the answer took: media may already
        # flow, so this session ends rather than going back to waiting
        live.request_end("the join link expired or was used while connecting")
        return json_error(404, "this link is invalid, expired or already used")
    await live.store.call(live.store.set_state, live.id, "connecting", source=source)
    return web.json_response({"type": pc.localDescription.type, "sdp": pc.localDescription.sdp, "session": live.id})


def on_client_message(live: LiveSession, sink: Sink, msg: str | bytes, full: bool) -> None:
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
    require_key(request)
    return await _answer(request, get_live(request), full=True)


async def candidate_offer(request: web.Request) -> web.Response:
    """The single-use link is spent only by an offer that is answered: a malformed body or an
    SDP that cannot be used gets a 400 and the link still works."""
    st = state_of(request)
    token = request.match_info["token"]
    gone = json_error(404, "this link is invalid, expired or already used")
    if not TOKEN_RE.match(token):
        return gone
    body = await read_json(request)
    parsed = _parse_offer(body, False)
    if isinstance(parsed, web.Response):
        return parsed
    th = hash_token(token)
    row = await st.store.call(st.store.session_for_token, th)
    if row is None or not link_open(row) or row["id"] not in st.sessions:
        return gone
    live = st.sessions[row["id"]]

    async def spend() -> bool:  # atomic: of two racing offers only one can spend the link
        return await st.store.call(st.store.consume_token, th, time.time()) == live.id

    return await _answer(request, live, full=False, body=body, commit=spend)
