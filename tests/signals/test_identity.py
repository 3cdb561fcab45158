"""Identity continuity analyser: a synthetic identity switch is flagged, a steady face is not;
references and enrolment files; one real dev clip (skipped without ../shared)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from liveness import ConfigError, FaceObservation, FaceQuality, HeadPose, InputError
from liveness.signals.embedding import FaceEmbedder
from liveness.signals.enrollment import ENROLLMENT_SCHEMA, Enrollment, load_references
from liveness.signals.identity import IdentityAnalyser, IdentityOptions, robust_centroid
from tests._feed import step
from tests.signals.test_embedding import _landmarks, _photos


@pytest.fixture(scope="module")
def faces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {k: (im, _landmarks(im)) for k, im in _photos().items()}


@pytest.fixture(scope="module")
def embedder() -> FaceEmbedder:
    return FaceEmbedder(threads=1)


def _obs(t: float, i: int, im: np.ndarray, lm: np.ndarray, rng: np.random.Generator) -> FaceObservation:
    """The face moved a little (rotation, shift, scale) as in a live call; landmarks follow."""
    h, w = im.shape[:2]
    c = lm[:, :2].mean(0)
    m = cv2.getRotationMatrix2D((float(c[0]), float(c[1])), rng.uniform(-6, 6), rng.uniform(0.95, 1.05))
    m[:, 2] += rng.uniform(-6, 6, 2)
    img = cv2.warpAffine(im, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    lm2 = lm.copy()
    lm2[:, :2] = lm[:, :2] @ m[:, :2].T + m[:, 2]
    lo, hi = lm2[:, :2].min(0), lm2[:, :2].max(0)
    box = np.r_[lo, hi - lo].astype(np.float32)
    q = FaceQuality(float(np.sqrt(box[2] * box[3])), 100.0, 120.0, 1.0)
    pose = HeadPose(0.0, 0.0, 0.0, np.zeros(3), np.array([0, 0, 50.0]))
    return FaceObservation(t, i, w, h, True, 1, box, lm2, 1.0, pose, q, image=img)


def _stream(faces, names: list[str], seconds_each: float, fps: float = 4.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    i, t = 0, 0.0
    for name in names:
        im, lm = faces[name]
        for _ in range(int(seconds_each * fps)):
            yield _obs(t, i, im, lm, rng)
            i += 1
            t += 1.0 / fps


def _run(analysers, stream) -> None:
    for o in stream:
        for a in analysers:
            step(a, o)


def test_identity_switch_is_flagged_with_its_time(faces, embedder):
    a = IdentityAnalyser(embedder=embedder)
    _run([a], _stream(faces, ["astronaut", "grace_hopper"], 8.0))
    assert list(a.signals()) == ["identity_change", "identity_instability"]
    s = a.summary()
    assert a.signals()["identity_change"] == s
    assert s.value is not None and s.value > 0.8
    assert s.segments, "the takeover must be reported as a time range"
    seg = s.segments[0]
    assert 7.5 <= seg.start <= 9.5 and seg.end >= 14.0 and "another person" in seg.reason
    assert len(s.segments) == 1  # one takeover, one range (gaps between samples bridged)
    assert dict(s.details)["d_enrol_max"] > 0.6
    # every embedded sample was scored once
    assert len(a.samples) == pytest.approx(32, abs=2)


def test_steady_face_is_not_flagged(faces, embedder):
    for name in ("astronaut", "grace_hopper"):
        a = IdentityAnalyser(embedder=embedder)
        _run([a], _stream(faces, [name], 10.0, seed=1))
        s = a.summary()
        assert s.value is not None and s.value < 0.2 and not s.segments
        inst = a.signals()["identity_instability"]
        assert inst.value is not None and inst.value < 0.5
        a.reset()
        assert a.summary().value is None and not a.samples


def test_reference_mismatch(faces, embedder):
    ref = embedder.embed_face(*faces["astronaut"])
    for name, mismatch in (("astronaut", False), ("grace_hopper", True)):
        a = IdentityAnalyser(embedder=embedder, references=[ref])
        scores = [s.signal for o in _stream(faces, [name], 5.0, seed=2) for s in step(a, o)[0]]
        assert list(a.signals()) == ["identity_change", "identity_instability", "reference_mismatch"]
        assert {"identity_change", "identity_instability", "reference_mismatch"} == set(scores)
        v = a.signals()["reference_mismatch"].value
        assert v is not None and (v > 0.8 if mismatch else v < 0.2)


def test_sampling_rate_and_quality_gate(faces, embedder):
    calls = []

    class Counting:
        def embed_face(self, rgb, lm):
            calls.append(1)
            return embedder.embed_face(rgb, lm)

    a = IdentityAnalyser(IdentityOptions(sample_interval_s=0.5, enroll_interval_s=0.2),
                         embedder=Counting())
    _run([a], _stream(faces, ["astronaut"], 5.0, fps=10.0))
    # every 0.2 s until enrolled (3 samples: 0, 0.2, 0.4 s), then every 0.5 s (0.9 ... 4.9 s)
    assert len(calls) == 12
    small = IdentityAnalyser(IdentityOptions(min_face_px=1000.0), embedder=Counting())
    n = len(calls)
    _run([small], _stream(faces, ["astronaut"], 2.0))
    assert len(calls) == n and small.summary().value is None
    no_face = FaceObservation(0.0, 0, 64, 64, False, 0, image=np.zeros((64, 64, 3), np.uint8))
    assert step(IdentityAnalyser(embedder=Counting()), no_face) == ([], [])


def test_robust_centroid_ignores_an_outlier():
    rng = np.random.default_rng(3)
    base = rng.normal(0, 0.09, 128).astype(np.float32)
    emb = base + rng.normal(0, 0.01, (6, 128)).astype(np.float32)
    emb[2] = rng.normal(0, 0.09, 128)
    c = robust_centroid(emb)
    assert np.linalg.norm(c - base) < 0.05


def test_enrollment_roundtrip_and_checks(faces, embedder, tmp_path):
    e = np.stack([embedder.embed_face(*faces["astronaut"])])
    enr = Enrollment.from_embeddings(e, source="astronaut")
    p = tmp_path / "enrol.json"
    enr.save(p)
    d = json.loads(p.read_text())
    assert d["schema"] == ENROLLMENT_SCHEMA and len(d["embeddings"]) == 1 and d["created"]
    back = Enrollment.load(p)
    assert np.abs(back.embeddings - e).max() < 1e-6
    refs = load_references([p])
    assert refs.shape == (1, 128)
    d["model_sha256"] = "0" * 64
    p.write_text(json.dumps(d))
    with pytest.raises(InputError, match="another embedding model"):
        Enrollment.load(p)
    p.write_text("{}")
    with pytest.raises(InputError, match="not a"):
        Enrollment.load(p)
    with pytest.raises(InputError):
        Enrollment.load(tmp_path / "missing.json")


def test_bad_options():
    with pytest.raises(ConfigError):
        IdentityOptions(threshold=0)
    with pytest.raises(ConfigError):
        IdentityOptions(enroll_samples=5, enroll_max=2)


@pytest.mark.shared
def test_real_clip_same_person_and_a_spliced_takeover(shared, manifest, embedder):
    """A real clip stays one person; the same clip followed by another person's clip is flagged."""
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    paths = {r["path"] for r in manifest}
    a_path, b_path = "video/real/dfl_Kim_Jarrey_0.mp4", "video/real/dfl_Tim_Norland_0.mp4"
    if not {a_path, b_path} <= paths:
        pytest.skip("expected dev clips not in the manifest")
    solo = IdentityAnalyser(embedder=embedder)
    spliced = IdentityAnalyser(embedder=embedder)
    t_off = 0.0
    for k, path in enumerate((a_path, b_path)):
        tracker = FaceTracker.from_options(TrackerOptions())
        last = 0.0
        for fr in open_video(shared / path, stride=2):
            if fr.t > 6.0:
                break
            o = tracker.process(fr.image, fr.t + t_off, fr.index)
            step(spliced, o)
            if k == 0:
                step(solo, o)
            last = fr.t
        t_off += last + 0.5
    s = solo.summary()
    assert s.value is not None and s.value < 0.5 and not s.segments
    sp = spliced.summary()
    assert sp.value is not None and sp.value > 0.5 and sp.segments
    assert sp.segments[0].start > 5.0


def test_enroll_command_and_pipeline_wiring(faces, tmp_path):
    from liveness.apps.cli import main
    from liveness.pipeline import PipelineOptions, default_analysers

    photo = tmp_path / "astronaut.png"
    cv2.imwrite(str(photo), cv2.cvtColor(faces["astronaut"][0], cv2.COLOR_RGB2BGR))
    out = tmp_path / "person.json"
    assert main(["enroll", str(photo), "--out", str(out)]) == 0
    assert Enrollment.load(out).embeddings.shape == (1, 128)
    assert main(["enroll", str(tmp_path / "missing.jpg"), "--out", str(out)]) == 2
    def names(opts):
        return [n for a in default_analysers(opts) for n in a.signals()]

    assert {"identity_change", "identity_instability", "reference_mismatch"} <= set(names(PipelineOptions(references=(str(out),))))
    assert "reference_mismatch" not in names(PipelineOptions())


@pytest.mark.shared
def test_real_swap_fails_the_reference_from_its_genuine_half(shared, manifest, embedder):
    """'Compare across meetings': enrol from the genuine half of a DeepFaceLive demo, then the
    swapped half of the same footage does not match the reference; the genuine half does."""
    from liveness.sources.video import open_video
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    real, fake = "video/real/dfl_Ewon_Spice_0.mp4", "video/fake/dfl_Ewon_Spice_0.mp4"
    if not {real, fake} <= {r["path"] for r in manifest}:
        pytest.skip("expected dev clips not in the manifest")

    def run(path: str, analyser: IdentityAnalyser, t0: float = 0.0, t1: float = 6.0) -> None:
        tracker = FaceTracker.from_options(TrackerOptions())
        for fr in open_video(shared / path, stride=2):
            if fr.t < t0:
                continue
            if fr.t > t1:
                break
            o = tracker.process(fr.image, fr.t, fr.index)
            step(analyser, o)

    first = IdentityAnalyser(embedder=embedder)
    run(real, first, 0.0, 5.0)
    ref = first.enrolment
    assert ref is not None
    genuine = IdentityAnalyser(embedder=embedder, references=ref[None])
    run(real, genuine, 5.0, 12.0)  # later in the genuine footage
    swapped = IdentityAnalyser(embedder=embedder, references=ref[None])
    run(fake, swapped, 5.0, 12.0)
    g = genuine.signals()["reference_mismatch"].value
    s = swapped.signals()["reference_mismatch"].value
    assert g is not None and s is not None
    assert g < 0.5 < s
