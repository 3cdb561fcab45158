"""Give freed heap memory back to the operating system (glibc ``malloc_trim``, ``mallopt``).

Loading a session's models and running its first frames frees much more than it keeps (in
process, 4 live sessions: 220 MiB in use, 248 MiB free in the heaps and resident, RSS 580 MiB);
glibc keeps those pages. :func:`trim_heap` asks it to return every free page. The server trims
when memory was freed in bulk: ``ServeOptions.trim_settle_s`` (20 s) after a live session goes
live or ends and after a REST review, not on a clock: while frames flow, the heap's free blocks
are the frames' working space, and a trim's pages come straight back (``benchmarks/
rss_live_sessions.py --trim-every 75``: each trim gave back 34-43 MiB that the next 75 frames a
session took again; without trims the RSS stayed within 0.6 % over 2,400 frames a session, at
335 rather than 580 MiB once trimmed after the start). ``trim_interval_s`` adds periodic trims.

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
from typing import Any

__all__ = ["limit_arenas", "trim_heap"]

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
