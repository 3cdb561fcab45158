"""The swap detector's training code (issue 13): splits keep pairs together, generators are
weighted so one dataset cannot dominate, and the graph's constant resamplers are what OpenCV does."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.train.swap_data import _dev_group, items  # noqa: E402
from models.train.swap_graph import _area_matrix, _linear_matrix  # noqa: E402
from models.train.train_swap import Data, _fold_of, auc, item_weights  # noqa: E402


def test_dev_groups_keep_a_celebrity_model_and_roop_together():
    assert _dev_group("dfl_Kim_Jarrey_2") == _dev_group("dfl_Kim_Jarrey_3") == "dev:dfl_Kim_Jarrey"
    assert _dev_group("roop_snapshot") == _dev_group("roop_other") == "dev:roop"
    assert _dev_group("hdtf_WDA_EdMarkey0_000") == "dev:hdtf_WDA_EdMarkey0_000"


def test_a_fake_and_its_original_share_a_group_and_a_fold(shared):
    its = items(shared, utk=20)
    by_pair: dict[str, set[str]] = {}
    for it in its:
        if it.pair and it.domain not in ("faceless",):
            by_pair.setdefault(it.pair, set()).add(it.group)
    assert len(by_pair) > 100
    assert all(len(g) == 1 for g in by_pair.values()), [p for p, g in by_pair.items() if len(g) > 1][:5]
    keys = [it.key for it in its]
    assert len(keys) == len(set(keys))
    # faceless chips of a clip sit in that clip's group (never on the other side of a split)
    clips = {it.path: it.group for it in its if it.domain == "cam"}
    assert all(clips[it.path] == it.group for it in its if it.domain == "faceless" and it.path in clips)


def _data(gen: list[str], dom: list[str], y: list[int]) -> Data:
    n = len(y)
    return Data([], [], [], np.array(y), np.array([f"g{i}" for i in range(n)]), np.array(gen), np.array(dom))


def test_generator_weights_grow_with_the_square_root_of_their_size():
    # 100 fakes of one dataset, 4 of a tool; reals of two domains
    gen = ["dfdc"] * 100 + ["tool"] * 4 + ["none"] * 60
    dom = ["dfdc"] * 100 + ["tools"] * 4 + ["dfdc"] * 50 + ["utk"] * 10
    y = [1] * 104 + [0] * 60
    w = item_weights(_data(gen, dom, y), np.arange(len(y)))
    big, small = w[:100].sum(), w[100:104].sum()
    assert big / small == pytest.approx(np.sqrt(100) / np.sqrt(4))
    assert w[104:].sum() == pytest.approx(w[:104].sum())  # reals weigh what fakes weigh
    assert w[104:154].sum() / w[154:].sum() == pytest.approx(np.sqrt(50) / np.sqrt(10))


def test_folds_follow_groups():
    f = [_fold_of(f"train:g{i}", 5, 0) for i in range(500)]
    assert set(f) == set(range(5)) and min(np.bincount(f)) > 60
    assert _fold_of("x", 5, 0) == _fold_of("x", 5, 0)


def test_auc_counts_ties_half_and_rejects_one_class():
    assert auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert np.isnan(auc(np.array([1, 1]), np.array([0.1, 0.2])))


@pytest.mark.parametrize("n_out", [192, 96, 35, 17, 8, 3, 2])
def test_graph_resamplers_match_opencv(n_out):
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (150, 150)).astype(np.float32)
    if n_out > 150:
        r = _linear_matrix(n_out, 150)
        np.testing.assert_allclose(r @ img @ r.T, cv2.resize(img, (n_out, n_out), interpolation=cv2.INTER_LINEAR),
                                   atol=1e-4)
    a = _area_matrix(n_out, 150)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(a @ img @ a.T, cv2.resize(img, (n_out, n_out), interpolation=cv2.INTER_AREA),
                               atol=1e-4)


def test_a_self_blend_changes_the_inner_face_only_and_only_where_the_chip_is_valid():
    from models.train.swap_graph import _hull_raw, _morph
    from models.train.swap_sbi import blend_chip

    rng = np.random.default_rng(0)
    chip = rng.integers(0, 256, (150, 150, 3), np.uint8)
    valid = np.ones((150, 150), np.float32)
    valid[:, :40] = 0  # the left of the chip lay outside the picture
    far = _morph(_hull_raw(), 30, grow=True) == 0  # well outside the face outline
    changed = 0
    for k in range(10):
        fake = blend_chip(chip, valid, np.random.default_rng(k))
        diff = np.abs(fake.astype(int) - chip.astype(int)).max(axis=2)
        assert diff[far].max() <= 1 and diff[:, :40].max() <= 1  # rounding only
        changed += int((diff[_hull_raw() > 0] > 8).mean() > 0.2)
    assert changed >= 8  # nearly every blend changes the face itself


def test_self_blends_join_the_training_side_as_fakes_only():
    pytest.importorskip("sklearn")  # the training extra: pip install -e '.[train]'
    from models.train.train_swap import fit

    rng = np.random.default_rng(1)
    f = 6
    its = [type("It", (), {"pair": None, "group": f"g{i}"})() for i in range(40)]
    y = np.array([0] * 20 + [1] * 20)
    raw = [rng.normal(size=(3, f)) + (1.5 * y[i]) for i in range(40)]
    d = Data(its, raw, raw, y, np.array([f"g{i}" for i in range(40)]), np.array(["a" if v else "" for v in y]),
             np.array(["d"] * 40))
    plain = fit(d, np.arange(40), C=1.0)
    # self-blends that look like the fakes along feature 0 only: the head leans on feature 0 more
    d.sbi = [(np.c_[np.full((2, 1), 3.0), rng.normal(size=(2, f - 1))],) * 2 if v == 0 else None for v in y]
    blended = fit(d, np.arange(40), C=1.0, sbi=2.0)
    assert blended.w[0] / np.abs(blended.w).sum() > plain.w[0] / np.abs(plain.w).sum()
    assert fit(d, np.arange(40), C=1.0, sbi=0.0).w.tolist() == plain.w.tolist()  # 0: none
