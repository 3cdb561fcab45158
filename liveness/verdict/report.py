"""The evidence report: one self-contained HTML file from a ``liveness.review/1`` document.

No network: CSS, a few lines of JS and the plots (SVG generated here) are inline; thumbnails
are ``data:`` URIs. :func:`telling_times` picks the timestamps worth a thumbnail (peaks of the
flagged segments that drove the verdict first), so the review code grabs those frames.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from liveness.verdict.explain import (
    LABEL_HEADLINE,
    describe_signal,
    split_details,
    typical_genuine,
    verdict_text,
)

__all__ = ["render_html", "signal_names", "svg_lane", "telling_times"]

# timeline keys that are not signals
_STANDARD = {"t", "face", "faces", "box", "score", "yaw", "pitch", "roll", "tvec", "quality",
             "redetected", "index", "frame_index", "face_fraction"}

# signals that describe the footage, not evidence of fakery (no thumbnails picked for them)
_NON_EVIDENCE = {"quality"}

_LABEL_COLOURS = {
    "genuine": "#1b7f3b",
    "no_signs": "#3b5b7a",  # not green: nothing was found, nothing was cleared
    "suspicious": "#b26a00",
    "fake": "#b3261e",
    "inconclusive": "#5f6368",
}

# plot geometry (px): lane names end at _NAME_X, the axis numbers sit between them and the plot
_W, _LEFT, _RIGHT = 980, 215, 70
_PLOT_W = _W - _LEFT - _RIGHT
_NAME_X = _LEFT - 26
_NAME_W = _NAME_X - 6


# ---------------------------------------------------------------------------------------------
# helpers over the review document
# ---------------------------------------------------------------------------------------------
def _finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def signal_names(review: Mapping[str, Any]) -> list[str]:
    """Signals to plot: those in ``signals`` (in order), then other numeric per-frame keys."""
    names = list(review.get("signals") or {})
    seen = set(names)
    for row in review.get("timeline") or ():
        for k, v in row.items():
            if k not in seen and k not in _STANDARD and _finite(v) is not None:
                names.append(k)
                seen.add(k)
    return names


def _series(review: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = review.get("timeline") or ()
    t = np.array([_finite(r.get("t")) if _finite(r.get("t")) is not None else np.nan for r in rows], np.float64)
    v = np.array([_finite(r.get(key)) if _finite(r.get(key)) is not None else np.nan for r in rows], np.float64)
    return t, v


def _time_range(review: Mapping[str, Any]) -> tuple[float, float]:
    rows = review.get("timeline") or ()
    ts = [x for x in (_finite(r.get("t")) for r in rows) if x is not None]
    t0 = min(ts) if ts else 0.0
    t1 = max(ts) if ts else 0.0
    dur = _finite((review.get("source") or {}).get("duration_s"))
    if dur is not None and dur > t1:
        t1 = dur
    t0 = min(t0, 0.0)
    if t1 - t0 < 1e-6:
        t1 = t0 + 1.0
    return t0, t1


def _segments_of(review: Mapping[str, Any]) -> list[tuple[str, float, float, float, bool]]:
    """(signal, start, end, value, drove_verdict) of every flagged segment."""
    out: list[tuple[str, float, float, float, bool]] = []
    for s in (review.get("verdict") or {}).get("segments") or ():
        name = str(s.get("reason") or "").split(":", 1)[0].strip()
        a, b = _finite(s.get("start")), _finite(s.get("end"))
        if a is not None and b is not None:
            out.append((name, a, b, _finite(s.get("value")) or 0.0, True))
    for name, sig in (review.get("signals") or {}).items():
        for s in (sig or {}).get("segments") or ():
            a, b = _finite(s.get("start")), _finite(s.get("end"))
            if a is not None and b is not None:
                out.append((name, a, b, _finite(s.get("value")) or 0.0, False))
    return out


def telling_times(review: Mapping[str, Any], k: int = 6) -> list[float]:
    """Up to ``k`` timestamps (sorted) whose frames best show the evidence.

    Order of preference: the peak frame of each segment that drove the verdict (by segment
    value), then the peaks of other flagged segments, then each signal's highest per-frame
    value, then evenly spaced frames with a face. Picks are at least a short gap apart
    (``max(0.5 s, duration / (4 k))``) and always timestamps of analysed frames."""
    if k <= 0:
        return []
    rows = review.get("timeline") or ()
    t_all = np.array([_finite(r.get("t")) if _finite(r.get("t")) is not None else np.nan for r in rows])
    if t_all.size == 0 or not np.isfinite(t_all).any():
        return []
    t0, t1 = _time_range(review)
    gap = max(0.5, (t1 - t0) / (4 * k))
    face = np.array([bool(r.get("face")) for r in rows], bool)

    cands: list[tuple[float, float]] = []  # (priority, time)

    def peak_in(name: str, a: float, b: float) -> float:
        _, v = _series(review, name)
        m = np.isfinite(t_all) & (t_all >= a - 1e-6) & (t_all <= b + 1e-6)
        if m.any() and np.isfinite(v[m]).any():
            idx = np.flatnonzero(m)
            return float(t_all[idx[int(np.nanargmax(v[m]))]])
        if m.any():  # no per-frame values: the middle analysed frame of the range
            idx = np.flatnonzero(m)
            return float(t_all[idx[len(idx) // 2]])
        mid = 0.5 * (a + b)
        return float(t_all[int(np.nanargmin(np.abs(t_all - mid)))])

    for name, a, b, val, drove in _segments_of(review):
        if name not in _NON_EVIDENCE:
            cands.append(((3.0 if drove else 2.0) + val, peak_in(name, a, b)))
    for name in signal_names(review):
        if name in _NON_EVIDENCE:
            continue
        _, v = _series(review, name)
        if np.isfinite(v).any():
            i = int(np.nanargmax(v))
            cands.append((1.0 + float(v[i]), float(t_all[i])))
    picked: list[float] = []
    for _, t in sorted(cands, key=lambda c: (-c[0], c[1])):
        if len(picked) >= k:
            break
        if all(abs(t - p) >= gap for p in picked):
            picked.append(t)
    # fill: face frames farthest from what is already picked (spread over the clip)
    pool = t_all[face & np.isfinite(t_all)]
    if pool.size == 0:
        pool = t_all[np.isfinite(t_all)]
    while len(picked) < k and pool.size:
        d = np.min(np.abs(pool[:, None] - np.asarray(picked)[None, :]), axis=1) if picked else pool - pool.min()
        i = int(np.argmax(d))
        if picked and d[i] < gap:
            break
        picked.append(float(pool[i]))
    return sorted(picked)


# ---------------------------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------------------------
def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _ticks(t0: float, t1: float, n: int = 10) -> list[float]:
    span = t1 - t0
    raw = span / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(t0 / step) * step
    return [round(first + i * step, 6) for i in range(int((t1 - first) / step + 1e-9) + 1)]


def _xmap(t0: float, t1: float) -> Any:
    def x(t: float) -> float:
        return _LEFT + (t - t0) / (t1 - t0) * _PLOT_W
    return x


def _path(t: np.ndarray, v: np.ndarray, x: Any, y: Any) -> tuple[str, list[tuple[float, float]]]:
    """SVG path data and the points to draw as dots.

    A line joins consecutive values unless frames without a value lie between them for longer
    than 1.5 times the series' typical spacing: signals scored on a subset of frames (every
    other frame, every 0.5 s) draw as lines, a face lost or a gap in a per-frame signal breaks
    them. A value with no neighbour on its line is a dot; sparse series (at most one value per
    8 px) get a dot on every value. Long series keep each pixel column's max."""
    m = np.isfinite(t)
    t, v = t[m], v[m]
    if t.size > 2 * _PLOT_W:
        cols = np.clip(((t - t.min()) / max(t.max() - t.min(), 1e-9) * _PLOT_W).astype(int), 0, _PLOT_W)
        out_t, out_v = [], []
        for c in np.unique(cols):  # per pixel column, not per frame
            sel = v[cols == c]
            out_t.append(t[cols == c].mean())
            out_v.append(np.nanmax(sel) if np.isfinite(sel).any() else np.nan)
        t, v = np.asarray(out_t), np.asarray(out_v)
    have = np.flatnonzero(np.isfinite(v))
    if have.size == 0:
        return "", []
    th, vh = t[have], v[have]
    dt = np.diff(th)
    step = float(np.median(dt)) if dt.size else 0.0
    # a break needs both: rows without a value in between, and a gap longer than usual
    cut = np.flatnonzero((np.diff(have) > 1) & (dt > 1.5 * step + 1e-9)) + 1
    parts: list[str] = []
    dots: list[tuple[float, float]] = []
    for rt, rv in zip(np.split(th, cut), np.split(vh, cut), strict=True):
        pts = [f"{x(a):.1f} {y(b):.1f}" for a, b in zip(rt, rv, strict=True)]
        if len(pts) == 1:
            dots.append((x(rt[0]), y(rv[0])))
        else:
            parts.append("M" + " L".join(pts))
    if th.size <= _PLOT_W / 8:
        dots = [(x(a), y(b)) for a, b in zip(th, vh, strict=True)]
    return " ".join(parts), dots


def svg_lane(
    title: str,
    t: np.ndarray,
    series: Sequence[tuple[str, np.ndarray, str]],
    t_range: tuple[float, float],
    *,
    y_range: tuple[float, float] = (0.0, 1.0),
    segments: Sequence[tuple[float, float, float, str, bool]] = (),
    shade: Sequence[tuple[float, float, str, str]] = (),
    markers: Sequence[float] = (),
    value_text: str = "",
    threshold: float | None = None,
    height: int = 70,
    note: str = "",
) -> str:
    """One plot lane: lines ``(name, values, colour)`` over ``t``; ``segments``
    ``(start, end, value, reason, drove)`` shaded red (darker when they drove the verdict);
    ``shade`` ``(start, end, colour, tooltip)`` background bands; ``markers`` thumbnail times."""
    t0, t1 = t_range
    x = _xmap(t0, t1)
    top, bot = 6, height - 6
    lo, hi = y_range

    def y(v: float) -> float:
        return bot - (min(max(v, lo), hi) - lo) / (hi - lo) * (bot - top)

    out = [f'<svg class="lane" viewBox="0 0 {_W} {height}" width="{_W}" height="{height}" '
           f'role="img" aria-label="{_esc(title)}" data-signal="{_esc(title)}">']
    out.append(f'<rect x="{_LEFT}" y="{top}" width="{_PLOT_W}" height="{bot - top}" class="bg"/>')
    for tk in _ticks(t0, t1):
        out.append(f'<line x1="{x(tk):.1f}" x2="{x(tk):.1f}" y1="{top}" y2="{bot}" class="grid"/>')
    for a, b, colour, tip in shade:
        w = max(x(b) - x(a), 1.0)
        out.append(f'<rect x="{x(a):.1f}" y="{top}" width="{w:.1f}" height="{bot - top}" '
                   f'fill="{colour}"><title>{_esc(tip)}</title></rect>')
    for a, b, val, reason, drove in segments:
        w = max(x(b) - x(a), 2.0)
        tip = f"{title}: flagged {a:.2f}-{b:.2f} s, peak {val:.2f}" + (f" ({reason})" if reason else "")
        out.append(f'<rect x="{x(a):.1f}" y="{top}" width="{w:.1f}" height="{bot - top}" '
                   f'class="seg{" drove" if drove else ""}"><title>{_esc(tip)}</title></rect>')
    if threshold is not None and lo <= threshold <= hi:
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT_W}" y1="{y(threshold):.1f}" '
                   f'y2="{y(threshold):.1f}" class="thr"/>')
    if lo < 0 < hi:
        out.append(f'<line x1="{_LEFT}" x2="{_LEFT + _PLOT_W}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>')
    for tm in markers:
        out.append(f'<line x1="{x(tm):.1f}" x2="{x(tm):.1f}" y1="{top}" y2="{bot}" class="mark"/>')
    for name, v, colour in series:
        d, dots = _path(t, np.asarray(v, np.float64), x, y)
        if d:
            out.append(f'<path d="{d}" class="line" stroke="{colour}"><title>{_esc(name)}</title></path>')
        if dots:
            out.append(f'<g class="dots" fill="{colour}"><title>{_esc(name)}</title>'
                       + "".join(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2"/>' for a, b in dots) + "</g>")
    # the lane's name, right-aligned left of the axis numbers; squeezed if it is too long
    fit = f' textLength="{_NAME_W}" lengthAdjust="spacingAndGlyphs"' if len(title) * 7.4 > _NAME_W else ""
    out.append(f'<text x="{_NAME_X}" y="{height / 2 - 3:.0f}" class="name"{fit}>{_esc(title)}</text>')
    if len(series) > 1:  # colour legend under the title
        spans = " ".join(f'<tspan fill="{colour}">{_esc(name)}</tspan>' for name, _, colour in series)
        out.append(f'<text x="{_NAME_X}" y="{height / 2 + 12:.0f}" class="note">{spans}</text>')
    elif note:
        out.append(f'<text x="{_NAME_X}" y="{height / 2 + 12:.0f}" class="note">{_esc(note)}</text>')
    out.append(f'<text x="{_LEFT - 4}" y="{top + 8}" class="ax">{_esc(_fmt_num(hi))}</text>')
    out.append(f'<text x="{_LEFT - 4}" y="{bot}" class="ax">{_esc(_fmt_num(lo))}</text>')
    if value_text:
        out.append(f'<text x="{_W - 6}" y="{height / 2 + 4:.0f}" class="val">{_esc(value_text)}</text>')
    out.append("</svg>")
    return "".join(out)


def _axis(t_range: tuple[float, float]) -> str:
    t0, t1 = t_range
    x = _xmap(t0, t1)
    out = [f'<svg class="lane axis" viewBox="0 0 {_W} 24" width="{_W}" height="24" aria-hidden="true">']
    for tk in _ticks(t0, t1):
        out.append(f'<line x1="{x(tk):.1f}" x2="{x(tk):.1f}" y1="0" y2="5" class="tick"/>'
                   f'<text x="{x(tk):.1f}" y="17" class="tl">{_esc(_fmt_num(tk))}s</text>')
    out.append("</svg>")
    return "".join(out)


def _fmt_num(v: float) -> str:
    return f"{v:.0f}" if abs(v - round(v)) < 1e-9 else f"{v:g}"


def _bands(t: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """Time ranges where ``mask`` holds (each frame covers up to the next timestamp)."""
    out: list[tuple[float, float]] = []
    if t.size == 0:
        return out
    dt = float(np.median(np.diff(t))) if t.size > 1 else 0.04
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        out.append((float(t[a]), float(t[b - 1] + dt)))
    return out


# ---------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------
def _plots(review: Mapping[str, Any], markers: Sequence[float],
           typical: Mapping[str, float] | None = None) -> list[dict[str, str]]:
    rows = review.get("timeline") or ()
    tr = _time_range(review)
    t = np.array([_finite(r.get("t")) if _finite(r.get("t")) is not None else np.nan for r in rows], np.float64)
    plots: list[dict[str, str]] = []
    sigs = review.get("signals") or {}
    verdict_segs = _segments_of(review)

    # face presence lane: the tracking score, else (live reports: per-second rows) the share of
    # frames with a face, else the face flag itself
    face = np.array([bool(r.get("face")) for r in rows], bool)
    faces = np.array([int(r.get("faces") or 0) for r in rows], np.int64)
    shade = [(a, b, "#d9d9d9", "no face") for a, b in _bands(t, ~face)]
    shade += [(a, b, "#ffd8a8", "several faces") for a, b in _bands(t, faces > 1)]
    per_second = _series(review, "face_fraction")[1]
    if np.isfinite(per_second).any():
        frac = float(np.nanmean(per_second))
        face_line = ("share of frames with a face", per_second)
    else:
        frac = float(face.mean()) if face.size else 0.0
        score = _series(review, "score")[1]
        face_line = ("tracking score", score) if np.isfinite(score).any() else ("face found", face.astype(float))
    plots.append({"name": "face", "svg": svg_lane(
        "face found", t, [(*face_line, "#4a4a4a")], tr,
        shade=shade, markers=markers, value_text=f"{frac:.0%}", height=50,
        note="grey: no face")})
    # pose lane
    pose = [(k, _series(review, k)[1], c) for k, c in (("yaw", "#1f6feb"), ("pitch", "#8250df"),
                                                       ("roll", "#bf8700"))]
    if any(np.isfinite(v).any() for _, v, _ in pose):
        plots.append({"name": "pose", "svg": svg_lane(
            "head pose (deg)", t, pose, tr, y_range=(-90.0, 90.0), markers=markers, height=80)})
    # one lane per signal
    typical = typical or {}
    for name in signal_names(review):
        sig = sigs.get(name) or {}
        val = _finite(sig.get("value"))
        v = _series(review, name)[1]
        segs = [(a, b, sv, "", drove) for (n, a, b, sv, drove) in verdict_segs if n == name and drove]
        segs += [(_finite(s.get("start")) or 0.0, _finite(s.get("end")) or 0.0, _finite(s.get("value")) or 0.0,
                  str(s.get("reason") or ""), False) for s in sig.get("segments") or ()]
        per_frame = bool(np.isfinite(v).any())
        note = "" if per_frame else ("clip value only" if val is not None else "not measured")
        if name in typical and val is not None:
            note = " · ".join(x for x in (note, f"real people ≈ {typical[name]:.2f}") if x)
        plots.append({"name": name, "svg": svg_lane(
            name, t, [(name, v, "#0b5cad")], tr, segments=segs, markers=markers,
            value_text="n/a" if val is None else f"{val:.2f}", threshold=0.5, note=note)})
    plots.append({"name": "axis", "svg": _axis(tr)})
    return plots


def _caption(review: Mapping[str, Any], tt: float) -> str:
    """What is going on at ``tt``: the highest per-frame signal value and any segment there."""
    rows = review.get("timeline") or ()
    if not rows:
        return f"{tt:.2f} s"
    ts = np.array([_finite(r.get("t")) if _finite(r.get("t")) is not None else np.nan for r in rows])
    if not np.isfinite(ts).any():
        return f"{tt:.2f} s"
    row = rows[int(np.nanargmin(np.abs(ts - tt)))]
    vals = [(k, _finite(row.get(k))) for k in signal_names(review) if k not in _NON_EVIDENCE]
    vals = [(k, v) for k, v in vals if v is not None]
    parts = [f"{tt:.2f} s"]
    if not row.get("face"):
        parts.append("no face")
    if vals:
        k, v = max(vals, key=lambda kv: kv[1])
        parts.append(f"{k} {v:.2f}")
    flagged = sorted({n for (n, a, b, _, _) in _segments_of(review)
                      if a - 1e-6 <= tt <= b + 1e-6 and n and n not in _NON_EVIDENCE})
    if flagged:
        parts.append("flagged: " + ", ".join(flagged))
    return " · ".join(parts)


def _thresholds(review: Mapping[str, Any]) -> dict[str, float] | None:
    prov = review.get("provenance") or {}
    fus = prov.get("fusion") if isinstance(prov, Mapping) else None
    th = fus.get("thresholds") if isinstance(fus, Mapping) else None
    if isinstance(th, Mapping) and _finite(th.get("suspicious")) is not None and _finite(th.get("fake")) is not None:
        return {"suspicious": float(th["suspicious"]), "fake": float(th["fake"])}
    try:
        from liveness.verdict.fusion import load_params

        return dict(load_params().thresholds)
    except Exception:  # the report must render even without fusion params
        return None


def _flatten(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested mapping -> (dotted key, text) rows."""
    if isinstance(d, Mapping):
        if not d:
            return [(prefix, "{}")] if prefix else []
        out: list[tuple[str, str]] = []
        for k, v in d.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(d, (list, tuple)):
        return [(prefix, json.dumps(d, ensure_ascii=False, default=str))]
    return [(prefix, "" if d is None else str(d))]


def render_html(review: Mapping[str, Any]) -> str:
    """The self-contained HTML report of a ``liveness.review/1`` document."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("liveness", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    tmpl = env.get_template("report.html.j2")

    src = dict(review.get("source") or {})
    for key in ("path", "sha256", "width", "height", "fps", "duration_s", "frames"):
        src.setdefault(key, None)
    verdict = dict(review.get("verdict") or {})
    label = str(verdict.get("label") or "inconclusive")
    risk = _finite(verdict.get("risk"))
    assurance = [str(a) for a in verdict.get("assurance") or ()]
    live = review.get("schema") == "liveness.serve-report/1"
    truncated = next((e for e in review.get("events") or () if isinstance(e, Mapping)
                      and e.get("kind") == "input_truncated"), None)
    incomplete = None
    if truncated is not None or src.get("complete") is False:
        msg = str((truncated or {}).get("message") or "the file ends early; only the decoded part was reviewed")
        incomplete = msg[:1].upper() + msg[1:]
    thumbs = []
    for th in review.get("thumbnails") or ():
        b64 = th.get("jpeg_b64")
        tt = _finite(th.get("t"))
        if not b64 or tt is None:
            continue
        thumbs.append({"t": tt, "src": "data:image/jpeg;base64," + str(b64).strip(),
                       "caption": th.get("caption") or _caption(review, tt)})
    markers = [th["t"] for th in thumbs]
    signals = []
    typical = typical_genuine()
    for name in signal_names(review):
        s = (review.get("signals") or {}).get(name) or {}
        readable, raw = split_details(name, s.get("details") or {})
        signals.append({
            "name": name, "value": _finite(s.get("value")), "n": s.get("n"),
            "description": describe_signal(name), "typical": typical.get(name),
            "segments": [f"{_finite(g.get('start')) or 0:.2f}-{_finite(g.get('end')) or 0:.2f} s"
                         f" (peak {_finite(g.get('value')) or 0:.2f}{', ' + str(g['reason']) if g.get('reason') else ''})"
                         for g in s.get("segments") or ()],
            "readable": ", ".join(readable), "raw": ", ".join(raw),
        })
    challenges = [dict(c) for c in review.get("challenges") or () if isinstance(c, Mapping)]
    ch_cols: list[str] = []
    for c in challenges:
        for k, v in c.items():
            if k not in ch_cols and not isinstance(v, (list, dict)):
                ch_cols.append(k)
    events = []
    for e in review.get("events") or ():
        if not isinstance(e, Mapping):
            continue
        kind = str(e.get("kind", ""))
        extra = {k: v for k, v in e.items() if k not in ("t", "kind", "message")}
        events.append({"t": _finite(e.get("t")), "kind": kind, "message": e.get("message", ""),
                       "extra": json.dumps(extra, ensure_ascii=False) if extra else "",
                       "cls": kind.split(".", 1)[0]})
    prov = dict(review.get("provenance") or {})
    models = prov.pop("models", {}) or {}
    options = prov.pop("options", None)
    fusion = prov.pop("fusion", None)
    th = _thresholds(review)
    summary = dict(review.get("summary") or {})
    return tmpl.render(
        title=str(src.get("path") or "video").rsplit("/", 1)[-1],
        source=src, verdict=verdict, label=label, risk=risk, colour=_LABEL_COLOURS.get(label, "#5f6368"),
        headline=LABEL_HEADLINE.get(label, label), verdict_text=verdict_text(label, assurance),
        assurance=assurance, incomplete=incomplete, live=live,
        reasons=list(verdict.get("reasons") or ()), thresholds=th, summary=summary,
        plots=_plots(review, markers, typical), signals=signals, challenges=challenges, ch_cols=ch_cols,
        thumbs=thumbs, events=events, models=sorted(models.items()) if isinstance(models, Mapping) else [],
        prov=_flatten(prov), options=json.dumps(options, indent=1, ensure_ascii=False, default=str)
        if options is not None else "", fusion=_flatten(fusion) if fusion else [],
        schema=review.get("schema", ""),
    )
