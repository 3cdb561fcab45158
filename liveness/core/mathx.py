"""Small numeric rules shared across stages (one copy each): the logistic function and the
overlap of boxes."""

from __future__ import annotations

from typing import overload

import numpy as np

__all__ = ["iou", "logistic"]


@overload
def logistic(x: float) -> float: ...


@overload
def logistic(x: np.ndarray) -> np.ndarray: ...


def logistic(x: float | np.ndarray) -> float | np.ndarray:
    """1 / (1 + exp(-x)), with ``x`` clipped to +-50 so that it never overflows; a float for a
    scalar, an array for an array."""
    if isinstance(x, np.ndarray):
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -50.0, 50.0))))
    return float(1.0 / (1.0 + np.exp(-np.clip(float(x), -50.0, 50.0))))


def iou(box: np.ndarray, boxes: np.ndarray, *, corners: bool = False) -> np.ndarray:
    """Intersection over union of one box with each of ``boxes`` (N, 4); 0 where the union is
    empty. Boxes are ``(x, y, w, h)``, or ``(x0, y0, x1, y1)`` with ``corners``."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    a = np.asarray(box, np.float64).reshape(4)
    if corners:
        a = np.array([a[0], a[1], a[2] - a[0], a[3] - a[1]])
        b = np.c_[b[:, :2], b[:, 2:] - b[:, :2]]
    ix = np.clip(np.minimum(a[0] + a[2], b[:, 0] + b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[1] + a[3], b[:, 1] + b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    union = a[2] * a[3] + b[:, 2] * b[:, 3] - inter
    return np.asarray(np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0))
