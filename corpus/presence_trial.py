"""Is the music-or-not part limited by its learner? (issue 12; record: models/presence.ab.md)

The presence part of the shipped model (P(no_music)) uses the song part's learner:
histogram gradient boosting with sigmoid calibration, as :class:`scoresong.estimator.
ScoreSongClassifier` builds it. This script cross-validates that part and a few other
learners on the same features, folds and threshold rule, nothing else changed:

- ``P0``: the shipped learner (``ScoreSongClassifier(estimator="hgb")``);
- ``P1``: more capacity (600 iterations of 31 leaves, learning rate 0.05, 20 samples a leaf);
- ``P2``: the shipped learner with isotonic instead of sigmoid calibration;
- ``P3``: the average of the calibrated P0 and the calibrated logistic regression.

Each is the outer loop of :func:`scoresong.training.nested_cv` (grouped folds of the
manifest's groups; calibration on grouped inner folds; the threshold is the training part's
no_music prior), so ``P0`` reproduces the shipped report's out-of-fold P(no_music). It prints
music-or-not recalls at that threshold, the best music recall at a no_music recall of at
least 0.97 (a threshold read off the test folds: an upper bound, not an operating point),
and, with ``--song-oof`` (the shipped report's predictions file), the three-class rule's
figures with the song part's out-of-fold P(song | music). Sample weights are not used (the
shipped corpus has none; a weighted manifest would not reproduce its report).

    python -m corpus.presence_trial MANIFEST --cache CACHE [--song-oof models/scoresong.report.predictions.csv] [-o out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

import numpy as np

CANDIDATES = ("P0", "P1", "P2", "P3")


class _Bigger:
    """P1: the shipped learner's recipe (scaler, balanced hgb, sigmoid calibration on grouped
    inner folds, one final fit) with more capacity."""

    def __init__(self, random_state: int = 0):
        self.random_state = random_state

    def fit(self, X, y, groups):
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import GroupKFold
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        base = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(
            max_iter=600, learning_rate=0.05, max_leaf_nodes=31, min_samples_leaf=20,
            l2_regularization=1.0, class_weight="balanced", random_state=self.random_state))
        splits = list(GroupKFold(n_splits=min(4, len(np.unique(groups)))).split(X, y, groups))
        self.model_ = CalibratedClassifierCV(base, method="sigmoid", cv=splits, ensemble=False).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)


def _learner(name: str, random_state: int = 0):
    """An unfitted calibrated binary classifier for candidate ``name`` (or ``logreg``)."""
    from scoresong.estimator import ScoreSongClassifier

    if name == "P0":
        return ScoreSongClassifier(estimator="hgb", random_state=random_state)
    if name == "P1":
        return _Bigger(random_state)
    if name == "P2":
        return ScoreSongClassifier(estimator="hgb", calibration="isotonic", random_state=random_state)
    if name == "logreg":
        return ScoreSongClassifier(estimator="logreg", random_state=random_state)
    raise ValueError(f"unknown candidate {name!r}")


def oof_presence(X, y, groups, name: str, *, outer: int = 5, random_state: int = 0):
    """Out-of-fold P(no_music) and per-item threshold (the training part's no_music prior)
    of candidate ``name`` on grouped outer folds; ``y`` holds ``music`` / ``no_music``."""
    from sklearn.model_selection import GroupKFold

    from scoresong.training import balanced_threshold

    if name == "P3":
        a, thr = oof_presence(X, y, groups, "P0", outer=outer, random_state=random_state)
        b, _ = oof_presence(X, y, groups, "logreg", outer=outer, random_state=random_state)
        return (a + b) / 2, thr
    p, thr = np.zeros(len(y)), np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=min(outer, len(np.unique(groups)))).split(X, y, groups):
        clf = _learner(name, random_state).fit(X[tr], y[tr], groups=groups[tr])
        p[te] = clf.predict_proba(X[te])[:, list(clf.classes_).index("no_music")]
        thr[te] = balanced_threshold(y[tr], positive="no_music")
    return p, thr


def summarise(p, thr, no_music, kinds) -> dict:
    """Music-or-not recalls at the per-fold threshold, per-kind accuracy, ROC-AUC, and the
    best music recall at no_music recall >= 0.97 (an upper bound: threshold from the test)."""
    from sklearn.metrics import roc_auc_score

    called = p >= thr
    best = None
    for t in np.unique(p):
        a, b = float((p[no_music] >= t).mean()), float((p[~no_music] < t).mean())
        if a >= 0.97 and (best is None or b > best):
            best = b
    return {"no_music_recall": float(called[no_music].mean()),
            "music_recall": float((~called[~no_music]).mean()),
            "roc_auc": float(roc_auc_score(no_music, p)),
            "music_recall_at_no_music_0.97_upper_bound": best,
            "per_kind_accuracy": {k: float((called[kinds == k] == no_music[kinds == k]).mean())
                                  for k in np.unique(kinds)}}


def _song_oof(path, names):
    """The shipped report's out-of-fold P(song | music) and threshold, row for row with
    ``names`` (``path@start``)."""
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows[f"{r['path']}@{round(float(r['start_s']), 2)}"] = (float(r["p_song"]), float(r["threshold"]))
    out = []
    for n in names:
        path, start = n.rsplit("@", 1)
        out.append(rows[f"{path}@{round(float(start), 2)}"])
    return np.array(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.presence_trial", description=__doc__.split("\n")[0])
    ap.add_argument("manifest")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--jobs", type=int, default=2, help="feature extraction workers")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--song-oof", default=None)
    ap.add_argument("-o", "--out", default=None)
    a = ap.parse_args(argv)
    from scoresong import training
    from scoresong.report import evaluate_three_class

    data = training._extract(training._read(a.manifest), n_jobs=a.jobs, cache_dir=a.cache)
    y = data.y
    no_music = y == "no_music"
    yp = np.where(no_music, "no_music", "music")
    song = _song_oof(a.song_oof, data.names) if a.song_oof else None
    results = {}
    for name in a.candidates.split(","):
        p, thr = oof_presence(data.X, yp, data.groups, name)
        res = summarise(p, thr, no_music, data.kinds)
        if song is not None:
            c3 = evaluate_three_class(y, p, song[:, 0], threshold=song[:, 1], presence_threshold=thr)
            res["three_class"] = {"no_music_recall": c3["presence"]["no_music_recall"],
                                  "music_recall": c3["presence"]["music_recall"],
                                  "accuracy": c3["accuracy"], "confusion_matrix": c3["confusion_matrix"]}
        results[name] = res
        tc = res.get("three_class", {})
        print(f"{name}: no_music {res['no_music_recall']:.4f} music {res['music_recall']:.4f} "
              f"AUC {res['roc_auc']:.4f} best music at no_music>=0.97 "
              f"{res['music_recall_at_no_music_0.97_upper_bound']:.4f}"
              + (f" | three-class rule: no_music {tc['no_music_recall']:.4f} music {tc['music_recall']:.4f}"
                 if tc else ""), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"manifest": a.manifest, "n": int(y.size), "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
