"""The Ray engine of batch review: ``liveness review DIR --out OUT --engine ray
[--ray-address ADDR]`` (``pip install 'interview-liveness[ray]'``).

Each video is one call on a Ray actor; an actor is one worker process that keeps its models
(ONNX Runtime sessions are made once per process), so the models load once per worker, not per
video. The actors return each video's index row, JSON document and HTML report, and this
process writes them into ``--out`` exactly as the local engine does (same names, same index,
same reuse of unchanged reviews on a rerun), so the output folder needs to exist only here.
A video that cannot be reviewed is an error row; an actor that dies (out of memory, a node
lost) is an error row for its video and is replaced.

Without an address a local Ray is started with ``--workers`` CPUs and stopped afterwards; with
one (``ray://head:10001``, or ``auto`` on a cluster node) the videos must be readable at the
same path on every node (a shared folder) and the package installed there.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from liveness.core.errors import ConfigError

__all__ = ["review_on_ray"]


Texts = tuple[dict[str, Any], "str | None", "str | None"]


class _Reviewer:
    """One Ray worker: reviews videos one after the other with the models it loaded once."""

    def __init__(self, review: Callable[[str, str, str], Texts]) -> None:
        self._review = review

    def review(self, file: str, name: str, options_json: str) -> Texts:
        return self._review(file, name, options_json)


def review_on_ray(
    todo: Sequence[tuple[Path, str]], out: Path, options_json: str, done: Callable[[dict[str, Any]], None],
    workers: int, address: str | None, *, review: Callable[[str, str, str], Texts],
    write: Callable[[Path, str, str | None, str | None], None],
    error_row: Callable[[Path, str, str], dict[str, Any]],
) -> None:
    """Review ``todo`` (file, name) on Ray, ``workers`` at a time: ``review(file, name,
    options_json)`` on a worker gives (row, JSON, HTML), ``write(out, name, JSON, HTML)`` stores
    them here, ``error_row(file, name, error)`` stands for a video whose worker failed, and
    ``done(row)`` follows each file (the batch passes its own functions)."""
    try:
        import ray
        from ray.exceptions import RayActorError, RayTaskError
    except ImportError as exc:
        raise ConfigError("--engine ray needs Ray: pip install 'interview-liveness[ray]'") from exc
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves this machine
    started = False
    if not ray.is_initialized():
        kw: dict[str, Any] = {"address": address} if address else {"num_cpus": max(1, workers)}
        try:
            ray.init(**kw, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        except Exception as exc:  # no cluster at that address, ports taken, ...
            raise ConfigError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}") from exc
        started = True
    try:
        actor_cls = ray.remote(num_cpus=1, max_restarts=0)(_Reviewer)
        queue = list(todo)
        n = max(1, min(workers, len(queue)))
        actors = [actor_cls.remote(review) for _ in range(n)]
        running: dict[Any, tuple[Any, Path, str]] = {}

        def submit(actor: Any) -> None:
            if queue:
                f, name = queue.pop(0)
                running[actor.review.remote(str(f), name, options_json)] = (actor, f, name)

        for a in actors:
            submit(a)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            ref = ready[0]
            actor, f, name = running.pop(ref)
            try:
                row, js, html = ray.get(ref)
                try:
                    write(out, name, js, html)
                except OSError as exc:
                    row = error_row(f, name, f"cannot write the report: {exc}")
            except RayActorError as exc:  # the worker process died: replace it
                row = error_row(f, name, f"worker failed: {type(exc).__name__}: {str(exc)[:200]}")
                actor = actor_cls.remote(review)
            except RayTaskError as exc:
                row = error_row(f, name, f"worker failed: {str(exc)[:300]}")
            done(row)
            submit(actor)
    finally:
        if started:
            ray.shutdown()
