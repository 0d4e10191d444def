"""A third external set: real singing shipped inside PyPI source packages (test only).

    python -m corpus.external_singing OUT_DIR [--score-set EXT2_DIR] [--per-song 6]

What it is for: song recall on real voices that no trial here has ever used, made by other
people in another way than anything in the corpus. Debian's packages hold almost no songs
(``corpus/real_song_search.md``); a third search, of PyPI and npm packages (same file,
"Third round"), found these, each in a package's source archive (``sdist``), none in a
wheel:

* **Schubert, *Winterreise*, "Gute Nacht" (D 911-1) and "Gefror'ne Tränen" (D 911-3)**,
  each in two performances: Gerhard Hüsch (baritone) and Hanns Udo Müller (piano), 1933
  (public domain; a noisy record transfer), and Randall Scarlata (baritone) and Jeremy
  Denk (piano), 2006 (CC BY 3.0, Isabella Stewart Gardner Museum; it must not be passed on
  in modified form, and nothing here passes it on). From the Schubert Winterreise Dataset
  (Weiß et al. 2020, zenodo 4122060), as shipped in ``synctoolbox`` 1.4.2's sdist (mono,
  22.05 kHz). A lead voice singing German words over piano: a song by the label policy,
  and a kind of song (classical art song, two male voices) that the corpus's generators
  do not make. Kind ``song_lied_real``.
* **Two Vocadito clips** (solo singing with lyrics, CC BY 4.0, Bittner et al. 2021,
  zenodo 5578807), as shipped in ``basic-pitch`` 0.4.0's sdist (9.1 s and 12.2 s, mono).
  Kind ``song_acappella_real``.

How the excerpts are placed (nobody listened): the same sdist carries each performance's
measure positions (``data_csv/*.csv``: the start time of every measure). Both Lieder open
with a piano introduction of six measures, and end with a piano postlude (the last four
measures are taken as postlude, plus one measure of margin). Excerpts of 20 s are spread
evenly between the start of measure 7 and the start of the measure four before the last
listed one (:func:`lied_starts`). Both songs
have short piano interludes between verses (a few measures), so an excerpt may hold some
seconds of piano alone, as excerpts of real songs do. The Vocadito clips are shorter than
20 s and are used whole.

``--score-set`` adds every row of another set's ``manifest.csv`` (the second external
score set, :mod:`corpus.external_score`: real score from packages the model never trained
on) with its paths made relative to OUT_DIR, so that the set has negatives and a ROC-AUC.

The sdists are fetched with ``pip download --no-deps --no-binary :all:`` unless present in
``OUT_DIR/sdists`` (pip prepares each sdist's metadata, which runs its build backend in a
temporary build environment; nothing is installed into the project's environment and none
of their code is imported here), checked against the SHA-256 below, and only the files used
are unpacked, under ``OUT_DIR/pkgs/DIST``.
``OUT_DIR/manifest.csv`` has the columns of :data:`corpus.external.FIELDS`. Audio is never
committed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import soundfile as sf

from corpus.external import CLIP_S, FIELDS, log, write_set
from scoresong.model import _sha256

#: Piano introduction of both Lieder (measures), and the postlude margin at the end.
INTRO_MEASURES = 6
POSTLUDE_MEASURES = 4
#: Excerpts per Lied performance (evenly spaced over the sung span).
PER_SONG = 6

_SWD = ("Schubert Winterreise Dataset (Weiss, Zalkow, Arifi-Mueller, Mueller, Koops, "
        "Grohganz, Mueller 2020; zenodo 4122060), as shipped in synctoolbox 1.4.2")
_HU33 = ("public domain (1933 recording; the SWD README: all sources other than the 2006 "
         "recording are in the public domain)")
_SC06 = ("CC BY 3.0 (the SWD dataset); the 2006 recording is published by the Isabella "
         "Stewart Gardner Museum under the same licence and must not be redistributed in "
         "modified form (it is not redistributed here)")

#: The source archives: PyPI distribution, version, file name, SHA-256.
SDISTS = {
    "synctoolbox": ("1.4.2", "synctoolbox-1.4.2.tar.gz",
                    "67e7ced88cf8474b13f0fb10c599fdbb3977e47c987be5c1d3fabb7b6b438a55"),
    "basic-pitch": ("0.4.0", "basic_pitch-0.4.0.tar.gz",
                    "6f48ac4b909c990fd59460622137a03b857c829bb1f3e65c71708da576ab68e5"),
}

#: The sources. Keys: dist (a key of :data:`SDISTS`), member (path inside the sdist),
#: measures (the member holding its measure positions; Lieder only), label, kind,
#: licence, author, group (held out together; here a performance), evidence.
SOURCES: list[dict] = [
    dict(dist="synctoolbox", member=f"synctoolbox-1.4.2/data_music/Schubert_D911-{n}_{perf}.wav",
         measures=f"synctoolbox-1.4.2/data_csv/Schubert_D911-{n}_{perf}.csv",
         label="song", kind="song_lied_real", licence=lic,
         author=f"Franz Schubert (composer); {who}; {_SWD}", group=f"swd_{perf}",
         evidence=f"'{title}': baritone singing German words over piano (dataset "
                  "description; a spectrogram look (corpus/real_song_search.md, third round) shows vibrato "
                  "vocal contours over piano notes)")
    for n, title in (("01", "Gute Nacht"), ("03", "Gefror'ne Traenen"))
    for perf, who, lic in (("HU33", "Gerhard Huesch, baritone; Hanns Udo Mueller, piano (1933)", _HU33),
                           ("SC06", "Randall Scarlata, baritone; Jeremy Denk, piano (2006)", _SC06))
] + [
    dict(dist="basic-pitch", member=f"basic_pitch-0.4.0/tests/resources/vocadito_{k}.wav",
         label="song", kind="song_acappella_real",
         licence="CC BY 4.0 (Vocadito, Bittner, Pasalo, Bosch, Meseguer-Brocal, Rubinstein "
                 "2021; zenodo 5578807), as stated in basic-pitch's NOTICE",
         author="Vocadito singers; shipped in basic-pitch 0.4.0 (Spotify, Apache-2.0)",
         group="vocadito",
         evidence="Vocadito: solo singing with lyric annotations (dataset description)")
    for k in (10, 14)
]


# ----------------------------------------------------------------------------- excerpts
def read_measures(text: str) -> list[tuple[float, float]]:
    """(start time in s, measure number) of each row of a ``start;measure`` CSV."""
    rows = []
    for line in text.splitlines()[1:]:
        if line.strip():
            t, m = line.split(";")[:2]
            rows.append((float(t), float(m)))
    return rows


def lied_starts(measures: list[tuple[float, float]], dur: float, n: int = PER_SONG) -> list[float]:
    """Starts of ``n`` 20-s excerpts spread evenly over a Lied's sung span.

    The span runs from the first measure numbered above :data:`INTRO_MEASURES` to the start
    of the measure :data:`POSTLUDE_MEASURES` before the last listed one (clipped to ``dur``).
    The excerpts' starts are evenly spaced so that the first starts at the span's start and
    the last ends at its end; where the span is shorter than ``n`` disjoint windows, fewer
    are taken (at least one, whenever the span holds 20 s).
    """
    if not measures:
        raise ValueError("no measure positions")
    after_intro = [t for t, m in measures if m > INTRO_MEASURES]
    if not after_intro:
        raise ValueError("no measure after the introduction")
    lo = after_intro[0]
    last_m = measures[-1][1]
    before_post = [t for t, m in measures if m <= last_m - POSTLUDE_MEASURES]
    hi = min(before_post[-1] if before_post else measures[-1][0], dur)
    if hi - lo < CLIP_S:
        return []
    k = max(1, min(n, int((hi - lo) // CLIP_S)))
    if k == 1:
        return [round(lo + (hi - lo - CLIP_S) / 2, 2)]
    step = (hi - lo - CLIP_S) / (k - 1)
    return [round(lo + i * step, 2) for i in range(k)]


# ----------------------------------------------------------------------------- fetching
def fetch_sdist(dist: str, out: Path) -> Path:
    """The sdist of ``dist`` (version and hash of :data:`SDISTS`) under ``out/sdists``."""
    version, name, digest = SDISTS[dist]
    dest = out / "sdists" / name
    if not dest.exists():
        log(f"downloading {dist} {version} (sdist) ...")
        dest.parent.mkdir(parents=True, exist_ok=True)
        res = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                              ":all:", "-d", str(dest.parent), f"{dist}=={version}"],
                             capture_output=True, text=True)
        if res.returncode != 0 or not dest.exists():
            raise RuntimeError(f"pip download {dist}=={version} failed (exit {res.returncode}): "
                               f"{res.stderr.strip()[-2000:]}")
    got = _sha256(dest)
    if got != digest:
        raise RuntimeError(f"{dest}: SHA-256 {got} is not the recorded {digest}")
    return dest


def unpack(archive: Path, members: list[str], dest: Path) -> None:
    """Unpack the named ``members`` of a ``.tar.gz`` under ``dest`` (kept when present)."""
    todo = [m for m in members if not (dest / m).exists()]
    if not todo:
        return
    with tarfile.open(archive) as tf:
        for m in todo:
            info = tf.getmember(m)
            if not info.isfile():
                raise ValueError(f"{archive}: {m} is not a regular file")
            target = dest / m
            target.parent.mkdir(parents=True, exist_ok=True)
            with tf.extractfile(info) as src, open(target, "wb") as fh:
                fh.write(src.read())


def build(out: Path, *, score_set: Path | None = None, per_song: int = PER_SONG) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows, problems = [], []
    for dist in sorted({s["dist"] for s in SOURCES}):
        srcs = [s for s in SOURCES if s["dist"] == dist]
        members = [s["member"] for s in srcs] + [s["measures"] for s in srcs if "measures" in s]
        unpack(fetch_sdist(dist, out), members, out / "pkgs" / dist)
    for s in SOURCES:
        root = out / "pkgs" / s["dist"]
        f = root / s["member"]
        dur = sf.info(str(f)).duration
        if "measures" in s:
            starts = lied_starts(read_measures((root / s["measures"]).read_text()), dur, per_song)
            clips = [(st, CLIP_S) for st in starts]
            detail = (f"{s['evidence']}; excerpts between measure {INTRO_MEASURES + 1} and "
                      f"{POSTLUDE_MEASURES} measures before the end (dataset measure positions)")
        else:
            clips = [(0.0, round(dur, 2))] if dur <= CLIP_S else [(0.0, CLIP_S)]
            detail = s["evidence"] + (f"; short file ({dur:.1f} s)" if dur < CLIP_S else "")
        if not clips:
            problems.append(f"{f}: no 20-s window in the sung span")
        for st, d in clips:
            rows.append(dict(path=str(f.relative_to(out)), label=s["label"], kind=s["kind"],
                             source_package=s["dist"], version=SDISTS[s["dist"]][0],
                             author=s["author"], licence=s["licence"], group=s["group"],
                             start_s=st, duration_s=d, detail=detail))
    n_songs = len(rows)
    if score_set is not None:
        with open(score_set / "manifest.csv", newline="") as fh:
            for r in csv.DictReader(fh):
                r = {k: r.get(k, "") for k in FIELDS}
                r["path"] = os.path.relpath(score_set / r["path"], out)
                rows.append(r)
    write_set(out, rows, problems, songs=n_songs,
              score_set=str(score_set) if score_set is not None else None,
              sdists={d: v[:2] for d, v in SDISTS.items()})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.external_singing",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder (downloads and unpacked files go here)")
    ap.add_argument("--score-set", type=Path, default=None,
                    help="a set whose manifest.csv rows are added as negatives (e.g. the "
                         "second external score set)")
    ap.add_argument("--per-song", type=int, default=PER_SONG,
                    help="excerpts per Lied performance (default %(default)s)")
    a = ap.parse_args(argv)
    rows = build(a.out, score_set=a.score_set, per_song=a.per_song)
    print(json.dumps(json.loads((a.out / "summary.json").read_text()), indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
