"""The verdict's confusion table for ``liveness eval``: labels per class of clip, false alarms
and misses at the operating thresholds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from liveness.verdict.params import load_params

__all__ = ["confusion_table", "format_confusion_table"]


_LABELS = ("genuine", "no_signs", "suspicious", "fake", "inconclusive")


def _clip_label(clip: Mapping[str, Any], thresholds: Mapping[str, float] | None) -> str:
    v = clip.get("verdict") or {}
    label = v.get("label")
    risk = _num(v.get("risk"))
    # "genuine" needs an active check behind it; a stored "genuine" without one (documents
    # from before ``assurance`` existed) counts as "no_signs"
    backed = label == "genuine" and bool(set(v.get("assurance") or ()) & {"challenges", "reference"})
    if thresholds is None:
        if label in _LABELS:
            return "no_signs" if label == "genuine" and not backed else label
        thresholds = load_params().thresholds
    if label == "inconclusive" or not math.isfinite(risk):
        return "inconclusive"
    if risk >= thresholds["fake"]:
        return "fake"
    if risk >= thresholds["suspicious"]:
        return "suspicious"
    return "genuine" if backed else "no_signs"


def confusion_table(
    clips: Iterable[Mapping[str, Any]], thresholds: Mapping[str, float] | None = None
) -> dict[str, Any]:
    """APCER per attack kind and BPCER from eval clips (``liveness.eval/1`` rows).

    Labels come from each clip's ``verdict.label``, or — when ``thresholds``
    (``{"suspicious", "fake"}``) are given — from ``verdict.risk`` at those thresholds
    (``inconclusive`` stays; below them ``genuine`` when the clip's verdict was a backed
    ``genuine``, else ``no_signs``). An alarm is ``suspicious`` or ``fake``; ``no_signs`` is not
    flagged, like ``genuine``. Rates leave inconclusive clips out of the denominator and report
    them separately:

    - ``apcer``: attacks labelled genuine or no_signs / decided attacks (missed alarms);
    - ``apcer_fake``: attacks not labelled fake / decided attacks;
    - ``bpcer``: reals with an alarm / decided reals; ``bpcer_fake``: reals labelled fake.
    """

    def empty() -> dict[str, int]:
        return {"n": 0, **dict.fromkeys(_LABELS, 0)}

    rows: dict[str, dict[str, int]] = {}
    for c in clips:
        real = str(c.get("label", "")).lower() == "real"
        kind = "real" if real else str(c.get("attack") or "fake")
        r = rows.setdefault(kind, empty())
        r["n"] += 1
        r[_clip_label(c, thresholds)] += 1

    def rates(r: dict[str, int], real: bool) -> dict[str, Any]:
        decided = r["n"] - r["inconclusive"]
        missed = r["genuine"] + r["no_signs"]
        out: dict[str, Any] = dict(r)
        out["inconclusive_rate"] = r["inconclusive"] / r["n"] if r["n"] else None
        if real:
            out["bpcer"] = (r["suspicious"] + r["fake"]) / decided if decided else None
            out["bpcer_fake"] = r["fake"] / decided if decided else None
        else:
            out["apcer"] = missed / decided if decided else None
            out["apcer_fake"] = (missed + r["suspicious"]) / decided if decided else None
        return out

    attacks = {k: rates(v, False) for k, v in sorted(rows.items()) if k != "real"}
    tot = empty()
    for k, v in rows.items():
        if k != "real":
            for f in tot:
                tot[f] += v[f]
    return {
        "thresholds": dict(thresholds) if thresholds is not None else None,
        "real": rates(rows.get("real", empty()), True),
        "attacks": attacks,
        "all_attacks": rates(tot, False),
    }


def format_confusion_table(table: Mapping[str, Any]) -> str:
    """Plain-text rendering of :func:`confusion_table`: one row per class, columns aligned
    whatever the length of the attack names."""

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    head = ["class", "n", "genuine", "no signs", "suspic.", "fake", "inconc.", "error (alarm)", "error (fake)"]
    body: list[list[str]] = []

    def add(name: str, r: Mapping[str, Any], e1: str, e2: str) -> None:
        body.append([name, *(str(r.get(k, 0)) for k in ("n", *_LABELS)), pct(r.get(e1)), pct(r.get(e2))])

    add("real (BPCER)", table["real"], "bpcer", "bpcer_fake")
    for k, a in [*table["attacks"].items(), ("all attacks", table["all_attacks"])]:
        add(f"{k} (APCER)", a, "apcer", "apcer_fake")
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = []
    th = table.get("thresholds")
    if th:
        lines.append(f"operating thresholds: suspicious >= {th['suspicious']:.3f}, fake >= {th['fake']:.3f}")
    for row in [head, *body]:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _num(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan
