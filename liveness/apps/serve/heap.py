"""Give freed heap memory back to the operating system (glibc ``malloc_trim``).

A server that analyses several live calls on several threads frees and reallocates many
short-lived buffers (decoded frames, chips, ONNX Runtime inputs) from per-thread malloc arenas;
glibc keeps the freed pages, so the process's RSS creeps up with the frames analysed although
nothing is kept (issue 18's soak). :func:`trim_heap` asks glibc to return every free page; the
server's ticker calls it every ``ServeOptions.trim_interval_s`` seconds, off the event loop.
On a C library without ``malloc_trim`` (musl, macOS, Windows) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

__all__ = ["trim_heap"]


@functools.cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return fn


def trim_heap() -> bool:
    """Return free heap pages to the system; ``True`` when the C library has ``malloc_trim``."""
    fn = _malloc_trim()
    if fn is None:
        return False
    fn(0)
    return True
