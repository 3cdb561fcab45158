"""Batch review (`liveness review FOLDER --out DIR`): one report per video, an index sorted by
risk, a bad file reported and skipped, reruns reuse unchanged reviews."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from liveness.apps.batch import collect_videos
from liveness.apps.cli import main
from tests.conftest import write_clip


def _astro_clip(path: Path, astronaut: np.ndarray, n: int = 8, dx: int = 2) -> Path:
    import cv2

    frames = [cv2.warpAffine(astronaut, np.float32([[1, 0, dx * i], [0, 1, 0]]), (384, 384),
                             borderMode=cv2.BORDER_REFLECT) for i in range(n)]
    return write_clip(path, frames, fps=10)


@pytest.fixture()
def folder(tmp_path: Path, astronaut: np.ndarray) -> Path:
    d = tmp_path / "meetings"
    (d / "week2").mkdir(parents=True)
    _astro_clip(d / "a.mp4", astronaut)
    _astro_clip(d / "week2" / "a.mp4", astronaut, dx=-2)  # same name, other folder
    (d / "broken.mp4").write_bytes(b"not a video at all\n" * 50)
    (d / "notes.txt").write_text("not a video and not listed")
    (d / ".hidden").mkdir()
    _astro_clip(d / ".hidden" / "skip.mp4", astronaut, n=3)
    return d


def test_collect_walks_folders_and_keeps_names_unique(folder: Path, tmp_path: Path):
    got = collect_videos([folder, folder / "a.mp4"])
    names = [n for _, n in got]
    assert names == ["a", "broken", "week2__a"], "hidden and non-video files skipped, no duplicates"
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.mp4").write_bytes(b"x")
    both = collect_videos([folder / "a.mp4", other / "a.mp4"])
    assert len({n for _, n in both}) == 2, "two files called a.mp4 get different names"
    assert all(n.endswith("__a") for _, n in both)
    # same stem in one folder, or the stem of the batch's own index: the extension stays
    (other / "a.webm").write_bytes(b"x")
    (other / "index.mp4").write_bytes(b"x")
    (other / "talk.mov").write_bytes(b"x")
    assert [n for _, n in collect_videos([other])] == ["a.mp4", "a.webm", "index.mp4", "talk"]
    (other / "a.mp4.mkv").write_bytes(b"x")  # its stem is another file's kept name
    names = [n for _, n in collect_videos([other])]
    assert len(set(names)) == len(names) == 5 and "a.webm" in names and "talk" in names
    # a path that does not exist is kept (the batch lists it with its error)
    assert collect_videos([tmp_path / "missing.mp4"]) == [(tmp_path / "missing.mp4", "missing")]


def test_batch_review_reports_each_video_skips_the_broken_one_and_resumes(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "reports"
    rc = main(["review", str(folder), "--out", str(out), "--workers", "1", "--thumbnails", "2"])
    assert rc == 1, "one file failed, so the exit code says so"
    err = capsys.readouterr().err
    assert "broken.mp4: error" in err and "Traceback" not in err
    index = json.loads((out / "index.json").read_text())
    assert index["schema"] == "liveness.batch/1"
    rows = {r["name"]: r for r in index["files"]}
    assert set(rows) == {"a", "week2__a", "broken"}
    assert rows["broken"]["error"] and index["files"][0]["name"] == "broken", "errors listed first"
    assert "Error" not in rows["broken"]["error"] and "broken.mp4: not a readable video" in rows["broken"]["error"]
    for name in ("a", "week2__a"):
        r = rows[name]
        assert r["error"] is None and r["label"] in {"no_signs", "suspicious", "fake", "inconclusive"}
        assert r["json"] == f"{name}.json" and r["html"] == f"{name}.html", "README: <name>.json, <name>.html"
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["schema"] == "liveness.review/1" and doc["source"]["frames"] == 8
        assert r["sha256"] == doc["source"]["sha256"] and r["face_fraction"] == doc["summary"]["face_fraction"]
        assert "<html" in (out / f"{name}.html").read_text()[:200]
    risks = [r["risk"] for r in index["files"] if r["risk"] is not None]
    assert risks == sorted(risks, reverse=True), "most suspicious first"
    html = (out / "index.html").read_text()
    assert 'href="a.html"' in html and "broken.mp4" in html
    assert not list(out.glob("*.tmp"))

    # a rerun reuses both reviews, retries the broken file; a changed file is reviewed again
    mtime = (out / "a.json").stat().st_mtime_ns
    _astro_clip(folder / "week2" / "a.mp4", np.ascontiguousarray(np.flipud(_astronaut())), dx=1)
    rc = main(["review", str(folder), "--out", str(out), "--workers", "1", "--thumbnails", "2", "-q"])
    assert rc == 1
    index2 = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert index2["a"]["reused"] is True and (out / "a.json").stat().st_mtime_ns == mtime
    assert index2["week2__a"]["reused"] is False
    assert index2["week2__a"]["sha256"] != rows["week2__a"]["sha256"]


def _astronaut() -> np.ndarray:
    from liveness.testing import astronaut_photo

    return astronaut_photo()


def test_batch_needs_an_output_folder(folder: Path, capsys):
    assert main(["review", str(folder), "-q"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["review", str(folder / "a.mp4"), str(folder / "week2" / "a.mp4"), "--json", "x.json", "-q"]) == 2


def test_batch_review_in_parallel_workers(folder: Path, tmp_path: Path):
    out = tmp_path / "par"
    assert main(["review", str(folder), "--out", str(out), "--workers", "2", "--thumbnails", "0", "-q"]) == 1
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert rows["broken"]["error"] and rows["a"]["error"] is None and rows["week2__a"]["error"] is None
    assert (out / "a.html").is_file() and (out / "week2__a.json").is_file()


def test_missing_path_is_an_error_row_and_the_rest_is_reviewed(astronaut: np.ndarray, tmp_path: Path, capsys):
    out = tmp_path / "d"
    good = _astro_clip(tmp_path / "a.mp4", astronaut, n=14)
    rc = main(["review", str(good), str(tmp_path / "nope.mp4"), "--out", str(out),
               "--workers", "1", "--thumbnails", "0"])
    assert rc == 1, "the README: exit code 1 if any failed"
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nope.mp4: error:" in err and "no such file" in err
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert rows["nope"]["error"] and rows["nope"]["json"] is None
    assert rows["a"]["error"] is None and (out / "a.json").is_file() and (out / "a.html").is_file()
    assert "1 of 2 videos reviewed" in err
    # the index says what a passive-only answer means, in the report's words
    assert rows["a"]["label"] == "no_signs"
    html = (out / "index.html").read_text()
    assert ">no signs found<" in html and ">genuine<" not in html
    assert "No signs of manipulation found — passive checks only" in html


def test_batch_shows_a_progress_bar_over_files(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "p"
    assert main(["review", str(folder / "a.mp4"), str(folder / "week2" / "a.mp4"), "--out", str(out),
                 "--workers", "1", "--thumbnails", "0"]) == 0
    err = capsys.readouterr().err
    assert "videos: 100%" in err and "2/2" in err, err
    assert re.search(r"\[\d\d:\d\d<\d\d:\d\d", err), "elapsed<remaining (ETA) is shown"
    assert len(re.findall(r"a\.mp4: [a-z ]+ \(risk \d\.\d\d\); face on", err)) == 2, "one line per finished file"
    # a rerun reuses both: they count as done at once
    assert main(["review", str(folder / "a.mp4"), str(folder / "week2" / "a.mp4"), "--out", str(out),
                 "--workers", "1", "--thumbnails", "0"]) == 0
    err = capsys.readouterr().err
    assert err.count("(unchanged, reused)") == 2 and "2/2" in err


def test_unwritable_output_folder_fails_before_any_analysis(folder: Path, tmp_path: Path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    assert main(["review", str(folder), "--out", str(blocker / "reports"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the batch reports" in err and "Traceback" not in err


def test_sigterm_during_a_batch_leaves_valid_reports_and_a_rerun_resumes(tmp_path: Path, astronaut: np.ndarray):
    import os
    import signal
    import subprocess
    import sys
    import time

    src = tmp_path / "clips"
    src.mkdir()
    for i in range(8):
        _astro_clip(src / f"c{i}.mp4", astronaut, dx=i - 4)
    out = tmp_path / "out"
    code = "import sys; from liveness.apps.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "review", str(src), "--out", str(out), "--workers", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and len([p for p in out.glob("c*.json")]) < 2 and proc.poll() is None:
            time.sleep(0.02)
        assert proc.poll() is None, "the batch ended before it could be stopped"
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143 and "liveness: terminated" in err and "Traceback" not in err, err
    done = sorted(p.stem for p in out.glob("c*.json"))
    assert 2 <= len(done) < 8
    for name in done:  # every report written is whole
        assert json.loads((out / f"{name}.json").read_text())["schema"] == "liveness.review/1"
        assert (out / f"{name}.html").read_text().rstrip().endswith("</html>")
    index = json.loads((out / "index.json").read_text())
    assert {r["name"] for r in index["files"]} <= set(done) and not list(out.glob("*.tmp"))

    assert main(["review", str(src), "--out", str(out), "--workers", "1", "-q"]) == 0
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert set(rows) == {f"c{i}" for i in range(8)} and all(r["error"] is None for r in rows.values())
    assert {n for n, r in rows.items() if r["reused"]} == set(done), "the rerun reuses what was written"


def test_a_disk_full_during_a_batch_is_a_clear_error(folder: Path, tmp_path: Path):
    from tests.core.test_files import run_with_file_limit

    out = tmp_path / "reports"
    code = ("import sys; from liveness.apps.cli import main; "
            f"sys.exit(main(['review', {str(folder)!r}, '--out', {str(out)!r}, '--workers', '1', '-q']))")
    r = run_with_file_limit(code, 1024)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert f"cannot write the batch index in {out}: file too large" in r.stderr
    assert not list(out.glob("*.tmp"))
