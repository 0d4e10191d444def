"""Write the shipped model's training manifest: every score clip, and the songs of chosen generators.

    python -m corpus.select CORPUS_DIR --generators speech2sing_v1,sinsy,singer [-o manifest.shipped.csv] [--nomusic] [--leads]

The manifest is written next to ``manifest.csv`` (its paths stay relative to the corpus
folder). Songs of the other generators stay in the corpus for the leave-one-generator-out
evaluation (``python -m corpus.generator_eval ... --train-generators ...``), where they are
tested as generators the model never saw. ``--nomusic`` appends every row of
``manifest.nomusic.csv`` (``python -m corpus.nomusic``: the no_music class and its
score_under_speech partners), for the three-class model. ``--leads`` appends every row of
``manifest.leads.csv`` (``python -m corpus.leads``: instrument leads over the songs'
backings, score).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

#: The generators the shipped model trains on, and why the others are left out: see the
#: model card ("Which generators train the shipped model").
SHIPPED_GENERATORS = ("speech2sing_v1", "sinsy", "singer")


def select(corpus: Path, generators, *, out: str = "manifest.shipped.csv", nomusic: bool = False,
           leads: bool = False) -> Path:
    """Keep score rows and the song rows whose ``generator`` is in ``generators``; with
    ``nomusic``, add every row of ``manifest.nomusic.csv``; with ``leads``, every row of
    ``manifest.leads.csv``."""
    keep = set(generators)
    with open(corpus / "manifest.csv", newline="") as fh:
        r = csv.DictReader(fh)
        rows = [row for row in r if row["label"] != "song" or row.get("generator", "") in keep]
        fields = list(r.fieldnames)
    extra = (["manifest.nomusic.csv"] if nomusic else []) + (["manifest.leads.csv"] if leads else [])
    for name in extra:
        with open(corpus / name, newline="") as fh:
            r = csv.DictReader(fh)
            rows += list(r)
            fields += [f for f in r.fieldnames if f not in fields]
    dest = corpus / out
    with open(dest, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.select", description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--generators", default=",".join(SHIPPED_GENERATORS))
    ap.add_argument("-o", "--out", default="manifest.shipped.csv")
    ap.add_argument("--nomusic", action="store_true", help="add manifest.nomusic.csv's rows")
    ap.add_argument("--leads", action="store_true", help="add manifest.leads.csv's rows (corpus.leads)")
    a = ap.parse_args(argv)
    print(select(a.corpus, a.generators.split(","), out=a.out, nomusic=a.nomusic, leads=a.leads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
