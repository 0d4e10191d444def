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
