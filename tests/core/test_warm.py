"""Warming the models at a server's start: every model is loaded and run from as many threads at
once as the server will (``registry.warm_sessions``, ``pipeline.warm_pipeline``); a failing
run is a clear ModelError; the server warms the default pipeline at start."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from liveness import ModelError
from liveness.core import registry
from liveness.pipeline import PipelineOptions, required_models, warm_pipeline


class _CountingSession:
    """A stand-in session: records its feeds and how many runs were in flight at once."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.active = self.most = self.runs = 0
        self.feeds: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def get_inputs(self) -> list[SimpleNamespace]:
        return [SimpleNamespace(name="image", type="tensor(float)", shape=["batch", 64, 64, 3]),
                SimpleNamespace(name="flag", type="tensor(int64)", shape=[1])]

    def run(self, outputs: Any, feeds: dict[str, Any]) -> list[Any]:
        with self._lock:
            self.active += 1
            self.most = max(self.most, self.active)
            self.runs += 1
            self.feeds.append(feeds)
        try:
            time.sleep(0.02)
            if self.fail:
                raise ModelError("model 'x' failed: broken")
            return []
        finally:
            with self._lock:
                self.active -= 1


def test_each_model_runs_from_that_many_threads_at_once_on_zeros(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = {"a": _CountingSession(), "b": _CountingSession()}
    asked: list[tuple[str, int]] = []

    def fake_session(name: str, threads: int = 1) -> _CountingSession:
        asked.append((name, threads))
        return fakes[name]

    monkeypatch.setattr(registry, "ort_session", fake_session)
    registry.warm_sessions(["a", "b", "a"], threads=2, concurrency=3, runs=2)
    assert asked == [("a", 2), ("b", 2)]  # once each, with the pipeline's intra-op threads
    for f in fakes.values():
        assert f.runs == 6 and f.most == 3
        feed = f.feeds[0]
        assert feed["image"].shape == (1, 64, 64, 3) and feed["image"].dtype == np.float32  # symbolic dim -> 1
        assert feed["flag"].dtype == np.int64 and not feed["image"].any()


def test_a_failing_warm_run_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "ort_session", lambda name, threads=1: _CountingSession(fail=True))
    with pytest.raises(ModelError, match="broken"):
        registry.warm_sessions(["x"], concurrency=2)
    with pytest.raises(ValueError):
        registry.warm_sessions(["x"], concurrency=0)


def test_warm_pipeline_loads_every_model_of_the_live_pipeline() -> None:
    options = PipelineOptions(live=True)
    warm_pipeline(options, concurrency=2)
    loaded = {name for name, threads in registry._sessions if threads == options.threads}
    assert set(required_models(options)) <= loaded


def test_the_server_warms_the_default_pipeline_at_start(tmp_path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from liveness.apps.serve import ServeOptions, create_app
    from liveness.apps.serve.state import KEY_STATE

    async def main() -> tuple[bool, bool]:
        app = create_app(ServeOptions(db=str(tmp_path / "s.sqlite3"), threads=2))
        cold = create_app(ServeOptions(db=str(tmp_path / "c.sqlite3"), warm_models=False))
        async with TestClient(TestServer(app)) as client, TestClient(TestServer(cold)):
            st = app[KEY_STATE]
            assert st.warming is not None
            r = await client.get("/api/health")  # the server answers while it warms
            assert r.status == 200
            await asyncio.wait_for(st.warming, 120)
            return st.warming.exception() is None, cold[KEY_STATE].warming is None

    ok, cold_none = asyncio.run(main())
    assert ok and cold_none
    assert set(required_models(PipelineOptions(live=True))) <= {n for n, _ in registry._sessions}
