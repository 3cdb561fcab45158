"""Mutated signalling for fuzzing ``liveness serve`` (``benchmarks/fuzz_protocol.py`` runs
thousands; ``tests/apps/serve/test_protocol_fuzz.py`` a hypothesis-chosen subset and a short
run against a live server).

Two kinds of case, each a pure function of an integer seed (every case can be replayed):

- :func:`bad_message`: one client message for the data channel, the watch WebSocket or
  ``POST /api/sessions/{id}/commands`` — fields of the wrong type, unknown commands and
  arguments, non-finite and absurd numbers, text that is not JSON or not UTF-8, JSON that is
  not an object, nesting thousands deep, strings past every size limit, lone surrogates.
- :func:`bad_offer`: one body for an offer route — an SDP truncated, with lines dropped,
  doubled or garbled, bogus ICE candidates (absurd ports, addresses, components), absurd
  numbers; or the JSON around it wrong (types, keys, nesting, size), or no JSON at all.

:func:`valid_commands` are the well-formed messages the fuzzer mixes in (never ``stop``).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

__all__ = ["MESSAGE_MUTATIONS", "OFFER_MUTATIONS", "bad_message", "bad_offer", "mutate_sdp", "valid_commands"]

PROTOCOL = "liveness.dc/1"  # liveness.apps.serve.protocol.PROTOCOL, without importing the server


def valid_commands(rng: random.Random) -> dict[str, Any]:
    """A well-formed command that leaves the session running."""
    cmd = rng.choice(("ping", "set_crop", "clear_crop", "start_challenges"))
    args: dict[str, Any] = {}
    if cmd == "set_crop":
        w, h = rng.uniform(0.05, 0.5), rng.uniform(0.05, 0.5)
        args = {"x": rng.uniform(0, 1 - w), "y": rng.uniform(0, 1 - h), "w": w, "h": h}
    elif cmd == "start_challenges":
        args = {"count": rng.randint(1, 3)}
    return {"v": PROTOCOL, "type": "command", "id": f"f{rng.randrange(10**6)}", "cmd": cmd, "args": args}


_WRONG: tuple[Callable[[random.Random], Any], ...] = (
    lambda r: r.randint(-(10**6), 10**6),
    lambda r: 10 ** r.randint(20, 400),
    lambda r: r.uniform(-1e9, 1e9),
    lambda r: r.choice((True, False, None)),
    lambda r: [r.randint(0, 9) for _ in range(r.randint(0, 5))],
    lambda r: {"k": r.randint(0, 9)},
    lambda r: "x" * r.randint(0, 300),
    lambda r: "",
    lambda r: r.choice(("stop", "ping", "command", "result", PROTOCOL)),
)


def _wrong_value(r: random.Random) -> Any:
    return r.choice(_WRONG)(r)


def _m_valid(r: random.Random) -> str | bytes:
    return json.dumps(valid_commands(r))


def _m_wrong_type(r: random.Random) -> str | bytes:
    msg = valid_commands(r)
    for _ in range(r.randint(1, 3)):
        key = r.choice(("v", "type", "id", "cmd", "args", "args.x", "args.count", "args.kinds", "args.reason"))
        if key.startswith("args."):
            if not isinstance(msg.get("args"), dict):
                msg["args"] = {}
            msg["args"][key[5:]] = _wrong_value(r)
        else:
            msg[key] = _wrong_value(r)
    if r.random() < 0.3:
        msg.pop(r.choice(list(msg)), None)
    return json.dumps(msg)


def _m_numbers(r: random.Random) -> str | bytes:
    vals = ("NaN", "Infinity", "-Infinity", "1e309", "-0", "1e-400", "123456789012345678901234567890", "0.5",
            "9" * 5000)  # past Python's 4300-digit limit on int(str)
    cmd = r.choice(("set_crop", "start_challenges"))
    if cmd == "set_crop":
        args = ", ".join(f'"{k}": {r.choice(vals)}' for k in "xywh")
    else:
        args = f'"count": {r.choice(vals)}'
    cid = r.choice(("1", '"n"', "9" * 5000))
    return f'{{"v": "{PROTOCOL}", "type": "command", "id": {cid}, "cmd": "{cmd}", "args": {{{args}}}}}'


def _m_not_json(r: random.Random) -> str | bytes:
    good = json.dumps(valid_commands(r))
    choice = r.randrange(5)
    if choice == 0:
        return good[: r.randrange(len(good))]
    if choice == 1:
        return bytes(r.randrange(256) for _ in range(r.randint(0, 200)))
    if choice == 2:
        return b"\xff\xfe" + good.encode()  # not UTF-8
    if choice == 3:
        return "".join(r.choice("{}[]\",:0123456789abc \\") for _ in range(r.randint(1, 200)))
    return good.replace('"', "'")


def _m_non_object(r: random.Random) -> str | bytes:
    return json.dumps(r.choice(([], [valid_commands(r)], "command", 42, None, True, 1.5, [[[]]])))


def _m_deep(r: random.Random) -> str | bytes:
    depth = r.choice((100, 1000, 5000, 8000))
    opener, closer = r.choice((("[", "]"), ('{"a":', "}")))
    inner = opener * depth + "1" + closer * depth
    if r.random() < 0.5:  # inside a message that is otherwise well-formed
        return f'{{"v": "{PROTOCOL}", "type": "command", "cmd": "ping", "args": {{"kinds": {inner}}}}}'
    return inner


def _m_huge(r: random.Random) -> str | bytes:
    size = r.choice((16 * 1024, 16 * 1024 + 1, 70 * 1024, 300 * 1024))
    msg = valid_commands(r)
    msg["id"] = "i" * size
    return json.dumps(msg)


def _m_unknown(r: random.Random) -> str | bytes:
    msg = valid_commands(r)
    k = r.randrange(4)
    if k == 0:
        msg["cmd"] = r.choice(("shutdown", "eval", "__class__", "", "PING", "ping ", "set_crop\x00"))
    elif k == 1:
        msg["args"] = {**msg["args"], r.choice(("admin", "__proto__", "x" * 100)): 1}
    elif k == 2:
        msg["type"] = r.choice(("result", "hello", "bye", "ack", "Command"))
    else:
        msg["v"] = r.choice(("liveness.dc/0", "liveness.dc/2", "", None, 1))
    return json.dumps(msg)


def _m_binary(r: random.Random) -> str | bytes:
    return json.dumps(valid_commands(r)).encode()


def _m_unicode(r: random.Random) -> str | bytes:
    msg = json.dumps(valid_commands(r))
    junk = r.choice(("\\ud800", "\\udfff", "\\u0000", "\\u202e", "\\uffff"))
    return msg.replace('"f', f'"{junk}f', 1)


Mutation = Callable[[random.Random], "str | bytes"]

MESSAGE_MUTATIONS: dict[str, Mutation] = {
    "valid": _m_valid, "wrong_type": _m_wrong_type, "numbers": _m_numbers, "not_json": _m_not_json,
    "non_object": _m_non_object, "deep": _m_deep, "huge": _m_huge, "unknown": _m_unknown,
    "binary": _m_binary, "unicode": _m_unicode,
}


def bad_message(case: int) -> tuple[str | bytes, str]:
    """(message, mutation name) of case number ``case``."""
    r = random.Random(case)
    name = r.choice(sorted(MESSAGE_MUTATIONS))
    return MESSAGE_MUTATIONS[name](r), name


# -- offers ------------------------------------------------------------------------------------

def _bad_candidate(r: random.Random) -> str:
    parts = [
        f"a=candidate:{r.choice(('1', 'x' * 300, '-1', ''))}",
        r.choice(("1", "2", "0", "99999", "a")),
        r.choice(("udp", "UDP", "tcp", "sctp", "")),
        r.choice(("2130706431", "0", "-5", "99999999999999999999", "n")),
        r.choice(("127.0.0.1", "::1", "999.1.1.1", "fe80::1%eth0", "localhost", "a.local", "", "0.0.0.0")),
        r.choice(("9", "0", "65536", "-1", "99999999", "p")),
        "typ", r.choice(("host", "srflx", "relay", "prflx", "bogus")),
    ]
    if r.random() < 0.3:
        parts = parts[: r.randrange(len(parts))]
    return " ".join(parts)


def mutate_sdp(sdp: str, r: random.Random) -> str:
    """One SDP mutation of ``sdp`` (an offer aiortc would accept)."""
    lines = sdp.split("\r\n")
    k = r.randrange(8)
    if k == 0:
        return sdp[: r.randrange(len(sdp))]
    if k == 1:
        for _ in range(r.randint(1, 5)):
            if len(lines) > 1:
                lines.pop(r.randrange(len(lines)))
    elif k == 2:
        i = r.randrange(len(lines))
        lines[i:i] = [lines[i]] * r.randint(1, 50)
    elif k == 3:
        for _ in range(r.randint(1, 20)):
            lines.insert(r.randrange(len(lines)), _bad_candidate(r))
    elif k == 4:
        chars = list(sdp)
        for _ in range(r.randint(1, 40)):
            chars[r.randrange(len(chars))] = r.choice("0123456789 =:/\r\n\x00xyz")
        return "".join(chars)
    elif k == 5:
        import re

        return re.sub(r"\d+", lambda m: r.choice((m.group(0), "0", "4294967296", "-1", "9" * 40)), sdp)
    elif k == 6:
        keep = [ln for ln in lines if not ln.startswith(r.choice(("a=ice-", "a=fingerprint", "a=setup", "a=rtpmap",
                                                                   "a=mid", "a=group", "c=", "m=application")))]
        lines = keep
    else:
        m = next((i for i, ln in enumerate(lines) if ln.startswith("m=video")), 0)
        lines[m:m] = lines[m:] * r.randint(1, 8)  # the video section many times over
    return "\r\n".join(lines)


def _o_sdp(r: random.Random, sdp: str) -> bytes:
    return json.dumps({"type": "offer", "sdp": mutate_sdp(sdp, r), "source": "fuzz"}).encode()


def _o_fields(r: random.Random, sdp: str) -> bytes:
    body: dict[str, Any] = {"type": "offer", "sdp": sdp, "source": "fuzz"}
    for _ in range(r.randint(1, 3)):
        body[r.choice(("type", "sdp", "source", "extra"))] = _wrong_value(r)
    if r.random() < 0.3:
        body.pop(r.choice(list(body)), None)
    return json.dumps(body).encode()


def _o_body(r: random.Random, sdp: str) -> bytes:
    k = r.randrange(6)
    if k == 0:
        return b""
    if k == 1:
        return bytes(r.randrange(256) for _ in range(r.randint(1, 500)))
    if k == 2:
        return json.dumps(r.choice(([], "offer", 1, None, [{"type": "offer", "sdp": sdp}]))).encode()
    if r.random() < 0.2:
        return b'{"type": "offer", "sdp": ' + b"9" * 5000 + b"}"  # an int past the 4300-digit limit
    if k == 3:
        depth = r.choice((1000, 20000, 100000))
        return b"[" * depth + b"]" * depth
    if k == 4:
        return json.dumps({"type": "offer", "sdp": sdp + "a=x:" + "y" * r.choice((100_000, 300_000))}).encode()
    return json.dumps({"type": "offer", "sdp": sdp})[: r.randrange(10, 200)].encode()


OfferMutation = Callable[[random.Random, str], bytes]

OFFER_MUTATIONS: dict[str, OfferMutation] = {"sdp": _o_sdp, "fields": _o_fields, "body": _o_body}


def bad_offer(case: int, sdp: str) -> tuple[bytes, str]:
    """(request body, mutation name) of case number ``case``, from the valid offer ``sdp``."""
    r = random.Random(case)
    name = r.choice(sorted(OFFER_MUTATIONS))
    return OFFER_MUTATIONS[name](r, sdp), name
