"""The evidence report: one self-contained HTML file from a ``liveness.review/1`` document.

No network: CSS, a few lines of JS and the plots (SVG generated here) are inline; thumbnails
are ``data:`` URIs. :func:`telling_times` picks the timestamps worth a thumbnail (peaks of the
flagged segments that drove the verdict first), so the review code grabs those frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from liveness.core.review import Review
from liveness.verdict.explain import (
    LABEL_HEADLINE,
    describe_signal,
    split_details,
    typical_genuine,
    verdict_text,
)
from liveness.verdict.lanes import (
    finite,
    plots,
    segments_of,
    series,
    signal_names,
    svg_lane,
    time_range,
)

__all__ = ["render_html", "signal_names", "svg_lane", "telling_times"]

# signals that describe the footage, not evidence of fakery (no thumbnails picked for them)
_NON_EVIDENCE = {"quality"}

_LABEL_COLOURS = {
    "genuine": "#1b7f3b",
    "no_signs": "#3b5b7a",  # not green: nothing was found, nothing was cleared
    "suspicious": "#b26a00",
    "fake": "#b3261e",
    "inconclusive": "#5f6368",
}

def telling_times(review: Review | Mapping[str, Any], k: int = 6) -> list[float]:
    """Up to ``k`` timestamps (sorted) whose frames best show the evidence.

    Order of preference: the peak frame of each segment that drove the verdict (by segment
    value), then the peaks of other flagged segments, then each signal's highest per-frame
    value, then evenly spaced frames with a face. Picks are at least a short gap apart
    (``max(0.5 s, duration / (4 k))``) and always timestamps of analysed frames."""
    if isinstance(review, Review):
        review = review.to_dict()
    if k <= 0:
        return []
    rows = review.get("timeline") or ()
    t_all = np.array([finite(r.get("t")) if finite(r.get("t")) is not None else np.nan for r in rows])
    if t_all.size == 0 or not np.isfinite(t_all).any():
        return []
    t0, t1 = time_range(review)
    gap = max(0.5, (t1 - t0) / (4 * k))
    face = np.array([bool(r.get("face")) for r in rows], bool)

    cands: list[tuple[float, float]] = []  # (priority, time)

    def peak_in(name: str, a: float, b: float) -> float:
        _, v = series(review, name)
        m = np.isfinite(t_all) & (t_all >= a - 1e-6) & (t_all <= b + 1e-6)
        if m.any() and np.isfinite(v[m]).any():
            idx = np.flatnonzero(m)
            return float(t_all[idx[int(np.nanargmax(v[m]))]])
        if m.any():  # no per-frame values: the middle analysed frame of the range
            idx = np.flatnonzero(m)
            return float(t_all[idx[len(idx) // 2]])
        mid = 0.5 * (a + b)
        return float(t_all[int(np.nanargmin(np.abs(t_all - mid)))])

    for name, a, b, val, drove in segments_of(review):
        if name not in _NON_EVIDENCE:
            cands.append(((3.0 if drove else 2.0) + val, peak_in(name, a, b)))
    for name in signal_names(review):
        if name in _NON_EVIDENCE:
            continue
        _, v = series(review, name)
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
def _caption(review: Mapping[str, Any], tt: float) -> str:
    """What is going on at ``tt``: the highest per-frame signal value and any segment there."""
    rows = review.get("timeline") or ()
    if not rows:
        return f"{tt:.2f} s"
    ts = np.array([finite(r.get("t")) if finite(r.get("t")) is not None else np.nan for r in rows])
    if not np.isfinite(ts).any():
        return f"{tt:.2f} s"
    row = rows[int(np.nanargmin(np.abs(ts - tt)))]
    vals = [(k, v) for k in signal_names(review) if k not in _NON_EVIDENCE
            if (v := finite(row.get(k))) is not None]
    parts = [f"{tt:.2f} s"]
    if not row.get("face"):
        parts.append("no face")
    if vals:
        k, v = max(vals, key=lambda kv: kv[1])
        parts.append(f"{k} {v:.2f}")
    flagged = sorted({n for (n, a, b, _, _) in segments_of(review)
                      if a - 1e-6 <= tt <= b + 1e-6 and n and n not in _NON_EVIDENCE})
    if flagged:
        parts.append("flagged: " + ", ".join(flagged))
    return " · ".join(parts)


def _thresholds(review: Mapping[str, Any]) -> dict[str, float] | None:
    prov = review.get("provenance") or {}
    fus = prov.get("fusion") if isinstance(prov, Mapping) else None
    th = fus.get("thresholds") if isinstance(fus, Mapping) else None
    if isinstance(th, Mapping) and finite(th.get("suspicious")) is not None and finite(th.get("fake")) is not None:
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


def render_html(review: Review | Mapping[str, Any]) -> str:
    """The self-contained HTML report of a review (``liveness.review/1`` or a live session's
    ``liveness.serve-report/1``), typed or as its document."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    if isinstance(review, Review):
        review = review.to_dict()

    env = Environment(loader=PackageLoader("liveness", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    tmpl = env.get_template("report.html.j2")

    src = dict(review.get("source") or {})
    for key in ("path", "sha256", "width", "height", "fps", "duration_s", "frames"):
        src.setdefault(key, None)
    verdict = dict(review.get("verdict") or {})
    label = str(verdict.get("label") or "inconclusive")
    risk = finite(verdict.get("risk"))
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
        tt = finite(th.get("t"))
        if not b64 or tt is None:
            continue
        thumbs.append({"t": tt, "src": "data:image/jpeg;base64," + str(b64).strip(),
                       "caption": th.get("caption") or _caption(review, tt)})
    markers = [float(th["t"]) for th in thumbs]
    signals = []
    typical = typical_genuine()
    for name in signal_names(review):
        s = (review.get("signals") or {}).get(name) or {}
        readable, raw = split_details(name, s.get("details") or {})
        signals.append({
            "name": name, "value": finite(s.get("value")), "n": s.get("n"),
            "description": describe_signal(name), "typical": typical.get(name),
            "segments": [f"{finite(g.get('start')) or 0:.2f}-{finite(g.get('end')) or 0:.2f} s"
                         f" (peak {finite(g.get('value')) or 0:.2f}{', ' + str(g['reason']) if g.get('reason') else ''})"
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
        events.append({"t": finite(e.get("t")), "kind": kind, "message": e.get("message", ""),
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
        plots=plots(review, markers, typical), signals=signals, challenges=challenges, ch_cols=ch_cols,
        thumbs=thumbs, events=events, models=sorted(models.items()) if isinstance(models, Mapping) else [],
        prov=_flatten(prov), options=json.dumps(options, indent=1, ensure_ascii=False, default=str)
        if options is not None else "", fusion=_flatten(fusion) if fusion else [],
        schema=review.get("schema", ""),
    )
