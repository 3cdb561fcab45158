from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from liveness import InputError
from liveness.apps.eval import auc, bpcer_at_apcer, eer, load_manifest, metrics


def brute_auc(neg, pos):
    pairs = list(itertools.product(neg, pos))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for n, p in pairs) / len(pairs)


@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_auc_matches_pairwise_definition(neg, pos):
    assert auc(neg, pos) == pytest.approx(brute_auc(neg, pos))


def test_perfect_and_inverted_separation():
    assert auc([0.1, 0.2], [0.8, 0.9]) == 1.0
    assert auc([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert eer([0.1, 0.2], [0.8, 0.9]) == 0.0
    b, thr = bpcer_at_apcer([0.1, 0.2, 0.3], [0.8, 0.9, 0.95])
    assert b == 0.0 and 0.3 < thr <= 0.8
    assert auc([], [1.0]) is None


def test_bpcer_at_apcer_respects_target():
    rng = np.random.default_rng(0)
    neg, pos = rng.normal(0, 1, 400), rng.normal(1.5, 1, 400)
    b, thr = bpcer_at_apcer(neg, pos, 0.10)
    assert (pos < thr).mean() <= 0.10 + 1e-9
    assert b == pytest.approx((neg >= thr).mean())


def test_metrics_per_signal_and_attack():
    clips = [
        {"label": "real", "attack": "none", "signals": {"s": 0.1}, "frames": {"s": [0.1, 0.2]}},
        {"label": "real", "attack": "none", "signals": {"s": 0.3}, "frames": {"s": [0.3]}},
        {"label": "fake", "attack": "swap", "signals": {"s": 0.9}, "frames": {"s": [0.9, 0.8]}},
        {"label": "fake", "attack": "avatar", "signals": {"s": 0.2}, "frames": {"s": [0.2]}},
    ]
    for c, pair in zip(clips, ["p1", "p2", "p1", ""], strict=True):
        c["pair"] = pair
    (m,) = metrics(clips)
    assert m.video_auc == pytest.approx(0.75)
    assert m.paired_auc == 1.0 and m.pair_wins == 1.0  # only p1 has both halves: 0.9 > 0.1
    assert dict(m.per_attack_auc) == {"avatar": 0.5, "swap": 1.0}
    assert m.frame_auc == pytest.approx(brute_auc([0.1, 0.2, 0.3], [0.9, 0.8, 0.2]))


def test_manifest_errors(tmp_path: Path):
    with pytest.raises(InputError):
        load_manifest(tmp_path / "none.csv")
    p = tmp_path / "m.csv"
    p.write_text("file,kind\na,b\n")
    with pytest.raises(InputError, match="path"):
        load_manifest(p)
    p.write_text("path,label\na.mp4,maybe\n")
    with pytest.raises(InputError, match="label"):
        load_manifest(p)
    p.write_text("path,label\na.mp4,real\n")
    assert load_manifest(p)[0]["file"] == str(tmp_path / "a.mp4")


def test_non_finite_scores_are_ignored_everywhere():
    neg, pos = [0.1, float("nan"), 0.2], [0.8, float("inf"), 0.9, None]
    assert auc(neg, pos) == 1.0 and eer(neg, pos) == 0.0
    assert bpcer_at_apcer(neg, pos)[0] == 0.0


def test_missing_clips_message_reads_well(tmp_path: Path, capsys):
    from liveness.apps.cli import main

    (tmp_path / "real.mp4").write_bytes(b"x")
    p = tmp_path / "m.csv"
    p.write_text("path,label\nreal.mp4,real\nnope.mp4,fake\n")
    assert main(["eval", str(p), "-q", "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "1 of the manifest's 2 clips is not found (first: " in err and "nope.mp4" in err and "--root" in err
    p.write_text("path,label\na.mp4,real\nb.mp4,fake\n")
    assert main(["eval", str(p), "-q", "--cache", str(tmp_path / "c")]) == 2
    assert "2 of the manifest's 2 clips are not found" in capsys.readouterr().err
    # an output that cannot be written fails before any clip is reviewed
    p.write_text("path,label\nreal.mp4,real\n")
    (tmp_path / "blocker").write_text("a file")
    assert main(["eval", str(p), "-q", "--cache", str(tmp_path / "c"), "--json", str(tmp_path / "blocker" / "e.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write the eval JSON" in err and not list((tmp_path / "c").glob("*.json"))


def test_a_training_manifest_gives_its_clips_with_their_generator(tmp_path: Path):
    """``liveness eval ../shared/data/train/manifest.csv`` reviews the clips and skips the stills."""
    (tmp_path / "m.csv").write_text(
        "path,label,kind,generator,attack,pair,group\n"
        "a.mp4,fake,clip,deeplivecam,faceswap_realtime,,g1\n"
        "b.jpg,fake,image,simswap,faceswap,p,g2\n"
        "c.mp4,real,clip,none,none,,g3\n"
    )
    rows = load_manifest(tmp_path / "m.csv")
    assert [r["path"] for r in rows] == ["a.mp4", "c.mp4"]
    assert rows[0]["generator"] == "deeplivecam" and rows[0]["attack"] == "faceswap_realtime"


def test_per_tool_scores_each_tool_against_every_real_clip():
    from liveness.apps.eval import format_per_tool, per_tool

    def clip(label, gen, art, verdict):  # noqa: ANN001, ANN202
        return {"label": label, "attack": "faceswap" if label == "fake" else "none", "generator": gen,
                "signals": {"artefact": art, "verdict": art}, "verdict": {"label": verdict}}

    clips = [clip("real", "", 0.1, "no_signs"), clip("real", "", 0.4, "suspicious"),
             clip("fake", "a", 0.9, "fake"), clip("fake", "a", 0.3, "no_signs"),
             clip("fake", "b", 0.2, "no_signs")]
    rows = {r["tool"]: r for r in per_tool(clips)}
    assert rows["a"]["fakes"] == 2 and rows["a"]["artefact"] == pytest.approx(0.75) and rows["a"]["flagged"] == 0.5
    assert rows["b"]["artefact"] == pytest.approx(0.5) and rows["b"]["flagged"] == 0.0
    assert "0.750" in format_per_tool(list(rows.values()))


def test_artefact_model_file_must_exist(tmp_path: Path):
    import argparse

    from liveness.apps.eval import run_eval

    clip = tmp_path / "x.mp4"
    clip.write_bytes(b"")
    (tmp_path / "m.csv").write_text("path,label\nx.mp4,real\n")
    args = argparse.Namespace(manifest=str(tmp_path / "m.csv"), root=None, limit=0, json=None, cache=str(tmp_path / "c"),
                              workers=1, stride=1, max_side=1280, threads=1, quiet=True,
                              artefact_model=str(tmp_path / "nope.onnx"))
    with pytest.raises(InputError, match="--artefact-model file not found"):
        run_eval(args)
