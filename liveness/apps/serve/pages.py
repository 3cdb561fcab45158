"""The server's HTML pages: the interviewer console (behind the API key), its sign-in, the
candidate's join page, the plugin's static files and the embed SDK's example page."""

from __future__ import annotations

import asyncio
import hmac
import json
import re

from aiohttp import web

from liveness.apps.serve.auth import (
    COOKIE,
    console_cookie_value,
    hash_token,
    is_authorised,
)
from liveness.apps.serve.state import TOKEN_RE, link_open, plugin_dir, state_of
from liveness.core.version import __version__

__all__ = ["console_page", "example_file", "join_page", "login", "logout", "plugin_file"]


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


_LOGIN_ERROR = '<p class="error" id="login-error" role="alert">Wrong API key: try again.</p>'


async def console_page(request: web.Request) -> web.Response:
    st = state_of(request)
    if not is_authorised(request, st.options.api_key):
        return _page(request, "login.html", error="")
    from liveness.verdict.explain import console_tables

    # the console's plain-language texts (label wording, one line per signal) come from the
    # same tables as the HTML report, as JSON in a non-executed script element
    tables = json.dumps(console_tables(), ensure_ascii=False).replace("<", "\\u003c")
    signout = '<a href="/logout" id="signout">sign out</a>' if st.options.auth_enabled else ""
    return _page(request, "console.html", version=__version__, signout=signout, tables=tables)


async def login(request: web.Request) -> web.Response:
    st = state_of(request)
    form = await request.post()
    key = str(form.get("key", ""))
    if st.options.api_key is None:
        raise web.HTTPFound("/")

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


async def join_page(request: web.Request) -> web.Response:
    st = state_of(request)
    token = request.match_info["token"]
    row = None
    if TOKEN_RE.match(token):
        row = await st.store.call(st.store.session_for_token, hash_token(token))
    if not link_open(row):
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


async def example_file(request: web.Request) -> web.StreamResponse:
    """``plugin/examples/``: the embed SDK's example page (with the pages' CSP) and its script."""
    name = request.match_info["name"]
    if not re.match(r"^[a-z0-9_-]+\.(html|js|css)$", name) or not (plugin_dir() / "examples" / name).is_file():
        raise web.HTTPNotFound()
    if name.endswith(".html"):
        return _page(request, "examples/" + name)
    return web.FileResponse(plugin_dir() / "examples" / name)
