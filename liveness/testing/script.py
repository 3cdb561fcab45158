"""What the synthetic avatar does when: its per-frame state and the scripted actions.

Script syntax (``--script``): space-separated ``ACTION@START`` items, e.g.
``"turn_left@1 blink_twice@4 open_mouth@6.5 cover_half_face@9"``; ACTION is a challenge kind
(see :data:`liveness.challenges.spec.CHALLENGES`) or ``blink``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from liveness.challenges.spec import CHALLENGES
from liveness.core.errors import ConfigError

__all__ = ["ACTIONS", "Action", "AvatarScript", "AvatarState"]

ACTIONS = (*CHALLENGES, "blink")  # the challenge kinds and a single natural blink


# -- state and script -----------------------------------------------------------------------
@dataclass(frozen=True)
class AvatarState:
    """What the avatar does in one frame. Angles in degrees (``liveness.tracking.pose`` convention:
    yaw > 0 = nose toward the image's right, pitch > 0 = up); ``blink`` 0 open .. 1 closed;
    ``mouth`` 0 .. 1 wide open; ``smile``, ``brows`` 0 .. 1; ``hand`` 0 (away) .. 1 (covering
    half the face), ``hand_side`` +1 = image-right half, -1 = image-left; ``lean`` 0 .. 1
    (1 = the face 1.4x larger); ``tx``, ``ty`` offsets in pixels."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    blink: float = 0.0
    mouth: float = 0.0
    smile: float = 0.0
    brows: float = 0.0
    hand: float = 0.0
    hand_side: int = 1
    lean: float = 0.0
    tx: float = 0.0
    ty: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _envelope(t: float, start: float, rise: float, hold: float, fall: float) -> float:
    """0 → 1 (cosine ease, ``rise`` s) → hold → 0 (``fall`` s)."""
    x = t - start
    if x <= 0 or x >= rise + hold + fall:
        return 0.0
    if x < rise:
        return 0.5 - 0.5 * math.cos(math.pi * x / rise)
    if x < rise + hold:
        return 1.0
    return 0.5 + 0.5 * math.cos(math.pi * (x - rise - hold) / fall)


@dataclass(frozen=True)
class Action:
    """One scripted action starting at ``start`` seconds; ``amount`` scales it (1 = default
    strength: 50 deg turns, 25 deg looks); ``speed`` > 1 is faster; ``side`` for the hand."""

    kind: str
    start: float
    amount: float = 1.0
    speed: float = 1.0
    side: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ACTIONS:
            raise ConfigError(f"unknown avatar action {self.kind!r}; known: {list(ACTIONS)}")

    @property
    def duration(self) -> float:
        return {"blink": 0.3, "blink_twice": 0.8, "cover_half_face": 1.9, "lean_closer": 2.0}.get(
            self.kind, 1.6) / self.speed

    def apply(self, t: float, s: dict[str, float]) -> None:
        k, a, sp = self.kind, self.amount, self.speed
        if k in ("blink", "blink_twice"):
            starts = [self.start] if k == "blink" else [self.start, self.start + 0.45 / sp]
            for b in starts:
                s["blink"] = max(s["blink"], _envelope(t, b, 0.08 / sp, 0.06 / sp, 0.12 / sp) * a)
            return
        e = _envelope(t, self.start, 0.5 / sp, 0.6 / sp, 0.5 / sp)
        if k == "turn_left":
            s["yaw"] += 50.0 * a * e
        elif k == "turn_right":
            s["yaw"] -= 50.0 * a * e
        elif k == "look_up":
            s["pitch"] += 25.0 * a * e
        elif k == "look_down":
            s["pitch"] -= 25.0 * a * e
        elif k == "open_mouth":
            s["mouth"] = max(s["mouth"], a * e)
        elif k == "smile":
            s["smile"] = max(s["smile"], a * e)
        elif k == "raise_eyebrows":
            s["brows"] = max(s["brows"], a * e)
        elif k == "cover_half_face":
            e = _envelope(t, self.start, 0.4 / sp, 1.1 / sp, 0.4 / sp)
            if e > s["hand"]:
                s["hand"], s["hand_side"] = a * e, self.side
        elif k == "lean_closer":
            e = _envelope(t, self.start, 0.6 / sp, 0.8 / sp, 0.6 / sp)
            s["lean"] = max(s["lean"], a * e)


@dataclass
class AvatarScript:
    """Actions over time plus optional idle motion (slow sway, occasional single blinks,
    deterministic from ``seed``)."""

    actions: list[Action] = field(default_factory=list)
    idle: bool = True
    seed: int = 0
    blink_every_s: tuple[float, float] = (3.0, 6.0)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._phase = rng.uniform(0, 2 * np.pi, 6)
        self._blinks: list[float] = []
        if self.idle:
            t = float(rng.uniform(*self.blink_every_s))
            while t < 3600:
                self._blinks.append(t)
                t += float(rng.uniform(*self.blink_every_s))

    @classmethod
    def parse(cls, text: str, idle: bool = True, seed: int = 0) -> AvatarScript:
        """``"turn_left@1 blink_twice@4.5"`` → script (see module docs)."""
        acts = []
        for item in text.split():
            if "@" not in item:
                raise ConfigError(f"script item {item!r} is not ACTION@SECONDS")
            kind, at = item.split("@", 1)
            try:
                start = float(at)
            except ValueError as exc:
                raise ConfigError(f"bad time in script item {item!r}") from exc
            acts.append(Action(kind, start))
        return cls(acts, idle=idle, seed=seed)

    def add(self, action: Action) -> None:
        self.actions.append(action)

    def active(self, t: float) -> str | None:
        for a in self.actions:
            if a.start <= t < a.start + a.duration:
                return a.kind
        return None

    def state_at(self, t: float) -> AvatarState:
        s: dict[str, float] = {"yaw": 0.0, "pitch": 0.0, "roll": 0.0, "blink": 0.0, "mouth": 0.0,
                               "smile": 0.0, "brows": 0.0, "hand": 0.0, "hand_side": 1,
                               "lean": 0.0}
        if self.idle:
            p = self._phase
            s["yaw"] += 3.0 * math.sin(0.9 * t + p[0]) + 1.5 * math.sin(2.3 * t + p[1])
            s["pitch"] += 2.0 * math.sin(0.7 * t + p[2]) + 1.0 * math.sin(1.9 * t + p[3])
            s["roll"] += 1.5 * math.sin(0.5 * t + p[4])
            s["mouth"] += 0.03 * (1 + math.sin(4.0 * t + p[5]))  # a little talking
            for b in self._blinks:
                if b - 0.5 < t < b + 0.5 and not any(
                    a.kind in ("blink", "blink_twice") and a.start - 2.5 < b < a.start + 2.5
                    for a in self.actions
                ):
                    s["blink"] = max(s["blink"], _envelope(t, b, 0.08, 0.06, 0.12))
        for a in self.actions:
            a.apply(t, s)
        s["hand_side"] = int(s["hand_side"])
        return AvatarState(**s)  # type: ignore[arg-type]


# -- the model ------------------------------------------------------------------------------
