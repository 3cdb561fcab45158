"""Fixtures of the server tests: a throw-away PostgreSQL cluster (tests/_postgres.py) and the
database URL of each backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests import _postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    cluster, why = _postgres.start()
    if cluster is None:
        pytest.skip(why)
    try:
        yield cluster.url
    finally:
        cluster.stop()


def fresh_pg(url: str) -> str:
    """An empty database of its own on the cluster (each test starts from nothing)."""
    import psycopg

    name = f"t{time.time_ns()}"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return url.replace("/postgres?", f"/{name}?")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "serve.sqlite3")
    return fresh_pg(request.getfixturevalue("postgres"))
