"""Give freed heap memory back to the operating system (glibc ``malloc_trim``, ``mallopt``).

Loading a session's models and running its first frames frees much more than it keeps (in
process, 4 live sessions: 220 MiB in use, 248 MiB free in the heaps and resident, RSS 580 MiB);
glibc keeps those pages. :func:`trim_heap` asks it to return every free page; when is
:class:`TrimPolicy`'s answer. The server trims every ``trim_interval_s`` (30 s), and
``trim_settle_s`` (20 s) after bulk frees (a session went live or ended, a REST review
finished). While frames flow, the heap's free blocks are the frames' working space, so a trim's
pages come back within a minute (``benchmarks/rss_live_sessions.py --trim-every 75``: each trim
gave back 34-43 MiB that the next 75 frames a session took again) and the RSS saws between trims;
but without the clock, spikes of memory ratchet the heap up (soak run 10, trims after bulk frees
only: the heap grew 199 -> 234 MiB in 5 minutes while 137 MiB were in use, the RSS 307 -> 341
MiB), and trimming only when the RSS grew ``trim_growth_mib`` above its settled level (off by
default) trimmed about as often and sat higher (soak runs 11 and 12: 296-339 MiB against the
clock's 285-308).

:func:`limit_arenas` caps how many arenas glibc makes (by default up to 8 a core, each keeping
its own free blocks): the server sets ``ServeOptions.malloc_arenas`` (2) at its start, before
its threads run. Measured in process (4 live sessions, 2 analysis threads, a trim every 300
frames): free space in the heaps 290 -> 67 MiB, and the RSS follows the memory in use instead of
swinging by 5 MiB between trims.
On a C library without ``malloc_trim`` / ``mallopt`` (musl, macOS, Windows) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from typing import Any

__all__ = ["TrimPolicy", "limit_arenas", "process_rss_mib", "trim_heap"]

_M_ARENA_MAX = -8  # mallopt parameter (malloc.h)


@functools.cache
def _libc(name: str, *argtypes: Any) -> Any:
    """The C library's function ``name`` (returning int), or None where there is none."""
    lib = ctypes.util.find_library("c")
    if not lib:
        return None
    try:
        fn = getattr(ctypes.CDLL(lib), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes = list(argtypes)
    fn.restype = ctypes.c_int
    return fn


def _malloc_trim() -> Any:
    return _libc("malloc_trim", ctypes.c_size_t)


def _mallopt() -> Any:
    return _libc("mallopt", ctypes.c_int, ctypes.c_int)


def limit_arenas(n: int) -> bool:
    """Let glibc make at most ``n`` malloc arenas from now on (arenas already made stay; call it
    before threads allocate). ``n`` 0 leaves the C library's default. ``True`` when the cap was
    set."""
    if n < 0:
        raise ValueError("n must be >= 0")
    fn = _mallopt()
    if fn is None or n == 0:
        return False
    return bool(fn(_M_ARENA_MAX, int(n)))


def trim_heap() -> bool:
    """Return free heap pages to the system; ``True`` when the C library has ``malloc_trim``."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True


def process_rss_mib() -> float | None:
    """This process's resident memory in MiB (``/proc/self/statm``); None where there is none."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


class TrimPolicy:
    """When the server gives freed heap back (see the module), asked once a tick.

    A trim is due ``settle_s`` after :meth:`want` (bulk frees: a session went live or ended, a
    review finished; a later call moves it later), when the RSS has grown ``growth_mib`` above
    its settled level (the lowest RSS from ``level_after_s`` after the last trim on, once the
    frames' working space has come back, which took about a minute in the soak: what spikes of
    memory left), and every ``interval_s``. 0 turns each off. Times are ``time.monotonic()``
    seconds."""

    def __init__(self, settle_s: float, growth_mib: float = 0.0, interval_s: float = 0.0, now: float = 0.0,
                 level_after_s: float = 60.0) -> None:
        if min(settle_s, growth_mib, interval_s, level_after_s) < 0:
            raise ValueError("settle_s, growth_mib, interval_s and level_after_s must be >= 0")
        self.settle_s, self.growth_mib, self.interval_s = settle_s, growth_mib, interval_s
        self.level_after_s = level_after_s
        self.last = now  # the last trim (or the start)
        self.due: float | None = None
        self.settled: float | None = None  # the lowest RSS from level_after_s after the last trim on

    def want(self, now: float, delay_s: float | None = None) -> None:
        if self.settle_s > 0:
            self.due = now + (self.settle_s if delay_s is None else delay_s)

    def should_trim(self, now: float, rss_mib: float | None) -> bool:
        if self.interval_s and now - self.last >= self.interval_s:
            return True
        if self.due is not None and now >= self.due:
            return True
        if self.growth_mib and rss_mib is not None and now - self.last >= self.level_after_s:
            # the lowest RSS since the working space came back: a spike that stays is growth too
            self.settled = rss_mib if self.settled is None else min(self.settled, rss_mib)
            if rss_mib > self.settled + self.growth_mib:
                return True
        return False

    def trimmed(self, now: float) -> None:
        self.last, self.due, self.settled = now, None, None
