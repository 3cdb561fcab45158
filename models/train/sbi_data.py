"""Self-blended images (Shiohara & Yamasaki, CVPR 2022) generated on the fly from REAL faces.

Two parts:

* ``build_cache`` turns real face images into aligned crops (``liveness.tracking.crop.align_crop``, the
  same crop the analyser uses at run time) plus the 478 mesh landmarks in crop coordinates, and
  stores them as ``.npy`` files in an ignored cache folder (never in the repository). Sources:
  UTKFace crops (``../shared/data/faces/utkface``) and frames sampled from the REAL clips of
  ``../shared/data/manifest.csv``. Fake clips are never read here.
* ``SelfBlend`` makes one training pair from one cached crop: the crop itself (label 0) and the
  crop with its own inner face replaced by a transformed copy of itself (label 1). The face
  region is a landmark hull with random deformation and feathering; the copy gets colour,
  brightness, sharpness and JPEG changes, down-up resampling (the resolution gap of 96-160 px
  swappers) and a small affine misalignment. Both images then share the same global
  augmentation (JPEG, rescale, flip), so only the blend tells them apart.

Run ``python -m models.train.sbi_data --out .cache/sbi`` to build the cache (``--faces DIR``:
any folder of face images instead of UTKFace; ``--frames-per-clip N``: also N frames of every
real dev clip).
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liveness.tracking.crop import align_crop, face_oval, transform_points  # noqa: E402

CROP = 128

# Mesh points of the face below the eyebrows' top (for "inner" masks that keep the forehead).
_BROW_TOP = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)


def shared_data() -> Path:
    env = os.environ.get("LIVENESS_SHARED_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


# --------------------------------------------------------------------------------------------
# landmarks
# --------------------------------------------------------------------------------------------
class MeshLandmarker:
    """Detector + mesh on a still image; returns (478, 3) landmarks in image pixels or None."""

    def __init__(self, refine: bool = False) -> None:
        from liveness.tracking.detector import FaceDetector
        from liveness.tracking.mesh import FaceMesh, roi_from_detection, roi_from_landmarks

        self.det = FaceDetector(threads=1, min_score=0.5)
        self.mesh = FaceMesh(threads=1)
        self._roi_det = roi_from_detection
        self._roi_lm = roi_from_landmarks
        self.refine = refine

    def __call__(self, rgb: np.ndarray, pad: int = 0) -> np.ndarray | None:
        img = rgb
        if pad:
            img = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        dets = self.det.detect(img)
        if not dets:
            return None
        d = max(dets, key=lambda d: float(d.box[2] * d.box[3]))
        res = self.mesh.run(img, self._roi_det(d))
        if res.score < 0.5:
            return None
        if self.refine:  # one more pass from the mesh's own ROI
            res2 = self.mesh.run(img, self._roi_lm(res.landmarks))
            if res2.score >= res.score * 0.8:
                res = res2
        lm = np.asarray(res.landmarks, np.float32).copy()
        lm[:, :2] -= pad
        return lm


def _real_clips(data: Path) -> list[dict[str, str]]:
    with open(data / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r["label"] == "real"]  # NEVER the fake clips


def _clip_frames(path: Path, n: int) -> list[np.ndarray]:
    """``n`` frames spread evenly over a clip (RGB)."""
    from liveness.sources.video import open_video

    frames = [f.image for f in open_video(path)]
    if not frames:
        return []
    idx = np.unique(np.linspace(0, len(frames) - 1, n).round().astype(int))
    return [frames[i] for i in idx]


def build_cache(
    out: Path, frames_per_clip: int = 0, limit_utk: int | None = None, faces: Path | None = None
) -> None:
    """UTKFace crops (+ ``frames_per_clip`` frames of every real clip when > 0; the training
    script instead reads the tracked real-clip crops of the dev clips)."""
    data = shared_data()
    face_dir = faces if faces is not None else data / "faces" / "utkface"
    if not face_dir.is_dir():
        raise SystemExit(f"no face images at {face_dir}")
    lmk = MeshLandmarker()
    crops: list[np.ndarray] = []
    lms: list[np.ndarray] = []
    groups: list[str] = []

    def add(rgb: np.ndarray, lm: np.ndarray, group: str) -> None:
        crop, m = align_crop(rgb, lm, CROP)
        crops.append(crop)
        lms.append(transform_points(lm, m))
        groups.append(group)

    utk = sorted(p for p in face_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if limit_utk is not None and len(utk) > limit_utk:  # an even spread over the sorted names
        utk = [utk[i] for i in np.linspace(0, len(utk) - 1, limit_utk).round().astype(int)]
    miss = 0
    for i, p in enumerate(utk):
        bgr = cv2.imread(str(p))
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        lm = lmk(rgb, pad=60)
        if lm is None:
            miss += 1
            continue
        add(rgb, lm, f"utk/{p.stem.split('_')[0]}_{i}")
        if i % 500 == 0:
            print(f"faces {i}/{len(utk)} (no face: {miss})", flush=True)
    print(f"faces: {len(crops)} crops, {miss} without a face", flush=True)
    if frames_per_clip > 0 and not (data / "manifest.csv").is_file():
        frames_per_clip = 0

    for row in _real_clips(data) if frames_per_clip > 0 else []:
        clip = Path(row["path"]).stem
        n0 = len(crops)
        for rgb in _clip_frames(data / row["path"], frames_per_clip):
            lm = lmk(rgb)
            if lm is not None:
                add(rgb, lm, f"clip/{clip}")
        print(f"{clip}: {len(crops) - n0} crops", flush=True)

    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "crops.npy", np.stack(crops))
    np.save(out / "landmarks.npy", np.stack(lms).astype(np.float32))
    np.save(out / "groups.npy", np.asarray(groups))
    print(f"cache: {len(crops)} crops -> {out}", flush=True)


def load_cache(cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.load(cache / "crops.npy"),
        np.load(cache / "landmarks.npy"),
        np.load(cache / "groups.npy"),
    )


# --------------------------------------------------------------------------------------------
# self-blending
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BlendOptions:
    size: int = CROP
    p_inner: float = 0.35  # mask from the face below the brows instead of the whole outline
    downup: tuple[float, float] = (0.35, 1.0)  # source resample factor (96-160 px of a 256 face)
    p_downup: float = 0.7
    shift: float = 0.03  # affine misalignment of the source, fraction of the side
    scale: tuple[float, float] = (0.95, 1.05)
    jpeg: tuple[int, int] = (55, 98)


def _jpeg(img: np.ndarray, q: int) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(q)])
    return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) if ok else img


def ellipse_mask(size: int, rng: np.random.Generator) -> np.ndarray:
    """Rough face mask for crops without landmarks (template-aligned face)."""
    m = np.zeros((size, size), np.float32)
    c = (int(size * (0.5 + rng.uniform(-0.02, 0.02))), int(size * rng.uniform(0.52, 0.56)))
    ax = (int(size * rng.uniform(0.24, 0.29)), int(size * rng.uniform(0.30, 0.36)))
    cv2.ellipse(m, c, ax, 0, 0, 360, 1.0, -1)
    return m


def hull_mask(lm: np.ndarray, size: int, rng: np.random.Generator, p_inner: float) -> np.ndarray:
    """Convex hull of mesh points (whole outline or the face below the brows)."""
    pts = lm[:468, :2]
    if rng.random() < p_inner:
        top = pts[list(_BROW_TOP), 1].mean()
        sel = pts[pts[:, 1] >= top - rng.uniform(0, 0.04) * size]
        pts = sel if len(sel) > 10 else pts
    else:
        pts = pts[face_oval()]
    m = np.zeros((size, size), np.float32)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(m, hull, 1.0)
    return m


@functools.cache
def _grid(s: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    return yy, xx


def deform_mask(m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random elastic deformation, erosion/dilation and feathering of a binary mask."""
    s = m.shape[0]
    # smooth random displacement field
    g = 8
    dx = cv2.resize(rng.normal(0, s * 0.02, (g, g)).astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
    dy = cv2.resize(rng.normal(0, s * 0.02, (g, g)).astype(np.float32), (s, s), interpolation=cv2.INTER_CUBIC)
    yy, xx = _grid(s)
    m = cv2.remap(m, xx + dx, yy + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    k = int(rng.integers(0, 3)) * 2 + 1
    ker = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k + 2, k + 2))
    r = rng.random()
    if r < 0.3:
        m = cv2.erode(m, ker)
    elif r < 0.5:
        m = cv2.dilate(m, ker)
    # feathering: a soft edge of random width
    sig = rng.uniform(0.5, 0.06 * s)
    m = cv2.GaussianBlur(m, (0, 0), sig)
    m = np.clip(m * rng.uniform(1.0, 1.6), 0, 1) if rng.random() < 0.5 else m
    return m


def source_transform(img: np.ndarray, rng: np.random.Generator, o: BlendOptions) -> np.ndarray:
    """Colour / brightness / sharpness / resolution / JPEG / geometry change of the source."""
    s = img.shape[0]
    x = img.astype(np.float32)
    # colour: per-channel gain and shift, hue/saturation nudge
    x = x * rng.uniform(0.9, 1.1, 3).astype(np.float32) + rng.uniform(-12, 12, 3).astype(np.float32)
    x = (x - x.mean()) * rng.uniform(0.85, 1.15) + x.mean() + rng.uniform(-12, 12)
    x = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        hsv = cv2.cvtColor(x, cv2.COLOR_RGB2HSV).astype(np.int16)
        hsv[..., 0] = (hsv[..., 0] + rng.integers(-5, 6)) % 180
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(0.8, 1.2), 0, 255)
        x = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)
    # sharpness: blur or unsharp mask
    r = rng.random()
    if r < 0.35:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.4, 1.3))
    elif r < 0.55:
        b = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.6, 1.5))
        x = cv2.addWeighted(x, 1 + rng.uniform(0.3, 1.0), b, -rng.uniform(0.3, 1.0), 0)
    # resolution gap: down-up sample
    if rng.random() < o.p_downup:
        f = rng.uniform(*o.downup)
        d = max(16, int(round(s * f)))
        x = cv2.resize(x, (d, d), interpolation=cv2.INTER_AREA)
        x = cv2.resize(x, (s, s), interpolation=cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC)
    if rng.random() < 0.3:
        x = _jpeg(x, int(rng.integers(40, 90)))
    # small affine misalignment
    sc = rng.uniform(*o.scale)
    sx, sy = sc * rng.uniform(0.97, 1.03), sc
    tx, ty = rng.uniform(-o.shift, o.shift, 2) * s
    c = s / 2
    m = np.array([[sx, 0, c - sx * c + tx], [0, sy, c - sy * c + ty]], np.float32)
    x = cv2.warpAffine(x, m, (s, s), borderMode=cv2.BORDER_REFLECT)
    return x


class SelfBlend:
    """``pair(crop, landmarks, rng) -> (real, fake, mask)``; uint8 crops of the same size."""

    def __init__(self, options: BlendOptions | None = None) -> None:
        self.o = options or BlendOptions()

    def blend(
        self, crop: np.ndarray, lm: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        s = crop.shape[0]
        base = ellipse_mask(s, rng) if lm is None else hull_mask(lm, s, rng, self.o.p_inner)
        mask = deform_mask(base, rng)
        src = source_transform(crop, rng, self.o)
        ratio = float(rng.choice([0.5, 0.75, 1.0, 1.0, 1.0]))
        a = (mask * ratio)[..., None]
        fake = crop.astype(np.float32) * (1 - a) + src.astype(np.float32) * a
        return np.clip(fake + 0.5, 0, 255).astype(np.uint8), mask * ratio

    def global_aug(
        self, imgs: list[np.ndarray], rng: np.random.Generator, flip: bool = False
    ) -> list[np.ndarray]:
        """Same random global change for every image of a pair (so it cannot tell them apart)."""
        s = imgs[0].shape[0]
        q = int(rng.integers(*self.o.jpeg)) if rng.random() < 0.8 else None
        d = int(s * rng.uniform(0.6, 1.0)) if rng.random() < 0.3 else None
        gain = rng.uniform(0.8, 1.2)
        out = []
        for x in imgs:
            if flip:
                x = x[:, ::-1]
            if d is not None:
                x = cv2.resize(cv2.resize(x, (d, d), interpolation=cv2.INTER_AREA), (s, s))
            x = np.clip(x.astype(np.float32) * gain, 0, 255).astype(np.uint8)
            if q is not None:
                x = _jpeg(np.ascontiguousarray(x), q)
            out.append(np.ascontiguousarray(x))
        return out

    def pair(
        self, crop: np.ndarray, lm: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fake, mask = self.blend(crop, lm, rng)
        flip = bool(rng.random() < 0.5)
        real, fake = self.global_aug([crop, fake], rng, flip)
        return real, fake, (mask[:, ::-1].copy() if flip else mask)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / ".cache" / "sbi")
    ap.add_argument("--faces", type=Path, default=None, help="folder of face images (default: UTKFace)")
    ap.add_argument("--frames-per-clip", type=int, default=0)
    ap.add_argument("--limit-utk", type=int, default=3000, help="N UTKFace files evenly spread")
    a = ap.parse_args(argv)
    build_cache(a.out, a.frames_per_clip, a.limit_utk, a.faces)


if __name__ == "__main__":
    main()
