"""Synthetic landmark sequences: the canonical face projected with known head poses."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from liveness import FaceObservation, ModelError


def canonical_vertices() -> np.ndarray:
    try:
        from liveness.tracking.pose import canonical_face

        return canonical_face().vertices
    except (ModelError, ImportError, OSError) as exc:  # pragma: no cover - packaging problem
        pytest.skip(f"canonical face not available: {exc}")


def rotation(yaw: float, pitch: float = 0.0, roll: float = 0.0) -> np.ndarray:
    """Rotation (OpenCV object frame -> camera), degrees; yaw about y, pitch about x."""
    b, a, g = np.radians([yaw, pitch, roll])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return rz @ ry @ rx


def project(vertices: np.ndarray, r: np.ndarray, t: np.ndarray, width: int, height: int) -> np.ndarray:
    """(478, 3) landmarks in pixels: 468 projected vertices + 10 iris points at the eyes."""
    obj = np.asarray(vertices, np.float64) * np.array([1.0, -1.0, -1.0])
    f = float(max(width, height))
    k = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)
    rvec, _ = cv2.Rodrigues(r)
    p, _ = cv2.projectPoints(obj, rvec, np.asarray(t, np.float64), k, np.zeros(4))
    p = p.reshape(-1, 2)
    cam = obj @ r.T + t
    z = (cam[:, 2] - cam[:, 2].mean()) * f / cam[:, 2].mean()
    lm = np.zeros((478, 3), np.float32)
    lm[:468, :2] = p
    lm[:468, 2] = z
    eye_r = lm[[33, 133]].mean(axis=0)
    eye_l = lm[[263, 362]].mean(axis=0)
    lm[468:473] = eye_r
    lm[473:478] = eye_l
    return lm


def observation(lm: np.ndarray, t: float, i: int, width: int, height: int,
                image: np.ndarray | None = None) -> FaceObservation:
    lo = lm[:468, :2].min(axis=0)
    hi = lm[:468, :2].max(axis=0)
    box = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)
    return FaceObservation(t, i, width, height, True, 1, box=box, landmarks=lm, image=image)
