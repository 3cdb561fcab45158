"""The aiohttp application: middleware, the status ticker and lifecycle, and the route table
(pages in :mod:`.pages`, the JSON API in :mod:`.api`, WebRTC offers in :mod:`.rtc`)."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from liveness.apps.serve import api, integrations, pages, rtc
from liveness.apps.serve.csrf import csrf_middleware
from liveness.apps.serve.heap import limit_arenas, process_rss_mib, trim_heap
from liveness.apps.serve.options import ServeOptions
from liveness.apps.serve.ratelimit import rate_limit_middleware
from liveness.apps.serve.state import (
    KEY_OPTIONS,
    KEY_STATE,
    ServerState,
    SessionFactory,
    default_factory,
    plugin_dir,
)

__all__ = ["create_app", "default_factory", "plugin_dir"]


log = logging.getLogger("liveness.serve")


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
    """Every answer (errors included) is nosniff, no-referrer, not cached, and not framable
    unless its page says otherwise (the candidate page allows the ``--cors-origin`` origins)."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        _secure(exc.headers)
        raise
    _secure(resp.headers)
    return resp


def _secure(headers: Any) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cache-Control", "no-store")
    headers.setdefault("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")


async def _ticker(st: ServerState) -> None:
    """Status messages at ``status_hz``; expired, never-joined sessions are dropped from memory;
    freed heap pages go back to the system when ``st.trim`` (:class:`.heap.TrimPolicy`) says:
    every ``trim_interval_s``, ``trim_settle_s`` after a session went live or stopped being live
    (and after :meth:`ServerState.want_trim`), and, if set, when the RSS grew
    ``trim_growth_mib`` above its settled level."""
    was_live: set[str] = set()
    while True:
        await asyncio.sleep(1.0 / st.options.status_hz)
        now = time.time()
        live_now = {sid for sid, s in st.sessions.items() if s.state == "live"}
        if live_now != was_live:  # one went live (models, first frames) or ended: bulk frees
            st.want_trim()
            was_live = live_now
        mono = time.monotonic()
        if st.trim.should_trim(mono, process_rss_mib() if st.trim.growth_mib else None):
            st.trim.trimmed(mono)
            try:  # in a thread: a trim of a large heap takes milliseconds
                await asyncio.get_running_loop().run_in_executor(None, trim_heap)
                st.heap_trims += 1
            except Exception:
                log.exception("heap trim failed")
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
    st = app[KEY_STATE]
    n = await st.store.call(st.store.mark_interrupted)
    if n:
        log.info("marked %d sessions of a previous run as ended", n)
    st.ticker = asyncio.create_task(_ticker(st))


async def _on_shutdown(app: web.Application) -> None:
    st = app[KEY_STATE]
    if st.ticker is not None:
        st.ticker.cancel()
    await asyncio.gather(*(s.end("server shutting down") for s in st.sessions.values() if s.state != "ended"),
                         return_exceptions=True)


async def _on_cleanup(app: web.Application) -> None:
    st = app[KEY_STATE]
    st.pool.shutdown(wait=True, cancel_futures=True)
    st.store.close()


def create_app(options: ServeOptions | None = None, factory: SessionFactory | None = None,
               reviewer: integrations.Reviewer | None = None) -> web.Application:
    """The server application. ``factory`` builds one core :class:`liveness.Session` per live
    session (default: the full pipeline of ``liveness.pipeline.build_session``); ``reviewer``
    reviews a recording sent over REST (default: :func:`.reviews.default_reviewer`).

    OpenCV runs single-threaded from here on, as under the ``liveness`` command line: a live
    frame's OpenCV calls are small, its own thread pool took 2.5 ms of CPU a frame more for the
    same work (``benchmarks/README_serve.md``), and the sessions use the cores already. glibc
    makes at most ``options.malloc_arenas`` malloc arenas from here on (:mod:`.heap`)."""
    from liveness.apps.common import single_threaded_opencv

    single_threaded_opencv()
    options = options or ServeOptions()
    limit_arenas(options.malloc_arenas)  # process-wide, as OpenCV's threads: fewer heaps keep less free
    if options.marker_jitter:
        from liveness.apps.serve.rtp import install

        install()
    if options.ffmpeg_vp8:
        from liveness.apps.serve.rtp import install_vp8_decoder

        install_vp8_decoder()
    st = ServerState(options, factory or functools.partial(default_factory, options.live_horizon_s))
    app = web.Application(
        middlewares=[_cors_middleware(options.cors_origins), _headers_middleware,
                     rate_limit_middleware(options.login_attempts_per_min, options.api_requests_per_s,
                                           options.trusted_proxies),
                     csrf_middleware(options.public_url, options.cors_origins)], client_max_size=1024 * 1024
    )
    app[KEY_OPTIONS] = options
    app[KEY_STATE] = st
    r = app.router
    r.add_get("/", pages.console_page)
    r.add_post("/login", pages.login)
    r.add_get("/logout", pages.logout)
    r.add_get("/join/{token}", pages.join_page)
    r.add_get("/plugin/{name}", pages.plugin_file)
    r.add_get("/plugin/examples/{name}", pages.example_file)
    r.add_get("/api/health", api.health)
    r.add_get("/api/openapi.json", api.openapi)
    r.add_post("/api/sessions", api.create_session)
    r.add_get("/api/sessions", api.list_sessions)
    r.add_get("/api/sessions/{sid}", api.session_status)
    r.add_get("/api/sessions/{sid}/report", api.session_report)
    r.add_get("/api/sessions/{sid}/report.html", api.session_report_html)
    r.add_get("/api/sessions/{sid}/thumbnails/{tid}.jpg", api.thumbnail)
    r.add_post("/api/sessions/{sid}/offer", rtc.console_offer)
    r.add_post("/api/sessions/{sid}/commands", api.command)
    r.add_post("/api/sessions/{sid}/stop", api.stop)
    r.add_get("/api/sessions/{sid}/watch", api.watch)
    r.add_post("/api/join/{token}/offer", rtc.candidate_offer)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    integrations.install(app, st, reviewer)  # REST reviews, webhooks, the face gallery
    return app
