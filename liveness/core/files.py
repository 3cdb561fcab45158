"""File rules shared by the apps (one copy each): atomic writes, so that a reader never sees a
half-written report, and the sha256 of a file (videos, model files)."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["file_sha256", "write_atomic"]


def write_atomic(path: str | Path, data: str | bytes | Iterable[str]) -> None:
    """Write ``data`` to ``path`` through a temporary file beside it, flushed to the disk, and a
    rename: the file is either the old one or the whole new one, never a part, even when the
    process is killed or the machine stops. When the write fails (the disk is full) the
    ``OSError`` is raised, the old file is untouched and the partial temporary file is removed.
    ``data`` may be pieces of text (written as they come, never joined in memory)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    pieces: Iterable[str | bytes] = (data,) if isinstance(data, (str, bytes)) else data
    try:
        with open(tmp, "wb") as f:
            for piece in pieces:
                f.write(piece.encode("utf-8") if isinstance(piece, str) else piece)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
