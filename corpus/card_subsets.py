"""The model card's subset table from out-of-fold predictions (nested grouped CV).

    python -m corpus.card_subsets CORPUS_DIR models/scoresong.report.predictions.csv [OLD.csv ...]

Joins each prediction (``path``, ``start_s``) with the corpus manifest (kind, generator,
vocal-to-accompaniment ratio, backing density) and prints, for every subset the card
reports, how many items it holds and the share judged correctly at each fold's own
threshold. Further CSVs (e.g. the previous model's predictions) add columns.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np


def _key(path: str, start) -> tuple[str, float]:
    return path, round(float(start or 0.0), 2)


def read_manifest(corpus: Path) -> dict:
    rows = {}
    with open(corpus / "manifest.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            rows[_key(str(corpus / r["path"]), r["start_s"])] = r
    return rows


def read_predictions(path: Path) -> dict:
    out = {}
    with open(path, newline="") as fh:
        for r in csv.DictReader(fh):
            out[_key(r["path"], r["start_s"])] = r
    return out


def _var_band(v: str) -> str | None:
    if v in ("", None):
        return None
    x = float(v)
    for lo, hi, name in ((-12.01, -6, "−12 to −6 dB (--stereo-var-offset builds)"), (-6, -3, "−6 to −3 dB"), (-3, 0, "−3 to 0 dB"), (0, 3, "0 to +3 dB"), (3, 6.01, "+3 to +6 dB")):
        if lo <= x < hi:
            return name
    return None


def subsets(manifest: dict, preds: dict) -> dict[str, list]:
    """name -> list of keys."""
    songs_density = sorted(float(manifest[k]["density"]) for k in preds
                           if k in manifest and manifest[k]["label"] == "song" and manifest[k]["density"])
    t1, t2 = (np.percentile(songs_density, [100 / 3, 200 / 3]) if songs_density else (0, 0))
    out: dict[str, list] = {}

    def add(name, k):
        out.setdefault(name, []).append(k)

    for k in preds:
        r = manifest.get(k)
        if r is None:
            continue
        rel, kind = r["path"], r["kind"]
        if kind == "score":
            add("score: excerpts and paired backings", k)
        elif kind == "score_choir":
            if rel.startswith("gen/vocalise"):
                add("score_choir: wordless vocalise", k)
            elif rel.startswith("gen/choirpad"):
                add("score_choir: choir pads", k)
            else:
                add("score_choir: real choir tracks", k)
        elif kind == "score_rock":
            add("score_rock: instrumental rock/metal, lead guitar up", k)
        elif kind == "score_speech":
            add("score_speech: dialogue over a backing" if rel.startswith("gen/speech")
                else "score_speech: real narration over a drone", k)
        elif r["label"] == "song":
            gen = r["generator"] or ("singer" if "singer" in (r["voice"] or "").lower() else "")
            add(f"song: generator {gen or '?'}", k)
            band = _var_band(r["var_db"])
            if band:
                add(f"song at {band}", k)
            elif kind == "song_acappella":
                add("song a cappella", k)
            if r["density"]:
                d = float(r["density"])
                add("song over a " + ("sparse" if d < t1 else "mid" if d < t2 else "dense") + " backing", k)
    return out


def correct_share(preds: dict, keys: list) -> float:
    ok = [(float(preds[k]["p_song"]) >= float(preds[k]["threshold"])) == (preds[k]["label"] == "song")
          for k in keys if k in preds]
    return float(np.mean(ok)) if ok else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", type=Path)
    ap.add_argument("predictions", type=Path, nargs="+")
    a = ap.parse_args(argv)
    manifest = read_manifest(a.corpus)
    all_preds = [read_predictions(p) for p in a.predictions]
    subs = subsets(manifest, all_preds[0])
    print("| subset | n | " + " | ".join(p.name for p in a.predictions) + " |")
    print("|---|---:|" + "---:|" * len(a.predictions))
    for name in sorted(subs):
        cells = " | ".join(f"{correct_share(p, subs[name]):.3f}" for p in all_preds)
        print(f"| {name} | {len(subs[name])} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
