"""Identity blends made from REAL faces only: what a face swapper leaves, without a swapper.

A swap puts *another person's* inner face, rendered with this person's expression and pose, into
this person's head: colour-matched, often smoother than the camera's own detail, and blended in
through an eroded, feathered mask. ``IdentityBlend.pair`` imitates that from two real crops: the
donor is a crop of another person (another group) with a similar landmark shape, warped
piecewise-linearly over the face mesh onto this face's landmarks (so the expression and outline are
this face's), colour-transferred in Lab (as DeepFaceLive's ``rct``), sometimes smoothed (a
decoder's lost detail), and blended through an eroded, deformed, feathered hull. Unlike
self-blended images (``sbi_data``) the inner and outer face belong to different people.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from models.train.ae_swap import color_transfer
from models.train.sbi_data import deform_mask, hull_mask


class IdentityBlend:
    """``pair(i, rng) -> (real, fake)`` for crop ``i`` of (N, S, S, 3) ``crops`` with (N, 478, 2)
    crop-pixel landmarks; donors come from other ``groups`` only."""

    def __init__(self, crops: np.ndarray, lms: np.ndarray, groups: np.ndarray, k: int = 16) -> None:
        self.crops, self.lms, self.groups = crops, lms, np.asarray(groups)
        self.k = k
        ok = np.isfinite(lms[:, 0, 0])
        self.ok = np.flatnonzero(ok)
        # shape descriptor: every 4th mesh point, centred and scaled
        pts = lms[self.ok][:, :468:4].astype(np.float32)
        pts = pts - pts.mean(1, keepdims=True)
        pts /= np.sqrt((pts**2).sum((1, 2), keepdims=True)) + 1e-6
        self.desc = pts.reshape(len(self.ok), -1)
        s = crops.shape[1]
        self.yy, self.xx = np.mgrid[0:s, 0:s].astype(np.float32)

    def donor(self, i: int, rng: np.random.Generator) -> int:
        pos = int(np.searchsorted(self.ok, i))
        d = ((self.desc - self.desc[pos]) ** 2).sum(1)
        d[self.groups[self.ok] == self.groups[i]] = np.inf
        near = np.argpartition(d, self.k)[: self.k]
        return int(self.ok[rng.choice(near)])

    def warp(self, j: int, i: int) -> np.ndarray:
        """Donor crop ``j`` warped so that its mesh lands on crop ``i``'s mesh."""
        dst, src = self.lms[i, :468].astype(np.float64), self.lms[j, :468].astype(np.float64)
        tri = Delaunay(dst)
        s = self.crops.shape[1]
        q = np.stack([self.xx.ravel(), self.yy.ravel()], 1)
        simplex = tri.find_simplex(q)
        inside = simplex >= 0
        t = tri.transform[simplex[inside]]
        b = np.einsum("nij,nj->ni", t[:, :2], q[inside] - t[:, 2])
        bary = np.c_[b, 1 - b.sum(1)]
        verts = tri.simplices[simplex[inside]]
        mx, my = self.xx.ravel().copy(), self.yy.ravel().copy()  # identity outside the mesh
        mx[inside] = (bary * src[verts, 0]).sum(1)
        my[inside] = (bary * src[verts, 1]).sum(1)
        return cv2.remap(self.crops[j], mx.reshape(s, s).astype(np.float32), my.reshape(s, s).astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    def fake(self, i: int, rng: np.random.Generator) -> np.ndarray:
        crop = self.crops[i]
        s = crop.shape[0]
        src = self.warp(self.donor(i, rng), i)
        base = hull_mask(self.lms[i], s, rng, 0.5)
        k = int(rng.integers(0, 6))
        if k:
            base = cv2.erode(base, np.ones((2 * k + 1, 2 * k + 1), np.uint8))
        src = color_transfer(src, crop, base) if rng.random() < 0.9 else src
        r = rng.random()
        if r < 0.4:  # a decoder's lost detail
            d = max(16, int(s * rng.uniform(0.3, 0.75)))
            src = cv2.resize(cv2.resize(src, (d, d), interpolation=cv2.INTER_AREA), (s, s),
                             interpolation=cv2.INTER_CUBIC)
        elif r < 0.6:
            src = cv2.bilateralFilter(src, 5, rng.uniform(20, 60), rng.uniform(2, 6))
        a = deform_mask(base, rng)[..., None]
        out = crop.astype(np.float32) * (1 - a) + src.astype(np.float32) * a
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)
