"""Why rap is the hardest generator, and whether rhythm statistics would help (issue 11).

Held out, rap is found in 16% of its clips (ROC-AUC 0.58, the model card's
leave-one-generator-out table): a model that learned songs from *sung* lines does not call
rhythmic speech over a beat a song. Before a feature is added for it (a schema bump, a
retraining and every evaluation again), this script measures two things on the built corpus.

1. **Paired twins** (default). The corpus builds each song on a backing excerpt together with
   the same excerpt under one speaking voice (``gen/speech/``, score by the label policy) and
   alone (``gen/backing/``). For a seeded sample of each generator's triplets it computes
   rhythm and voicing statistics from scoresong's own frame tracks
   (:func:`scoresong.features.extract_features` with ``frames=True``), per 5.12-s segment,
   averaged over the clip:

   - ``env_periodicity``: highest normalised autocorrelation of the voice band's level (dB,
     the ``vocal.voiceband_env_db`` track) at lags of 0.12-1.0 s; sung notes on a metre make
     the level rise and fall with the bar, conversation does not;
   - ``strength_periodicity``: the same for the predominant pitch's salience
     (``vocal.pitch_strength``);
   - ``onset_periodicity``: the same for voicing onsets (``vocal.voicing_onset``, smoothed
     by a Gaussian of 40 ms);
   - ``voiced_frac``: share of voiced frames;
   - ``pauses_per_s``: unvoiced stretches longer than 0.3 s per second;
   - ``rise_onset_corr``: correlation of the rise of the pitch salience with the full-band
     onset strength (a voice whose syllables start with the beat).

   It prints, per generator, the ROC-AUC of the song against its own speech twin (same
   backing, so the backing cannot separate them) and the medians of song / twin / backing.
   A statistic can only help a held-out generator if it moves *that* generator away from the
   twin in the same direction as the generators trained on.

2. **Screen** (``--screen``): a quick leave-one-generator-out on the whole corpus (the folds
   of :func:`corpus.generator_eval.generator_folds`, songs of ``speech2sing_v1``, ``sinsy``
   and ``singer`` trainable, as the shipped model), uncalibrated gradient boosting with
   balanced class weights at 0.5, with the shipped 168 features and with the voice-band and
   salience periodicities added (their mean and 90th percentile over segments). Per held-out
   generator: ROC-AUC against all score of its cell, song recall, and the share of dialogue
   over music (``score_speech``) called song. Then the same model tested on each held-out cell
   with and without rap's songs (of the other cells: other voices and backings) in training:
   can the periodicity tell rap from dialogue once rap is learned, and at what cost?

3. **Real recordings** (``--real EXT``): the same statistics on the external real set
   (:mod:`corpus.external`, never trained on) beside the corpus's trained songs and score
   kinds. A statistic can only help on real music if real songs fall on the corpus songs'
   side of the corpus's score.

Nothing here changes the model. ::

    python -m corpus.diagnose_rhythm CORPUS [--n 60] [--screen] [--real EXT] [-o out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from corpus import excerpt_span
from corpus.diagnose_ambience import _auc
from corpus.select import SHIPPED_GENERATORS
from scoresong.audio import ANALYSIS_SR
from scoresong.features import SEGMENT_FRAMES
from scoresong.spectrum import HOP

#: Frames per second of scoresong's frame tracks.
FRAME_RATE = ANALYSIS_SR / HOP
#: Lags searched for a periodicity (s): a sixteenth at 120 bpm up to a bar of 4/4 at 240 bpm.
LAGS_S = (0.12, 1.0)
PAUSE_S = 0.3
STATISTICS = ("env_periodicity", "strength_periodicity", "onset_periodicity", "voiced_frac",
              "pauses_per_s", "rise_onset_corr")
GENERATORS = ("rap", "sinsy", "speech2sing_v2", "speech2sing_v1", "singer")
#: Twin folders of the builder: the song, the same backing under speech, the backing alone.
TWINS = ("song", "speech", "backing")


def periodicity(x: np.ndarray, frame_rate: float, *, lags_s=LAGS_S) -> np.ndarray:
    """Highest normalised autocorrelation of each row of ``x`` at lags within ``lags_s``.

    Parameters
    ----------
    x : np.ndarray, shape (n_rows, n_frames)
    frame_rate : float
        Frames per second.
    lags_s : (float, float)

    Returns
    -------
    np.ndarray, shape (n_rows,)
        1 for a row that repeats exactly at some lag in the range, about 0 for white noise;
        0 for a constant row.
    """
    x = np.atleast_2d(np.asarray(x, float))
    x = x - x.mean(axis=1, keepdims=True)
    energy = (x * x).sum(axis=1)
    n = x.shape[1]
    spec = np.fft.rfft(x, 2 * n, axis=1)
    ac = np.fft.irfft(spec * np.conj(spec), axis=1)[:, :n]
    lo, hi = int(round(lags_s[0] * frame_rate)), min(int(round(lags_s[1] * frame_rate)) + 1, n)
    peak = ac[:, lo:hi].max(axis=1) / np.where(energy > 0, energy, 1.0)
    return np.where(energy > 0, peak, 0.0)


def _gauss_smooth(x: np.ndarray, frame_rate: float, sd_s: float = 0.04) -> np.ndarray:
    sd = sd_s * frame_rate
    k = np.exp(-0.5 * (np.arange(-int(3 * sd), int(3 * sd) + 1) / sd) ** 2)
    k /= k.sum()
    return np.apply_along_axis(np.convolve, 1, x, k, "same")


def segment_rows(frames: dict[str, np.ndarray], name: str, *, segment_frames: int = SEGMENT_FRAMES
                 ) -> np.ndarray:
    """Frame track ``name`` cut into whole segments: shape (n_segments, segment_frames), float64
    (a trailing part shorter than a segment is dropped; no rows for a clip under one)."""
    n = segment_frames
    m = frames[name].size // n
    return np.asarray(frames[name][: m * n], float).reshape(m, n)


def statistics(frames: dict[str, np.ndarray], frame_rate: float, *,
               segment_frames: int = SEGMENT_FRAMES) -> dict[str, float]:
    """The statistics of the module docstring from scoresong's frame tracks, mean over segments.

    Parameters
    ----------
    frames : dict
        ``Features.frames`` of :func:`scoresong.features.extract_features` (``frames=True``).
    frame_rate : float
    segment_frames : int
        Frames per segment (320 = 5.12 s, the model's segments).

    Returns
    -------
    dict of str to float, keys :data:`STATISTICS`; empty when the clip is under one segment.
    """
    from scoresong.features._stats import row_run_lengths

    def seg(name):
        return segment_rows(frames, name, segment_frames=segment_frames)

    n = segment_frames
    m = frames["vocal.voiced"].size // n
    if m == 0:
        return {}
    env, strength = seg("vocal.voiceband_env_db"), seg("vocal.pitch_strength")
    onsets, voiced = seg("vocal.voicing_onset"), seg("vocal.voiced") > 0.5
    full = seg("orchestral.onset_strength")
    rise = np.maximum(np.diff(strength, axis=1, prepend=strength[:, :1]), 0)
    rise, full = _gauss_smooth(rise, frame_rate), _gauss_smooth(full, frame_rate)
    rise, full = rise - rise.mean(axis=1, keepdims=True), full - full.mean(axis=1, keepdims=True)
    corr = (rise * full).sum(axis=1) / np.sqrt((rise ** 2).sum(axis=1) * (full ** 2).sum(axis=1) + 1e-12)
    gaps = row_run_lengths(~voiced)
    # A run's length is painted on each of its frames: count each run once, at its start.
    starts = ~voiced & np.concatenate([np.ones((m, 1), bool), voiced[:, :-1]], axis=1)
    pauses = (starts & (gaps >= PAUSE_S * frame_rate)).sum(axis=1) / (n / frame_rate)
    per_seg = {
        "env_periodicity": periodicity(env, frame_rate),
        "strength_periodicity": periodicity(strength, frame_rate),
        "onset_periodicity": periodicity(_gauss_smooth(onsets, frame_rate), frame_rate),
        "voiced_frac": voiced.mean(axis=1),
        "pauses_per_s": pauses,
        "rise_onset_corr": corr,
    }
    return {k: float(np.mean(v)) for k, v in per_seg.items()}


def _extract(path: Path, offset: float = 0.0, duration: float | None = None):
    from scoresong.features import extract_features

    try:
        return extract_features(path, frames=True, offset=offset, duration=duration)
    except Exception as exc:  # noqa: BLE001 - a diagnostic reports and goes on
        return exc


def _clip_stats(path: Path, offset: float = 0.0, duration: float | None = None) -> dict:
    f = _extract(path, offset, duration)
    if isinstance(f, Exception):
        return {"error": f"{type(f).__name__}: {f}"}
    return statistics(f.frames, FRAME_RATE)


def twins(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """Triplets of the builder by clip stem: ``{stem: {"song": row, "speech": row, "backing": row}}``
    (only complete triplets whose song has a generator)."""
    by = defaultdict(dict)
    for r in rows:
        parts = r["path"].split("/")
        if len(parts) == 3 and parts[0] == "gen" and parts[1] in TWINS:
            by[Path(parts[2]).stem][parts[1]] = r
    return {s: d for s, d in by.items() if len(d) == 3 and d["song"].get("generator")}


def paired(corpus: Path, rows: list[dict], *, n: int, seed: int, jobs: int) -> dict:
    from joblib import Parallel, delayed

    trip = twins(rows)
    rng = np.random.default_rng(seed)
    chosen = []
    for g in GENERATORS:
        stems = sorted(s for s, d in trip.items() if d["song"]["generator"] == g)
        chosen += [(g, s) for s in rng.permutation(stems)[:n].tolist()]
    jobs_list = [(g, s, t) for g, s in chosen for t in TWINS]
    stats = Parallel(n_jobs=jobs, batch_size=8)(
        delayed(_clip_stats)(corpus / trip[s][t]["path"]) for g, s, t in jobs_list)
    errors = [(trip[s][t]["path"], st["error"]) for (g, s, t), st in zip(jobs_list, stats) if "error" in st]
    ok = {(g, s, t): st for (g, s, t), st in zip(jobs_list, stats) if st and "error" not in st}
    table = {}
    for g in GENERATORS:
        stems = [s for gg, s in chosen if gg == g and all((g, s, t) in ok for t in TWINS)]
        table[g] = {"triplets": len(stems)}
        for k in STATISTICS:
            v = {t: [ok[(g, s, t)][k] for s in stems] for t in TWINS}
            table[g][k] = {"auc_song_vs_twin": _auc(v["song"], v["speech"]),
                           **{f"median_{t}": float(np.median(v[t])) if v[t] else None for t in TWINS}}
    return {"triplets_per_generator": n, "seed": seed, "errors": errors, "table": table}


def _screen_matrix(corpus: Path, rows: list[dict], jobs: int):
    """The shipped feature vector and the added periodicities (mean, p90) of every clip."""
    from joblib import Parallel, delayed

    res = Parallel(n_jobs=jobs, batch_size=16)(
        delayed(_screen_row)(corpus / r["path"], *excerpt_span(r)) for r in rows)
    keep = [i for i, x in enumerate(res) if x is not None]
    return (np.stack([res[i][0] for i in keep]), np.stack([res[i][1] for i in keep]), np.array(keep))


def _screen_row(path: Path, offset: float, duration: float | None):
    f = _extract(path, offset, duration)
    if isinstance(f, Exception) or f.frames["vocal.voiced"].size < SEGMENT_FRAMES:
        return None
    extra = []
    for name in ("vocal.voiceband_env_db", "vocal.pitch_strength"):
        p = periodicity(segment_rows(f.frames, name), FRAME_RATE)
        extra += [p.mean(), np.percentile(p, 90)]
    return f.values.astype(np.float32), np.asarray(extra, np.float32)


SCREEN_VARIANTS = {"shipped features": None,
                   "+ voice-band and salience periodicity": slice(0, 4),
                   "+ voice-band periodicity": slice(0, 2)}


def screen(corpus: Path, rows: list[dict], *, jobs: int,
           train_generators=SHIPPED_GENERATORS) -> dict:
    from corpus.generator_eval import _song_proba, fit_classifier, generator_folds

    X, E, keep = _screen_matrix(corpus, rows, jobs)
    R = [rows[i] for i in keep]
    y = np.array([r["label"] for r in R])
    cells = np.array([r["group"] for r in R])
    gens = np.array([r.get("generator", "") for r in R])
    kinds = np.array([r["kind"] for r in R])
    folds = generator_folds(y, cells, gens, train_generators=set(train_generators))
    out = {"clips": int(len(R)), "unreadable": int(len(rows) - len(R)), "variants": {}}
    for name, cols in SCREEN_VARIANTS.items():
        M = X if cols is None else np.hstack([X, E[:, cols]])
        per = defaultdict(lambda: {"p": [], "t": [], "k": []})
        for fold in folds:
            clf = fit_classifier(M[fold.train], y[fold.train], cells[fold.train], calibration=None)
            p = _song_proba(clf, M[fold.test])
            per[fold.generator]["p"].append(p)
            per[fold.generator]["t"].append(y[fold.test] == "song")
            per[fold.generator]["k"].append(kinds[fold.test])
        res = {}
        for g, d in sorted(per.items()):
            p, t, k = (np.concatenate(d[x]) for x in ("p", "t", "k"))
            res[g] = {"roc_auc": _auc(p[t], p[~t]), "song_recall": float((p[t] >= 0.5).mean()),
                      "score_speech_called_song": float((p[k == "score_speech"] >= 0.5).mean())}
        out["variants"][name] = res
        print(f"{name:40s} " + "  ".join(f"{g}: AUC {v['roc_auc']:.3f} recall {v['song_recall']:.2f}"
                                          f" speech {v['score_speech_called_song']:.2f}"
                                          for g, v in res.items()), flush=True)
    out["rap_trained"] = _rap_trained(X, E, y, cells, gens, kinds, train_generators)
    return out


def _rap_trained(X, E, y, cells, gens, kinds, train_generators) -> dict:
    """Held-out cells with rap's songs trainable or not (other cells: other voices, backings)."""
    from corpus.generator_eval import _song_proba, fit_classifier

    song = y == "song"
    score_kinds = sorted(set(kinds[~song].tolist()))
    res = {}
    print("held-out cells (rap of other cells trained or not): song recall / ROC-AUC against all "
          "score; share of each score kind called song", flush=True)
    for with_rap in (False, True):
        tg = set(train_generators) | ({"rap"} if with_rap else set())
        for name, cols in (("shipped features", None), ("+ voice-band periodicity", slice(0, 2))):
            M = X if cols is None else np.hstack([X, E[:, cols]])
            p = np.full(y.size, np.nan)
            for c in sorted(set(cells.tolist())):
                tr = (cells != c) & (~song | np.isin(gens, list(tg)))
                clf = fit_classifier(M[tr], y[tr], cells[tr], calibration=None)
                te = cells == c
                p[te] = _song_proba(clf, M[te])
            key = f"{'+ rap' if with_rap else 'shipped songs'}, {name}"
            d = {g: {"song_recall": float((p[song & (gens == g)] >= 0.5).mean()),
                     "roc_auc": _auc(p[song & (gens == g)], p[~song])} for g in GENERATORS}
            d.update({k: float((p[kinds == k] >= 0.5).mean()) for k in score_kinds})
            res[key] = d
            print(f"{key:45s} " + "  ".join(f"{g}: {d[g]['song_recall']:.2f}/{d[g]['roc_auc']:.3f}"
                                             for g in GENERATORS)
                  + "  " + "  ".join(f"{k} {d[k]:.3f}" for k in score_kinds), flush=True)
    return res


def real_against_corpus(corpus: Path, rows: list[dict], ext: Path, *, n: int, seed: int,
                        jobs: int) -> dict:
    """The statistics on real recordings (``corpus.external``'s set, never trained on) beside
    the corpus's trained songs and its score kinds: does a statistic that separates the
    corpus's songs from its score put *real* songs on the song side?

    Groups: the corpus songs of each generator the shipped model trains on, the corpus's
    ``score``, ``score_rock`` and ``score_speech`` clips, and each external package's songs and
    score (groups of 3 or more excerpts). Up to ``n`` seeded excerpts per group.

    Returns
    -------
    dict
        ``{group: {"n": int, statistic: [q25, median, q75], ...}}``.
    """
    from joblib import Parallel, delayed

    with open(ext / "manifest.csv", newline="", encoding="utf-8") as fh:
        ext_rows = list(csv.DictReader(fh))
    groups: dict[str, list[tuple[Path, dict]]] = defaultdict(list)
    for r in rows:
        if r.get("generator") in SHIPPED_GENERATORS:
            groups[f"corpus song {r['generator']}"].append((corpus, r))
        elif r["kind"] in ("score", "score_rock", "score_speech"):
            groups[f"corpus {r['kind']}"].append((corpus, r))
    for r in ext_rows:
        groups[f"real {r['label']} {r['group']}"].append((ext, r))
    rng = np.random.default_rng(seed)
    chosen = {g: [items[i] for i in sorted(rng.permutation(len(items))[:n])]
              for g, items in sorted(groups.items()) if len(items) >= 3}

    flat = [(g, it) for g, items in chosen.items() for it in items]
    res = Parallel(n_jobs=jobs)(delayed(_clip_stats)(root / r["path"], *excerpt_span(r))
                                for _, (root, r) in flat)
    out = {}
    for g in chosen:
        vals = [r for (gg, _), r in zip(flat, res) if gg == g and r and "error" not in r]
        out[g] = {"n": len(vals)}
        for k in STATISTICS:
            v = np.array([x[k] for x in vals])
            out[g][k] = np.percentile(v, [25, 50, 75]).round(3).tolist() if v.size else None
    return out


def _print_real(res: dict) -> None:
    print("real recordings beside the corpus: median [q25-q75] per group")
    print(f"{'group':45s} {'n':>3s} " + " ".join(f"{k:>20s}" for k in STATISTICS))
    for g, d in res.items():
        cells = [f"{v[1]:.2f} [{v[0]:.2f}-{v[2]:.2f}]" if v else "-" for v in (d[k] for k in STATISTICS)]
        print(f"{g:45s} {d['n']:3d} " + " ".join(f"{c:>20s}" for c in cells))


def _print_paired(res: dict) -> None:
    print("ROC-AUC of each generator's songs against their own speech twins (same backing), "
          "medians song / twin / backing")
    print(f"{'statistic':22s}" + "".join(f"{g:>28s}" for g in GENERATORS))
    for k in STATISTICS:
        cells = []
        for g in GENERATORS:
            d = res["table"][g][k]
            med = "/".join(f"{d['median_' + t]:.2f}" if d["median_" + t] is not None else "-" for t in TWINS)
            cells.append(f"{d['auc_song_vs_twin']:.2f} ({med})")
        print(f"{k:22s}" + "".join(f"{c:>28s}" for c in cells))
    print("triplets: " + ", ".join(f"{g} {res['table'][g]['triplets']}" for g in GENERATORS)
          + f"; unreadable {len(res['errors'])}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="the built corpus (manifest.csv and its clips)")
    ap.add_argument("--n", type=int, default=60, help="triplets per generator (seeded sample)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--screen", action="store_true",
                    help="also the quick leave-one-generator-out screen on every clip (about 12 min on 2 cores)")
    ap.add_argument("--no-paired", action="store_true", help="skip the paired-twins table")
    ap.add_argument("--real", type=Path, metavar="EXT",
                    help="also the statistics on corpus.external's real set (built in EXT) beside "
                         "the corpus's trained songs and score kinds")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-o", "--out", type=Path)
    a = ap.parse_args(argv)
    manifest = a.corpus / "manifest.csv"
    if not manifest.is_file():
        print(f"no manifest at {manifest}: build the corpus first (python -m corpus.build)", file=sys.stderr)
        return 2
    with open(manifest, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    out = {}
    if not a.no_paired:
        out["paired"] = paired(a.corpus, rows, n=a.n, seed=a.seed, jobs=a.jobs)
        _print_paired(out["paired"])
    if a.real:
        out["real"] = real_against_corpus(a.corpus, rows, a.real, n=a.n, seed=a.seed, jobs=a.jobs)
        _print_real(out["real"])
    if a.screen:
        out["screen"] = screen(a.corpus, rows, jobs=a.jobs)
    if a.out:
        a.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
