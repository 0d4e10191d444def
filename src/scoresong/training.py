"""Training and honest evaluation on a labelled corpus.

The corpus (:mod:`scoresong.dataset`) is read, its features extracted through the content
cache (:mod:`scoresong.cache`), and the model evaluated with *nested grouped*
cross-validation: the outer folds hold out whole groups (albums, composers, source
packages); the choice between candidate classifiers is made on inner folds of the training
part only, and each fold's threshold comes from its training labels, so no test fold ever
steers a decision. The report (:mod:`scoresong.report`) is written beside the model.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .cache import extract_items
from .dataset import ALL_LABELS, LABELS, NO_MUSIC, Corpus, CorpusError, Item, read_corpus
from .estimator import MusicSongClassifier, ScoreSongClassifier
from .features import FEATURE_SCHEMA_VERSION, feature_names
from .model import Model, save_model
from .report import evaluate_predictions, evaluate_three_class, write_report

__all__ = ["nested_cv", "balanced_threshold", "train", "evaluate", "model_meta", "reference_data",
           "CorpusError"]

#: Background rows per class stored with a model for :func:`scoresong.explain`.
N_REFERENCE = 32


def _weights(items: list[Item]) -> np.ndarray | None:
    w = np.array([i.weight for i in items], dtype=float)
    return None if np.all(w == 1.0) else w


def _inner_choice(X, y, groups, candidates, n_splits, random_state, sample_weight=None
                  ) -> tuple[str, dict]:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    if len(candidates) == 1:
        return candidates[0], {}
    scores = {}
    n_groups = len(np.unique(groups))
    splits = list(GroupKFold(n_splits=min(n_splits, n_groups)).split(X, y, groups))
    for cand in candidates:
        pred = np.empty(y.size, dtype=object)
        for tr, te in splits:
            clf = ScoreSongClassifier(estimator=cand, calibration=None, random_state=random_state)
            sw = None if sample_weight is None else sample_weight[tr]
            pred[te] = clf.fit(X[tr], y[tr], sample_weight=sw).predict(X[te])
        scores[cand] = float(balanced_accuracy_score(y, pred.astype(str)))
    return max(scores, key=scores.get), scores


def _outer_fold(k, X, y, groups, tr, te, candidates, inner, random_state, sample_weight,
                positive="song"):
    """One outer fold of :func:`nested_cv`: inner model choice and calibrated fit on the
    training part only (``tr``), probabilities of ``positive`` for the held-out part (``te``)."""
    sw = None if sample_weight is None else sample_weight[tr]
    if len(set(y[tr])) < 2:
        raise CorpusError(f"outer fold {k}: the training part has only {set(y[tr])}; "
                         "each label needs items in several groups")
    best, scores = _inner_choice(X[tr], y[tr], groups[tr], candidates, inner, random_state, sw)
    clf = ScoreSongClassifier(estimator=best, random_state=random_state).fit(
        X[tr], y[tr], groups=groups[tr], sample_weight=sw)
    p = clf.predict_proba(X[te])[:, list(clf.classes_).index(positive)]
    return p, balanced_threshold(y[tr], sw, positive=positive), best, scores


def nested_cv(X, y, groups, *, candidates=("hgb", "logreg"), outer: int = 5, inner: int = 4,
              sample_weight=None, random_state: int = 0, n_jobs: int = 1, log=print,
              positive: str = "song", train_mask=None) -> dict:
    """Out-of-fold calibrated probabilities from nested grouped cross-validation.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
    y : np.ndarray of two labels (``{"score", "song"}``, or ``{"music", "no_music"}``)
    groups : np.ndarray [shape=(n,)]
        Items of one group are always tested together.
    candidates : tuple of str
        Base classifiers compared on the inner folds of each outer training part.
    outer, inner : int
        Fold counts (capped by the number of groups).
    sample_weight : np.ndarray, optional
    n_jobs : int
        Outer folds fitted in parallel (joblib; ``-1``: all cores). Each fold is
        deterministic given ``random_state``, so the result equals the serial one.
    positive : str
        The label whose probability is returned (and whose prior is the threshold).
    train_mask : np.ndarray of bool, optional
        Items a fold may train on (default all); every item of a held-out fold still gets
        its probability. The song part of a three-class model trains on music only but is
        also asked about the held-out ``no_music`` items.

    Returns
    -------
    dict
        ``p_song`` (P(``positive``)) and ``threshold`` per item, ``folds`` (held-out
        groups, inner scores).
    """
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 3:
        raise CorpusError(f"grouped evaluation needs at least 3 groups, got {n_groups}; "
                         "give groups (albums, composers) or train with evaluate=False")
    p = np.zeros(y.size)
    thr = np.zeros(y.size)
    folds = []
    splits = list(GroupKFold(n_splits=min(outer, n_groups)).split(X, y, groups))
    if train_mask is not None:
        mask = np.asarray(train_mask, bool)
        splits = [(tr[mask[tr]], te) for tr, te in splits]
    if n_jobs == 1:
        results = (_outer_fold(k, X, y, groups, tr, te, candidates, inner, random_state, sample_weight,
                               positive) for k, (tr, te) in enumerate(splits))
    else:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_outer_fold)(k, X, y, groups, tr, te, candidates, inner, random_state, sample_weight,
                                 positive) for k, (tr, te) in enumerate(splits))
    for k, ((tr, te), (p_te, thr_k, best, scores)) in enumerate(zip(splits, results)):
        p[te] = p_te
        thr[te] = thr_k
        folds.append({"fold": k, "test_groups": sorted(set(groups[te].tolist())), "chosen": best,
                      "inner_balanced_accuracy": scores, "threshold": float(thr_k)})
        log(f"  outer fold {k}: {len(folds[-1]['test_groups'])} group(s) held out, chose {best} {scores}")
    return {"p_song": p, "threshold": thr, "folds": folds}


def balanced_threshold(y, sample_weight=None, *, positive: str = "song") -> float:
    """Operating threshold on calibrated P(``positive``) that minimises *balanced* error.

    Calibrated probabilities carry the training set's class prior ``pi`` (here about 20%
    songs). Predicting song when ``p >= pi`` is the Bayes rule for balanced error (equal
    cost per class), so the threshold comes from the training labels alone, never from
    test results. The same rule sets a three-class model's threshold on P(no_music).
    """
    return float(np.average(np.asarray(y) == positive, weights=sample_weight))


def reference_data(X, y, *, n: int = N_REFERENCE, random_state: int = 0) -> dict:
    """Background rows (``n`` per class) and per-class medians, stored with a model so that
    :func:`scoresong.explain` can compare a file with the training material."""
    rng = np.random.default_rng(random_state)
    rows, med = [], {}
    labels = [lab for lab in ALL_LABELS if (y == lab).any()]
    for lab in labels:
        idx = np.flatnonzero(y == lab)
        rows.append(X[rng.choice(idx, size=min(n, idx.size), replace=False)])
        med[lab] = np.median(X[idx], axis=0)
    sig = lambda a: [float(f"{v:.5g}") for v in np.ravel(a)]  # noqa: E731
    bg = np.vstack(rows)
    return {"background": [sig(r) for r in bg], "background_labels": sum(
                ([lab] * len(r) for lab, r in zip(labels, rows)), []),
            "median": {lab: sig(m) for lab, m in med.items()}}


def train(corpus, *, out=None, groups=None, label_map=None, n_jobs: int = 1, cache_dir=None,
          candidates=("hgb", "logreg"), evaluate: bool = True, random_state: int = 0,
          model_version: str | None = None, extra_meta: dict | None = None, plot: bool = True,
          log=print) -> tuple[Model, dict]:
    """Train a model on ``corpus`` and evaluate it with nested grouped cross-validation.

    Parameters
    ----------
    corpus : str or os.PathLike
        CSV manifest (``path,label[,group][,weight]...``) or folder of label sub-folders;
        see :func:`scoresong.dataset.read_corpus`. With ``no_music`` items (a ``no_music``
        folder, or that label in the manifest) the model answers three classes
        (:class:`~scoresong.estimator.MusicSongClassifier`); without, score or song.
    out : path, optional
        Where to write the model (``OUT.json``, ``OUT.skops`` and ``OUT.npz``, its inference
        form) and its report (``OUT.report.md`` / ``.json`` / ``.png`` / ``.predictions.csv``).
    groups : str or callable, optional
        What keeps items together in cross-validation (a manifest column such as
        ``"album"``; for folders ``"folder"``, ``"parent"`` or ``"file"``).
    label_map : mapping, optional
        Extra labels folded into score/song/no_music, e.g. ``{"vocalise": "score"}``.
    n_jobs : int
        Processes for feature extraction.
    cache_dir : path, optional
        Feature cache keyed by file content, excerpt and feature schema.
    candidates : tuple of str
        Base classifiers compared on inner folds (``"hgb"``, ``"logreg"``).
    evaluate : bool
        Run the nested cross-validation (the final model is trained either way).
    random_state : int
    model_version : str, optional
        Default: today's date.
    plot : bool
        Draw the report's PNG (needs matplotlib).

    Returns
    -------
    model : Model
    report : dict

    Examples
    --------
    >>> model, report = scoresong.train("my_library/", groups="folder", out="models/mine",
    ...                                 cache_dir="~/.cache/scoresong")      # doctest: +SKIP
    >>> report["cv"]["balanced_accuracy"]                                    # doctest: +SKIP
    0.93
    """
    t0 = time.time()
    corp = _read(corpus, groups=groups, label_map=label_map, need_both=True, log=log)
    log(f"{len(corp.items)} items; extracting features")
    data = _extract(corp, n_jobs=n_jobs, cache_dir=cache_dir)
    log(f"features: {data.counts['extracted']} extracted, {data.counts['cached']} from the cache, "
        f"{data.counts['failed']} failed ({data.counts['seconds']} s)")
    if not set(LABELS) <= set(data.y):
        raise CorpusError(f"{corpus}: after failures only {sorted(set(data.y))} left; see the errors: "
                         f"{data.errors[:5]}")
    three = NO_MUSIC in set(data.y)
    music = data.y != NO_MUSIC
    report: dict = {"title": "Training report", **_report_head(corpus, data),
                    "by_label": {k: int((data.y == k).sum()) for k in ALL_LABELS if (data.y == k).any()},
                    "n_groups": int(len(np.unique(data.groups))), "weighted": data.weights is not None}
    if evaluate:
        report.update(_cross_validate(data, candidates=candidates, random_state=random_state,
                                      n_jobs=n_jobs, log=log))
    clf, best, scores = _fit(data, candidates=candidates, random_state=random_state, log=log)
    report["final_choice"] = {"estimator": best, "grouped_cv_balanced_accuracy": scores}
    meta = model_meta(best["song"] if three else best, report, model_version=model_version,
                      n_used=len(data.items), corpus=corpus, evaluate=evaluate)
    w = data.weights
    meta["threshold"] = balanced_threshold(data.y[music], None if w is None else w[music])
    if three:
        meta["labels"] = list(ALL_LABELS)
        meta["presence_estimator"] = best["presence"]
        meta["presence_threshold"] = balanced_threshold(data.y, w, positive=NO_MUSIC)
        meta["presence_threshold_rule"] = ("no_music prior of the training data (Bayes rule for "
                                           "balanced error)")
        if evaluate:
            meta["metrics_three_class"] = {k: report["cv3"][k] for k in (
                "accuracy", "balanced_accuracy", "recall", "presence", "confusion_matrix")}
        report["presence_threshold"] = meta["presence_threshold"]
    meta["reference"] = reference_data(data.X, data.y, random_state=random_state)
    if extra_meta:
        meta.update(extra_meta)
    report["threshold"] = meta["threshold"]
    report["seconds"] = round(time.time() - t0, 1)
    model = Model(clf, meta)
    if out is not None:
        js = save_model(clf, out, meta)
        write_report(report, js.with_name(js.stem + ".report"), plot=plot)
        model.meta = json.loads(js.read_text())
    return model, report


# --- the steps train and evaluate share: read -> extract -> evaluate -> fit ------------------

@dataclass
class _Extracted:
    """A corpus after feature extraction: the items that could be analysed, row for row
    with their feature vectors, and what failed."""

    corpus: Corpus
    X: np.ndarray
    items: list[Item]      # the analysed items, in the rows of ``X``
    counts: dict           # extracted / cached / failed / hashed / seconds
    errors: list

    @property
    def y(self) -> np.ndarray:
        return np.array([i.label for i in self.items])

    @property
    def groups(self) -> np.ndarray:
        return np.array([i.group for i in self.items])

    @property
    def weights(self) -> np.ndarray | None:
        return _weights(self.items)

    @property
    def kinds(self) -> np.ndarray:
        return np.array([i.kind for i in self.items])

    @property
    def sources(self) -> np.ndarray:
        return np.array([i.source or i.group for i in self.items])

    @property
    def names(self) -> list[str]:
        return [_name(i) for i in self.items]

    def subset(self, mask) -> "_Extracted":
        """The rows where ``mask`` holds (the same corpus, counts and errors)."""
        idx = np.flatnonzero(mask)
        return _Extracted(self.corpus, self.X[idx], [self.items[i] for i in idx], self.counts, self.errors)


def _read(corpus, *, groups=None, label_map=None, need_both: bool = False, log=None) -> Corpus:
    """Step 1: the labelled items of a corpus (manifest or folders). ``log`` hears which
    labels were left out; ``need_both`` refuses a corpus without both labels (training)."""
    corp = read_corpus(corpus, groups=groups, label_map=label_map)  # refusals: CorpusError
    if log is not None and corp.ignored:
        log(f"left out (labels other than {ALL_LABELS}; map them with label_map): {corp.ignored}")
    labels = {i.label for i in corp.items}
    if need_both and not set(LABELS) <= labels:
        raise CorpusError(f"{corpus}: training needs both labels {LABELS} (and no_music for a "
                          f"three-class model), found {sorted(labels)}")
    return corp


def _extract(corp: Corpus, *, n_jobs: int = 1, cache_dir=None, view: str = "mix") -> _Extracted:
    """Step 2: feature vectors of every item (through the content cache); failures listed."""
    ext = extract_items(corp.items, n_jobs=n_jobs, cache_dir=cache_dir, view=view)
    return _Extracted(corp, ext.X, [corp.items[i] for i in ext.ok], ext.counts, ext.errors)


def _report_head(corpus, data: _Extracted) -> dict:
    """What every report says first: the corpus, how many items were used, what failed."""
    return {"corpus": str(corpus), "n_items": len(data.corpus.items), "n_used": len(data.items),
            "ignored_labels": data.corpus.ignored, "failed": data.errors, "features": data.counts}


def _metrics(data: _Extracted, p_song, threshold) -> tuple[dict, dict]:
    """Step 3 (evaluate): metrics of song probabilities against the labels, with the
    breakdowns per kind and source, and separately per group."""
    y = data.y
    res = evaluate_predictions(y, p_song, threshold=threshold, kinds=data.kinds,
                               sources=data.sources, paths=data.names)
    per_group = evaluate_predictions(y, p_song, threshold=threshold, kinds=data.groups)["per_kind"]
    return res, per_group


def _cross_validate(data: _Extracted, *, candidates, random_state: int, n_jobs: int, log) -> dict:
    """Step 3 for training: nested grouped CV; the report's ``cv``, ``cv_at_0.5`` and
    ``predictions``, and for a corpus with ``no_music`` items ``cv3`` (the three-class
    decision, from a second nested CV of music or not on the same outer folds).

    ``cv`` is always the score/song part on the music items, so its figures compare with
    a two-class model's."""
    y = data.y
    music = y != NO_MUSIC
    three = not music.all()
    cv = nested_cv(data.X, y, data.groups, candidates=candidates, sample_weight=data.weights,
                   random_state=random_state, n_jobs=n_jobs, log=log,
                   train_mask=music if three else None)
    md = data.subset(music)
    res, per_group = _metrics(md, cv["p_song"][music], cv["threshold"][music])
    at_half = evaluate_predictions(md.y, cv["p_song"][music], threshold=0.5, kinds=md.kinds)
    out = {"cv": {**res, "folds": cv["folds"], "per_group": per_group},
           "cv_at_0.5": {k: at_half[k] for k in ("accuracy", "balanced_accuracy", "f1_song",
                                                 "confusion_matrix", "per_kind")}}
    if not three:
        out["predictions"] = _prediction_rows(data.items, cv["p_song"], cv["threshold"])
        return out
    log("music or not:")
    pres = nested_cv(data.X, np.where(music, "music", NO_MUSIC), data.groups, candidates=candidates,
                     sample_weight=data.weights, random_state=random_state, n_jobs=n_jobs, log=log,
                     positive=NO_MUSIC)
    c3 = evaluate_three_class(y, pres["p_song"], cv["p_song"], threshold=cv["threshold"],
                              presence_threshold=pres["threshold"], kinds=data.kinds, sources=data.sources)
    pred = c3.pop("predicted")
    c3.update(threshold="per fold", presence_threshold="per fold", folds=pres["folds"])
    out["cv3"] = c3
    out["predictions"] = _prediction_rows(data.items, cv["p_song"], cv["threshold"],
                                          p_no_music=pres["p_song"], presence_threshold=pres["threshold"],
                                          predicted=pred)
    return out


def _fit(data: _Extracted, *, candidates, random_state: int, log):
    """Step 4: choose the base classifier on grouped folds of all data, then fit it
    (calibrated) on all of it. With ``no_music`` items: the same for music or not (all
    items) and for score or song (music items), fitted as one :class:`MusicSongClassifier`;
    ``best`` and ``scores`` are then dicts with keys ``presence`` and ``song``."""
    y, g, sw = data.y, data.groups, data.weights
    music = y != NO_MUSIC
    if music.all():
        best, scores = _inner_choice(data.X, y, g, candidates, 5, random_state, sw)
        log(f"final model: {best} (grouped CV balanced accuracy {scores})")
        clf = ScoreSongClassifier(estimator=best, random_state=random_state).fit(data.X, y, groups=g, sample_weight=sw)
        return clf, best, scores
    best_s, scores_s = _inner_choice(data.X[music], y[music], g[music], candidates, 5, random_state,
                                     None if sw is None else sw[music])
    best_p, scores_p = _inner_choice(data.X, np.where(music, "music", NO_MUSIC), g, candidates, 5,
                                     random_state, sw)
    log(f"final model: music or not {best_p} {scores_p}; score or song {best_s} {scores_s}")
    clf = MusicSongClassifier(presence=ScoreSongClassifier(estimator=best_p, random_state=random_state),
                              song=ScoreSongClassifier(estimator=best_s, random_state=random_state)
                              ).fit(data.X, y, groups=g, sample_weight=sw)
    return clf, {"presence": best_p, "song": best_s}, {"presence": scores_p, "song": scores_s}


def _prediction_rows(items: list[Item], p_song, threshold, *, p_no_music=None, presence_threshold=None,
                     predicted=None) -> list[dict]:
    """One row per item for ``REPORT.predictions.csv`` (thresholds: scalar or per item);
    three-class reports add P(no_music), its threshold and the predicted label (``p_song``
    is then P(song | music))."""
    thr = np.broadcast_to(np.asarray(threshold, dtype=float), np.shape(p_song))
    rows = [{"path": i.path, "start_s": i.start_s, "label": i.label, "kind": i.kind, "group": i.group,
             "p_song": round(float(q), 5), "threshold": round(float(t), 5)}
            for i, q, t in zip(items, p_song, thr)]
    if p_no_music is not None:
        pthr = np.broadcast_to(np.asarray(presence_threshold, dtype=float), np.shape(p_song))
        for r, q, t, lab in zip(rows, p_no_music, pthr, predicted):
            r.update(p_no_music=round(float(q), 5), presence_threshold=round(float(t), 5), predicted=lab)
    return rows


def _name(i: Item) -> str:
    return f"{i.path}@{i.start_s}" if i.start_s or i.duration_s else i.path


def model_meta(best: str, report: dict, *, model_version=None, n_used: int, corpus, evaluate=True) -> dict:
    """The metadata stored beside a model: schema, versions, training set, CV metrics."""
    import sklearn

    return {
        "model_version": model_version or time.strftime("%Y%m%d"),
        "feature_schema": FEATURE_SCHEMA_VERSION,
        "feature_names": list(feature_names()),
        "threshold": 0.5,
        "threshold_rule": "song prior of the training data (Bayes rule for balanced error)",
        "labels": list(LABELS),
        "estimator": best,
        "versions": {"scoresong": __version__, "python": platform.python_version(),
                     "numpy": np.__version__, "scikit-learn": sklearn.__version__,
                     "librosa": _version("librosa"), "soundfile": _version("soundfile"),
                     "soxr": _version("soxr"), "skops": _version("skops")},
        "trained_on": {"corpus": Path(str(corpus)).name, "n": n_used,
                       "by_label": report["by_label"]},
        "metrics": {k: report["cv"][k] for k in ("accuracy", "balanced_accuracy", "f1_song", "roc_auc",
                                                 "brier", "ece", "confusion_matrix")} if evaluate else {},
    }


def evaluate(model, corpus, *, groups=None, label_map=None, n_jobs: int = 1, cache_dir=None,
             threshold: float | None = None, out=None, plot: bool = True, view: str = "mix") -> dict:
    """Evaluate a trained model on any labelled corpus, at the model's threshold.

    Parameters
    ----------
    model : Model or path
        A loaded model or its ``.json`` file.
    corpus : str or os.PathLike
        CSV manifest or folder of label sub-folders (see :func:`scoresong.dataset.read_corpus`).
    groups, label_map, n_jobs, cache_dir
        As for :func:`train`; groups give the per-group breakdown.
    threshold : float, optional
        Override the model's threshold.
    out : path, optional
        Report stem; writes ``OUT.md``, ``OUT.json``, ``OUT.png``, ``OUT.predictions.csv``.
    view : {"mix", "centre"}
        What the model hears of stereo files (see :func:`scoresong.predict`); the report
        says which.

    Returns
    -------
    dict
        The report (metrics under ``"cv"``, failed files under ``"failed"``).
    """
    from .model import load_model

    m = model if isinstance(model, Model) else load_model(model)
    data = _extract(_read(corpus, groups=groups, label_map=label_map), n_jobs=n_jobs, cache_dir=cache_dir,
                    view=view)
    if not data.items:
        raise CorpusError(f"{corpus}: no item could be analysed ({len(data.errors)} failed: {data.errors[:3]})")
    thr = m.threshold if threshold is None else float(threshold)
    music = data.y != NO_MUSIC
    head = _report_head(corpus, data)
    if not m.three_class and not music.all():
        # A two-class model cannot say no_music: judge it on the music items only.
        head["left_out"] = {NO_MUSIC: int((~music).sum()), "why": "the model answers score or song only"}
        data, music = data.subset(music), music[music]
    q, s = m.parts(data.X)
    report = {"title": f"Evaluation of model {m.version}" + (f" (view: {view})" if view != "mix" else ""),
              **head, "view": view}
    if music.any():
        md = data.subset(music)
        res, per_group = _metrics(md, s[music], thr)
        report["cv"] = {**res, "per_group": per_group, "folds": [], "model_threshold": m.threshold}
    if m.three_class:
        c3 = evaluate_three_class(data.y, q, s, threshold=thr, presence_threshold=m.presence_threshold,
                                  song_prior=m.threshold, kinds=data.kinds,
                                  sources=data.sources)
        pred = c3.pop("predicted")
        report["cv3"] = {**c3, "threshold": thr, "presence_threshold": m.presence_threshold,
                         "song_prior": m.threshold}
        report["predictions"] = _prediction_rows(data.items, s, thr, p_no_music=q,
                                                 presence_threshold=m.presence_threshold, predicted=pred)
    else:
        report["predictions"] = _prediction_rows(data.items, s, thr)
    if out is not None:
        write_report(report, Path(out), plot=plot)
    return report


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "unknown"
