"""The model's inference form: plain numeric arrays, evaluated with NumPy alone.

A fitted :class:`~scoresong.estimator.ScoreSongClassifier` is a standard scaler, a base
classifier (histogram gradient boosting or logistic regression) and a sigmoid calibration
map, possibly averaged over calibrated members. ``predict_proba`` needs only a few numbers
from that: the scaler's mean and scale, every tree's node arrays and the baseline (or the
linear coefficients), and the sigmoid's ``a`` and ``b``. :func:`export` takes them from the
fitted scikit-learn objects; :func:`write` stores them as ``NAME.npz`` beside ``NAME.skops``;
:func:`read` loads them back with ``numpy.load(allow_pickle=False)`` (numbers only: a file
holding pickled objects is refused, and nothing in the file is executed), checks every array's
name, type, shape and range, and returns an :class:`InferenceForm` whose
:meth:`~InferenceForm.predict_proba` reproduces scikit-learn's to rounding (the same
arithmetic in the same order). Loading it takes milliseconds and imports neither
scikit-learn nor skops, which is what makes ``scoresong predict`` start fast.

:func:`scoresong.model.save_model` writes the form only after checking it against the
estimator's own ``predict_proba``; :func:`scoresong.model.load_model` checks its SHA-256.

File layout (``npz``; ``m{i}_`` is calibrated member ``i``):

=====================  ===========  ==========================================================
key                    dtype        meaning
=====================  ===========  ==========================================================
m{i}_mean, m{i}_scale  float64 (F)  StandardScaler ``mean_`` / ``scale_``
m{i}_sigmoid           float64 (2)  calibration ``a``, ``b``: P = 1 / (1 + exp(a·d + b));
                                    uncalibrated: (-1, 0), the base's own logistic link
m{i}_baseline          float64 (1)  HGB: baseline raw prediction
m{i}_n_nodes           int64 (T)    HGB: nodes used in each tree (rows are padded to N)
m{i}_feature_idx ...   (T, N)       HGB: ``feature_idx``, ``num_threshold``,
                                    ``missing_go_to_left``, ``left``, ``right``, ``is_leaf``,
                                    ``value`` of scikit-learn's ``TreePredictor.nodes``
m{i}_coef              float64 (1,F) logistic regression ``coef_``
m{i}_intercept         float64 (1)  logistic regression ``intercept_``
=====================  ===========  ==========================================================
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

__all__ = ["FORMAT", "InferenceForm", "InferenceFormError", "PickledDataError", "export", "read", "write", "from_arrays"]

#: Written into the model's JSON; a reader refuses any other value.
FORMAT = "scoresong-inference/1"

_TREE_FIELDS = {  # key -> numpy dtype kinds accepted
    "feature_idx": "iu", "num_threshold": "f", "missing_go_to_left": "bu", "left": "iu",
    "right": "iu", "is_leaf": "bu", "value": "f",
}
_ROWS = 512  # rows traversed at once (keeps the (trees, rows) index arrays in cache)


class InferenceFormError(ValueError):
    """The arrays do not describe a model this module can evaluate (wrong keys, types,
    shapes or values); :mod:`scoresong.model` reports it as a model error."""


class PickledDataError(InferenceFormError):
    """The file holds pickled objects (which could run code), not plain numbers; not loaded."""


class _Member:
    """One calibrated member: scaler -> base decision -> sigmoid."""

    def __init__(self, mean, scale, a, b, *, linear=None, trees=None):
        self.mean, self.scale, self.a, self.b = mean, scale, a, b
        self.linear, self.trees = linear, trees

    def decision(self, X: np.ndarray) -> np.ndarray:
        # StandardScaler.transform: X -= mean_; X /= scale_ (same operations, same order)
        Xs = (X - self.mean) / self.scale
        if self.linear is not None:
            coef, intercept = self.linear  # LinearClassifierMixin.decision_function
            return (Xs @ coef.T + intercept).ravel()
        return self.trees.raw(Xs)


class _Trees:
    """Every tree of a gradient-boosting model, traversed for all rows and trees at once.

    Nodes are flattened (tree ``t``'s node ``j`` is ``t * N + j``); a leaf (and each padding
    slot) points to itself on both sides with a threshold of +inf and NaN sent left, so a
    row that reaches a leaf stays there for the remaining levels.
    """

    def __init__(self, baseline: float, a: dict, n_nodes: np.ndarray):
        T, N = a["value"].shape
        self.baseline, self.n_trees, self.width = float(baseline), T, N
        flat = np.arange(T * N, dtype=np.intp).reshape(T, N)
        real = np.arange(N)[None, :] < n_nodes[:, None]
        leaf = (a["is_leaf"] != 0) | ~real
        offset = (np.arange(T, dtype=np.intp) * N)[:, None]
        left = np.where(leaf, flat, a["left"].astype(np.intp) + offset)
        right = np.where(leaf, flat, a["right"].astype(np.intp) + offset)
        self.feature = np.where(leaf, 0, a["feature_idx"]).astype(np.intp).ravel()
        self.threshold = np.where(leaf, np.inf, a["num_threshold"]).astype(np.float64).ravel()
        self.nan_left = np.where(leaf, True, a["missing_go_to_left"] != 0).ravel()
        self.child = np.stack([left.ravel(), right.ravel()], axis=1).ravel()  # 2*node + went_right
        self.value = np.where(leaf & real, a["value"], 0.0).astype(np.float64).ravel()
        self.roots = (np.arange(T, dtype=np.intp) * N)[:, None]
        self.depth = _max_depth(a, n_nodes, leaf)

    def raw(self, Xs: np.ndarray) -> np.ndarray:
        """The raw prediction (``decision_function``): baseline + each tree's leaf value, added
        tree by tree in scikit-learn's order."""
        out = np.empty(Xs.shape[0])
        for lo in range(0, Xs.shape[0], _ROWS):
            out[lo:lo + _ROWS] = self._raw(np.ascontiguousarray(Xs[lo:lo + _ROWS]))
        return out

    def _raw(self, Xs):
        n, F = Xs.shape
        xflat = Xs.ravel()
        rowoff = (np.arange(n, dtype=np.intp) * F)[None, :]
        node = np.repeat(self.roots, n, axis=1)  # (trees, rows)
        has_nan = bool(np.isnan(xflat).any())
        for _ in range(self.depth):
            x = xflat[self.feature[node] + rowoff]
            # _predictor.pyx: NaN -> missing_go_to_left; else left iff x <= num_threshold
            go_left = x <= self.threshold[node]
            if has_nan:
                go_left |= np.isnan(x) & self.nan_left[node]
            node = self.child[2 * node + ~go_left]
        leaves = self.value[node]
        acc = np.zeros(n)
        acc += self.baseline  # raw_predictions = zeros; += baseline; += each tree in turn
        for t in range(self.n_trees):
            acc += leaves[t]
        return acc


def _max_depth(a: dict, n_nodes: np.ndarray, leaf: np.ndarray) -> int:
    """Deepest leaf over all trees (children always follow their parent: checked by
    :func:`_check_trees`, so this single pass in node order is complete)."""
    T, N = leaf.shape
    depth = np.zeros((T, N), dtype=np.int64)
    rows = np.arange(T)
    for j in range(N):
        inner = ~leaf[:, j]
        if not inner.any():
            continue
        r = rows[inner]
        d = depth[r, j] + 1
        depth[r, a["left"][inner, j].astype(np.intp)] = d
        depth[r, a["right"][inner, j].astype(np.intp)] = d
    return int(depth.max())


def _expit(z):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


class InferenceForm:
    """``predict_proba`` of a fitted binary :class:`~scoresong.estimator.ScoreSongClassifier`
    (score/song, or music/no_music), from plain arrays (see the module docstring).

    Parameters are built by :func:`read` / :func:`from_arrays`; not meant to be created by hand.
    """

    def __init__(self, members: list[_Member], classes: list[str], n_features: int, base: str):
        self.members, self.classes_ = members, np.asarray(classes)
        self.n_features_in_, self.base = n_features, base

    def __repr__(self):
        return (f"InferenceForm(base={self.base!r}, members={len(self.members)}, "
                f"classes={list(self.classes_)}, n_features={self.n_features_in_})")

    def _check(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"Expected a 2D array of feature vectors, got shape {X.shape}")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but ScoreSongClassifier is expecting "
                             f"{self.n_features_in_} features as input.")
        if not np.isfinite(X).all():  # as ScoreSongClassifier's own input validation
            raise ValueError("Input X contains NaN or infinity; ScoreSongClassifier does not "
                             "accept non-finite feature values.")
        return X

    def decision_function(self, X) -> np.ndarray:
        """Each member's base decision (before calibration), shape (members, n); no input
        validation (NaN is routed as scikit-learn routes it)."""
        X = np.asarray(X, dtype=np.float64)
        return np.stack([m.decision(X) for m in self.members])

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in :attr:`classes_` order, as
        ``ScoreSongClassifier.predict_proba``."""
        X = self._check(X)
        mean = np.zeros((X.shape[0], 2))
        for m in self.members:  # CalibratedClassifierCV: mean of the members' probabilities
            p = np.empty((X.shape[0], 2))
            p[:, 1] = _expit(-(m.a * m.decision(X) + m.b))  # _SigmoidCalibration.predict
            p[:, 0] = 1.0 - p[:, 1]
            mean += p
        mean /= len(self.members)
        return mean

    def probability_of(self, label: str, X) -> np.ndarray:
        """P(``label``) for each row of ``X`` (``label`` one of :attr:`classes_`)."""
        classes = list(self.classes_)
        if label not in classes:
            raise ValueError(f"this form predicts {classes}, not {label!r}")
        return self.predict_proba(X)[:, classes.index(label)]

    def song_probability(self, X) -> np.ndarray:
        return self.probability_of("song", X)


# -- from scikit-learn -------------------------------------------------------------------------

def export(estimator) -> tuple[dict, dict] | None:
    """The arrays and description of a fitted ScoreSongClassifier, or ``None`` when its
    structure is not one this module evaluates (the model then loads through skops only)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from .estimator import ScoreSongClassifier

    if not isinstance(estimator, ScoreSongClassifier) or not hasattr(estimator, "model_"):
        return None
    classes = [str(c) for c in estimator.classes_]
    if len(classes) != 2:
        return None
    inner = estimator.model_
    if isinstance(inner, CalibratedClassifierCV):
        parts = []
        for cc in inner.calibrated_classifiers_:
            if cc.method != "sigmoid" or len(cc.calibrators) != 1:
                return None
            if [str(c) for c in cc.classes] != classes:
                return None
            cal = cc.calibrators[0]
            parts.append((cc.estimator, float(cal.a_), float(cal.b_)))
    else:
        parts = [(inner, -1.0, 0.0)]  # expit(-(-d + 0)) == expit(d): the base's own link
    arrays, base = {}, None
    for i, (pipe, a, b) in enumerate(parts):
        if not isinstance(pipe, Pipeline) or len(pipe.steps) != 2:
            return None
        scaler, clf = pipe.steps[0][1], pipe.steps[1][1]
        if type(scaler) is not StandardScaler or [str(c) for c in clf.classes_] != classes:
            return None
        F = int(scaler.n_features_in_)
        k = f"m{i}_"
        arrays[k + "mean"] = (np.asarray(scaler.mean_, dtype=np.float64) if scaler.with_mean
                              else np.zeros(F))
        arrays[k + "scale"] = (np.asarray(scaler.scale_, dtype=np.float64)
                               if scaler.with_std and scaler.scale_ is not None else np.ones(F))
        arrays[k + "sigmoid"] = np.array([a, b], dtype=np.float64)
        if type(clf) is HistGradientBoostingClassifier:
            this = "hgb"
            if clf.n_trees_per_iteration_ != 1 or getattr(clf, "is_categorical_", None) is not None:
                return None
            preds = [p for it in clf._predictors for p in it]
            nodes = [p.nodes for p in preds]
            if any(n["is_categorical"].any() for n in nodes):
                return None
            T, N = len(nodes), max(len(n) for n in nodes)
            arrays[k + "baseline"] = np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(1)
            arrays[k + "n_nodes"] = np.array([len(n) for n in nodes], dtype=np.int64)
            for name in _TREE_FIELDS:
                dt = {"f": np.float64, "iu": np.int64, "bu": np.uint8}[_TREE_FIELDS[name]]
                out = np.zeros((T, N), dtype=dt)
                for t, n in enumerate(nodes):
                    out[t, : len(n)] = n[name]
                arrays[k + name] = out
        elif type(clf) is LogisticRegression:
            this = "logreg"
            arrays[k + "coef"] = np.asarray(clf.coef_, dtype=np.float64).reshape(1, F)
            arrays[k + "intercept"] = np.asarray(clf.intercept_, dtype=np.float64).reshape(1)
        else:
            return None
        if base not in (None, this):
            return None
        base = this
    info = {"format": FORMAT, "base": base, "members": len(parts), "classes": classes,
            "n_features": int(estimator.n_features_in_)}
    return arrays, info


# -- files -------------------------------------------------------------------------------------

def write(arrays: dict, path) -> bytes:
    """Write ``arrays`` as an ``.npz`` with fixed timestamps (the same model gives the same
    bytes, hence the same SHA-256); returns the bytes written."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            arr = np.ascontiguousarray(arrays[key])
            if arr.dtype.kind not in "biuf" or arr.dtype.names is not None:
                raise InferenceFormError(f"{key}: only plain numeric arrays are written, got {arr.dtype}")
            zi = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            with z.open(zi, "w") as fh:
                np.lib.format.write_array(fh, arr, allow_pickle=False)
    data = buf.getvalue()
    with open(path, "wb") as fh:
        fh.write(data)
    return data


def read(data: bytes, info: dict) -> InferenceForm:
    """Load an inference form from the file's bytes (already hash-checked by the caller).

    Raises
    ------
    InferenceFormError
        Not an npz of plain numeric arrays, or the arrays do not match ``info`` (keys, dtypes,
        shapes, node indices, finite values).
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # numpy refuses object arrays / pickles: nothing unpickled
            raise PickledDataError(f"holds pickled objects, not plain numeric arrays ({exc})") from exc
        raise InferenceFormError(f"not a readable npz file ({exc})") from exc
    except Exception as exc:  # not a zip, a truncated member, a bad .npy header
        raise InferenceFormError(f"not a readable npz file ({type(exc).__name__}: {exc})") from exc
    return from_arrays(arrays, info)


def _arr(arrays, key, kinds, shape):
    a = arrays[key]
    if not isinstance(a, np.ndarray) or a.dtype.names is not None or a.dtype.kind not in kinds:
        raise InferenceFormError(f"{key}: expected a numeric array of kind {kinds!r}, got "
                                 f"{getattr(a, 'dtype', type(a))}")
    if a.shape != shape:
        raise InferenceFormError(f"{key}: expected shape {shape}, got {a.shape}")
    return a


def _finite(key, a):
    if not np.isfinite(a).all():
        raise InferenceFormError(f"{key}: non-finite values")
    return a.astype(np.float64)


def from_arrays(arrays: dict, info: dict) -> InferenceForm:
    """Check ``arrays`` against ``info`` (the ``inference`` entry of the model's JSON) and
    build the predictor; see :func:`read`."""
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise InferenceFormError(f"unknown inference format {info.get('format') if isinstance(info, dict) else info!r}"
                                 f" (this scoresong reads {FORMAT})")
    base, k_members, classes, F = info.get("base"), info.get("members"), info.get("classes"), info.get("n_features")
    if base not in ("hgb", "logreg") or not isinstance(k_members, int) or not 1 <= k_members <= 64:
        raise InferenceFormError(f"unsupported description: base={base!r}, members={k_members!r}")
    if (not isinstance(classes, list) or len(classes) != 2 or len(set(classes)) != 2
            or not all(isinstance(c, str) for c in classes)):
        raise InferenceFormError(f"classes must be two distinct names, got {classes!r}")
    if not isinstance(F, int) or F < 1:
        raise InferenceFormError(f"n_features must be a positive integer, got {F!r}")
    per = ["mean", "scale", "sigmoid"] + (["baseline", "n_nodes", *_TREE_FIELDS] if base == "hgb"
                                          else ["coef", "intercept"])
    expected = {f"m{i}_{p}" for i in range(k_members) for p in per}
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise InferenceFormError(f"arrays do not match the description (missing {missing}, unexpected {extra})")
    members = []
    for i in range(k_members):
        k = f"m{i}_"
        mean = _finite(k + "mean", _arr(arrays, k + "mean", "f", (F,)))
        scale = _finite(k + "scale", _arr(arrays, k + "scale", "f", (F,)))
        if (scale == 0).any():
            raise InferenceFormError(f"{k}scale: zero scale")
        a, b = _finite(k + "sigmoid", _arr(arrays, k + "sigmoid", "f", (2,)))
        if base == "logreg":
            coef = _finite(k + "coef", _arr(arrays, k + "coef", "f", (1, F)))
            icpt = _finite(k + "intercept", _arr(arrays, k + "intercept", "f", (1,)))
            members.append(_Member(mean, scale, float(a), float(b), linear=(coef, icpt)))
            continue
        baseline = _finite(k + "baseline", _arr(arrays, k + "baseline", "f", (1,)))
        n_nodes = arrays[k + "n_nodes"]
        if not isinstance(n_nodes, np.ndarray) or n_nodes.ndim != 1 or n_nodes.dtype.kind not in "iu":
            raise InferenceFormError(f"{k}n_nodes: expected a 1-D integer array")
        T = n_nodes.shape[0]
        shape = arrays[k + "value"].shape if isinstance(arrays[k + "value"], np.ndarray) else None
        if T < 1 or shape is None or len(shape) != 2 or shape[0] != T or shape[1] < 1:
            raise InferenceFormError(f"{k}: tree arrays must be (trees, nodes) with {T} trees, got {shape}")
        tr = {name: _arr(arrays, k + name, kinds, shape) for name, kinds in _TREE_FIELDS.items()}
        n_nodes = n_nodes.astype(np.int64)
        _check_trees(k, tr, n_nodes, F)
        members.append(_Member(mean, scale, float(a), float(b), trees=_Trees(baseline[0], tr, n_nodes)))
    return InferenceForm(members, classes, F, base)


def _check_trees(k: str, tr: dict, n_nodes: np.ndarray, F: int) -> None:
    """Node arrays a traversal can follow: children after their parent inside the tree (so
    every path ends at a leaf), features in range, finite values and thresholds that are
    numbers (+inf is scikit-learn's "split on missing values")."""
    T, N = tr["value"].shape
    if ((n_nodes < 1) | (n_nodes > N)).any():
        raise InferenceFormError(f"{k}n_nodes: out of range 1..{N}")
    j = np.arange(N)[None, :]
    real = j < n_nodes[:, None]
    inner = real & (tr["is_leaf"] == 0)
    for name in ("left", "right"):
        c = tr[name].astype(np.int64)
        if ((c[inner] <= np.broadcast_to(j, c.shape)[inner]) | (c[inner] >= np.broadcast_to(
                n_nodes[:, None], c.shape)[inner])).any():
            raise InferenceFormError(f"{k}{name}: child indices must follow their parent within the tree")
    f = tr["feature_idx"][inner]
    if ((f < 0) | (f >= F)).any():
        raise InferenceFormError(f"{k}feature_idx: out of range 0..{F - 1}")
    if np.isnan(tr["num_threshold"][inner]).any():
        raise InferenceFormError(f"{k}num_threshold: NaN threshold")
    if not np.isfinite(tr["value"][real]).all():
        raise InferenceFormError(f"{k}value: non-finite leaf values")
    for name in ("missing_go_to_left", "is_leaf"):
        if ((tr[name] != 0) & (tr[name] != 1)).any():
            raise InferenceFormError(f"{k}{name}: flags must be 0 or 1")
