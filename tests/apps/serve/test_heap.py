"""The server gives freed heap memory back (issue 18's soak: RSS crept up with the frames
analysed on several threads although nothing was kept)."""

from __future__ import annotations

import asyncio
import threading
import types

import numpy as np
import pytest

from liveness.apps.serve.app import _ticker
from liveness.apps.serve.heap import TrimPolicy, trim_heap
from liveness.apps.serve.options import ServeOptions
from liveness.core.errors import ConfigError


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def test_trim_returns_pages_a_worker_thread_freed():
    """Blocks freed by a worker thread stay in the process (glibc keeps the pages; one block in
    50 kept pins the heap) until ``trim_heap`` hands them back."""
    if not trim_heap():
        pytest.skip("this C library has no malloc_trim")
    kept: list[np.ndarray] = []

    def work() -> None:
        blocks = [np.ones(100_000 // 8) for _ in range(1500)]  # 150 MB of heap (not mmap) blocks
        kept.extend(blocks[::50])
        del blocks

    t = threading.Thread(target=work)
    t.start()
    t.join()
    before = _rss_mib()
    assert trim_heap()
    after = _rss_mib()
    assert before - after > 80, (before, after)
    assert len(kept) == 30  # what is still referenced stays


def test_the_ticker_trims_on_its_interval_and_zero_turns_it_off():
    async def run(every: float) -> int:
        o = ServeOptions(db=":memory:", status_hz=50.0, trim_interval_s=every, trim_growth_mib=0.0)
        st = types.SimpleNamespace(options=o, sessions={}, heap_trims=0, trim=TrimPolicy(20.0, 0.0, every))
        task = asyncio.create_task(_ticker(st))  # type: ignore[arg-type]
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return st.heap_trims

    assert asyncio.run(run(0.1)) >= 2
    assert asyncio.run(run(0.0)) == 0
    with pytest.raises(ConfigError, match="trim_interval_s"):
        ServeOptions(db=":memory:", trim_interval_s=-1.0)
    with pytest.raises(ConfigError, match="trim_settle_s"):
        ServeOptions(db=":memory:", trim_settle_s=-1.0)
    with pytest.raises(ConfigError, match="trim_growth_mib"):
        ServeOptions(db=":memory:", trim_growth_mib=-1.0)


def test_trim_policy_trims_after_bulk_frees_and_when_rss_grew_above_its_settled_level():
    p = TrimPolicy(settle_s=20.0, growth_mib=16.0, now=0.0, level_after_s=20.0)
    assert not p.should_trim(5.0, 500.0)  # settling: no level yet
    assert not p.should_trim(21.0, 300.0)  # the settled level: 300
    assert not p.should_trim(100.0, 315.0)  # within 16 MiB of it: the frames' working space
    assert p.should_trim(101.0, 316.5)  # 16.5 above: what spikes left behind
    p.trimmed(101.0)
    assert not p.should_trim(102.0, 500.0)  # right after a trim the level is measured again
    assert not p.should_trim(121.0, 290.0) and p.settled == 290.0
    assert not p.should_trim(122.0, 285.0) and p.settled == 285.0  # the lowest since settling
    assert p.should_trim(123.0, 301.5)  # 16.5 above it, though only 11.5 above the first level
    p.want(130.0)  # a session ended
    assert not p.should_trim(149.0, 291.0) and p.should_trim(150.0, 291.0)
    p.trimmed(150.0)
    p.want(151.0)
    p.want(160.0)  # a burst of bulk frees: one trim, settle_s after the last
    assert not p.should_trim(179.0, 290.0) and p.should_trim(180.0, 290.0)
    off = TrimPolicy(settle_s=0.0, growth_mib=0.0)
    off.want(0.0)
    assert not any(off.should_trim(t, 1e6) for t in (1.0, 100.0, 1e5))
    slow = TrimPolicy(settle_s=20.0, growth_mib=8.0)  # the level is read from a minute after a trim on
    assert not slow.should_trim(30.0, 300.0) and not slow.should_trim(59.0, 330.0) and slow.settled is None
    assert not slow.should_trim(60.0, 314.0) and slow.should_trim(61.0, 322.5)
    clock = TrimPolicy(settle_s=20.0, interval_s=30.0)
    assert not clock.should_trim(29.0, None) and clock.should_trim(30.0, None)
    with pytest.raises(ValueError):
        TrimPolicy(settle_s=-1.0)


def test_the_ticker_trims_once_things_settle_after_a_session_goes_live_or_ends():
    """Besides the clock: one trim ``trim_settle_s`` after a session goes live, one after it
    ends, one after a review finishes (``want_trim``)."""
    from liveness.apps.serve.state import ServerState

    async def run(settle: float) -> list[int]:
        st = ServerState(ServeOptions(db=":memory:", status_hz=50.0, trim_settle_s=settle, trim_growth_mib=0.0,
                                      trim_interval_s=0.0),
                         lambda: None)
        sess = types.SimpleNamespace(state="created", token_expires=None, pc=None, ended=None)
        st.sessions["a" * 16] = sess  # type: ignore[assignment]
        task = asyncio.create_task(_ticker(st))
        seen = []
        await asyncio.sleep(0.3)
        seen.append(st.heap_trims)  # nothing live yet, nothing on a clock
        sess.state = "live"
        sess.last_frame_mono, sess.started_mono = None, None
        sess.broadcast = lambda msg: None
        sess.status_message = lambda: {}
        await asyncio.sleep(0.05)
        seen.append(st.heap_trims)  # went live: not yet, it settles first
        await asyncio.sleep(0.4)
        seen.append(st.heap_trims)
        sess.state, sess.ended = "ended", 1e18
        await asyncio.sleep(0.4)
        seen.append(st.heap_trims)
        st.want_trim(0.0)  # a review finished
        await asyncio.sleep(0.2)
        seen.append(st.heap_trims)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        st.store.close()
        st.pool.shutdown()
        return seen

    assert asyncio.run(run(0.2)) == [0, 0, 1, 2, 3]
    assert asyncio.run(run(0.0)) == [0, 0, 0, 0, 0]  # 0: never


_ARENA_PROBE = """
import sys, threading
import numpy as np
from liveness.apps.serve.heap import limit_arenas
n = int(sys.argv[1])
if n:
    assert limit_arenas(n)
def work():
    for _ in range(3000):
        blocks = [np.empty(200) for _ in range(20)]
        del blocks
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
import ctypes, ctypes.util
ctypes.CDLL(ctypes.util.find_library("c")).malloc_stats()  # one "Arena k:" block an arena, on stderr
"""


def _arenas(n: int) -> int:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _ARENA_PROBE, str(n)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return sum(line.startswith("Arena ") for line in out.stderr.splitlines())


def test_limit_arenas_caps_the_arenas_threads_make():
    from liveness.apps.serve.heap import _mallopt, limit_arenas

    if _mallopt() is None or not trim_heap():
        pytest.skip("not glibc")
    free = _arenas(0)
    if free <= 2:
        pytest.skip(f"8 threads made only {free} arenas here; nothing to cap")
    assert _arenas(2) <= 2 < free
    assert not limit_arenas(0)  # 0: the C library's default, nothing set
    with pytest.raises(ValueError):
        limit_arenas(-1)
    with pytest.raises(ConfigError, match="malloc_arenas"):
        ServeOptions(db=":memory:", malloc_arenas=-1)


def test_serve_takes_the_arena_cap_from_its_command_line():
    from liveness.apps.cli import build_parser
    from liveness.apps.serve.cli import options_from_args

    args = build_parser().parse_args(["serve", "--db", ":memory:", "--malloc-arenas", "3"])
    assert options_from_args(args).malloc_arenas == 3
    assert options_from_args(build_parser().parse_args(["serve", "--db", ":memory:"])).malloc_arenas == 2
