from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liveness._cli import main
from tests.conftest import write_clip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "liveness._cli", *args], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])


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
