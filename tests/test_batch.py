"""Batch review (`liveness review FOLDER --out DIR`): one report per video, an index sorted by
risk, a bad file reported and skipped, reruns reuse unchanged reviews."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liveness import InputError
from liveness._batch import collect_videos
from liveness._cli import main
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
    assert names == ["a.mp4", "broken.mp4", "week2__a.mp4"], "hidden and non-video files skipped, no duplicates"
    other = tmp_path / "other"
    other.mkdir()
    (other / "a.mp4").write_bytes(b"x")
    both = collect_videos([folder / "a.mp4", other / "a.mp4"])
    assert len({n for _, n in both}) == 2, "two files called a.mp4 get different names"
    with pytest.raises(InputError, match="no such file"):
        collect_videos([tmp_path / "missing"])


def test_batch_review_reports_each_video_skips_the_broken_one_and_resumes(folder: Path, tmp_path: Path, capsys):
    out = tmp_path / "reports"
    rc = main(["review", str(folder), "--out", str(out), "--workers", "1", "--thumbnails", "2"])
    assert rc == 1, "one file failed, so the exit code says so"
    err = capsys.readouterr().err
    assert "broken.mp4: error" in err and "Traceback" not in err
    index = json.loads((out / "index.json").read_text())
    assert index["schema"] == "liveness.batch/1"
    rows = {r["name"]: r for r in index["files"]}
    assert set(rows) == {"a.mp4", "week2__a.mp4", "broken.mp4"}
    assert rows["broken.mp4"]["error"] and index["files"][0]["name"] == "broken.mp4", "errors listed first"
    for name in ("a.mp4", "week2__a.mp4"):
        r = rows[name]
        assert r["error"] is None and r["label"] in {"genuine", "suspicious", "fake", "inconclusive"}
        doc = json.loads((out / f"{name}.json").read_text())
        assert doc["schema"] == "liveness.review/1" and doc["source"]["frames"] == 8
        assert r["sha256"] == doc["source"]["sha256"] and r["face_fraction"] == doc["summary"]["face_fraction"]
        assert "<html" in (out / f"{name}.html").read_text()[:200]
    risks = [r["risk"] for r in index["files"] if r["risk"] is not None]
    assert risks == sorted(risks, reverse=True), "most suspicious first"
    html = (out / "index.html").read_text()
    assert 'href="a.mp4.html"' in html and "broken.mp4" in html
    assert not list(out.glob("*.tmp"))

    # a rerun reuses both reviews, retries the broken file; a changed file is reviewed again
    mtime = (out / "a.mp4.json").stat().st_mtime_ns
    _astro_clip(folder / "week2" / "a.mp4", np.ascontiguousarray(np.flipud(_astronaut())), dx=1)
    rc = main(["review", str(folder), "--out", str(out), "--workers", "1", "--thumbnails", "2", "-q"])
    assert rc == 1
    index2 = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert index2["a.mp4"]["reused"] is True and (out / "a.mp4.json").stat().st_mtime_ns == mtime
    assert index2["week2__a.mp4"]["reused"] is False
    assert index2["week2__a.mp4"]["sha256"] != rows["week2__a.mp4"]["sha256"]


def _astronaut() -> np.ndarray:
    from liveness._avatar import astronaut_photo

    return astronaut_photo()


def test_batch_needs_an_output_folder(folder: Path, capsys):
    assert main(["review", str(folder), "-q"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["review", str(folder / "a.mp4"), str(folder / "week2" / "a.mp4"), "--json", "x.json", "-q"]) == 2


def test_batch_review_in_parallel_workers(folder: Path, tmp_path: Path):
    out = tmp_path / "par"
    assert main(["review", str(folder), "--out", str(out), "--workers", "2", "--thumbnails", "0", "-q"]) == 1
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}
    assert rows["broken.mp4"]["error"] and rows["a.mp4"]["error"] is None and rows["week2__a.mp4"]["error"] is None
    assert (out / "a.mp4.html").is_file() and (out / "week2__a.mp4.json").is_file()
