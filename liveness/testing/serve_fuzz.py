"""A protocol fuzzer for a running ``liveness serve``: the cases of
:mod:`liveness.testing.fuzz_protocol` sent to every signalling surface, and the scenarios that
break state machines (offers after stop, concurrent offers, floods). Needs aiohttp and aiortc.

:func:`fuzz_server` returns a :class:`ProtocolFuzzReport`; a *finding* is any answer the
server should never give: a 5xx, a refused scenario invariant (two answered offers for one
session, an offer answered after stop), a message left unanswered, or the server not answering
at all. ``benchmarks/fuzz_protocol.py`` runs it at scale beside a live session it keeps
checking; the tests run a short one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from liveness.testing.fuzz_protocol import bad_message, bad_offer, valid_commands

__all__ = ["KINDS", "SCENARIOS", "FuzzFinding", "ProtocolFuzzReport", "fuzz_server"]

_KINDS = ("command", "watch", "channel", "offer", "candidate_offer")
_SCENARIOS = ("after_stop", "concurrent_offers", "concurrent_candidate", "flood")
_WS_LIMIT = 64 * 1024  # the watch socket's max_msg_size
_ACK_WAIT_S = 3.0


@dataclass(frozen=True)
class FuzzFinding:
    """One answer the server should not have given."""

    case: int
    kind: str
    mutation: str
    what: str


@dataclass(frozen=True)
class ProtocolFuzzReport:
    """What a fuzzing run sent and what came back. ``counts``: cases per kind and scenario;
    ``statuses``: HTTP statuses answered; ``answered``/``unanswered``: messages over the data
    channel and the watch socket that should get an ``ack``; ``findings``: see the module."""

    cases: int
    seconds: float
    counts: tuple[tuple[str, int], ...]
    statuses: tuple[tuple[int, int], ...]
    answered: int
    unanswered: int
    findings: tuple[FuzzFinding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "seconds": round(self.seconds, 2), "counts": dict(self.counts),
                "statuses": {str(k): v for k, v in self.statuses}, "answered": self.answered,
                "unanswered": self.unanswered,
                "findings": [f.__dict__ for f in self.findings]}


async def _offer_sdp() -> str:
    """A valid offer (a data channel and a video section), as a browser would send it."""
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    try:
        pc.createDataChannel("liveness")
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


@dataclass
class _Peer:
    """A connected client of one fuzz session: its data channel and watch socket."""

    sid: str
    pc: Any = None
    channel: Any = None
    ws: Any = None
    acks: int = 0
    ws_acks: int = 0
    ended: bool = False
    opened: asyncio.Event = field(default_factory=asyncio.Event)


class _Fuzzer:
    def __init__(self, http: Any, base: str, key: str | None, sdp: str) -> None:
        self.http, self.base, self.sdp = http, base, sdp
        self.auth = {"X-API-Key": key} if key else {}
        self.statuses: Counter[int] = Counter()
        self.counts: Counter[str] = Counter()
        self.findings: list[FuzzFinding] = []
        self.answered = self.unanswered = 0
        self.peer: _Peer | None = None
        self.pcs: list[Any] = []

    def find(self, case: int, kind: str, mutation: str, what: str) -> None:
        self.findings.append(FuzzFinding(case, kind, mutation, what[:300]))

    async def post(self, path: str, body: bytes | str | None, case: int, kind: str, mutation: str,
                   headers: dict[str, str] | None = None) -> tuple[int, Any]:
        try:
            async with self.http.post(self.base + path, data=body, headers={**self.auth, **(headers or {})}) as r:
                text = await r.text()
                self.statuses[r.status] += 1
                if r.status >= 500:
                    self.find(case, kind, mutation, f"HTTP {r.status}: {text}")
                try:
                    return r.status, json.loads(text)
                except ValueError:
                    return r.status, text
        except Exception as exc:  # the server closed the connection or did not answer
            self.find(case, kind, mutation, f"no answer: {exc!r}")
            return 0, None

    async def session(self) -> dict[str, Any]:
        async with self.http.post(self.base + "/api/sessions", json={"label": "fuzz"}, headers=self.auth) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"cannot create a fuzz session: {r.status} {body}")
            return dict(body)

    # -- the connected peer ----------------------------------------------------------------
    async def connected(self) -> _Peer:
        if self.peer is not None and not self.peer.ended and not (self.peer.ws is not None and self.peer.ws.closed):
            return self.peer
        if self.peer is not None:
            await self.drop(self.peer)
        from aiortc import RTCPeerConnection, RTCSessionDescription

        s = await self.session()
        peer = _Peer(s["id"])
        pc = RTCPeerConnection()
        peer.pc, peer.channel = pc, pc.createDataChannel("liveness")
        pc.addTransceiver("video", direction="sendonly")

        @peer.channel.on("open")
        def _open() -> None:
            peer.opened.set()

        @peer.channel.on("message")
        def _msg(text: str | bytes) -> None:
            with contextlib.suppress(ValueError, TypeError):
                m = json.loads(text)
                if m.get("type") == "ack":
                    peer.acks += 1
                elif m.get("type") == "bye":
                    peer.ended = True

        await pc.setLocalDescription(await pc.createOffer())
        async with self.http.post(f"{self.base}/api/sessions/{s['id']}/offer", headers=self.auth,
                                  json={"type": "offer", "sdp": pc.localDescription.sdp}) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"the fuzz peer's offer was refused: {r.status} {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(peer.opened.wait(), 30)
        peer.ws = await self.http.ws_connect(f"{self.base}/api/sessions/{s['id']}/watch", headers=self.auth)
        asyncio.get_running_loop().create_task(self._read_ws(peer))
        self.peer = peer
        return peer

    async def _read_ws(self, peer: _Peer) -> None:
        with contextlib.suppress(Exception):
            async for msg in peer.ws:
                with contextlib.suppress(ValueError, TypeError, AttributeError):
                    m = json.loads(msg.data)
                    if m.get("type") == "ack":
                        peer.ws_acks += 1
                    elif m.get("type") == "bye":
                        peer.ended = True

    async def drop(self, peer: _Peer) -> None:
        with contextlib.suppress(Exception):
            if peer.ws is not None:
                await peer.ws.close()
        with contextlib.suppress(Exception):
            await peer.pc.close()

    async def wait_acks(self, peer: _Peer, attr: str, want: int, case: int, kind: str, mutation: str) -> None:
        end = time.monotonic() + _ACK_WAIT_S
        while getattr(peer, attr) < want and time.monotonic() < end and not peer.ended:
            await asyncio.sleep(0.005)
        if getattr(peer, attr) >= want:
            self.answered += 1
        elif not peer.ended:
            self.unanswered += 1
            self.find(case, kind, mutation, "message left unanswered")
            setattr(peer, attr, want)  # count on from here

    # -- cases ------------------------------------------------------------------------------
    async def run_case(self, kind: str, case: int) -> None:
        self.counts[kind] += 1
        if kind in ("offer", "candidate_offer"):
            body, mutation = bad_offer(case, self.sdp)
            s = await self.session()
            path = (f"/api/sessions/{s['id']}/offer" if kind == "offer" else
                    f"/api/join/{s['token']}/offer")
            await self.post(path, body, case, kind, mutation, {"Content-Type": "application/json"})
            return
        msg, mutation = bad_message(case)
        if kind == "command":
            peer = await self.connected()
            status, _ = await self.post(f"/api/sessions/{peer.sid}/commands", msg, case, kind, mutation)
            if status == 409:
                peer.ended = True  # a fuzzed command stopped it: the next case makes another
            return
        peer = await self.connected()
        if kind == "watch":
            try:
                if isinstance(msg, bytes):
                    await peer.ws.send_bytes(msg)
                else:
                    await peer.ws.send_str(msg)
            except (UnicodeEncodeError, ConnectionError, RuntimeError):
                return  # the client cannot send it (a lone surrogate) or the socket closed
            if isinstance(msg, str) and len(msg.encode("utf-8", "surrogatepass")) <= _WS_LIMIT:
                await self.wait_acks(peer, "ws_acks", peer.ws_acks + 1, case, kind, mutation)
            return
        try:  # channel
            peer.channel.send(msg)
        except Exception:
            return  # the client refused it (size, encoding)
        if len(msg) <= 16 * 1024 + 64:
            await self.wait_acks(peer, "acks", peer.acks + 1, case, kind, mutation)

    async def scenario(self, name: str, case: int) -> None:
        self.counts[name] += 1
        r = random.Random(case)
        good = json.dumps({"type": "offer", "sdp": self.sdp})
        ctype = {"Content-Type": "application/json"}
        if name == "after_stop":
            s = await self.session()
            await self.post(f"/api/sessions/{s['id']}/stop", None, case, name, "stop")
            st, _ = await self.post(f"/api/sessions/{s['id']}/offer", good, case, name, "offer", ctype)
            if st != 409:
                self.find(case, name, "offer", f"an offer after stop got {st}, not 409")
            st, _ = await self.post(f"/api/join/{s['token']}/offer", good, case, name, "candidate", ctype)
            if st != 404:
                self.find(case, name, "candidate", f"a candidate offer after stop got {st}, not 404")
        elif name in ("concurrent_offers", "concurrent_candidate"):
            s = await self.session()
            path = (f"/api/sessions/{s['id']}/offer" if name == "concurrent_offers" else f"/api/join/{s['token']}/offer")
            n = r.randint(3, 8)
            got = await asyncio.gather(*(self.post(path, good, case, name, "offer", ctype) for _ in range(n)))
            codes = sorted(st for st, _ in got)
            if codes.count(200) != 1 or any(c not in (200, 404, 409) for c in codes):
                self.find(case, name, "offer", f"{n} concurrent offers for one session got {codes}")
        elif name == "flood":
            peer = await self.connected()
            n = r.choice((500, 2000))
            base = peer.acks
            for _ in range(n):
                peer.channel.send(json.dumps(valid_commands(r) | {"cmd": "ping", "args": {}}))
            end = time.monotonic() + 30
            while peer.acks < base + n and time.monotonic() < end and not peer.ended:
                await asyncio.sleep(0.02)
            if peer.acks < base + n and not peer.ended:
                self.find(case, name, "data channel", f"{peer.acks - base} of {n} flooded pings answered")
            got = await asyncio.gather(*(self.http.get(self.base + "/api/health") for _ in range(200)),
                                       return_exceptions=True)
            for g in got:
                if isinstance(g, BaseException):
                    self.find(case, name, "http", f"no answer: {g!r}")
                else:
                    self.statuses[g.status] += 1
                    if g.status >= 500:
                        self.find(case, name, "http", f"HTTP {g.status}")
                    g.release()


KINDS = _KINDS
SCENARIOS = _SCENARIOS


async def fuzz_server(base: str, key: str | None, cases: int, seed: int = 0, scenario_every: int = 50,
                      kinds: tuple[str, ...] = _KINDS) -> ProtocolFuzzReport:
    """Send ``cases`` fuzzed cases (``kinds`` in turn, of :data:`KINDS`) to the server at
    ``base``, with a scenario (:data:`SCENARIOS` in turn) after every ``scenario_every`` of
    them (0: none); then check the server still answers."""
    unknown = set(kinds) - set(_KINDS)
    if unknown or not kinds:
        raise ValueError(f"kinds must be some of {_KINDS}, got {kinds}")
    import aiohttp

    t0 = time.monotonic()
    sdp = await _offer_sdp()
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        f = _Fuzzer(http, base, key, sdp)
        try:
            for i in range(cases):
                case = seed * 1_000_003 + i
                await f.run_case(kinds[i % len(kinds)], case)
                if scenario_every and (i + 1) % scenario_every == 0:
                    await f.scenario(_SCENARIOS[(i // scenario_every) % len(_SCENARIOS)], case)
            async with http.get(base + "/api/health") as r:
                if r.status != 200 or not (await r.json()).get("ok"):
                    f.find(-1, "health", "", f"health answered {r.status}")
        finally:
            if f.peer is not None:
                await f.drop(f.peer)
    return ProtocolFuzzReport(cases, time.monotonic() - t0, tuple(sorted(f.counts.items())),
                              tuple(sorted(f.statuses.items())), f.answered, f.unanswered, tuple(f.findings))
