"""Evaluation reports: metrics of song probabilities against labels, written as JSON,
Markdown, a CSV of every prediction and a PNG (calibration curve, confusion matrix,
accuracy per kind)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

__all__ = ["evaluate_predictions", "evaluate_three_class", "calibration_curve", "write_report", "report_markdown",
           "plot_report"]


def calibration_curve(y_song: np.ndarray, p_song: np.ndarray, *, n_bins: int = 10) -> list[dict]:
    """Reliability table: per equal-width probability bin, the mean predicted P(song) and
    the observed share of songs (bins without items are left out)."""
    y_song = np.asarray(y_song, dtype=float)
    p_song = np.asarray(p_song, dtype=float)
    bins = np.minimum((p_song * n_bins).astype(int), n_bins - 1)
    return [{"lo": b / n_bins, "hi": (b + 1) / n_bins, "n": int((bins == b).sum()),
             "mean_p_song": float(p_song[bins == b].mean()), "share_song": float(y_song[bins == b].mean())}
            for b in range(n_bins) if (bins == b).any()]


def evaluate_predictions(y: np.ndarray, p_song: np.ndarray, *, threshold: float = 0.5,
                         kinds=None, sources=None, paths=None) -> dict:
    """Metrics of song probabilities against labels, overall, per kind and per source.

    Parameters
    ----------
    y : array of {"score", "song"}
    p_song : np.ndarray
        Calibrated P(song) per item.
    threshold : float or np.ndarray
        Song when ``p_song >= threshold``; an array gives each item its own (per fold).
    kinds, sources : sequence of str, optional
        Break accuracy down by these keys.
    paths : sequence of str, optional
        Names for the list of the most confidently wrong items.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``f1_song``, ``roc_auc``, ``brier``, ``ece``,
        ``confusion_matrix``, ``calibration_curve`` and the breakdowns.
    """
    from sklearn.metrics import (accuracy_score, balanced_accuracy_score, brier_score_loss,
                                 confusion_matrix, f1_score, roc_auc_score)

    y = np.asarray(y)
    p_song = np.asarray(p_song, dtype=float)
    yt = (y == "song").astype(int)
    thr = np.asarray(threshold, dtype=float)
    yp = (p_song >= thr).astype(int)
    both = len(set(yt)) > 1
    out = {
        "n": int(y.size),
        "threshold": float(thr) if thr.ndim == 0 else f"per fold: {sorted(set(np.round(thr, 4).tolist()))}",
        "accuracy": float(accuracy_score(yt, yp)) if y.size else None,
        "balanced_accuracy": float(balanced_accuracy_score(yt, yp)) if both else None,
        "f1_song": float(f1_score(yt, yp, zero_division=0)),
        "roc_auc": float(roc_auc_score(yt, p_song)) if both else None,
        "brier": float(brier_score_loss(yt, p_song, labels=[0, 1])) if y.size else None,
        "confusion_matrix": {"labels": ["score", "song"],
                             "rows_true_cols_pred": confusion_matrix(yt, yp, labels=[0, 1]).tolist()},
    }
    curve = calibration_curve(yt, p_song)
    out["ece"] = float(sum(abs(c["share_song"] - c["mean_p_song"]) * c["n"] for c in curve) / max(y.size, 1))
    out["calibration_curve"] = curve
    song_recall = float(yp[yt == 1].mean()) if (yt == 1).any() else None

    def breakdown(keys):
        keys = np.asarray(keys)
        res = {}
        for k in sorted(set(keys.tolist())):
            m = keys == k
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
        worst = np.argsort(-err, kind="stable")[:15]
        out["most_confidently_wrong"] = [
            {"path": str(paths[i]), "label": str(y[i]), "p_song": round(float(p_song[i]), 4),
             "kind": str(kinds[i]) if kinds is not None else ""}
            for i in worst if yp[i] != yt[i]]
    return out


THREE = ("no_music", "score", "song")


def evaluate_three_class(y: np.ndarray, p_no_music: np.ndarray, p_song_music: np.ndarray, *,
                         threshold=0.5, presence_threshold=0.5, song_prior=None, kinds=None,
                         sources=None) -> dict:
    """Metrics of a three-class (``no_music`` / ``score`` / ``song``) decision.

    The labels are the rule of a three-class :class:`~scoresong.model.Model`
    (:func:`scoresong.model.three_class_labels`): the label whose probability is largest
    against its prior, the thresholds being the priors.

    Parameters
    ----------
    y : array of {"no_music", "score", "song"}
    p_no_music, p_song_music : np.ndarray
        Calibrated P(no_music) and P(song | music) per item.
    threshold, presence_threshold : float or np.ndarray
        Scalars, or one per item (per fold).
    song_prior : float or np.ndarray, optional
        The model's own song threshold when ``threshold`` overrides it (as
        :meth:`scoresong.model.Model.labels` does); default ``threshold``.
    kinds, sources : sequence of str, optional
        Break the three-class accuracy and the music-or-not accuracy down by these keys.

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy`` (mean recall over the labels present),
        ``recall`` per label, the 3×3 ``confusion_matrix``, and ``presence``: music-or-not
        ``accuracy``, ``music_recall``, ``no_music_recall``, ``roc_auc`` of P(no_music).
    """
    from sklearn.metrics import confusion_matrix, roc_auc_score

    from .model import three_class_labels

    y = np.asarray(y).astype(str)
    q = np.asarray(p_no_music, dtype=float)
    s = np.asarray(p_song_music, dtype=float)
    pred = three_class_labels(q, s, threshold=threshold, presence_threshold=presence_threshold,
                              song_prior=song_prior).astype(str)
    present = [k for k in THREE if (y == k).any()]
    recall = {k: float((pred[y == k] == k).mean()) for k in present}
    ym, pm = y != "no_music", pred != "no_music"
    presence = {"accuracy": float((ym == pm).mean()) if y.size else None,
                "music_recall": float(pm[ym].mean()) if ym.any() else None,
                "no_music_recall": float((~pm[~ym]).mean()) if (~ym).any() else None,
                "roc_auc": float(roc_auc_score(~ym, q)) if ym.any() and (~ym).any() else None}
    out = {"n": int(y.size), "accuracy": float((pred == y).mean()) if y.size else None,
           "balanced_accuracy": float(np.mean(list(recall.values()))) if recall else None,
           "recall": recall, "presence": presence,
           "confusion_matrix": {"labels": list(THREE), "rows_true_cols_pred":
                                confusion_matrix(y, pred, labels=list(THREE)).tolist()}}

    def breakdown(keys):
        keys = np.asarray(keys)
        return {k: {"n": int((keys == k).sum()), "accuracy": float((pred[keys == k] == y[keys == k]).mean()),
                    "music_or_not_accuracy": float((pm[keys == k] == ym[keys == k]).mean()),
                    "mean_p_no_music": float(q[keys == k].mean())}
                for k in sorted(set(keys.tolist()))}

    if kinds is not None:
        out["per_kind"] = breakdown(kinds)
    if sources is not None:
        out["per_source"] = breakdown(sources)
    out["predicted"] = pred.tolist()
    return out


def write_report(report: dict, stem, *, plot: bool = True) -> dict[str, Path]:
    """Write ``STEM.json``, ``STEM.md``, ``STEM.predictions.csv`` and ``STEM.png``.

    ``STEM`` is kept whole, dots included. The PNG needs matplotlib; without it the
    Markdown says so and the rest is written.

    Returns
    -------
    dict
        The paths written, by kind (``json``, ``md``, ``csv``, ``png``).
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    name = stem.name
    paths = {"json": stem.with_name(name + ".json"), "md": stem.with_name(name + ".md")}
    report = dict(report)
    preds = report.pop("predictions", None)
    if preds:
        paths["csv"] = stem.with_name(name + ".predictions.csv")
        with open(paths["csv"], "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(preds[0]))
            w.writeheader()
            w.writerows(preds)
    if plot and report.get("cv"):
        png = stem.with_name(name + ".png")
        try:
            plot_report(report, png)
            paths["png"] = png
        except ImportError:
            report["plot"] = "not drawn: matplotlib is not installed (pip install 'scoresong[plot]')"
    if "png" in paths:
        report["plot"] = paths["png"].name
    paths["json"].write_text(json.dumps(report, indent=2, default=str))
    paths["md"].write_text(report_markdown(report))
    return paths


def plot_report(report: dict, png) -> Path:
    """Draw the calibration curve, the confusion matrix and the accuracy per kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cv = report["cv"]
    fig, ax = plt.subplots(1, 3, figsize=(14, 4.2), gridspec_kw={"width_ratios": [1, 0.8, 1.3]})
    curve = cv.get("calibration_curve", [])
    ax[0].plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
    if curve:
        ax[0].plot([c["mean_p_song"] for c in curve], [c["share_song"] for c in curve], "o-",
                   label=f"model (ECE {cv['ece']:.3f})")
        for c in curve:
            ax[0].annotate(str(c["n"]), (c["mean_p_song"], c["share_song"]), fontsize=7,
                           textcoords="offset points", xytext=(3, -9))
    ax[0].set(xlabel="predicted P(song | music)", ylabel="observed share of songs", xlim=(0, 1), ylim=(0, 1),
              title="Calibration (items per bin)")
    ax[0].legend(loc="upper left", fontsize=8)
    cm = np.asarray(cv["confusion_matrix"]["rows_true_cols_pred"])
    ax[1].imshow(cm / np.maximum(cm.sum(1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(2):
        for j in range(2):
            ax[1].text(j, i, f"{cm[i, j]:,}", ha="center", va="center",
                       color="white" if cm[i, j] > cm[i].sum() / 2 else "black")
    ax[1].set(xticks=[0, 1], yticks=[0, 1], xticklabels=["score", "song"], yticklabels=["score", "song"],
              xlabel="predicted", ylabel="true",
              title=f"Confusion at threshold {_thr_text(cv['threshold'])}")
    kinds = cv.get("per_kind", {})
    if kinds:
        names = list(kinds)
        acc = [kinds[k]["accuracy"] for k in names]
        ax[2].barh(range(len(names)), acc, color=["C1" if k.startswith("song") else "C0" for k in names])
        for i, k in enumerate(names):
            ax[2].text(min(acc[i], 0.98), i, f" {acc[i]:.3f} (n={kinds[k]['n']})", va="center",
                       ha="right" if acc[i] > 0.5 else "left", fontsize=8, color="white" if acc[i] > 0.5 else "black")
        ax[2].set_yticks(range(len(names)), names, fontsize=8)
        ax[2].invert_yaxis()
    ax[2].set(xlim=(0, 1), xlabel="accuracy", title="Accuracy per kind")
    ba = cv.get("balanced_accuracy")
    fig.suptitle(f"{report.get('title', 'Evaluation')}: n={cv['n']:,}, balanced accuracy "
                 f"{'–' if ba is None else f'{ba:.3f}'}, F1(song) {cv['f1_song']:.3f}", fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return Path(png)


def _thr_text(t) -> str:
    return f"{t:.3f}" if isinstance(t, float) else "per fold"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def report_markdown(report: dict) -> str:
    """The report as Markdown (what ``STEM.md`` holds)."""
    lines = _md_corpus(report)
    cv = report.get("cv")
    if cv:
        lines += _md_metrics(report, cv)
        lines += _md_plot(report.get("plot"))
        lines += _md_threshold(report.get("cv_at_0.5"))
        lines += _md_calibration(cv.get("calibration_curve"))
        lines += _md_breakdowns(cv)
        lines += _md_folds(cv.get("folds"))
        lines += _md_most_wrong(cv.get("most_confidently_wrong"))
    if report.get("cv3"):
        lines += _md_three_class(report["cv3"])
    if report.get("left_out"):
        lo = dict(report["left_out"])
        why = lo.pop("why", "")
        lines += ["Left out of the metrics: " + ", ".join(f"`{k}` × {v}" for k, v in lo.items())
                  + (f" ({why})." if why else "."), ""]
    lines += _md_failed(report.get("failed"))
    return "\n".join(lines)


def _md_corpus(report: dict) -> list[str]:
    """Title, corpus, items used, labels left out, the feature cache."""
    title = report.get("title", "Evaluation report")
    lines = [f"# {title}", "", f"Corpus: `{report['corpus']}`; {report['n_used']} of "
             f"{report['n_items']} items used ({len(report.get('failed', []))} failed to decode).", ""]
    if report.get("ignored_labels"):
        lines += ["Left out (labels other than score/song/no_music, not mapped with `label_map`): " +
                  ", ".join(f"`{k}` × {v}" for k, v in report["ignored_labels"].items()), ""]
    cache = report.get("features")
    if cache:
        lines += [f"Features: {cache.get('extracted', 0)} extracted now, {cache.get('cached', 0)} "
                  f"served from the cache, {cache.get('failed', 0)} failed "
                  f"({cache.get('hashed', 0)} files hashed; {cache.get('seconds', '?')} s).", ""]
    return lines


def _md_metrics(report: dict, cv: dict) -> list[str]:
    """The metric table and the confusion matrix."""
    cm = cv["confusion_matrix"]["rows_true_cols_pred"]
    nested = bool(cv.get("folds"))
    lines = ["## Nested grouped cross-validation" if nested else "## Metrics", ""]
    if nested:
        lines += [f"Threshold on calibrated P(song | music): {cv['threshold']} (each outer fold's training "
                  "song prior, the balanced-error rule; the model written uses the prior of all "
                  "training data).", ""]
    else:
        own = cv.get("model_threshold")
        whose = ("the model's" if own is None or own == cv["threshold"]
                 else f"overridden; the model's is {own}")
        lines += [f"Threshold on calibrated P(song | music): {cv['threshold']} ({whose}).", ""]
    return lines + [
        "| metric | value |", "|---|---|",
        f"| items | {cv['n']} |",
        f"| accuracy | {_pct(cv['accuracy'])} |",
        f"| balanced accuracy | {_pct(cv['balanced_accuracy'])} |",
        f"| F1 (song) | {cv['f1_song']:.3f} |",
        f"| ROC-AUC | {cv['roc_auc']:.3f} |" if cv["roc_auc"] is not None else "| ROC-AUC | – |",
        f"| Brier score | {cv['brier']:.3f} |" if cv["brier"] is not None else "| Brier | – |",
        f"| expected calibration error | {cv['ece']:.3f} |", "",
        "Confusion matrix (rows true, columns predicted):", "",
        "| | score | song |", "|---|---|---|",
        f"| **score** | {cm[0][0]} | {cm[0][1]} |", f"| **song** | {cm[1][0]} | {cm[1][1]} |", ""]


def _md_plot(plot) -> list[str]:
    if (plot or "").endswith(".png"):
        return [f"![calibration, confusion, accuracy per kind]({plot})", ""]
    return [f"Plot {plot}.", ""] if plot else []


def _md_threshold(half: dict | None) -> list[str]:
    """How to move the operating threshold, and the figures at 0.5 (training reports)."""
    lines = ["### Operating threshold", "",
             "A music file is called a song when its calibrated P(song | music) (for a two-class "
             "model, P(song)) reaches the model's threshold "
             "(stored as `threshold` in the model's `.json`). Lower it to catch more songs, "
             "raise it for fewer false alarms: `scoresong.predict(path, threshold=0.5)` or "
             "`scoresong predict --threshold 0.5 ...`, or edit the value in the `.json` (the "
             "integrity hashes cover the `.skops` and `.npz` files, not the `.json`).", ""]
    if half:
        c5 = half["confusion_matrix"]["rows_true_cols_pred"]
        lines += ["At threshold 0.5 instead (accuracy-optimal for the training prior): accuracy "
                  f"{_pct(half['accuracy'])}, balanced accuracy {_pct(half['balanced_accuracy'])}, "
                  f"F1 {half['f1_song']:.3f}; confusion {c5}.", ""]
    return lines


def _md_calibration(curve: list[dict] | None) -> list[str]:
    if not curve:
        return []
    return (["### Calibration", "", "| P(song \\| music) bin | items | mean predicted | observed share of songs |",
             "|---|---:|---:|---:|"]
            + [f"| {c['lo']:.1f}–{c['hi']:.1f} | {c['n']} | {c['mean_p_song']:.3f} | "
               f"{c['share_song']:.3f} |" for c in curve]
            + [""])


def _md_breakdowns(cv: dict) -> list[str]:
    """Accuracy per kind, per source and per group, where the report has them."""
    lines = []
    for title, key in (("Per kind", "per_kind"), ("Per source", "per_source"),
                       ("Per group (held out together)", "per_group")):
        if key not in cv:
            continue
        lines += [f"### {title}", "", "| | n | accuracy | balanced acc. vs all songs | mean P(song \\| music) |",
                  "|---|---|---|---|---|"]
        for k, d in cv[key].items():
            lines.append(f"| {k} | {d['n']} | {_pct(d['accuracy'])} | "
                         f"{_pct(d.get('balanced_accuracy_vs_songs'))} | {d['mean_p_song']:.3f} |")
        lines.append("")
    return lines


def _md_folds(folds: list[dict] | None) -> list[str]:
    """The outer folds of a nested cross-validation: what each held out and chose."""
    if not folds:
        return []
    lines = ["### Folds", ""]
    for f in folds:
        lines.append(f"- fold {f['fold']}: held out {', '.join(f['test_groups'][:12])}"
                     f"{' …' if len(f['test_groups']) > 12 else ''}; "
                     f"inner choice {f['chosen']} ({f['inner_balanced_accuracy']})")
    return lines + [""]


def _md_most_wrong(wrong: list[dict] | None) -> list[str]:
    lines = ["### Most confidently wrong", ""]
    for w in (wrong or [])[:10]:
        lines.append(f"- `{w['path']}` ({w['kind']}, true {w['label']}): P(song | music) = {w['p_song']}")
    if not wrong:
        lines.append("- none")
    return lines + [""]


def _md_three_class(c3: dict) -> list[str]:
    """Music or not, and the three-class decision (reports of three-class models)."""
    pr = c3["presence"]
    cm = c3["confusion_matrix"]["rows_true_cols_pred"]
    prior = c3.get("song_prior", c3.get("threshold"))
    overridden = c3.get("song_prior") not in (None, c3.get("threshold"))
    lines = ["## Three classes: music or not, then score or song", "",
             "The label whose probability is largest against its prior (the Bayes rule for balanced "
             f"error): P(no_music) over the presence threshold ({_thr_text(c3.get('presence_threshold'))}) "
             "against P(score) and P(song) over the music prior times the score or song prior "
             f"(the model's song prior, {_thr_text(prior)}, among music); between score and "
             f"song that is `song` when P(song | music) reaches the song threshold ({_thr_text(c3.get('threshold'))}). "
             + ("" if not overridden else
                f"The song threshold is overridden here ({_thr_text(c3.get('threshold'))}): it moves score "
                f"against song only; whether an item is no_music is still decided with the model's own "
                f"song prior ({_thr_text(prior)}) weighing how clear the music verdict is, as `predict` does. ")
             + "The score/song figures above are the song part alone, on the music items.", "",
             "| metric | value |", "|---|---|",
             f"| items | {c3['n']} |",
             f"| three-class accuracy | {_pct(c3['accuracy'])} |",
             f"| three-class balanced accuracy | {_pct(c3['balanced_accuracy'])} |"]
    lines += [f"| recall {k} | {_pct(v)} |" for k, v in c3["recall"].items()]
    lines += [f"| music or not: accuracy | {_pct(pr['accuracy'])} |",
              f"| music recall (score or song not called no_music) | {_pct(pr['music_recall'])} |",
              f"| no_music recall | {_pct(pr['no_music_recall'])} |",
              "| ROC-AUC of P(no_music) | " + ("–" if pr["roc_auc"] is None else f"{pr['roc_auc']:.3f}") + " |",
              "", "Confusion matrix (rows true, columns predicted):", "",
              "| | no_music | score | song |", "|---|---|---|---|"]
    lines += [f"| **{lab}** | " + " | ".join(str(v) for v in row) + " |"
              for lab, row in zip(c3["confusion_matrix"]["labels"], cm) if sum(row)]
    lines.append("")
    for title, key in (("Per kind", "per_kind"), ("Per source", "per_source")):
        if key not in c3:
            continue
        lines += [f"### {title} (three classes)", "",
                  "| | n | accuracy | music-or-not accuracy | mean P(no_music) |", "|---|---|---|---|---|"]
        lines += [f"| {k} | {d['n']} | {_pct(d['accuracy'])} | {_pct(d['music_or_not_accuracy'])} | "
                  f"{d['mean_p_no_music']:.3f} |" for k, d in c3[key].items()]
        lines.append("")
    return lines


def _md_failed(failed: list | None) -> list[str]:
    if not failed:
        return []
    lines = ["## Files that failed", ""] + [f"- {e}" for e in failed[:50]]
    if len(failed) > 50:
        lines.append(f"- … and {len(failed) - 50} more (all in the `.json`)")
    return lines + [""]
