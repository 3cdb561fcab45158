"""Input image checks shared by every component that takes a frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from liveness.core.errors import InputError

__all__ = ["check_rgb"]


def check_rgb(rgb: Any) -> np.ndarray:
    """Return ``rgb`` if it is an RGB uint8 (H, W, 3) array, else raise :class:`InputError`."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"expected an RGB numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InputError(f"expected uint8 pixels, got {rgb.dtype}")
    return rgb
