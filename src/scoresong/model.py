"""The classifier and its safe persistence.

:class:`ScoreSongClassifier` is a scikit-learn estimator: scaling + a base classifier
(logistic regression or histogram gradient boosting), wrapped in sigmoid calibration fitted
on grouped folds so that ``predict_proba`` is a probability a user can threshold.

Model files are a pair: ``NAME.skops`` (the fitted scikit-learn objects, in skops' format,
which stores no pickled code) and ``NAME.json`` (feature schema, feature names, library
versions, threshold, metrics and the SHA-256 of the ``.skops`` file). :func:`load_model`
checks the hash, refuses any type outside a fixed allow-list before loading, and refuses a
model built for another feature schema.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

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

__all__ = ["ScoreSongClassifier", "Model", "load_model", "save_model", "ModelError",
           "UnsafeModelError", "ModelIntegrityError", "ModelSchemaError", "default_model_path"]

#: Types a model file may contain. Anything else is refused before loading.
ALLOWED_TYPES = frozenset({
    "numpy.dtype", "numpy.ndarray", "numpy.float64", "numpy.int64", "numpy.random.RandomState",
    "numpy.random.mtrand.RandomState", "builtins.slice", "builtins.tuple", "builtins.dict",
    "builtins.list", "builtins.str", "builtins.int", "builtins.float", "builtins.bool",
    "sklearn.calibration.CalibratedClassifierCV", "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration", "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval", "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.model_selection._split.GroupKFold", "sklearn.model_selection._split.StratifiedKFold",
    "collections.OrderedDict", "sklearn.utils._bunch.Bunch",
    "scoresong.model.ScoreSongClassifier", "scoresong.model._WeightedPipeline",
})


class ModelError(Exception):
    """A model file cannot be used; the message says why and what to do."""


class UnsafeModelError(ModelError):
    """The file contains types outside the allow-list (it could run code); not loaded."""


class ModelIntegrityError(ModelError):
    """The file does not match the hash recorded beside it (tampered or corrupt)."""


class ModelSchemaError(ModelError):
    """The model was trained on another feature schema than this library computes."""


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


@dataclass
class Model:
    """A fitted classifier with its metadata (what :func:`load_model` returns)."""

    estimator: object
    meta: dict = field(default_factory=dict)

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def threshold(self) -> float:
        return float(self.meta.get("threshold", 0.5))

    @property
    def version(self) -> str:
        return str(self.meta.get("model_version", "unknown"))

    def song_probability(self, X: np.ndarray) -> np.ndarray:
        """P(song) for each row of ``X`` (file feature vectors)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        classes = list(self.estimator.classes_)
        return self.estimator.predict_proba(X)[:, classes.index("song")]


def default_model_path() -> Path:
    """The shipped model: ``models/`` at the repository root, or the copy inside the package."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "models" / "scoresong.json", here.parent / "_model" / "scoresong.json"):
        if cand.exists():
            return cand
    return here.parents[2] / "models" / "scoresong.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(estimator, path, meta: dict) -> Path:
    """Write ``PATH.skops`` and ``PATH.json`` (``path`` may end in either or neither)."""
    import skops.io as sio

    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".skops") else p
    stem.parent.mkdir(parents=True, exist_ok=True)
    sk = stem.with_suffix(".skops")
    sio.dump(estimator, sk)
    untrusted = set(sio.get_untrusted_types(file=sk))
    bad = untrusted - ALLOWED_TYPES
    if bad:
        sk.unlink()
        raise UnsafeModelError(f"refusing to save types outside the allow-list: {sorted(bad)}")
    meta = dict(meta)
    meta["estimator_file"] = sk.name
    meta["estimator_sha256"] = _sha256(sk)
    js = stem.with_suffix(".json")
    js.write_text(json.dumps(meta, indent=2, sort_keys=True, default=_jsonable))
    return js


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def load_model(path=None) -> Model:
    """Load a model safely.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The model's ``.json`` (or ``.skops``) file; default: the shipped model.

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        Missing files, a hash mismatch (:class:`ModelIntegrityError`), types outside the
        allow-list (:class:`UnsafeModelError`), another feature schema
        (:class:`ModelSchemaError`).
    """
    import skops.io as sio

    from .features import FEATURE_SCHEMA_VERSION

    p = Path(path) if path is not None else default_model_path()
    js = p.with_suffix(".json")
    if not js.exists():
        raise ModelError(f"{js}: model metadata not found")
    try:
        meta = json.loads(js.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelIntegrityError(f"{js}: not valid model metadata ({exc})") from exc
    if not isinstance(meta, dict) or "estimator_sha256" not in meta or "feature_schema" not in meta:
        raise ModelIntegrityError(f"{js}: not a scoresong model description")
    if meta["feature_schema"] != FEATURE_SCHEMA_VERSION:
        raise ModelSchemaError(
            f"{js}: trained on feature schema {meta['feature_schema']}, this scoresong computes "
            f"schema {FEATURE_SCHEMA_VERSION}; retrain it with `scoresong train CORPUS -o MODEL` "
            "on your labelled files")
    sk = js.with_name(meta.get("estimator_file", js.with_suffix(".skops").name))
    if not sk.exists():
        raise ModelError(f"{sk}: model file not found")
    digest = _sha256(sk)
    if digest != meta["estimator_sha256"]:
        raise ModelIntegrityError(
            f"{sk}: content does not match the SHA-256 recorded in {js.name} (tampered or corrupt)")
    try:
        untrusted = set(sio.get_untrusted_types(file=sk))
    except Exception as exc:  # skops raises several types on malformed archives
        raise ModelIntegrityError(f"{sk}: not a readable skops file ({exc})") from exc
    bad = untrusted - ALLOWED_TYPES
    if bad:
        raise UnsafeModelError(f"{sk}: contains types outside the allow-list, not loaded: {sorted(bad)}")
    try:
        est = sio.load(sk, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelIntegrityError(f"{sk}: cannot be loaded ({exc})") from exc
    return Model(est, meta)
