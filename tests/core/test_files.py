"""Atomic writes under faults: a disk that fills up mid-write (the process's file-size limit,
RLIMIT_FSIZE, makes the kernel refuse the write as a full disk would) leaves the old file whole
and no partial temporary file."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from liveness.core.files import write_atomic

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")


def run_with_file_limit(code: str, limit: int, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -c code`` whose writes past ``limit`` bytes of any file fail (EFBIG)."""

    def limit_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    return subprocess.run([sys.executable, "-c", code], preexec_fn=limit_files, capture_output=True,
                          text=True, timeout=timeout)


def test_write_atomic_replaces_the_whole_file(tmp_path: Path) -> None:
    p = tmp_path / "r.json"
    write_atomic(p, "old")
    write_atomic(p, b"new bytes")
    assert p.read_bytes() == b"new bytes" and [f.name for f in tmp_path.iterdir()] == ["r.json"]


def test_a_full_disk_mid_write_keeps_the_old_file_and_no_part(tmp_path: Path) -> None:
    p = tmp_path / "report.json"
    p.write_text('{"old": true}')
    code = (f"from liveness.core.files import write_atomic\n"
            f"write_atomic({str(p)!r}, 'x' * 200_000)\n")
    r = run_with_file_limit(code, 16 * 1024)
    assert r.returncode != 0 and "OSError" in r.stderr and "File too large" in r.stderr, r.stderr
    assert p.read_text() == '{"old": true}', "the old report is untouched"
    assert sorted(f.name for f in tmp_path.iterdir()) == ["report.json"], "the partial temporary file is removed"
