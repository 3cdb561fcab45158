"""``liveness serve``: argument parsing and the server's main loop."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from liveness.apps.serve.options import ServeOptions, default_db_path
from liveness.core.errors import LivenessError

__all__ = ["add_serve_parser", "run_serve"]


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
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
    p.add_argument("--db", default=None, help=f"SQLite file (default {default_db_path()}; ':memory:' keeps nothing)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="origin allowed to embed the candidate page / call the candidate API (repeatable; '*' = any)")
    p.add_argument("--token-ttl", type=float, default=3600.0, help="candidate link lifetime in seconds")
    p.add_argument("--threads", type=int, default=None, help="analysis threads shared by all sessions")
    p.add_argument("--max-sessions", type=int, default=16, help="concurrent live sessions")
    p.add_argument("--max-fps", type=float, default=0.0,
                   help="most analysed frames per second per session (0 = all the CPU allows)")
    p.add_argument("--thumbnails", action="store_true", help="store small face thumbnails at events as evidence")
    p.add_argument("--public-url", default=None, help="base URL used in candidate links (default: from the request)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(func=run_serve)
    return p


def options_from_args(args: argparse.Namespace) -> ServeOptions:
    kw: dict[str, object] = {
        "host": args.host,
        "port": args.port,
        "api_key": args.api_key or os.environ.get("LIVENESS_API_KEY") or None,
        "cors_origins": tuple(args.cors_origin),
        "token_ttl_s": args.token_ttl,
        "max_sessions": args.max_sessions,
        "max_fps": args.max_fps,
        "thumbnails": args.thumbnails,
        "public_url": args.public_url,
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
        from aiohttp import web

        from liveness.apps.serve.app import create_app

        app = create_app(options)
    except LivenessError as exc:
        print(f"liveness serve: {exc}", file=sys.stderr)
        return 2
    if options.api_key is None:
        print("liveness serve: no API key set; the console is open to anyone on this machine", file=sys.stderr)
    print(f"liveness serve: console at http://{options.host}:{options.port}/  (database {options.db})", file=sys.stderr)
    try:
        web.run_app(app, host=options.host, port=options.port, print=None, access_log=None)
    except OSError as exc:
        print(f"liveness serve: cannot listen on {options.host}:{options.port}: {exc}", file=sys.stderr)
        return 2
    return 0
