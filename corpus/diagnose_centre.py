"""Is the lead voice of a real stereo song hidden by the mix? (issue 11)

The shipped model finds a third of the real songs of the external set (21 of 60); most of
them are one symphonic-metal album whose voice sits under dense, wide guitars and keyboards.
Pop and rock records put the lead vocal in the centre of the stereo image and spread the
band; scoresong analyses the mono downmix, where the band covers the voice. This script
measures how much of the miss that explains, with the shipped model and nothing retrained:
every excerpt of a set is scored three ways,

- *as is* (what :func:`scoresong.predict` does; since feature schema 6 the vocal family
  of a stereo file reads the centre of the image itself),
- *downmix*: the channels averaged first, so every family reads the mono mix (what
  schema 4 heard; for a schema-6 model, a check that its gain comes from the centre), and
- *centre only*: the STFT of mid ``(L + R) / 2`` and side ``(L - R) / 2``, the magnitude
  ``max(|M| - |S|, 0)`` with the mid's phase, back to a signal (:func:`centre_only`).
  Content panned hard to one side or spread wide loses most of its level; content equal in
  both channels keeps it. A mono file is left unchanged, so its three scores are equal.

It prints, per set, the ROC-AUC of P(song | music) and the songs found / score called song
at the model's threshold, then per source package and label the median P(song | music)
and the calls, both ways. Nothing here changes the model. ::

    python -m corpus.diagnose_centre SET [SET ...] [--model MODEL.json] [-o models/centre.diagnosis]

A ``SET`` is a folder with a ``manifest.csv`` of ``path,label,group[,start_s,duration_s]``
(:mod:`corpus.external`, :mod:`corpus.festival_eval`).

``--centre-copy MANIFEST OUT`` writes a training manifest whose stereo excerpts are replaced by
their centre-only versions (FLAC under ``OUT/clips``; mono rows keep their files), to train a
model on what a centre-only analysis would hear: does the gain survive training, or does the
model learn the processing itself (the corpus mixes its voices in mono, so only score would
carry it)? ::

    python -m corpus.diagnose_centre --centre-copy CORPUS/manifest.sel.csv OUT [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from corpus import excerpt_span

#: STFT of the centre extraction (at the file's own rate): 2048 samples, hop 512.
N_FFT, HOP = 2048, 512


def centre_only(y: np.ndarray, sr: float, *, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    """Keep the centre of a stereo signal: magnitude ``max(|M| - |S|, 0)`` with the mid's phase.

    Parameters
    ----------
    y : np.ndarray [shape=(n,), (1, n) or (2, n)]
        Mono, or stereo with left and right as rows (librosa's convention).
    sr : float
        Sample rate (only passed on to the STFT).
    n_fft, hop : int
        STFT size and hop.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        The centre signal; a mono input unchanged.

    Raises
    ------
    ValueError
        More than two channels (where the centre is a channel of its own, not a balance of
        two), samples as rows (``(n, channels)``: pass ``y.T``), or a stereo signal shorter
        than one STFT window.

    Examples
    --------
    >>> t = np.arange(44100) / 44100
    >>> voice = np.sin(2 * np.pi * 440 * t)
    >>> guitar = np.sin(2 * np.pi * 200 * t)              # hard left
    >>> c = centre_only(np.stack([voice + guitar, voice]), 44100)
    >>> float(np.corrcoef(c[4096:-4096], voice[4096:-4096])[0, 1]) > 0.99
    True
    """
    import scipy.signal as ss

    y = np.asarray(y, np.float32)
    if y.ndim == 1 or y.shape[0] == 1:
        return y.reshape(-1)
    if y.ndim != 2 or y.shape[0] > y.shape[1]:
        raise ValueError(f"expected (channels, n) samples, got shape {y.shape} (pass y.T for (n, channels))")
    if y.shape[0] != 2:
        raise ValueError(f"the centre of {y.shape[0]} channels is not defined here (stereo only)")
    if y.shape[1] < n_fft:
        raise ValueError(f"{y.shape[1]} samples: shorter than one STFT window ({n_fft})")
    mid, side = (y[0] + y[1]) / 2, (y[0] - y[1]) / 2
    kw = dict(fs=sr, nperseg=n_fft, noverlap=n_fft - hop)
    _, _, m = ss.stft(mid, **kw)
    _, _, s = ss.stft(side, **kw)
    mag = np.maximum(np.abs(m) - np.abs(s), 0)
    _, c = ss.istft(mag * np.exp(1j * np.angle(m)), **kw)
    return c[: mid.size].astype(np.float32)


def _read(path: Path, start_s: float, duration_s: float | None) -> tuple[np.ndarray, int]:
    """An excerpt with its channels kept: ``(channels, n)`` float32 and the file's rate."""
    import soundfile as sf

    with sf.SoundFile(str(path)) as f:
        sr = f.samplerate
        f.seek(int(round(start_s * sr)))
        n = -1 if duration_s is None else int(round(duration_s * sr))
        y = f.read(n, dtype="float32", always_2d=True)
    return y.T, sr


_MODELS: dict = {}
#: The ways each excerpt is scored (see the module docstring), in the report's order.
WAYS = ("as_is", "downmix", "centre")
WAY_NAMES = {"as_is": "as is", "downmix": "downmix", "centre": "centre only"}


def score_item(path: Path, start_s: float = 0.0, duration_s: float | None = None, *,
               model=None) -> dict:
    """Score one excerpt as is, as a mono downmix and centre only.

    Parameters
    ----------
    path : Path
    start_s, duration_s : float
        The excerpt (``duration_s=None``: to the end).
    model : path, Model or None
        Default: the shipped model. A path or ``None`` is loaded once per process.

    Returns
    -------
    dict
        ``channels``; per way of :data:`WAYS` (``as_is``, ``downmix``, ``centre``):
        P(song | music), and ``{way}_voiced``: the voiced share (``vocal.voiced_frac:mean``,
        frames with a clear predominant pitch). ``{"error": "Type: reason"}`` when the excerpt cannot be scored.
    """
    from scoresong.features import extract_features
    from scoresong.model import load_model

    try:
        if model is None or isinstance(model, (str, Path)):
            if model not in _MODELS:           # once per worker process
                _MODELS[model] = load_model(model)
            model = _MODELS[model]
        y, sr = _read(path, start_s, duration_s)
        out = {"channels": int(y.shape[0])}
        for name, sig in (("as_is", y), ("downmix", y.mean(axis=0)), ("centre", centre_only(y, sr))):
            f = extract_features(sig, sr)
            out[name] = float(model.probabilities(f.values[None, :], classes=("score", "song"))[0, 1])
            out[f"{name}_voiced"] = f.as_dict()["vocal.voiced_frac:mean"]
        return out
    except Exception as exc:  # noqa: BLE001 - a diagnostic reports and goes on
        return {"error": f"{type(exc).__name__}: {exc}"}


def _centre_row(row: dict, root: Path, clips: Path, i: int, fields) -> tuple[dict, str]:
    """The row for the copy, and what happened: ``centre``, ``mono`` or ``kept: reason``."""
    import soundfile as sf

    out = dict(row)
    src = Path(row["path"]) if Path(row["path"]).is_absolute() else root / row["path"]
    out["path"] = str(src)
    try:
        y, sr = _read(src, *excerpt_span(row))
        if y.shape[0] < 2:
            return out, "mono"
        c = centre_only(y, sr)
    except Exception as exc:  # noqa: BLE001 - kept as it was; training reports it as before
        return out, f"kept: {type(exc).__name__}: {exc}"
    dest = clips / f"{i:06d}.flac"
    sf.write(dest, c, sr, subtype="PCM_24")
    out["path"] = str(dest)
    out.update({k: "" for k in ("start_s", "duration_s") if k in fields})
    return out, "centre"


def centre_copy(manifest: Path, out: Path, *, jobs: int = 2) -> tuple[Path, dict]:
    """Copy a training manifest with every stereo excerpt replaced by its centre-only clip.

    Parameters
    ----------
    manifest : Path
        A manifest (``path,label[,group,start_s,duration_s,...]``; relative paths are taken
        from its folder).
    out : Path
        Folder for ``manifest.csv`` and ``clips/NNNNNN.flac`` (24-bit, the file's own rate).
    jobs : int
        Worker processes.

    Returns
    -------
    manifest : Path
        The new manifest: every path absolute, every other column (labels, groups) unchanged.
    counts : dict
        Rows made centre-only, left mono, and kept unprocessed (with each reason: more than
        two channels, shorter than one window, unreadable by libsndfile).
    """
    from collections import Counter

    from joblib import Parallel, delayed

    manifest, out = Path(manifest).resolve(), Path(out).resolve()
    with open(manifest, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames, list(reader)
    clips = out / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    done = Parallel(n_jobs=jobs)(delayed(_centre_row)(r, manifest.parent, clips, i, fields)
                                 for i, r in enumerate(rows))
    dest = out / "manifest.csv"
    with open(dest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(r for r, _ in done)
    return dest, dict(Counter(status for _, status in done))


def summarise(rows: list[dict], scores: list[dict], threshold: float) -> dict:
    """The figures printed for one set.

    Parameters
    ----------
    rows : list of dict
        The manifest rows (``label``, ``group``).
    scores : list of dict
        :func:`score_item` of each row, in the same order.
    threshold : float
        The model's threshold on P(song | music).

    Returns
    -------
    dict
        ``items``, ``failed``, ``threshold``; per way of :data:`WAYS` found in ``scores``:
        ROC-AUC (None with one class), songs found, score called song; ``groups``: per
        source and label, the median P(song | music), the calls and the median voiced
        share, every way.
    """
    from sklearn.metrics import roc_auc_score

    ok = [i for i, s in enumerate(scores) if "error" not in s]
    out = {"items": len(rows), "failed": len(rows) - len(ok), "threshold": threshold, "groups": []}
    if not ok:
        return out
    y = np.array([rows[i]["label"] == "song" for i in ok])
    ways = [w for w in WAYS if all(w in scores[i] for i in ok)]
    out["ways"] = ways
    for way in ways:
        p = np.array([scores[i][way] for i in ok])
        out[way] = {
            "roc_auc": float(roc_auc_score(y, p)) if 0 < y.sum() < y.size else None,
            "songs_found": int((p[y] >= threshold).sum()), "songs": int(y.sum()),
            "score_called_song": int((p[~y] >= threshold).sum()), "score": int((~y).sum()),
        }
    groups = {}
    for i in ok:
        groups.setdefault((rows[i]["group"], rows[i]["label"]), []).append(i)
    for (g, lab), idx in sorted(groups.items()):
        d = {"group": g, "label": lab, "n": len(idx),
             "channels": max(scores[i]["channels"] for i in idx)}
        for way in ways:
            p = np.array([scores[i][way] for i in idx])
            d[way] = {"median": float(np.median(p)), "called_song": int((p >= threshold).sum()),
                      "voiced_median": float(np.median([scores[i][f"{way}_voiced"] for i in idx]))}
        out["groups"].append(d)
    return out


def render(results: dict, model_version: str) -> str:
    """The Markdown report of :func:`summarise`'s results, set by set."""
    lines = [f"# Centre-only input: how much of the real songs' miss is the mix? "
             f"(python -m corpus.diagnose_centre)", "",
             f"Model {model_version}, as given (this script trains nothing). Each excerpt scored as is, "
             f"as a mono downmix (channels averaged first), and after keeping only centre-panned "
             f"content (magnitude max(|M| - |S|, 0), mid's phase); mono files are unchanged. "
             f"Figures: P(song | music) at the model's threshold. Full numbers: the .json beside "
             f"this file.", ""]
    for name, r in results.items():
        if "as_is" not in r:
            lines += [f"## {name} ({r['items']} excerpts, all {r['failed']} failed)", ""]
            continue
        ways = r.get("ways", [w for w in WAYS if w in r])
        arrow = " → ".join(WAY_NAMES[w] for w in ways)
        lines += [f"## {name} ({r['items']} excerpts, {r['failed']} failed)", "",
                  "| | ROC-AUC | songs found | score called song |", "|---|---:|---:|---:|"]
        for w in ways:
            d = r[w]
            auc = "–" if d["roc_auc"] is None else f"{d['roc_auc']:.3f}"
            lines.append(f"| {WAY_NAMES[w]} | {auc} | {d['songs_found']} / {d['songs']} | "
                         f"{d['score_called_song']} / {d['score']} |")
        lines += ["", f"| source | label | n | channels | median P(song \\| music): {arrow} | "
                  f"called song: {arrow} | median voiced share: {arrow} |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for g in r["groups"]:
            lines.append(f"| {g['group']} | {g['label']} | {g['n']} | {g['channels']} | "
                         + " → ".join(f"{g[w]['median']:.3f}" for w in ways) + " | "
                         + " → ".join(str(g[w]["called_song"]) for w in ways) + " | "
                         + " → ".join(f"{g[w]['voiced_median']:.2f}" for w in ways) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    from joblib import Parallel, delayed

    from scoresong.model import load_model

    ap = argparse.ArgumentParser(prog="python -m corpus.diagnose_centre",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("sets", type=Path, nargs="*", help="folders with a manifest.csv")
    ap.add_argument("--centre-copy", type=Path, nargs=2, metavar=("MANIFEST", "OUT"),
                    help="write OUT/manifest.csv with MANIFEST's stereo excerpts centre-only")
    ap.add_argument("--model", default=None, help="model JSON (default: the shipped model)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("-o", "--out", type=Path, default=None, help="report stem (.md and .json)")
    a = ap.parse_args(argv)
    if a.centre_copy and a.sets:
        ap.error("--centre-copy writes a training copy; score sets in a separate run")
    if a.centre_copy:
        dest, counts = centre_copy(*a.centre_copy, jobs=a.jobs)
        print(dest)
        for status, n in sorted(counts.items()):
            print(f"{n:6d}  {status}")
        return 0
    if not a.sets:
        ap.error("give at least one SET folder (or --centre-copy)")
    model = load_model(a.model)
    results = {}
    for folder in a.sets:
        manifest = folder / "manifest.csv"
        if not manifest.is_file():
            print(f"no manifest at {manifest}", file=sys.stderr)
            return 2
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        scores = Parallel(n_jobs=a.jobs)(
            delayed(score_item)(folder / r["path"], *excerpt_span(r), model=a.model) for r in rows)
        name = folder.name if folder.name not in results else str(folder)
        results[name] = summarise(rows, scores, float(model.threshold))
    text = render(results, model.version)
    print(text)
    if a.out:
        a.out.with_name(a.out.name + ".md").write_text(text + "\n", encoding="utf-8")
        a.out.with_name(a.out.name + ".json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
