"""The Ray engine of batch review on a local Ray (``ray.init(num_cpus=2)``): the same verdicts,
reports and index as the local engine, a bad video as an error row, reruns reusing unchanged
reviews. Skipped where Ray is not installed (``pip install -e '.[ray]'``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from liveness.apps.cli import main
from tests.conftest import write_clip


def _clip(path: Path, img: np.ndarray, n: int, dx: int) -> Path:
    import cv2

    h, w = img.shape[:2]
    frames = [cv2.warpAffine(img, np.float32([[1, 0, dx * i], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REFLECT)
              for i in range(n)]
    return write_clip(path, frames, fps=10)


@pytest.fixture()
def videos(tmp_path: Path, astronaut: np.ndarray) -> Path:
    import cv2

    d = tmp_path / "in"
    d.mkdir()
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    _clip(d / "a.mp4", astronaut, 10, 2)
    _clip(d / "b.mp4", astronaut, 14, -3)
    _clip(d / "c.mp4", np.ascontiguousarray(astronaut[:, ::-1]), 10, 1)
    _clip(d / "d.mp4", small, 12, 4)
    (d / "broken.mp4").write_bytes(b"not a video at all\n" * 50)
    return d


def _index(out: Path) -> dict[str, dict]:
    return {r["name"]: r for r in json.loads((out / "index.json").read_text())["files"]}


def test_ray_batch_gives_the_local_engine_s_verdicts(videos: Path, tmp_path: Path, capsys):
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[ray]')")
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["review", str(videos), "--out", str(local), "--workers", "1", "--thumbnails", "0", "-q"]) == 1
    rc = main(["review", str(videos), "--out", str(on_ray), "--engine", "ray", "--workers", "2",
               "--thumbnails", "0"])
    err = capsys.readouterr().err
    assert rc == 1, "the broken file is listed as failed"
    assert "broken.mp4: error" in err and "Traceback" not in err and "videos:" in err, "progress bar and failures"
    a, b = _index(local), _index(on_ray)
    assert set(a) == set(b) == {"a", "b", "c", "d", "broken"}
    assert b["broken"]["error"] == a["broken"]["error"] and b["broken"]["json"] is None
    for name in ("a", "b", "c", "d"):
        assert b[name]["error"] is None
        assert (b[name]["label"], b[name]["risk"]) == (a[name]["label"], a[name]["risk"]), name
        ja = json.loads((local / f"{name}.json").read_text())
        jb = json.loads((on_ray / f"{name}.json").read_text())
        assert jb["signals"] == ja["signals"] and jb["source"]["sha256"] == ja["source"]["sha256"]
        assert "<html" in (on_ray / f"{name}.html").read_text()[:200]
    assert (on_ray / "index.html").is_file()

    # a rerun on Ray reuses the unchanged reviews and retries only the broken file
    mtime = (on_ray / "a.json").stat().st_mtime_ns
    assert main(["review", str(videos), "--out", str(on_ray), "--engine", "ray", "--workers", "2",
                 "--thumbnails", "0", "-q"]) == 1
    c = _index(on_ray)
    assert all(c[n]["reused"] for n in "abcd") and not c["broken"]["reused"]
    assert (on_ray / "a.json").stat().st_mtime_ns == mtime


def test_ray_engine_without_ray_is_a_clear_error(videos: Path, tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    rc = main(["review", str(videos / "a.mp4"), "--out", str(tmp_path / "o"), "--engine", "ray", "-q"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "pip install 'interview-liveness[ray]'" in err and "Traceback" not in err
