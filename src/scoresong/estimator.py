"""The scikit-learn estimator: :class:`ScoreSongClassifier`.

Scaling + a base classifier (logistic regression or histogram gradient boosting), wrapped in
sigmoid calibration fitted on grouped folds so that ``predict_proba`` is a probability a user
can threshold. This module imports scikit-learn; :mod:`scoresong.model` (loading a model and
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

__all__ = ["ScoreSongClassifier"]


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
