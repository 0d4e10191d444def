"""Songs found against real score called song, for two views of the same files (issue 11).

    python -m corpus.view_tradeoff --songs models/external.report.predictions.csv \\
        models/external.centre.report.predictions.csv \\
        --score models/external_score.report.predictions.csv \\
        models/external_score.centre.report.predictions.csv [--group marsshooter-data] \\
        [--budgets 10 18 30 45] [--out models/view_tradeoff.md]

Each pair is the ``scoresong evaluate`` predictions of one set read with ``--view mix`` and
``--view centre`` (same rows). The real songs are the ``song`` rows of the ``--songs`` files;
the real score is every ``score`` row of all files. For each view: the ROC-AUC of P(song |
music) for songs against that score, the songs found and score called song at the model's
own threshold, and, for each budget of false songs, how many songs each view finds when its
threshold lets exactly that many score excerpts through (ties aside). The budgets compare
the two rankings where a user would operate; nothing here sets a threshold for the product.
``--group`` splits the songs found into that group and the rest.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

VIEWS = ("mix", "centre")


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(open(path)))


def collect(songs: list[list[Path]], score: list[list[Path]], group: str | None = None) -> dict:
    """Per view: song and score P(song | music), whether each song is in ``group``, and the
    model's threshold. ``songs`` / ``score``: lists of (mix file, centre file) pairs."""
    out = {}
    for k, view in enumerate(VIEWS):
        s_p, s_g, c_p, thr = [], [], [], set()
        for pair in songs + score:
            for r in _rows(pair[k]):
                thr.add(float(r["threshold"]))
                if r["label"] == "score":
                    c_p.append(float(r["p_song"]))
                elif r["label"] == "song" and pair in songs:
                    s_p.append(float(r["p_song"]))
                    s_g.append(group is not None and r.get("group") == group)
        if len(thr) != 1:
            raise ValueError(f"{view}: the files were judged at different thresholds {sorted(thr)}")
        out[view] = {"songs": np.array(s_p), "in_group": np.array(s_g, bool), "score": np.array(c_p),
                     "threshold": thr.pop()}
    return out


def tradeoff(data: dict, budgets=(10, 18, 30, 45)) -> dict:
    """The figures of the module docstring, per view."""
    from sklearn.metrics import roc_auc_score

    res = {}
    for view, d in data.items():
        s, c, g, t = d["songs"], d["score"], d["in_group"], d["threshold"]
        y = np.r_[np.ones(s.size), np.zeros(c.size)]
        row = {"songs": int(s.size), "score": int(c.size), "roc_auc": float(roc_auc_score(y, np.r_[s, c])),
               "at_threshold": {"threshold": t, "songs_found": int((s >= t).sum()),
                                "in_group": int((s[g] >= t).sum()), "score_called_song": int((c >= t).sum())},
               "budgets": {}}
        top = np.sort(c)[::-1]
        for b in budgets:
            if b > c.size:
                continue
            # Just above the (b+1)-th highest score: exactly b score excerpts pass (ties aside).
            cut = top[b] if b < c.size else -np.inf
            row["budgets"][b] = {"songs_found": int((s > cut).sum()), "in_group": int((s[g] > cut).sum()),
                                 "score_called_song": int((c > cut).sum())}
        res[view] = row
    return res


def markdown(res: dict, group: str | None) -> str:
    g = f" ({group} / others)" if group else ""
    lines = ["| view | ROC-AUC, songs vs real score | P(song \\| music) at or above the model's threshold: "
             "songs found" + g + " / score excerpts |" + "".join(f" {b} false songs: songs found{g} |"
                                             for b in res["mix"]["budgets"]), "|---|---:|---:|" +
             "---:|" * len(res["mix"]["budgets"])]
    for view, r in res.items():
        a = r["at_threshold"]
        fmt = (lambda x: f"{x['songs_found']} ({x['in_group']} / {x['songs_found'] - x['in_group']})") if group \
            else (lambda x: f"{x['songs_found']}")
        lines.append(f"| {view} | {r['roc_auc']:.3f} | {fmt(a)} of {r['songs']} / {a['score_called_song']} of "
                     f"{r['score']} |" + "".join(f" {fmt(b)} |" for b in r["budgets"].values()))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--songs", nargs=2, action="append", type=Path, required=True, metavar=("MIX", "CENTRE"))
    ap.add_argument("--score", nargs=2, action="append", type=Path, default=[], metavar=("MIX", "CENTRE"))
    ap.add_argument("--group", help="split the songs found into this group and the rest")
    ap.add_argument("--budgets", nargs="+", type=int, default=[10, 18, 30, 45])
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    res = tradeoff(collect(a.songs, a.score, a.group), a.budgets)
    text = markdown(res, a.group)
    print(text)
    if a.out:
        a.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
