"""A hand source test double: the synthetic avatar's own hand, where the renderer put it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from liveness.testing import Avatar, AvatarState


@dataclass(frozen=True)
class FakeHand:
    landmarks: np.ndarray
    presence: float = 1.0


@dataclass(frozen=True)
class FakeHands:
    hands: tuple[FakeHand, ...]


class AvatarHands:
    """``process(image, t)`` -> the hand the avatar draws in the state ``state_at(t)`` (its 21
    ground-truth hand landmarks), nothing when the hand is away; ``seen`` = calls made."""

    def __init__(self, avatar: Avatar, state_at: Callable[[float], AvatarState]) -> None:
        self.avatar, self.state_at = avatar, state_at
        self.calls = 0

    def process(self, image: np.ndarray, t: float, region: tuple[int, int, int, int] | None = None) -> FakeHands:
        self.calls += 1
        s = self.state_at(t)
        if s.hand <= 0:
            return FakeHands(())
        lm = self.avatar.render(s)[1]["_hand_landmarks"]
        return FakeHands((FakeHand(lm),)) if np.all(np.isfinite(lm)) else FakeHands(())

    def reset(self) -> None:
        pass


class NoHands:
    """A hand source that never finds a hand."""

    calls = 0

    def process(self, image: np.ndarray, t: float, region: tuple[int, int, int, int] | None = None) -> FakeHands:
        self.calls += 1
        return FakeHands(())

    def reset(self) -> None:
        pass
