"""corpus.presence_trial: its P0 is the shipped nested CV of the presence part, exactly."""

import numpy as np
import pytest

from corpus import presence_trial
from scoresong import training


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    n = 250
    groups = np.repeat([f"cell{k}" for k in range(5)], n // 5)
    no_music = rng.random(n) < 0.3
    X = rng.normal(size=(n, 4)) + no_music[:, None] * [1.5, 0.0, -1.0, 0.0]
    return X, np.where(no_music, "no_music", "music"), groups


def test_p0_reproduces_library_nested_cv(toy):
    X, y, g = toy
    lib = training.nested_cv(X, y, g, candidates=("hgb",), positive="no_music", log=lambda *a: None)
    p, thr = presence_trial.oof_presence(X, y, g, "P0")
    np.testing.assert_array_equal(p, lib["p_song"])
    np.testing.assert_array_equal(thr, lib["threshold"])


@pytest.mark.parametrize("name", ["P1", "P2", "P3"])
def test_candidates_give_probabilities_that_rank(toy, name):
    X, y, g = toy
    p, thr = presence_trial.oof_presence(X, y, g, name)
    assert p.shape == thr.shape == y.shape and np.all((p >= 0) & (p <= 1))
    res = presence_trial.summarise(p, thr, y == "no_music", np.where(y == "no_music", "nm", "m"))
    assert res["roc_auc"] > 0.8          # the toy classes are separated by 1.5 s.d. on two axes


def test_summarise_counts_by_hand():
    p = np.array([0.9, 0.6, 0.2, 0.1, 0.05])
    nm = np.array([True, True, True, False, False])
    res = presence_trial.summarise(p, np.full(5, 0.5), nm, np.array(list("aabbb")))
    assert res["no_music_recall"] == pytest.approx(2 / 3) and res["music_recall"] == 1.0
    # a no_music recall of 0.97 needs every no_music item: threshold 0.2 keeps both music items
    assert res["music_recall_at_no_music_0.97_upper_bound"] == 1.0
    assert res["per_kind_accuracy"] == {"a": 1.0, "b": pytest.approx(2 / 3)}
