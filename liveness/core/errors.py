"""Exception tree.

``LivenessError``            base of everything this package raises on purpose
├── InputError               unreadable, empty or non-video input; bad images
├── TimestampError           a frame timestamp did not increase
├── ModelError               a model file is missing or its sha256 does not match the registry
└── ConfigError              invalid options

"No face in the frame" is never an exception: it is a ``FaceObservation`` with ``face=False``.
"""

from __future__ import annotations

__all__ = ["ConfigError", "InputError", "LivenessError", "ModelError", "TimestampError"]


class LivenessError(Exception):
    """Base class of every error raised on purpose by ``liveness``."""


class InputError(LivenessError, ValueError):
    """The input (video file, image, reference photo) cannot be used."""


class TimestampError(LivenessError, ValueError):
    """Frame timestamps must strictly increase within a session."""


class ModelError(LivenessError, RuntimeError):
    """A model file is missing, corrupt or does not match its registry entry."""


class ConfigError(LivenessError, ValueError):
    """An option has an invalid value."""
