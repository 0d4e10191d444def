"""Training and honest evaluation on a labelled corpus.

A corpus is a CSV manifest (``path,label[,group][,kind][,start_s,duration_s]...``, e.g. the
one ``corpus/build.py`` writes; relative paths are resolved against the manifest's folder)
or a folder with one sub-folder per label (``score/``, ``song/``).

Evaluation is nested and grouped: the outer folds hold out whole groups (cells, albums,
composers); the choice between candidate classifiers is made on inner folds of the training
part only, so no test fold ever steers a decision.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .audio import AudioError
from .features import FEATURE_SCHEMA_VERSION, extract_features, feature_names
from .model import Model, ScoreSongClassifier, save_model

__all__ = ["Item", "read_corpus", "extract_items", "evaluate_predictions", "nested_cv", "train",
           "evaluate"]

LABELS = ("score", "song")


@dataclass(frozen=True)
class Item:
    """One labelled example: a file or an excerpt of one."""

    path: str
    label: str
    group: str
    kind: str = ""
    source: str = ""
    start_s: float = 0.0
    duration_s: float | None = None


def read_corpus(corpus) -> list[Item]:
    """Read a CSV manifest or a folder of label sub-folders into :class:`Item` s."""
    p = Path(corpus)
    items: list[Item] = []
    if p.is_dir():
        from .predict import discover

        for label_dir in sorted(d for d in p.iterdir() if d.is_dir()):
            for f in discover([label_dir]):
                rel = Path(f).relative_to(label_dir)
                group = rel.parts[0] if len(rel.parts) > 1 else Path(f).stem
                items.append(Item(f, label_dir.name, f"{label_dir.name}/{group}", label_dir.name))
        return items
    if not p.exists():
        raise FileNotFoundError(f"{p}: corpus not found")
    with open(p, newline="") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{p}: a manifest needs at least the columns path,label")
        for r in reader:
            fp = Path(r["path"])
            if not fp.is_absolute():
                fp = p.parent / fp
            dur = r.get("duration_s") or ""
            items.append(Item(str(fp), r["label"].strip(), (r.get("group") or str(fp)).strip(),
                              (r.get("kind") or r["label"]).strip(),
                              (r.get("source_package") or "").split("+")[-1],
                              float(r.get("start_s") or 0.0), float(dur) if dur else None))
    return items


def _features_of(path: str, start: float, duration: float | None, size: int, mtime_ns: int,
                 schema: str) -> np.ndarray:
    # size, mtime_ns and schema are part of the cache key only.
    return extract_features(path, offset=start, duration=duration).values


def _schema_key() -> str:
    """Schema version plus a fingerprint of the feature names: a cache never serves vectors
    of another feature set, even if someone forgets to bump the version."""
    import hashlib

    names = "\n".join(feature_names()).encode()
    return f"{FEATURE_SCHEMA_VERSION}-{hashlib.sha256(names).hexdigest()[:16]}"


def _one(item: Item, cached):
    try:
        st = os.stat(item.path)
    except OSError as exc:
        return None, f"{item.path}: {exc.strerror or exc}"
    try:
        return cached(item.path, item.start_s, item.duration_s, st.st_size, st.st_mtime_ns,
                      _schema_key()), None
    except AudioError as exc:
        return None, f"{exc.path}: {type(exc).__name__}: {exc.reason}"


def extract_items(items: list[Item], *, n_jobs: int = 1, cache_dir=None, progress: bool = True):
    """Feature vectors of ``items``; failures are returned, never raised.

    Returns
    -------
    X : np.ndarray [shape=(n_ok, d)]
    ok : np.ndarray [shape=(n_ok,)]
        Indices into ``items`` of the rows of ``X``.
    errors : list of str
    """
    from joblib import Memory, Parallel, delayed

    mem = Memory(str(cache_dir) if cache_dir else None, verbose=0)
    cached = mem.cache(_features_of)
    it = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)(
        delayed(_one)(i, cached) for i in items)
    if progress:
        try:
            from tqdm import tqdm

            it = tqdm(it, total=len(items), desc="features", unit="file", file=sys.stderr)
        except ImportError:
            pass
    rows, ok, errors = [], [], []
    for k, (v, err) in enumerate(it):
        if err is None:
            rows.append(v)
            ok.append(k)
        else:
            errors.append(err)
    d = len(feature_names())
    X = np.vstack(rows) if rows else np.zeros((0, d), np.float32)
    return X, np.array(ok, dtype=int), errors


def evaluate_predictions(y: np.ndarray, p_song: np.ndarray, *, threshold: float = 0.5,
                         kinds=None, sources=None, paths=None) -> dict:
    """Metrics of song probabilities against labels, overall, per kind and per source."""
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, brier_score_loss,
                                 confusion_matrix, f1_score, roc_auc_score)

    y = np.asarray(y)
    yt = (y == "song").astype(int)
    thr = np.asarray(threshold, dtype=float)
    yp = (p_song >= thr).astype(int)
    out = {
        "n": int(y.size),
        "threshold": float(thr) if thr.ndim == 0 else f"per fold: {sorted(set(np.round(thr, 4).tolist()))}",
        "accuracy": float(accuracy_score(yt, yp)),
        "balanced_accuracy": float(balanced_accuracy_score(yt, yp)) if len(set(yt)) > 1 else None,
        "f1_song": float(f1_score(yt, yp, zero_division=0)),
        "roc_auc": float(roc_auc_score(yt, p_song)) if len(set(yt)) > 1 else None,
        "brier": float(brier_score_loss(yt, p_song)),
        "confusion_matrix": {"labels": ["score", "song"],
                             "rows_true_cols_pred": confusion_matrix(yt, yp, labels=[0, 1]).tolist()},
    }
    # Expected calibration error over 10 equal-width bins.
    bins = np.minimum((p_song * 10).astype(int), 9)
    ece = sum(abs(yt[bins == b].mean() - p_song[bins == b].mean()) * (bins == b).mean()
              for b in range(10) if (bins == b).any())
    out["ece"] = float(ece)
    song_recall = float(yp[yt == 1].mean()) if (yt == 1).any() else None

    def breakdown(keys):
        res = {}
        for k in sorted(set(keys)):
            m = np.asarray(keys) == k
            d = {"n": int(m.sum()), "accuracy": float((yp[m] == yt[m]).mean()),
                 "mean_p_song": float(p_song[m].mean())}
            if len(set(yt[m])) == 1 and song_recall is not None and yt[m][0] == 0:
                # A score-only kind against all songs: balanced accuracy of that pair.
                d["balanced_accuracy_vs_songs"] = float(((yp[m] == 0).mean() + song_recall) / 2)
            res[k] = d
        return res

    if kinds is not None:
        out["per_kind"] = breakdown(kinds)
    if sources is not None:
        out["per_source"] = breakdown(sources)
    if paths is not None:
        err = np.abs(p_song - yt)
        worst = np.argsort(-err)[:15]
        out["most_confidently_wrong"] = [
            {"path": str(paths[i]), "label": str(y[i]), "p_song": round(float(p_song[i]), 4),
             "kind": str(kinds[i]) if kinds is not None else ""}
            for i in worst if yp[i] != yt[i]]
    return out


def _inner_choice(X, y, groups, candidates, n_splits, random_state) -> tuple[str, dict]:
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import GroupKFold

    scores = {}
    n_groups = len(np.unique(groups))
    splits = list(GroupKFold(n_splits=min(n_splits, n_groups)).split(X, y, groups))
    for cand in candidates:
        pred = np.empty(y.size, dtype=object)
        for tr, te in splits:
            clf = ScoreSongClassifier(estimator=cand, calibration=None, random_state=random_state)
            pred[te] = clf.fit(X[tr], y[tr]).predict(X[te])
        scores[cand] = float(balanced_accuracy_score(y, pred.astype(str)))
    return max(scores, key=scores.get), scores


def nested_cv(X, y, groups, *, candidates=("hgb", "logreg"), outer: int = 5, inner: int = 4,
              random_state: int = 0, log=print) -> dict:
    """Out-of-fold calibrated song probabilities from nested grouped cross-validation."""
    from sklearn.model_selection import GroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 3:
        raise ValueError(f"grouped evaluation needs at least 3 groups, got {n_groups}")
    p = np.zeros(y.size)
    thr = np.zeros(y.size)
    folds = []
    for k, (tr, te) in enumerate(GroupKFold(n_splits=min(outer, n_groups)).split(X, y, groups)):
        best, scores = _inner_choice(X[tr], y[tr], groups[tr], candidates, inner, random_state)
        clf = ScoreSongClassifier(estimator=best, random_state=random_state).fit(X[tr], y[tr], groups=groups[tr])
        p[te] = clf.predict_proba(X[te])[:, list(clf.classes_).index("song")]
        thr[te] = balanced_threshold(y[tr])
        folds.append({"fold": k, "test_groups": sorted(set(groups[te].tolist())), "chosen": best,
                      "inner_balanced_accuracy": scores, "threshold": float(thr[te][0])})
        log(f"  outer fold {k}: test {folds[-1]['test_groups']} chose {best} {scores}")
    return {"p_song": p, "threshold": thr, "folds": folds}


def balanced_threshold(y) -> float:
    """Operating threshold on calibrated P(song) that minimises *balanced* error.

    Calibrated probabilities carry the training set's class prior ``pi`` (here about 20%
    songs). Predicting song when ``p >= pi`` is the Bayes rule for balanced error (equal
    cost per class), so the threshold comes from the training labels alone, never from
    test results.
    """
    return float(np.mean(np.asarray(y) == "song"))


def train(corpus, *, out=None, n_jobs: int = 1, cache_dir=None, candidates=("hgb", "logreg"),
          evaluate: bool = True, random_state: int = 0, model_version: str | None = None,
          extra_meta: dict | None = None, log=print) -> tuple[Model, dict]:
    """Train a model on ``corpus`` and evaluate it with nested grouped cross-validation.

    Parameters
    ----------
    corpus : str or os.PathLike
        CSV manifest or folder of label sub-folders.
    out : path, optional
        Where to write the model (``.json`` + ``.skops``) and ``report.md`` / ``report.json``.
    n_jobs : int
        Processes for feature extraction.
    cache_dir : path, optional
        Feature cache (keyed by path, size, mtime, excerpt and feature schema).
    candidates : tuple of str
        Base classifiers compared on inner folds.
    evaluate : bool
        Run the nested cross-validation (the final model is trained either way).

    Returns
    -------
    model : Model
    report : dict
    """
    t0 = time.time()
    items = read_corpus(corpus)
    labels = {i.label for i in items}
    if not labels <= set(LABELS):
        raise ValueError(f"labels must be among {LABELS}, found {sorted(labels)}")
    log(f"{len(items)} items; extracting features")
    X, ok, errors = extract_items(items, n_jobs=n_jobs, cache_dir=cache_dir)
    used = [items[i] for i in ok]
    y = np.array([i.label for i in used])
    groups = np.array([i.group for i in used])
    kinds = np.array([i.kind for i in used])
    sources = np.array([i.source or i.group for i in used])
    t_feat = time.time() - t0
    log(f"features: {len(used)} ok, {len(errors)} failed, {t_feat:.0f} s")
    report: dict = {"corpus": str(corpus), "n_items": len(items), "n_used": len(used),
                    "failed": errors, "feature_seconds": round(t_feat, 1),
                    "by_label": {k: int((y == k).sum()) for k in LABELS}}
    if evaluate:
        cv = nested_cv(X, y, groups, candidates=candidates, random_state=random_state, log=log)
        report["cv"] = evaluate_predictions(y, cv["p_song"], threshold=cv["threshold"], kinds=kinds,
                                            sources=sources, paths=[f"{i.path}@{i.start_s}" for i in used])
        report["cv"]["folds"] = cv["folds"]
        report["cv"]["per_group"] = evaluate_predictions(y, cv["p_song"], threshold=cv["threshold"],
                                                         kinds=groups)["per_kind"]
        at_half = evaluate_predictions(y, cv["p_song"], threshold=0.5, kinds=kinds)
        report["cv_at_0.5"] = {k: at_half[k] for k in ("accuracy", "balanced_accuracy", "f1_song",
                                                         "confusion_matrix", "per_kind")}
        report["cv_predictions"] = [
            {"path": i.path, "start_s": i.start_s, "label": i.label, "kind": i.kind, "group": i.group,
             "p_song": round(float(q), 5), "threshold": round(float(t), 5)}
            for i, q, t in zip(used, cv["p_song"], cv["threshold"])]
    best, scores = _inner_choice(X, y, groups, candidates, 5, random_state)
    log(f"final model: {best} (grouped CV balanced accuracy {scores})")
    clf = ScoreSongClassifier(estimator=best, random_state=random_state).fit(X, y, groups=groups)
    report["final_choice"] = {"estimator": best, "grouped_cv_balanced_accuracy": scores}
    meta = model_meta(best, report, model_version=model_version, n_used=len(used),
                      corpus=corpus, evaluate=evaluate)
    meta["threshold"] = balanced_threshold(y)
    if extra_meta:
        meta.update(extra_meta)
    report["seconds"] = round(time.time() - t0, 1)
    model = Model(clf, meta)
    if out is not None:
        js = save_model(clf, out, meta)
        write_report(report, js.with_name(js.stem + ".report"))
        model.meta = json.loads(js.read_text())
    return model, report


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


def evaluate(model, corpus, *, n_jobs: int = 1, cache_dir=None, out=None) -> dict:
    """Evaluate a trained model on a labelled corpus at the model's threshold.

    Parameters
    ----------
    model : Model or path
        A loaded model or its ``.json`` file.
    corpus : str or os.PathLike
        CSV manifest or folder of label sub-folders (see :func:`read_corpus`).
    n_jobs, cache_dir
        As for :func:`train`.
    out : path, optional
        Report stem; writes ``OUT.md`` and ``OUT.json``.

    Returns
    -------
    dict
        The report (metrics under ``"cv"``, failed files under ``"failed"``).
    """
    from .model import load_model

    m = model if isinstance(model, Model) else load_model(model)
    items = read_corpus(corpus)
    X, ok, errors = extract_items(items, n_jobs=n_jobs, cache_dir=cache_dir)
    used = [items[i] for i in ok]
    res = evaluate_predictions(np.array([i.label for i in used]), m.song_probability(X),
                               threshold=m.threshold, kinds=[i.kind for i in used],
                               sources=[i.source or i.group for i in used],
                               paths=[f"{i.path}@{i.start_s}" for i in used])
    report = {"corpus": str(corpus), "n_items": len(items), "n_used": len(used), "failed": errors,
              "cv": {**res, "folds": []}}
    if out is not None:
        write_report(report, Path(out))
    return report


def _version(mod: str) -> str:
    try:
        from importlib.metadata import version

        return version(mod)
    except Exception:
        return "unknown"


def write_report(report: dict, stem: Path) -> tuple[Path, Path]:
    """Write ``STEM.json`` and ``STEM.md`` (``STEM`` is kept whole, dots included)."""
    stem = Path(stem)
    js, md = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".md")
    report = dict(report)
    preds = report.pop("cv_predictions", None)
    if preds:
        with open(stem.with_name(stem.name + ".predictions.csv"), "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(preds[0]))
            w.writeheader()
            w.writerows(preds)
    js.write_text(json.dumps(report, indent=2, default=str))
    md.write_text(report_markdown(report))
    return js, md


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def report_markdown(report: dict) -> str:
    lines = ["# Evaluation report", "", f"Corpus: `{report['corpus']}`; {report['n_used']} of "
             f"{report['n_items']} items used ({len(report['failed'])} failed to decode).", ""]
    cv = report.get("cv")
    if cv:
        cm = cv["confusion_matrix"]["rows_true_cols_pred"]
        lines += ["## Nested grouped cross-validation", "",
                  f"Threshold on calibrated P(song): {cv['threshold']} (each outer fold's training "
                  "song prior, the balanced-error rule; the shipped model uses the prior of all "
                  "training data).", "",
                  "| metric | value |", "|---|---|",
                  f"| accuracy | {_pct(cv['accuracy'])} |",
                  f"| balanced accuracy | {_pct(cv['balanced_accuracy'])} |",
                  f"| F1 (song) | {cv['f1_song']:.3f} |",
                  f"| ROC-AUC | {cv['roc_auc']:.3f} |" if cv["roc_auc"] is not None else "| ROC-AUC | – |",
                  f"| Brier score | {cv['brier']:.3f} |",
                  f"| expected calibration error | {cv['ece']:.3f} |", "",
                  "Confusion matrix (rows true, columns predicted):", "",
                  "| | score | song |", "|---|---|---|",
                  f"| **score** | {cm[0][0]} | {cm[0][1]} |", f"| **song** | {cm[1][0]} | {cm[1][1]} |", ""]
        half = report.get("cv_at_0.5")
        if half:
            c5 = half["confusion_matrix"]["rows_true_cols_pred"]
            lines += ["At threshold 0.5 instead (accuracy-optimal for the training prior): accuracy "
                      f"{_pct(half['accuracy'])}, balanced accuracy {_pct(half['balanced_accuracy'])}, "
                      f"F1 {half['f1_song']:.3f}; confusion {c5}.", ""]
        for title, key in (("Per kind", "per_kind"), ("Per source package (of the backing)", "per_source"),
                           ("Per group (held-out cell)", "per_group")):
            if key not in cv:
                continue
            lines += [f"### {title}", "", "| | n | accuracy | balanced acc. vs all songs | mean P(song) |",
                      "|---|---|---|---|---|"]
            for k, d in cv[key].items():
                lines.append(f"| {k} | {d['n']} | {_pct(d['accuracy'])} | "
                             f"{_pct(d.get('balanced_accuracy_vs_songs'))} | {d['mean_p_song']:.3f} |")
            lines.append("")
        lines += ["### Folds", ""]
        for f in cv["folds"]:
            lines.append(f"- fold {f['fold']}: held out {', '.join(f['test_groups'])}; "
                         f"inner choice {f['chosen']} ({f['inner_balanced_accuracy']})")
        lines += ["", "### Most confidently wrong", ""]
        for w in cv.get("most_confidently_wrong", [])[:10]:
            lines.append(f"- `{w['path']}` ({w['kind']}, true {w['label']}): P(song) = {w['p_song']}")
        lines.append("")
    if report.get("failed"):
        lines += ["## Files that failed", ""] + [f"- {e}" for e in report["failed"][:50]] + [""]
    return "\n".join(lines)
