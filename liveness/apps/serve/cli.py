"""``liveness serve``: argument parsing and the server's main loop."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from liveness.apps.serve.options import ServeOptions, default_db_path
from liveness.core.errors import LivenessError
from liveness.core.session import LIVE_HORIZON_S

__all__ = ["add_serve_parser", "run_serve"]


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``liveness serve`` (returned) and, beside it, ``liveness purge`` (:mod:`.retention`)."""
    p = subparsers.add_parser(
        "serve",
        help="run the WebRTC server with the interviewer console",
        description=(
            "Serve the interviewer console at /, candidate links at /join/<token> and the JSON API "
            "(/api/openapi.json). Without an API key only a loopback host is allowed."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    p.add_argument("--api-key", default=None, help="API key (default: env LIVENESS_API_KEY)")
    p.add_argument("--db", default=None, help=f"SQLite file (default {default_db_path()}; ':memory:' keeps nothing) or a "
                        "postgresql:// URL (pip install 'interview-liveness[postgres]')")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="origin allowed to embed the candidate page / call the candidate API (repeatable; '*' = any)")
    p.add_argument("--token-ttl", type=float, default=3600.0, help="candidate link lifetime in seconds")
    p.add_argument("--threads", type=int, default=None, help="analysis threads shared by all sessions")
    p.add_argument("--max-sessions", type=int, default=16, help="concurrent live sessions")
    p.add_argument("--max-pending-sessions", type=int, default=256,
                   help="sessions created and not yet joined held at once (more get 503)")
    p.add_argument("--trim-interval", type=float, default=30.0, metavar="S",
                   help="give freed heap memory back to the system every S seconds (0 = never)")
    p.add_argument("--trim-settle", type=float, default=20.0, metavar="S",
                   help="give freed heap memory back S seconds after a live session starts or ends or a "
                        "review finishes (0 = never)")
    p.add_argument("--trim-growth", type=float, default=0.0, metavar="MIB",
                   help="also give freed heap memory back when the RSS grew MIB above its lowest level since a "
                        "minute after the last trim (0 = never)")
    p.add_argument("--malloc-arenas", type=int, default=2, metavar="N",
                   help="glibc malloc arenas at most (fewer arenas keep less free memory resident; 0 = default)")
    p.add_argument("--live-horizon", type=float, default=LIVE_HORIZON_S, metavar="S",
                   help="seconds of per-frame history a live session keeps (its signals describe them; "
                        "the segments of the whole call are kept), so memory stays flat over long calls")
    p.add_argument("--max-fps", type=float, default=0.0,
                   help="most analysed frames per second per session (0 = all the CPU allows)")
    p.add_argument("--thumbnails", action="store_true", help="store small face thumbnails at events as evidence")
    p.add_argument("--public-url", default=None, help="base URL used in candidate links (default: from the request)")
    p.add_argument("--review-workers", type=int, default=1, help="recordings sent over REST analysed at once")
    p.add_argument("--review-queue", type=int, default=16, help="most recordings waiting or running (more get 503)")
    p.add_argument("--max-upload-mb", type=float, default=512.0, help="largest recording accepted over REST")
    p.add_argument("--upload-dir", default=None, help="where uploads wait (default: uploads/ beside the database)")
    p.add_argument("--keep-uploads", action="store_true", help="keep uploaded recordings after analysis")
    p.add_argument("--webhook", default=None, metavar="URL", help="POST signed events here (env LIVENESS_WEBHOOK_URL)")
    p.add_argument("--webhook-secret", default=None, help="HMAC-SHA256 key of the signatures (env LIVENESS_WEBHOOK_SECRET)")
    p.add_argument("--face-gallery", action="store_true",
                   help="opt in: search each recording's face among other candidates' (embeddings only)")
    p.add_argument("--gallery-retention-days", type=float, default=365.0, help="face gallery entries expire after this")
    p.add_argument("--retention-days", type=float, default=None, metavar="DAYS",
                   help="delete ended sessions, finished reviews and webhook deliveries older than this, hourly "
                        "(default: keep everything; see liveness purge)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                   help="a reverse proxy (address or network) whose X-Forwarded-For names the client for the "
                        "rate limits (repeatable; default none: the header is ignored)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_serve)
    from liveness.apps.serve.retention import add_purge_parser

    add_purge_parser(subparsers)  # the server's data has its own command: liveness purge
    return p


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    kw: dict[str, object] = {
        "host": args.host,
        "port": args.port,
        "api_key": args.api_key or os.environ.get("LIVENESS_API_KEY") or None,
        "cors_origins": tuple(args.cors_origin),
        "token_ttl_s": args.token_ttl,
        "max_sessions": args.max_sessions,
        "max_pending_sessions": args.max_pending_sessions,
        "trim_interval_s": args.trim_interval,
        "trim_settle_s": args.trim_settle,
        "trim_growth_mib": args.trim_growth,
        "malloc_arenas": args.malloc_arenas,
        "live_horizon_s": args.live_horizon,
        "max_fps": args.max_fps,
        "thumbnails": args.thumbnails,
        "public_url": args.public_url,
        "review_workers": args.review_workers,
        "review_queue": args.review_queue,
        "max_upload_mb": args.max_upload_mb,
        "upload_dir": args.upload_dir,
        "keep_uploads": args.keep_uploads,
        "webhook_url": args.webhook or os.environ.get("LIVENESS_WEBHOOK_URL") or None,
        "webhook_secret": args.webhook_secret or os.environ.get("LIVENESS_WEBHOOK_SECRET") or None,
        "face_gallery": args.face_gallery,
        "gallery_retention_days": args.gallery_retention_days,
        "retention_days": args.retention_days,
        "trusted_proxies": tuple(args.trusted_proxy),
    }
    if args.db:
        kw["db"] = args.db
    if args.threads:
        kw["threads"] = args.threads
    return ServeOptions(**kw)  # type: ignore[arg-type]


def run_serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        options = options_from_args(args)
        from liveness.apps.serve.heap import limit_arenas

        limit_arenas(options.malloc_arenas)  # before the models' and the server's threads allocate
        from aiohttp import web

        from liveness.apps.serve.app import create_app
        from liveness.pipeline import PipelineOptions, verify_pipeline

        verify_pipeline(PipelineOptions(live=True))  # a bad model file stops the start, not a call
        app = create_app(options)
    except LivenessError as exc:
        print(f"liveness serve: {exc}", file=sys.stderr)
        return 2
    if options.api_key is None:
        print("liveness serve: no API key set; the console is open to anyone on this machine", file=sys.stderr)
    from liveness.apps.serve.db import redact

    print(f"liveness serve: console at http://{options.host}:{options.port}/  (database {redact(options.db)})",
          file=sys.stderr)
    try:
        web.run_app(app, host=options.host, port=options.port, print=None, access_log=None)
    except OSError as exc:
        print(f"liveness serve: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2
    return 0
