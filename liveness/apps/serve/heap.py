"""Give freed heap memory back to the operating system (glibc ``malloc_trim``).

A server that analyses several live calls on several threads frees and reallocates many
short-lived buffers (decoded frames, chips, ONNX Runtime inputs) from per-thread malloc arenas;
glibc keeps the freed pages, so the process's RSS creeps up with the frames analysed although
nothing is kept (issue 18's soak). :func:`trim_heap` asks glibc to return every free page; the
server's ticker calls it every ``ServeOptions.trim_interval_s`` seconds, off the event loop.
:func:`limit_arenas` caps how many arenas glibc makes (by default up to 8 a core, each keeping
its own free blocks): the server sets ``ServeOptions.malloc_arenas`` (2) at its start, before
its threads run. Measured in process (4 live sessions, 2 analysis threads, a trim every 300
frames; ``benchmarks/rss_live_sessions.py``): free space in the heaps 290 -> 67 MiB, and the RSS
follows the memory in use instead of swinging by 5 MiB between trims.
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
