"""Face embedding: ONNX parity with dlib, chip alignment from the mesh, reference photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from liveness import InputError
from liveness.signals.embedding import (
    CHIP_SIZE,
    FaceEmbedder,
    chip_transform,
    embedding_distance,
    load_reference,
    similarity_transform,
)

ROOT = Path(__file__).resolve().parents[2]
REF = ROOT / "models" / "reference" / "face_embedding_ref.npz"


def _photos() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return {
        "astronaut": np.ascontiguousarray(skimage.data.astronaut()),
        "grace_hopper": np.asarray(Image.open(hopper).convert("RGB")),
    }


def _landmarks(rgb: np.ndarray) -> np.ndarray:
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tr = FaceTracker.from_options(TrackerOptions(keep_image=False))
    tr.process(rgb, 0.0, 0)
    obs = tr.process(rgb, 0.001, 1)
    assert obs.face and obs.landmarks is not None
    return obs.landmarks


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return _photos()


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(threads=1)


def test_parity_with_dlib(embedder: FaceEmbedder):
    ref = np.load(REF)
    for chip, want in zip(ref["chips"], ref["embeddings"], strict=True):
        got = embedder.embed(chip)
        assert got.shape == (128,) and got.dtype == np.float32
        assert np.abs(got - want).max() < 1e-5


def test_similarity_transform_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    a, s, t = np.deg2rad(23.0), 1.7, np.array([12.0, -4.0])
    r = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = similarity_transform(src, src @ r.T + t)
    assert np.allclose(m[:, :2], r, atol=1e-9) and np.allclose(m[:, 2], t, atol=1e-9)


def test_mesh_chip_matches_dlibs_own_chip(photos, embedder):
    """Our chip (mesh landmarks) embeds close to the chip dlib cuts with its own landmarks."""
    ref = np.load(REF)
    for i, name in enumerate(ref["names"]):
        emb = embedder.embed_face(photos[str(name)], _landmarks(photos[str(name)]))
        assert embedding_distance(emb, ref["embeddings"][i]) < 0.2


def test_rotated_face_gives_nearly_the_same_embedding(photos, embedder):
    im = photos["astronaut"]
    lm = _landmarks(im)
    base = embedder.embed_face(im, lm)
    chip = embedder.chip(im, lm)
    assert chip.shape == (CHIP_SIZE, CHIP_SIZE, 3) and chip.dtype == np.uint8
    for angle in (-25.0, 15.0):
        m = cv2.getRotationMatrix2D((256.0, 256.0), angle, 1.0)
        rot = cv2.warpAffine(im, m, (512, 512))
        rlm = _landmarks(rot)
        # the alignment undoes the roll: the chip's eye line stays level
        cm = chip_transform(rlm)
        assert abs(np.degrees(np.arctan2(cm[1, 0], cm[0, 0])) + angle) < 4.0
        assert embedding_distance(embedder.embed_face(rot, rlm), base) < 0.15


def test_different_people_are_far_apart(photos, embedder):
    a = embedder.embed_face(photos["astronaut"], _landmarks(photos["astronaut"]))
    g = embedder.embed_face(photos["grace_hopper"], _landmarks(photos["grace_hopper"]))
    assert embedding_distance(a, g) > 0.6


def test_large_face_is_shrunk_without_aliasing_trouble(photos, embedder):
    """A face far larger than the chip goes through the pyramid step and still matches."""
    im = photos["astronaut"]
    big = cv2.resize(im, None, fx=3.0, fy=3.0, interpolation=cv2.INTER_CUBIC)
    lm = _landmarks(im)
    big_lm = lm.copy()
    big_lm[:, :2] = (lm[:, :2] + 0.5) * 3.0 - 0.5
    d = embedding_distance(embedder.embed_face(big, big_lm), embedder.embed_face(im, lm))
    assert d < 0.1


def test_load_reference(photos, tmp_path):
    p = tmp_path / "astronaut.png"
    cv2.imwrite(str(p), cv2.cvtColor(photos["astronaut"], cv2.COLOR_RGB2BGR))
    e = load_reference(p)
    assert e.shape == (128,) and np.isfinite(e).all()
    assert embedding_distance(e, load_reference(photos["astronaut"])) < 0.05


def test_load_reference_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_reference(tmp_path / "missing.jpg")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="decode"):
        load_reference(junk)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320, 3), 127, np.uint8))
    with pytest.raises(InputError, match="no face"):
        load_reference(blank)
    with pytest.raises(InputError):
        FaceEmbedder().embed(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError):
        chip_transform(np.zeros((68, 2)))
