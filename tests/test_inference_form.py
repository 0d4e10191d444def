"""The model's inference form (NAME.npz): same probabilities as scikit-learn, loaded safely,
and what lets `import scoresong` and a prediction run without importing scikit-learn."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scoresong import inference
from scoresong.model import (ModelError, ModelIntegrityError, UnsafeModelError, default_model_path,
                             load_model, save_model, write_inference_form)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module")
def shipped():
    m = load_model()
    return m, m.estimator  # the estimator: loaded lazily from the .skops file


def realistic_rows(meta, seed=0):
    """Training vectors stored with the model, the class medians, and the rows an explanation
    evaluates (one statistic of a vector swapped for another clip's), plus small jitter."""
    ref = meta["reference"]
    bg = np.asarray(ref["background"], dtype=np.float64)
    med = np.asarray([ref["median"][k] for k in sorted(ref["median"])], dtype=np.float64)
    rng = np.random.default_rng(seed)
    swapped = np.repeat(bg[:8], 8, axis=0)
    cols = rng.integers(0, bg.shape[1], size=(len(swapped), 12))
    for i, c in enumerate(cols):
        swapped[i, c] = bg[rng.integers(0, len(bg)), c]
    jitter = bg + 0.05 * bg.std(axis=0) * rng.standard_normal(bg.shape)
    return np.vstack([bg, med, swapped, jitter])


def test_shipped_model_predicts_with_the_inference_form(shipped):
    m, _ = shipped
    assert m.inference is not None and m.inference.base == "hgb"
    assert m.meta["inference"]["file"] == "scoresong.npz"


def test_shipped_inference_form_equals_sklearn(shipped):
    m, est = shipped
    X = realistic_rows(m.meta)
    want = est.predict_proba(X)[:, list(est.classes_).index("song")]
    np.testing.assert_allclose(m.song_probability(X), want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.probabilities(X), est.predict_proba(X), rtol=0, atol=1e-9)
    if m.three_class:  # each NumPy form equals its part of the estimator
        np.testing.assert_allclose(m.inference.predict_proba(X), est.song_.predict_proba(X), rtol=0, atol=1e-9)
        np.testing.assert_allclose(m.presence.predict_proba(X), est.presence_.predict_proba(X), rtol=0, atol=1e-9)
    else:
        np.testing.assert_allclose(m.inference.predict_proba(X), est.predict_proba(X), rtol=0, atol=1e-9)


def test_files_naming_the_old_module_still_load(tmp_path):
    """Models written while the estimator lived in scoresong.model (the 2026.11.23.1 .skops
    names scoresong.model.ScoreSongClassifier) still load: those names stay on the allow-list
    and resolve to scoresong.estimator's classes."""
    import zipfile

    import skops.io as sio

    from scoresong.estimator import ScoreSongClassifier
    from tests.test_model import describe

    clf, X = _fit("logreg")
    new = tmp_path / "new.skops"
    sio.dump(clf, new)
    assert "scoresong.estimator.ScoreSongClassifier" in sio.get_untrusted_types(file=new)
    old = tmp_path / "old.skops"
    with zipfile.ZipFile(new) as zin, zipfile.ZipFile(old, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                data = data.replace(b'"scoresong.estimator"', b'"scoresong.model"')
            zout.writestr(item, data)
    assert "scoresong.model.ScoreSongClassifier" in sio.get_untrusted_types(file=old)
    m = load_model(describe(old))
    assert type(m.estimator) is ScoreSongClassifier
    np.testing.assert_array_equal(m.song_probability(X), clf.predict_proba(X)[:, 1])


def test_tree_traversal_is_exact_on_ties_missing_and_infinite_values(shipped):
    """Values exactly on a threshold go left (`<=`), NaN follows missing_go_to_left, ±inf
    compare as numbers: the raw score equals HistGradientBoosting's own, bit for bit."""
    m, est = shipped
    song = est.song_ if m.three_class else est
    hgb = song.model_.calibrated_classifiers_[0].estimator.steps[-1][1]
    trees = m.inference.members[0].trees
    rng = np.random.default_rng(1)
    F = m.inference.n_features_in_
    X = rng.standard_normal((400, F))
    nodes = [p.nodes for it in hgb._predictors for p in it]
    inner = [(n["feature_idx"][j], n["num_threshold"][j]) for n in nodes for j in range(len(n))
             if not n["is_leaf"][j]]
    for i in range(300):  # put many features of each row exactly on a split threshold
        for f, thr in (inner[k] for k in rng.integers(0, len(inner), size=40)):
            X[i, f] = thr
    X[300:350][rng.random((50, F)) < 0.3] = np.nan
    X[350:375][rng.random((25, F)) < 0.2] = np.inf
    X[375:400][rng.random((25, F)) < 0.2] = -np.inf
    assert any(n["missing_go_to_left"][~n["is_leaf"].astype(bool)].any() for n in nodes)
    np.testing.assert_array_equal(trees.raw(X), hgb.decision_function(X))


def _fit(est, calibration="sigmoid"):
    """A small fitted classifier (one OpenMP thread: on 200 rows HGB is many times faster so)."""
    from threadpoolctl import threadpool_limits

    from tests.test_model import data
    from scoresong.estimator import ScoreSongClassifier

    X, y, g = data()
    with threadpool_limits(1):
        return ScoreSongClassifier(estimator=est, calibration=calibration).fit(X, y, groups=g), X


def _meta():
    from tests.test_model import META
    from scoresong.features import FEATURE_SCHEMA_VERSION

    return dict(META, feature_schema=FEATURE_SCHEMA_VERSION)


@pytest.mark.parametrize("est,calibration", [("hgb", "sigmoid"), ("logreg", "sigmoid"),
                                             ("hgb", None), ("logreg", None)])
def test_save_writes_an_equivalent_inference_form(tmp_path, est, calibration):
    clf, X = _fit(est, calibration)
    js = save_model(clf, tmp_path / "m", _meta())
    meta = json.loads(js.read_text())
    assert meta["inference"]["file"] == "m.npz" and meta["inference"]["max_abs_difference"] <= 1e-9
    m = load_model(js)
    assert m.inference is not None and m._estimator is None
    Xt = np.vstack([X, 3 * X, X + 0.5])
    np.testing.assert_allclose(m.song_probability(Xt), clf.predict_proba(Xt)[:, 1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(m.estimator.predict_proba(Xt), clf.predict_proba(Xt), rtol=0, atol=0)


def test_input_is_validated_as_the_estimator_does(shipped):
    m, _ = shipped
    x = np.asarray(m.meta["reference"]["background"][0], dtype=np.float64)
    with pytest.raises(ValueError, match="features"):
        m.song_probability(x[:-1])
    x[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        m.song_probability(x)


@pytest.fixture
def copy_of_shipped(tmp_path):
    src = default_model_path()
    for suffix in (".json", ".skops", ".npz"):
        (tmp_path / ("m" + suffix)).write_bytes(src.with_suffix(suffix).read_bytes())
    meta = json.loads((tmp_path / "m.json").read_text())
    meta["estimator_file"], meta["inference"]["file"] = "m.skops", "m.npz"
    (tmp_path / "m.json").write_text(json.dumps(meta))
    return tmp_path / "m.json"


def _rehash(js, npz_bytes):
    """Replace the inference file and record its hash, as an attacker who can edit both would."""
    import hashlib

    meta = json.loads(js.read_text())
    js.with_suffix(".npz").write_bytes(npz_bytes)
    meta["inference"]["sha256"] = hashlib.sha256(npz_bytes).hexdigest()
    js.write_text(json.dumps(meta))


@pytest.mark.parametrize("suffix,where", [(".npz", 2), (".skops", 3)],
                         ids=["inference-form", "estimator-even-on-the-fast-path"])
def test_tampered_model_file_is_refused(copy_of_shipped, suffix, where):
    """One flipped bit in either file is refused, the .skops too although predictions only
    read the .npz."""
    f = copy_of_shipped.with_suffix(suffix)
    b = bytearray(f.read_bytes())
    b[len(b) // where] ^= 0x01
    f.write_bytes(bytes(b))
    with pytest.raises(ModelIntegrityError, match="SHA-256"):
        load_model(copy_of_shipped)


def test_model_without_inference_form_still_loads(copy_of_shipped, shipped):
    """Files written before the inference form existed: no 'inference' entry, no .npz."""
    m0, _ = shipped
    X = realistic_rows(m0.meta)[:20]
    meta = json.loads(copy_of_shipped.read_text())
    del meta["inference"]
    copy_of_shipped.write_text(json.dumps(meta))
    copy_of_shipped.with_suffix(".npz").unlink()
    m = load_model(copy_of_shipped)
    assert m.inference is None and m._estimator is not None
    np.testing.assert_allclose(m.song_probability(X), m0.song_probability(X), rtol=0, atol=1e-9)


def test_missing_inference_file_falls_back_to_skops(copy_of_shipped):
    copy_of_shipped.with_suffix(".npz").unlink()
    m = load_model(copy_of_shipped)
    assert m.inference is None and m._estimator is not None


class _Payload:
    """Would create a file if unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_inference_file_is_refused_and_not_executed(copy_of_shipped, tmp_path):
    import io

    marker = tmp_path / "executed"
    arrays = dict(np.load(copy_of_shipped.with_suffix(".npz"), allow_pickle=False))
    arrays["m0_mean"] = np.array([_Payload(str(marker))], dtype=object)
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # object arrays are pickled inside the .npy
    _rehash(copy_of_shipped, buf.getvalue())
    with pytest.raises(UnsafeModelError, match="pickled"):
        load_model(copy_of_shipped)
    _rehash(copy_of_shipped, pickle.dumps(_Payload(str(marker))))  # a bare pickle named .npz
    with pytest.raises(UnsafeModelError, match="pickled"):
        load_model(copy_of_shipped)
    assert not marker.exists()


def _edited(js, **changes):
    import io

    arrays = dict(np.load(js.with_suffix(".npz"), allow_pickle=False))
    for k, v in changes.items():
        if v is None:
            del arrays[k]
        else:
            arrays[k] = v
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _rehash(js, buf.getvalue())


@pytest.mark.parametrize("change,match", [
    ({"m0_mean": np.array(["a"] * 168)}, "numeric"),                # text, not numbers
    ({"m0_scale": np.ones(167)}, "shape"),
    ({"m0_sigmoid": None}, "missing"),
    ({"extra": np.zeros(3)}, "unexpected"),
    ({"m0_value": np.full((300, 29), np.nan)}, "non-finite"),
])
def test_inference_file_with_wrong_arrays_is_refused(copy_of_shipped, change, match):
    _edited(copy_of_shipped, **change)
    with pytest.raises(ModelIntegrityError, match=match):
        load_model(copy_of_shipped)


def test_inference_file_with_a_cycle_is_refused(copy_of_shipped):
    """A child pointing back to its parent (an endless walk) is refused before any prediction."""
    left = np.load(copy_of_shipped.with_suffix(".npz"))["m0_left"].copy()
    left[0, 0] = 0
    _edited(copy_of_shipped, m0_left=left)
    with pytest.raises(ModelIntegrityError, match="follow their parent"):
        load_model(copy_of_shipped)


def test_save_refuses_an_inference_form_that_disagrees(tmp_path, monkeypatch):
    real = inference.export

    def off_by_a_little(est):
        arrays, info = real(est)
        arrays["m0_baseline"] = arrays["m0_baseline"] + 1e-6
        return arrays, info

    monkeypatch.setattr(inference, "export", off_by_a_little)
    clf, _ = _fit("hgb")
    with pytest.raises(ModelError, match="differs"):
        save_model(clf, tmp_path / "m", _meta())
    assert not list(tmp_path.iterdir())


def test_shipped_inference_form_is_what_this_code_exports(copy_of_shipped):
    """Regenerating the form from the shipped .skops gives the shipped bytes (no retraining)."""
    shipped_sha = json.loads(copy_of_shipped.read_text())["inference"]["sha256"]
    write_inference_form(copy_of_shipped)
    assert json.loads(copy_of_shipped.read_text())["inference"]["sha256"] == shipped_sha


def test_inference_form_is_packaged():
    import tomllib

    pkg = ROOT / "src" / "scoresong" / "_model" / "scoresong.npz"
    assert pkg.read_bytes() == (ROOT / "models" / "scoresong.npz").read_bytes()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "_model/scoresong.npz" in data["scoresong"]


def test_import_and_predict_do_not_import_sklearn():
    code = (
        "import sys, scoresong\n"
        "assert 'sklearn' not in sys.modules, 'import scoresong imported sklearn'\n"
        f"r = scoresong.predict({str(DATA / 'song_allison-a-cappella.ogg')!r})\n"
        "heavy = sorted(m for m in ('sklearn', 'skops', 'joblib', 'matplotlib', 'tqdm') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert r.label == 'song', r\n"
        "from scoresong.model import ScoreSongClassifier\n"
        "assert scoresong.ScoreSongClassifier is ScoreSongClassifier and 'sklearn' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
