"""What the serve benchmarks read about a process: a free local port, resident memory, glibc's
heap statistics."""

from __future__ import annotations

import ctypes
import os
import socket
from pathlib import Path

__all__ = ["free_port", "heap_mib", "rss_mib"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int | str = "self") -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (``/proc``)."""
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of process ``pid`` in MiB (``VmRSS``); NaN when the kernel gives none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(k, ctypes.c_size_t) for k in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_mib() -> dict[str, float] | None:
    """This process's glibc heap (``mallinfo2``, every arena), MiB: ``in_use`` (allocated in
    the heaps), ``free`` (free inside them), ``mmapped`` (blocks malloc mapped on their own),
    ``arena`` (the heaps' size) and ``blocks`` (how many mapped blocks); None without glibc."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2
    m = fn()
    mib = 2.0**20
    return {"in_use": m.uordblks / mib, "free": m.fordblks / mib, "mmapped": m.hblkhd / mib,
            "arena": m.arena / mib, "blocks": float(m.hblks)}
