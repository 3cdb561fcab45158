"""A synthetic talking-head avatar from a single photo, for tests, demos and as an attack sample.

The photo's 478-point face mesh (from our own detector + mesh, or given) becomes a textured 3-D
face: the 468 mesh points plus two rings of head points around the face oval (hair, ears, neck
from the photo), triangulated once in the photo plane. Each frame the points are deformed
(blinks, jaw drop, smile, raised brows), rotated about a neck pivot (yaw/pitch/roll in the
``liveness.tracking.pose`` convention), moved (lean closer) and projected with a pinhole camera; a
vectorised rasteriser fills a triangle-id map back to front (cv2.fillConvexPoly), maps every
covered pixel to the photo through its triangle's affine map and samples it with one
``cv2.remap``. The mouth cavity is painted dark; a hand can cover half the face: a real one
(:class:`~liveness.testing.hand.HandSprite`, cut from a video frame) when one is given, else a
drawn palm and fingers (which the hand tracker does not take for a hand). Ground truth (pose, expression, hand, lean and the current scripted action) is written
per frame beside the video.

Scripts (what the avatar does when) are in :mod:`liveness.testing.script`; clips are written by
:mod:`liveness.testing.clips`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from liveness.core.errors import ConfigError, InputError
from liveness.testing.hand import HandSprite
from liveness.testing.script import AvatarState

__all__ = ["Avatar", "astronaut_photo", "photo_landmarks"]

# -- mesh point groups (MediaPipe topology) -------------------------------------------------
_R_UP0 = (246, 161, 160, 159, 158, 157, 173)
_R_LO0 = (33, 7, 163, 144, 145, 153, 154, 155, 133)
_L_UP0 = (466, 388, 387, 386, 385, 384, 398)
_L_LO0 = (263, 249, 390, 373, 374, 380, 381, 382, 362)
_R_UP1 = (247, 30, 29, 27, 28, 56, 190)
_L_UP1 = (467, 260, 259, 257, 258, 286, 414)
_BROWS = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55, 156, 300, 293, 334, 296, 336, 276, 283, 282,
          295, 285, 383)
_UP_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 78, 191, 80, 81, 82, 13, 312, 311,
           310, 415, 308)
_LO_LIP_OUT = (146, 91, 181, 84, 17, 314, 405, 321, 375)
_LO_LIP_IN = (95, 88, 178, 87, 14, 317, 402, 318, 324)
_INNER_RING = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178,
               88, 95)
_MOUTH_CORNERS = (61, 291, 78, 308)
_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_CHIN = (152, 148, 176, 377, 400, 175, 199, 200, 18, 83, 313, 201, 421, 208, 428, 171, 396, 140,
         369, 32, 262)
_JAW = (149, 150, 136, 172, 378, 379, 365, 397)
_STILL = (1, 2, 4, 5, 6, 168, 197, 195, 98, 327, 234, 454, 93, 323, 132, 361, 10, 151, 9, 8)
_CORNERS = (61, 291, 78, 308, 62, 292, 76, 306, 184, 408, 183, 407)
_FOREHEAD = (10, 338, 297, 332, 284, 109, 67, 103, 54, 151, 108, 69, 104, 68, 337, 299, 333, 298)
_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
         152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

def astronaut_photo() -> np.ndarray:
    """The built-in face photo: NASA's public-domain portrait of astronaut Eileen Collins
    (the 512x512 crop scikit-image ships as ``skimage.data.astronaut()``), packaged as a
    JPEG (quality 90, ``models/convert/astronaut.py --write-jpeg``) so the demo needs nothing
    beyond the runtime dependencies. RGB uint8 (512, 512, 3); a fresh copy on every call."""
    from importlib import resources

    data = resources.files("liveness").joinpath("_data/astronaut.jpg").read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:  # pragma: no cover - a broken installation
        raise InputError("the packaged photo liveness/_data/astronaut.jpg cannot be decoded")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def photo_landmarks(rgb: np.ndarray) -> np.ndarray:
    """478 mesh landmarks (pixels) of the largest face in a photo, by our detector + mesh."""
    from liveness.tracking.detector import FaceDetector
    from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks

    dets = FaceDetector(threads=1, min_score=0.5).detect(rgb)
    if not dets:
        raise InputError("no face found in the avatar photo")
    det = max(dets, key=lambda d: float(d.box[2] * d.box[3]))
    mesh = FaceMesh(threads=1)
    res = mesh.run(rgb, roi_from_detection(det))
    res = mesh.run(rgb, roi_from_landmarks(res.landmarks))  # refine from the mesh's own ROI
    return np.asarray(res.landmarks, np.float32)


def _rbf_weights(p: np.ndarray, ctrl: np.ndarray, sigma: float) -> np.ndarray:
    """(N, K) normalised Gaussian weights times the largest kernel value (decays away)."""
    d2 = ((p[:, None, :2] - p[None, ctrl, :2]) ** 2).sum(-1)
    k = np.exp(-d2 / (2 * sigma * sigma))
    w = k / np.maximum(k.sum(1, keepdims=True), 1e-12) * k.max(1, keepdims=True)
    w[ctrl] = np.eye(len(ctrl))
    return w


class _Deform:
    """Displacement field: control points get given displacements, others follow smoothly."""

    def __init__(self, p: np.ndarray, ctrl: Sequence[int], sigma: float) -> None:
        self.ctrl = np.asarray(ctrl, np.int64)
        self.w = _rbf_weights(p, self.ctrl, sigma).astype(np.float32)

    def __call__(self, disp: np.ndarray) -> np.ndarray:
        return self.w @ disp


def _rot(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation (object → camera, OpenCV axes) matching ``liveness.tracking.pose`` conventions."""
    b, a, g = np.radians(-yaw), np.radians(-pitch), np.radians(-roll)
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return rz @ ry @ rx


class Avatar:
    """A photo turned into a renderable head. ``Avatar.from_photo(rgb)`` (landmarks found by
    our mesh) or ``Avatar(rgb, landmarks)``; :meth:`render` draws one :class:`AvatarState`."""

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray, *, size: tuple[int, int] = (640, 480),
                 face_iod: float | None = None, background: np.ndarray | None = None,
                 hand: HandSprite | None = None) -> None:
        if not isinstance(photo, np.ndarray) or photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise InputError("avatar photo must be an RGB uint8 image (H, W, 3)")
        lm = np.asarray(landmarks, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] != 3:
            raise InputError("avatar landmarks must be (468+, 3)")
        w, h = int(size[0]), int(size[1])
        if w < 64 or h < 64:
            raise ConfigError("avatar frame must be at least 64x64")
        self.photo = np.ascontiguousarray(photo)
        self.hand = hand  # a real hand to cover the face with (else a drawn one)
        self.size = (w, h)
        self.focal = float(max(w, h))
        lm = lm[:468]
        iod = float(np.linalg.norm(lm[33] - lm[263]))
        self.iod_photo = iod
        target = face_iod if face_iod is not None else 0.15 * min(w, h) * 1.2
        self.scale = target / iod

        # head rings around the face oval (hair, ears, neck from the photo)
        oval = lm[list(_OVAL)]
        c = oval[:, :2].mean(0)
        rings = []
        for f, dz in ((1.22, 0.35), (1.5, 0.75)):
            r = np.empty_like(oval)
            r[:, :2] = c + (oval[:, :2] - c) * f
            r[:, 2] = oval[:, 2] + dz * iod
            rings.append(r)
        pts = np.concatenate([lm, *rings], 0)
        self.n_mesh = 468
        from scipy.spatial import Delaunay

        tri = Delaunay(pts[:, :2]).simplices.astype(np.int32)
        a = pts[tri[:, 1], :2] - pts[tri[:, 0], :2]
        b = pts[tri[:, 2], :2] - pts[tri[:, 0], :2]
        area = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        keep = np.abs(area) > 1e-3
        tri, area = tri[keep], area[keep]
        flip = area < 0
        tri[flip] = tri[flip][:, [0, 2, 1]]  # all counter-clockwise... in image coords (y down)
        self.tri = tri
        self.src = pts[:, :2].astype(np.float32)  # texture coordinates in the photo
        st = self.src[tri]
        self._s0, self._s1, self._s2 = st[:, 0], st[:, 1], st[:, 2]
        self._table = np.zeros((len(tri) + 1, 10), np.float32)
        self._table[:-1, 6:8] = st.min(1)
        self._table[:-1, 8:10] = st.max(1)
        self._table[-1, 2] = self._table[-1, 5] = -1.0
        self._gy, self._gx = np.mgrid[0:h, 0:w].astype(np.float32)

        # model coordinates: photo pixels about the neck pivot, scaled to the output
        pivot = np.array([c[0], c[1] + 0.45 * iod, float(np.median(lm[:, 2])) + 1.1 * iod])
        self.model = ((pts - pivot) * self.scale).astype(np.float64)
        self.iod = float(np.linalg.norm(self.model[33] - self.model[263]))
        m = self.model
        self._blink_r = _Deform(m, list(_R_UP0) + list(_R_LO0) + list(_R_UP1), 0.10 * self.iod)
        self._blink_l = _Deform(m, list(_L_UP0) + list(_L_LO0) + list(_L_UP1), 0.10 * self.iod)
        self._mouth = _Deform(m, list(_LO_LIP_OUT) + list(_LO_LIP_IN) + list(_CHIN) + list(_JAW)
                              + list(_MOUTH_CORNERS) + [p for p in _UP_LIP if p not in _MOUTH_CORNERS]
                              + list(_STILL), 0.22 * self.iod)
        self._smile = _Deform(m, list(_CORNERS) + [0, 13, 14, 17] + list(_STILL), 0.22 * self.iod)
        self._brows = _Deform(m, list(_BROWS) + list(_FOREHEAD) + list(_R_UP0) + list(_R_LO0)
                              + list(_L_UP0) + list(_L_LO0) + [1, 4, 5, 6], 0.18 * self.iod)
        self._lower_lid_y_r = self._lid_fn(_R_LO0)
        self._lower_lid_y_l = self._lid_fn(_L_LO0)
        skin = self.photo[int(lm[50, 1]) - 2:int(lm[50, 1]) + 3, int(lm[50, 0]) - 2:int(lm[50, 0]) + 3]
        self.skin = np.median(skin.reshape(-1, 3), 0).astype(np.float32) if skin.size else np.array([200, 160, 140], np.float32)
        self.background = self._background() if background is None else self._check_bg(background)
        self._ids = np.full((h, w), -1, np.int32)

    @classmethod
    def from_photo(cls, photo: np.ndarray, landmarks: np.ndarray | None = None, **kw: Any) -> Avatar:
        return cls(photo, photo_landmarks(photo) if landmarks is None else landmarks, **kw)

    @classmethod
    def astronaut(cls, **kw: Any) -> Avatar:
        """The avatar of :func:`astronaut_photo` (public-domain NASA portrait)."""
        return cls.from_photo(astronaut_photo(), **kw)

    def _check_bg(self, bg: np.ndarray) -> np.ndarray:
        w, h = self.size
        if bg.shape != (h, w, 3) or bg.dtype != np.uint8:
            raise InputError(f"background must be uint8 ({h}, {w}, 3)")
        return bg

    def _background(self) -> np.ndarray:
        """A plain room: a vertical gradient wall, a shelf and a door frame."""
        w, h = self.size
        y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        wall = (np.array([205, 198, 185], np.float32) * (1 - 0.25 * y)).repeat(w, 1)
        bg = np.ascontiguousarray(wall.astype(np.uint8))
        cv2.rectangle(bg, (int(0.05 * w), int(0.15 * h)), (int(0.2 * w), int(0.95 * h)), (140, 110, 80), 6)
        cv2.rectangle(bg, (int(0.72 * w), int(0.25 * h)), (int(0.98 * w), int(0.29 * h)), (120, 90, 60), -1)
        for i in range(5):
            x = int(0.74 * w + i * 0.045 * w)
            cv2.rectangle(bg, (x, int(0.14 * h)), (x + int(0.03 * w), int(0.25 * h)),
                          (60 + 35 * i, 90, 150 - 20 * i), -1)
        return bg

    def _lid_fn(self, lower: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        p = self.model[list(lower)]
        o = np.argsort(p[:, 0])
        return p[o, 0], p[o, 1]

    # -- geometry ------------------------------------------------------------------------
    def deformed(self, s: AvatarState) -> np.ndarray:
        """Model points (N, 3) after the expression of ``s`` (before pose)."""
        p = self.model.copy()
        io = self.iod
        if s.blink > 0:
            for d, up, lo, _up1, lid in ((self._blink_r, _R_UP0, _R_LO0, _R_UP1, self._lower_lid_y_r),
                                        (self._blink_l, _L_UP0, _L_LO0, _L_UP1, self._lower_lid_y_l)):
                disp = np.zeros((len(d.ctrl), 3))
                ux = self.model[list(up), 0]
                target = np.interp(ux, *lid)
                dy = (target - self.model[list(up), 1]) * s.blink
                disp[: len(up), 1] = dy
                disp[len(up) + len(lo):, 1] = 0.45 * dy
                p += d(disp)
        if s.mouth > 0:
            dd = 0.22 * io * s.mouth  # the mesh reads wider jaw drops of this renderer poorly
            k = self._mouth.ctrl
            disp = np.zeros((len(k), 3))
            n1 = len(_LO_LIP_OUT) + len(_LO_LIP_IN) + len(_CHIN)
            disp[:n1, 1] = dd
            disp[:n1, 2] = 0.15 * dd
            disp[n1:n1 + len(_JAW), 1] = 0.5 * dd
            n2 = n1 + len(_JAW)
            cx = float(self.model[[61, 291], 0].mean())
            side = np.sign(self.model[list(_MOUTH_CORNERS), 0] - cx)
            disp[n2:n2 + len(_MOUTH_CORNERS), 0] = -side * 0.08 * io * s.mouth
            disp[n2:n2 + len(_MOUTH_CORNERS), 1] = 0.3 * dd
            p += self._mouth(disp)
        if s.smile > 0:
            k = self._smile.ctrl
            disp = np.zeros((len(k), 3))
            cx = float(self.model[[61, 291], 0].mean())
            side = np.sign(self.model[list(_CORNERS), 0] - cx)
            disp[: len(_CORNERS), 0] = side * 0.11 * io * s.smile
            disp[: len(_CORNERS), 1] = -0.07 * io * s.smile
            p += self._smile(disp)
        if s.brows > 0:
            k = self._brows.ctrl
            disp = np.zeros((len(k), 3))
            disp[: len(_BROWS), 1] = -0.17 * io * s.brows
            disp[len(_BROWS):len(_BROWS) + len(_FOREHEAD), 1] = -0.07 * io * s.brows
            p += self._brows(disp)
        return p

    def project(self, s: AvatarState) -> tuple[np.ndarray, np.ndarray]:
        """(N, 2) image points and (N,) camera depths of the posed, deformed model."""
        w, h = self.size
        r = _rot(s.yaw, s.pitch, s.roll)
        z0 = self.focal / (1.0 + 0.4 * s.lean)
        q = self.deformed(s) @ r.T
        q[:, 2] += z0
        q[:, 0] += s.tx
        q[:, 1] += s.ty + 0.06 * h
        z = np.maximum(q[:, 2], 1.0)
        uv = np.empty((len(q), 2))
        uv[:, 0] = self.focal * q[:, 0] / z + w / 2
        uv[:, 1] = self.focal * q[:, 1] / z + h / 2
        return uv, z

    def landmarks(self, s: AvatarState) -> np.ndarray:
        """Ground-truth (478, 3) landmarks in MediaPipe's layout: x, y image pixels, z depth in
        the same pixel scale relative to the face centre; the 10 iris points sit at the eye
        centres (468 = right-eye centre ring, 473 = left)."""
        uv, z = self.project(s)
        out = np.zeros((478, 3), np.float32)
        out[:468, :2] = uv[:468]
        zc = z[:468]
        out[:468, 2] = (zc - zc.mean()) * self.focal / zc.mean()
        for base, eye in ((468, _R_UP0 + _R_LO0), (473, _L_UP0 + _L_LO0)):
            out[base:base + 5] = out[list(eye)].mean(0)
        return out

    def observation(self, s: AvatarState, t: float, frame_index: int = -1, *,
                    image: bool = False) -> Any:
        """A :class:`~liveness.FaceObservation` straight from the ground truth (no tracker):
        landmarks, box, pose = the scripted angles, score 0.99; with the rendered frame when
        ``image`` (needed by the occlusion check)."""
        from liveness.core.types import FaceObservation, HeadPose

        lm = self.landmarks(s)
        w, h = self.size
        lo, hi = lm[:468, :2].min(0), lm[:468, :2].max(0)
        box = np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)
        pose = HeadPose(s.yaw, s.pitch, s.roll, np.zeros(3), np.array([0.0, 0.0, 60.0]))
        img = self.render(s)[0] if image else None
        return FaceObservation(t, frame_index, w, h, True, 1, box, lm, 0.99, pose, None, image=img)

    # -- rendering -----------------------------------------------------------------------
    def render(self, s: AvatarState) -> tuple[np.ndarray, dict[str, Any]]:
        """RGB uint8 frame of ``s`` and its ground truth (state, face box, 468 landmarks)."""
        w, h = self.size
        uv, z = self.project(s)
        tri = self.tri
        a = uv[tri[:, 1]] - uv[tri[:, 0]]
        b = uv[tri[:, 2]] - uv[tri[:, 0]]
        area = a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]
        vis = area > 0.05  # back faces (and slivers) turned away are culled
        order = np.nonzero(vis)[0]
        order = order[np.argsort(-z[tri[order]].mean(1))]  # far to near
        ids = self._ids
        ids.fill(-1)
        fx = np.round(uv * 16).astype(np.int32)
        for k in order:
            cv2.fillConvexPoly(ids, fx[tri[k]], int(k), cv2.LINE_8, 4)
        out = self.background.copy()
        lo = np.clip(np.floor(uv.min(0)).astype(int) - 1, 0, [w - 1, h - 1])
        hi = np.clip(np.ceil(uv.max(0)).astype(int) + 2, 1, [w, h])
        sub = ids[lo[1]:hi[1], lo[0]:hi[0]]
        # per-triangle affine (image → photo) from barycentric coordinates, as a lookup table
        # indexed by the id map (row -1 = background)
        p0, p1, p2 = uv[tri[:, 0]], uv[tri[:, 1]], uv[tri[:, 2]]
        e1, e2 = p1 - p0, p2 - p0
        det = np.where(vis, area, 1.0)
        a1, b1 = e2[:, 1] / det, -e2[:, 0] / det
        a2, b2 = -e1[:, 1] / det, e1[:, 0] / det
        c1 = -(a1 * p0[:, 0] + b1 * p0[:, 1])
        c2 = -(a2 * p0[:, 0] + b2 * p0[:, 1])
        s0, s1, s2 = self._s0, self._s1, self._s2
        table = self._table
        for j in range(2):
            d1, d2 = s1[:, j] - s0[:, j], s2[:, j] - s0[:, j]
            table[:-1, 3 * j] = d1 * a1 + d2 * a2
            table[:-1, 3 * j + 1] = d1 * b1 + d2 * b2
            table[:-1, 3 * j + 2] = s0[:, j] + d1 * c1 + d2 * c2
        coef = table[sub]  # (h, w, 11)
        gx = self._gx[lo[1]:hi[1], lo[0]:hi[0]]
        gy = self._gy[lo[1]:hi[1], lo[0]:hi[0]]
        mapx = coef[..., 0] * gx + coef[..., 1] * gy + coef[..., 2]
        mapy = coef[..., 3] * gx + coef[..., 4] * gy + coef[..., 5]
        # slivers have ill-conditioned maps: keep their samples inside their own triangle's box
        np.clip(mapx, coef[..., 6], coef[..., 8], out=mapx)
        np.clip(mapy, coef[..., 7], coef[..., 9], out=mapy)
        tex = cv2.remap(self.photo, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        region = out[lo[1]:hi[1], lo[0]:hi[0]]
        mask = (sub >= 0).view(np.uint8)
        cv2.copyTo(tex, mask, region)
        if s.mouth > 0.15:
            # mouth cavity: dark, with the upper teeth showing under the upper lip
            ring = np.round(uv[list(_INNER_RING)] * 16).astype(np.int32)
            cv2.fillPoly(out, [ring], (45, 18, 22), cv2.LINE_AA, 4)
            up = uv[list(_UPPER_INNER)]
            gap = float(np.linalg.norm(uv[13] - uv[14]))
            teeth = np.concatenate([up, up[::-1] + [0.0, min(0.09 * self.iod, 0.35 * gap)]])
            cv2.fillPoly(out, [np.round(teeth * 16).astype(np.int32)], (228, 222, 210), cv2.LINE_AA, 4)
        hand_lm = np.full((21, 2), np.nan, np.float32)
        if s.hand > 0 and self.hand is not None:
            out, hand_lm = self.hand.cover(out, uv[: self.n_mesh], s.hand, s.hand_side)
        elif s.hand > 0:
            hand_lm = self._draw_hand(out, uv, s)
        box = np.concatenate([uv[: self.n_mesh].min(0), uv[: self.n_mesh].max(0) - uv[: self.n_mesh].min(0)])
        gt = {**s.to_dict(), "box": [round(float(v), 1) for v in box]}
        return out, {**gt, "_landmarks": uv[: self.n_mesh].astype(np.float32), "_hand_landmarks": hand_lm}

    def _draw_hand(self, img: np.ndarray, uv: np.ndarray, s: AvatarState) -> np.ndarray:
        """A flat hand, fingers up, sliding in from the side to cover one half of the face;
        returns where its 21 hand landmarks (MediaPipe order) would lie."""
        face = uv[: self.n_mesh]
        c = face.mean(0)
        fw = float(np.ptp(face[:, 0]))
        fh = float(np.ptp(face[:, 1]))
        side = 1 if s.hand_side >= 0 else -1
        # covering position: palm centre on the middle of that half
        x_cover = c[0] + side * 0.24 * fw
        x_away = c[0] + side * 1.6 * fw
        x = x_away + (x_cover - x_away) * min(1.0, s.hand)
        y = c[1] + 0.05 * fh
        pw, ph = 0.56 * fw, 0.78 * fh
        col = np.clip(self.skin * np.array([1.12, 0.98, 0.92]), 0, 255)  # a palm, lighter than the face
        dark = tuple(int(v) for v in col * 0.72)
        colt = tuple(int(v) for v in col)
        palm = cv2.ellipse2Poly((int(x), int(y + 0.12 * ph)), (int(pw / 2), int(ph / 2)), 0, 0, 360, 10)
        cv2.fillConvexPoly(img, np.asarray(palm, np.int32), colt, cv2.LINE_AA)
        fwid = pw / 4.0
        for i in range(4):  # fingers, side by side, up over the brow
            fx0 = x - pw / 2 + fwid * (0.5 + i)
            top = y - ph * (0.62 + 0.1 * (1.5 - abs(i - 1.5)))
            cv2.line(img, (int(fx0), int(y)), (int(fx0), int(top)), colt, int(max(3, fwid * 1.05)), cv2.LINE_AA)
            cv2.line(img, (int(fx0 + fwid * 0.5), int(y - 0.05 * ph)), (int(fx0 + fwid * 0.5), int(top + fwid)),
                     dark, 1, cv2.LINE_AA)
        thumb_x = x - side * pw * 0.55
        cv2.line(img, (int(x - side * pw * 0.2), int(y + 0.3 * ph)), (int(thumb_x), int(y - 0.05 * ph)),
                 colt, int(max(3, fwid * 1.05)), cv2.LINE_AA)
        f = np.linspace(0.0, 1.0, 4)[:, None]
        lm = [np.array([[x, y + 0.6 * ph]])]
        lm.append(np.array([x - side * pw * 0.2, y + 0.3 * ph]) * (1 - f) + np.array([thumb_x, y - 0.05 * ph]) * f)
        for i in (range(4) if side > 0 else range(3, -1, -1)):  # index finger next to the thumb
            fx0 = x - pw / 2 + fwid * (0.5 + i)
            top = y - ph * (0.62 + 0.1 * (1.5 - abs(i - 1.5)))
            lm.append(np.c_[np.full(4, fx0), y + (top - y) * f[:, 0]])
        return np.concatenate(lm).astype(np.float32)
