"""The README's promises that a test can hold: CI runs its two commands exactly as written, and
the built-in demo of command 1 needs nothing beyond the runtime dependencies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# packages only the dev extra installs (pyproject.toml); the demo must not import any of them
DEV_ONLY = ("skimage", "matplotlib", "playwright", "onnx", "pytest", "hypothesis")


def readme_commands() -> list[str]:
    """The first line of each of the README's first two ```bash blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M)
    return [next(ln for ln in b.splitlines() if ln.strip()) for b in blocks[:2]]


def test_ci_runs_both_readme_commands_as_written():
    cmds = readme_commands()
    assert len(cmds) == 2 and "liveness review" in cmds[0] and "pytest" in cmds[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in ci.splitlines()]
    for i, cmd in enumerate(cmds, 1):
        assert cmd in lines, f".ci/run does not run README command {i} as written: {cmd}"
    assert "install -q -e . " in cmds[0], "command 1 installs without extras"
    assert ci.index(cmds[0]) < ci.index(cmds[1]), "the demo (command 1) runs before the tests"


def test_demo_runs_without_dev_extras_and_cleans_up(tmp_path: Path):
    """README command 1's review with the dev-only packages made unimportable: it writes both
    reports, says the passive checks found nothing (never 'genuine'), and leaves no temporary
    folder behind."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = (
        "import sys\n"
        f"for m in {DEV_ONLY!r}: sys.modules[m] = None\n"
        "from liveness.apps.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-c", code, "review", "--json", str(out / "demo.json"), "--html", str(out / "demo.html"),
         "-q", "--thumbnails", "2"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)},
    )
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    doc = json.loads((out / "demo.json").read_text())
    assert doc["schema"] == "liveness.review/1" and doc["summary"]["face_fraction"] > 0.5
    assert doc["verdict"]["label"] != "genuine" and doc["verdict"]["assurance"] in ([], ["passive"])
    assert "<html" in (out / "demo.html").read_text()[:200]
    # (onnxruntime leaves its own .ses file in TMPDIR; the demo's folder must be gone)
    assert not list(tmp.glob("liveness-demo-*")), "the demo's temporary clip folder is removed"


def test_readme_batch_names_are_what_the_batch_writes(tmp_path: Path):
    from liveness.apps.batch import collect_videos

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"\(`recordings/(\S+)` → `reports/(\S+)\.json`", text)
    assert m, "the README gives an example of a batch report name"
    video = tmp_path / "recordings" / m.group(1)
    video.parent.mkdir(parents=True)
    video.write_bytes(b"x")
    assert [n for _, n in collect_videos([tmp_path / "recordings"])] == [m.group(2)]


def test_readme_says_what_remote_serving_needs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    para = text[text.index("`liveness serve` alone"):text.index("## Status")]
    for need in ("HTTPS", "reverse proxy", "--api-key", "--public-url", "TURN", "symmetric NAT"):
        assert need in para, need
    from liveness.apps.cli import build_parser

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # the options exist
    flags = {s for a in serve._actions for s in a.option_strings}
    assert {"--api-key", "--public-url", "--host"} <= flags


def test_readme_documents_the_verdict_labels_and_fields():
    from typing import get_args

    from liveness.core.types import Assurance, VerdictLabel

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(ln for ln in text.splitlines() if '"verdict":' in ln)
    labels = re.search(r"label: ([a-z_|]+)", line).group(1).split("|")
    assert sorted(labels) == sorted(get_args(VerdictLabel)), "every label value is documented"
    assert "assurance" in line and all(f"`{a}`" in text for a in get_args(Assurance))
    assert "No signs of manipulation found — passive checks only; ask for challenges or compare with an enrolment" \
        in " ".join(text.split())
    assert "schema\": \"liveness.review/1\"" in text
