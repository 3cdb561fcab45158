"""End to end in a real browser: headless Debian Chromium with a fake camera playing a y4m
clip opens the candidate link and streams to the server; results with a face and a plausible
head pose must arrive. Then the interviewer console (signed in with the API key, camera
source) shows live values, and a screenshot is taken.

Skips when /usr/bin/chromium (or $LIVENESS_CHROMIUM) or Playwright's Python client is missing.
Never downloads a browser. ``LIVENESS_WRITE_SCREENSHOT=1 LIVENESS_SHARED_DATA=/nonexistent``
refreshes docs/console.png from the synthetic avatar (a dev clip's frames never go there).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests._serve_util import ServerThread, disc_factory, disc_frame, fit_4x3, write_y4m
from tests.conftest import shared_data

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM = os.environ.get("LIVENESS_CHROMIUM", "/usr/bin/chromium")
KEY = "browser-test-key-0123"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]
FPS = 15


def _decode(path: Path, n: int) -> list[np.ndarray]:
    import av

    out = []
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            out.append(fit_4x3(fr.to_ndarray(format="rgb24")))
            if len(out) >= n:
                break
    return out


def _face_frames(tmp: Path, seconds: float = 6.0) -> tuple[list[np.ndarray], str]:
    """A dev real clip when ../shared/data exists, else the synthetic avatar, else the
    astronaut photo drifting slowly."""
    n = int(seconds * FPS)
    shared = shared_data()
    if shared is not None:
        import csv

        with (shared / "manifest.csv").open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["label"] == "real"]
        if rows:
            frames = _decode(shared / rows[0]["path"], n)
            if len(frames) >= FPS:
                return frames, f"dev clip {rows[0]['path']}"
    try:
        from liveness.testing import make_demo_clip

        clip = make_demo_clip(tmp / "avatar.mp4", seconds=seconds, fps=FPS, size=(640, 480))
        return _decode(Path(clip), n), "synthetic avatar"
    except ImportError:
        pass
    import cv2

    from liveness.testing import astronaut_photo

    face = fit_4x3(astronaut_photo())
    frames = []
    for i in range(n):
        m = np.float32([[1, 0, 8 * np.sin(i / 10)], [0, 1, 0]])
        frames.append(cv2.warpAffine(face, m, (640, 480), borderMode=cv2.BORDER_REFLECT))
    return frames, "astronaut photo"


def _real_factory():  # noqa: ANN202
    try:
        from liveness.apps.serve.app import default_factory

        default_factory()  # loads the models once; fails when they are not installed
        return default_factory
    except Exception:
        return None


@pytest.fixture(scope="module")
def browser_env(tmp_path_factory):
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    pw = pytest.importorskip("playwright.sync_api", reason="Playwright's Python client is not installed")
    tmp = tmp_path_factory.mktemp("browser")
    factory = _real_factory()
    if factory is not None:
        frames, what = _face_frames(tmp)
    else:  # the face tracker is not installed: transport only, with the stand-in tracker
        factory, what = disc_factory(), "stand-in disc (no face models installed)"
        frames = [disc_frame(i, fps=FPS) for i in range(3 * FPS)]
    y4m = tmp / "clip.y4m"
    write_y4m(y4m, frames, FPS)
    return pw, factory, y4m, what, tmp


def _launch(pw, y4m: Path, tmp: Path):  # noqa: ANN202
    p = pw.sync_playwright().start()
    browser = p.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
    )
    return p, browser


def _wait(pred, timeout: float, step: float = 0.25):  # noqa: ANN001, ANN202
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def _wait_js(page, expr: str, timeout: float):  # noqa: ANN001, ANN202
    """Poll a JS expression with CDP evaluation (the pages' CSP forbids eval-based waits)."""
    return _wait(lambda: page.evaluate(expr), timeout)


def test_candidate_page_streams_and_console_shows_live_values(browser_env, tmp_path):
    from liveness.apps.serve import ServeOptions

    pw, factory, y4m, what, tmp = browser_env
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "serve.sqlite3"), threads=2)
    with ServerThread(opts, factory) as srv:
        p, browser = _launch(pw, y4m, tmp)
        try:
            errors: list[str] = []
            ctx = browser.new_context(viewport={"width": 1400, "height": 860})

            def watch(page, who):  # noqa: ANN001, ANN202
                page.on("console", lambda m: errors.append(f"{who}: {m.text}") if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append(f"{who}: {e}"))
                return page

            # the interviewer signs in and creates a candidate link
            con = watch(ctx.new_page(), "console")
            con.goto(srv.base + "/")
            con.fill("#key", KEY)
            con.click("#login")
            con.wait_for_selector("#src-invite")
            con.click("#src-invite")
            assert _wait_js(con, "document.getElementById('join-url').value.includes('/join/')", 20)
            join_url = con.input_value("#join-url")
            sid = con.evaluate("window.livenessConsole.session.id")

            # the candidate opens it and streams the (fake) camera
            cand = watch(ctx.new_page(), "candidate")
            cand.goto(join_url)
            cand.click("#start")
            assert _wait_js(cand, "(document.body.dataset.state || '').startsWith('Connected')", 30), cand.text_content("#state")

            def good():  # noqa: ANN202
                code, st = srv.request("GET", f"/api/sessions/{sid}", key=KEY)
                r = st.get("last_result") or {}
                return st if st["counters"]["analysed"] >= 15 and r.get("face") else None

            st = _wait(good, 60)
            status_path = f"/api/sessions/{sid}"
            assert st, f"no face results from the browser stream ({what}): {srv.request('GET', status_path, key=KEY)}"
            r = st["last_result"]
            assert st["state"] == "live" and st["source"] == "candidate-camera"
            assert r["width"] == 640 and r["height"] == 480, "the fake camera plays the clip's size"
            # the candidate page asks for 640x480 at (at most) 15 fps
            track = "document.getElementById('preview').srcObject.getVideoTracks()[0]"
            asked, got = cand.evaluate(f"[{track}.getConstraints(), {track}.getSettings()]")
            assert asked["frameRate"]["max"] == 15 and asked["width"] in (640, {"ideal": 640}), asked
            assert got["frameRate"] <= 15 and (got["width"], got["height"]) == (640, 480), got
            assert 0 < st["counters"]["fps_received"] <= 16.5, st["counters"]
            assert abs(r["yaw"]) < 60 and abs(r["pitch"]) < 60 and abs(r["roll"]) < 45, r
            x, y, w, h = r["box"]
            assert 40 < w < 640 and 40 < h < 480
            # ... and the console watching the link shows them live
            assert _wait_js(con, "!!(window.livenessConsole.last && window.livenessConsole.last.face === true)", 30)
            assert con.text_content("#face") == "yes"
            con.screenshot(path=str(tmp_path / "console_invite.png"))

            # the link worked once; a reload is refused
            again = ctx.new_page()
            resp = again.goto(join_url)
            assert resp is not None and resp.status == 404
            again.close()
            cand.close()
            _wait(lambda: srv.request("GET", status_path, key=KEY)[1]["state"] == "ended", 30)
            ended = srv.request("GET", status_path, key=KEY)[1]
            assert ended["state"] == "ended", "closing the page ends the session"
            assert ended["end_reason"] == "peer closed the connection", ended["end_reason"]
            code, rep = srv.request("GET", status_path + "/report", key=KEY)
            assert code == 200 and rep["seconds"] and rep["session"]["counters"]["analysed"] >= 15

            # the console's own camera source: live values on the picture
            con.click("#src-camera")
            assert _wait_js(con, "!!(window.livenessConsole.last && window.livenessConsole.last.face === true && window.livenessConsole.last.t > 2)", 60)
            assert _wait_js(con, "document.getElementById('latency').textContent.includes('ms')", 20)
            if not what.startswith("stand-in"):  # the default pipeline has the challenge engine
                con.click("#start-challenges")
                assert _wait_js(con, "!document.getElementById('prompt').hidden", 40), con.text_content("#events")
                assert "Please" in con.text_content("#prompt")
            time.sleep(1.5)
            assert con.text_content("#face") == "yes"
            assert con.is_visible("#signout"), "signed in with a key: sign out is offered"
            if not what.startswith("stand-in"):  # the default analysers: each signal with its plain line
                assert _wait_js(con, "document.querySelectorAll('#signals .desc').length >= 5", 20)
                assert "slides or jitters" in con.text_content("#signals")
                assert _wait_js(con, "document.getElementById('label').textContent !== 'no verdict yet'", 20)
                assert con.text_content("#label") in ("no signs found", "genuine", "suspicious", "fake",
                                                      "inconclusive")
                assert con.text_content("#label") != "no_signs"
            assert con.text_content("#yaw").endswith("°") and con.text_content("#yaw") != "–°"
            shot = tmp_path / "console.png"
            con.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000
            # never commit frames of third-party footage: only a generated clip's screenshot
            if os.environ.get("LIVENESS_WRITE_SCREENSHOT") == "1" and not what.startswith("dev clip"):
                (ROOT / "docs").mkdir(exist_ok=True)
                shutil.copy(shot, ROOT / "docs" / "console.png")
            assert not errors, errors
        finally:
            browser.close()
            p.stop()


def test_console_screen_share_and_tile_marking(browser_env, tmp_path):
    """Share a screen (Chromium's fake display capture), drag the candidate's tile on the
    picture: the server analyses only that region from then on."""
    from liveness.apps.serve import ServeOptions

    pw, factory, y4m, _what, tmp = browser_env
    opts = ServeOptions(api_key=KEY, db=str(tmp_path / "serve.sqlite3"), threads=2)
    with ServerThread(opts, factory) as srv:
        p, browser = _launch(pw, y4m, tmp)
        try:
            errors: list[str] = []
            con = browser.new_context(viewport={"width": 1400, "height": 860}).new_page()
            con.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            con.on("pageerror", lambda e: errors.append(str(e)))
            con.goto(srv.base + "/")
            con.fill("#key", KEY)
            con.click("#login")
            con.wait_for_selector("#src-screen")
            con.click("#src-screen")
            assert _wait_js(con, "!!window.livenessConsole.last", 60), con.text_content("#events")
            track = "document.getElementById('video').srcObject.getVideoTracks()[0]"
            asked, got = con.evaluate(f"[{track}.getConstraints(), {track}.getSettings()]")
            assert asked["frameRate"]["max"] == 15 and asked["height"] in (480, {"ideal": 480}), asked
            assert got["frameRate"] <= 15 and got["height"] <= 480, got
            assert con.evaluate("window.livenessConsole.last.crop") is None
            box = con.locator("#overlay").bounding_box()
            assert box is not None
            con.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
            con.mouse.down()
            con.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.7 * box["height"], steps=5)
            con.mouse.up()
            assert _wait_js(con, "!!window.livenessConsole.last.crop", 20)
            x, y, w, h = con.evaluate("window.livenessConsole.last.crop")
            assert 0.15 < x < 0.45 and 0.1 < y < 0.5 and 0.2 < w < 0.5 and 0.2 < h < 0.9, (x, y, w, h)
            sid = con.evaluate("window.livenessConsole.session.id")
            code, st = srv.request("GET", f"/api/sessions/{sid}", key=KEY)
            assert st["source"] == "screen" and np.allclose(st["crop"], [x, y, w, h], atol=1e-3)
            con.click("#clear-crop")
            assert _wait_js(con, "window.livenessConsole.last.crop === null", 20)
            con.click("#stop")
            assert _wait_js(con, "document.getElementById('conn').textContent === 'ended'", 20)
            # the console links the session's HTML report (and its JSON); the link opens it
            assert con.is_visible("#report-link")
            href = con.get_attribute("#report-link", "href")
            assert href == f"/api/sessions/{sid}/report.html", href
            assert con.get_attribute("#report-json", "href") == f"/api/sessions/{sid}/report"
            rep = con.context.new_page()
            resp = rep.goto(srv.base + href)
            assert resp is not None and resp.status == 200
            assert "Liveness review" in rep.text_content("h1") and "size unknown" not in rep.text_content("#source-facts")
            rep.close()
            assert not errors, errors
        finally:
            browser.close()
            p.stop()


class _PlatformSite:
    """A hiring platform's own web server, on another origin than the liveness server: it
    serves the plugin folder (the SDK and its example page) under /plugin/, with a CSP like
    the one docs/embed.md gives a platform page (scripts its own, connections to the server)."""

    def __init__(self) -> None:
        import http.server
        import threading

        from liveness.apps.serve.state import plugin_dir

        self.liveness = ""  # the liveness server's origin, set once it runs
        site = self
        root = plugin_dir().resolve()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                rel = self.path.split("#", 1)[0].split("?", 1)[0].removeprefix("/plugin/")
                p = (root / rel).resolve()
                if not self.path.startswith("/plugin/") or root not in p.parents or not p.is_file():
                    self.send_error(404)
                    return
                body = p.read_bytes()
                self.send_response(200)
                kind = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}.get(p.suffix, "application/octet-stream")
                self.send_header("Content-Type", kind + "; charset=utf-8")
                ws = site.liveness.replace("http", "ws", 1)
                self.send_header("Content-Security-Policy",
                                 f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                                 f"connect-src 'self' {site.liveness} {ws}; media-src 'self' blob: mediastream:; "
                                 "frame-ancestors 'none'")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _PlatformSite:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def disc_camera(tmp_path_factory):
    """Chromium's fake camera playing the stand-in disc (the stand-in tracker follows it)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    pw = pytest.importorskip("playwright.sync_api", reason="Playwright's Python client is not installed")
    tmp = tmp_path_factory.mktemp("embed")
    y4m = tmp / "disc.y4m"
    write_y4m(y4m, [disc_frame(i, fps=FPS) for i in range(3 * FPS)], FPS)
    return pw, y4m, tmp


def test_embed_sdk_example_page_fires_its_events(disc_camera, tmp_path):
    """The SDK's example page on a platform's origin: the candidate's page streams with the
    link token; the interviewer's page watches with the watch token and gets result, verdict,
    prompt, challenge and ended events; the candidate's page gets none of the verdict's."""
    from urllib.parse import quote

    from liveness.apps.serve import ServeOptions

    pw, y4m, tmp = disc_camera
    with _PlatformSite() as site:
        opts = ServeOptions(api_key=KEY, db=str(tmp_path / "serve.sqlite3"), threads=2, cors_origins=(site.origin,))
        with ServerThread(opts, disc_factory(challenges=True, fusion=True)) as srv:
            site.liveness = srv.base
            code, s = srv.request("POST", "/api/sessions", {"label": "embed example"}, key=KEY)
            assert code == 201 and s["watch_token"]
            p, browser = _launch(pw, y4m, tmp)
            try:
                errors: list[str] = []
                ctx = browser.new_context()

                def page(who: str):  # noqa: ANN202
                    pg = ctx.new_page()
                    pg.on("console", lambda m: errors.append(f"{who}: {m.text}") if m.type == "error" else None)
                    pg.on("pageerror", lambda e: errors.append(f"{who}: {e}"))
                    return pg

                def seen(pg, name: str) -> list:  # noqa: ANN001
                    return pg.evaluate(f"window.embedExample.events.filter(e => e.name === {name!r}).map(e => e.payload)")

                example = f"{site.origin}/plugin/examples/embed.html#server={quote(srv.base, safe='')}"
                interviewer = page("interviewer")
                interviewer.goto(f"{example}&role=interviewer&session={s['id']}&watch_token={s['watch_token']}")
                assert _wait(lambda: seen(interviewer, "hello"), 20), errors
                assert seen(interviewer, "hello")[0]["role"] == "console"
                assert interviewer.text_content("#conn") == "connected"

                cand = page("candidate")
                cand.goto(f"{example}&role=candidate&token={s['token']}")
                cand.click("#join")
                assert _wait_js(cand, "(document.body.dataset.state || '').startsWith('Connected')", 30), cand.text_content("#cand-state")
                assert _wait(lambda: seen(interviewer, "result"), 30), "results reach the watcher"
                assert _wait(lambda: seen(interviewer, "verdict"), 20), "the verdict comes with the status"
                v = seen(interviewer, "verdict")[0]
                assert v["label"] in ("no_signs", "suspicious") and 0 <= v["risk"] <= 1 and v["final"] is False, v

                interviewer.click("#challenges")
                assert _wait(lambda: len(seen(interviewer, "challenge")) >= 2, 30), seen(interviewer, "ack")
                prompts, results = seen(interviewer, "prompt"), seen(interviewer, "challenge")
                assert [x["kind"] for x in prompts[:2]] == ["turn_left", "blink_twice"], prompts
                assert prompts[0]["text"] == "do turn_left" and prompts[0]["event"] == "challenge.prompt"
                assert all(r["passed"] is True and r["latency_s"] >= 0.3 for r in results), results
                assert prompts[0]["t"] < results[0]["t"]
                assert "blink_twice" in interviewer.text_content("#prompt")

                interviewer.click("#end")
                assert _wait(lambda: seen(interviewer, "ended") and seen(cand, "ended"), 20)
                ended = seen(interviewer, "ended")[0]
                assert ended["reason"] == "ended by the interviewer" and ended["verdict"]["label"], ended
                assert seen(interviewer, "verdict")[-1]["final"] is True
                assert _wait(lambda: interviewer.text_content("#conn") == "ended", 10)
                # the candidate's side: its own connection and the end, never the verdict's events
                assert seen(cand, "ended") == [{"reason": "ended by the interviewer", "verdict": None}]
                names = set(cand.evaluate("window.embedExample.events.map(e => e.name)"))
                assert names <= {"hello", "state", "connection", "ack", "ended"}, names
                assert seen(cand, "hello")[0]["role"] == "candidate"
                assert cand.text_content("#cand-state") == "The session has ended."
                assert not errors, errors
            finally:
                browser.close()
                p.stop()
