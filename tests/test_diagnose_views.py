"""corpus.diagnose_views: column-group permutation finds the group a model's figures ride on."""

import numpy as np

from corpus import diagnose_views as D

NAMES = ["vocal.fluct_mean:mean", "vocal.voiced_frac:mean",
         "vocal_centre.fluct_mean:mean", "vocal_centre.voiced_frac:mean"]


class _Model:
    """Song probability from the centre's fluctogram column alone; never no_music."""

    def parts(self, X):
        return np.zeros(len(X)), 1 / (1 + np.exp(-4 * X[:, 2]))

    def labels(self, q, s):
        return np.where(s >= 0.5, "song", "score")


def test_shuffling_the_group_the_model_reads_costs_and_others_do_not():
    rng = np.random.default_rng(1)
    y = np.arange(200) < 60
    X = rng.standard_normal((200, 4))
    X[:, 2] += np.where(y, 2.0, -2.0)
    res = D.permuted(_Model(), X, y, NAMES, repeats=3)
    assert res["as is"]["roc_auc"] > 0.95 and res["as is"]["songs_found"] > 50
    fl = res["second view: fluctogram and vocal variance shuffled (1 columns)"]
    pitch = res["second view: pitch-based statistics shuffled (1 columns)"]
    assert fl["roc_auc"] < 0.7 and pitch == res["as is"]
    assert res["mix: vocal family shuffled (2 columns)"] == res["as is"]
    # The second view replaced by the mix's values: the mix's fluct column is noise here.
    assert res["second view := the mix's values (2 columns)"]["roc_auc"] < 0.7
    assert "| as is |" in D.render(res, "x", 60, 140, 3)


def test_cv_permutation_on_stereo_items_finds_the_column_the_corpus_teaches():
    """--cv: leave-one-group-out fits; shuffling the second view's fluctogram column (the one
    the labels follow) among the held-out stereo items costs, the mix's noise columns do not."""
    rng = np.random.default_rng(2)
    n = 600
    y = rng.random(n) < 0.4
    groups = np.repeat(np.array(["c0", "c1", "c2"]), n // 3)
    stereo = rng.random(n) < 0.5
    X = rng.standard_normal((n, 4))
    X[:, 2] += np.where(y, 1.5, -1.5)
    res = D.cv_permuted(X, y, groups, stereo, NAMES, repeats=2)
    assert [f["group"] for f in res["folds"]] == ["c0", "c1", "c2"]
    fig = res["figures"]
    assert fig["as is"]["roc_auc"] > 0.9
    assert fig["second view: fluctogram and vocal variance shuffled"]["roc_auc"] < 0.7
    assert fig["mix: vocal family shuffled"]["roc_auc"] > 0.85
    assert "| as is |" in D.render_cv(res, "m.csv")


def test_medians_per_view_and_population():
    X = np.array([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0, 5.0, 6.0], [5.0, 6.0, 7.0, 8.0]])
    names = ["vocal.voiced_frac:mean", "vocal.fluct_mean:mean",
             "vocal_centre.voiced_frac:mean", "vocal_centre.fluct_mean:mean"]
    med = D.medians(names, {"a": (X, np.array([True, True, False])), "none": (X, np.zeros(3, bool))})
    assert med["vocal | a (n=2)"] == {"voiced_frac": 2.0, "fluct_mean": 3.0}
    assert med["vocal_centre | a (n=2)"] == {"voiced_frac": 4.0, "fluct_mean": 5.0}
    assert med["vocal | none (n=0)"] == {}
    assert "| vocal_centre | a (n=2) | 4.000 |" in D.render_medians(med)
