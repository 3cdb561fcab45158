"""What a hiring platform plugs into: recordings over REST (:mod:`.reviews`), signed webhooks
(:mod:`.webhooks`) and the opt-in face-reuse gallery (:mod:`.gallery`), installed on the server
application by :func:`install` (routes, background tasks, start and stop)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

from liveness.apps.serve.gallery import (
    KEY_GALLERY,
    Gallery,
    candidates_route,
    delete_candidate_route,
)
from liveness.apps.serve.reviews import KEY_REVIEWS, Reviewer, ReviewJobs
from liveness.apps.serve.state import ServerState
from liveness.apps.serve.webhooks import KEY_WEBHOOKS, Webhooks, deliveries_route, watch_live

__all__ = ["Reviewer", "install"]

log = logging.getLogger("liveness.serve")

_KEY_TASKS: web.AppKey[list[asyncio.Task[None]]] = web.AppKey("integration_tasks")


async def _purge_gallery(g: Gallery, period_s: float = 3600.0) -> None:
    while True:
        try:
            n = await g.store.call(g.purge)
            if n:
                log.info("face gallery: %d entries past the retention deleted", n)
        except Exception as exc:
            log.warning("face gallery purge failed: %r", exc)
        await asyncio.sleep(period_s)


async def _purge_stored(st: ServerState, days: float, period_s: float = 3600.0) -> None:
    from liveness.apps.serve.retention import purge

    while True:
        try:
            r = await st.store.call(purge, st.store, days)
            if r.sessions or r.reviews or r.deliveries:
                log.info("retention: %d sessions, %d reviews, %d webhook deliveries older than %g days deleted",
                         r.sessions, r.reviews, r.deliveries, days)
        except Exception as exc:
            log.warning("retention purge failed: %r", exc)
        await asyncio.sleep(period_s)


def install(app: web.Application, st: ServerState, reviewer: Reviewer | None = None) -> None:
    o = st.options
    hooks = Webhooks(st.store, o.webhook_url, o.webhook_secret, max_attempts=o.webhook_max_attempts,
                     backoff_s=o.webhook_backoff_s, timeout_s=o.webhook_timeout_s)
    gallery = Gallery(st.store, o.gallery_threshold, o.gallery_retention_days) if o.face_gallery else None
    jobs = ReviewJobs(st.store, o, hooks, gallery, reviewer, on_finished=st.want_trim)
    app[KEY_WEBHOOKS] = hooks
    app[KEY_REVIEWS] = jobs
    app[_KEY_TASKS] = []
    r = app.router
    r.add_post("/api/reviews", jobs.post)
    r.add_get("/api/reviews/{rid}", jobs.get)
    r.add_get("/api/reviews/{rid}/report.html", jobs.report_html)
    r.add_delete("/api/reviews/{rid}", jobs.delete)
    r.add_get("/api/webhooks/deliveries", deliveries_route)
    if gallery is not None:
        app[KEY_GALLERY] = gallery
        r.add_get("/api/gallery/candidates", candidates_route)
        r.add_delete("/api/gallery/candidates/{name}", delete_candidate_route)

    async def start(app: web.Application) -> None:
        await jobs.start()
        hooks.start()
        tasks = app[_KEY_TASKS]
        if hooks.enabled:
            tasks.append(asyncio.create_task(watch_live(app), name="liveness-webhook-watch"))
        if gallery is not None:
            tasks.append(asyncio.create_task(_purge_gallery(gallery), name="liveness-gallery-purge"))
        if o.retention_days is not None:
            tasks.append(asyncio.create_task(_purge_stored(st, o.retention_days), name="liveness-retention"))

    async def stop(app: web.Application) -> None:
        await asyncio.sleep(0.6)  # let the live watcher see sessions the shutdown just ended
        for t in app[_KEY_TASKS]:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await jobs.stop()
        await hooks.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
