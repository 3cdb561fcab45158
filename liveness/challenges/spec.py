"""What a challenge is, in one table: its kind, the prompt the candidate reads, the measure its
baseline must have, its verifier and its time limit.

Adding a challenge is one row here (and, when no existing verifier fits, its verifier class in
:mod:`liveness.challenges.verifiers`); the engine and its options (kinds, time limits, what a
baseline needs, what the breakdown leaves out) read everything else from the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from liveness.challenges.types import ChallengeThresholds
from liveness.challenges.verifiers import (
    BlinksVerifier,
    BrowsVerifier,
    CoverVerifier,
    LeanVerifier,
    LookVerifier,
    MouthVerifier,
    SmileVerifier,
    TurnVerifier,
    Verifier,
)
from liveness.core.errors import ConfigError

__all__ = ["CHALLENGES", "SPECS", "ChallengeSpec", "make_verifier", "spec"]

#: a verifier factory: (kind, index, prompt_t, baseline row, thresholds, min_latency_s) -> Verifier
VerifierFactory = Callable[[str, int, float, np.ndarray, ChallengeThresholds, float], Verifier]


@dataclass(frozen=True)
class ChallengeSpec:
    """One challenge. ``feature``: the measure (a :data:`~liveness.challenges.features.FEATURES`
    name) that must be finite in the baseline before the prompt is shown; ``frontal``: the
    baseline must also be near-frontal (``turn_baseline_max_deg``); ``time_limit_s``: time to
    answer (None: ``EngineOptions.time_limit_s``); ``breakdown_exclude``: signals left out of the
    swap-breakdown score (losing the track is the expected answer to covering the face); ``hands``:
the engine tracks hands over the face while it is answered
(:class:`~liveness.challenges.occlusion.FaceUnderHand`) and gives the verifier the readings."""

    kind: str
    prompt: str
    feature: str
    verifier: VerifierFactory
    time_limit_s: float | None = None
    frontal: bool = False
    breakdown_exclude: tuple[str, ...] = ()
    hands: bool = False


SPECS: tuple[ChallengeSpec, ...] = (
    ChallengeSpec("turn_left", "Please turn your head to your left, as far as is comfortable.",
                  "yaw", partial(TurnVerifier, sign=+1.0), frontal=True),
    ChallengeSpec("turn_right", "Please turn your head to your right, as far as is comfortable.",
                  "yaw", partial(TurnVerifier, sign=-1.0), frontal=True),
    ChallengeSpec("look_up", "Please look up at the ceiling.", "pitch", partial(LookVerifier, sign=+1.0)),
    ChallengeSpec("look_down", "Please look down at your desk.", "pitch", partial(LookVerifier, sign=-1.0)),
    ChallengeSpec("blink_twice", "Please blink twice.", "ear", BlinksVerifier, 5.5, frontal=True),
    ChallengeSpec("open_mouth", "Please open your mouth wide.", "mouth_open", MouthVerifier),
    ChallengeSpec("smile", "Please give a big smile.", "mouth_width", SmileVerifier),
    ChallengeSpec("raise_eyebrows", "Please raise your eyebrows.", "brow", BrowsVerifier),
    ChallengeSpec("cover_half_face", "Please cover one half of your face with your hand for a moment.",
                  "size", CoverVerifier, 6.0, breakdown_exclude=("tracking",), hands=True),
    ChallengeSpec("lean_closer", "Please lean closer to the camera.", "size", LeanVerifier),
)  # fmt: skip

_BY_KIND = {s.kind: s for s in SPECS}

#: kind -> prompt, in table order
CHALLENGES: dict[str, str] = {s.kind: s.prompt for s in SPECS}


def spec(kind: str) -> ChallengeSpec:
    """The table row of ``kind`` (:class:`ConfigError` for an unknown kind)."""
    try:
        return _BY_KIND[kind]
    except KeyError:
        raise ConfigError(f"unknown challenge {kind!r}; known: {sorted(CHALLENGES)}") from None


def make_verifier(kind: str, index: int, prompt_t: float, base: np.ndarray,
                  th: ChallengeThresholds, min_latency_s: float = 0.2) -> Verifier:
    """The verifier for one challenge kind (see :data:`SPECS`)."""
    return spec(kind).verifier(kind, index, prompt_t, base, th, min_latency_s)
