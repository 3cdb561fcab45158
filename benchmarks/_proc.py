"""What the serve benchmarks read about a process: a free local port, resident memory."""

from __future__ import annotations

import socket
from pathlib import Path

__all__ = ["free_port", "rss_mib"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int | str = "self") -> float:
    """Resident set size of process ``pid`` in MiB (``VmRSS``); NaN when the kernel gives none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
