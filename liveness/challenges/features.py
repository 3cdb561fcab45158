"""Per-frame measures the challenges are verified on (one row of :func:`frame_features` per
frame; see :mod:`liveness.challenges.verifiers` for what each measure means and the thresholds)."""

from __future__ import annotations

import warnings

import cv2
import numpy as np

from liveness.core.types import FaceObservation

__all__ = ["FEATURES", "NFEAT", "PATCH", "THUMB", "baseline_of", "feature_index", "frame_features",
           "half_change", "shifted_thumbs"]


# -- mesh points ----------------------------------------------------------------------------
_EYE_R = (33, 160, 158, 133, 153, 144)  # corner, upper, upper, corner, lower, lower
_EYE_L = (263, 387, 385, 362, 380, 373)
_BROW_R = (70, 63, 105, 66, 107)
_BROW_L = (300, 293, 334, 296, 336)
_MOUTH_IN = (13, 14)
_MOUTH_CORNERS = (61, 291)

# -- per-frame features ---------------------------------------------------------------------
FEATURES: tuple[str, ...] = (
    "t", "face", "score", "yaw", "pitch", "roll", "ear", "mouth_open", "mouth_width", "brow",
    "size", "cx", "cy", "width", "height",
)
_F = {n: i for i, n in enumerate(FEATURES)}
THUMB = (40, 30)  # grey thumbnail of the whole frame (w, h), for occlusion in fixed image cells
PATCH = THUMB  # kept name: the image part of a feature row
NFEAT = len(FEATURES) + THUMB[0] * THUMB[1]


def _d(p: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(p[a] - p[b]))


def frame_features(obs: FaceObservation, out: np.ndarray | None = None) -> np.ndarray:
    """One row of measures (see module docs) for an observation: ``FEATURES`` then a 40x30
    grey thumbnail of the frame (0..1). Missing values are NaN (no face, no pose, no image)."""
    row = np.full(NFEAT, np.nan, np.float64) if out is None else out
    row[:] = np.nan
    row[_F["t"]] = obs.t
    row[_F["face"]] = 1.0 if obs.face else 0.0
    row[_F["score"]] = obs.score if obs.face else 0.0
    row[_F["width"]], row[_F["height"]] = obs.width, obs.height
    if obs.image is not None:
        grey = cv2.cvtColor(obs.image, cv2.COLOR_RGB2GRAY)
        small = cv2.resize(grey, THUMB, interpolation=cv2.INTER_AREA)
        row[len(FEATURES):] = small.reshape(-1).astype(np.float32) / 255.0
    lm = obs.landmarks
    if not obs.face or lm is None or lm.shape[0] < 468:
        return row
    p = np.asarray(lm, np.float64)
    if obs.pose is not None:
        row[_F["yaw"]], row[_F["pitch"]], row[_F["roll"]] = obs.pose.yaw, obs.pose.pitch, obs.pose.roll
    iod = _d(p, 33, 263)
    if not np.isfinite(iod) or iod < 1e-3:
        return row
    e = _EYE_R
    ear_r = (_d(p, e[1], e[5]) + _d(p, e[2], e[4])) / (2 * max(_d(p, e[0], e[3]), 1e-6))
    e = _EYE_L
    ear_l = (_d(p, e[1], e[5]) + _d(p, e[2], e[4])) / (2 * max(_d(p, e[0], e[3]), 1e-6))
    row[_F["ear"]] = 0.5 * (ear_r + ear_l)
    row[_F["mouth_open"]] = _d(p, *_MOUTH_IN) / iod
    row[_F["mouth_width"]] = _d(p, *_MOUTH_CORNERS) / iod
    mid_r = 0.5 * (p[33] + p[133])
    mid_l = 0.5 * (p[263] + p[362])
    br = np.linalg.norm(p[list(_BROW_R)] - mid_r, axis=1).mean()
    bl = np.linalg.norm(p[list(_BROW_L)] - mid_l, axis=1).mean()
    row[_F["brow"]] = 0.5 * (br + bl) / iod
    row[_F["size"]] = iod
    row[_F["cx"]], row[_F["cy"]] = p[1, 0], p[1, 1]
    return row


def baseline_of(rows: np.ndarray) -> np.ndarray | None:
    """Median of each feature over the rows that have a face (None when fewer than 3)."""
    if rows.shape[0] == 0:
        return None
    face = rows[:, _F["face"]] > 0.5
    ok = face & np.isfinite(rows[:, _F["size"]])
    if ok.sum() < 3:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (e.g. no pose) stay NaN
        base = np.nanmedian(rows[ok], axis=0)
    base[_F["score"]] = float(np.median(rows[face, _F["score"]]))
    return base


def _half_region(base: np.ndarray) -> tuple[int, int, int, int, int] | None:
    """Thumbnail cells (x0, xm, x1, y0, y1) of the face region at its baseline place: nose
    -0.95 .. +0.95 IOD across (split at the nose), -1.1 .. +0.9 IOD down; None if unknown."""
    tw, th = THUMB
    w, h = float(base[_F["width"]]), float(base[_F["height"]])
    cx, cy, iod = float(base[_F["cx"]]), float(base[_F["cy"]]), float(base[_F["size"]])
    if not all(np.isfinite(v) and v > 0 for v in (w, h, iod)) or not np.isfinite(cx + cy):
        return None
    sx, sy = tw / w, th / h
    x0 = int(np.clip(np.floor((cx - 0.95 * iod) * sx), 0, tw - 1))
    xm = int(np.clip(np.round(cx * sx), 1, tw - 1))
    x1 = int(np.clip(np.ceil((cx + 0.95 * iod) * sx), xm + 1, tw))
    y0 = int(np.clip(np.floor((cy - 1.1 * iod) * sy), 0, th - 1))
    y1 = int(np.clip(np.ceil((cy + 0.9 * iod) * sy), y0 + 1, th))
    return x0, xm, x1, y0, y1


def shifted_thumbs(base_thumb: np.ndarray, base: np.ndarray, reach_iod: float) -> np.ndarray:
    """The baseline thumbnail translated by every shift of a grid (0.25 cell steps, up to
    ``reach_iod`` IODs and at most 3 cells each way, bilinear, edges replicated): (S, h, w),
    the unshifted one first. These are the head's rigid moves that :func:`_half_change`
    compensates."""
    tw, th = THUMB
    b = np.asarray(base_thumb, np.float32).reshape(th, tw)
    iod, w = float(base[_F["size"]]), float(base[_F["width"]])
    reach = 0.0
    if np.isfinite(iod) and np.isfinite(w) and w > 0 and reach_iod > 0:
        reach = float(np.clip(reach_iod * iod * tw / w, 0.0, 3.0))
    steps = np.arange(0.25, reach + 1e-9, 0.25)
    grid = np.concatenate([[0.0], steps, -steps])
    out: list[np.ndarray] = [b]
    for dy in grid:
        for dx in grid:
            if dx == 0.0 and dy == 0.0:
                continue
            m = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]], np.float32)
            out.append(cv2.warpAffine(b, m, (tw, th), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE))
    return np.stack(out)


def half_change(thumb: np.ndarray, base_thumb: np.ndarray, base: np.ndarray,
                 shifted: np.ndarray | None = None) -> tuple[float, float]:
    """(image-left half, image-right half) change of the face region *at its baseline place*
    in the frame thumbnail: mean absolute difference from the baseline thumbnail over the
    baseline half's own mean absolute contrast (+ 0.03). Fixed image cells, not cells aligned
    by the current mesh: a hand drags the mesh with it, but not the cells.

    With ``shifted`` (:func:`shifted_thumbs`), the head's rigid move since the baseline is
    compensated first: of all the shifted baselines, the one that explains *one* half best
    (the uncovered half: a hand is not a shifted face) is used for both halves. Head sway
    then no longer raises the uncovered half's change, while a hand still changes its half."""
    reg = _half_region(base)
    if reg is None:
        return float("nan"), float("nan")
    x0, xm, x1, y0, y1 = reg
    tw, th = THUMB
    a = np.asarray(thumb).reshape(th, tw)
    b = np.asarray(base_thumb).reshape(th, tw)
    stack = b[None] if shifted is None else shifted
    out = []
    for xa, xb in ((x0, xm), (xm, x1)):
        if xb - xa < 1:
            return float("nan"), float("nan")
        y = b[y0:y1, xa:xb]
        norm = float(np.abs(y - y.mean()).mean() + 0.03)
        err = np.abs(stack[:, y0:y1, xa:xb] - a[None, y0:y1, xa:xb]).mean(axis=(1, 2))
        out.append(err / norm)
    left, right = out
    k = int(np.argmin(np.minimum(left, right)))
    return float(left[k]), float(right[k])



def feature_index(name: str) -> int:
    """Column of a named feature in a :func:`frame_features` row."""
    return _F[name]
