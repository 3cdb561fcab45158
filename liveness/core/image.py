"""Image rules every component shares: the input check, the downscaling rule and the JPEG
encoding of evidence thumbnails (one copy each)."""

from __future__ import annotations

from typing import Any

import numpy as np

from liveness.core.errors import InputError

__all__ = ["check_rgb", "downscale", "fit_size", "jpeg"]


def check_rgb(rgb: Any) -> np.ndarray:
    """Return ``rgb`` if it is an RGB uint8 (H, W, 3) array, else raise :class:`InputError`."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"expected an RGB numpy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) RGB image, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise InputError(f"expected uint8 pixels, got {rgb.dtype}")
    return rgb


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """The size a ``width`` x ``height`` frame is analysed at: unchanged when its longer side is
    at most ``max_side`` (or no limit), else scaled to fit (aspect kept) and rounded to even
    sides, as the video decoder's scaler wants them."""
    if not max_side or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(2, int(round(width * s)) // 2 * 2), max(2, int(round(height * s)) // 2 * 2)


def downscale(rgb: np.ndarray, max_side: int | None) -> np.ndarray:
    """``rgb`` resized to :func:`fit_size` (area interpolation), or itself when it fits."""
    h, w = rgb.shape[:2]
    fw, fh = fit_size(w, h, max_side)
    if (fw, fh) == (w, h):
        return rgb
    import cv2

    return np.ascontiguousarray(cv2.resize(rgb, (fw, fh), interpolation=cv2.INTER_AREA))


def jpeg(rgb: np.ndarray, width: int | None = None, height: int | None = None,
         quality: int = 80) -> bytes | None:
    """An RGB image as JPEG bytes (None when it cannot be encoded). With ``width`` (and
    ``height``; default: the aspect kept) it is first resized with area interpolation."""
    import cv2

    if width is not None:
        h, w = rgb.shape[:2]
        size = (width, height if height is not None else max(1, int(h * width / w)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return bytes(buf.tobytes()) if ok else None
