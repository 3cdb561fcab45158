"""The HTML evidence report: renders from a review document built in code, is self-contained,
picks telling frames, and opens in headless Chromium without console errors."""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness.verdict.lanes import _PLOT_W
from liveness.verdict.report import render_html, signal_names, svg_lane, telling_times

ROOT = Path(__file__).resolve().parents[2]


def _jpeg_b64(colour: tuple[int, int, int], w: int = 160, h: int = 120) -> str:
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = colour
    cv2.circle(img, (w // 2, h // 2), h // 3, (230, 200, 170), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return base64.b64encode(buf.tobytes()).decode("ascii")


def synthetic_review(n: int = 300, fps: float = 30.0, seed: int = 0) -> dict:
    """A review document shaped like ``liveness review --json`` output: a swap segment at
    4-6 s in ``artefact``, a face lost at 8-8.5 s, two challenges, events and a thumbnail."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    art = np.clip(0.2 + 0.05 * rng.standard_normal(n), 0, 1)
    art[(t > 4) & (t < 6)] = 0.8
    if n > int(5.2 * fps):
        art[int(5.2 * fps)] = 0.97  # the peak inside the flagged segment
    slip = np.clip(0.3 + 0.1 * np.sin(t), 0, 1)
    face = np.ones(n, bool)
    face[(t > 8) & (t < 8.5)] = False
    rows = []
    for i in range(n):
        r = {"t": round(float(t[i]), 4), "face": bool(face[i]), "faces": int(face[i]),
             "quality": 0.0 if face[i] else 1.0}
        if face[i]:
            r.update({"box": [100.0, 80.0, 120.0, 140.0], "score": 0.97,
                      "yaw": float(30 * np.sin(t[i])), "pitch": 2.0, "roll": -1.0,
                      "artefact": float(art[i]), "face_slip": float(slip[i])})
        rows.append(r)
    return {
        "schema": "liveness.review/1",
        "source": {"path": "/videos/call <b>&.mp4", "sha256": "ab" * 32, "width": 640, "height": 480,
                   "fps": fps, "duration_s": n / fps, "frames": n},
        "timeline": rows,
        "signals": {
            "artefact": {"value": 0.88, "n": 285, "details": {"median": 0.2},
                         "segments": [{"start": 4.033, "end": 5.967, "value": 0.97, "reason": "blend boundary"}]},
            "face_slip": {"value": 0.35, "n": 285, "segments": [], "details": {}},
            "identity": {"value": None, "n": 0, "segments": [], "details": {}},
            "quality": {"value": 0.05, "n": 300, "details": {"usable_fraction": 0.95},
                        "segments": [{"start": 8.033, "end": 8.467, "value": 1.0, "reason": "unusable face"}]},
        },
        "verdict": {"label": "fake", "risk": 0.93,
                    "reasons": ["artefact 0.88 (+3.10 logit), flagged 4.0-6.0s", "not measured: identity"],
                    "segments": [{"start": 4.033, "end": 5.967, "value": 0.97, "reason": "artefact: blend boundary"}]},
        "events": [{"t": 8.033, "kind": "quality.no_face", "message": "no face in view", "state": "begin"},
                   {"t": 2.0, "kind": "challenge.prompt", "message": "turn your head left"}],
        "challenges": [
            {"kind": "turn_left", "passed": True, "latency_s": 1.2, "peak": 41.0, "breakdown": 0.1},
            {"kind": "blink_twice", "passed": False, "latency_s": None, "peak": 1.0, "breakdown": 0.7},
        ],
        "thumbnails": [{"t": 5.2, "jpeg_b64": _jpeg_b64((40, 60, 200))},
                       {"t": 1.0, "jpeg_b64": _jpeg_b64((30, 150, 60)), "caption": "calm <frame>"}],
        "provenance": {"package": "interview-liveness", "version": "0.1.0",
                       "models": {"face_mesh": "cd" * 32}, "options": {"stride": 1, "max_side": 1280}},
    }


# ---------------------------------------------------------------------------------------------
def test_report_renders_everything_from_a_review():
    doc = synthetic_review()
    out = render_html(doc)
    assert out.startswith("<!DOCTYPE html>")
    assert 'id="verdict-label">fake<' in out and 'id="verdict-risk">0.93<' in out
    # one lane per signal + face + pose + axis
    lanes = re.findall(r'<svg class="lane[^"]*"[^>]*data-signal="([^"]+)"', out)
    assert lanes == ["face found", "head pose (deg)", "artefact", "face_slip", "identity", "quality"]
    assert out.count('class="seg drove"') == 1  # the verdict segment, on the artefact lane
    assert "flagged 4.03-5.97 s" in out
    assert 'class="pass">yes<' in out and 'class="fail">no<' in out  # challenges
    assert out.count('<img src="data:image/jpeg;base64,') == 2
    assert "quality.no_face" in out and 'class="quality"' in out
    assert "ab" * 32 in out and "cd" * 32 in out and "&#34;max_side&#34;: 1280" in out
    # escaping: names and captions from the document never become markup
    assert "<b>&" not in out and "call &lt;b&gt;&amp;.mp4" in out
    assert "calm &lt;frame&gt;" in out
    # a caption is made for thumbnails without one: what the frame shows
    assert "5.20 s · artefact 0.97 · flagged: artefact" in out


def test_report_is_self_contained():
    out = render_html(synthetic_review())
    for attr in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', out):
        assert attr.startswith(("data:", "#")), attr
    assert not re.search(r"https?://", out)
    assert "<link" not in out and "@import" not in out and "url(" not in out


def test_report_renders_minimal_and_odd_documents():
    doc = {"schema": "liveness.review/1", "source": {"path": "x.mp4", "width": 10, "height": 10},
           "timeline": [{"t": 0.0, "face": False, "faces": 0}], "signals": {},
           "verdict": {"label": "inconclusive", "risk": None, "reasons": ["too little usable face"]}}
    out = render_html(doc)
    assert 'id="verdict-label">inconclusive<' in out and 'id="verdict-risk">n/a<' in out
    assert "No challenges were run" in out and "No frames embedded" in out
    out = render_html({"timeline": [], "verdict": {}})
    assert "inconclusive" in out
    # non-finite values and unknown shapes do not crash the renderer
    doc = synthetic_review(60)
    doc["timeline"][3]["artefact"] = float("nan")
    doc["signals"]["artefact"]["value"] = float("inf")
    doc["events"].append({"kind": "x"})
    doc["challenges"].append({"kind": "smile", "frames": [1, 2]})
    assert "artefact" in render_html(doc)


def test_long_timeline_is_downsampled_keeping_peaks():
    n = 20 * _PLOT_W
    t = np.arange(n) / 30.0
    v = np.full(n, 0.1)
    v[n // 2] = 0.99
    svg = svg_lane("x", t, [("x", v, "#000")], (0.0, float(t[-1])))
    d = re.search(r'<path d="([^"]+)"', svg).group(1)
    pts = d.count("M") + d.count("L")
    assert pts <= _PLOT_W + 2
    ys = [float(p.split()[1]) for p in re.findall(r"[ML]([\d.]+ [\d.]+)", d)]
    assert min(ys) < 10  # the single-frame peak survives (y near the top)


def test_gaps_break_the_line():
    t = np.arange(10, dtype=float)
    v = np.array([0.1, 0.2, np.nan, np.nan, 0.5, 0.6, 0.7, np.nan, 0.2, 0.3])
    svg = svg_lane("x", t, [("x", v, "#000")], (0.0, 9.0))
    d = re.search(r'<path d="([^"]+)"', svg).group(1)
    assert d.count("M") == 3


def test_signal_names_include_per_frame_only_signals():
    doc = synthetic_review(30)
    doc["timeline"][5]["blink_rate"] = 0.4
    assert signal_names(doc) == ["artefact", "face_slip", "identity", "quality", "blink_rate"]


def test_telling_times_prefer_peaks_of_segments_that_drove_the_verdict():
    doc = synthetic_review()
    times = telling_times(doc, k=6)
    ts = {r["t"] for r in doc["timeline"]}
    assert len(times) == 6 and times == sorted(times)
    assert all(t in ts for t in times)
    assert 5.2 in times  # the peak of the flagged segment
    assert all(b - a >= 0.5 - 1e-9 for a, b in zip(times, times[1:], strict=False))
    # the quality signal (no face) is not evidence: no frame of 8.0-8.5 s unless as filler
    one = telling_times(doc, k=1)
    assert one == [5.2]
    assert telling_times(doc, k=0) == []
    assert telling_times({"timeline": []}, k=3) == []


def test_telling_times_without_segments_spread_over_face_frames():
    doc = synthetic_review()
    for s in doc["signals"].values():
        s["segments"] = []
    doc["verdict"]["segments"] = []
    for r in doc["timeline"]:
        r.pop("artefact", None)
        r.pop("face_slip", None)
    times = telling_times(doc, k=4)
    assert len(times) == 4
    assert times[-1] - times[0] > 6.0  # spread over the 10 s clip
    face_t = {r["t"] for r in doc["timeline"] if r["face"]}
    assert all(t in face_t for t in times)


# ---------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_report_in_headless_chromium(tmp_path):
    from tests.chromium_cdp import chromium_available, open_page

    if not chromium_available():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    html_file = tmp_path / "report.html"
    html_file.write_text(render_html(synthetic_review()), encoding="utf-8")
    shot = tmp_path / "report.png"
    res = open_page(html_file, {
        "label": "document.getElementById('verdict-label').textContent.trim()",
        "risk": "document.getElementById('verdict-risk').textContent.trim()",
        "lanes": "document.querySelectorAll('#timeline svg.lane').length",
        "lines": "document.querySelectorAll('#timeline svg path.line').length",
        "plot_width": "document.querySelector('#timeline svg.lane').getBoundingClientRect().width",
        "segments": "document.querySelectorAll('#timeline rect.seg').length",
        "images": "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)",
        "zoom": "(() => { const f = document.querySelector('figure'); f.querySelector('img').click();"
                " return f.classList.contains('zoom'); })()",
    }, screenshot=shot)
    assert res.console_errors == []
    assert all(u.startswith(("file:", "data:")) for u in res.requests), res.requests
    assert res.values["label"] == "fake" and res.values["risk"] == "0.93"
    assert res.values["lanes"] == 7 and res.values["lines"] >= 4 and res.values["plot_width"] > 500
    assert res.values["segments"] >= 2
    assert res.values["images"] == [True, True]
    assert res.values["zoom"] is True
    png = cv2.imread(str(shot))
    assert png is not None and png.shape[1] >= 1000 and png.shape[0] > 1200
    # the verdict badge is drawn in the 'fake' red near the top left
    top = png[60:200, 30:290].reshape(-1, 3)
    red = (top[:, 2] > 150) & (top[:, 1] < 80) & (top[:, 0] < 80)
    assert red.mean() > 0.3
    if os.environ.get("LIVENESS_UPDATE_DOCS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copy(shot, ROOT / "docs" / "report_synthetic.png")


# ---------------------------------------------------------------------------------------------
# what a reader sees (issue 14)
# ---------------------------------------------------------------------------------------------
def _lane(out: str, name: str) -> str:
    m = re.search(rf'<svg class="lane"[^>]*data-signal="{name}".*?</svg>', out)
    assert m, name
    return m.group(0)


def test_signals_scored_on_a_subset_of_frames_draw_lines_and_dots():
    doc = synthetic_review(300)
    for i, r in enumerate(doc["timeline"]):  # artefact on every other frame, identity every 0.5 s
        if i % 2:
            r.pop("artefact", None)
        if r["face"] and i % 15 == 0:
            r["identity_change"] = 0.1 + 0.001 * i
    out = render_html(doc)
    art = _lane(out, "artefact")
    d = re.search(r'<path d="([^"]+)"', art).group(1)
    assert d.count("L") > 100, "every-other-frame values are joined into a line"
    assert d.count("M") == 2, "broken only where the face was lost (8.0-8.5 s)"
    ident = _lane(out, "identity_change")
    assert "<path" in ident and ident.count("<circle") == 20, "sparse samples: a line with a dot on each"
    # a lone value between gaps is a dot, not an invisible move
    t = np.arange(200, dtype=float)
    v = np.full(200, 0.2)
    v[100:120] = np.nan
    v[110] = 0.9
    svg = svg_lane("x", t, [("x", v, "#000")], (0.0, 199.0))
    assert svg.count("<circle") == 1 and re.search(r'<path d="([^"]+)"', svg).group(1).count("M") == 2


def test_verdict_wording_follows_what_backed_it():
    doc = synthetic_review(60)
    doc["verdict"] = {"label": "no_signs", "risk": 0.5, "assurance": ["passive"],
                      "reasons": ["no signal stands out from genuine footage"]}
    out = render_html(doc)
    assert 'id="verdict-label">no signs found<' in out
    assert ("No signs of manipulation found — passive checks only; ask for challenges or compare with "
            "an enrolment") in out
    badge = re.search(r'<div class="verdict" style="background: (#[0-9a-f]+)"', out).group(1)
    assert badge != "#1b7f3b", "no_signs is not shown in the clearance green"
    assert "checks behind the answer: passive" in out
    doc["verdict"] = {"label": "genuine", "risk": 0.3, "assurance": ["passive", "challenges"], "reasons": []}
    out = render_html(doc)
    assert 'id="verdict-label">genuine<' in out and "Genuine — backed by a passed challenge sequence" in out


def test_signals_are_described_and_internals_folded():
    doc = synthetic_review(60)
    doc["signals"]["face_slip"]["details"] = {"median": 0.04, "max": 0.28, "mesh_hf_to_flow_hf": 2.58,
                                              "flashes": 0.0}
    doc["signals"]["opportunistic_breakdown"] = {"value": 1.0, "n": 2, "segments": [],
                                                 "details": {"n_blink": 2.0, "median_blink": 1.0}}
    out = render_html(doc)
    row = re.search(r'<tr data-signal="face_slip">.*?</tr>', out, re.S).group(0)
    assert "slides or jitters against the head" in row
    assert "typical frame 0.04" in row and "single-frame flashes 0" in row
    folded = re.search(r"<details>.*?</details>", row, re.S).group(0)
    assert "mesh_hf_to_flow_hf" in folded and "typical frame" not in folded
    row = re.search(r'<tr data-signal="opportunistic_breakdown">.*?</tr>', out, re.S).group(0)
    assert "Real people often reach 1.00 here too" in row and "blinks 2" in row
    assert re.search(r'<td class="num"[^>]*>0\.\d\d</td>', row), "the typical value of real people beside it"
    assert "real people ≈" in _lane(out, "opportunistic_breakdown")


def test_report_shows_incompleteness_and_both_frame_sizes():
    doc = synthetic_review(60)
    doc["source"].update(width=1920, height=1080, analysed_width=1280, analysed_height=720, complete=False)
    doc["events"].append({"t": 1.9, "kind": "input_truncated", "message": "the file ends early: 1.9 s of its "
                          "declared 8.0 s could be decoded (19 of 103 frames); only that part was reviewed",
                          "data": {"decoded_s": 1.9, "declared_s": 8.0}})
    out = render_html(doc)
    assert "1920&times;1080 px (analysed at 1280&times;720)" in out
    banner = re.search(r'<div class="warn" id="incomplete"[^>]*>(.*?)</div>', out).group(1)
    assert "The file ends early: 1.9 s of its declared 8.0 s" in banner
    assert 'class="input_truncated"' in out


def test_live_session_report_advice_and_face_lane():
    rows = [{"t": s + 0.5, "face": s != 3, "face_fraction": 0.0 if s == 3 else 0.9, "yaw": 1.0, "pitch": 0.0,
             "roll": 0.0, "artefact": 0.2} for s in range(8)]
    doc = {"schema": "liveness.serve-report/1", "source": {"path": "live session x", "width": 1280, "height": 720},
           "timeline": rows, "signals": {"artefact": {"value": 0.2, "n": 8, "segments": [], "details": {}}},
           "verdict": {"label": "no_signs", "risk": 0.4, "assurance": ["passive"], "reasons": []}, "events": []}
    out = render_html(doc)
    assert "liveness serve --thumbnails" in out and "--html" not in out.split('id="thumbnails"')[1][:300]
    face = _lane(out, "face found")
    assert "<path" in face, "the face-found lane draws the per-second share of frames with a face"
    assert "1280&times;720 px" in out


@pytest.mark.browser
def test_lane_labels_are_not_clipped_and_clear_the_axis_numbers(tmp_path):
    from tests.chromium_cdp import chromium_available, open_page

    if not chromium_available():
        pytest.skip("Debian chromium is not installed (apt-get install -y chromium)")
    doc = synthetic_review(120)
    for name in ("challenge_breakdown", "opportunistic_breakdown", "identity_instability"):
        doc["signals"][name] = {"value": 0.4, "n": 3, "segments": [], "details": {}}
    html_file = tmp_path / "r.html"
    html_file.write_text(render_html(doc), encoding="utf-8")
    res = open_page(html_file, {"lanes": """Array.from(document.querySelectorAll('#timeline svg.lane:not(.axis)')).map(svg => {
        const n = svg.querySelector('text.name').getBBox();
        const ax = Array.from(svg.querySelectorAll('text.ax')).map(t => t.getBBox());
        const notes = Array.from(svg.querySelectorAll('text.note')).map(t => t.getBBox());
        return {name: svg.dataset.signal, left: Math.min(n.x, ...notes.map(b => b.x)),
                right: Math.max(n.x + n.width, ...notes.map(b => b.x + b.width)),
                axis: Math.min(...ax.map(b => b.x))};
      })"""})
    assert res.console_errors == []
    lanes = res.values["lanes"]
    assert {"challenge_breakdown", "opportunistic_breakdown"} <= {ln["name"] for ln in lanes}
    for ln in lanes:
        assert ln["left"] >= 0, f"{ln['name']}: label clipped at the left edge"
        assert ln["right"] <= ln["axis"] - 2, f"{ln['name']}: label runs into the axis numbers"
