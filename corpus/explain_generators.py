"""Which evidence the shipped model uses for each singing generator's songs.

    python -m corpus.explain_generators CORPUS_DIR [--n 24] [--model models/scoresong.json]

For ``--n`` song mixes of each ``generator`` in the manifest (a fixed random draw), it runs
:func:`scoresong.explain` and averages each statistic's effect on the log-odds of song, then
prints the strongest per generator next to that statistic's median for the real singer's
songs and for the generator's songs. A top statistic on which a constructed generator sits
far from the real singer is a generator habit the model may be using (v1's vibrato on every
note is the known one); statistics shared by every generator, the real singer included, are
the evidence we want.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from scoresong import audio, extract_features, load_model
from scoresong.explanation import explain_features


def _features(corpus: Path, r: dict):
    y, sr = audio.load(corpus / r["path"], offset=float(r["start_s"] or 0),
                       duration=float(r["duration_s"]) if r["duration_s"] else None)
    return extract_features(y, sr)


def explain_generators(corpus: Path, *, n: int = 24, model=None, seed: int = 0, top: int = 6) -> dict:
    """Mean explain effect per statistic and generator, with the medians of each statistic.

    Returns
    -------
    dict
        ``{generator: {"n": int, "top": [{"feature", "effect", "median", "median_singer"}]}}``.
    """
    m = load_model(model)
    rows = [r for r in csv.DictReader(open(corpus / "manifest.csv")) if r["kind"] == "song_constructed"]
    rng = np.random.default_rng(seed)
    by_gen = defaultdict(list)
    for r in rows:
        by_gen[r.get("generator", "")].append(r)
    effects: dict[str, dict[str, list]] = {}
    values: dict[str, dict[str, list]] = {}
    for g, rs in sorted(by_gen.items()):
        pick = [rs[int(i)] for i in rng.permutation(len(rs))[:n]]
        effects[g], values[g] = defaultdict(list), defaultdict(list)
        for r in pick:
            f = _features(corpus, r)
            ex = explain_features(f.values, m, top=None, path=r["path"])
            for c in ex.contributions:
                effects[g][c.feature].append(c.effect)
                values[g][c.feature].append(c.value)
    out = {}
    for g in effects:
        mean = {k: float(np.mean(v)) for k, v in effects[g].items()}
        best = sorted(mean, key=lambda k: -abs(mean[k]))[:top]
        out[g] = {"n": len(next(iter(effects[g].values()), [])), "top": [
            {"feature": k, "effect": round(mean[k], 3),
             "median": round(float(np.median(values[g][k])), 3),
             "median_singer": round(float(np.median(values.get("singer", values[g])[k])), 3)}
            for k in best]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.explain_generators", description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    a = ap.parse_args(argv)
    res = explain_generators(a.corpus, n=a.n, model=a.model)
    for g, d in res.items():
        print(f"\n{g} (n={d['n']}): statistic, mean effect on log-odds, median here / real singer")
        for t in d["top"]:
            print(f"  {t['feature']:<36} {t['effect']:+.3f}   {t['median']:.3f} / {t['median_singer']:.3f}")
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
