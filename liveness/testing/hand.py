"""A real hand for the synthetic scenes: cut out of a video frame where the hand tracker finds it,
pasted (scaled, turned, moved) over a face, and the swap attack that paints the face back over it.

:class:`HandSprite` holds the hand's pixels, a feathered alpha mask and its 21 landmarks. The
mask is the hand's shape drawn from its landmarks (palm polygon, each finger a thick polyline,
dilated) intersected with a skin-colour range (YCrCb), so the background around the fingers
stays behind. :meth:`HandSprite.cover` places it as a person covering one half of the face does
(palm on the middle of that half, fingers up, the hand as long as the face is high) and returns
where the hand's landmarks went.

:func:`paint_face_over_hand` is the swap-over-hand attack of a face swapper without an occlusion
mask: the face's own texture (a rendering or a frame of the same face *without* the hand)
re-pasted over the hand inside the face's oval, feathered, so the fingers that reach past the
face stay and the hand vanishes where it lies on the face.

The default hand is the image-right hand of frame 110 of ``video/real/dfl_Nicola_Badge_1.mp4``
in the dev data (``../shared/data``, third-party footage, read at run time and never stored).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from liveness.challenges.occlusion import hand_shape_mask
from liveness.core.errors import InputError

__all__ = ["DEV_HAND", "HandSprite", "face_oval_mask", "paint_face_over_hand"]

#: (clip under the dev data, frame index, which hand: "right" = the one further to the image right)
DEV_HAND = ("video/real/dfl_Nicola_Badge_1.mp4", 110, "right")

_PALM_CENTRE = (0, 5, 9, 13, 17)


def _hand_shape(shape: tuple[int, int], lm: np.ndarray) -> np.ndarray:
    """uint8 mask of a hand's shape drawn from its 21 landmarks (pixels), a little dilated."""
    return cv2.dilate(hand_shape_mask(shape, lm), np.ones((5, 5), np.uint8))


@dataclass(frozen=True, eq=False)
class HandSprite:
    """A hand cut out of an image: ``rgb`` (h, w, 3) uint8, ``alpha`` (h, w) float32 0..1
    (feathered), ``landmarks`` (21, 2) in the cut's pixels (MediaPipe hand order)."""

    rgb: np.ndarray
    alpha: np.ndarray
    landmarks: np.ndarray

    @classmethod
    def cut(cls, image: np.ndarray, landmarks: np.ndarray, feather_px: float = 1.5) -> HandSprite:
        """The hand whose 21 landmarks (image pixels, x/y first) are given, cut out of ``image``."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise InputError("image must be RGB uint8 (H, W, 3)")
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] != 21 or lm.shape[1] < 2 or not np.all(np.isfinite(lm[:, :2])):
            raise InputError("landmarks must be (21, 2+) finite hand points")
        lm = lm[:, :2]
        h, w = image.shape[:2]
        pad = int(np.ceil(np.ptp(lm, axis=0).max())) + 8
        whole = _hand_shape((h + 2 * pad, w + 2 * pad), lm + pad) > 0
        if whole[pad:pad + h, pad:pad + w].sum() < 0.95 * whole.sum():
            raise InputError("the hand is cut by the image's edge")
        shape = _hand_shape((h, w), lm)
        ycc = cv2.cvtColor(image, cv2.COLOR_RGB2YCrCb)
        skin = ((ycc[..., 1] >= 133) & (ycc[..., 1] <= 180) & (ycc[..., 2] >= 77) & (ycc[..., 2] <= 135))
        m = cv2.morphologyEx(np.where(skin, shape, 0).astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, lab, stats, _ = cv2.connectedComponentsWithStats(m)
        if n < 2:
            raise InputError("no skin-coloured hand pixels under the landmarks")
        m = np.where(lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA])), 255, 0).astype(np.uint8)
        ys, xs = np.nonzero(m)
        pad = 4
        x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
        y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
        alpha = cv2.GaussianBlur(m[y0:y1, x0:x1].astype(np.float32) / 255.0, (0, 0), feather_px)
        return cls(np.ascontiguousarray(image[y0:y1, x0:x1]), alpha, (lm - [x0, y0]).astype(np.float32))

    @classmethod
    def from_dev_data(cls, data: str | Path, clip: str = DEV_HAND[0], index: int = DEV_HAND[1],
                      which: str = DEV_HAND[2]) -> HandSprite:
        """The hand the hand tracker finds on frame ``index`` of ``clip`` in the dev data
        (``which``: "right" or "left" = the hand further to that side of the image)."""
        from liveness.sources.video import open_video
        from liveness.tracking.hands import HandOptions, HandTracker

        path = Path(data) / clip
        if not path.is_file():
            raise InputError(f"dev clip {path} is absent")
        frame = next((f.image for f in open_video(path) if f.index == index), None)
        if frame is None:
            raise InputError(f"{path} has no frame {index}")
        hands = HandTracker(HandOptions(max_hands=2)).process(frame, 0.0).hands
        if not hands:
            raise InputError(f"no hand found on frame {index} of {path}")
        x = [float(hd.landmarks[:, 0].mean()) for hd in hands]
        pick = hands[int(np.argmax(x) if which == "right" else np.argmin(x))]
        return cls.cut(frame, pick.landmarks)

    # -- geometry ---------------------------------------------------------------------------
    @property
    def length(self) -> float:
        """Wrist to middle fingertip, pixels."""
        return float(np.linalg.norm(self.landmarks[12] - self.landmarks[0]))

    @property
    def angle(self) -> float:
        """Direction of wrist -> middle-finger base, degrees on screen (0 = fingers up,
        positive = clockwise)."""
        d = self.landmarks[9] - self.landmarks[0]
        return float(np.degrees(np.arctan2(d[0], -d[1])))

    def matrix(self, centre: tuple[float, float], length: float, angle: float = 0.0) -> np.ndarray:
        """2x3 affine (cut pixels -> image pixels) that puts the palm centre at ``centre``, the
        hand ``length`` pixels long (wrist -> middle tip), pointing ``angle`` degrees (0 = up,
        clockwise positive). ``length`` < 0 mirrors the hand (the other hand)."""
        s = abs(length) / max(self.length, 1e-6)
        rot = np.radians(angle - self.angle)
        c, sn = np.cos(rot) * s, np.sin(rot) * s
        a = np.array([[c, -sn], [sn, c]])
        if length < 0:  # mirror about the hand's own axis
            ax = np.radians(self.angle)
            u = np.array([np.sin(ax), -np.cos(ax)])
            a = a @ (2 * np.outer(u, u) - np.eye(2))
        p = self.landmarks[list(_PALM_CENTRE)].mean(0).astype(np.float64)
        t = np.asarray(centre, np.float64) - a @ p
        return np.concatenate([a, t[:, None]], 1)

    def paste(self, image: np.ndarray, matrix: np.ndarray, opacity: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``image`` with the hand pasted by the 2x3 ``matrix`` (a new array), and the hand's 21
        landmarks in the image."""
        h, w = image.shape[:2]
        m = np.asarray(matrix, np.float64)
        rgb = cv2.warpAffine(self.rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a = cv2.warpAffine(self.alpha, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
        a = (np.clip(a, 0.0, 1.0) * float(opacity))[..., None]
        out = (image.astype(np.float32) * (1.0 - a) + rgb.astype(np.float32) * a + 0.5).astype(np.uint8)
        lm = np.c_[self.landmarks, np.ones(21)] @ m.T
        return out, lm.astype(np.float32)

    def cover_matrix(self, face: np.ndarray, amount: float, side: int, *, reach: float = 1.0,
                     tilt: float = 0.0, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """Where a hand covering one half of the face lies: ``face`` the face's points (N, 2+),
        ``amount`` 0 (beside the face) .. 1 (palm on the middle of the ``side`` half: +1 =
        image right), the hand ``reach`` x the face's height long, ``tilt`` degrees off upright
        (towards the face's middle when positive), ``offset`` in face widths / heights."""
        p = np.asarray(face, np.float64)[:, :2]
        c = p.mean(0)
        fw, fh = float(np.ptp(p[:, 0])), float(np.ptp(p[:, 1]))
        sd = 1 if side >= 0 else -1
        x_cover, x_away = c[0] + sd * 0.24 * fw, c[0] + sd * 1.6 * fw
        x = x_away + (x_cover - x_away) * float(np.clip(amount, 0.0, 1.0)) + offset[0] * fw
        y = c[1] + 0.12 * fh + offset[1] * fh
        # the dev hand is a right hand seen from the front: mirrored for the image-left side
        return self.matrix((x, y), (1 if sd > 0 else -1) * reach * fh, -sd * tilt)

    def cover(self, image: np.ndarray, face: np.ndarray, amount: float, side: int,
              **kw: Any) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`paste` at :meth:`cover_matrix` (nothing pasted when ``amount`` <= 0)."""
        if amount <= 0:
            return image, np.full((21, 2), np.nan, np.float32)
        return self.paste(image, self.cover_matrix(face, amount, side, **kw))


def face_oval_mask(shape: tuple[int, int], face: np.ndarray, feather_px: float = 0.0) -> np.ndarray:
    """float32 (h, w) mask 0..1 of the convex hull of the face points (N, 2+), feathered by a
    Gaussian of ``feather_px`` inside the hull's edge (0 outside the hull)."""
    pts = np.round(np.asarray(face, np.float64)[:, :2]).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(m, cv2.convexHull(pts), 255)
    out = m.astype(np.float32) / 255.0
    if feather_px > 0:
        k = max(1, int(round(2 * feather_px)))
        inner = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
        out = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), feather_px) * out
    return out


def paint_face_over_hand(covered: np.ndarray, face_only: np.ndarray, face: np.ndarray,
                         feather_px: float = 4.0) -> np.ndarray:
    """The swap-over-hand attack: ``face_only`` (the same face without the hand, e.g. the
    swapper's rendering of it) pasted over ``covered`` inside the face's oval (the hull of
    ``face`` points), feathered by ``feather_px``. Outside the oval ``covered`` is unchanged."""
    if covered.shape != face_only.shape or covered.dtype != np.uint8 or face_only.dtype != np.uint8:
        raise InputError("covered and face_only must be uint8 images of one shape")
    a = face_oval_mask(covered.shape[:2], face, feather_px)[..., None]
    return (covered.astype(np.float32) * (1.0 - a) + face_only.astype(np.float32) * a + 0.5).astype(np.uint8)
