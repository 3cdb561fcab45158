"""What every route of the server shares: the server state (options, store, thread pool, live
sessions), its key in the aiohttp application, and the small request helpers."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiohttp import web

from liveness.apps.serve.auth import (
    key_status,
)
from liveness.apps.serve.heap import TrimPolicy
from liveness.apps.serve.live import LiveSession
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.store import Store
from liveness.core.session import LIVE_HORIZON_S, Session

__all__ = ["ID_RE", "KEY_OPTIONS", "KEY_STATE", "TOKEN_RE", "ServerState", "SessionFactory", "default_factory",
           "get_live", "json_error", "link_open", "plugin_dir", "read_json", "require_key", "state_of"]

log = logging.getLogger("liveness.serve")


SessionFactory = Callable[[], Session]


KEY_OPTIONS = web.AppKey("options", ServeOptions)


KEY_STATE: web.AppKey[ServerState] = web.AppKey("state")


def plugin_dir() -> Path:
    """The browser files: ``liveness/_plugin`` in an installed package, ``plugin/`` in a checkout."""
    here = Path(__file__).resolve().parent.parent.parent  # the package folder
    for d in (here / "_plugin", here.parent / "plugin"):
        if (d / "console.html").is_file():
            return d
    raise FileNotFoundError("the plugin/ browser files are missing from this installation")


def default_factory(horizon_s: float = LIVE_HORIZON_S) -> Session:
    """The full default pipeline in live mode, keeping ``horizon_s`` seconds of per-frame history."""
    from liveness.pipeline import PipelineOptions, build_session

    return build_session(PipelineOptions(live=True, horizon_s=horizon_s))


class ServerState:
    def __init__(self, options: ServeOptions, factory: SessionFactory) -> None:
        self.options = options
        self.factory = factory
        self.store = Store(options.db)
        self.pool = ThreadPoolExecutor(options.threads, thread_name_prefix="liveness-analysis")
        self.sessions: dict[str, LiveSession] = {}
        self.ticker: asyncio.Task[None] | None = None
        self.heap_trims = 0  # times the ticker gave freed heap pages back (issue 18 soak)
        self.trim = TrimPolicy(options.trim_settle_s, options.trim_growth_mib, options.trim_interval_s,
                               time.monotonic())

    def want_trim(self, delay_s: float | None = None) -> None:
        """Ask the ticker to give freed heap pages back ``delay_s`` seconds from now (default
        ``options.trim_settle_s``), after memory was freed in bulk: a session's models loaded
        and its first frames run, a session ended, a review finished. A later request moves
        the trim later, so a burst of them gives one trim once things settle."""
        self.trim.want(time.monotonic(), delay_s)

    def live_count(self) -> int:
        return sum(1 for s in self.sessions.values() if s.state in ("connecting", "live"))

    def pending_count(self) -> int:
        """Sessions created and not yet joined (no media yet)."""
        return sum(1 for s in self.sessions.values() if s.state == "created")


ID_RE = re.compile(r"^[0-9a-f]{16}$")


TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")


def json_error(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status)


def state_of(request: web.Request) -> ServerState:
    return request.app[KEY_STATE]


def require_key(request: web.Request) -> None:
    st = state_of(request)
    status = key_status(request, st.options.api_key)
    if status != "ok":
        text = ("invalid API key" if status == "invalid"
                else "API key required (X-API-Key or Authorization: Bearer)")
        raise web.HTTPUnauthorized(text=json.dumps({"error": text}), content_type="application/json")


async def read_json(request: web.Request, limit: int = 256 * 1024) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    try:
        body = await request.json()
    except ValueError as exc:  # not JSON, not UTF-8, or an integer of more than 4300 digits
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}), content_type="application/json") from exc
    except RecursionError as exc:  # "[[[[..." within the size limit
        raise web.HTTPBadRequest(text=json.dumps({"error": "body is nested too deeply"}), content_type="application/json") from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text=json.dumps({"error": "body must be a JSON object"}), content_type="application/json")
    return body


def get_live(request: web.Request) -> LiveSession:
    sid = request.match_info["sid"]
    if not ID_RE.match(sid):
        raise web.HTTPNotFound(text=json.dumps({"error": "no such session"}), content_type="application/json")
    live = state_of(request).sessions.get(sid)
    if live is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such live session"}), content_type="application/json")
    return live


def link_open(row: dict[str, Any] | None) -> bool:
    """A candidate link's session row is usable: unused, unexpired, session still waiting."""
    return (row is not None and row["token_used"] is None and (row["token_expires"] or 0) > time.time()
            and row["state"] == "created")
