"""Which columns carry a model's real-song figures? Column-group permutation on a test set.

    python -m corpus.diagnose_views SET --model MODEL.json [-o STEM] [--repeats 5]

For a model trained with a second view of the centre (``features.CENTRE_VIEWS``; run with the
same switch the model was trained with, e.g. in a worktree that sets it), each group of
columns below is shuffled across the set's excerpts (rows permuted, the group's columns
together, ``--repeats`` times), and the set's figures are measured again: ROC-AUC of
P(song | music), songs found and score called song (three-class labels at the model's
thresholds). A group whose shuffling costs much is one the model's figures on that set ride
on. Groups: the second view's fluctogram and vocal-variance statistics, its pitch-based
statistics, the whole second view, the mix's vocal family; and, with no shuffling, the second
view replaced by the mix's values of the same statistics ("as if the centre were the mix").

This measures on the test set itself, so it may explain a result, never choose a feature
set to ship: a subset picked by it would be tuned on that set (models/schema8.ab.md).

Writes ``STEM.md`` and ``STEM.json``.

Corpus evidence instead (what may choose a feature set)::

    python -m corpus.diagnose_views --cv MANIFEST --cache CACHE [-o STEM]

leaves each group (cell) of a training manifest out in turn, fits the recipe's song-part
estimator (``hgb``, unweighted, uncalibrated; music items only) on the others, and shuffles
the same column groups among the held-out fold's *stereo* items (the only ones whose second
view differs from the mix's): ROC-AUC and song recall at 0.5 (the balanced estimator's
threshold) on those items, as is and shuffled, means over folds.

And what the two views measure on each side::

    python -m corpus.diagnose_views --cv MANIFEST --cache CACHE --stats SET [-o STEM]

adds the medians of a few statistics of the mix view and of the second view for the corpus's
stereo songs, stereo score and stereo dialogue over score, and for SET's stereo songs (per
source package) and stereo score: where the corpus's songs and the real ones part.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

GROUPS = (
    ("second view: fluctogram and vocal variance", lambda n: _second(n) and _fluct(n)),
    ("second view: pitch-based statistics", lambda n: _second(n) and not _fluct(n)),
    ("second view: all", lambda n: _second(n)),
    ("mix: vocal family", lambda n: n.startswith("vocal.")),
)


def _second(name: str) -> bool:
    return name.split(".", 1)[0].endswith("_centre")


def _fluct(name: str) -> bool:
    stat = name.split(".", 1)[1]
    return stat.startswith("fluct_") or stat.startswith("vocal_variance")


def figures(model, X: np.ndarray, y: np.ndarray) -> dict:
    """ROC-AUC of P(song | music), songs found, score called song (labels at the model's thresholds)."""
    from sklearn.metrics import roc_auc_score

    q, s = model.parts(X)
    song = np.asarray(model.labels(q, s)) == "song"
    return {"roc_auc": float(roc_auc_score(y, s)), "songs_found": int(song[y].sum()),
            "score_called_song": int(song[~y].sum())}


def permuted(model, X, y, names, *, repeats: int = 5, seed: int = 0) -> dict:
    """Figures with each column group shuffled (mean over ``repeats``), and with the second
    view replaced by the mix's values."""
    rng = np.random.default_rng(seed)
    out = {"as is": figures(model, X, y)}
    for label, pick in GROUPS:
        cols = [k for k, n in enumerate(names) if pick(n)]
        if not cols:
            continue
        runs = []
        for _ in range(repeats):
            Xp = X.copy()
            Xp[:, cols] = X[rng.permutation(len(X))][:, cols]
            runs.append(figures(model, Xp, y))
        out[f"{label} shuffled ({len(cols)} columns)"] = {
            k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
    Xm = X.copy()
    swapped = 0
    for k, n in enumerate(names):
        if _second(n):
            fam, stat = n.split(".", 1)
            mix = "vocal." + stat
            if mix in names:
                Xm[:, k] = X[:, names.index(mix)]
                swapped += 1
    if swapped:
        out[f"second view := the mix's values ({swapped} columns)"] = figures(model, Xm, y)
    return out


def cv_permuted(X, y, groups, stereo, names, *, repeats: int = 3, seed: int = 0) -> dict:
    """Leave-one-group-out fits, and the column groups shuffled among each test fold's stereo
    items: ROC-AUC and song recall (P >= 0.5) on those items, means over the folds."""
    from sklearn.metrics import roc_auc_score

    from scoresong.estimator import _base

    rng = np.random.default_rng(seed)
    picks = [("as is", [])] + [(f"{label} shuffled", [k for k, n in enumerate(names) if pick(n)])
                                for label, pick in GROUPS]
    picks = [(label, cols) for label, cols in picks if label == "as is" or cols]
    per = {label: [] for label, _ in picks}
    folds = []
    for g in np.unique(groups):
        te = (groups == g) & stereo
        if te.sum() < 10 or len(np.unique(y[te])) < 2:
            continue
        clf = _base("hgb", 0).fit(X[groups != g], y[groups != g])
        Xt, yt = X[te], y[te]
        folds.append({"group": str(g), "stereo_songs": int(yt.sum()), "stereo_score": int((~yt).sum())})
        for label, cols in picks:
            runs = []
            for _ in range(repeats if cols else 1):
                Xp = Xt.copy()
                if cols:
                    Xp[:, cols] = Xt[rng.permutation(len(Xt))][:, cols]
                p = clf.predict_proba(Xp)[:, 1]
                runs.append((roc_auc_score(yt, p), float((p[yt] >= 0.5).mean()),
                             float((p[~yt] >= 0.5).mean())))
            per[label].append(np.mean(runs, axis=0))
    out = {label: {"roc_auc": float(np.mean([r[0] for r in v])), "song_recall": float(np.mean([r[1] for r in v])),
                   "score_called_song": float(np.mean([r[2] for r in v]))} for label, v in per.items()}
    return {"folds": folds, "figures": out}


#: Statistics compared by ``--stats`` (segment mean over the file).
STATS = ("voiced_frac", "pitch_strength_mean", "contour_frac", "plateau_frac", "vibrato_frames_frac",
         "fluct_vibrato_share_mean", "fluct_mean", "vocal_variance_mean")


def medians(names: list[str], populations: dict) -> dict:
    """Median of each of :data:`STATS` (``:mean`` aggregate) per view and population;
    ``populations`` maps a name to ``(X, mask)``."""
    views = sorted({n.split(".", 1)[0] for n in names if n.split(".", 1)[0].startswith("vocal")})
    out = {}
    for view in views:
        for pop, (Xp, mask) in populations.items():
            row = {}
            for st in STATS:
                name = f"{view}.{st}:mean"
                if name in names and mask.any():
                    row[st] = float(np.median(Xp[mask, names.index(name)]))
            out[f"{view} | {pop} (n={int(mask.sum())})"] = row
    return out


def render_medians(med: dict) -> str:
    lines = ["", "## Medians of the vocal statistics, per view and population", "",
             "| view / population | " + " | ".join(STATS) + " |", "|---|" + "---:|" * len(STATS)]
    for k, row in med.items():
        lines.append(f"| {k} | " + " | ".join(f"{row[s]:.3f}" if s in row else "–" for s in STATS) + " |")
    return "\n".join(lines) + "\n"


def render_cv(res: dict, manifest: str) -> str:
    lines = ["# Which columns carry the corpus's stereo songs? (python -m corpus.diagnose_views --cv)", "",
             f"Corpus `{manifest}`: each group left out in turn (folds: "
             + ", ".join(f"{f['group']} {f['stereo_songs']} stereo songs / {f['stereo_score']} stereo score"
                         for f in res["folds"])
             + "); the recipe's song-part estimator (hgb, unweighted, uncalibrated) fitted on the "
               "others; column groups shuffled among the held-out stereo items (3 times). "
               "Means over folds. Corpus evidence: it may choose a feature set.", "",
             "| columns | ROC-AUC | song recall (P ≥ 0.5) | score called song |", "|---|---:|---:|---:|"]
    for k, r in res["figures"].items():
        lines.append(f"| {k} | {r['roc_auc']:.3f} | {r['song_recall']:.3f} | {r['score_called_song']:.3f} |")
    return "\n".join(lines) + "\n"


def render(results: dict, model_version: str, n_songs: int, n_score: int, repeats: int) -> str:
    lines = [f"# Which columns carry the figures? (python -m corpus.diagnose_views)", "",
             f"Model {model_version}; {n_songs} songs and {n_score} score excerpts; each group "
             f"shuffled across excerpts {repeats} times (means). Measured on the test set: it "
             f"explains a figure, it may not choose a feature set.", "",
             "| columns | ROC-AUC | songs found | score called song |", "|---|---:|---:|---:|"]
    for k, r in results.items():
        lines.append(f"| {k} | {r['roc_auc']:.3f} | {r['songs_found']:g} | {r['score_called_song']:g} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    from scoresong import features
    from scoresong.model import load_model

    ap = argparse.ArgumentParser(prog="python -m corpus.diagnose_views", description=__doc__.split("\n")[0])
    ap.add_argument("set", type=Path, nargs="?", help="folder with a manifest.csv")
    ap.add_argument("--model", help="model JSON (trained with a second view)")
    ap.add_argument("--cv", type=Path, metavar="MANIFEST", help="corpus evidence: grouped CV on a training manifest")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (with --cv)")
    ap.add_argument("--stats", type=Path, default=None, metavar="SET",
                    help="with --cv: medians of the views' statistics, corpus against SET")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("-o", "--out", type=Path, default=None, help="report stem (.md and .json)")
    a = ap.parse_args(argv)
    if a.cv:
        return _main_cv(a)
    if a.set is None or a.model is None:
        ap.error("give SET and --model (or --cv MANIFEST)")
    model = load_model(a.model)
    names = list(features.feature_names())
    if names != list(model.feature_names):
        print(f"{a.model}: its features are not this feature core's (set the switch it was "
              f"trained with)", file=sys.stderr)
        return 2
    items, X = _set_features(a.set)
    y = np.array([i.label == "song" for i in items])
    res = permuted(model, X, y, names, repeats=a.repeats)
    text = render(res, model.version, int(y.sum()), int((~y).sum()), a.repeats)
    print(text)
    if a.out:
        Path(f"{a.out}.md").write_text(text)   # a stem may hold dots (schema7.views.diagnosis)
        Path(f"{a.out}.json").write_text(json.dumps(res, indent=1))
    return 0


def _set_features(folder: Path) -> tuple[list, np.ndarray]:
    """A test set's score and song items (``folder/manifest.csv``) and their feature vectors."""
    from scoresong import features
    from scoresong.dataset import read_corpus

    items = [i for i in read_corpus(folder / "manifest.csv").items if i.label in ("score", "song")]
    return items, np.array([features.extract_features(i.path, offset=i.start_s, duration=i.duration_s).values
                            for i in items])


def _main_cv(a) -> int:
    import soundfile as sf

    from scoresong import features
    from scoresong.training import _extract, _read

    if not any(_second(n) for n in features.feature_names()):
        print("no second view in this feature core (set features.CENTRE_VIEWS first)", file=sys.stderr)
        return 2
    data = _extract(_read(a.cv), n_jobs=a.jobs, cache_dir=a.cache)
    music = np.isin(data.y, ["score", "song"])
    chans = np.array([sf.info(i.path).channels for i in data.items])
    res = cv_permuted(data.X[music], (data.y == "song")[music], data.groups[music], (chans == 2)[music],
                      list(features.feature_names()))
    text = render_cv(res, str(a.cv))
    if a.stats:
        names = list(features.feature_names())
        kinds = data.kinds
        pops = {"corpus stereo songs": (data.X, (data.y == "song") & (chans == 2)),
                "corpus stereo score (backings and excerpts)": (data.X, (kinds == "score") & (chans == 2)),
                "corpus stereo dialogue over score": (data.X, (kinds == "score_speech") & (chans == 2))}
        items, Xs = _set_features(a.stats)
        ch = np.array([sf.info(i.path).channels for i in items])
        lab = np.array([i.label for i in items])
        grp = np.array([i.group for i in items])
        for g in sorted(set(grp[(lab == "song") & (ch == 2)])):
            pops[f"{a.stats.name} stereo songs: {g}"] = (Xs, (lab == "song") & (ch == 2) & (grp == g))
        pops[f"{a.stats.name} stereo score"] = (Xs, (lab == "score") & (ch == 2))
        med = medians(names, pops)
        res["medians"] = med
        text += render_medians(med)
    print(text)
    if a.out:
        Path(f"{a.out}.md").write_text(text)
        Path(f"{a.out}.json").write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
