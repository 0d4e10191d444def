"""Which measurable property tells the ambience the model calls music from score? (issue 12)

The shipped model calls about one ambience clip in five *music* (colobot's machine loops,
hedgewars' engines), confidently. Before a feature is added for them (a schema bump, a
retraining and every evaluation again), this script measures whether candidate statistics
separate those clips from the score clips at all, on the built corpus:

- ``chroma_change``: mean cosine distance between the 12-bin chroma of consecutive 1-s
  blocks (a machine's hum keeps its pitch classes; music changes chords and notes);
- ``longlag_flux_db``: mean absolute change of the log spectrum (dB, 64 log bands) between
  frames 1 s apart (a looped bed barely changes);
- ``loop_corr``: the highest correlation of the log-band spectrogram with itself shifted by
  0.5-8 s (an exactly looped file repeats itself; music repeats bars, less exactly);
- ``pitch_hold``: share of frames whose strongest spectral peak (60-2000 Hz) is within a
  third of a semitone of the clip's most common one;
- ``onset_rate``: peaks per second of the positive spectral flux (mean over bands) above
  both 1 dB and the clip's median plus twice its median deviation;
- ``peak_count``: prominent peaks (> 12 dB above a 1-octave median) in the clip's mean
  spectrum, 60-4000 Hz.

For each statistic it prints the ROC-AUC of ambience against score (all score clips of the
corpus, or a seeded sample), and the same among the ambience the shipped model calls music
out of fold (the nested CV's predictions, ``models/scoresong.report.predictions.csv``): an
AUC near 0.5 there means the statistic cannot fix those errors. Nothing is trained here.

    python -m corpus.diagnose_ambience CORPUS [--oof PREDICTIONS.csv] [--score 600] [-o out.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

SR = 22050
N_FFT, HOP = 2048, 512


def _magnitude(y: np.ndarray) -> np.ndarray:
    """|STFT| of ``y``, (frames, bins), Hann window, no padding."""
    frames = np.lib.stride_tricks.sliding_window_view(y, N_FFT)[::HOP]
    return np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)).astype(np.float32)


def _auc(pos, neg) -> float:
    """ROC-AUC of ``pos`` ranked above ``neg`` (ties count half); NaN when either is empty."""
    from sklearn.metrics import roc_auc_score

    pos, neg = np.asarray(pos, float), np.asarray(neg, float)
    if not pos.size or not neg.size:
        return float("nan")
    return float(roc_auc_score(np.r_[np.ones(pos.size), np.zeros(neg.size)], np.r_[pos, neg]))


STATISTICS = ("chroma_change", "longlag_flux_db", "loop_corr", "pitch_hold", "onset_rate", "peak_count")


def statistics(y: np.ndarray, sr: int = SR) -> dict[str, float]:
    """The candidate statistics of one clip (mono, ``sr``)."""
    mag = _magnitude(y)
    freqs = np.fft.rfftfreq(N_FFT, 1 / sr)
    fps = sr / HOP
    power = mag ** 2 + 1e-10
    # 64 log-spaced bands, 60 Hz - 8 kHz
    edges = np.geomspace(60, 8000, 65)
    band = np.clip(np.searchsorted(edges, freqs) - 1, -1, 64)
    keep = (band >= 0) & (band < 64)
    B = np.zeros((mag.shape[0], 64), np.float64)
    np.add.at(B.T, band[keep], power[:, keep].T)
    L = 10 * np.log10(B + 1e-10)
    L = np.maximum(L, L.max() - 80)
    lag1 = int(round(fps))
    flux = np.mean(np.abs(L[lag1:] - L[:-lag1])) if L.shape[0] > lag1 else np.nan
    # chroma per 1-s block
    ok = (freqs >= 60) & (freqs <= 4000)
    pc = np.round(12 * np.log2(freqs[ok] / 440.0)).astype(int) % 12
    C = np.zeros((mag.shape[0], 12))
    np.add.at(C.T, pc, power[:, ok].T)
    nb = C.shape[0] // lag1
    Cb = C[:nb * lag1].reshape(nb, lag1, 12).mean(axis=1)
    Cb /= np.linalg.norm(Cb, axis=1, keepdims=True) + 1e-12
    chroma_change = float(np.mean(1 - np.sum(Cb[1:] * Cb[:-1], axis=1))) if nb > 1 else np.nan
    # loop correlation
    Z = (L - L.mean(axis=0)) / (L.std(axis=0) + 1e-6)
    best = 0.0
    for lag in range(int(0.5 * fps), min(int(8 * fps), Z.shape[0] - int(2 * fps))):
        c = float(np.mean(Z[lag:] * Z[:-lag]))
        best = max(best, c)
    # pitch hold
    pk = (freqs >= 60) & (freqs <= 2000)
    top = freqs[pk][np.argmax(mag[:, pk], axis=1)]
    loud = 10 * np.log10(power.sum(axis=1))
    act = loud > loud.max() - 40
    semis = 12 * np.log2(top[act] / 440.0)
    if semis.size:
        hist, e = np.histogram(semis, bins=np.arange(-40, 30, 1 / 3))
        mode = e[np.argmax(hist)] + 1 / 6
        pitch_hold = float(np.mean(np.abs(semis - mode) <= 1 / 3))
    else:
        pitch_hold = np.nan
    # onsets
    d = np.maximum(L[1:] - L[:-1], 0).mean(axis=1)
    thr = max(np.median(d) + 2 * np.median(np.abs(d - np.median(d))), 1.0)   # dB, mean over bands
    peaks = (d[1:-1] > d[:-2]) & (d[1:-1] >= d[2:]) & (d[1:-1] > thr)
    onset_rate = float(peaks.sum() / (y.size / sr))
    # peaks of the mean spectrum
    m = 10 * np.log10(power.mean(axis=0))
    sel = np.flatnonzero((freqs >= 60) & (freqs <= 4000))
    cnt = 0
    for i in sel[1:-1]:
        if m[i] > m[i - 1] and m[i] >= m[i + 1]:
            lo, hi = np.searchsorted(freqs, [freqs[i] / 2 ** 0.5, freqs[i] * 2 ** 0.5])
            if m[i] - np.median(m[lo:hi]) > 12:
                cnt += 1
    return dict(chroma_change=chroma_change, longlag_flux_db=float(flux), loop_corr=best,
                pitch_hold=pitch_hold, onset_rate=onset_rate, peak_count=float(cnt))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, help="the built corpus (its clips are read)")
    ap.add_argument("--oof", type=Path, default=Path(__file__).resolve().parents[1] / "models"
                    / "scoresong.report.predictions.csv",
                    help="out-of-fold predictions of the shipped model's nested CV (default: "
                         "models/scoresong.report.predictions.csv)")
    ap.add_argument("--score", type=int, default=600, help="score clips sampled (seeded)")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("-o", "--out", type=Path)
    ap.add_argument("--stack", action="store_true",
                    help="also: every clip of the predictions file, and a grouped CV of a second stage "
                         "(logistic regression on logit P(no_music) out of fold, with and without "
                         "chroma_change), to see what the statistic adds to the shipped features")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args(argv)
    if a.stack:
        return stack(a)
    from scoresong import audio

    with open(a.oof, newline="") as fh:
        rows = list(csv.DictReader(fh))
    amb = [r for r in rows if r["kind"] == "no_music_ambience"]
    score = [r for r in rows if r["label"] == "score" and r["kind"] in ("score", "score_choir", "score_rock")]
    rng = np.random.default_rng(a.seed)
    score = [score[i] for i in sorted(rng.choice(len(score), min(a.score, len(score)), replace=False))]
    out = []
    for r in amb + score:
        p = Path(r["path"])
        p = p if p.is_absolute() else a.corpus / p
        try:
            y, _ = audio.load(p, sr=SR, offset=float(r.get("start_s") or 0), duration=20.0,
                              check_silence=False)
        except Exception as exc:  # noqa: BLE001 - a diagnostic: count and go on
            out.append(dict(path=r["path"], kind=r["kind"], error=f"{type(exc).__name__}: {exc}"))
            continue
        s = statistics(np.asarray(y, np.float32))
        out.append(dict(path=r["path"], start_s=r.get("start_s"), kind=r["kind"], group=r["group"],
                        p_no_music=float(r["p_no_music"]), predicted=r["predicted"], **s))
        if len(out) % 100 == 0:
            print(f"  {len(out)} / {len(amb) + len(score)}", file=sys.stderr)
    ok = [o for o in out if "error" not in o]
    A = [o for o in ok if o["kind"] == "no_music_ambience"]
    S = [o for o in ok if o["kind"] != "no_music_ambience"]
    missed = [o for o in A if o["predicted"] != "no_music"]
    table = {}
    print(f"ambience {len(A)} (called music out of fold: {len(missed)}), score {len(S)}, "
          f"unreadable {len(out) - len(ok)}")
    print(f"{'statistic':18s} {'AUC amb<>score':>14s} {'AUC missed<>score':>17s}  median amb / missed / score")
    for k in STATISTICS:
        sv, av, mv = (np.array([o[k] for o in g], float) for g in (S, A, missed))
        sv, av, mv = sv[np.isfinite(sv)], av[np.isfinite(av)], mv[np.isfinite(mv)]
        med = [float(np.median(v)) if v.size else float("nan") for v in (av, mv, sv)]
        table[k] = dict(auc_ambience=_auc(av, sv), auc_missed=_auc(mv, sv), median=med)
        t = table[k]
        print(f"{k:18s} {t['auc_ambience']:14.3f} {t['auc_missed']:17.3f}  "
              f"{med[0]:.3g} / {med[1]:.3g} / {med[2]:.3g}")
    pn = {g: np.array([o["p_no_music"] for o in v]) for g, v in (("A", A), ("S", S), ("M", missed))}
    print(f"out-of-fold P(no_music), AUC ambience>score {_auc(pn['A'], pn['S']):.3f}, "
          f"missed>score {_auc(pn['M'], pn['S']):.3f}")
    if a.out:
        a.out.write_text(json.dumps(dict(n_ambience=len(A), n_missed=len(missed), n_score=len(S),
                                         table=table, clips=out), indent=1))
    return 0


def _clip_stats(path: str, start: float) -> dict:
    from scoresong import audio

    try:
        y, _ = audio.load(path, sr=SR, offset=start, duration=20.0, check_silence=False)
    except Exception as exc:  # noqa: BLE001
        return dict(error=f"{type(exc).__name__}: {exc}")
    return statistics(np.asarray(y, np.float32))


def stack(a) -> int:
    """Grouped CV (the predictions' cells) of a second stage that sees the out-of-fold
    P(no_music) alone, or with one candidate statistic: how much would the statistic add?
    Labels: no_music against music (score or song). The rule is the first stage's: a clip is
    no_music when the second stage's probability, against the training folds' no_music share,
    beats the music's (the prior-weighted rule with P(song) left out)."""
    from joblib import Parallel, delayed
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut

    with open(a.oof, newline="") as fh:
        rows = list(csv.DictReader(fh))
    res = Parallel(n_jobs=a.jobs, batch_size=16)(
        delayed(_clip_stats)(r["path"], float(r.get("start_s") or 0)) for r in rows)
    keep = [i for i, r in enumerate(res) if "error" not in r]
    rows = [rows[i] for i in keep]
    res = [res[i] for i in keep]
    y = np.array([r["label"] == "no_music" for r in rows])
    g = np.array([r["group"] for r in rows])
    kind = np.array([r["kind"] for r in rows])
    p = np.clip(np.array([float(r["p_no_music"]) for r in rows]), 1e-6, 1 - 1e-6)
    base = np.log(p / (1 - p))[:, None]
    out = dict(n=len(rows), unreadable=len(res) - len(keep), variants={})
    for name, cols in (("P(no_music) alone", []), ("+ chroma_change", ["chroma_change"]),
                       ("+ pitch_hold", ["pitch_hold"]), ("+ chroma_change + pitch_hold", ["chroma_change", "pitch_hold"])):
        X = np.hstack([base] + [np.nan_to_num(np.array([[r[c]] for r in res], float)) for c in cols])
        pred = np.zeros(len(y), bool)
        for tr, te in LeaveOneGroupOut().split(X, y, g):
            m = LogisticRegression(max_iter=1000).fit(X[tr], y[tr])
            prior = y[tr].mean()
            q = m.predict_proba(X[te])[:, 1]
            pred[te] = q / prior >= (1 - q) / (1 - prior)
        v = dict(no_music_recall=float(pred[y].mean()), music_recall=float((~pred[~y]).mean()),
                 ambience_recall=float(pred[kind == "no_music_ambience"].mean()),
                 dialogue_over_score_kept=float((~pred[kind == "score_under_speech"]).mean()))
        out["variants"][name] = v
        print(f"{name:32s} " + "  ".join(f"{k} {x:.3f}" for k, x in v.items()))
    if a.out:
        a.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
