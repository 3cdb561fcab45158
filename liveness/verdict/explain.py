"""Plain-language text for the people who read the answers: what each verdict label says, one
line per signal, and which signal details are readable facts (the rest are internals, shown
folded). One table each, used by the HTML report, the batch index, the command line and the
live console (the server hands the tables to the console page).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from liveness.core.mathx import logistic

__all__ = [
    "LABEL_HEADLINE",
    "LABEL_TEXT",
    "SIGNAL_TEXT",
    "console_tables",
    "describe_signal",
    "split_details",
    "typical_genuine",
    "verdict_text",
]

#: the short name of each verdict label (the badge in the report, the console's pill)
LABEL_HEADLINE = {
    "genuine": "genuine",
    "no_signs": "no signs found",
    "suspicious": "suspicious",
    "fake": "fake",
    "inconclusive": "inconclusive",
}

#: what each label means, in the words shown to the reader
LABEL_TEXT = {
    "genuine": "Genuine — an active check backs it",
    "no_signs": "No signs of manipulation found — passive checks only; ask for challenges or compare "
                "with an enrolment",
    "suspicious": "Suspicious — some signals look like manipulation; check the flagged moments",
    "fake": "Fake — the signals show manipulation",
    "inconclusive": "Inconclusive — too little usable face or evidence to judge",
}

_ASSURANCE_TEXT = {
    "passive": "the passive checks",
    "challenges": "a passed challenge sequence",
    "reference": "a match with the reference photo or enrolment",
}

#: one line per signal: what it looks at, in plain words (higher = less likely genuine)
SIGNAL_TEXT = {
    "quality": "Share of frames without a usable face (none, too small, dark, blurred, cut off). "
               "Describes the footage; never counted as evidence of fakery.",
    "pose_consistency": "Whether the head pose from the central face agrees with the pose from the "
                        "whole face; a swap replaces the centre and keeps the real head.",
    "face_slip": "Whether the inner face slides or jitters against the head around it, as a "
                 "pasted face does.",
    "face_smoothness": "Whether the face's landmarks move more smoothly than the picture around "
                       "them, as a generated face does.",
    "identity_change": "Whether another person takes over during the recording (face recognition "
                       "against the first seconds).",
    "identity_instability": "Whether the identity drifts as the head turns, more than a real face "
                            "does at that angle.",
    "reference_mismatch": "Whether the face differs from the reference photo or enrolment of the "
                          "expected person.",
    "artefact": "How much the face looks like the real face swaps a trained detector learned from (18 tools).",
    "sharpness_gap": "Whether the inner face is blurrier than the head and background around it, "
                     "as a pasted low-resolution face is.",
    "challenge": "Share of the prompted challenges (turn, blink, smile, ...) not answered in time.",
    "challenge_breakdown": "How much the other signals rose while the challenges were answered "
                           "(a swap tends to break at profile or under a hand).",
    "opportunistic_breakdown": "How much the other signals rose around natural head turns, blinks "
                               "and hand-over-face moments. Real people often reach 1.00 here too, "
                               "so on its own it means little.",
    "hand_over_face": "Whether the face still shows through a hand that passes in front of it "
                      "(a swapper paints the face over the hand); live sessions only, not yet "
                      "part of the verdict.",
}

# readable details: key -> (label, format); every other detail is an internal measurement
_PCT, _INT, _DEG, _NUM = "pct", "int", "deg", "num"
_READABLE = {
    "median": ("typical frame", _NUM),
    "max": ("highest (smoothed)", _NUM),
    "mean": ("mean", _NUM),
    "usable_fraction": ("usable face", _PCT),
    "no_face_fraction": ("no face", _PCT),
    "several_faces_fraction": ("several faces", _PCT),
    "small_fraction": ("face too small", _PCT),
    "dark_fraction": ("too dark", _PCT),
    "bright_fraction": ("over-exposed", _PCT),
    "blurred_fraction": ("blurred", _PCT),
    "out_of_frame_fraction": ("cut off by the frame edge", _PCT),
    "flashes": ("single-frame flashes", _INT),
    "samples": ("face samples compared", _INT),
    "abs_yaw_median": ("typical head turn", _DEG),
    "abs_yaw_max": ("widest head turn", _DEG),
    "prompted": ("challenges asked", _INT),
    "passed": ("passed", _INT),
    "failed": ("failed", _INT),
    "pass_rate": ("pass rate", _PCT),
    "n_head_turn": ("head turns", _INT),
    "n_occlusion": ("occlusions", _INT),
    "n_blink": ("blinks", _INT),
}


def describe_signal(name: str) -> str:
    """The one-line description of signal ``name`` (a generic line for unknown signals)."""
    return SIGNAL_TEXT.get(name, "A per-clip score from 0 to 1; higher = less likely genuine.")


def verdict_text(label: str, assurance: Sequence[str] = ()) -> str:
    """The sentence a reader sees for a verdict; ``genuine`` names the check that backs it."""
    if label == "genuine":
        active = [_ASSURANCE_TEXT[a] for a in assurance if a in ("challenges", "reference")]
        if active:
            return "Genuine — backed by " + " and ".join(active)
    return LABEL_TEXT.get(label, label)


def _fmt(v: float, kind: str) -> str:
    if kind == _PCT:
        return f"{100 * v:.0f}%"
    if kind == _INT:
        return f"{v:.0f}"
    if kind == _DEG:
        return f"{v:.0f}°"
    return f"{v:.2f}"


def split_details(name: str, details: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(readable items such as ``"typical frame 0.12"``, raw internals such as
    ``"mesh_hf_to_flow_hf 2.58"``) of a signal's details; zero shares of quality problems and
    missing values are left out."""
    readable: list[str] = []
    raw: list[str] = []
    for k, v in details.items():
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        spec = _READABLE.get(k)
        if spec is None:
            raw.append(f"{k} {v:.3g}")
        elif not (k.endswith("_fraction") and k != "usable_fraction" and v == 0):
            readable.append(f"{spec[0]} {_fmt(float(v), spec[1])}")
    return readable, raw


def typical_genuine() -> dict[str, float]:
    """Each fused signal's mean over the real people of the development set (the fusion
    model's centre), for reading a value against what real footage gives; empty when the
    packaged fusion parameters cannot be read."""
    try:
        from liveness.verdict.params import load_params

        p = load_params()
    except Exception:  # a report must render without fusion parameters
        return {}
    out = {}
    for name, c in zip(p.features, p.center, strict=True):
        v = float(c) if p.transform == "identity" else logistic(float(c))
        out[name] = round(v, 2)
    return out


def console_tables() -> dict[str, Any]:
    """What the live console shows beside the numbers (served into its page)."""
    return {"labels": LABEL_TEXT, "headlines": LABEL_HEADLINE, "signals": SIGNAL_TEXT,
            "typical": typical_genuine()}
