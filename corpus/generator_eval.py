"""Leave-one-generator-out evaluation: does the classifier hear *singing*, or one vocal generator?

    python -m corpus.generator_eval CORPUS_DIR_OR_MANIFEST [--cache DIR] [--jobs 2]
        [-o models/generators.report] [--threshold-from train|model] [--model models/scoresong.json]

Every song clip of the constructed corpus has its vocal made by one *generator* (manifest
column ``generator``: ``speech2sing_v1``, ``speech2sing_v2``, ``sinsy``, ``rap``,
``singer``...). A classifier that only learnt the artefacts of the generators it was trained
on would fail on songs made another way. For each generator ``G`` and each cell ``c`` (the
manifest's ``group``: voices and backing packages never cross cells) that holds songs of
``G``, a fresh classifier is trained on

* every item of the *other* cells, **minus every song clip of G** (score clips stay, whatever
  voice their speech or vocalise came from),

and tested on G's song clips of cell ``c`` plus *all* score clips of cell ``c``. The
predictions of G's folds are pooled (out of fold twice over: unseen cell, unseen generator)
and reported per generator:

* song recall at the operating threshold, and ROC-AUC of G's songs against the score clips of
  the same test cells;
* recall per vocal-to-accompaniment band (``var_db``: [-6,-3), [-3,0), [0,3), [3,6], a
  cappella) and per backing-density band (tertiles of ``density`` over the whole corpus);
* the score-side false-positive rate per score kind in the same folds (``score``,
  ``score_choir``, ``score_rock``, ``score_speech``: do the hard negatives hold?).

A pooled row and the minimum over generators follow, and whether the targets hold (recall
>= 0.90 and ROC-AUC >= 0.98 for every generator).

The classifier is the shipped model's: :class:`scoresong.model.ScoreSongClassifier` with
the ``estimator`` named in the model's JSON (default ``hgb``), sigmoid-calibrated on folds
grouped by cell. The threshold never sees the test fold: ``--threshold-from train`` (the
default) applies the shipped model's rule, :func:`scoresong.training.balanced_threshold`,
to each fold's training labels; ``--threshold-from model`` uses the shipped model's stored
threshold as is.

Features come from :func:`scoresong.cache.extract_items` (content-keyed cache, once for all
items); after that only fits run, ``--jobs`` of them at a time.

Outputs: ``OUT.md`` (tables for the model card), ``OUT.json`` (every number),
``OUT.predictions.csv`` (one row per item and fold: ``path,start_s,generator,cell,label,
kind,p_song,threshold,var_db,density``; for a score row ``generator`` is the generator held
out in that fold, so a score clip appears once per generator with songs in its cell).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["Fold", "generator_folds", "song_generators", "fit_classifier", "predict_folds",
           "var_db_bands", "density_cuts", "density_band_names", "density_bands",
           "generator_metrics", "leave_one_generator_out", "report_markdown", "summary_table",
           "write_outputs", "evaluate_corpus", "main"]

#: Edges of the vocal-to-accompaniment bands (dB); values beyond the ends join the end bands.
VAR_DB_EDGES = (-6.0, -3.0, 0.0, 3.0, 6.0)
#: Band of a song without accompaniment (empty ``var_db``).
ACAPPELLA = "a cappella"
#: Band of a song without a backing density (empty ``density``).
NO_BACKING = "no backing"
#: What every generator must reach.
TARGETS = {"recall": 0.90, "roc_auc": 0.98}
#: Name given to song clips whose ``generator`` is empty.
UNSPECIFIED = "(unspecified)"
#: Score kinds always listed in the false-positive table, found or not.
SCORE_KINDS = ("score", "score_choir", "score_rock", "score_speech")

DESCRIPTION = ("Leave-one-generator-out evaluation on our constructed corpus, grouped by cell: "
               "for each vocal generator G and each cell c holding songs of G, a classifier is "
               "trained on the other cells without any song of G, and tested on G's songs of c "
               "plus every score clip of c. Not a measurement on real commercial music.")


# --- splitting ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Fold:
    """One fit of the evaluation.

    Attributes
    ----------
    generator : str
        The generator held out.
    cell : str
        The cell tested.
    train, test : np.ndarray of int
        Indices of the training and test items.
    """

    generator: str
    cell: str
    train: np.ndarray
    test: np.ndarray


def generator_folds(y, cells, generators, *, train_generators=None) -> list[Fold]:
    """The leave-one-generator-out folds: one per (generator, cell holding its songs).

    Parameters
    ----------
    y : np.ndarray of {"score", "song"}
    cells : np.ndarray of str
        Cross-validation group of each item.
    generators : np.ndarray of str
        Vocal generator of each item; read for songs only (a score clip's entry is ignored).
        An empty entry of a song counts as the generator ``"(unspecified)"``.
    train_generators : collection of str, optional
        Generators whose songs may be trained on (the shipped model's training set); songs of
        any other generator are never trained on, only tested. Default: all.

    Returns
    -------
    list of Fold
        Sorted by generator, then cell. ``train``: every item of the other cells except the
        songs of the generator; ``test``: the generator's songs of the cell and every score
        item of the cell.
    """
    y, cells = np.asarray(y), np.asarray(cells)
    gen = song_generators(y, generators)
    song = y == "song"
    trainable = (np.ones(y.size, bool) if train_generators is None
                 else ~song | np.isin(gen, list(train_generators)))
    folds = []
    for g in sorted(set(gen[song].tolist())):
        of_g = song & (gen == g)
        for c in sorted(set(cells[of_g].tolist())):
            in_c = cells == c
            train = np.flatnonzero(~in_c & ~of_g & trainable)
            test = np.flatnonzero(in_c & (of_g | ~song))
            folds.append(Fold(g, c, train, test))
    return folds


def song_generators(y, generators) -> np.ndarray:
    """Generator of each song (``"(unspecified)"`` where empty); ``""`` for score items."""
    y = np.asarray(y)
    gen = np.array(["" if v is None else str(v).strip() for v in generators], dtype=object)
    gen[(y == "song") & (gen == "")] = UNSPECIFIED
    gen[y != "song"] = ""
    return gen


# --- fitting -----------------------------------------------------------------------------

def fit_classifier(X, y, groups, sample_weight=None, *, estimator: str = "hgb",
                   calibration: str | None = "sigmoid", random_state: int = 0):
    """A fresh :class:`~scoresong.model.ScoreSongClassifier`, fitted as the shipped model is
    (calibration folds grouped by ``groups``)."""
    from scoresong.model import ScoreSongClassifier

    clf = ScoreSongClassifier(estimator=estimator, calibration=calibration, random_state=random_state)
    return clf.fit(X, y, groups=groups, sample_weight=sample_weight)


def _song_proba(clf, X) -> np.ndarray:
    return clf.predict_proba(X)[:, list(clf.classes_).index("song")]


def _run_fold(fit, X_tr, y_tr, g_tr, sw_tr, X_te, threshold, threads):
    from threadpoolctl import threadpool_limits

    from scoresong.training import balanced_threshold

    t0 = time.perf_counter()
    with threadpool_limits(limits=threads):
        clf = fit(X_tr, y_tr, g_tr, sw_tr)
        p = _song_proba(clf, X_te)
    thr = balanced_threshold(y_tr, sw_tr) if threshold == "train" else float(threshold)
    return p, thr, time.perf_counter() - t0


def predict_folds(X, y, cells, folds: list[Fold], *, fit: Callable | None = None,
                  threshold: str | float = "train", sample_weight=None, n_jobs: int = 1,
                  threads: int | None = 1, log: Callable[[str], None] = print) -> list[dict]:
    """Fit one classifier per fold and predict its test items.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
    y, cells : np.ndarray [shape=(n,)]
    folds : list of Fold
    fit : callable, optional
        ``fit(X, y, groups, sample_weight) -> fitted classifier`` with ``classes_`` and
        ``predict_proba``; default :func:`fit_classifier` (hgb, sigmoid calibration).
        Must be picklable when ``n_jobs != 1``.
    threshold : "train" or float
        ``"train"``: :func:`scoresong.training.balanced_threshold` of each fold's training
        labels (the shipped model's rule); a float: that threshold for every fold.
    sample_weight : np.ndarray, optional
    n_jobs : int
        Fits run at once (joblib processes).
    threads : int or None
        OpenMP / BLAS threads per fit (``None``: no limit). One by default: on a shared
        machine gradient boosting's OpenMP threads wait on each other (a fit can take 30
        times longer); parallelism comes from ``n_jobs``.

    Returns
    -------
    list of dict
        Per fold: ``generator``, ``cell``, ``test`` (indices), ``p_song``, ``threshold``,
        ``n_train``, ``n_train_song``, ``n_test``, ``seconds``.
    """
    from joblib import Parallel, delayed

    if threshold != "train" and not isinstance(threshold, (int, float)):
        raise ValueError(f"threshold must be 'train' or a number, got {threshold!r}")
    fit = fit or fit_classifier
    y, cells = np.asarray(y), np.asarray(cells)
    for f in folds:
        if len(set(y[f.train].tolist())) < 2:
            raise ValueError(f"fold {f.generator}/{f.cell}: the training part has only "
                             f"{sorted(set(y[f.train].tolist()))}; every label needs items in "
                             "other cells (and songs of other generators)")
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
    jobs = (delayed(_run_fold)(fit, X[f.train], y[f.train], cells[f.train],
                               None if sw is None else sw[f.train], X[f.test], threshold, threads)
            for f in folds)
    out = []
    t0 = time.perf_counter()
    for k, (f, (p, thr, sec)) in enumerate(zip(folds, Parallel(n_jobs=n_jobs, return_as="generator")(jobs))):
        n_song = int((y[f.train] == "song").sum())
        out.append({"generator": f.generator, "cell": f.cell, "test": f.test, "p_song": np.asarray(p, float),
                    "threshold": float(thr), "n_train": int(f.train.size), "n_train_song": n_song,
                    "n_test": int(f.test.size), "n_test_song": int((y[f.test] == "song").sum()),
                    "seconds": round(sec, 2)})
        log(f"  [{k + 1}/{len(folds)}] {f.generator} / {f.cell}: trained on {f.train.size} "
            f"({n_song} songs), tested {f.test.size} ({out[-1]['n_test_song']} songs), "
            f"threshold {thr:.3f}, fit {sec:.1f} s (elapsed {time.perf_counter() - t0:.0f} s)")
    return out


# --- bands -------------------------------------------------------------------------------

def _floats(v) -> np.ndarray:
    out = np.full(len(v), np.nan)
    for i, s in enumerate(v):
        try:
            out[i] = float(s)
        except (TypeError, ValueError):
            pass
    return out


def _band_labels(edges) -> list[str]:
    last = len(edges) - 2
    return [f"[{a:g},{b:g}{']' if i == last else ')'}" for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]


def var_db_bands(var_db, *, edges=VAR_DB_EDGES) -> np.ndarray:
    """Vocal-to-accompaniment band of each item: ``"[-6,-3)"`` ... ``"[3,6]"``, or
    ``"a cappella"`` where ``var_db`` is empty (values beyond the ends join the end bands)."""
    v = _floats(var_db)
    labels = np.array(_band_labels(edges), dtype=object)
    k = np.clip(np.searchsorted(np.asarray(edges[1:-1]), v, side="right"), 0, len(labels) - 1)
    return np.where(np.isnan(v), ACAPPELLA, labels[k]).astype(object)


def density_cuts(density) -> tuple[float, float] | None:
    """Tertile cut-offs of the backing density over all items that have one (``None`` if
    none has)."""
    d = _floats(density)
    d = d[~np.isnan(d)]
    if not d.size:
        return None
    lo, hi = np.quantile(d, [1 / 3, 2 / 3])
    return float(lo), float(hi)


def density_band_names(cuts) -> list[str]:
    """Column names of the density bands, cut-offs included."""
    if cuts is None:
        return []
    lo, hi = cuts
    return [f"low (<{lo:.2f})", f"mid [{lo:.2f},{hi:.2f})", f"high (>={hi:.2f})"]


def density_bands(density, cuts) -> np.ndarray:
    """Density band of each item (``low``/``mid``/``high`` at the tertile ``cuts``, named
    with the cut-offs), or ``"no backing"`` where ``density`` is empty."""
    d = _floats(density)
    if cuts is None:
        return np.full(d.size, NO_BACKING, dtype=object)
    names = np.array(density_band_names(cuts), dtype=object)
    k = np.searchsorted(np.asarray(cuts), d, side="right").clip(0, 2)
    return np.where(np.isnan(d), NO_BACKING, names[k]).astype(object)


# --- metrics -----------------------------------------------------------------------------

def _rate(hit: np.ndarray) -> float | None:
    return float(hit.mean()) if hit.size else None


def _auc(is_song: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if is_song.all() or not is_song.any():
        return None
    return float(roc_auc_score(is_song.astype(int), p))


def _recall_by(bands: np.ndarray, hit: np.ndarray, order: list[str]) -> dict:
    present = set(bands.tolist())
    names = [b for b in order if b in present] + sorted(present - set(order))
    return {b: {"n": int((bands == b).sum()), "recall": _rate(hit[bands == b])} for b in names}


def generator_metrics(y, kinds, p_song, threshold, *, var_band, density_band, band_order=(),
                      density_order=()) -> dict:
    """Metrics of pooled test predictions (the songs of one generator, or of all, with the
    score clips of the same folds).

    Parameters
    ----------
    y, kinds : np.ndarray [shape=(m,)]
    p_song, threshold : np.ndarray [shape=(m,)]
        Out-of-fold P(song) and each item's fold threshold.
    var_band, density_band : np.ndarray [shape=(m,)]
        Band labels (see :func:`var_db_bands`, :func:`density_bands`).
    band_order, density_order : sequence of str
        Order of the band columns.

    Returns
    -------
    dict
        ``n_songs``, ``n_score``, ``recall``, ``roc_auc``, ``score_fpr``,
        ``recall_by_var_db``, ``recall_by_density``, ``score_fpr_by_kind`` (``n``, ``fpr``,
        ``roc_auc_vs_songs`` per kind).
    """
    y, kinds = np.asarray(y), np.asarray(kinds)
    p, thr = np.asarray(p_song, float), np.asarray(threshold, float)
    hit = p >= thr
    song = y == "song"
    out = {"n_songs": int(song.sum()), "n_score": int((~song).sum()),
           "recall": _rate(hit[song]), "roc_auc": _auc(song, p), "score_fpr": _rate(hit[~song]),
           "recall_by_var_db": _recall_by(np.asarray(var_band)[song], hit[song], list(band_order)),
           "recall_by_density": _recall_by(np.asarray(density_band)[song], hit[song], list(density_order))}
    per_kind = {}
    for k in sorted(set(kinds[~song].tolist()) | set(SCORE_KINDS)):
        m = ~song & (kinds == k)
        sel = song | m
        per_kind[k] = {"n": int(m.sum()), "fpr": _rate(hit[m]), "roc_auc_vs_songs": _auc(song[sel], p[sel])}
    out["score_fpr_by_kind"] = per_kind
    return out


def leave_one_generator_out(X, y, cells, generators, kinds, var_db, density, *,
                            fit: Callable | None = None, threshold: str | float = "train",
                            sample_weight=None, density_cut_offs: tuple[float, float] | None = None,
                            targets: dict | None = None, n_jobs: int = 1, train_generators=None,
                            log: Callable[[str], None] = print) -> dict:
    """The leave-one-generator-out evaluation on a feature matrix.

    Parameters
    ----------
    X : np.ndarray [shape=(n, d)]
        Feature vectors.
    y : np.ndarray of {"score", "song"} [shape=(n,)]
    cells : np.ndarray of str [shape=(n,)]
        Cross-validation cell of each item (voices and backings never cross cells).
    generators : np.ndarray of str [shape=(n,)]
        Vocal generator of each song (entries of score items are ignored).
    kinds : np.ndarray of str [shape=(n,)]
        Finer label (``score_rock``, ``song_acappella``...), for the false-positive table.
    var_db, density : array-like [shape=(n,)]
        Vocal-to-accompaniment ratio (dB) and backing vocal-band occupancy (0..1); empty
        strings, ``None`` or NaN where there is none.
    fit : callable, optional
        ``fit(X, y, groups, sample_weight) -> fitted classifier``; default
        :func:`fit_classifier` (the shipped model's estimator must be bound, e.g. with
        :func:`functools.partial`, when it is not ``hgb``).
    threshold : "train" or float
        See :func:`predict_folds`.
    sample_weight : np.ndarray, optional
    density_cut_offs : (float, float), optional
        Tertile cut-offs of ``density``; default computed from ``density`` (the whole corpus).
    targets : dict, optional
        Minimum ``recall`` and ``roc_auc`` per generator; default :data:`TARGETS`.
    n_jobs : int
        Fits at once.
    train_generators : collection of str, optional
        See :func:`generator_folds`.

    Returns
    -------
    dict
        ``generators`` (metrics per generator, :func:`generator_metrics` plus ``cells`` and
        ``pass``), ``pooled``, ``min_over_generators``, ``targets`` (with ``met``),
        ``density_cuts``, ``var_db_bands``, ``density_bands``, ``folds`` (per-fold sizes,
        thresholds, seconds) and ``predictions`` (arrays: ``index``, ``generator``, ``cell``,
        ``p_song``, ``threshold``; one row per test item per fold).
    """
    y, cells, kinds = np.asarray(y), np.asarray(cells).astype(str), np.asarray(kinds)
    targets = dict(TARGETS if targets is None else targets)
    gen = song_generators(y, generators)
    folds = generator_folds(y, cells, gen, train_generators=train_generators)
    if not folds:
        raise ValueError("no song to hold out")
    if (n_unspecified := int((gen == UNSPECIFIED).sum())):
        log(f"note: {n_unspecified} song(s) have no generator; evaluated together as {UNSPECIFIED!r}")
    n_gen = len({f.generator for f in folds})
    log(f"{len(folds)} fits: {n_gen} generator(s) x the cells holding their songs")
    res = predict_folds(X, y, cells, folds, fit=fit, threshold=threshold, sample_weight=sample_weight,
                        n_jobs=n_jobs, log=log)
    cuts = density_cuts(density) if density_cut_offs is None else tuple(density_cut_offs)
    vband, dband = var_db_bands(var_db), density_bands(density, cuts)
    v_order = _band_labels(VAR_DB_EDGES) + [ACAPPELLA]
    d_order = density_band_names(cuts) + [NO_BACKING]

    idx = np.concatenate([r["test"] for r in res])
    pred = {"index": idx,
            "generator": np.concatenate([[r["generator"]] * r["n_test"] for r in res]).astype(object),
            "cell": cells[idx],
            "p_song": np.concatenate([r["p_song"] for r in res]),
            "threshold": np.concatenate([np.full(r["n_test"], r["threshold"]) for r in res])}

    def metrics(m):
        i = idx[m]
        return generator_metrics(y[i], kinds[i], pred["p_song"][m], pred["threshold"][m],
                                 var_band=vband[i], density_band=dband[i],
                                 band_order=v_order, density_order=d_order)

    per_gen = {}
    for g in sorted(set(f.generator for f in folds)):
        d = metrics(pred["generator"] == g)
        d["cells"] = sorted({f.cell for f in folds if f.generator == g})
        d["pass"] = _meets(d, targets)
        per_gen[g] = d
    pooled = metrics(np.ones(idx.size, bool))
    low = {k: min((d[k] for d in per_gen.values() if d[k] is not None), default=None)
           for k in ("recall", "roc_auc")}
    low["recall_generator"] = _argmin(per_gen, "recall")
    low["roc_auc_generator"] = _argmin(per_gen, "roc_auc")
    return {
        "generators": per_gen, "pooled": pooled, "min_over_generators": low,
        "targets": {**targets, "met": all(d["pass"] for d in per_gen.values())},
        "threshold_rule": (
            "balanced_threshold of each fold's training labels (the shipped model's rule)"
            if threshold == "train" else f"fixed {float(threshold):.5f} (the shipped model's)"),
        "density_cuts": None if cuts is None else [round(c, 4) for c in cuts],
        "var_db_bands": v_order, "density_bands": d_order,
        "folds": [{k: v for k, v in r.items() if k not in ("test", "p_song")} for r in res],
        "predictions": pred,
    }


def _meets(d: dict, targets: dict) -> bool:
    return all(d.get(k) is not None and d[k] >= v for k, v in targets.items())


def _argmin(per_gen: dict, key: str) -> str | None:
    have = {g: d[key] for g, d in per_gen.items() if d[key] is not None}
    return min(have, key=have.get) if have else None


# --- output ------------------------------------------------------------------------------

def _f(v, digits=3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _cell(d: dict, key: str) -> str:
    return f"{_f(d[key])} ({d['n']})" if d.get("n") else "–"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |",
           "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def _rows(report: dict):
    yield from report["generators"].items()
    yield "**pooled**", report["pooled"]


def report_markdown(report: dict) -> str:
    """The report as Markdown tables, ready to paste into a model card."""
    t = report["targets"]
    low = report["min_over_generators"]
    lines = ["# Leave-one-generator-out evaluation", "", DESCRIPTION, ""]
    s = report.get("settings", {})
    if s:
        flag = (" with `--dialogue-over-score` (the no_music manifest's dialogue-over-score rows "
                "added as score)") if s.get("dialogue_over_score") else ""
        if s.get("leads"):
            flag += " with `--leads` (the instrument-lead partners added as score)"
        lines += [f"Corpus `{s.get('corpus')}`{flag}: {s.get('n_used')} items ({s.get('n_failed', 0)} failed "
                  f"extraction); estimator `{s.get('estimator')}`, calibration `{s.get('calibration')}`; "
                  f"threshold: {report['threshold_rule']}; {len(report['folds'])} fits; songs trained on: "
                  f"{s.get('train_generators', 'all')} (any other generator is only ever tested). Recall and "
                  "false-positive rates are at that threshold; ROC-AUC is of the generator's songs "
                  "against all score clips of its test cells, pooled over cells.", ""]
    lines += ["## Per generator", ""]
    rows = []
    for g, d in _rows(report):
        ok = "" if g.startswith("**") else ("yes" if d["pass"] else "**no**")
        rows.append([g, str(d["n_songs"]), ", ".join(d.get("cells", [])) or "all", _f(d["recall"]),
                     _f(d["roc_auc"], 4), _pct(d["score_fpr"]), ok])
    rows.append(["**min over generators**", "", "", f"{_f(low['recall'])} ({low['recall_generator']})",
                 f"{_f(low['roc_auc'], 4)} ({low['roc_auc_generator']})", "", ""])
    lines += _table(["generator", "songs", "test cells", "song recall", "ROC-AUC", "score FPR",
                     f"recall ≥ {t['recall']:.2f} and AUC ≥ {t['roc_auc']:.2f}"], rows)
    lines += ["", f"Targets (recall ≥ {t['recall']:.2f} and ROC-AUC ≥ {t['roc_auc']:.2f} for every "
              f"generator): **{'met' if t['met'] else 'not met'}**.", ""]

    def band_table(title, key, names, note):
        present = [b for b in names if any(b in d[key] for _, d in _rows(report))]
        lines.extend([f"## {title}", "", note, ""])
        lines.extend(_table(["generator"] + present,
                            [[g] + [_cell(d[key].get(b, {}), "recall") for b in present]
                             for g, d in _rows(report)]))
        lines.append("")

    band_table("Song recall by vocal-to-accompaniment ratio", "recall_by_var_db", report["var_db_bands"],
               "`var_db` in dB; recall (songs).")
    cuts = report["density_cuts"]
    band_table("Song recall by backing density", "recall_by_density", report["density_bands"],
               "Vocal-band occupancy of the backing, in tertiles over the whole corpus"
               + (f" (cut-offs {cuts[0]:.3f} and {cuts[1]:.3f})" if cuts
                  else " (no density in this manifest)")
               + "; recall (songs).")
    kinds = sorted({k for _, d in _rows(report) for k in d["score_fpr_by_kind"]})
    lines += ["## Score false positives per kind, in the same folds", "",
              "Share of score clips called song (clips); ROC-AUC of that kind alone against the "
              "generator's songs in brackets. A score clip counts once per generator with songs in "
              "its cell.", ""]
    lines += _table(["generator"] + kinds,
                    [[g] + [f"{_pct(d['score_fpr_by_kind'][k]['fpr'])} ({d['score_fpr_by_kind'][k]['n']}; "
                            f"AUC {_f(d['score_fpr_by_kind'][k]['roc_auc_vs_songs'], 3)})"
                            if d["score_fpr_by_kind"].get(k, {}).get("n") else "–" for k in kinds]
                     for g, d in _rows(report)])
    lines += ["", "## Folds", ""]
    lines += _table(["generator", "test cell", "train items", "train songs", "test items", "test songs",
                     "threshold", "fit s"],
                    [[f["generator"], f["cell"], str(f["n_train"]), str(f["n_train_song"]), str(f["n_test"]),
                      str(f["n_test_song"]), f"{f['threshold']:.4f}", f"{f['seconds']:.1f}"]
                     for f in report["folds"]])
    if s.get("seconds"):
        c = s.get("features", {})
        lines += ["", f"Features: {c.get('extracted', 0)} extracted, {c.get('cached', 0)} from the cache "
                  f"({s.get('feature_seconds')} s); fits {s.get('fit_seconds')} s; "
                  f"total {s.get('seconds')} s with {s.get('n_jobs')} job(s)."]
    return "\n".join(lines) + "\n"


def summary_table(report: dict) -> str:
    """A compact plain-text table for the terminal."""
    head = f"{'generator':<22}{'songs':>6}{'recall':>8}{'AUC':>8}{'scoreFPR':>9}  pass"
    out = [head, "-" * len(head)]
    for g, d in _rows(report):
        name = g.strip("*")
        ok = "" if g.startswith("**") else ("yes" if d["pass"] else "NO")
        out.append(f"{name:<22}{d['n_songs']:>6}{_f(d['recall']):>8}{_f(d['roc_auc'], 4):>8}"
                   f"{_pct(d['score_fpr']):>9}  {ok}")
    low, t = report["min_over_generators"], report["targets"]
    out.append(f"{'min over generators':<22}{'':>6}{_f(low['recall']):>8}{_f(low['roc_auc'], 4):>8}")
    out.append(f"targets recall>={t['recall']:.2f}, AUC>={t['roc_auc']:.2f} for every generator: "
               f"{'met' if t['met'] else 'NOT met'}")
    return "\n".join(out)


def _jsonable(o):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(type(o))


def write_outputs(report: dict, stem, prediction_rows: list[dict]) -> dict[str, Path]:
    """Write ``STEM.md``, ``STEM.json`` (the report without the prediction arrays) and
    ``STEM.predictions.csv``; returns the paths by kind."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = {k: stem.with_name(stem.name + ext) for k, ext in
             (("md", ".md"), ("json", ".json"), ("csv", ".predictions.csv"))}
    body = {k: v for k, v in report.items() if k != "predictions"}
    paths["json"].write_text(json.dumps(body, indent=1, default=_jsonable))
    paths["md"].write_text(report_markdown(report))
    with open(paths["csv"], "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "start_s", "generator", "cell", "label", "kind",
                                           "p_song", "threshold", "var_db", "density"])
        w.writeheader()
        w.writerows(prediction_rows)
    return paths


# --- corpus ------------------------------------------------------------------------------

def _manifest(path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.csv"
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no manifest (give the corpus folder or its manifest.csv)")
    return p


def _shipped_meta(model) -> dict:
    """The shipped model's JSON: ``model`` (must be readable) or the packaged one (``{}``
    when it is missing: defaults apply)."""
    from scoresong.model import default_model_path

    if model:
        return json.loads(Path(model).read_text())
    p = default_model_path()
    return json.loads(p.read_text()) if p.is_file() else {}


def _extra_score_items(manifest: Path, kind: str, what: str, builder: str) -> list:
    """The ``kind`` rows of ``manifest`` (a manifest beside the corpus's, made by ``builder``)
    as items; refuses a missing manifest or one without such rows."""
    from scoresong.dataset import read_corpus

    if not manifest.is_file():
        raise FileNotFoundError(f"{manifest}: no {what} manifest (build it with python -m {builder})")
    extra = [i for i in read_corpus(manifest, groups="group").items if i.kind == kind]
    if not extra:
        raise ValueError(f"{manifest}: no {kind} rows")
    return extra


def evaluate_corpus(corpus, *, out=None, cache_dir=None, n_jobs: int = 2, threshold_from: str = "train",
                    model=None, estimator: str | None = None, random_state: int = 0,
                    train_generators=None, dialogue_over_score: bool = False, leads: bool = False,
                    log: Callable[[str], None] = print) -> dict:
    """Run the evaluation on a corpus manifest and write the report.

    Parameters
    ----------
    corpus : path
        The corpus folder (holding ``manifest.csv``) or the manifest; it needs a
        ``generator`` column (``var_db`` and ``density`` are optional).
    out : path, optional
        Report stem: writes ``OUT.md``, ``OUT.json``, ``OUT.predictions.csv``.
    cache_dir : path, optional
        Feature cache (see :func:`scoresong.cache.extract_items`).
    n_jobs : int
        Processes for feature extraction and fits at once.
    threshold_from : {"train", "model"}
        The shipped model's rule on each fold's training labels, or its stored threshold.
    model : path, optional
        The shipped model's JSON (estimator, threshold); default the packaged model.
    estimator : str, optional
        Override the model's estimator.
    train_generators : collection of str, optional
        Generators the shipped model trains on (the others are only tested); default all.
    dialogue_over_score : bool
        Add the ``score_under_speech`` clips of ``manifest.nomusic.csv`` (beside the
        manifest) as score, as the three-class model's song part trains on them
        (``python -m corpus.nomusic`` builds them); the no_music clips stay out.
    leads : bool
        Add the instrument-lead partners of ``manifest.leads.csv`` (beside the manifest;
        ``python -m corpus.leads``) as score, for a model trained with them.

    Returns
    -------
    dict
        The report (see :func:`leave_one_generator_out`) with ``settings``.
    """
    from functools import partial

    from scoresong.cache import extract_items
    from scoresong.dataset import read_corpus

    t0 = time.perf_counter()
    path = _manifest(corpus)
    corp = read_corpus(path, groups="group")
    items = corp.items
    if dialogue_over_score:
        items = items + _extra_score_items(path.parent / "manifest.nomusic.csv", "score_under_speech",
                                           "no_music", "corpus.nomusic")
    if leads:
        items = items + _extra_score_items(path.parent / "manifest.leads.csv", "score_lead",
                                           "lead", "corpus.leads")
    if not items or "generator" not in items[0].extra:
        raise ValueError(f"{path}: no 'generator' column; rebuild the corpus with a corpus/build.py "
                         "that writes it")
    meta = _shipped_meta(model)
    est = estimator or meta.get("estimator", "hgb")
    calibration = meta.get("calibration", "sigmoid")
    if threshold_from == "model":
        if "threshold" not in meta:
            raise ValueError("--threshold-from model: the model's JSON has no threshold")
        threshold = float(meta["threshold"])
    elif threshold_from == "train":
        threshold = "train"
    else:
        raise ValueError(f"threshold_from must be 'train' or 'model', got {threshold_from!r}")
    log(f"{len(items)} items from {path}; extracting features (cache {cache_dir or 'off'})")
    ext = extract_items(items, n_jobs=n_jobs, cache_dir=cache_dir, progress=sys.stderr.isatty())
    log(f"features: {ext.counts['extracted']} extracted, {ext.counts['cached']} cached, "
        f"{ext.counts['failed']} failed ({ext.counts['seconds']} s)")
    for e in ext.errors[:5]:
        log(f"  failed: {e}")
    used = [items[i] for i in ext.ok]
    col = lambda key: np.array([i.extra.get(key, "") for i in used], dtype=object)  # noqa: E731
    y = np.array([i.label for i in used])
    w = np.array([i.weight for i in used])
    t_fit = time.perf_counter()
    # Density tertiles over the whole manifest, failed items included.
    cuts = density_cuts([i.extra.get("density", "") for i in items])
    report = leave_one_generator_out(
        ext.X, y, np.array([i.group for i in used]), col("generator"), np.array([i.kind for i in used]),
        col("var_db"), col("density"),
        fit=partial(fit_classifier, estimator=est, calibration=calibration, random_state=random_state),
        threshold=threshold, sample_weight=None if np.all(w == 1) else w, density_cut_offs=cuts,
        n_jobs=n_jobs, train_generators=train_generators, log=log)
    report["settings"] = {"corpus": str(path), "n_items": len(items), "n_used": len(used),
                          "dialogue_over_score": dialogue_over_score, "leads": leads,
                          "train_generators": sorted(train_generators) if train_generators else "all",
                          "n_failed": len(ext.errors), "failed": ext.errors, "estimator": est,
                          "calibration": calibration, "threshold_from": threshold_from,
                          "model": str(model) if model else "packaged", "random_state": random_state,
                          "n_jobs": n_jobs,
                          "features": {k: v for k, v in ext.counts.items() if k != "seconds"},
                          "feature_seconds": ext.counts["seconds"],
                          "fit_seconds": round(time.perf_counter() - t_fit, 1),
                          "seconds": round(time.perf_counter() - t0, 1), "description": DESCRIPTION}
    if out is not None:
        pred = report["predictions"]
        rows = [{"path": used[i].path, "start_s": used[i].start_s, "generator": g, "cell": c,
                 "label": used[i].label, "kind": used[i].kind, "p_song": round(float(p), 5),
                 "threshold": round(float(t), 5), "var_db": used[i].extra.get("var_db", ""),
                 "density": used[i].extra.get("density", "")}
                for i, g, c, p, t in zip(pred["index"], pred["generator"], pred["cell"],
                                         pred["p_song"], pred["threshold"])]
        paths = write_outputs(report, out, rows)
        log("written " + ", ".join(str(p) for p in paths.values()))
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.generator_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path, help="corpus folder (with manifest.csv) or the manifest")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache folder")
    ap.add_argument("--jobs", type=int, default=2, help="processes for extraction and fits (default 2)")
    ap.add_argument("-o", "--out", type=Path, default=Path("models/generators.report"),
                    help="report stem (default models/generators.report)")
    ap.add_argument("--threshold-from", choices=("train", "model"), default="train",
                    help="train: the shipped rule (song prior of each fold's training labels); "
                         "model: the shipped model's stored threshold")
    ap.add_argument("--model", type=Path, default=None, help="shipped model JSON (estimator, threshold)")
    ap.add_argument("--estimator", choices=("hgb", "logreg"), default=None,
                    help="override the model's estimator")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dialogue-over-score", action="store_true",
                    help="also train and test on the score_under_speech clips of manifest.nomusic.csv "
                         "(as score), as the shipped three-class model's song part does")
    ap.add_argument("--leads", action="store_true",
                    help="also train and test on the instrument leads of manifest.leads.csv (as score)")
    ap.add_argument("--train-generators", default=None,
                    help="comma-separated generators whose songs may be trained on (as the shipped "
                         "model); the others are only tested. Default: all")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", file=sys.stderr, flush=True)

    report = evaluate_corpus(a.corpus, out=a.out, cache_dir=a.cache, n_jobs=a.jobs,
                             threshold_from=a.threshold_from, model=a.model, estimator=a.estimator,
                             random_state=a.seed, log=log, dialogue_over_score=a.dialogue_over_score,
                             leads=a.leads,
                             train_generators=a.train_generators.split(",") if a.train_generators else None)
    print(summary_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
