"""Converted face models: parity with the original tflite outputs, and detector/mesh behaviour."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from liveness.core.errors import ConfigError, InputError
from liveness.core.registry import MODELS, data_path, model_path, ort_session
from liveness.tracking.detector import DETECTOR_MODELS, FaceDetector, ssd_anchors
from liveness.tracking.mesh import (
    FaceMesh,
    MeshResult,
    Roi,
    roi_from_detection,
    roi_from_landmarks,
)

REF = Path(__file__).resolve().parents[2] / "models" / "reference"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return skdata.astronaut()


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector(threads=1)


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh(threads=1)


def _run(name: str, x: np.ndarray) -> dict[str, np.ndarray]:
    sess = ort_session(name, 1)
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {MODELS[name].input_name: x}), strict=True))


PARITY_MODELS = ["face_detector", "face_mesh", "face_detector_full", "palm_detector_lite",
                 "palm_detector_full", "hand_landmark_lite", "hand_landmark_full"]


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_parity_with_tflite_reference(name):
    """ONNX outputs vs the original model's outputs recorded at conversion time (TFLite
    interpreter for the detector, MediaPipe's runtime with its custom ops for the mesh)."""
    ref = np.load(REF / f"{name}.npz")
    div, off = (float(v) for v in ref["input_scaling"])
    x = (ref["input_u8"].astype(np.float32) / np.float32(div) + np.float32(off))[None]
    assert x.shape == MODELS[name].input_shape
    got = _run(name, x)
    compared = 0
    for k, v in got.items():
        if k not in ref.files:
            continue
        diff = np.abs(v.reshape(-1) - ref[k].reshape(-1)).max()
        assert diff < 1e-3, f"{name}.{k}: max diff {diff}"
        compared += 1
    assert compared == len(got)


def test_registry_checks_files():
    for name in PARITY_MODELS:
        spec = MODELS[name]
        p = model_path(name)
        assert p.name == spec.filename
        sess = ort_session(name, 1)
        inp = sess.get_inputs()[0]
        assert inp.name == spec.input_name
        assert tuple(inp.shape) == spec.input_shape


def test_canonical_face():
    d = np.load(data_path("canonical_face.npz"))
    v, tri, uv = d["vertices"], d["triangles"], d["uv"]
    assert v.shape == (468, 3) and v.dtype == np.float32
    assert uv.shape == (468, 2) and uv.dtype == np.float32
    assert tri.ndim == 2 and tri.shape[1] == 3 and tri.dtype == np.int32
    assert tri.min() >= 0 and tri.max() < 468
    # centimetres: a face is ~15 cm wide; symmetric about x = 0 (33 <-> 263 outer eye corners)
    assert 10 < v[:, 0].max() - v[:, 0].min() < 20
    assert v[33, 0] == pytest.approx(-v[263, 0], abs=1e-4)
    assert v[33, 1] == pytest.approx(v[263, 1], abs=1e-4)
    assert np.all((uv >= 0) & (uv <= 1))


def test_anchors():
    a = ssd_anchors()
    assert a.shape == (896, 2)
    assert np.all((a > 0) & (a < 1))
    # 16x16 grid, 2 anchors per cell, then 8x8, 6 per cell; row-major, a cell's anchors together
    assert np.allclose(a[0], a[1]) and np.allclose(a[0], [0.5 / 16, 0.5 / 16])
    assert np.allclose(a[2], [1.5 / 16, 0.5 / 16]) and np.allclose(a[32], [0.5 / 16, 1.5 / 16])
    assert np.allclose(a[512:518], [0.5 / 8, 0.5 / 8]) and np.allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_full_range_anchors():
    """Full range: one layer, stride 4 on the 192-px input, one anchor per cell: a 48x48 grid."""
    spec = DETECTOR_MODELS["full_range"]
    a = ssd_anchors(spec.input_size, spec.layout)
    assert a.shape == (2304, 2)
    grid = a.reshape(48, 48, 2)
    assert np.allclose(grid[0, :, 0], (np.arange(48) + 0.5) / 48)
    assert np.allclose(grid[:, 0, 1], (np.arange(48) + 0.5) / 48)
    assert np.allclose(grid[:, :, 0], grid[0:1, :, 0]) and np.allclose(grid[:, :, 1], grid[:, 0:1, 1])
    sess = ort_session("face_detector_full", 1)
    assert [tuple(o.shape) for o in sess.get_outputs()] == [(1, 2304, 16), (1, 2304, 1)]


class _FakeSession:
    """Stands in for the ORT session: one anchor scores, with given regressors."""

    def __init__(self, n: int, anchor: int, reg: np.ndarray) -> None:
        self.reg = np.zeros((1, n, 16), np.float32)
        self.reg[0, anchor] = reg
        self.cls = np.full((1, n, 1), -20.0, np.float32)
        self.cls[0, anchor, 0] = 4.0

    def get_inputs(self):
        return [type("I", (), {"name": "input"})()]

    def run(self, _names, _feed):
        return [self.reg, self.cls]


@pytest.mark.parametrize("model", ["short_range", "full_range"])
def test_detector_decoding_maps_anchor_offsets_to_image_pixels(model):
    """Regressors are input-pixel offsets from the anchor centre; the box comes back in image
    pixels through the letterbox (a 400x300 frame, a region of a larger frame)."""
    det = FaceDetector(model=model, min_score=0.5)
    s = det.input_size
    spec = DETECTOR_MODELS[model]
    anchors = ssd_anchors(spec.input_size, spec.layout)
    k = len(anchors) // 3 + 5
    reg = np.zeros(16, np.float32)
    reg[:4] = [3.0, -2.0, 20.0, 16.0]  # centre offset (x, y), width, height in input px
    reg[4:] = np.tile([1.0, 1.5], 6)
    det._sess = _FakeSession(len(anchors), k, reg)
    det._input_name = "input"
    frame = np.zeros((300, 400, 3), np.uint8)
    scale, pad_y = s / 400, (s - round(300 * s / 400)) // 2
    for region, (ox, oy) in ((None, (0, 0)), ((50, 40, 400, 300), (50, 40))):
        img = frame if region is None else np.zeros((500, 600, 3), np.uint8)
        (d,) = det.detect(img, region=region)
        cx = (anchors[k, 0] * s + 3.0) / scale + ox
        cy = (anchors[k, 1] * s - 2.0 - pad_y) / (round(300 * s / 400) / 300) + oy
        assert d.box[0] + d.box[2] / 2 == pytest.approx(cx, abs=0.05)
        assert d.box[1] + d.box[3] / 2 == pytest.approx(cy, abs=0.05)
        assert d.box[2] == pytest.approx(20.0 / scale, rel=1e-4)
        assert d.box[3] == pytest.approx(16.0 / (round(300 * s / 400) / 300), rel=1e-4)
        assert d.score == pytest.approx(1 / (1 + math.exp(-4.0)), rel=1e-5)


class _WarpLetterbox(FaceDetector):
    """MediaPipe's own preprocessing: one bilinear warp of the frame into the letterboxed input
    (ours shrinks with INTER_AREA instead), so that only anchors, decoding, NMS and the mapping
    back to image pixels are left to compare."""

    def _prepare(self, rgb, region):
        import cv2

        assert region is None
        h, w = rgb.shape[:2]
        size = self.input_size
        s = size / max(h, w)
        px, py = (size - w * s) / 2, (size - h * s) / 2
        m = np.array([[s, 0.0, px], [0.0, s, py]])
        canvas = cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        np.multiply(canvas, 2.0 / 255.0, out=self._input[0], casting="unsafe")
        self._input -= 1.0
        return s, s, px, py


def test_full_range_detector_matches_mediapipe(astronaut):
    """Our full-range anchors + decoding + NMS + letterbox mapping against MediaPipe's own
    FaceDetection(model_selection=1), recorded at conversion time: on the photo, and on the photo
    shrunk into a larger canvas (where the short-range model finds nothing). With MediaPipe's
    preprocessing the results agree to hundredths of a pixel; with ours (INTER_AREA) to a few
    pixels."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "convert"))
    from astronaut import small_face_scene

    ref = np.load(REF / "mediapipe_full_range_astronaut.npz")
    ours, as_mp = FaceDetector(model="full_range"), _WarpLetterbox(model="full_range")
    for key, img in (("photo", astronaut), ("small", small_face_scene())):
        box, kp, score = ref[f"{key}_box"], ref[f"{key}_keypoints"], float(ref[f"{key}_score"])
        (d,) = as_mp.detect(img)
        assert np.abs(d.box - box).max() < 0.2, key
        assert np.abs(d.keypoints - kp).max() < 0.2, key
        assert abs(d.score - score) < 0.002, key
        (d,) = ours.detect(img)
        size = float(box[2])
        assert np.abs(d.box - box).max() < 0.1 * size, (key, d.box, box)
        assert np.abs(d.keypoints[:4] - kp[:4]).max() < 0.1 * size, key
        assert abs(d.score - score) < 0.05, key
    assert FaceDetector(model="short_range").detect(small_face_scene()) == []


def test_stretch_contrast_recovers_a_dim_face(astronaut):
    """A dim (gain 0.25) small face: the contrast stretch lifts its score to the lit one's."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "convert"))
    from astronaut import small_face_scene

    lit = small_face_scene()
    dim = (lit.astype(np.float32) * 0.25).astype(np.uint8)
    plain = FaceDetector(model="full_range", min_score=0.05)
    stretched = FaceDetector(model="full_range", min_score=0.05, stretch_contrast=True)
    s_lit = plain.detect(lit)[0].score
    s_dim = max((d.score for d in plain.detect(dim)), default=0.0)
    s_str = stretched.detect(dim)[0].score
    assert s_dim < s_lit - 0.1 and s_str > s_lit - 0.05, (s_lit, s_dim, s_str)
    # a normally lit image is left alone
    assert stretched.detect(lit)[0].score == pytest.approx(s_lit, abs=1e-6)


def test_detector_options_reject_unknown_model():
    with pytest.raises(ConfigError):
        FaceDetector(model="long_range")


def test_detector_finds_astronaut(detector, astronaut):
    dets = detector.detect(astronaut)
    assert len(dets) == 1
    d = dets[0]
    assert d.score > 0.8
    x, y, w, h = d.box
    # the astronaut's face: roughly x 170-280, y 70-190 in the 512x512 photo
    assert 150 < x < 210 and 50 < y < 110 and 70 < w < 130 and 70 < h < 130
    kp = d.keypoints
    assert kp.shape == (6, 2)
    right_eye, left_eye, nose, mouth = kp[0], kp[1], kp[2], kp[3]
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image's left
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert np.all((kp[:4, 0] > x) & (kp[:4, 0] < x + w) & (kp[:4, 1] > y) & (kp[:4, 1] < y + h))
    assert set(d.to_dict()) == {"box", "score", "keypoints"}


@pytest.mark.parametrize("hw,offset", [((560, 640), (120, 40)), ((640, 560), (40, 120))])
def test_detector_follows_translation(detector, astronaut, hw, offset):
    """The photo pasted into a larger, non-square frame: the box moves with it (letterbox
    mapping is right for wide and tall frames alike)."""
    base = detector.detect(astronaut)[0]
    canvas = np.zeros((*hw, 3), np.uint8)
    ox, oy = offset
    canvas[oy : oy + 512, ox : ox + 512] = astronaut
    dets = detector.detect(canvas)
    assert len(dets) == 1
    expect = base.box + np.array([ox, oy, 0, 0])
    assert np.abs(dets[0].box - expect).max() < 12
    assert np.abs(dets[0].keypoints[:4] - (base.keypoints[:4] + [ox, oy])).max() < 12


def test_detector_no_face(detector):
    rng = np.random.default_rng(0)
    assert detector.detect(np.zeros((480, 640, 3), np.uint8)) == []
    assert detector.detect(np.full((480, 640, 3), 255, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []


@pytest.mark.parametrize("shape", [(1, 1, 3), (2, 2, 3), (1, 700, 3), (700, 1, 3), (7, 5, 3), (3, 2000, 3)])
def test_detector_odd_shapes(detector, shape):
    rng = np.random.default_rng(1)
    assert detector.detect(rng.integers(0, 256, shape, dtype=np.uint8)) == []


def test_detector_bad_input(detector):
    with pytest.raises(InputError):
        detector.detect(np.zeros((10, 10), np.uint8))
    with pytest.raises(InputError):
        detector.detect(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(InputError):
        detector.detect([[1, 2, 3]])


def _astronaut_mesh(detector, mesh, img) -> MeshResult:
    det = detector.detect(img)[0]
    res = mesh.run(img, roi_from_detection(det))
    # one tracking step refines the ROI the way the tracker does
    return mesh.run(img, roi_from_landmarks(res.landmarks))


def test_mesh_on_astronaut_is_plausible(detector, mesh, astronaut):
    det = detector.detect(astronaut)[0]
    res = _astronaut_mesh(detector, mesh, astronaut)
    lm = res.landmarks
    assert lm.shape == (478, 3) and lm.dtype == np.float32
    assert np.isfinite(lm).all()
    assert res.score > 0.9
    x, y, w, h = det.box
    inner = lm[[1, 4, 13, 14, 33, 133, 263, 362, 468, 473]]
    assert np.all((inner[:, 0] > x) & (inner[:, 0] < x + w))
    assert np.all((inner[:, 1] > y) & (inner[:, 1] < y + h))
    eyes_y = lm[[33, 133, 263, 362], 1].mean()
    mouth_y = lm[[13, 14, 61, 291], 1].mean()
    nose_y = lm[1, 1]
    assert eyes_y < nose_y < mouth_y
    # irises sit between their eye corners (468: image-left eye 33/133, 473: 263/362)
    assert lm[33, 0] < lm[468, 0] < lm[133, 0]
    assert lm[362, 0] < lm[473, 0] < lm[263, 0]
    # iris ring points surround the iris centre at a plausible radius (~ 1/10 of the eye distance)
    eye_dist = np.linalg.norm(lm[468, :2] - lm[473, :2])
    r = np.linalg.norm(lm[469:473, :2] - lm[468, :2], axis=1)
    assert np.all((r > 0.05 * eye_dist) & (r < 0.25 * eye_dist))
    # mesh keypoints agree with the detector's keypoints
    assert np.linalg.norm(lm[468, :2] - det.keypoints[0]) < 0.15 * eye_dist
    assert np.linalg.norm(lm[473, :2] - det.keypoints[1]) < 0.15 * eye_dist


def test_mesh_follows_rotation(detector, mesh, astronaut):
    """Rotating the photo in-plane rotates the mesh: roll from the eye corners follows it."""
    import cv2

    base = _astronaut_mesh(detector, mesh, astronaut).landmarks

    def roll(lm: np.ndarray) -> float:
        d = lm[263, :2] - lm[33, :2]
        return math.degrees(math.atan2(d[1], d[0]))

    h, w = astronaut.shape[:2]
    for angle in (-30.0, 20.0):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        img = cv2.warpAffine(astronaut, m, (w, h))
        lm = _astronaut_mesh(detector, mesh, img).landmarks
        # cv2 angle is counter-clockwise on screen: the eye line's image angle drops by `angle`
        assert roll(lm) == pytest.approx(roll(base) - angle, abs=3.0)
        pts = np.c_[base[:, :2], np.ones(478)] @ m.T
        assert np.median(np.linalg.norm(pts - lm[:, :2], axis=1)) < 3.0


def test_mesh_crop_mapping_roundtrip():
    roi = Roi(cx=300.0, cy=200.0, size=150.0, angle=0.4)
    m = roi.crop_matrix()
    from liveness.tracking.mesh import crop_to_image

    pts = np.array([[0, 0, 0], [96, 96, 0], [191, 10, 5]], np.float32)
    img_pts = crop_to_image(pts, roi)
    back = np.c_[img_pts[:, :2], np.ones(3)] @ m.T
    assert np.allclose(back, pts[:, :2], atol=1e-3)
    assert img_pts[1, 0] == pytest.approx(300) and img_pts[1, 1] == pytest.approx(200)
    assert img_pts[2, 2] == pytest.approx(5 * 150 / 192)


def test_mesh_crop_equals_direct_warp(mesh):
    """The crop (after the in-order touch of the ROI's region) is exactly the direct warp of the
    whole frame: inside, across every edge, rotated, up- and down-scaled, on a frame and on a
    view with padded rows (whose region is not touched)."""
    import cv2

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (360, 480, 3), np.uint8)  # noise: every sampling error shows
    frame = cv2.GaussianBlur(frame, (0, 0), 0.7)
    views = {"contiguous": frame, "strided": np.ascontiguousarray(np.pad(frame, ((0, 0), (0, 7), (0, 0))))[:, :480],
             "every other column": np.ascontiguousarray(np.repeat(frame, 2, axis=1))[:, ::2]}
    for i in range(300):
        roi = Roi(float(rng.uniform(-100, 580)), float(rng.uniform(-100, 460)),
                  float(rng.uniform(20, 500)), float(rng.uniform(-math.pi, math.pi)))
        img = list(views.values())[i % 3]
        want = cv2.warpAffine(img, roi.crop_matrix(), (192, 192), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        assert np.array_equal(mesh.crop(img, roi), want), roi


def test_mesh_input_scaling_and_bounds_are_unchanged(mesh):
    """The float32 division by 255 gives the values of the float64 multiplication by 1/255 for
    every grey level, and the landmark bounds (taken on a transposed copy) equal the per-column
    min/max."""
    from liveness.tracking.tracker import _box

    crop = np.resize(np.arange(256, dtype=np.uint8), (192, 192, 3))  # every grey level
    want = np.empty(crop.shape, np.float32)
    np.multiply(crop, 1.0 / 255.0, out=want, casting="unsafe")
    mesh.infer_crop(crop)
    assert np.array_equal(mesh._input[0], want)
    lm = np.random.default_rng(2).normal(300, 80, (478, 3)).astype(np.float32)
    lo, hi = lm[:468, :2].min(axis=0), lm[:468, :2].max(axis=0)
    assert np.array_equal(_box(lm), np.r_[lo, hi - lo].astype(np.float32))
    roi = roi_from_landmarks(lm)
    assert (roi.cx, roi.cy) == (float(lo[0] + hi[0]) / 2, float(lo[1] + hi[1]) / 2)
    assert roi.size == max(float(hi[0] - lo[0]), float(hi[1] - lo[1])) * 1.5


def test_mesh_edge_cases(mesh):
    roi = Roi(10.0, 10.0, 50.0, 0.0)
    for shape in [(1, 1, 3), (5, 300, 3), (300, 5, 3)]:
        res = mesh.run(np.zeros(shape, np.uint8), roi)
        assert res.landmarks.shape == (478, 3) and np.isfinite(res.landmarks).all()
    # an ROI far outside the frame still runs (replicated border)
    res = mesh.run(np.zeros((100, 100, 3), np.uint8), Roi(5000.0, -3000.0, 80.0, 1.0))
    assert res.landmarks.shape == (478, 3)
    assert res.score < 0.5
    with pytest.raises(InputError):
        mesh.run(np.zeros((100, 100, 3), np.uint8), Roi(50.0, 50.0, 0.0, 0.0))
    with pytest.raises(InputError):
        mesh.run(np.zeros((100, 100, 3), np.uint8), Roi(float("nan"), 50.0, 10.0, 0.0))
    with pytest.raises(InputError):
        mesh.run(np.zeros((100, 100), np.uint8), roi)


def test_roi_from_detection_and_landmarks(detector, mesh, astronaut):
    det = detector.detect(astronaut)[0]
    roi = roi_from_detection(det)
    assert roi.size == pytest.approx(1.5 * max(det.box[2], det.box[3]))
    # eye line tilts down to the right in this photo -> positive angle, small
    d = det.keypoints[1] - det.keypoints[0]
    assert roi.angle == pytest.approx(math.atan2(d[1], d[0]), abs=1e-5)
    res = mesh.run(astronaut, roi)
    roi2 = roi_from_landmarks(res.landmarks)
    assert abs(roi2.cx - roi.cx) < 0.2 * roi.size and abs(roi2.cy - roi.cy) < 0.2 * roi.size
    assert 0.7 < roi2.size / roi.size < 1.4
    assert set(roi.to_dict()) == {"cx", "cy", "size", "angle"}


def test_pipeline_matches_mediapipe_end_to_end(detector, mesh, astronaut):
    """Our detect -> ROI -> crop -> mesh -> image mapping against MediaPipe's own legacy
    FaceDetection + FaceMesh(static_image_mode, refine_landmarks) on the same photo, recorded at
    conversion time. The models are identical; the remaining difference comes from how the
    128-px detector input is resampled (anti-aliased here, plain bilinear warp there), so a few pixels are allowed."""
    ref = np.load(REF / "mediapipe_pipeline_astronaut.npz")
    det = detector.detect(astronaut)[0]
    assert np.abs(det.box - ref["box"]).max() < 4
    assert abs(det.score - float(ref["score"])) < 0.02
    assert np.abs(det.keypoints[:4] - ref["keypoints"][:4]).max() < 6
    lm = mesh.run(astronaut, roi_from_detection(det)).landmarks
    err = np.linalg.norm(lm[:, :2] - ref["landmarks"][:, :2], axis=1)
    assert np.median(err) < 1.0, np.median(err)
    assert err.max() < 4.0, err.max()
    # z: same scale and sign convention (relative depth, nose tip nearest)
    assert np.median(np.abs(lm[:, 2] - ref["landmarks"][:, 2])) < 1.0
    assert np.argmin(lm[:468, 2]) == np.argmin(ref["landmarks"][:468, 2])


# --- the rebuilt MediaPipe custom ops against a direct port of their reference kernels -------


def _l2tm_ref(lm: np.ndarray, a: dict) -> np.ndarray:
    """Landmarks2TransformMatrix v2 as MediaPipe's CPU kernel computes it (float64 here)."""
    left, right = lm[a["left_rotation_idx"], :2], lm[a["right_rotation_idx"], :2]
    r = a["target_rotation_radians"] - math.atan2(right[1] - left[1], right[0] - left[0])
    pts = lm[np.asarray(a["subset_idxs"]), :2]
    rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
    q = pts @ rot.T
    lo, hi = q.min(0), q.max(0)
    w, h = hi - lo
    centre = np.array([[math.cos(-r), -math.sin(-r)], [math.sin(-r), math.cos(-r)]]) @ ((lo + hi) / 2)

    def m4(a2: np.ndarray, t: np.ndarray) -> np.ndarray:
        m = np.eye(4)
        m[:2, :2], m[:2, 3] = a2, t
        return m

    ow, oh = a["output_width"], a["output_height"]
    t = m4(np.eye(2), centre) @ m4(rot.T, np.zeros(2))
    t = t @ m4(np.diag([a["scale_x"] * w / ow, a["scale_y"] * h / oh]), np.zeros(2))
    return t @ m4(np.eye(2), np.array([-ow / 2, -oh / 2]))


def _ttb_ref(feat: np.ndarray, m: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """TransformTensorBilinear v2: half-pixel corrected sample points, zero outside the map."""
    h, w, c = feat.shape
    xt, yt = m[0].copy(), m[1].copy()
    xt[3] += xt[0] * 0.5 + xt[1] * 0.5 - 0.5
    yt[3] += yt[0] * 0.5 + yt[1] * 0.5 - 0.5
    out = np.zeros((oh, ow, c))

    def read(yy: int, xx: int) -> np.ndarray:
        return feat[yy, xx] if 0 <= yy < h and 0 <= xx < w else np.zeros(c)

    for oy in range(oh):
        for ox in range(ow):
            v = np.array([ox, oy, 0.0, 1.0])
            tx, ty = xt @ v, yt @ v
            if tx < 0 or tx > w - 1 or ty < 0 or ty > h - 1:
                continue
            x0, y0 = math.floor(tx), math.floor(ty)
            fx, fy = tx - x0, ty - y0
            up = (1 - fx) * read(y0, x0) + fx * read(y0, x0 + 1)
            lo = (1 - fx) * read(y0 + 1, x0) + fx * read(y0 + 1, x0 + 1)
            out[oy, ox] = fy * lo + (1 - fy) * up
    return out


@pytest.mark.parametrize("branches", [1, 2])
def test_rebuilt_custom_ops_match_reference_kernels(branches):
    """A small graph with the custom ops as tf2onnx leaves them, rewritten by
    models/convert/onnx_rewrite.py (batched when branches share inputs), against the port of
    MediaPipe's kernels; the crop windows run partly off the feature map (zero samples)."""
    pytest.importorskip("onnx")
    import sys

    import onnxruntime as ort
    from onnx import TensorProto, helper

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "convert"))
    from onnx_rewrite import rewrite

    rng = np.random.default_rng(3)
    lm = np.zeros((1, 20, 3), np.float32)
    lm[0, :, :2] = rng.uniform(0.5, 7.5, (20, 2))
    lm[0, :, 2] = rng.normal(size=20)
    feat = rng.normal(size=(1, 8, 9, 3)).astype(np.float32)
    attrs = [
        dict(left_rotation_idx=0, right_rotation_idx=1, output_height=5, output_width=5, scale_x=1.5,
             scale_y=1.5, subset_idxs=[0, 1, 2, 3, 4, 5, 6, 7], target_rotation_radians=0.0),
        dict(left_rotation_idx=9, right_rotation_idx=8, output_height=5, output_width=5, scale_x=2.5,
             scale_y=1.2, subset_idxs=[8, 9, 10, 11, 12, 13], target_rotation_radians=0.3),
    ][:branches]
    nodes, outputs = [], []
    for i, a in enumerate(attrs):
        nodes.append(helper.make_node("TFL_Landmarks2TransformMatrix", ["lm"], [f"m{i}"], name=f"l2tm{i}", **a))
        nodes.append(helper.make_node("TFL_TransformTensorBilinear", ["feat", f"m{i}"], [f"p{i}"], name=f"ttb{i}",
                                      output_height=5, output_width=5))
        nodes.append(helper.make_node("TFL_TransformLandmarks", ["pts", f"m{i}"], [f"q{i}"], name=f"tl{i}"))
        outputs += [f"m{i}", f"p{i}", f"q{i}"]
    shp = {"m": [1, 4, 4], "p": [1, 5, 5, 3], "q": [1, 4, 2]}
    graph = helper.make_graph(
        nodes, "t",
        [helper.make_tensor_value_info("lm", TensorProto.FLOAT, [1, 20, 3]),
         helper.make_tensor_value_info("feat", TensorProto.FLOAT, [1, 8, 9, 3]),
         helper.make_tensor_value_info("pts", TensorProto.FLOAT, [1, 4, 2])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shp[o[0]]) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = rewrite(model, {}, {})
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    pts = rng.uniform(0, 5, (1, 4, 2)).astype(np.float32)
    got = dict(zip(outputs, sess.run(outputs, {"lm": lm, "feat": feat, "pts": pts}), strict=True))
    n_zero = 0
    for i, a in enumerate(attrs):
        m = _l2tm_ref(lm[0].astype(np.float64), a)
        assert np.abs(got[f"m{i}"][0] - m).max() < 1e-4
        p = _ttb_ref(feat[0].astype(np.float64), m, 5, 5)
        assert np.abs(got[f"p{i}"][0] - p).max() < 1e-4
        n_zero += int((np.abs(p).sum(-1) == 0).sum())
        q = pts[0] @ m[:2, :2].T + m[:2, 3]
        assert np.abs(got[f"q{i}"][0] - q).max() < 1e-4
    assert n_zero > 0  # some samples fell off the map


@pytest.mark.shared
def test_hand_models_parity_on_dev_frames_with_hands(shared):
    """The hand models on real hands: dev frames (read from ../shared, never stored) cut exactly
    as at conversion time (the stored sha256 of each input proves it), against the tflite
    outputs recorded then (palm detectors: every score and the regressors of the 64 best
    anchors)."""
    import hashlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "models" / "convert"))
    from hand_frames import HAND_FRAMES, frame_inputs

    ref = np.load(REF / "hand_frames.npz")
    assert [str(c) for c in ref["clip"]] == [f.clip for f in HAND_FRAMES]
    inputs = frame_inputs(shared)
    for kind in ("palm", "hand"):
        got = [hashlib.sha256(x.tobytes()).hexdigest() for x in inputs[kind]]
        assert got == [str(h) for h in ref[f"{kind}_input_sha256"]], f"{kind} inputs differ from the recorded ones"
    for name in ("palm_detector_lite", "palm_detector_full", "hand_landmark_lite", "hand_landmark_full"):
        kind = "palm" if name.startswith("palm") else "hand"
        for i, u8 in enumerate(inputs[kind]):
            out = _run(name, (u8.astype(np.float32) / np.float32(255.0))[None])
            if kind == "palm":
                rows = ref[f"{name}__rows"][i]
                assert np.abs(out["classificators"][0] - ref[f"{name}__classificators"][i]).max() < 1e-3
                assert np.abs(out["regressors"][0][rows] - ref[f"{name}__regressors"][i]).max() < 1e-3
            else:
                for k in ("landmarks", "presence", "handedness", "world_landmarks"):
                    assert np.abs(out[k][0] - ref[f"{name}__{k}"][i]).max() < 1e-3, (name, k, i)
        if kind == "hand":  # real hands: the model says so
            assert np.median(ref[f"{name}__presence"]) > 0.9


@pytest.mark.parametrize("region", [None, (100, 50, 300, 300), (-150, -80, 400, 400), (450, 300, 500, 200)])
def test_letterbox_mapping(region):
    """canvas px = s * image px + t for windows inside, across and beyond the image edges; the
    part of a window past the image is black."""
    from liveness.tracking.detector import letterbox

    img = np.zeros((480, 640, 3), np.uint8)
    canvas = np.zeros((192, 192, 3), np.uint8)
    for x, y in ((200, 150), (40, 30), (600, 440)):
        img[:] = 0
        img[y - 3 : y + 4, x - 3 : x + 4] = 255  # a 7x7 dot
        m = letterbox(img, canvas, region)
        assert m is not None
        sx, sy, tx, ty = m
        u, v = sx * x + tx, sy * y + ty
        if not (2 < u < 189 and 2 < v < 189) or (region is not None and not (
                region[0] + 3 <= x < region[0] + region[2] - 3 and region[1] + 3 <= y < region[1] + region[3] - 3)):
            continue
        grey = canvas.astype(np.float32).sum(axis=2)
        cy, cx = np.unravel_index(np.argmax(grey), grey.shape)
        assert abs(cx - u) <= 1.5 and abs(cy - v) <= 1.5, (x, y, cx, cy, u, v)
    if region is not None and region[0] < 0:
        # the window's top-left corner lies outside the image: black there
        assert canvas[:5, :5].max() == 0
    assert letterbox(img, canvas, (5000, 0, 100, 100)) is None


def test_detection_in_a_window_past_the_image_edge(astronaut):
    """A face found through a window that reaches past the image equals the one found through the
    same window of the image padded with black."""
    pad = 200
    big = np.zeros((512 + 2 * pad, 512 + 2 * pad, 3), np.uint8)
    big[pad:-pad, pad:-pad] = astronaut
    det = FaceDetector(model="full_range")
    window = (-150, -120, 600, 600)
    (a,) = det.detect(astronaut, window)
    (b,) = det.detect(big, (window[0] + pad, window[1] + pad, 600, 600))
    assert np.abs(a.box - (b.box - [pad, pad, 0, 0])).max() < 2.0
    assert abs(a.score - b.score) < 0.03
