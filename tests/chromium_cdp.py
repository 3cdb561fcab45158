"""Open a local HTML file in headless Debian Chromium over the DevTools protocol (aiohttp client).

Collects console errors, uncaught exceptions, log errors and every network request; evaluates
JS expressions after load; optionally saves a full-page PNG screenshot. Used by the report's
browser test and by ``docs/make_report_png.py``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("LIVENESS_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
]


@dataclass
class PageResult:
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: Path | None = None


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


def _wait_port(user_dir: Path, proc: subprocess.Popen[bytes], timeout: float) -> int:
    f = user_dir / "DevToolsActivePort"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"chromium exited with {proc.returncode}")
        if f.is_file():
            lines = f.read_text().split()
            if lines and lines[0].isdigit():
                return int(lines[0])
        time.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")


async def _session(port: int, url: str, expressions: dict[str, str], screenshot: Path | None,
                   width: int, timeout: float) -> PageResult:
    import aiohttp

    res = PageResult()
    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{port}/json/new?about:blank") as r:
            target = json.loads(await r.text())
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            seq = 0
            pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
            loaded = asyncio.Event()

            async def reader() -> None:
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    m = json.loads(msg.data)
                    if "id" in m and m["id"] in pending:
                        pending.pop(m["id"]).set_result(m)
                        continue
                    meth, p = m.get("method"), m.get("params", {})
                    if meth == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                        res.console_errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                                           for a in p.get("args", [])))
                    elif meth == "Runtime.exceptionThrown":
                        d = p.get("exceptionDetails", {})
                        res.console_errors.append(d.get("exception", {}).get("description") or d.get("text", "?"))
                    elif meth == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                        res.console_errors.append(p["entry"].get("text", "?"))
                    elif meth == "Network.requestWillBeSent":
                        res.requests.append(p.get("request", {}).get("url", ""))
                    elif meth == "Page.loadEventFired":
                        loaded.set()

            task = asyncio.create_task(reader())

            async def call(method: str, **params: Any) -> dict[str, Any]:
                nonlocal seq
                seq += 1
                fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
                pending[seq] = fut
                await ws.send_str(json.dumps({"id": seq, "method": method, "params": params}))
                m = await asyncio.wait_for(fut, timeout)
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})

            try:
                for dom in ("Runtime", "Log", "Page", "Network"):
                    await call(f"{dom}.enable")
                await call("Emulation.setDeviceMetricsOverride", width=width, height=900,
                           deviceScaleFactor=1, mobile=False)
                await call("Page.navigate", url=url)
                await asyncio.wait_for(loaded.wait(), timeout)
                await asyncio.sleep(0.3)  # let late console messages arrive
                for name, expr in expressions.items():
                    r = await call("Runtime.evaluate", expression=expr, returnByValue=True)
                    res.values[name] = r.get("result", {}).get("value")
                if screenshot is not None:
                    lm = await call("Page.getLayoutMetrics")
                    size = lm.get("cssContentSize") or lm.get("contentSize")
                    h = int(min(size["height"], 6000))
                    await call("Emulation.setDeviceMetricsOverride", width=width, height=h,
                               deviceScaleFactor=1, mobile=False)
                    shot = await call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
                    screenshot.parent.mkdir(parents=True, exist_ok=True)
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                    res.screenshot = screenshot
            finally:
                task.cancel()
    return res


def open_page(html_file: Path, expressions: dict[str, str] | None = None, *,
              screenshot: Path | None = None, width: int = 1100, timeout: float = 60.0) -> PageResult:
    """Load ``html_file`` in a fresh headless Chromium and report what happened."""
    user_dir = Path(tempfile.mkdtemp(prefix="liveness-chromium-"))
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, "--remote-debugging-port=0", f"--user-data-dir={user_dir}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        port = _wait_port(user_dir, proc, timeout)
        return asyncio.run(_session(port, Path(html_file).resolve().as_uri(), expressions or {},
                                    screenshot, width, timeout))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(user_dir, ignore_errors=True)
