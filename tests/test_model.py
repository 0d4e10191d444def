"""The estimator's scikit-learn contract and safe model files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.utils.estimator_checks import parametrize_with_checks

from scoresong.model import (Model, ModelIntegrityError, ModelSchemaError, ScoreSongClassifier,
                             UnsafeModelError, load_model, save_model)


def data(n=200, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + 0.3 * rng.standard_normal(n) > 0, "song", "score")
    groups = np.repeat(np.arange(10), n // 10)
    return X, y, groups


def _expected_failures(est):
    # Repeating a row is not the same as weighting it: class_weight="balanced" counts rows,
    # and calibration draws CV folds over rows (scikit-learn marks CalibratedClassifierCV so).
    return {"check_sample_weight_equivalence_on_dense_data":
            "balanced class weights and calibration folds count rows, not weights"}


# The whole check suite on the fast base classifier (the wrapper's contract does not depend
# on which base it wraps; HGB is exercised by the tests below).
@parametrize_with_checks([ScoreSongClassifier(estimator="logreg"),
                          ScoreSongClassifier(estimator="logreg", calibration=None)],
                         expected_failed_checks=_expected_failures)
def test_sklearn_contract(estimator, check):
    check(estimator)


@pytest.mark.parametrize("est", ["logreg", "hgb"])
def test_fit_predict_with_groups(est):
    X, y, g = data()
    clf = ScoreSongClassifier(estimator=est).fit(X, y, groups=g)
    assert list(clf.classes_) == ["score", "song"]
    p = clf.predict_proba(X)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-9)
    assert (clf.predict(X) == y).mean() > 0.85


def test_works_in_grid_search():
    """The grid really searches: every candidate is fitted and scored, and the winner is the
    candidate with the best mean score, whatever it is."""
    X, y, _ = data()
    grid = {"estimator": ["logreg", "hgb"], "calibration": ["sigmoid", None]}
    gs = GridSearchCV(ScoreSongClassifier(), grid, cv=3, scoring="balanced_accuracy")
    gs.fit(X, y)
    scores = gs.cv_results_["mean_test_score"]
    assert len(scores) == 4 and np.isfinite(scores).all()
    best = gs.cv_results_["params"][int(np.argmax(scores))]
    assert {k: gs.best_params_[k] for k in grid} == best
    assert clone(gs.best_estimator_).get_params()["estimator"] == best["estimator"]
    assert gs.best_score_ == pytest.approx(scores.max()) and gs.best_score_ > 0.8


META = {"feature_schema": None, "feature_names": ["a"], "threshold": 0.5, "model_version": "t"}


def saved(tmp_path, est="logreg"):
    from scoresong.features import FEATURE_SCHEMA_VERSION

    X, y, g = data()
    clf = ScoreSongClassifier(estimator=est).fit(X, y, groups=g)
    js = save_model(clf, tmp_path / "m", dict(META, feature_schema=FEATURE_SCHEMA_VERSION))
    return clf, js, X


@pytest.mark.parametrize("est", ["logreg", "hgb"])
def test_round_trip(tmp_path, est):
    clf, js, X = saved(tmp_path, est)
    m = load_model(js)
    assert isinstance(m, Model)
    np.testing.assert_allclose(m.song_probability(X), clf.predict_proba(X)[:, 1], rtol=1e-12)


def test_tampered_content_is_refused(tmp_path):
    _, js, _ = saved(tmp_path)
    sk = js.with_suffix(".skops")
    data_ = bytearray(sk.read_bytes())
    data_[len(data_) // 2] ^= 0xFF
    sk.write_bytes(bytes(data_))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(js)


def describe(sk):
    """Write valid metadata (right schema, matching hash) beside a hand-made estimator file."""
    from scoresong.features import FEATURE_SCHEMA_VERSION
    from scoresong.model import _sha256

    js = sk.with_suffix(".json")
    js.write_text(json.dumps(dict(META, feature_schema=FEATURE_SCHEMA_VERSION,
                                  estimator_file=sk.name, estimator_sha256=_sha256(sk))))
    return js


def test_foreign_types_are_refused_before_loading(tmp_path):
    """A file whose hash matches but which holds a type outside the allow-list is not loaded."""
    import skops.io as sio
    from sklearn.tree import DecisionTreeClassifier

    X, y, _ = data()
    sk = tmp_path / "evil.skops"
    sio.dump(DecisionTreeClassifier().fit(X, y), sk)
    with pytest.raises(UnsafeModelError, match="allow-list"):
        load_model(describe(sk))


def test_pickle_file_is_refused(tmp_path):
    import pickle

    sk = tmp_path / "p.skops"
    sk.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelIntegrityError, match="not a readable skops file"):
        load_model(describe(sk))


def test_other_schema_is_refused_with_how_to_retrain(tmp_path):
    _, js, _ = saved(tmp_path)
    meta = json.loads(js.read_text())
    meta["feature_schema"] = -1
    js.write_text(json.dumps(meta))
    with pytest.raises(ModelSchemaError, match="scoresong train"):
        load_model(js)


def test_garbage_metadata(tmp_path):
    js = tmp_path / "x.json"
    js.write_text("{not json")
    with pytest.raises(ModelIntegrityError):
        load_model(js)
