"""A throw-away PostgreSQL cluster for the store's tests: ``initdb`` + ``pg_ctl`` in a temporary
folder, listening on a Unix socket there only (no TCP port), run as the ``postgres`` user when
the tests run as root (PostgreSQL refuses to run as root). ``LIVENESS_TEST_POSTGRES`` names an
existing database instead. :func:`start` says why when it cannot start one (the tests skip)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["Cluster", "start"]


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cands = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return cands[-1] if cands else None


class Cluster:
    def __init__(self, url: str, folder: Path | None, run_as: list[str], pg_ctl: str | None) -> None:
        self.url, self.folder, self._run_as, self._pg_ctl = url, folder, run_as, pg_ctl

    def stop(self) -> None:
        if self.folder is not None and self._pg_ctl:
            subprocess.run([*self._run_as, self._pg_ctl, "-D", str(self.folder / "data"), "-m", "immediate",
                            "stop"], capture_output=True, timeout=60)
            shutil.rmtree(self.folder, ignore_errors=True)


def start() -> tuple[Cluster | None, str]:
    """(a running cluster, "") or (None, why not)."""
    if os.environ.get("LIVENESS_TEST_POSTGRES"):
        return Cluster(os.environ["LIVENESS_TEST_POSTGRES"], None, [], None), ""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return None, "psycopg is not installed (pip install -e '.[postgres]')"
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None, "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)"
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="liveness-pg-"))
    if os.geteuid() == 0:
        import pwd

        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder, ignore_errors=True)
            return None, "running as root and there is no 'postgres' user to run PostgreSQL as"
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "log"
    try:
        r = subprocess.run([*run_as, initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                            "--no-sync"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed: {r.stderr.strip()[-300:]}")
        opts = f"-c listen_addresses='' -k {folder} -c fsync=off -c max_connections=20"
        r = subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", "60",
                            "start"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            text = log.read_text() if log.is_file() else r.stderr
            raise RuntimeError(f"pg_ctl start failed: {text.strip()[-300:]}")
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        Cluster("", folder, run_as, pg_ctl).stop()
        return None, f"could not start a PostgreSQL cluster: {exc}"
    return Cluster(f"postgresql://postgres@/postgres?host={folder}", folder, run_as, pg_ctl), ""
