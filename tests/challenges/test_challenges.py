"""Challenge verifiers, engine, breakdown scoring and opportunistic mode.

Observations come from the synthetic avatar's ground truth (``Avatar.observation``: mesh points
and pose as scripted, no tracker), so each challenge is shown to pass when performed and to
fail when not, with the thresholds documented in ``liveness.challenges.verifiers``. The same checks
through the real tracker on rendered video are in ``tests/testing/test_avatar.py``.
"""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from liveness import ConfigError, FaceObservation, Score
from liveness.challenges.breakdown import ScoreHistory, breakdown_scores
from liveness.challenges.engine import ChallengeEngine, EngineOptions
from liveness.challenges.features import FEATURES, feature_index, frame_features
from liveness.challenges.opportunistic import OpportunisticAnalyser
from liveness.challenges.spec import CHALLENGES, SPECS, ChallengeSpec, make_verifier
from liveness.challenges.types import ChallengeThresholds
from liveness.challenges.verifiers import Verifier
from liveness.core.analyser import FrameContext
from liveness.testing import ACTIONS, Action, Avatar, AvatarScript, AvatarState
from tests._feed import step
from tests._hands import AvatarHands, NoHands

FPS = 15.0
KINDS = sorted(CHALLENGES)


@pytest.fixture(scope="module")
def avatar() -> Avatar:
    return Avatar.astronaut(size=(480, 360))


def run(avatar: Avatar, script: AvatarScript, kinds: list[str], seconds: float,
        engine: ChallengeEngine | None = None, image: bool = False) -> ChallengeEngine:
    # the avatar's drawn hand is no hand to the hand tracker: its ground truth stands in
    eng = engine or ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(1),
                                    hands=AvatarHands(avatar, script.state_at))
    eng.start(0.0, kinds=kinds)
    for i in range(int(seconds * FPS)):
        t = i / FPS
        step(eng, avatar.observation(script.state_at(t), t, i, image=image))
        if eng.pending == 0:
            break
    return eng


@pytest.mark.parametrize("kind", KINDS)
def test_challenge_passes_when_performed(avatar, kind):
    # prompt at ~1.0 s, the avatar answers 0.8 s later
    eng = run(avatar, AvatarScript([Action(kind, 1.8)], seed=2), [kind], 8.0,
              image=kind == "cover_half_face")
    (r,) = eng.results()
    assert r.kind == kind
    assert r.passed, r.to_dict()
    assert r.reason == "performed"
    assert 0.8 <= r.latency_s <= 3.5
    assert r.onset_s is not None and r.onset_s <= r.latency_s
    assert len(r.evidence) >= 2 and np.all(r.evidence >= r.prompt_t)
    assert r.peak is not None


@pytest.mark.parametrize("kind", KINDS)
def test_challenge_fails_when_not_performed(avatar, kind):
    # idle sway, a little talking and natural single blinks, but no answer
    eng = run(avatar, AvatarScript([], seed=2), [kind], 8.0, image=kind == "cover_half_face")
    (r,) = eng.results()
    assert not r.passed, r.to_dict()
    assert r.reason == "timeout"
    assert r.latency_s == pytest.approx(EngineOptions().limit(kind), abs=0.1)


@pytest.mark.parametrize("kind,wrong", [("turn_left", "turn_right"), ("look_up", "look_down"),
                                        ("smile", "raise_eyebrows"), ("blink_twice", "blink")])
def test_the_wrong_answer_fails(avatar, kind, wrong):
    eng = run(avatar, AvatarScript([Action(wrong, 1.8)], seed=2), [kind], 8.0)
    assert not eng.results()[0].passed


def test_an_answer_before_the_prompt_does_not_count(avatar):
    # mouth held open from before the prompt: the baseline is open, the prompt is not answered
    script = AvatarScript([Action("open_mouth", -3.0, speed=0.2)], seed=2)
    eng = run(avatar, script, ["open_mouth"], 8.0)
    assert not eng.results()[0].passed


def test_a_too_slow_answer_fails(avatar):
    eng = run(avatar, AvatarScript([Action("turn_left", 7.0)], seed=2), ["turn_left"], 9.0)
    assert eng.results()[0].reason == "timeout"


def test_random_sequences_are_distinct_and_vary():
    eng = ChallengeEngine()  # secrets.SystemRandom
    seqs = {tuple(eng.start(0.0, n=3)) for _ in range(40)}
    assert all(len(set(s)) == 3 and set(s) <= set(CHALLENGES) for s in seqs)
    assert len(seqs) > 20
    gaps = set()
    for _ in range(10):
        eng.start(0.0, n=1)
        gaps.add(round(eng._next_prompt_t, 6))
    assert len(gaps) > 5
    lo, hi = EngineOptions().gap_s
    assert all(lo <= g <= hi for g in gaps)


def test_events_and_state_machine(avatar):
    eng = ChallengeEngine(EngineOptions(gap_s=(0.5, 0.5)), rng=random.Random(0))
    assert eng.state == "idle"
    script = AvatarScript([Action("turn_left", 1.2), Action("smile", 4.5)], seed=2)
    eng.start(0.0, kinds=["turn_left", "smile"])
    assert eng.state == "gap"
    events, states = [], set()
    for i in range(int(12 * FPS)):
        t = i / FPS
        out, new = step(eng, avatar.observation(script.state_at(t), t, i))
        states.add(eng.state)
        events.extend(new)
        if any(e.kind == "challenge.result" for e in new):
            assert [s.signal for s in out] == ["challenge_breakdown"]
    assert {"gap", "wait", "result", "idle"} <= states
    kinds = [e.kind for e in events]
    assert kinds == ["challenge.prompt", "challenge.result", "challenge.prompt", "challenge.result",
                     "challenge.sequence"]
    assert dict(events[0].data)["kind"] == "turn_left"
    assert dict(events[1].data)["passed"] is True
    assert dict(events[-1].data)["passed"] is True
    assert eng.sequence_passed() is True
    assert eng.events() == []  # handed out through the frame context, once
    json.dumps([e.to_dict() for e in events])  # plain JSON
    sig = eng.summary()
    assert sig.name == "challenge_breakdown" and sig.n == 2
    assert dict(sig.details)["passed"] == 2
    resp = eng.signals()["challenge"]
    assert list(eng.signals()) == ["challenge_breakdown", "challenge"]
    assert resp.name == "challenge" and resp.value == 0.0
    eng.reset()
    assert eng.state == "idle" and eng.results() == [] and eng.summary().value is None


def _no_face(t: float, i: int) -> FaceObservation:
    return FaceObservation(t, i, 480, 360, False, 0)


def test_prompt_waits_for_a_face_then_fails_no_face():
    eng = ChallengeEngine(EngineOptions(gap_s=(0.2, 0.2), max_defer_s=2.0), rng=random.Random(0))
    eng.start(0.0, kinds=["smile"])
    for i in range(int(5 * FPS)):
        step(eng, _no_face(i / FPS, i))
    (r,) = eng.results()
    assert not r.passed and r.reason == "no_face"
    assert r.prompt_t >= 2.0  # deferred as long as allowed


def test_turn_prompt_waits_for_a_frontal_baseline(avatar):
    # the head is turned 30 deg when the prompt falls due; the prompt waits until frontal
    script = AvatarScript([Action("turn_left", -1.0, amount=0.7, speed=0.5), Action("turn_left", 5.0)],
                          idle=False)
    eng = run(avatar, script, ["turn_left"], 12.0)
    (r,) = eng.results()
    assert r.prompt_t > 1.5
    assert r.passed


def test_stop_and_bad_input(avatar):
    eng = ChallengeEngine(EngineOptions(gap_s=(0.1, 0.1)), rng=random.Random(0))
    with pytest.raises(ConfigError):
        eng.start(0.0, kinds=["juggle"])
    with pytest.raises(ConfigError):
        eng.start(0.0, n=99)
    with pytest.raises(ConfigError):
        EngineOptions(kinds=("dance",))
    eng.start(0.0, kinds=["smile", "look_up"])
    for i in range(int(2 * FPS)):
        step(eng, avatar.observation(AvatarState(), i / FPS, i))
    eng.stop(2.0)
    assert eng.state == "idle" and [r.reason for r in eng.results()] == ["stopped"]


def test_breakdown_spike_against_own_baseline():
    h = ScoreHistory()
    for i in range(100):
        t = i / 10
        h.add("artefact", t, 0.2 + (0.5 if 5.0 <= t <= 6.0 else 0.0))
        h.add("steady_high", t, 0.8)
    v, per = breakdown_scores(h, 5.0, 6.5)
    d = dict(per)
    assert d["artefact"] == pytest.approx(1.0)
    assert d["steady_high"] == pytest.approx(0.0)  # high but not rising: not a breakdown
    assert v == pytest.approx(1.0)
    v2, _ = breakdown_scores(h, 7.0, 8.0)
    assert v2 == pytest.approx(0.0)
    assert breakdown_scores(ScoreHistory(), 1.0, 2.0) == (None, ())


def test_engine_breakdown_uses_given_scores(avatar):
    """A swap that breaks at profile: the artefact score spikes only while the head is turned."""
    for spike, expect in ((0.6, lambda v: v >= 0.9), (0.0, lambda v: v <= 0.2)):
        eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(0))
        eng.start(0.0, kinds=["turn_left"])
        script = AvatarScript([Action("turn_left", 1.6)], seed=2)
        for i in range(int(6 * FPS)):
            t = i / FPS
            st = script.state_at(t)
            # the frame's earlier scores reach the engine through the frame context
            step(eng, avatar.observation(st, t, i), [Score("artefact", t, 0.1 + (spike if abs(st.yaw) > 25 else 0.0))])
        (r,) = eng.results()
        assert r.passed
        assert expect(r.breakdown), r.to_dict()
        assert "artefact" in dict(r.breakdown_signals)


def test_opportunistic_mode_finds_turns_and_blinks_and_scores_breakdown(avatar):
    script = AvatarScript([Action("turn_left", 2.0), Action("blink", 6.0), Action("turn_right", 9.0),
                           Action("cover_half_face", 13.0)], idle=False)
    for spike in (0.7, 0.0):
        a = OpportunisticAnalyser()
        for i in range(int(17 * FPS)):
            t = i / FPS
            st = script.state_at(t)
            obs = avatar.observation(st, t, i)
            if 13.5 < t < 14.5:  # the hand hides the face: the track is lost briefly
                obs = _no_face(t, i)
            step(a, obs, [Score("artefact", t, 0.1 + (spike if abs(st.yaw) > 25 else 0.0))])
        kinds = [e["kind"] for e in a.episodes]
        assert kinds.count("head_turn") == 2 and "blink" in kinds and "occlusion" in kinds
        sig = a.summary()
        assert sig.name == "opportunistic_breakdown"
        if spike:
            assert sig.value >= 0.9 and any(s.reason == "head_turn" for s in sig.segments)
        else:
            assert sig.value <= 0.2


def test_opportunistic_mode_with_a_live_horizon_keeps_the_whole_call(avatar):
    """A live horizon folds old episodes away: the recent ones stay listed, the counts, the
    value and the high segments still cover the whole call."""
    script = AvatarScript([Action("turn_left", 2.0), Action("blink", 6.0)], idle=False)
    runs = {}
    for horizon in (None, 20.0):
        a = OpportunisticAnalyser()
        for rep in range(8):  # eight 10-s rounds of a turn and a blink
            for i in range(int(10 * FPS)):
                t = rep * 10.0 + i / FPS
                st = script.state_at(i / FPS)
                obs = avatar.observation(st, t, rep * 150 + i)
                ctx = FrameContext(t, "live", horizon)
                spike = 0.7 if rep == 0 and abs(st.yaw) > 25 else 0.0  # only the first turn breaks
                ctx.add_scores([Score("artefact", t, 0.1 + spike)])
                a.update(obs, ctx)
        runs[horizon] = a
    full, live = runs[None], runs[20.0]
    assert len(live.episodes) < len(full.episodes) and all(e["end"] >= 80.0 - 20.0 - 10.0 for e in live.episodes)
    sf, sl = full.summary(), live.summary()
    assert dict(sl.details)["n_head_turn"] == dict(sf.details)["n_head_turn"] == 8.0
    assert dict(sl.details)["n_blink"] == dict(sf.details)["n_blink"] >= 8.0
    assert sl.value == pytest.approx(sf.value) and sl.n == sf.n
    first = [s for s in sl.segments if s.reason == "head_turn"]
    assert first and first[0].start < 10.0  # the first turn's segment, folded, still shown


def test_frame_features_without_face_and_pose():
    row = frame_features(_no_face(1.0, 3))
    assert row[0] == 1.0 and row[1] == 0.0
    assert np.isnan(row[feature_index("yaw"):feature_index("cy") + 1]).all()
    assert row[feature_index("width")] == 480 and row[feature_index("height")] == 360
    assert np.isnan(row[len(FEATURES):]).all()  # no image: no thumbnail


def test_result_to_dict_is_json(avatar):
    eng = run(avatar, AvatarScript([Action("smile", 1.6)], seed=2), ["smile"], 6.0)
    d = eng.results()[0].to_dict()
    json.dumps(d)
    assert d["kind"] == "smile" and d["passed"] is True and d["measure"] == "mouth_width_ratio"


def _drifting_cover(avatar: Avatar, options: EngineOptions, side: int) -> ChallengeEngine:
    # the whole head drifts 0.2 IOD right (and 0.1 IOD down) while the hand covers one half
    script = AvatarScript([Action("cover_half_face", 1.8, side=side)], seed=2)

    def state(t: float) -> AvatarState:
        d = 0.2 * avatar.iod * float(np.clip(t - 1.4, 0.0, 1.0))
        return dataclasses.replace(script.state_at(t), tx=d, ty=0.5 * d)

    eng = ChallengeEngine(options, rng=random.Random(1), hands=AvatarHands(avatar, state))
    eng.start(0.0, kinds=["cover_half_face"])
    for i in range(int(8 * FPS)):
        t = i / FPS
        step(eng, avatar.observation(state(t), t, i, image=True))
        if eng.pending == 0:
            break
    return eng


@pytest.mark.parametrize("side", [-1, 1])
def test_cover_is_seen_while_the_head_drifts_with_compensation(avatar, side):
    # the drift changes the uncovered half's fixed image cells too; the optional rigid-move
    # compensation (cover_shift_iod, off by default: it raises replay chance passes) keeps the
    # answer, and without it the same answer fails
    comp = EngineOptions(gap_s=(1.0, 1.0), thresholds=ChallengeThresholds(cover_shift_iod=0.3))
    (r,) = _drifting_cover(avatar, comp, side).results()
    assert r.passed, r.to_dict()
    (r,) = _drifting_cover(avatar, EngineOptions(gap_s=(1.0, 1.0)), side).results()
    assert not r.passed


def test_prompt_waits_for_the_face_at_rest(avatar):
    # the brows are still coming down from a raise when the prompt is due (t = 1.0 s): the
    # baseline would be a face about to change, so the prompt waits until 1 s of rest
    script = AvatarScript([Action("raise_eyebrows", 0.3)], seed=2)  # moves until 1.9 s
    prompts = {}
    for wait in (3.0, 0.0):
        eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0), rest_wait_s=wait), rng=random.Random(1))
        eng.start(0.0, kinds=["smile"])
        for i in range(int(6 * FPS)):
            t = i / FPS
            for ev in step(eng, avatar.observation(script.state_at(t), t, i))[1]:
                if ev.kind == "challenge.prompt":
                    prompts[wait] = ev.t
    assert prompts[0.0] == pytest.approx(1.0, abs=0.1)
    assert 2.0 <= prompts[3.0] <= 4.0 + 0.1


def test_a_passed_sequence_backs_a_genuine_verdict_and_a_failed_one_does_not(avatar):
    """End to end through the engine's own signals: the avatar answers each prompt as it comes
    (passes all three) or ignores them (fails); fusion with passive signals at the typical
    values of real people says genuine only for the answered sequence."""
    from liveness.core.types import Signal
    from liveness.verdict.fusion import Fusion

    fusion = Fusion()
    passive = {k: Signal(k, float(c), 50) for k, c in zip(fusion.params.features, fusion.params.center,
                                                            strict=True)}
    obs = [avatar.observation(AvatarState(), i / FPS, i) for i in range(30)]
    verdicts = {}
    for answer in (True, False):
        eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(3))
        eng.start(0.0, kinds=["turn_left", "blink_twice", "smile"])  # answered from the mesh alone
        actions: list[Action] = []
        for i in range(int(40 * FPS)):
            t = i / FPS
            for e in step(eng, avatar.observation(AvatarScript(actions).state_at(t), t, i))[1]:
                if answer and e.kind == "challenge.prompt":
                    actions.append(Action(dict(e.data)["kind"], t + 0.5))
            if eng.pending == 0:
                break
        signals = {**passive, **eng.signals()}
        verdicts[answer] = fusion.fuse(signals, obs)
    ok, ignored = verdicts[True], verdicts[False]
    assert ok.label == "genuine" and ok.assurance == ("passive", "challenges"), ok
    assert "3 of 3 passed" in ok.reasons[0]
    assert ignored.label in ("suspicious", "fake") and "challenges" in ignored.assurance, ignored


def test_the_spec_table_is_the_one_place_a_challenge_is_defined():
    """Every kind the engine, its options and the avatar know comes from ``SPECS``; each row
    has a prompt, a measure of the feature row and a verifier for it."""
    kinds = [s.kind for s in SPECS]
    assert list(CHALLENGES) == kinds and len(set(kinds)) == len(kinds)
    assert EngineOptions().kinds == tuple(kinds)
    o = EngineOptions()
    assert {k: o.limit(k) for k in kinds} == {s.kind: s.time_limit_s or o.time_limit_s for s in SPECS}
    assert EngineOptions(time_limits=(("smile", 9.0),)).limit("smile") == 9.0
    assert set(kinds) <= set(ACTIONS)
    base = np.zeros(len(FEATURES) + 40 * 30)
    for s in SPECS:
        assert s.prompt.endswith(".") and s.feature in FEATURES
        v = make_verifier(s.kind, 1, 0.0, base, ChallengeThresholds())
        assert isinstance(v, Verifier) and v.kind == s.kind


def test_a_new_challenge_is_one_table_row_and_its_verifier(avatar, monkeypatch):
    """Adding a challenge: a verifier (here an existing one with its own threshold) and one
    ``ChallengeSpec`` row; the engine prompts, verifies and limits it from the row alone."""
    from liveness.challenges import spec as spec_mod
    from liveness.challenges.verifiers import LookVerifier

    class NodVerifier(LookVerifier):  # "nod": look down by half the usual angle
        def __init__(self, *a, **k):
            super().__init__(*a, sign=-1.0, **k)
            self.threshold = self.th.look_delta_deg / 2

    row = ChallengeSpec("nod", "Please nod.", "pitch", NodVerifier, time_limit_s=4.0)
    monkeypatch.setattr(spec_mod, "_BY_KIND", {**spec_mod._BY_KIND, "nod": row})
    monkeypatch.setitem(spec_mod.CHALLENGES, "nod", row.prompt)
    eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(1))
    script = AvatarScript([Action("look_down", 1.8)], seed=2)
    eng.start(0.0, kinds=["nod"])
    events = []
    for i in range(int(8 * FPS)):
        t = i / FPS
        events += step(eng, avatar.observation(script.state_at(t), t, i))[1]
        if eng.pending == 0:
            break
    (r,) = eng.results()
    assert r.kind == "nod" and r.passed and r.measure == "pitch_change_deg", r.to_dict()
    prompt = next(e for e in events if e.kind == "challenge.prompt")
    assert prompt.message == "Please nod." and dict(prompt.data)["time_limit_s"] == 4.0


def test_a_cover_without_a_hand_fails_as_no_hand(avatar):
    """The half changes as in a cover, but no hand source sees a hand on the face: not
    answered (``no_hand``); with the hand requirement off (``cover_hand=False``) it passes."""
    script = AvatarScript([Action("cover_half_face", 1.8)], seed=2)
    none = NoHands()
    eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(1), hands=none)
    (r,) = run(avatar, script, ["cover_half_face"], 8.0, engine=eng, image=True).results()
    assert not r.passed and r.reason == "no_hand", r.to_dict()
    assert none.calls > 20  # asked on every frame of the challenge
    assert "face_under_hand" not in dict(r.breakdown_signals)  # no hand came near: no score
    off = EngineOptions(gap_s=(1.0, 1.0), thresholds=ChallengeThresholds(cover_hand=False))
    eng = ChallengeEngine(off, rng=random.Random(1), hands=NoHands())
    (r,) = run(avatar, script, ["cover_half_face"], 8.0, engine=eng, image=True).results()
    assert r.passed, r.to_dict()
    assert eng._hand_source.calls == 0  # hands are not tracked when not required


def test_hands_are_tracked_only_during_the_cover_challenge(avatar):
    script = AvatarScript([Action("smile", 1.8), Action("cover_half_face", 5.5)], seed=2)
    src = AvatarHands(avatar, script.state_at)
    eng = ChallengeEngine(EngineOptions(gap_s=(1.0, 1.0)), rng=random.Random(1), hands=src)
    eng.start(0.0, kinds=["smile", "cover_half_face"])
    prompts = {}
    for i in range(int(14 * FPS)):
        t = i / FPS
        before, was = src.calls, eng.current
        for ev in step(eng, avatar.observation(script.state_at(t), t, i, image=True))[1]:
            if ev.kind == "challenge.prompt":
                prompts[dict(ev.data)["kind"]] = t
        if src.calls > before:  # only while the cover is being answered
            assert was == "cover_half_face"
        if eng.pending == 0:
            break
    smile, cover = eng.results()
    assert smile.passed and cover.passed, cover.to_dict()
    assert 0 < src.calls <= (cover.decided_t - cover.prompt_t) * FPS + 1
    per = dict(cover.breakdown_signals)
    assert "face_under_hand" in per and per["face_under_hand"] < 0.3, per
    assert cover.breakdown is not None and cover.breakdown >= per["face_under_hand"]


def test_an_engine_rejects_a_bad_hand_source():
    with pytest.raises(ConfigError):
        ChallengeEngine(hands=object())  # type: ignore[arg-type]
