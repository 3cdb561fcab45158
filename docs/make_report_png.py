"""Make ``docs/report.png``: review a clip to HTML and screenshot it in headless Chromium.

    python docs/make_report_png.py [VIDEO] [--out docs/report.png] [--html docs/report.html]

Without VIDEO the built-in synthetic avatar demo is reviewed (no third-party footage may appear
in the repository's docs). Needs Debian chromium (``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("video", nargs="?")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    ap.add_argument("--html", type=Path, help="also keep the HTML report here")
    ap.add_argument("--thumbnails", type=int, default=6)
    ap.add_argument("--stride", type=int, default=1)
    a = ap.parse_args(argv)

    from chromium_cdp import chromium_available, open_page

    from liveness.apps.review import ReviewOptions, review_video
    from liveness.verdict.report import render_html

    if not chromium_available():
        print("Debian chromium is not installed (apt-get install -y chromium)", file=sys.stderr)
        return 2
    video = a.video
    tmp = Path(tempfile.mkdtemp(prefix="liveness-docs-"))
    if video is None:
        from liveness.testing import make_demo_clip

        video = str(tmp / "demo_avatar.mp4")
        make_demo_clip(video)
    doc = review_video(video, ReviewOptions(thumbnails=a.thumbnails, stride=a.stride))
    html_file = a.html or tmp / "report.html"
    html_file.write_text(render_html(doc), encoding="utf-8")
    res = open_page(html_file, {"label": "document.getElementById('verdict-label').textContent"},
                    screenshot=a.out)
    if res.console_errors:
        print("console errors:", *res.console_errors, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{video}: verdict {res.values['label']}; screenshot {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
