"""Loading a model safely and predicting with it.

A model is up to three files beside each other:

- ``NAME.json``: feature schema, feature names, library versions, threshold, metrics, reference
  rows for explanations, and the SHA-256 of each of the other two files;
- ``NAME.skops``: the fitted scikit-learn estimator (:class:`ScoreSongClassifier`) in skops'
  format, which stores no pickled code; what retraining, inspection and scikit-learn tooling use;
- ``NAME.npz``: the *inference form*, plain numeric arrays (scaler, every tree's nodes or the
  linear coefficients, calibration) from which NumPy alone computes the same ``predict_proba``
  (see :mod:`scoresong.inference`); written by :func:`save_model` only after it agrees with the
  estimator on the reference rows and on random rows to 1e-9. A three-class model
  (:class:`MusicSongClassifier`: ``no_music`` / ``score`` / ``song``) has two, one per binary
  part: ``NAME.npz`` (score or song, given music) and ``NAME.presence.npz`` (music or not).

:func:`load_model` checks the feature schema and the SHA-256 of every file recorded in the
JSON. With an inference form it then reads only that (``numpy.load(allow_pickle=False)``, every
array's name, type, shape and range checked): no scikit-learn or skops import, a few
milliseconds. The estimator is deserialised on first use of :attr:`Model.estimator` (for
retraining, inspection, scikit-learn tooling), with the skops checks: hash again, and a fixed
allow-list of types refused before loading. A model without an inference form (files written
before it existed, or a ``.npz`` not copied along) loads through skops as before.

A model saved without the form (by an older scoresong) gets one, without retraining, from
``python -c "from scoresong.model import write_inference_form; write_inference_form('MODEL.json')"``.

:class:`ScoreSongClassifier` lives in :mod:`scoresong.estimator` (it needs scikit-learn) and is
importable from here too, lazily.
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["ScoreSongClassifier", "MusicSongClassifier", "Model", "load_model", "save_model", "write_inference_form",
           "ModelError", "UnsafeModelError", "ModelIntegrityError", "ModelSchemaError",
           "default_model_path", "get_default_model", "resolve_model"]

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
    "scoresong.estimator.ScoreSongClassifier", "scoresong.estimator._WeightedPipeline",
    "scoresong.estimator.MusicSongClassifier",
    # files written before the estimator moved to scoresong.estimator (still importable here)
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


def __getattr__(name):
    # The estimator needs scikit-learn (1 s to import); load it only when asked for.
    if name in ("ScoreSongClassifier", "MusicSongClassifier", "_WeightedPipeline", "_base"):
        from . import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Model:
    """A fitted classifier with its metadata (what :func:`load_model` returns).

    Parameters
    ----------
    estimator : fitted estimator or None
        The scikit-learn estimator; ``None`` when it is to be loaded from ``source`` on first use.
    meta : dict
        The model's JSON metadata.
    inference : scoresong.inference.InferenceForm, optional
        The NumPy predictor of P(song | music) used when present.
    presence : scoresong.inference.InferenceForm, optional
        The NumPy predictor of P(no_music) of a three-class model (used with ``inference``).
    source : path, optional
        The model's ``.json``, to load the estimator from (checked) when it is first needed.

    Notes
    -----
    A *three-class* model (``meta["labels"]`` holds ``"no_music"``) gives
    ``q`` = P(no_music) and ``s`` = P(song | music); its probabilities are
    ``(q, (1 - q)(1 - s), (1 - q) s)`` and its label is the one whose probability is largest
    against its prior, the priors being the two thresholds (see
    :func:`three_class_labels`). Between score and song that is ``song`` when
    ``s >= threshold``, as for a two-class model (which has ``q = 0``).
    """

    def __init__(self, estimator=None, meta: dict | None = None, *, inference=None, presence=None,
                 source=None):
        if estimator is None and inference is None:
            raise ValueError("Model needs an estimator or an inference form")
        self._estimator = estimator
        self.meta = {} if meta is None else meta
        self.inference = inference
        self.presence = presence
        self.source = None if source is None else Path(source)
        if self.three_class and estimator is None and presence is None:
            raise ValueError("a three-class model needs its presence form or its estimator")

    def __repr__(self):
        how = "inference form" if self.inference is not None else "estimator"
        return f"Model(version={self.version!r}, predicts with the {how})"

    @property
    def estimator(self):
        """The fitted scikit-learn estimator, loaded from the ``.skops`` file (hash and
        allow-list checked) the first time it is asked for."""
        if self._estimator is None:
            if self.source is None:
                raise ModelError("this model carries no estimator and no file to load it from")
            self._estimator = _load_estimator(self.source, self.meta)
        return self._estimator

    @estimator.setter
    def estimator(self, value):
        self._estimator = value

    @property
    def feature_names(self) -> list[str]:
        return list(self.meta["feature_names"])

    @property
    def threshold(self) -> float:
        """P(song | music) at or above which music is called ``song``."""
        return float(self.meta.get("threshold", 0.5))

    @property
    def three_class(self) -> bool:
        """Whether the model also answers ``no_music``."""
        return _three_class(self.meta)

    @property
    def classes(self) -> tuple[str, ...]:
        """The labels it answers, in the order of :meth:`probabilities`' columns."""
        return ("no_music", "score", "song") if self.three_class else ("score", "song")

    @property
    def presence_threshold(self) -> float:
        """The no_music prior ``pt`` of :func:`three_class_labels` (1.0: never no_music, for a
        two-class model). P(no_music) at or above it is necessary for ``no_music``, and
        sufficient only when the music verdict is ambiguous (P(song | music) near the song
        threshold); a clear music verdict needs a higher P(no_music)."""
        return float(self.meta.get("presence_threshold", 1.0)) if self.three_class else 1.0

    @property
    def version(self) -> str:
        return str(self.meta.get("model_version", "unknown"))

    def parts(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(q, s)`` for each row of ``X``: P(no_music) (zeros for a two-class model) and
        P(song | music)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        if self.inference is not None and (self.presence is not None or not self.three_class):
            s = self.inference.song_probability(X)
            q = self.presence.probability_of("no_music", X) if self.presence is not None else np.zeros(len(X))
            return q, s
        est = self.estimator
        if self.three_class:
            pres, song = est.presence_, est.song_
            q = pres.predict_proba(X)[:, list(pres.classes_).index("no_music")]
        else:
            song, q = est, np.zeros(len(X))
        return q, song.predict_proba(X)[:, list(song.classes_).index("song")]

    def probabilities(self, X: np.ndarray, *, classes=None) -> np.ndarray:
        """Calibrated class probabilities, one row per row of ``X``.

        Parameters
        ----------
        X : np.ndarray [shape=(n, n_features)]
        classes : sequence of str, optional
            ``("score", "song")`` for the two music classes only (P(score | music),
            P(song | music)); default: :attr:`classes`.

        Returns
        -------
        np.ndarray [shape=(n, len(classes))]
        """
        q, s = self.parts(X)
        classes = self.classes if classes is None else tuple(classes)
        if classes == ("score", "song"):
            return np.stack([1.0 - s, s], axis=1)
        if classes != self.classes:
            raise ValueError(f"classes must be {self.classes} or ('score', 'song'), got {classes}")
        return np.stack([q, (1.0 - q) * (1.0 - s), (1.0 - q) * s], axis=1)

    def labels(self, q, s, *, threshold: float | None = None, presence_threshold: float | None = None,
               classes=None) -> np.ndarray:
        """Labels from :meth:`parts` by the model's rule (see the class notes); thresholds
        may be overridden; ``classes=("score", "song")`` never answers ``no_music``."""
        thr = self.threshold if threshold is None else float(threshold)
        pthr = self.presence_threshold if presence_threshold is None else float(presence_threshold)
        if self.three_class and tuple(classes or self.classes) != ("score", "song"):
            return three_class_labels(q, s, threshold=thr, presence_threshold=pthr, song_prior=self.threshold)
        s = np.asarray(s, dtype=float)
        _refuse_nan("labels", s=s, threshold=thr)
        return np.where(s >= thr, "song", "score").astype(object)

    def song_probability(self, X: np.ndarray) -> np.ndarray:
        """P(song) for each row of ``X`` (file feature vectors): ``(1 - q) s``; for a
        two-class model (``q = 0``), P(song | music) as always."""
        q, s = self.parts(X)
        return (1.0 - q) * s


def _refuse_nan(who: str, **values) -> None:
    """A missing probability or threshold has no label: raise naming the inputs that hold NaN."""
    bad = [k for k, v in values.items() if np.isnan(v).any()]
    if bad:
        raise ValueError(f"{who}: {', '.join(bad)} must not be NaN")


def three_class_labels(q, s, *, threshold, presence_threshold, song_prior=None) -> np.ndarray:
    """The three-class decision: the label whose probability is largest against its prior.

    With ``q`` = P(no_music), ``s`` = P(song | music), ``t`` = ``threshold`` (the song
    prior among music) and ``pt`` = ``presence_threshold`` (the no_music prior), the
    probabilities ``(q, (1 - q)(1 - s), (1 - q) s)`` are divided by the priors
    ``(pt, (1 - pt)(1 - t), (1 - pt) t)`` and the largest wins (ties: no_music, then song):
    the Bayes rule for balanced error over the three classes. So between the two music
    labels it is ``song`` when ``s >= t``, whatever ``q``, and ``no_music`` wins when
    ``q / pt >= (1 - q) / (1 - pt) * max(s / t, (1 - s) / (1 - t))``: for an ambiguous music
    verdict (``s`` near ``t``) that is ``q >= pt``, while a clearly sung file (``s`` well
    above ``t``, say an a cappella song) needs more evidence to be called no_music.

    Parameters
    ----------
    q, s : array_like
        P(no_music) and P(song | music), one per item.
    threshold, presence_threshold : float or array_like
        ``t`` and ``pt`` in (0, 1) (scalars, or one per item). All inputs are broadcast
        against each other (shapes that do not broadcast raise ``ValueError``).
    song_prior : float or array_like, optional
        The ``t`` that weighs how clear the music verdict is in the no_music comparison
        (default: ``threshold``). A model passes its own threshold here, so that a user's
        song threshold moves only score against song and ``presence_threshold`` only
        no_music against music.

    Returns
    -------
    np.ndarray of str (object dtype)
        ``"no_music"``, ``"score"`` or ``"song"`` per item, in the broadcast shape of the
        inputs (0-d for scalar inputs).

    Raises
    ------
    ValueError
        If any input holds NaN (a missing probability has no label), or the inputs do not
        broadcast.

    Examples
    --------
    >>> three_class_labels([0.9, 0.3, 0.3, 0.01], [0.05, 0.9, 0.05, 0.5],
    ...                    threshold=0.1, presence_threshold=0.16).tolist()
    ['no_music', 'song', 'no_music', 'song']
    """
    q, s, t, tm, pt = np.broadcast_arrays(
        np.asarray(q, dtype=float), np.asarray(s, dtype=float), np.asarray(threshold, dtype=float),
        np.asarray(threshold if song_prior is None else song_prior, dtype=float),
        np.asarray(presence_threshold, dtype=float))
    _refuse_nan("three_class_labels", q=q, s=s, threshold=t, song_prior=tm, presence_threshold=pt)
    q, s = np.clip(q, 0.0, 1.0), np.clip(s, 0.0, 1.0)
    tm, pt = np.clip(tm, 1e-9, 1 - 1e-9), np.clip(pt, 1e-9, 1 - 1e-9)
    clear = np.maximum(s / tm, (1 - s) / (1 - tm))  # the better music label against its prior
    none = q * (1 - pt) >= (1 - q) * pt * clear
    out = np.where(s >= t, "song", "score").astype(object)
    out[none] = "no_music"
    return out


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


#: Largest difference in P allowed between the inference form and the estimator at save time.
INFERENCE_TOLERANCE = 1e-9


def _check_rows(meta: dict, n_features: int, mean=None, scale=None) -> np.ndarray:
    """Rows the inference form must reproduce before it is written: the reference rows stored
    in the metadata (real training vectors and class medians), and random rows around the
    training distribution (the scaler's mean and scale) and far outside it."""
    rows = []
    ref = meta.get("reference") or {}
    for block in (ref.get("background"), *(ref.get("median") or {}).values()):
        a = np.asarray(block if block is not None else [], dtype=np.float64)
        if a.size:
            rows.append(a.reshape(-1, n_features))
    rng = np.random.default_rng(20261123)
    mean = np.zeros(n_features) if mean is None else mean
    scale = np.ones(n_features) if scale is None else scale
    for spread in (0.5, 1.0, 3.0, 10.0):
        rows.append(mean + spread * scale * rng.standard_normal((256, n_features)))
    return np.vstack(rows)


def _write_inference_forms(estimator, stem: Path, meta: dict) -> dict:
    """The inference form(s) of ``estimator``, verified and written: ``{"inference": ...}``
    for a two-class model, plus ``"presence_inference"`` (``STEM.presence.npz``) for a
    :class:`MusicSongClassifier`; empty when the structure is not covered (nothing
    written, stale forms removed)."""
    from .estimator import MusicSongClassifier

    pres = stem.with_name(stem.name + ".presence.npz")
    if isinstance(estimator, MusicSongClassifier):
        song = _write_inference_form(estimator.song_, stem.with_suffix(".npz"), meta)
        presence = _write_inference_form(estimator.presence_, pres, meta) if song else None
        if song and presence:
            return {"inference": song, "presence_inference": presence}
        for f in (stem.with_suffix(".npz"), pres):
            f.unlink(missing_ok=True)
        return {}
    if pres.exists():
        pres.unlink()  # a stale presence form of another model must not sit beside this one
    song = _write_inference_form(estimator, stem.with_suffix(".npz"), meta)
    return {"inference": song} if song else {}


def _write_inference_form(estimator, npz: Path, meta: dict) -> dict | None:
    """Export, verify and write one binary estimator's form to ``npz``; the JSON entry
    describing it, or ``None`` when the estimator has a structure the form does not cover."""
    from . import inference

    exported = inference.export(estimator)
    if exported is None:
        if npz.exists():
            npz.unlink()  # a stale form of another model must not sit beside this one
        return None
    arrays, info = exported
    form = inference.from_arrays(arrays, info)
    m0 = form.members[0]
    X = _check_rows(meta, form.n_features_in_, m0.mean, m0.scale)
    want = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    got = form.predict_proba(X)
    err = float(np.max(np.abs(want - got)))
    if not err <= INFERENCE_TOLERANCE or list(form.classes_) != [str(c) for c in estimator.classes_]:
        raise ModelError(f"the inference form differs from the estimator by {err:.3g} in P "
                         f"(tolerance {INFERENCE_TOLERANCE:g}) on {len(X)} check rows; not saved")
    data = inference.write(arrays, npz)
    return dict(info, file=npz.name, sha256=hashlib.sha256(data).hexdigest(),
                checked_rows=int(len(X)), max_abs_difference=err)


def save_model(estimator, path, meta: dict) -> Path:
    """Write ``PATH.skops``, ``PATH.npz`` (the inference form) and ``PATH.json``
    (``path`` may end in ``.json`` or ``.skops`` or neither).

    The inference form is written when the estimator is a :class:`ScoreSongClassifier` of the
    usual structure, and only after it reproduces the estimator's ``predict_proba`` to 1e-9 on
    the reference rows in ``meta`` and on random rows; otherwise :class:`ModelError` is raised
    and nothing is written.
    """
    import skops.io as sio

    p = Path(path)
    stem = p.with_suffix("") if p.suffix in (".json", ".skops", ".npz") else p
    stem.parent.mkdir(parents=True, exist_ok=True)
    sk = stem.with_suffix(".skops")
    sio.dump(estimator, sk)
    untrusted = set(sio.get_untrusted_types(file=sk))
    bad = untrusted - ALLOWED_TYPES
    if bad:
        sk.unlink()
        raise UnsafeModelError(f"refusing to save types outside the allow-list: {sorted(bad)}")
    meta = dict(meta)
    meta.pop("inference", None)
    meta.pop("presence_inference", None)
    try:
        inf = _write_inference_forms(estimator, stem, meta)
    except Exception:
        sk.unlink()
        raise
    meta["estimator_file"] = sk.name
    meta["estimator_sha256"] = _sha256(sk)
    meta.update(inf)
    js = stem.with_suffix(".json")
    js.write_text(json.dumps(meta, indent=2, sort_keys=True, default=_jsonable))
    return js


def write_inference_form(path) -> Path:
    """Add (or refresh) the inference form of an existing model without retraining: load the
    estimator from its ``.skops`` (all checks), write ``NAME.npz`` and record its SHA-256 in
    ``NAME.json``. Every other byte of the JSON's content is kept."""
    js = Path(path).with_suffix(".json")
    meta = _read_meta(js)
    est = _load_estimator(js, meta)
    inf = _write_inference_forms(est, js.with_suffix(""), meta)
    if not inf:
        raise ModelError(f"{js}: this estimator has no inference form (not a ScoreSongClassifier "
                         "with sigmoid or no calibration over scaling + HGB or logistic regression)")
    meta.update(inf)
    js.write_text(json.dumps(meta, indent=2, sort_keys=True, default=_jsonable))
    return js


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def _three_class(meta: dict) -> bool:
    """Whether a model's metadata says it also answers ``no_music``."""
    return "no_music" in (meta.get("labels") or ())


def _read_meta(js: Path) -> dict:
    from .features import FEATURE_SCHEMA_VERSION

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
    return meta


def _sibling(js: Path, name, what: str) -> Path:
    """A file named in the metadata: a plain name in the same folder, nothing else."""
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise ModelIntegrityError(f"{js}: {what} must be a file name in the same folder, got {name!r}")
    return js.with_name(name)


def _estimator_file(js: Path, meta: dict) -> tuple[Path, bytes]:
    """The ``.skops`` file named in ``meta`` and its bytes, checked against the recorded SHA-256."""
    sk = _sibling(js, meta.get("estimator_file", js.with_suffix(".skops").name), "estimator_file")
    try:
        data = sk.read_bytes()  # read once: the bytes hashed are the bytes loaded
    except FileNotFoundError:
        raise ModelError(f"{sk}: model file not found") from None
    except OSError as exc:
        raise ModelError(f"{sk}: cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != meta["estimator_sha256"]:
        raise ModelIntegrityError(
            f"{sk}: content does not match the SHA-256 recorded in {js.name} (tampered or corrupt)")
    return sk, data


def _load_estimator(js: Path, meta: dict):
    """The scikit-learn estimator from the ``.skops`` file named in ``meta``: hash, then the
    allow-list of types, then load."""
    import skops.io as sio

    sk, data = _estimator_file(js, meta)
    try:
        untrusted = set(sio.get_untrusted_types(data=data))
    except Exception as exc:  # skops raises several types on malformed archives
        raise ModelIntegrityError(f"{sk}: not a readable skops file ({exc})") from exc
    bad = untrusted - ALLOWED_TYPES
    if bad:
        raise UnsafeModelError(f"{sk}: contains types outside the allow-list, not loaded: {sorted(bad)}")
    try:
        return sio.loads(data, trusted=sorted(untrusted))
    except Exception as exc:
        raise ModelIntegrityError(f"{sk}: cannot be loaded ({exc})") from exc


def _load_inference(js: Path, info) -> object | None:
    """The inference form described by ``info``, hash and arrays checked; ``None`` when its
    file is absent (the model then loads through skops)."""
    from . import inference

    if not isinstance(info, dict) or not isinstance(info.get("sha256"), str):
        raise ModelIntegrityError(f"{js}: malformed 'inference' entry")
    npz = _sibling(js, info.get("file"), "inference file")
    try:
        data = npz.read_bytes()  # read once: the bytes hashed are the bytes loaded
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ModelError(f"{npz}: cannot be read ({exc})") from exc
    if hashlib.sha256(data).hexdigest() != info["sha256"]:
        raise ModelIntegrityError(
            f"{npz}: content does not match the SHA-256 recorded in {js.name} (tampered or corrupt)")
    try:
        form = inference.read(data, info)
    except inference.PickledDataError as exc:
        raise UnsafeModelError(f"{npz}: {exc}; not loaded") from exc
    except inference.InferenceFormError as exc:
        raise ModelIntegrityError(f"{npz}: not a valid inference form ({exc})") from exc
    return form


def load_model(path=None) -> Model:
    """Load a model safely.

    Parameters
    ----------
    path : str or os.PathLike, optional
        The model's ``.json`` (or ``.skops`` / ``.npz``) file; default: the shipped model.

    Returns
    -------
    Model
        Predicting with the inference form when the model has one (the estimator is then
        loaded, with the same checks, on first access to :attr:`Model.estimator`).

    Raises
    ------
    ModelError
        Missing files, a hash mismatch or a malformed file (:class:`ModelIntegrityError`),
        types outside the allow-list or pickled data (:class:`UnsafeModelError`), another
        feature schema (:class:`ModelSchemaError`).
    """
    p = Path(path) if path is not None else default_model_path()
    js = p.with_suffix(".json")
    meta = _read_meta(js)
    if "inference" in meta:
        form = _load_inference(js, meta["inference"])
        presence = None
        three = _three_class(meta)
        if three and form is not None:
            if "presence_inference" not in meta:
                raise ModelIntegrityError(f"{js}: a three-class model without its presence form")
            presence = _load_inference(js, meta["presence_inference"])
        if form is not None and (presence is not None or not three):
            # The estimator is read only when asked for, but a model whose files do not all
            # match their recorded hashes is refused now (hashing it takes milliseconds).
            _estimator_file(js, meta)
            return Model(None, meta, inference=form, presence=presence, source=js)
    return Model(_load_estimator(js, meta), meta, source=js)


_default_lock = threading.Lock()
_default: Model | None = None


def get_default_model() -> Model:
    """The shipped model, loaded once per process (thread-safe)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = load_model()
        return _default


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> Model:
    return load_model(path)


def resolve_model(model=None) -> Model:
    """The :class:`Model` a ``model=`` argument names.

    Parameters
    ----------
    model : Model, str, os.PathLike or None
        ``None``: the shipped model (:func:`get_default_model`); a :class:`Model`: itself; a
        path to a model's ``.json`` (or ``.skops``): that model, loaded safely and kept in a
        small cache keyed by path and modification time, so a batch run loads it once and a
        retrained file is picked up.

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        The path does not hold a usable model (see :func:`load_model`).
    """
    if model is None:
        return get_default_model()
    if isinstance(model, Model):
        return model
    js = Path(model).with_suffix(".json").resolve()
    try:
        mtime = js.stat().st_mtime_ns
    except OSError:
        return load_model(model)  # raises the clear error
    return _load_cached(str(js), mtime)
