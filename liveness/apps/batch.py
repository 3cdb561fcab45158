"""Batch review: every video in folders (or a list of files) -> one JSON and one HTML report each,
plus an index sorted by risk. Resumable, parallel, and one bad file never stops the batch.

``liveness review FOLDER [FILE ...] --out DIR [--workers N]`` calls :func:`review_batch`.
Output, all written atomically (a crash or Ctrl-C leaves only finished files):

- ``DIR/<name>.json`` — the ``liveness.review/1`` document of each video, ``DIR/<name>.html`` its
  report (``<name>`` is the path below the input folder without its extension, ``/`` turned into
  ``__``: ``interview.mp4`` -> ``interview.json``; see :func:`collect_videos` for clashes);
- ``DIR/index.json`` — schema ``liveness.batch/1``: one row per input file (verdict, risk,
  reasons, face fraction, sha256, or the error that stopped it), rewritten after every file;
- ``DIR/index.html`` — the same rows as a table, most suspicious first, linking the reports.

A second run over the same folder reuses every review whose input file (sha256), models, package
version and options are unchanged, and retries the files that failed. A path that does not exist
is listed with its error like a file that cannot be read; the others are reviewed.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from liveness.core.errors import InputError, LivenessError
from liveness.core.files import write_atomic
from liveness.core.review import Review
from liveness.verdict.explain import LABEL_HEADLINE, LABEL_TEXT

__all__ = ["BATCH_SCHEMA", "VIDEO_SUFFIXES", "BatchOptions", "BatchProgress", "collect_videos", "review_batch",
           "review_texts", "write_review"]

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


_RESERVED = {"index"}  # DIR/index.json and DIR/index.html are the batch's own


def collect_videos(inputs: Sequence[str | Path]) -> list[tuple[Path, str]]:
    """(file, output name) for every input: folders are walked recursively for files with a
    video suffix (hidden ones skipped, sorted); files are taken as given, whatever their suffix,
    and so are paths that do not exist (the batch lists them with their error).

    A name is the path below the input folder without its extension, ``/`` -> ``__``
    (``week2/a.mp4`` -> ``week2__a``). Names stay unique: files whose names would clash (``a.mp4``
    beside ``a.webm``) or would be ``index`` keep their extension (``a.mp4``, ``a.webm``); files
    given directly from different folders with the same name get a short hash of their full
    path in front. Names depend only on the set of inputs, so a rerun finds its reports."""
    found: list[tuple[Path, tuple[str, ...]]] = []
    seen: set[Path] = set()
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files = sorted(
                f for f in p.rglob("*")
                if f.is_file() and f.suffix.lower() in VIDEO_SUFFIXES
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
            pairs = [(f, f.relative_to(p).parts) for f in files]
        else:
            pairs = [(p, (p.name,))]
        for f, parts in pairs:
            r = f.resolve()
            if r not in seen:
                seen.add(r)
                found.append((f, parts))

    def stem(parts: tuple[str, ...]) -> str:
        return "__".join((*parts[:-1], Path(parts[-1]).stem or parts[-1]))

    def hashed(f: Path, name: str) -> str:
        return f"{hashlib.sha256(str(f.resolve()).encode()).hexdigest()[:8]}__{name}"

    stems = Counter(stem(parts) for _, parts in found)
    fulls = Counter("__".join(parts) for _, parts in found)
    named: list[tuple[Path, str]] = []
    for f, parts in found:
        name = stem(parts)
        if stems[name] > 1 or name.lower() in _RESERVED:
            full = "__".join(parts)
            name = full if fulls[full] == 1 else hashed(f, name)
        named.append((f, name))
    taken = Counter(n for _, n in named)  # a kept extension can still meet another's stem
    return [(f, hashed(f, n) if taken[n] > 1 else n) for f, n in named]


def _row(file: Path, name: str, doc: Review | dict[str, Any] | None, error: str | None,
         reused: bool = False) -> dict[str, Any]:
    row: dict[str, Any] = {"file": str(file), "name": name, "json": None, "html": None, "reused": reused,
                           "error": error, "label": None, "risk": None, "reasons": [], "frames": None,
                           "face_fraction": None, "duration_s": None, "sha256": None}
    if doc is not None:
        row["json"], row["html"] = f"{name}.json", f"{name}.html"
        r = doc if isinstance(doc, Review) else Review.from_dict(doc)
        row.update({
            "label": r.verdict.label,
            "risk": r.verdict.risk,
            "reasons": list(r.verdict.reasons)[:3],
            "frames": r.summary.get("frames"),
            "face_fraction": r.summary.get("face_fraction"),
            "duration_s": r.source.get("duration_s"),
            "sha256": r.source.get("sha256"),
        })
    return row


def _reusable(json_path: Path, file: Path, options: BatchOptions) -> dict[str, Any] | None:
    """The earlier review at ``json_path`` if it still stands for ``file`` as it is now."""
    from liveness.core.files import file_sha256
    from liveness.core.registry import model_hashes
    from liveness.core.version import __version__

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


def review_texts(file: str, name: str, options_json: str) -> tuple[dict[str, Any], str | None, str | None]:
    """Review one file: its index row, its JSON document and its HTML report (None, None and
    the row's ``error`` when it could not be reviewed); never raises. The Ray engine runs this
    on its workers and writes the texts where the local engine does."""
    from liveness.apps.common import single_threaded_opencv

    single_threaded_opencv()
    path = Path(file)
    try:
        from liveness.apps.review import ReviewOptions, review
        from liveness.pipeline import PipelineOptions
        from liveness.tracking.tracker import TrackerOptions
        from liveness.verdict.report import render_html

        raw = json.loads(options_json)
        o = BatchOptions(**{**raw, "references": tuple(raw["references"])})
        opts = ReviewOptions(
            pipeline=PipelineOptions(tracker=TrackerOptions(threads=o.threads), references=o.references),
            max_side=o.max_side, stride=o.stride, thumbnails=o.thumbnails,
        )
        doc = review(path, opts)
        doc = replace(doc, provenance={**doc.provenance, "batch": o.review_key()})
        html = render_html(doc)
        return _row(path, name, doc, None), json.dumps(doc.to_dict(), indent=1, ensure_ascii=False), html
    except LivenessError as exc:  # one bad file must not stop the batch
        return _row(path, name, None, str(exc)), None, None
    except Exception as exc:
        return _row(path, name, None, f"{type(exc).__name__}: {exc}"), None, None


def write_review(out: Path, name: str, json_text: str | None, html_text: str | None) -> None:
    """``out/<name>.html`` then ``out/<name>.json`` (the JSON last: a rerun reuses a review only
    when both are there)."""
    if json_text is not None and html_text is not None:
        write_atomic(out / f"{name}.html", html_text)
        write_atomic(out / f"{name}.json", json_text)


def _review_file(file: str, name: str, out_dir: str, options_json: str) -> dict[str, Any]:
    """Worker: review one file and write its JSON and HTML; never raises."""
    row, js, html = review_texts(file, name, options_json)
    try:
        write_review(Path(out_dir), name, js, html)
    except OSError as exc:
        return _row(Path(file), name, None, f"cannot write the report: {exc}")
    return row


def _sort_key(row: dict[str, Any]) -> tuple[int, float, str]:
    risk = row.get("risk")
    return (0 if row.get("error") else 1, -(risk if isinstance(risk, (int, float)) else -1.0), row["name"])


def _write_index(out: Path, rows: list[dict[str, Any]], options: BatchOptions, inputs: Sequence[str]) -> None:
    from liveness.core.version import __version__

    ordered = sorted(rows, key=_sort_key)
    doc = {"schema": BATCH_SCHEMA, "version": __version__, "inputs": [str(i) for i in inputs],
           "options": options.review_key(), "files": ordered}
    try:
        _write_index_files(out, doc, ordered)
    except OSError as exc:  # the disk filled up: stop with the reports so far (a rerun resumes)
        reason = (exc.strerror or str(exc)).lower()
        raise InputError(f"cannot write the batch index in {out}: {reason}; the reports written so far "
                         "are complete and a rerun reuses them") from exc


def _write_index_files(out: Path, doc: dict[str, Any], ordered: list[dict[str, Any]]) -> None:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from liveness.core.version import __version__

    write_atomic(out / "index.json", json.dumps(doc, indent=1, ensure_ascii=False))
    env = Environment(loader=PackageLoader("liveness", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    counts: dict[str, int] = {}
    for r in ordered:
        key = "error" if r.get("error") else str(r.get("label") or "inconclusive")
        counts[key] = counts.get(key, 0) + 1
    html = env.get_template("batch_index.html.j2").render(rows=ordered, counts=counts, version=__version__,
                                                          inputs=doc["inputs"], headlines=LABEL_HEADLINE,
                                                          texts=LABEL_TEXT)
    write_atomic(out / "index.html", html)


def review_batch(
    inputs: Sequence[str | Path], out_dir: str | Path, options: BatchOptions | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    engine: str = "local",
    ray_address: str | None = None,
) -> list[dict[str, Any]]:
    """Review every video of ``inputs`` into ``out_dir``; returns the index rows (an ``error``
    on each file that could not be reviewed or does not exist). ``on_start(total, done)`` is
    called once the unchanged reviews are found (``done`` of the ``total`` files need no work),
    ``progress(row)`` as each file ends (reused ones first, with ``row["reused"]``).
    ``engine="ray"`` reviews each file as a task on a Ray cluster (:mod:`.batch_ray`; a local
    one without ``ray_address``), with the same reports, index and reuse."""
    from liveness.apps.common import check_writable

    options = options or BatchOptions()
    if engine not in ("local", "ray"):
        raise InputError(f"unknown engine {engine!r} (local, ray)")
    files = collect_videos(inputs)
    if not files:
        raise InputError("no video files found in " + ", ".join(str(i) for i in inputs))
    out = Path(out_dir)
    check_writable(out / "index.json", "the batch reports")
    rows: dict[str, dict[str, Any]] = {}
    todo: list[tuple[Path, str]] = []
    for f, name in files:
        doc = _reusable(out / f"{name}.json", f, options) if f.is_file() else None
        if doc is not None:
            rows[name] = _row(f, name, doc, None, reused=True)
        elif not f.exists():
            rows[name] = _row(f, name, None, f"{f}: no such file or folder")
        else:
            todo.append((f, name))
    if on_start is not None:
        on_start(len(files), len(files) - len(todo))
    if progress is not None:
        for row in rows.values():
            progress(row)
    _write_index(out, list(rows.values()), options, [str(i) for i in inputs])
    opts_json = json.dumps({**options.review_key(), "workers": options.workers})

    def done(row: dict[str, Any]) -> None:
        rows[row["name"]] = row
        _write_index(out, list(rows.values()), options, [str(i) for i in inputs])
        if progress is not None:
            progress(row)

    if engine == "ray" and todo:
        from liveness.apps.batch_ray import review_on_ray

        review_on_ray(todo, out, opts_json, done, options.workers, ray_address, review=review_texts,
                      write=write_review, error_row=lambda f, n, e: _row(f, n, None, e))
    elif options.workers <= 1 or len(todo) <= 1:
        for f, name in todo:
            done(_review_file(str(f), name, str(out), opts_json))
    else:
        ex = ProcessPoolExecutor(max_workers=min(options.workers, len(todo)), mp_context=get_context("spawn"))
        try:
            futs = {ex.submit(_review_file, str(f), name, str(out), opts_json): (f, name) for f, name in todo}
            for fut in as_completed(futs):
                f, name = futs[fut]
                try:
                    row = fut.result()
                except Exception as exc:  # the worker process itself died (e.g. out of memory)
                    row = _row(f, name, None, f"worker failed: {type(exc).__name__}: {exc}")
                done(row)
        finally:  # interrupted (Ctrl-C, SIGTERM): files not started are dropped, running ones end
            ex.shutdown(wait=True, cancel_futures=True)
    return sorted(rows.values(), key=_sort_key)


def row_line(row: dict[str, Any]) -> str:
    """One line about a finished file."""
    if row.get("error"):
        return f"{row['file']}: error: {row['error']}"
    risk = "n/a" if row.get("risk") is None else f"{row['risk']:.2f}"
    face = "n/a" if row.get("face_fraction") is None else f"{row['face_fraction'] * 100:.1f}%"
    note = " (unchanged, reused)" if row.get("reused") else ""
    label = LABEL_HEADLINE.get(str(row.get("label")), str(row.get("label")))
    return f"{row['file']}: {label} (risk {risk}); face on {face} of {row.get('frames')} frames{note}"


class BatchProgress:
    """The command line's batch progress on stderr: a bar over the files with the time left
    (tqdm; files reused from an earlier run are counted as done and do not skew the estimate)
    and one line per finished file above it. ``quiet`` keeps only the error lines."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None

    def start(self, total: int, done: int) -> None:
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc="videos", unit="video", file=sys.stderr,
                            dynamic_ncols=True)

    def __call__(self, row: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.write(row_line(row), file=sys.stderr)
            if not row.get("reused"):
                self.bar.update(1)
        elif row.get("error"):
            print(row_line(row), file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
