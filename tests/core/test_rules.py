"""The rules kept in one copy in ``liveness.core`` (issue 19): logistic, IoU, downscaling,
JPEG thumbnails, atomic writes, sha256, and the ONNX Runtime error boundary."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from liveness import ModelError
from liveness.core.files import file_sha256, write_atomic
from liveness.core.image import downscale, fit_size, jpeg
from liveness.core.mathx import iou, logistic


def test_logistic_scalar_and_array_never_overflow():
    assert logistic(0.0) == 0.5 and isinstance(logistic(0.3), float)
    assert logistic(2.0) == pytest.approx(1 / (1 + np.exp(-2.0)), abs=1e-15)
    x = np.array([-1e4, -3.0, 0.0, 3.0, 1e4])
    with np.errstate(over="raise"):
        y = logistic(x)
    assert y.shape == x.shape and y[0] >= 0 and y[-1] <= 1 and np.all(np.diff(y) > 0)


def test_iou_in_both_box_layouts():
    a = np.array([0.0, 0.0, 10.0, 10.0])  # x, y, w, h
    b = np.array([[5.0, 5.0, 10.0, 10.0], [20.0, 20.0, 5.0, 5.0], [0.0, 0.0, 10.0, 10.0]])
    assert iou(a, b) == pytest.approx([25 / 175, 0.0, 1.0])
    corners = np.c_[b[:, :2], b[:, :2] + b[:, 2:]]
    assert iou(np.array([0.0, 0.0, 10.0, 10.0]), corners, corners=True) == pytest.approx(iou(a, b))
    assert iou(np.zeros(4), np.zeros((1, 4)))[0] == 0.0  # empty union


def test_one_downscaling_rule():
    assert fit_size(640, 480, None) == (640, 480) and fit_size(640, 480, 1280) == (640, 480)
    assert fit_size(1920, 1080, 1280) == (1280, 720)
    assert fit_size(1001, 333, 500) == (500, 166)  # even sides, as the decoder's scaler wants
    img = np.zeros((1080, 1920, 3), np.uint8)
    assert downscale(img, 1280).shape == (720, 1280, 3) and downscale(img, None) is img


def test_jpeg_thumbnail_decodes_to_the_asked_size():
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, 80:] = (255, 0, 0)
    data = jpeg(img, 80)
    assert data is not None and data[:2] == b"\xff\xd8"
    back = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert back.shape == (60, 80, 3) and back[30, 70, 0] > 200 and back[30, 10, 0] < 50
    assert cv2.imdecode(np.frombuffer(jpeg(img, 96, 96), np.uint8), cv2.IMREAD_COLOR).shape == (96, 96, 3)


def test_atomic_write_and_sha256(tmp_path):
    p = tmp_path / "report.json"
    write_atomic(p, "one")
    write_atomic(p, "two")
    assert p.read_text() == "two" and not list(tmp_path.glob("*.tmp"))
    write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert file_sha256(tmp_path / "b.bin") == hashlib.sha256(b"\x00\x01").hexdigest()


def test_onnxruntime_failures_become_model_errors():
    from liveness.core.registry import ort_session

    try:
        sess = ort_session("face_detector")
    except ModelError as exc:  # a checkout without the model files
        pytest.skip(str(exc))
    name = sess.get_inputs()[0].name
    with pytest.raises(ModelError, match="face_detector"):
        sess.run(None, {name: np.zeros((1, 3, 3, 3), np.float32)})  # wrong shape: ORT's own error
    with pytest.raises(ValueError):  # a missing feed is our bug, not the model's: left as it is
        sess.run(None, {"bogus": np.zeros(1, np.float32)})
