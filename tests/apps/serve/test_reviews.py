"""Recordings over REST, signed webhooks (delivered across a restart) and the face-reuse gallery
of ``liveness serve``. Every webhook receiver here listens on 127.0.0.1 only."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from liveness.apps.serve import ServeOptions
from liveness.apps.serve.reviews import ReviewOutcome
from liveness.apps.serve.state import KEY_STATE
from liveness.core.errors import InputError
from liveness.core.review import Review
from liveness.core.types import Verdict
from tests._serve_util import disc_factory, running_server
from tests.conftest import write_clip

KEY = "test-key-0123456789"
AUTH = {"X-API-Key": KEY}
SECRET = "webhook-secret-abc"


def run(coro: Any, timeout: float = 300) -> None:
    asyncio.run(asyncio.wait_for(coro, timeout))


def _opts(tmp_path: Path, **kw: Any) -> ServeOptions:
    base = {"api_key": KEY, "db": str(tmp_path / "serve.sqlite3"), "threads": 1, "upload_dir": str(tmp_path / "up")}
    return ServeOptions(**{**base, **kw})


class Receiver:
    """A webhook receiver on 127.0.0.1: answers ``fail`` times with 500, then 200; records
    each request's headers and raw body."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append((dict(request.headers), await request.read()))
        if self.fail > 0:
            self.fail -= 1
            return web.Response(status=500)
        return web.Response(text="ok")

    @contextlib.asynccontextmanager
    async def running(self):  # noqa: ANN201
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        try:
            yield self
        finally:
            await runner.cleanup()

    def ok(self) -> list[tuple[dict[str, str], dict[str, Any]]]:
        """The requests whose signature verifies, as a receiver would check it."""
        out = []
        for headers, raw in self.got:
            want = "sha256=" + hmac.new(SECRET.encode(), raw, hashlib.sha256).hexdigest()
            if hmac.compare_digest(headers.get("X-Liveness-Signature", ""), want):
                out.append((headers, json.loads(raw)))
        return out


def stand_in_reviewer(label: str = "no_signs", embedding: np.ndarray | None = None, delay_s: float = 0.0,
                      fail: bool = False):  # noqa: ANN201
    """A fast reviewer for queue and webhook tests (the real one is used below)."""
    calls: list[Path] = []

    def review(video: Path, refs: Any, options: Any) -> ReviewOutcome:
        calls.append(video)
        assert video.is_file(), "the upload is on disk while it is analysed"
        time.sleep(delay_s)
        if fail:
            raise InputError(f"{video.name}: not a video")
        doc = Review(source={"path": str(video), "frames": 3}, timeline=(), signals={},
                     verdict=Verdict(label, 0.1, ("stand-in",)))  # type: ignore[arg-type]
        return ReviewOutcome(doc, embedding)

    review.calls = calls  # type: ignore[attr-defined]
    return review


def _form(video: bytes | None = b"\x00" * 1000, metadata: Any = None, refs: tuple[bytes, ...] = (),
          name: str = "interview.mp4") -> aiohttp.FormData:
    f = aiohttp.FormData(default_to_multipart=True)
    if video is not None:
        f.add_field("video", video, filename=name, content_type="video/mp4")
    for i, r in enumerate(refs):
        f.add_field("reference", r, filename=f"ref{i}.jpg", content_type="image/jpeg")
    if metadata is not None:
        f.add_field("metadata", metadata if isinstance(metadata, str) else json.dumps(metadata))
    return f


async def _wait_status(http: aiohttp.ClientSession, base: str, rid: str, timeout: float = 240) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        async with http.get(f"{base}/api/reviews/{rid}", headers=AUTH) as r:
            assert r.status == 200
            body = await r.json()
        if body["status"] in ("done", "failed") or time.monotonic() > end:
            return body
        await asyncio.sleep(0.1)


async def _wait(pred: Any, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(0.05)
    return bool(pred())


@contextlib.asynccontextmanager
async def serving(options: ServeOptions, reviewer: Any = None):  # noqa: ANN201
    """The server on a free loopback port with a given reviewer; yields its base URL."""
    from liveness.apps.serve import create_app

    app = create_app(options, disc_factory(), reviewer=reviewer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _astro_clip(path: Path, astronaut: np.ndarray, n: int = 20, dx: int = 2) -> Path:
    import cv2

    frames = [cv2.warpAffine(astronaut, np.float32([[1, 0, dx * (i % 10)], [0, 1, 0]]), (384, 384),
                             borderMode=cv2.BORDER_REFLECT) for i in range(n)]
    return write_clip(path, frames, fps=10)


def test_upload_review_done_with_a_verdict_and_a_signed_webhook(tmp_path, astronaut):
    """The real pipeline: a recording goes in, ``done`` with a liveness.review/1 verdict comes
    out, the upload is gone, the report renders, and the signed webhook arrives; the same face
    under a second candidate name is reported as a possible match of the first."""
    clip_a = _astro_clip(tmp_path / "a.mp4", astronaut).read_bytes()
    clip_b = _astro_clip(tmp_path / "b.mp4", astronaut, dx=-3).read_bytes()

    async def main() -> None:
        async with Receiver().running() as rx:
            opts = _opts(tmp_path, webhook_url=rx.url, webhook_secret=SECRET, face_gallery=True)
            async with running_server(opts, disc_factory()) as (base, app), aiohttp.ClientSession() as http:
                st = app[KEY_STATE]
                assert st.trim.due is None
                async with http.post(f"{base}/api/reviews", data=_form(clip_a, {"candidate": "alice", "job": 7})) as r:
                    assert r.status == 401, "behind the API key"
                async with http.post(f"{base}/api/reviews", headers=AUTH,
                                     data=_form(clip_a, {"candidate": "alice", "job": 7})) as r:
                    assert r.status == 202
                    q = await r.json()
                assert q["status"] == "queued" and q["metadata"] == {"candidate": "alice", "job": 7}
                done = await _wait_status(http, base, q["id"])
                assert done["status"] == "done", done["error"]
                doc = done["review"]
                assert doc["schema"] == "liveness.review/1" and doc["summary"]["face_fraction"] > 0.5
                assert doc["verdict"]["label"] in ("no_signs", "suspicious", "fake", "inconclusive", "genuine")
                assert doc["source"]["path"] == "interview.mp4", "the server's file path is not shown"
                assert done["matches"] == [], "the gallery was empty"
                assert list((tmp_path / "up").iterdir()) == [], "no raw video is kept"
                assert await _wait(lambda: st.trim.due is not None or st.heap_trims > 0, 10), "a trim after it"
                async with http.get(f"{base}/api/reviews/{q['id']}/report.html", headers=AUTH) as r:
                    assert r.status == 200 and "<html" in (await r.text())[:300]

                # the same face sent as another candidate: a possible match, for human review
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(clip_b, {"candidate": "bob"})) as r:
                    q2 = await r.json()
                done2 = await _wait_status(http, base, q2["id"])
                assert done2["status"] == "done"
                assert [m["candidate"] for m in done2["matches"]] == ["alice"]
                m = done2["matches"][0]
                assert m["distance"] < opts.gallery_threshold and m["note"] == "possible match — for human review"
                assert any(e["kind"] == "gallery.match" for e in done2["review"]["events"])
                async with http.get(f"{base}/api/gallery/candidates", headers=AUTH) as r:
                    names = {c["candidate"]: c["entries"] for c in (await r.json())["candidates"]}
                assert names == {"alice": 1, "bob": 1}
                async with http.delete(f"{base}/api/gallery/candidates/alice", headers=AUTH) as r:
                    assert r.status == 200 and (await r.json())["deleted"] == 1

                assert await _wait(lambda: len(rx.ok()) >= 2, 30), rx.got
                events = {b["id"]: (h, b) for h, b in rx.ok()}
                h, b = events[q["id"]]
                assert h["X-Liveness-Event"] == b["event"] == "review.completed"
                assert b["verdict"]["label"] == doc["verdict"]["label"] and b["metadata"]["job"] == 7
                assert isinstance(b["created"], float) and h["X-Liveness-Delivery"]
                assert events[q2["id"]][1]["matches"][0]["candidate"] == "alice"
                async with http.get(f"{base}/api/webhooks/deliveries", headers=AUTH) as r:
                    rows = (await r.json())["deliveries"]
                assert {d["status"] for d in rows} == {"delivered"} and len(rows) == 2

                async with http.delete(f"{base}/api/reviews/{q['id']}", headers=AUTH) as r:
                    assert r.status == 204
                async with http.get(f"{base}/api/reviews/{q['id']}", headers=AUTH) as r:
                    assert r.status == 404

    run(main())


def test_a_restart_mid_retry_still_delivers(tmp_path, db_url):
    """The receiver fails the first attempts; the server stops while the delivery waits for its
    retry; a new server on the same database (SQLite, PostgreSQL) delivers it, same delivery id,
    body and signature."""
    async def main() -> None:
        async with Receiver(fail=2).running() as rx:
            opts = _opts(tmp_path, webhook_url=rx.url, webhook_secret=SECRET, webhook_backoff_s=0.2, db=db_url)
            async with serving(opts, stand_in_reviewer("fake")) as base, aiohttp.ClientSession() as http:
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form()) as r:
                    rid = (await r.json())["id"]
                assert await _wait(lambda: len(rx.got) >= 2, 30), "two failed attempts"
                async with http.get(f"{base}/api/webhooks/deliveries?status=pending", headers=AUTH) as r:
                    pend = (await r.json())["deliveries"]
                assert len(pend) == 1 and pend[0]["attempts"] == 2 and pend[0]["last_status"] == 500
            # stopped with the delivery pending: the next attempt is due in 0.4 s
            n_before = len(rx.got)
            await asyncio.sleep(1.0)
            assert len(rx.got) == n_before, "nothing is sent while no server runs"
            async with serving(opts, stand_in_reviewer("fake")) as base, aiohttp.ClientSession() as http:
                assert await _wait(lambda: len(rx.ok()) == 3 and rx.fail == 0 and len(rx.got) == 3, 30)
                async with http.get(f"{base}/api/webhooks/deliveries", headers=AUTH) as r:
                    rows = (await r.json())["deliveries"]
                assert [(d["status"], d["attempts"]) for d in rows] == [("delivered", 3)]
        heads = [h for h, _ in rx.ok()]
        assert len({h["X-Liveness-Delivery"] for h in heads}) == 1, "one delivery, retried"
        assert [h["X-Liveness-Attempt"] for h in heads] == ["1", "2", "3"]
        assert len({raw for _, raw in rx.got}) == 1, "the same bytes every time"
        body = rx.ok()[-1][1]
        assert body["event"] == "review.completed" and body["id"] == rid and body["verdict"]["label"] == "fake"

    run(main())


def test_a_restart_resumes_queued_recordings(tmp_path):
    """Recordings queued when the server stops are reviewed by the next run (their uploads wait
    on disk); a failing recording is ``failed`` with its error and a ``review.failed`` event."""
    async def main() -> None:
        slow = stand_in_reviewer(delay_s=1.5)
        async with serving(_opts(tmp_path), slow) as base, aiohttp.ClientSession() as http:
            ids = []
            for i in range(3):  # the first one larger than the server's 1 MiB body limit for JSON
                data = _form(b"\x00" * (3_000_000 if i == 0 else 1000), name=f"r{i}.mp4")
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=data) as r:
                    assert r.status == 202
                    ids.append((await r.json())["id"])
            assert await _wait(lambda: len(slow.calls) >= 1, 10)
        assert len(list((tmp_path / "up").iterdir())) >= 2, "the uploads not yet analysed wait on disk"
        async with Receiver().running() as rx:
            opts = _opts(tmp_path, webhook_url=rx.url, webhook_secret=SECRET)
            async with serving(opts, stand_in_reviewer()) as base, aiohttp.ClientSession() as http:
                got = [await _wait_status(http, base, rid, 30) for rid in ids]
                assert [g["status"] for g in got] == ["done"] * 3
                assert [g["file"]["name"] for g in got] == ["r0.mp4", "r1.mp4", "r2.mp4"]
                assert [g["file"]["bytes"] for g in got] == [3_000_000, 1000, 1000]
                assert list((tmp_path / "up").iterdir()) == []

            # a recording the analysis refuses
            async with serving(opts, stand_in_reviewer(fail=True)) as base, aiohttp.ClientSession() as http:
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form()) as r:
                    rid = (await r.json())["id"]
                bad = await _wait_status(http, base, rid, 30)
                assert bad["status"] == "failed" and "not a video" in bad["error"] and bad["review"] is None
                async with http.get(f"{base}/api/reviews/{rid}/report.html", headers=AUTH) as r:
                    assert r.status == 409
                assert await _wait(lambda: any(b["event"] == "review.failed" for _, b in rx.ok()), 20)
        failed = next(b for _, b in rx.ok() if b["event"] == "review.failed")
        assert failed["id"] == rid and "not a video" in failed["error"] and failed["verdict"] is None
        assert list((tmp_path / "up").iterdir()) == []

    run(main())


def test_uploads_are_limited_checked_and_bounded(tmp_path):
    async def main() -> None:
        opts = _opts(tmp_path, max_upload_mb=0.5, review_queue=2)
        async with serving(opts, stand_in_reviewer(delay_s=2.0)) as base, aiohttp.ClientSession() as http:
            async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(b"\x01" * 700_000)) as r:
                assert r.status == 413 and "larger than" in (await r.json())["error"]
            assert list((tmp_path / "up").iterdir()) == [], "the cut-off upload is deleted"
            async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(None, {"a": 1})) as r:
                assert r.status == 400 and "'video'" in (await r.json())["error"]
            async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(metadata="[1, 2]")) as r:
                assert r.status == 400 and "JSON object" in (await r.json())["error"]
            async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(metadata="{bad")) as r:
                assert r.status == 400
            async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form(metadata={"candidate": ""})) as r:
                assert r.status == 400
            async with http.post(f"{base}/api/reviews", headers=AUTH, json={"video": "x"}) as r:
                assert r.status == 415
            assert list((tmp_path / "up").iterdir()) == []
            codes = []
            for _ in range(3):
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=_form()) as r:
                    codes.append(r.status)
            assert codes == [202, 202, 503], "a bounded queue"
            async with http.get(f"{base}/api/reviews/0123456789abcdef", headers=AUTH) as r:
                assert r.status == 404
            async with http.get(f"{base}/api/reviews/../x", headers=AUTH) as r:
                assert r.status == 404
            async with http.get(f"{base}/api/openapi.json") as r:
                spec = await r.json()
            for path in ("/api/reviews", "/api/reviews/{rid}", "/api/reviews/{rid}/report.html",
                         "/api/webhooks/deliveries"):
                assert path in spec["paths"] and all(op.get("security") for op in spec["paths"][path].values())
            assert "multipart/form-data" in spec["paths"]["/api/reviews"]["post"]["requestBody"]["content"]

    run(main())


def test_live_sessions_end_with_a_webhook(tmp_path):
    """``session.ended`` for a live session stopped through the API (the stand-in pipeline)."""
    from tests._serve_util import Client, FrameTrack, disc_frame

    async def main() -> None:
        async with Receiver().running() as rx:
            opts = _opts(tmp_path, webhook_url=rx.url, webhook_secret=SECRET)
            async with running_server(opts, disc_factory()) as (base, _), aiohttp.ClientSession() as http:
                async with http.post(f"{base}/api/sessions", json={"label": "L1"}, headers=AUTH) as r:
                    s = await r.json()
                client = Client(FrameTrack(disc_frame, fps=15))
                await client.connect(s["offer_url"], headers=AUTH)
                assert await client.wait_for(lambda: len(client.of_type("result")) >= 5, 60)
                async with http.post(f"{base}/api/sessions/{s['id']}/stop", headers=AUTH) as r:
                    assert r.status == 200
                assert await _wait(lambda: any(b["event"] == "session.ended" for _, b in rx.ok()), 20)
                await client.close()
        body = next(b for _, b in rx.ok() if b["event"] == "session.ended")
        assert body["id"] == s["id"] and body["label"] == "L1" and body["reason"] == "stopped through the API"

    run(main())


def test_webhook_options_are_checked():
    from liveness.core.errors import ConfigError

    with pytest.raises(ConfigError, match="secret"):
        ServeOptions(db=":memory:", webhook_url="http://127.0.0.1:9/hook")
    with pytest.raises(ConfigError, match="http"):
        ServeOptions(db=":memory:", webhook_url="file:///etc/passwd", webhook_secret="s")
    from liveness.apps.serve.webhooks import sign

    raw = b'{"event": "review.completed"}'
    assert sign("k", raw) == "sha256=" + hmac.new(b"k", raw, hashlib.sha256).hexdigest()


@pytest.mark.shared
def test_face_reuse_across_candidates_on_dev_recordings(tmp_path, shared):
    """Real recordings through the server with the gallery on: Obama's footage sent as "a", then
    the left half of a DeepFaceLive demo filmed from the same footage as "b" (another file, crop
    and encoding) is a possible match of "a"; another person, "c", matches nobody."""
    clips = {"a": "video/real/dflsample_Obama.mp4", "b": "video/real/dfl_Kim_Jarrey_0.mp4",
             "c": "video/real/hdtf_WDA_BobMenendez_000.mp4"}

    async def main() -> None:
        opts = _opts(tmp_path, face_gallery=True, review_workers=1)
        async with serving(opts) as base, aiohttp.ClientSession() as http:
            got = {}
            for cand, rel in clips.items():
                data = _form((shared / rel).read_bytes(), {"candidate": cand}, name=Path(rel).name)
                async with http.post(f"{base}/api/reviews", headers=AUTH, data=data) as r:
                    assert r.status == 202
                    rid = (await r.json())["id"]
                got[cand] = await _wait_status(http, base, rid, 300)
                assert got[cand]["status"] == "done", got[cand]["error"]
        assert got["a"]["matches"] == []
        assert [m["candidate"] for m in got["b"]["matches"]] == ["a"]
        assert got["b"]["matches"][0]["distance"] < 0.2
        assert got["c"]["matches"] == [], "a different person is no match"

    run(main(), timeout=900)


def test_the_readme_receiver_verifies_a_delivery_signature():
    """The README's receiver snippet accepts the server's signature and refuses a changed body."""
    import re

    from liveness.apps.serve.webhooks import sign
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    code = next(b for b in re.findall(r"```py\n(.*?)```", text, re.S) if "compare_digest" in b)
    ns: dict[str, Any] = {}
    exec(compile(code, "README", "exec"), ns)
    body = b'{"event": "review.completed", "id": "0123456789abcdef"}'
    assert ns["verified"](SECRET.encode(), body, sign(SECRET, body)) is True
    assert ns["verified"](SECRET.encode(), body + b" ", sign(SECRET, body)) is False
    assert ns["verified"](b"other", body, sign(SECRET, body)) is False


def test_live_verdict_changes_are_announced_once_they_hold():
    """``verdict.changed`` when a live label differs from the last announced one for
    ``hold_s``; a flicker shorter than that is not announced; ``session.ended`` once."""
    from liveness.apps.serve.webhooks import KEY_WEBHOOKS, watch_live

    class Live:
        def __init__(self) -> None:
            self.state, self.label, self.end_reason = "live", "L", None
            self.snapshot: dict[str, Any] = {"verdict": None}

        def set(self, label: str) -> None:
            self.snapshot = {"verdict": {"label": label, "risk": 0.5, "reasons": ["r"]}}

    class Hooks:
        def __init__(self) -> None:
            self.sent: list[tuple[str, str, Any, dict[str, Any]]] = []

        async def emit(self, event: str, subject: str, verdict: Any, **extra: Any) -> None:
            self.sent.append((event, subject, verdict and verdict["label"], extra))

    class St:
        sessions: dict[str, Live] = {}

    async def main() -> None:
        live, hooks = Live(), Hooks()
        St.sessions = {"s1": live}
        app = web.Application()
        app[KEY_STATE] = St()  # type: ignore[assignment]
        app[KEY_WEBHOOKS] = hooks  # type: ignore[assignment]
        task = asyncio.create_task(watch_live(app, hold_s=0.3, period_s=0.02))
        live.set("no_signs")
        await asyncio.sleep(0.6)
        live.set("suspicious")
        await asyncio.sleep(0.1)  # a flicker
        live.set("no_signs")
        await asyncio.sleep(0.6)
        live.set("fake")
        await asyncio.sleep(0.6)
        live.state, live.end_reason = "ended", "media ended"
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        got = [(e, label, x.get("previous")) for e, _, label, x in hooks.sent]
        assert got == [("verdict.changed", "no_signs", None), ("verdict.changed", "fake", "no_signs"),
                       ("session.ended", "fake", None)]
        assert hooks.sent[-1][3]["reason"] == "media ended"

    run(main(), timeout=30)
