"""Fusion: monotonic risk, inconclusive on unusable footage, missing signals, the fitting
procedure on synthetic eval data, the confusion table and re-fusing stored reviews."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liveness import FaceObservation, FaceQuality, Segment, Session, Signal
from liveness.core.errors import ConfigError
from liveness.verdict.fusion import (
    Fusion,
    FusionOptions,
    FusionParams,
    Rule,
    assess_quality,
    confusion_table,
    format_confusion_table,
    load_params,
    verdict_from_review,
)

ROOT = Path(__file__).resolve().parents[2]


def _fit_module():
    spec = importlib.util.spec_from_file_location("fit_fusion", ROOT / "models" / "train" / "fit_fusion.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fit_fusion", mod)
    spec.loader.exec_module(mod)
    return mod


def _params(**kw) -> FusionParams:
    base = dict(
        features=("artefact", "face_slip", "pose_consistency"),
        transform="identity",
        center=np.array([0.2, 0.3, 0.25]),
        scale=np.array([0.2, 0.2, 0.2]),
        coef=np.array([2.0, 0.7, 0.0]),
        intercept=-1.5,
        thresholds={"suspicious": 0.5, "fake": 0.8},
        rules={"challenge": Rule(4.0, 0.0, "failed"), "challenge_breakdown": Rule(4.0, 0.3, "broke")},
        fitted=True,
    )
    base.update(kw)
    return FusionParams(**base)


def _obs(n: int = 60, fps: float = 30.0, *, face: bool = True, size: float = 120.0,
         brightness: float = 120.0, sharpness: float = 60.0, inside: float = 1.0) -> list[FaceObservation]:
    q = FaceQuality(size, sharpness, brightness, inside)
    return [FaceObservation(t=i / fps, frame_index=i, width=640, height=480, face=face, faces=int(face),
                            box=np.array([100, 100, size, size], np.float32) if face else None,
                            quality=q if face else None) for i in range(n)]


def _sig(name: str, v: float | None, segs: tuple[Segment, ...] = ()) -> Signal:
    return Signal(name, v, 50 if v is not None else 0, segs)


# ---------------------------------------------------------------------------------------------
# monotonic risk
# ---------------------------------------------------------------------------------------------
NAMES = ["artefact", "face_slip", "pose_consistency", "challenge", "challenge_breakdown", "new_signal"]
value = st.one_of(st.none(), st.floats(0.0, 1.0))


@pytest.mark.parametrize("transform", ["identity", "logit"])
@settings(max_examples=150, deadline=None)
@given(vals=st.fixed_dictionaries({k: value for k in NAMES}), which=st.sampled_from(NAMES),
       up=st.floats(0.0, 1.0))
def test_risk_monotonic_in_each_signal(transform, vals, which, up):
    for fusion in (Fusion(_params(transform=transform)), Fusion(load_params())):
        lo = dict(vals)
        base = lo[which] if lo[which] is not None else 0.0
        lo[which] = base
        hi = dict(lo)
        hi[which] = base + (1.0 - base) * up
        r_lo, r_hi = fusion.risk(lo), fusion.risk(hi)
        if r_lo is None:  # a signal the model does not weigh, nothing else measured
            assert r_hi is None
            continue
        assert 0.0 <= r_lo <= 1.0 and 0.0 <= r_hi <= 1.0
        assert r_hi >= r_lo - 1e-12


def test_negative_coefficients_rejected():
    with pytest.raises(ConfigError):
        _params(coef=np.array([1.0, -0.1, 0.0]))
    with pytest.raises(ConfigError):
        _params(thresholds={"suspicious": 0.9, "fake": 0.5})


def test_labels_follow_thresholds_and_reasons_name_segments():
    f = Fusion(_params())
    obs = _obs()
    seg = (Segment(2.0, 3.5, 0.95, "blend boundary"),)
    hi = f.fuse({"artefact": _sig("artefact", 0.95, seg), "face_slip": _sig("face_slip", 0.3)}, obs)
    lo = f.fuse({"artefact": _sig("artefact", 0.1), "face_slip": _sig("face_slip", 0.2)}, obs)
    assert hi.label == "fake" and hi.risk >= 0.8
    assert lo.label == "no_signs" and lo.risk < 0.5, "passive checks alone never clear anyone"
    assert lo.assurance == ("passive",) and hi.assurance == ("passive",)
    assert hi.reasons[0].startswith("artefact") and "2.0-3.5s" in hi.reasons[0]
    assert hi.segments and hi.segments[0].start == 2.0 and "artefact" in hi.segments[0].reason
    assert not any("face_slip" in r for r in hi.reasons[:1])
    mid_risk = 0.65
    z = math.log(mid_risk / (1 - mid_risk))
    # artefact value that puts the risk between the thresholds
    a = 0.2 + (z + 1.5) / 2.0 * 0.2
    mid = f.fuse({"artefact": _sig("artefact", a)}, obs)
    assert mid.label == "suspicious"


def test_failed_challenges_raise_the_risk():
    f = Fusion(_params())
    obs = _obs()
    base = {"artefact": _sig("artefact", 0.25)}
    r0 = f.fuse(base, obs)
    r1 = f.fuse({**base, "challenge": _sig("challenge", 1.0)}, obs)
    r2 = f.fuse({**base, "challenge": _sig("challenge", 0.0), "challenge_breakdown": _sig("challenge_breakdown", 0.9)}, obs)
    assert r1.risk > r0.risk + 0.3 and r1.label in ("suspicious", "fake")
    assert r2.risk > r0.risk
    assert any(r.startswith("challenge") for r in r1.reasons)


# ---------------------------------------------------------------------------------------------
# missing signals, inconclusive
# ---------------------------------------------------------------------------------------------
def test_missing_signals_contribute_nothing():
    f = Fusion(_params())
    obs = _obs()
    full = f.fuse({"artefact": _sig("artefact", 0.9), "face_slip": _sig("face_slip", 0.3)}, obs)
    partial = f.fuse({"artefact": _sig("artefact", 0.9), "face_slip": _sig("face_slip", None)}, obs)
    absent = f.fuse({"artefact": _sig("artefact", 0.9)}, obs)
    as_none = f.fuse({"artefact": _sig("artefact", 0.9), "face_slip": None}, obs)
    # face_slip 0.3 is exactly its centre: contributing nothing equals being missing
    assert partial.risk == pytest.approx(full.risk) == pytest.approx(absent.risk) == pytest.approx(as_none.risk)
    assert any("not measured: face_slip" in r for r in partial.reasons)


def test_no_evidence_at_all_is_inconclusive():
    f = Fusion(_params())
    v = f.fuse({"artefact": _sig("artefact", None), "face_slip": None}, _obs())
    assert v.label == "inconclusive" and v.risk is None
    v = f.fuse({}, _obs())
    assert v.label == "inconclusive" and v.risk is None


@pytest.mark.parametrize("bad", [
    dict(face=False), dict(size=20.0), dict(brightness=10.0), dict(brightness=250.0),
    dict(sharpness=0.5), dict(inside=0.3),
])
def test_unusable_footage_is_inconclusive(bad):
    f = Fusion(_params())
    v = f.fuse({"artefact": _sig("artefact", 0.99)}, _obs(**bad))
    assert v.label == "inconclusive"
    assert "too little usable face" in v.reasons[0]


def test_quality_signal_is_used_and_never_evidence():
    f = Fusion(_params())
    obs = _obs()  # observations look fine, the quality monitor says otherwise
    q_bad = Signal("quality", 0.9, 60, (), (("usable_fraction", 0.1), ("dark_fraction", 0.9)))
    v = f.fuse({"artefact": _sig("artefact", 0.1), "quality": q_bad}, obs)
    assert v.label == "inconclusive" and "dark 90%" in v.reasons[0]
    q_ok = Signal("quality", 0.05, 60, (), (("usable_fraction", 0.95),))
    a = f.fuse({"artefact": _sig("artefact", 0.1), "quality": q_ok}, obs)
    b = f.fuse({"artefact": _sig("artefact", 0.1), "quality": Signal("quality", 0.25, 60)}, obs)
    assert a.label == b.label == "no_signs" and a.risk == pytest.approx(b.risk)


def test_quality_counts_the_whole_call_when_the_record_keeps_a_horizon():
    # a live record keeps about its horizon's frames; the quality signal counts the whole call
    f = Fusion(_params())
    q = Signal("quality", 0.2, 9000, (), (("usable_fraction", 0.8),))
    qa = f.quality({"quality": q}, _obs(100))
    assert qa.frames == 9000 and qa.usable == 7200
    assert f.quality({"quality": Signal("quality", 0.2, 40)}, _obs(100)).frames == 100


def test_partly_usable_footage_is_judged():
    obs = _obs(100)
    obs[:50] = _obs(50, face=False)  # half the clip without a face: still enough
    qa = assess_quality(obs, FusionOptions().usable())
    assert qa.usable_fraction == pytest.approx(0.5)
    v = Fusion(_params()).fuse({"artefact": _sig("artefact", 0.95)}, obs)
    assert v.label == "fake"


def test_session_uses_fusion():
    class Tracker:
        def process(self, image, t, frame_index=-1):
            return FaceObservation(t, frame_index, image.shape[1], image.shape[0], True, 1,
                                   box=np.array([10, 10, 80, 80], np.float32),
                                   quality=FaceQuality(80, 50, 120, 1.0))

        def reset(self):
            pass

    class Const:
        name = "artefact"

        def __init__(self):
            self.n = 0

        def update(self, obs, ctx):
            self.n += 1
            return ()

        def signals(self):
            return {"artefact": Signal("artefact", 0.97, self.n, (Segment(0.2, 0.6, 0.97, "x"),))}

        def reset(self):
            self.n = 0

    s = Session(Tracker(), [Const()], fusion=Fusion(_params()))
    img = np.zeros((120, 160, 3), np.uint8)
    for i in range(30):
        s.process(img, i / 30)
    v = s.verdict()
    assert v.label == "fake" and v.segments[0].start == 0.2


# ---------------------------------------------------------------------------------------------
# stored reviews, packaged params, confusion table
# ---------------------------------------------------------------------------------------------
def test_verdict_from_review_matches_direct_fusion():
    f = Fusion(_params())
    obs = _obs(40)
    sigs = {"artefact": _sig("artefact", 0.85, (Segment(0.1, 0.5, 0.9, "b"),)), "face_slip": _sig("face_slip", 0.5)}
    direct = f.fuse(sigs, obs)
    doc = {
        "source": {"width": 640, "height": 480},
        "timeline": [o.to_dict() for o in obs],
        "signals": {k: v.to_dict() for k, v in sigs.items()},
    }
    doc = json.loads(json.dumps(doc))
    again = verdict_from_review(doc, f)
    assert again.label == direct.label and again.risk == pytest.approx(direct.risk, abs=1e-4)
    assert again.segments[0].start == pytest.approx(0.1)


def test_packaged_params_load_and_validate():
    p = load_params()
    assert p.thresholds["suspicious"] <= p.thresholds["fake"]
    f = Fusion.from_options(FusionOptions())
    vals = {k: 0.9 for k in (*p.features, *p.rules)}
    assert f.risk(vals) is not None
    assert f.describe()["thresholds"] == {k: pytest.approx(v) for k, v in p.thresholds.items()}


def _challenges(n: int, failed: int = 0) -> dict[str, Signal]:
    return {"challenge": Signal("challenge", failed / n, n),
            "challenge_breakdown": Signal("challenge_breakdown", 0.1, n)}


def test_genuine_only_when_an_active_check_backs_it():
    f = Fusion(load_params())
    obs = _obs()
    passive = {k: _sig(k, c) for k, c in zip(f.params.features, f.params.center, strict=True)}
    v = f.fuse(passive, obs)
    assert v.label == "no_signs" and v.assurance == ("passive",)
    assert v.risk < f.params.thresholds["suspicious"]
    assert v.to_dict()["assurance"] == ["passive"] and v.to_dict()["label"] == "no_signs"
    # a passed challenge sequence backs "genuine"
    g = f.fuse({**passive, **_challenges(3)}, obs)
    assert g.label == "genuine" and g.assurance == ("passive", "challenges")
    assert g.reasons[0] == "backed by challenges: 3 of 3 passed"
    # too short a sequence does not, and says why
    short = f.fuse({**passive, **_challenges(2)}, obs)
    assert short.label == "no_signs" and short.assurance == ("passive",)
    assert any("at least 3" in r for r in short.reasons)
    # a failed challenge raises an alarm that rests on the challenges
    bad = f.fuse({**passive, **_challenges(3, failed=2)}, obs)
    assert bad.label in ("suspicious", "fake") and bad.assurance == ("challenges",)
    # a match with a reference photo or enrolment backs "genuine"; a mismatch is an alarm
    ref = f.fuse({**passive, "reference_mismatch": _sig("reference_mismatch", 0.1)}, obs)
    assert ref.label == "genuine" and ref.assurance == ("passive", "reference")
    other = f.fuse({**passive, "reference_mismatch": _sig("reference_mismatch", 0.95)}, obs)
    assert other.label == "fake" and other.assurance == ("reference",)
    # nothing passive measured but the reference matched
    only_ref = f.fuse({"reference_mismatch": _sig("reference_mismatch", 0.1)}, obs)
    assert only_ref.label == "genuine" and only_ref.assurance == ("reference",)
    # a failure the fusion does not alarm on (nothing broke down) backs nothing, and says so
    lenient = Fusion(_params(intercept=0.0, coef=np.zeros(3), thresholds={"suspicious": 0.6, "fake": 0.8}))
    one = lenient.fuse({"artefact": _sig("artefact", 0.2), "challenge": Signal("challenge", 1 / 3, 3),
                        "challenge_breakdown": Signal("challenge_breakdown", 0.0, 3)}, obs)
    assert one.label == "no_signs" and one.assurance == ("passive",) and one.risk < 0.6
    assert one.reasons[0] == "1 of 3 challenges failed: not enough for an alarm, and no backing for a genuine label"
    near = lenient.fuse({"artefact": _sig("artefact", 0.2), "reference_mismatch": _sig("reference_mismatch", 0.52)}, obs)
    assert near.label == "no_signs" and "does not clearly match the reference" in near.reasons[0]
    # unusable footage rests on nothing
    dark = f.fuse({**passive, **_challenges(3)}, _obs(brightness=5.0))
    assert dark.label == "inconclusive" and dark.assurance == ()


def test_confusion_table_counts():
    def clip(label, attack, risk, vlabel=None):
        return {"label": label, "attack": attack, "verdict": {"label": vlabel, "risk": risk}}

    clips = [clip("real", "none", 0.1), clip("real", "none", 0.6), clip("real", "none", 0.2),
             clip("real", "none", None, "inconclusive"),
             clip("fake", "faceswap", 0.9), clip("fake", "faceswap", 0.3),
             clip("fake", "faceswap_realtime", 0.7), clip("fake", "faceswap_realtime", 0.95)]
    t = confusion_table(clips, {"suspicious": 0.5, "fake": 0.8})
    assert t["real"]["n"] == 4 and t["real"]["inconclusive"] == 1
    assert t["real"]["bpcer"] == pytest.approx(1 / 3) and t["real"]["bpcer_fake"] == 0
    assert t["attacks"]["faceswap"]["apcer"] == pytest.approx(0.5)
    assert t["attacks"]["faceswap_realtime"]["apcer"] == 0
    assert t["attacks"]["faceswap_realtime"]["apcer_fake"] == pytest.approx(0.5)
    assert t["all_attacks"]["n"] == 4 and t["all_attacks"]["apcer"] == pytest.approx(0.25)
    assert t["real"]["no_signs"] == 2 and t["real"]["genuine"] == 0, "no active check: no_signs"
    assert t["attacks"]["faceswap"]["no_signs"] == 1
    text = format_confusion_table(t)
    assert "BPCER" in text and "faceswap_realtime" in text and "33.3%" in text
    # aligned: the numbers of every row end where their header does (right-aligned columns)
    lines = text.splitlines()[1:]  # after the thresholds line
    head = lines[0]
    assert head.startswith("class") and "no signs" in head
    ends = [m.end() for m in re.finditer(r"\S+(?: \S+)*", head)][1:]  # cells are 2+ spaces apart
    assert len(ends) == 8
    for ln in lines[1:]:
        assert len(ln) == len(head), (ln, head)
        for e in ends:
            assert ln[e - 1] != " " and (e == len(ln) or ln[e] == " "), (ln, e)
    # a backed "genuine" verdict stays genuine at thresholds; a no_signs counts as not flagged
    ok = {"label": "real", "attack": "none",
          "verdict": {"label": "genuine", "risk": 0.1, "assurance": ["passive", "challenges"]}}
    assert confusion_table([ok], {"suspicious": 0.5, "fake": 0.8})["real"]["genuine"] == 1
    missed = {"label": "fake", "attack": "x", "verdict": {"label": "no_signs", "risk": 0.2}}
    assert confusion_table([missed])["attacks"]["x"]["apcer"] == 1.0
    # without thresholds the stored labels are used
    for c, lab in zip(clips, ["no_signs", "suspicious", "no_signs", "inconclusive", "fake", "no_signs",
                              "suspicious", "fake"], strict=True):
        c["verdict"]["label"] = lab
    assert confusion_table(clips)["real"]["bpcer"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------------
# the fitting procedure, on synthetic eval data
# ---------------------------------------------------------------------------------------------
def _synthetic_eval(path: Path, seed: int = 0, n_people: int = 40) -> Path:
    rng = np.random.default_rng(seed)
    clips = []
    for p in range(n_people):
        for k in range(2):
            pair = f"dfl_Person{p}_{k}"
            for label in ("real", "fake"):
                y = label == "fake"
                if y and (p + k) % 3 == 0:  # fewer fakes than reals, as in the dev set
                    continue
                sig = {
                    "artefact": float(np.clip(rng.normal(0.3 + 0.17 * y, 0.15), 0, 1)),
                    "face_slip": float(np.clip(rng.normal(0.3 + 0.17 * y, 0.15), 0, 1)) if rng.random() > 0.15 else None,
                    "noise": float(rng.random()),
                    "quality": float(rng.random() * 0.2),
                    "verdict": 0.5,
                }
                clips.append({"path": f"video/{label}/{pair}.mp4", "label": label,
                              "attack": "faceswap_realtime" if y else "none", "pair": pair,
                              "signals": sig, "verdict": {"label": "genuine", "risk": 0.1}})
    path.write_text(json.dumps({"schema": "liveness.eval/1", "clips": clips}))
    return path


def test_fit_procedure_on_synthetic_eval(tmp_path):
    fit = _fit_module()
    ev = _synthetic_eval(tmp_path / "eval.json")
    kw = dict(transforms=("identity", "logit"), lambdas=(0.01, 0.1))
    params, text = fit.run(ev, command="test", **kw)
    p = FusionParams.from_dict(params)
    assert p.fitted and set(p.features) == {"artefact", "face_slip", "noise"}
    assert "quality" not in p.features and "verdict" not in p.features
    coef = dict(zip(p.features, p.coef, strict=True))
    assert coef["artefact"] > coef["noise"] and coef["face_slip"] > coef["noise"]
    m = params["metrics"]
    # two independent informative signals: fusing beats the best one, out of fold
    assert m["fused_auc_oof"] >= m["best_single_signal_auc"]
    assert m["oof_at_thresholds"]["bpcer"] <= 0.05 + 1e-9
    assert m["oof_at_thresholds"]["bpcer_fake"] <= m["oof_at_thresholds"]["bpcer"]
    assert params["provenance"]["eval_sha256"] and params["provenance"]["command"] == "test"
    assert "fused video AUC" in text
    # reproducible: same file -> same coefficients and thresholds
    again, _ = fit.run(ev, command="test", **kw)
    for k in ("features", "coef", "center", "scale", "intercept", "thresholds", "transform"):
        assert again[k] == params[k]
    # the fitted params drive Fusion; in-sample BPCER at the operating threshold stays low
    f = Fusion(p)
    clips = json.loads(ev.read_text())["clips"]
    for c in clips:
        c["verdict"] = {"risk": f.risk(c["signals"])}
    table = confusion_table(clips, f.thresholds)
    assert table["real"]["bpcer"] <= 0.05 + 1e-9
    assert table["all_attacks"]["apcer"] < 1.0


def test_fit_groups_keep_pairs_and_people_together():
    fit = _fit_module()
    assert fit.group_of({"pair": "dfl_Kim_Jarrey_2", "path": "x"}) == "dfl_Kim_Jarrey"
    assert fit.group_of({"pair": "", "path": "video/real/liveportrait_d3.mp4"}) == "liveportrait_d3"
    assert fit.group_of({"pair": "roop", "path": "video/fake/roop_output.mp4"}) == "roop"


def test_fit_threshold_rule():
    fit = _fit_module()
    y = np.array([0] * 20 + [1] * 5, float)
    r = np.concatenate([np.linspace(0.0, 0.95, 20), [0.5, 0.97, 0.98, 0.99, 1.0]])
    t = fit.threshold_for_bpcer(r, y, 0.05)  # one real of 20 may be above
    assert ((r >= t) & (y == 0)).sum() == 1
    t0 = fit.threshold_for_bpcer(r, y, 0.0)
    assert ((r >= t0) & (y == 0)).sum() == 0 and t0 <= 0.97


def test_reference_mismatch_rule_flags_another_person_and_a_match_reassures():
    f = Fusion()
    base = {"artefact": 0.3, "face_smoothness": 0.3, "sharpness_gap": 0.3}
    neutral = f.risk(base)
    assert f.risk({**base, "reference_mismatch": 0.99}) >= f.params.thresholds["fake"] > neutral
    assert f.risk({**base, "reference_mismatch": 0.05}) < neutral


def test_one_usable_face_rule_for_the_monitor_and_the_gate():
    """The quality monitor and the fusion gate share one set of thresholds (core.usable)."""
    from liveness.core.usable import USABLE
    from liveness.signals.quality import QualityMonitor, QualityOptions

    assert FusionOptions().usable() == USABLE
    q = QualityOptions()
    assert (q.min_size_px, q.min_brightness, q.max_brightness, q.min_sharpness, q.min_inside) == (
        USABLE.min_size_px, USABLE.min_brightness, USABLE.max_brightness, USABLE.min_sharpness, USABLE.min_inside)
    mon = QualityMonitor()
    for size in (USABLE.min_size_px - 1, USABLE.min_size_px + 1):
        obs = _obs(20, size=size)
        unusable = any(mon.conditions(obs[0])[k] for k in ("small",))
        gate = assess_quality(obs, FusionOptions().usable())
        assert unusable == (gate.usable_fraction == 0.0)
