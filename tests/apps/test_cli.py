from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveness.apps.cli import main
from tests.conftest import write_clip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liveness.apps.cli", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("content", [b"", b"hello, this is text, not a video\n" * 20])
def test_review_of_non_video_is_one_line_and_exit_2(tmp_path: Path, content: bytes):
    p = tmp_path / "notes.mp4"
    p.write_bytes(content)
    r = run_cli("review", str(p), "--json", str(tmp_path / "o.json"), "-q")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "error" in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_review_missing_file_exit_2(tmp_path: Path, capsys):
    assert main(["review", str(tmp_path / "nope.mp4"), "-q"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_review_writes_documented_json(tmp_path: Path, astronaut):
    import cv2

    frames = []
    for i in range(12):
        m = np.float32([[1, 0, 2 * i], [0, 1, 0]])
        frames.append(cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT))
    clip = write_clip(tmp_path / "astro.mp4", frames, fps=10)
    out = tmp_path / "r.json"
    assert main(["review", str(clip), "--json", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "liveness.review/1"
    src = doc["source"]
    assert {"path", "sha256", "width", "height", "fps", "duration_s", "frames"} <= set(src)
    assert src["frames"] == 12 and src["width"] == 512
    assert len(doc["timeline"]) == 12
    row = doc["timeline"][3]
    assert row["face"] is True and row["faces"] == 1 and len(row["box"]) == 4
    assert {"t", "yaw", "pitch", "roll"} <= set(row)
    assert [r["t"] for r in doc["timeline"]] == sorted(r["t"] for r in doc["timeline"])
    assert "label" in doc["verdict"] and isinstance(doc["signals"], dict)
    assert doc["summary"]["face_fraction"] == 1.0


def test_no_command_prints_help_exit_2(capsys):
    assert main([]) == 2


def _faststart_clip(path: Path, frames: list[np.ndarray], fps: int = 25) -> Path:
    """An MP4 with its index at the front (``-movflags +faststart``), as web uploads are."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w", options={"movflags": "+faststart"}) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for img in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def _moving(astronaut: np.ndarray, n: int, size: tuple[int, int] = (512, 512)) -> list[np.ndarray]:
    import cv2

    out = []
    for i in range(n):
        m = np.float32([[1, 0, 2 * i], [0, 1, 0]])
        img = cv2.warpAffine(astronaut, m, (512, 512), borderMode=cv2.BORDER_REFLECT)
        out.append(cv2.resize(img, size, interpolation=cv2.INTER_AREA) if size != (512, 512) else img)
    return out


def test_truncated_file_is_reported_not_silently_analysed(tmp_path: Path, capsys):
    rng = np.random.default_rng(0)  # noise: every frame takes about as many bytes
    full = _faststart_clip(tmp_path / "full.mp4", [rng.integers(0, 256, (96, 128, 3), np.uint8) for _ in range(103)])
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: int(0.3 * len(data))])
    out = tmp_path / "r.json"
    assert main(["review", str(cut), "--json", str(out), "-q"]) == 0
    doc = json.loads(out.read_text())
    src = doc["source"]
    assert src["complete"] is False and src["frames"] < 103
    ev = [e for e in doc["events"] if e["kind"] == "input_truncated"]
    assert len(ev) == 1
    d = ev[0]["data"]
    assert d["declared_s"] == pytest.approx(103 / 25, abs=0.05) and d["decoded_s"] < 0.5 * d["declared_s"]
    assert d["decoded_frames"] == src["frames"] and d["declared_frames"] == 103
    assert f"of its declared {d['declared_s']:.1f} s" in ev[0]["message"]
    assert "warning: the file ends early" in capsys.readouterr().err
    # the whole file is complete and has no such event
    assert main(["review", str(full), "--json", str(out), "-q", "--stride", "4"]) == 0
    doc = json.loads(out.read_text())
    assert doc["source"]["complete"] is True
    assert not [e for e in doc["events"] if e["kind"] == "input_truncated"]


def test_source_size_is_the_files_own_and_the_analysed_size_is_apart(tmp_path: Path, astronaut):
    clip = write_clip(tmp_path / "big.mp4", _moving(astronaut, 6, (800, 600)), fps=10)
    out = tmp_path / "r.json"
    assert main(["review", str(clip), "--json", str(out), "-q", "--max-side", "400"]) == 0
    src = json.loads(out.read_text())["source"]
    assert (src["width"], src["height"]) == (800, 600)
    assert (src["analysed_width"], src["analysed_height"]) == (400, 300)


def test_outputs_go_into_new_folders_and_bad_ones_fail_before_analysis(tmp_path: Path, astronaut, capsys):
    clip = write_clip(tmp_path / "a.mp4", _moving(astronaut, 4), fps=10)
    html = tmp_path / "newdir" / "deeper" / "r.html"
    assert main(["review", str(clip), "--html", str(html), "--json", str(tmp_path / "j" / "r.json"),
                 "-q", "--thumbnails", "0"]) == 0
    assert html.read_text().startswith("<!DOCTYPE html>") and (tmp_path / "j" / "r.json").is_file()
    blocker = tmp_path / "plain_file"
    blocker.write_text("x")
    capsys.readouterr()
    ok_json = tmp_path / "k" / "r.json"
    assert main(["review", str(clip), "--json", str(ok_json), "--html", str(blocker / "r.html"), "-q"]) == 2
    err = capsys.readouterr().err
    assert "cannot write the HTML report" in err and "Traceback" not in err
    assert not ok_json.exists(), "the check ran before the analysis (nothing was written)"
    assert main(["review", str(clip), "--html", str(tmp_path), "-q"]) == 2
    assert "it is a folder" in capsys.readouterr().err


@pytest.mark.parametrize(("content", "says"), [
    (b"", "the file is empty"),
    (b"hello, this is text, not a video\n" * 20, "not a readable video: its data is not in a video format"),
])
def test_error_text_is_plain(tmp_path: Path, capsys, content: bytes, says: str):
    p = tmp_path / "notes.mp4"
    p.write_bytes(content)
    assert main(["review", str(p), "-q"]) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "Errno" not in err and "[" not in err, err
    assert err.count(str(p)) == 1, "the path is named once"


def test_start_end_clock_times(capsys):
    import argparse

    from liveness.apps.cli import _clock

    assert _clock("90") == 90.0 and _clock("1:30") == 90.0 and _clock("1:02:03.5") == 3723.5
    for bad in ("1:75", "-3", "a:b", "1:2:3:4", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            _clock(bad)
    with pytest.raises(SystemExit):
        main(["review", "x.mp4", "--start", "soon"])
    assert "not a time" in capsys.readouterr().err


def test_a_disk_that_fills_up_during_the_review_is_a_clear_error_and_keeps_the_old_report(
        tmp_path: Path, astronaut) -> None:
    from tests.core.test_files import run_with_file_limit

    clip = write_clip(tmp_path / "c.mp4", [np.ascontiguousarray(astronaut[:256, :256])] * 6, fps=10)
    out = tmp_path / "o.json"
    out.write_text('{"old": "report"}')
    code = ("import sys; from liveness.apps.cli import main; "
            f"sys.exit(main(['review', {str(clip)!r}, '--json', {str(out)!r}, '-q']))")
    r = run_with_file_limit(code, 2048)  # the review's JSON is far larger: the disk is "full"
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and f"liveness: error: cannot write {out}: file too large" in r.stderr
    assert out.read_text() == '{"old": "report"}' and not list(tmp_path.glob("*.tmp"))
