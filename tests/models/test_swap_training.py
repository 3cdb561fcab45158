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
