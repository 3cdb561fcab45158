"""Batch review: every video in folders (or a list of files) -> one JSON and one HTML report each,
plus an index sorted by risk. Resumable, parallel, and one bad file never stops the batch.

``liveness review FOLDER [FILE ...] --out DIR [--workers N]`` calls :func:`review_batch`.
Output, all written atomically (a crash or Ctrl-C leaves only finished files):

- ``DIR/<name>.json`` — the ``liveness.review/1`` document of each video, ``DIR/<name>.html`` its
  report (``<name>`` is the path below the input folder with ``/`` turned into ``__``);
- ``DIR/index.json`` — schema ``liveness.batch/1``: one row per input file (verdict, risk,
  reasons, face fraction, sha256, or the error that stopped it), rewritten after every file;
- ``DIR/index.html`` — the same rows as a table, most suspicious first, linking the reports.

A second run over the same folder reuses every review whose input file (sha256), models, package
version and options are unchanged, and retries the files that failed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ._errors import InputError

__all__ = ["BATCH_SCHEMA", "VIDEO_SUFFIXES", "BatchOptions", "collect_videos", "review_batch"]

BATCH_SCHEMA = "liveness.batch/1"
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".flv", ".wmv", ".3gp", ".ogv"}
)


@dataclass(frozen=True)
class BatchOptions:
    """What every review in the batch uses (see ``liveness review --help``)."""

    threads: int = 1
    max_side: int | None = 1280
    stride: int = 1
    thumbnails: int = 6
    references: tuple[str, ...] = ()
    workers: int = 1

    def __post_init__(self) -> None:
        if self.workers < 1 or self.threads < 1 or self.stride < 1 or self.thumbnails < 0:
            raise InputError("workers, threads and stride must be >= 1, thumbnails >= 0")

    def review_key(self) -> dict[str, Any]:
        """The options that change a review's content (workers do not)."""
        return {"threads": self.threads, "max_side": self.max_side, "stride": self.stride,
                "thumbnails": self.thumbnails, "references": list(self.references)}


def collect_videos(inputs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, output name) for every input: folders are walked recursively for files with a
    video suffix (hidden ones skipped, sorted); files are taken as given, whatever their suffix.
    Names are unique: the path below the input folder with ``/`` -> ``__``; a clash between
    files given directly gets a short hash of the full path."""
    out: list[tuple[Path, str]] = []
    seen: set[Path] = set()
    names: set[str] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            pairs = [(f, "__".join(f.relative_to(p).parts)) for f in files]
        elif p.is_file():
            pairs = [(p, p.name)]
        else:
            raise InputError(f"{p}: no such file or folder")
        for f, name in pairs:
            r = f.resolve()
            if r in seen:
                continue
            seen.add(r)
            if name in names:
                name = f"{hashlib.sha256(str(r).encode()).hexdigest()[:8]}__{name}"
            names.add(name)
            out.append((f, name))
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _row(file: Path, name: str, doc: dict[str, Any] | None, error: str | None, reused: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"file": str(file), "name": name, "json": None, "html": None, "reused": reused,
                           "error": error, "label": None, "risk": None, "reasons": [], "frames": None,
                           "face_fraction": None, "duration_s": None, "sha256": None}
    if doc is not None:
        row["json"], row["html"] = f"{name}.json", f"{name}.html"
        v, s = doc.get("verdict") or {}, doc.get("summary") or {}
        row.update({
            "label": v.get("label"),
            "risk": v.get("risk"),
            "reasons": list(v.get("reasons") or [])[:3],
            "frames": s.get("frames"),
            "face_fraction": s.get("face_fraction"),
            "duration_s": (doc.get("source") or {}).get("duration_s"),
            "sha256": (doc.get("source") or {}).get("sha256"),
        })
    return row


def _reusable(json_path: Path, file: Path, options: BatchOptions) -> dict[str, Any] | None:
    """The earlier review at ``json_path`` if it still stands for ``file`` as it is now."""
    from . import __version__
    from ._registry import model_hashes
    from ._video import file_sha256

    if not json_path.is_file() or not json_path.with_suffix(".html").is_file():
        return None
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
        prov = doc["provenance"]
        same = (
            doc["source"]["sha256"] == file_sha256(file)
            and prov.get("version") == __version__
            and prov.get("models") == model_hashes()
            and prov.get("batch") == options.review_key()
        )
    except Exception:  # unreadable, partial or foreign: review again
        return None
    return doc if same else None


def _review_file(file: str, name: str, out_dir: str, options_json: str) -> dict[str, Any]:
    """Worker: review one file and write its JSON and HTML; never raises."""
    from ._cli import single_threaded_opencv

    single_threaded_opencv()
    path, out = Path(file), Path(out_dir)
    try:
        from ._pipeline import PipelineOptions
        from ._report import render_html
        from ._review import ReviewOptions, review_video
        from ._tracker import TrackerOptions

        raw = json.loads(options_json)
        o = BatchOptions(**{**raw, "references": tuple(raw["references"])})
        opts = ReviewOptions(
            pipeline=PipelineOptions(tracker=TrackerOptions(threads=o.threads), references=o.references),
            max_side=o.max_side, stride=o.stride, thumbnails=o.thumbnails,
        )
        doc = review_video(path, opts)
        doc["provenance"]["batch"] = o.review_key()
        _write_atomic(out / f"{name}.html", render_html(doc))
        _write_atomic(out / f"{name}.json", json.dumps(doc, indent=1, ensure_ascii=False))
        return _row(path, name, doc, None)
    except Exception as exc:  # one bad file must not stop the batch
        return _row(path, name, None, f"{type(exc).__name__}: {exc}")


def _sort_key(row: dict[str, Any]) -> tuple[int, float, str]:
    risk = row.get("risk")
    return (0 if row.get("error") else 1, -(risk if isinstance(risk, (int, float)) else -1.0), row["name"])


def _write_index(out: Path, rows: list[dict[str, Any]], options: BatchOptions, inputs: Sequence[str]) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from . import __version__

    ordered = sorted(rows, key=_sort_key)
    doc = {"schema": BATCH_SCHEMA, "version": __version__, "inputs": [str(i) for i in inputs],
           "options": options.review_key(), "files": ordered}
    _write_atomic(out / "index.json", json.dumps(doc, indent=1, ensure_ascii=False))
    env = Environment(loader=PackageLoader("liveness", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    counts: dict[str, int] = {}
    for r in ordered:
        key = "error" if r.get("error") else str(r.get("label") or "inconclusive")
        counts[key] = counts.get(key, 0) + 1
    html = env.get_template("batch_index.html.j2").render(rows=ordered, counts=counts, version=__version__,
                                                          inputs=doc["inputs"])
    _write_atomic(out / "index.html", html)


def review_batch(
    inputs: Sequence[str | Path], out_dir: str | Path, options: BatchOptions | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Review every video of ``inputs`` into ``out_dir``; returns the index rows (an ``error``
    on each file that could not be reviewed). ``progress(row)`` is called as each file ends."""
    options = options or BatchOptions()
    files = collect_videos(inputs)
    if not files:
        raise InputError("no video files found in " + ", ".join(str(i) for i in inputs))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Path, str]] = []
    for f, name in files:
        doc = _reusable(out / f"{name}.json", f, options)
        if doc is not None:
            rows[name] = _row(f, name, doc, None, reused=True)
            if progress is not None:
                progress(rows[name])
        else:
            todo.append((f, name))
    _write_index(out, list(rows.values()), options, [str(i) for i in inputs])
    opts_json = json.dumps({**options.review_key(), "workers": options.workers})

    def done(row: dict[str, Any]) -> None:
        rows[row["name"]] = row
        _write_index(out, list(rows.values()), options, [str(i) for i in inputs])
        if progress is not None:
            progress(row)

    if options.workers <= 1 or len(todo) <= 1:
        for f, name in todo:
            done(_review_file(str(f), name, str(out), opts_json))
    else:
        with ProcessPoolExecutor(max_workers=min(options.workers, len(todo)), mp_context=get_context("spawn")) as ex:
            futs = {ex.submit(_review_file, str(f), name, str(out), opts_json): (f, name) for f, name in todo}
            for fut in as_completed(futs):
                f, name = futs[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # the worker process itself died (e.g. out of memory)
                    row = _row(f, name, None, f"worker failed: {type(exc).__name__}: {exc}")
                done(row)
    return sorted(rows.values(), key=_sort_key)


def print_row(row: dict[str, Any]) -> None:
    """One stderr line per finished file (the CLI's progress)."""
    if row.get("error"):
        print(f"{row['file']}: error: {row['error']}", file=sys.stderr)
        return
    risk = "n/a" if row.get("risk") is None else f"{row['risk']:.2f}"
    face = "n/a" if row.get("face_fraction") is None else f"{row['face_fraction'] * 100:.1f}%"
    note = " (unchanged, reused)" if row.get("reused") else ""
    print(f"{row['file']}: verdict {row.get('label')} (risk {risk}); face on {face} of {row.get('frames')} frames{note}",
          file=sys.stderr)
