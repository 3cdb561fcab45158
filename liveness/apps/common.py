"""What the command-line apps share: output checks and writes, the progress bar, OpenCV's
thread setting."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from liveness.core.errors import InputError
from liveness.core.files import write_atomic

__all__ = ["check_writable", "progress_hook", "single_threaded_opencv", "write_json", "write_text"]


def progress_hook(desc: str, quiet: bool) -> Any:
    """A tqdm bar over the frames of one video (None when quiet)."""
    if quiet:
        return None
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def hook(ev: Any) -> None:
        if ev.stage != "frame":
            return
        if "b" not in bar:
            bar["b"] = tqdm(total=ev.total, desc=desc, unit="frame", file=sys.stderr, leave=False)
        bar["b"].update(1)

    hook.close = lambda: bar["b"].close() if "b" in bar else None  # type: ignore[attr-defined]
    return hook


def check_writable(path: str | Path | None, what: str) -> None:
    """Create the folder of ``path`` and make sure a file can be written there, so a bad output
    path fails at once with a clear message instead of after the whole analysis. ``None`` and
    ``"-"`` (stdout) need nothing."""
    if path is None or str(path) == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise InputError(f"cannot write {what} to {p}: it is a folder (give a file name)")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp"):
            pass
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise InputError(f"cannot write {what} to {p}: {reason}") from exc


def write_text(path: str, text: str | Iterable[str]) -> None:
    """Write ``text`` (or its pieces, as they come) to ``path`` atomically (``-`` = stdout);
    the folder is created."""
    if path == "-":
        for piece in (text,) if isinstance(text, str) else text:
            sys.stdout.write(piece)
        sys.stdout.write("\n")
        return
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(p, text)
    except OSError as exc:  # e.g. the disk filled up during the analysis: the old file stays
        reason = (exc.strerror or str(exc)).lower()
        raise InputError(f"cannot write {p}: {reason}") from exc


def write_json(path: str, doc: Any) -> None:
    write_text(path, json.dumps(doc, indent=1, ensure_ascii=False))


def single_threaded_opencv() -> None:
    """The command-line tools run OpenCV single-threaded: its per-frame calls here (a 192-px
    warp, a face-sized resize) are too small to gain from threads — two threads took twice
    the CPU for the same wall time — and parallel sessions or eval workers use the cores."""
    import cv2

    cv2.setNumThreads(1)
