"""The report's plots: one SVG lane per signal over the clip's time axis (lines and dots for
subset-scored signals, flagged segments, the typical genuine value, thumbnail markers), plus the
helpers that read series out of a review document."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["finite", "plots", "segments_of", "series", "signal_names", "svg_lane", "time_range"]

# timeline keys that are not signals
_STANDARD = {"t", "face", "faces", "box", "score", "yaw", "pitch", "roll", "tvec", "quality",
             "redetected", "index", "frame_index", "face_fraction"}

# plot geometry (px): lane names end at _NAME_X, the axis numbers sit between them and the plot
_W, _LEFT, _RIGHT = 980, 215, 70
_PLOT_W = _W - _LEFT - _RIGHT
_NAME_X = _LEFT - 26
_NAME_W = _NAME_X - 6


# ---------------------------------------------------------------------------------------------
# helpers over the review document
# ---------------------------------------------------------------------------------------------
def finite(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def signal_names(review: Mapping[str, Any]) -> list[str]:
    """Signals to plot: those in ``signals`` (in order), then other numeric per-frame keys."""
    names = list(review.get("signals") or {})
    seen = set(names)
    for row in review.get("timeline") or ():
        for k, v in row.items():
            if k not in seen and k not in _STANDARD and finite(v) is not None:
                names.append(k)
                seen.add(k)
    return names


def series(review: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = review.get("timeline") or ()
    t = np.array([finite(r.get("t")) if finite(r.get("t")) is not None else np.nan for r in rows], np.float64)
    v = np.array([finite(r.get(key)) if finite(r.get(key)) is not None else np.nan for r in rows], np.float64)
    return t, v


def time_range(review: Mapping[str, Any]) -> tuple[float, float]:
    rows = review.get("timeline") or ()
    ts = [x for x in (finite(r.get("t")) for r in rows) if x is not None]
    t0 = min(ts) if ts else 0.0
    t1 = max(ts) if ts else 0.0
    dur = finite((review.get("source") or {}).get("duration_s"))
    if dur is not None and dur > t1:
        t1 = dur
    t0 = min(t0, 0.0)
    if t1 - t0 < 1e-6:
        t1 = t0 + 1.0
    return t0, t1


def segments_of(review: Mapping[str, Any]) -> list[tuple[str, float, float, float, bool]]:
    """(signal, start, end, value, drove_verdict) of every flagged segment."""
    out: list[tuple[str, float, float, float, bool]] = []
    for s in (review.get("verdict") or {}).get("segments") or ():
        name = str(s.get("reason") or "").split(":", 1)[0].strip()
        a, b = finite(s.get("start")), finite(s.get("end"))
        if a is not None and b is not None:
            out.append((name, a, b, finite(s.get("value")) or 0.0, True))
    for name, sig in (review.get("signals") or {}).items():
        for s in (sig or {}).get("segments") or ():
            a, b = finite(s.get("start")), finite(s.get("end"))
            if a is not None and b is not None:
                out.append((name, a, b, finite(s.get("value")) or 0.0, False))
    return out


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
def plots(review: Mapping[str, Any], markers: Sequence[float],
           typical: Mapping[str, float] | None = None) -> list[dict[str, str]]:
    rows = review.get("timeline") or ()
    tr = time_range(review)
    t = np.array([finite(r.get("t")) if finite(r.get("t")) is not None else np.nan for r in rows], np.float64)
    plots: list[dict[str, str]] = []
    sigs = review.get("signals") or {}
    verdict_segs = segments_of(review)

    # face presence lane: the tracking score, else (live reports: per-second rows) the share of
    # frames with a face, else the face flag itself
    face = np.array([bool(r.get("face")) for r in rows], bool)
    faces = np.array([int(r.get("faces") or 0) for r in rows], np.int64)
    shade = [(a, b, "#d9d9d9", "no face") for a, b in _bands(t, ~face)]
    shade += [(a, b, "#ffd8a8", "several faces") for a, b in _bands(t, faces > 1)]
    per_second = series(review, "face_fraction")[1]
    if np.isfinite(per_second).any():
        frac = float(np.nanmean(per_second))
        face_line = ("share of frames with a face", per_second)
    else:
        frac = float(face.mean()) if face.size else 0.0
        score = series(review, "score")[1]
        face_line = ("tracking score", score) if np.isfinite(score).any() else ("face found", face.astype(float))
    plots.append({"name": "face", "svg": svg_lane(
        "face found", t, [(*face_line, "#4a4a4a")], tr,
        shade=shade, markers=markers, value_text=f"{frac:.0%}", height=50,
        note="grey: no face")})
    # pose lane
    pose = [(k, series(review, k)[1], c) for k, c in (("yaw", "#1f6feb"), ("pitch", "#8250df"),
                                                       ("roll", "#bf8700"))]
    if any(np.isfinite(v).any() for _, v, _ in pose):
        plots.append({"name": "pose", "svg": svg_lane(
            "head pose (deg)", t, pose, tr, y_range=(-90.0, 90.0), markers=markers, height=80)})
    # one lane per signal
    typical = typical or {}
    for name in signal_names(review):
        sig = sigs.get(name) or {}
        val = finite(sig.get("value"))
        v = series(review, name)[1]
        segs: list[tuple[float, float, float, str, bool]] = [
            (a, b, sv, "", drove) for (n, a, b, sv, drove) in verdict_segs if n == name and drove]
        segs += [(finite(s.get("start")) or 0.0, finite(s.get("end")) or 0.0, finite(s.get("value")) or 0.0,
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


