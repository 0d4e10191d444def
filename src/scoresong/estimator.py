"""The scikit-learn estimators: :class:`ScoreSongClassifier` and :class:`MusicSongClassifier`.

:class:`ScoreSongClassifier` is scaling + a base classifier (logistic regression or histogram
gradient boosting), wrapped in sigmoid calibration fitted on grouped folds so that
``predict_proba`` is a probability a user can threshold. It tells any two labels apart (score
from song; music from no music).

:class:`MusicSongClassifier` answers the three-way question (``no_music`` / ``score`` /
``song``) as two such binary models in a row: *is music audible?*, then *is it a song?*,
the second fitted on music only. So its song part is exactly the two-class model, whose
figures the third class cannot degrade, and a caller who wants only score/song uses it alone.

This module imports scikit-learn; :mod:`scoresong.model` (loading a model and
predicting with it) does not, and re-exports :class:`ScoreSongClassifier` lazily.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import unique_labels
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["ScoreSongClassifier", "MusicSongClassifier"]


def _base(estimator: str, random_state):
    if estimator == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(
            C=0.3, class_weight="balanced", max_iter=5000))
    if estimator == "hgb":
        return make_pipeline(StandardScaler(), HistGradientBoostingClassifier(
            max_iter=300, learning_rate=0.06, max_leaf_nodes=15, min_samples_leaf=30,
            l2_regularization=1.0, class_weight="balanced", random_state=random_state))
    raise ValueError(f"estimator must be 'logreg' or 'hgb', got {estimator!r}")


class _WeightedPipeline(Pipeline):
    """A pipeline whose ``fit`` takes ``sample_weight`` (handed to its last step), so that
    :class:`~sklearn.calibration.CalibratedClassifierCV` passes weights on to it."""

    def fit(self, X, y=None, sample_weight=None, **params):
        if sample_weight is not None:
            params[f"{self.steps[-1][0]}__sample_weight"] = sample_weight
        return super().fit(X, y, **params)


class ScoreSongClassifier(ClassifierMixin, BaseEstimator):
    """Scaled, calibrated classifier of file feature vectors.

    Parameters
    ----------
    estimator : {"hgb", "logreg"}
        Base classifier: histogram gradient boosting or logistic regression, both with
        balanced class weights.
    calibration : {"sigmoid", "isotonic", None}
        Probability calibration fitted on held-out folds (grouped when ``groups`` are given
        to :meth:`fit`); ``None`` keeps the base classifier's scores.
    cv : int
        Folds for calibration.
    random_state : int or None

    Attributes
    ----------
    classes_ : np.ndarray
    n_features_in_ : int
    model_ : fitted scikit-learn estimator

    Examples
    --------
    >>> clf = ScoreSongClassifier().fit(X, y, groups=g)   # doctest: +SKIP
    >>> clf.predict_proba(X[:3])[:, list(clf.classes_).index("song")]  # doctest: +SKIP
    """

    def __init__(self, *, estimator: str = "hgb", calibration: str | None = "sigmoid",
                 cv: int = 4, random_state: int | None = 0):
        self.estimator = estimator
        self.calibration = calibration
        self.cv = cv
        self.random_state = random_state

    def fit(self, X, y, groups=None, sample_weight=None):
        X, y = validate_data(self, X, y)
        self.classes_ = unique_labels(y)
        if len(self.classes_) < 2:
            raise ValueError(f"need samples of at least 2 classes to fit; got n_samples = {len(y)} "
                             f"of one class ({self.classes_[0]!r})")
        base = _base(self.estimator, self.random_state)
        if sample_weight is not None:
            base = _WeightedPipeline(base.steps)
        if self.calibration is None:
            kw = {} if sample_weight is None else {
                base.steps[-1][0] + "__sample_weight": sample_weight}
            self.model_ = base.fit(X, y, **kw)
            return self
        n_groups = len(np.unique(groups)) if groups is not None else 0
        if groups is not None and n_groups >= 2:
            splits = list(GroupKFold(n_splits=min(self.cv, n_groups)).split(X, y, groups))
        else:
            _, counts = np.unique(y, return_counts=True)
            splits = list(StratifiedKFold(n_splits=max(2, min(self.cv, counts.min())), shuffle=True,
                                          random_state=self.random_state).split(X, y))
        # ensemble=False: the folds only provide held-out scores to fit the calibration map;
        # one base model is then fitted on everything (a quarter of the size of an ensemble).
        cal = CalibratedClassifierCV(base, method=self.calibration, cv=splits, ensemble=False)
        self.model_ = cal.fit(X, y, **({} if sample_weight is None else {"sample_weight": sample_weight}))
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "model_")
        X = validate_data(self, X, reset=False)
        return self.model_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags


class MusicSongClassifier(ClassifierMixin, BaseEstimator):
    """``no_music`` / ``score`` / ``song`` as *music or not*, then *song or score*.

    ``predict_proba`` columns follow :attr:`classes_` (``["no_music", "score", "song"]``)::

        P(no_music) = q
        P(score)    = (1 - q) * (1 - s)
        P(song)     = (1 - q) * s

    with ``q`` the presence model's calibrated P(no_music) and ``s`` the song model's
    calibrated P(song | music).

    Parameters
    ----------
    presence : ScoreSongClassifier or None
        Template for the music-or-not model (fitted on every sample, labels ``music`` /
        ``no_music``); default ``ScoreSongClassifier()``.
    song : ScoreSongClassifier or None
        Template for the score-or-song model (fitted on the music samples only); default
        ``ScoreSongClassifier()``.

    Attributes
    ----------
    classes_ : np.ndarray
        ``["no_music", "score", "song"]``.
    presence_ : ScoreSongClassifier
        Fitted music-or-not model (classes ``["music", "no_music"]``).
    song_ : ScoreSongClassifier
        Fitted score-or-song model (classes ``["score", "song"]``).
    n_features_in_ : int

    Examples
    --------
    >>> clf = MusicSongClassifier().fit(X, y, groups=g)   # doctest: +SKIP
    >>> clf.predict_proba(X[:2]).round(3)                   # doctest: +SKIP
    array([[0.991, 0.008, 0.001],
           [0.002, 0.913, 0.085]])
    """

    #: Labels, in the order of the columns of :meth:`predict_proba`.
    LABELS = ("no_music", "score", "song")

    def __init__(self, *, presence=None, song=None):
        self.presence = presence
        self.song = song

    def fit(self, X, y, groups=None, sample_weight=None):
        from sklearn.base import clone

        X, y = validate_data(self, X, y)
        y = np.asarray(y).astype(str)
        if bad := set(y) - set(self.LABELS):
            raise ValueError(f"labels must be among {self.LABELS}, got {sorted(bad)}")
        if set(y) != set(self.LABELS):
            raise ValueError(f"need samples of every label {self.LABELS}; got {sorted(set(y))}")
        self.classes_ = np.asarray(self.LABELS)
        music = y != "no_music"
        g = None if groups is None else np.asarray(groups)
        sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        self.presence_ = clone(self.presence if self.presence is not None else ScoreSongClassifier()).fit(
            X, np.where(music, "music", "no_music"), groups=g, sample_weight=sw)
        self.song_ = clone(self.song if self.song is not None else ScoreSongClassifier()).fit(
            X[music], y[music], groups=None if g is None else g[music],
            sample_weight=None if sw is None else sw[music])
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "song_")
        X = validate_data(self, X, reset=False)
        q = self.presence_.predict_proba(X)[:, list(self.presence_.classes_).index("no_music")]
        s = self.song_.predict_proba(X)[:, list(self.song_.classes_).index("song")]
        return np.stack([q, (1.0 - q) * (1.0 - s), (1.0 - q) * s], axis=1)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True
        return tags
