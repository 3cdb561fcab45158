"""The shipped swap detector (``signals.artefact``, issue 13): it is the graph its training used,
and its shortcut guards — global degradation, faceless chips, burned-in text — hold."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from liveness.signals.artefact import ArtefactAnalyser, swap_logits  # noqa: E402
from liveness.signals.swap_chip import swap_chip  # noqa: E402
from models.train.swap_features import degrade, pair_rng  # noqa: E402


def _model():
    import onnx

    from liveness.core.registry import model_path

    return onnx.load(str(model_path("artefact")))


def test_shipped_model_is_the_training_feature_graph_plus_one_linear_head():
    """Reference parity: the file's logit equals the training script's feature graph (built
    now from the face models) times the head stored in the file."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from models.train.swap_graph import feature_graph

    shipped = _model()
    w = {t.name: numpy_helper.to_array(t) for t in shipped.graph.initializer if t.name.startswith("head/")}
    feats = ort.InferenceSession(feature_graph()[0].SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for k in range(3):
        chip = rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)
        mask = np.ones((1, 150, 150), np.float32)
        mask[:, :, : 30 * k] = 0
        f = feats.run(None, {"chip": chip, "mask": mask})[0]
        want = float((f @ w["head/w"])[0, 0] + w["head/b"][0])
        got = float(swap_logits(chip, mask)[0])
        assert got == pytest.approx(want, abs=1e-3 * max(1.0, abs(want)))


def test_masked_out_pixels_are_not_evidence():
    """What the mask marks invalid (a black border, a mirrored pad) cannot move the score."""
    rng = np.random.default_rng(1)
    chip = rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)
    mask = np.ones((1, 150, 150), np.float32)
    mask[:, :, 110:] = 0
    other = chip.copy()
    other[:, :, 118:] = 0.0  # black beyond the valid area, clear of the receptive-field spill
    a, b = swap_logits(chip, mask)[0], swap_logits(other, mask)[0]
    full = swap_logits(other, np.ones_like(mask))[0]
    assert abs(a - b) < abs(a - full) + 1e-6  # the mask, not the content, decides


def test_pair_members_get_identical_augmentation():
    """A fake and its own original (same group, same chip index) are degraded alike."""
    rng = np.random.default_rng(2)
    real = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    fake = real.copy()
    fake[40:110, 40:110] = rng.integers(0, 255, (70, 70, 3), dtype=np.uint8)
    for k in range(12):
        a = degrade(real, pair_rng("train:pairX", k))
        b = degrade(fake, pair_rng("train:pairX", k))
        # outside the swapped square (and its filter reach) the two stay identical
        np.testing.assert_array_equal(a[:30], b[:30])
    ops = {degrade(real, pair_rng(f"g{i}", 0)).tobytes() for i in range(16)}
    assert len(ops) > 4  # different groups draw different degradations


def _real_dev_faces(shared: Path, manifest: list[dict[str, str]], n_clips: int = 10, per_clip: int = 2):
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker

    reals = [r for r in manifest if r["label"] == "real"]
    pick = [reals[i] for i in np.linspace(0, len(reals) - 1, n_clips).round().astype(int)]
    out = []
    for r in pick:
        tr = FaceTracker()
        got = 0
        for k, fr in enumerate(open_video(shared / r["path"], stride=5)):
            obs = tr.process(fr.image, fr.t, fr.index)
            if obs.face and k >= 2 and k % 3 == 0:
                out.append((fr.image, obs.landmarks))
                got += 1
            if got >= per_clip:
                break
    return out


@pytest.fixture(scope="module")
def real_faces(shared, manifest):
    faces = _real_dev_faces(shared, manifest)
    assert len(faces) >= 15
    return faces


def _mean_prob(faces, change=lambda x: x):  # noqa: ANN001, ANN202
    a = ArtefactAnalyser()
    return float(np.mean([a.score_face(change(img), lm) for img, lm in faces]))


def _down_up(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return cv2.resize(cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA), (w, h))


def _jpeg(img: np.ndarray, q: int = 40) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def _unsharp(img: np.ndarray) -> np.ndarray:
    return cv2.addWeighted(img, 2.0, cv2.GaussianBlur(img, (0, 0), 1.5), -1.0, 0)


@pytest.mark.parametrize("name,change", [
    ("down-up x0.5", _down_up),
    ("blur sigma 1", lambda x: cv2.GaussianBlur(x, (0, 0), 1.0)),
    ("jpeg q40", _jpeg),
    ("unsharp mask", _unsharp),
])  # fmt: skip
def test_global_degradation_does_not_raise_real_faces(real_faces, name, change):
    """A detector that learned "lower quality" or "the right half of a screen recording"
    instead of "a swapped face" fails this: real dev frames, degraded whole."""
    base = _mean_prob(real_faces)
    after = _mean_prob(real_faces, change)
    assert after <= base + 0.05, (name, base, after)


def test_faceless_chips_stay_low(real_faces):
    """Background control: chips cut from where no face is (a real frame's corner, flat walls,
    noise) are not called swaps."""
    probs = []
    img, lm = real_faces[0]
    h, w = img.shape[:2]
    rng = np.random.default_rng(3)
    for k in range(6):
        # the same face geometry, moved onto a part of the frame without the face
        shift = np.array([(-1) ** k * w * 0.45, (k % 3 - 1) * h * 0.3, 0], np.float32)
        moved = lm + shift
        c = swap_chip(img, moved)
        probs.append(1 / (1 + np.exp(-swap_logits(c.chip[None], c.mask[None])[0])))
    for v in (40, 128, 220):
        flat = np.full((h, w, 3), v, np.uint8)
        noisy = np.clip(flat + rng.normal(0, 12, flat.shape), 0, 255).astype(np.uint8)
        c = swap_chip(noisy, lm)
        probs.append(1 / (1 + np.exp(-swap_logits(c.chip[None], c.mask[None])[0])))
    assert float(np.median(probs)) < 0.5, probs


def test_burned_in_text_does_not_raise_real_faces(real_faces):
    """Captions and name tags over a real face (a call's overlay) are not evidence of a swap."""

    def caption(img: np.ndarray) -> np.ndarray:
        out = img.copy()
        h, w = out.shape[:2]
        s = max(0.6, h / 500)
        for k, text in enumerate(("Jane Doe - Interview", "REC 00:12:31", "Speaker view")):
            y = int(h * (0.3 + 0.25 * k))
            cv2.putText(out, text, (w // 10, y), cv2.FONT_HERSHEY_SIMPLEX, s, (255, 255, 255), max(1, int(2 * s)))
        return out

    base = _mean_prob(real_faces)
    assert _mean_prob(real_faces, caption) <= base + 0.05


def test_a_model_file_given_in_the_options_replaces_the_shipped_one(tmp_path):
    """``ArtefactOptions(model=...)`` (``liveness eval --artefact-model``): the same file scores
    the same; a file that is not a model is a ModelError, not a crash."""
    import shutil

    from liveness import ModelError
    from liveness.core.registry import model_path
    from liveness.signals.artefact import ArtefactOptions

    rng = np.random.default_rng(4)
    chip = rng.integers(0, 255, (150, 150, 3), dtype=np.uint8)
    mask = np.ones((150, 150), np.float32)
    copy = tmp_path / "mine.onnx"
    shutil.copy(model_path("artefact"), copy)
    a = ArtefactAnalyser().score_chip(chip, mask)
    b = ArtefactAnalyser(ArtefactOptions(model=str(copy))).score_chip(chip, mask)
    assert a == pytest.approx(b, abs=1e-6)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError):
        ArtefactAnalyser(ArtefactOptions(model=str(bad))).score_chip(chip, mask)
    with pytest.raises(ModelError):
        ArtefactAnalyser(ArtefactOptions(model=str(tmp_path / "missing.onnx"))).score_chip(chip, mask)


def test_pooling_regions_partition_the_chip_and_share_the_shipped_statistics():
    """The candidate pooling regions (``train_swap --regions``): inner face, boundary ring and
    outer area tile the chip exactly, and a region's statistics do not depend on which other
    regions the graph pools (the validity mask's block equals the shipped graph's)."""
    import onnxruntime as ort

    from models.train.swap_graph import feature_graph, region_mask

    parts = [region_mask(r) for r in ("inner", "ring", "outer")]
    assert all(set(np.unique(p)) <= {0.0, 1.0} and p.sum() > 300 for p in parts)
    np.testing.assert_array_equal(sum(parts), np.ones((150, 150), np.float32))
    with pytest.raises(ValueError, match="unknown pooling region"):
        region_mask("cheek")

    def run(regions):  # noqa: ANN001, ANN202
        model, lay = feature_graph(regions)
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(3)
        chip = rng.uniform(0, 255, (1, 150, 150, 3)).astype(np.float32)
        mask = np.ones((1, 150, 150), np.float32)
        mask[:, 120:] = 0
        return sess.run(None, {"chip": chip, "mask": mask})[0][0], lay

    shipped, lay = run(("valid", "inner"))
    other, lay2 = run(("valid", "ring", "outer"))
    assert [s[:4] for s in lay] == [s[:4] for s in lay2]
    assert len(other) == sum(s[4] for s in lay2) == 3 * len(shipped) // 2
    o1 = o2 = 0
    for (_, _, c, _, w1), (_, _, _, _, w2) in zip(lay, lay2, strict=True):
        a, b = shipped[o1 : o1 + w1].reshape(4, c), other[o2 : o2 + w2].reshape(6, c)
        np.testing.assert_allclose(b[0], a[0], rtol=1e-4, atol=1e-4)  # mean over the valid area
        np.testing.assert_allclose(b[3], a[2], rtol=1e-4, atol=1e-4)  # its standard deviation
        assert not np.allclose(b[1], a[1])  # the ring is not the inner face
        o1, o2 = o1 + w1, o2 + w2
