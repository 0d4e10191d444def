"""A second external set of real *score* (instrumental) recordings, for false alarms on score.

    python -m corpus.external_score OUT_DIR [--debs DIR ...]

What it is for: measuring how often a model calls real instrumental game/film music
``song`` (false alarms) on packages that neither train the model (:mod:`corpus.sources`)
nor belong to the first external set (:mod:`corpus.external`). Every row is label ``score``;
there are no songs here, so the set measures the false-alarm rate (and the share called
``no_music``), not recall.

How the labels were decided (nobody listened): the second Debian search of
``corpus/real_song_search.md`` (section "Second round (2026-12-06, stop 26)") checked each
package's copyright file, credits, the files' own tags (Vorbis comments) and centre-only
spectrograms (|mid| - 1.5|side|) of 1-5 windows per package, and found no singer, vocalist
or lyrics credited anywhere and no vocal contour in the windows looked at. Only the packages
that table labels ``score`` with confidence medium or higher are used. Left out: powermanga-data
(low confidence), wordwarvi-sound (mono, low), lomiri-sounds (ringtones), and the four
packages of that table that are training sources (ufoai-music, singularity-music,
hyperrogue-music, planetblupi-music-ogg; see :data:`LEFT_OUT`). Kind ``score_rock_real`` marks
the tracks whose genre tag names rock or metal (widelands' "Thrash Metal" ingame_15-17);
the rest are ``score_real``.

Each package is downloaded with ``apt-get download`` unless its ``.deb`` is in ``OUT_DIR/debs``
or a ``--debs`` folder (linked, not copied), and only its music (plus its copyright file) is
unpacked (``dpkg-deb --fsys-tarfile | tar -x``) under ``OUT_DIR/pkgs/PACKAGE``; 0ad-data's
music is taken out of ``public.zip`` (which is then deleted, 3.3 GB).

Excerpts (:func:`excerpt_starts`, :func:`pick_files`): 20-s windows; files shorter than 25 s
are skipped; at most 2 evenly spaced windows per file, inside its middle 80 % (the first and
last 10 % are skipped); at most 24 excerpts per package, from files picked evenly across the
package's files sorted by path. ``OUT_DIR/manifest.csv`` has the columns of
:data:`corpus.external.FIELDS`; ``path`` is relative to OUT_DIR (read relative to the
manifest's folder by :func:`scoresong.dataset.read_corpus`); ``group`` is the
Debian package. Downloads and extractions are reused when present. Audio is never committed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import subprocess
import zipfile
from pathlib import Path

import soundfile as sf

from corpus.external import CLIP_S, download, globs_of, log, matching_files, write_set

#: Files shorter than this are skipped (the middle 80 % must hold one 20-s window).
MIN_FILE_S = 25.0
#: Share of each file skipped at its start and at its end.
EDGE = 0.10
#: Most excerpts per file, and per package.
PER_FILE = 2
PER_PACKAGE = 24

#: Packages of the second-round table deliberately not used, and why.
LEFT_OUT = {
    "ufoai-music": "training source (corpus.sources)",
    "singularity-music": "training source (corpus.sources)",
    "hyperrogue-music": "training source (corpus.sources)",
    "planetblupi-music-ogg": "training source (corpus.sources)",
    "powermanga-data": "low confidence (dense mix, no tags)",
    "wordwarvi-sound": "mono files, low confidence",
    "lomiri-sounds": "ringtones, 8-38 s",
}

_STK = "usr/share/games/supertuxkart/data/music/"
_WL = "usr/share/games/widelands/data/music/"
_RE = "usr/share/games/redeclipse/data/sounds/"
_MG = "usr/share/games/megaglest/"
_FC = "usr/share/games/freecol/"

#: The sources, one per package. Keys: package, glob (relative to the unpacked package, or
#: to the unpacked ``archive`` when given), label, kind, licence, author, evidence, confidence;
#: optional: archive (a zip inside the package), exclude (regex on the path), kind_by_stem.
SOURCES: list[dict] = [
    # Track music only: the *_fast / farm_f variants (sped-up copies, named by the .music
    # files' fast-filename) are skipped; nolok_speech (spoken) lives under data/tracks.
    dict(package="supertuxkart-data", glob=_STK + "*.ogg", exclude=r"(_fast|_f)\.ogg$",
         label="score", kind="score_real",
         licence="per file in debian/copyright, mostly CC-BY-SA-3.0 (also CC-BY-SA-4.0, GPL)",
         author="STK composers (0zone0ne, Krobonil/Chris Leutwyler, Max Freeman, DJ Helium, "
                "Claude Werner, Weirwood, Kalsan, Heuchi1, Speedsound, ...)",
         confidence="high",
         evidence=".music files give title and composer only; genre tags Psychedelic/"
                  "Electronic/Soundtrack; no vocal credit; 13 centre-only spectrograms "
                  "show no vocal contour"),
    dict(package="0ad-data", archive="usr/share/games/0ad/mods/public/public.zip",
         glob="audio/music/*.ogg", label="score", kind="score_real",
         licence="CC-BY-SA-3.0 (art/audio, package level)",
         author="Omri Lahav, Allan Brown, Sam Gossner, Boris Hansen",
         confidence="high",
         evidence="credits (gui/credits/texts/audio.json) list composers and instrumentalists, "
                  "no singer; 8 centre-only spectrograms show instrument notes"),
    # Widelands ingame_15-17: MiddleFinger "Widelands_01-03", GENRE=Thrash Metal.
    dict(package="widelands-data", glob=_WL + "*.ogg", label="score", kind="score_real",
         kind_by_stem={"ingame_15": "score_rock_real", "ingame_16": "score_rock_real",
                       "ingame_17": "score_rock_real"},
         licence="GPL-2+ / CC-BY-SA-3.0 (ingame_24-26, Stuart Marshall)",
         author="Widelands composers (Barry van Oudtshoorn, MiddleFinger, Joshua O'Leary, "
                "Stuart Marshall, Klaus Halfmann, ...)",
         confidence="medium-high",
         evidence="tags (Soundtrack, LMMS, folk, Thrash Metal); 'Silkweaver Song' is a synth "
                  "instrumental; 5 centre-only spectrograms show no vocal contour"),
    dict(package="naev-data", glob="usr/share/naev/dat/snd/music/*.ogg", label="score",
         kind="score_real",
         licence="GPL-2+ (Vega Strike), GPL-3 or CC-BY-3.0 (Nikola Whallon), CC-BY-3.0 "
                 "(Zeropage), CC-BY-SA-3.0 (Askyel), ... (per file, debian/copyright)",
         author="Ken Seguro, Nikola Whallon, Askyel, Zeropage, Matthew Pablo, ONE ABE, ...",
         confidence="medium",
         evidence="tags: Vega Strike Soundtrack, Naev Soundtrack GENRE=Electronic, Ambient "
                  "Pills, VGM; 2 centre-only spectrograms instrumental"),
    # Faction and menu music; the tileset sounds are ambience and are not used.
    dict(package="megaglest-data",
         glob=[_MG + "data/core/menu/music/menu_music.ogg",
               _MG + "techs/megapack/factions/*/music/*.ogg"],
         label="score", kind="score_real", licence="CC-BY-SA-3.0 (data, package level)",
         author="MegaGlest / Glest composers (Eliminator, ...)", confidence="medium",
         evidence="romans GENRE=Classical, few tags otherwise; 2 centre-only spectrograms "
                  "show plucked/percussive lines"),
    dict(package="redeclipse-data",
         glob=[_RE + "music/track_*.ogg", _RE + "theme.ogg", _RE + "original.ogg",
               _RE + "theme_chip.ogg"],
         label="score", kind="score_real",
         licence="CC-BY-SA-3.0 (track_*.ogg, Derek 'JoJo' Stegall); CC-BY-SA-3.0+ / "
                 "Red-Eclipse licence (Files: *)",
         author="Derek 'JoJo' Stegall; Quinton Reeves", confidence="medium",
         evidence="theme_chip GENRE=Chiptune; 2 centre-only spectrograms: instrumental "
                  "rock/electronic"),
    dict(package="freecol",
         glob=[_FC + "default/resources/music/default/*.ogg",
               _FC + "base/resources/sound/intro.ogg"],
         label="score", kind="score_real",
         licence="CC-BY-4.0 (music/default/*, Zhelanov and Grenborgen); GPL-2+ (Files: *, "
                 "intro.ogg)",
         author="Alexander Zhelanov, Stian Grenborgen; Ivica Ico Bukvic (intro)",
         confidence="medium",
         evidence="composer credits only; 2 centre-only spectrograms show no vocal contour"),
    # Themes only (wind_ambient.ogg is mono ambience, GENRE=Ambient).
    dict(package="flare-game", glob="usr/share/games/flare/mods/fantasycore/music/*_theme.ogg",
         label="score", kind="score_real", licence="CC-BY-SA-3.0+ (package level)",
         author="Flare contributors (Clint Bellanger and others)", confidence="medium",
         evidence="fantasy RPG themes; 1 centre-only spectrogram shows flat instrument notes"),
    dict(package="freeorion-data",
         glob="usr/share/games/freeorion/default/data/sound/artificial_intelligence_v3.ogg",
         label="score", kind="score_real", licence="GPL-2 / CC-BY-SA-3.0 (package)",
         author="Kenneth Welch", confidence="medium",
         evidence="tags: album Free Orion, GENRE=Soundtrack; spectrogram: pads"),
    dict(package="torcs-data", glob="usr/share/games/torcs/data/music/*.ogg", label="score",
         kind="score_real", licence="GPL-2+ (package)", author="Bernhard Wymann",
         confidence="medium", evidence="tags: TORCS1, Bernhard Wymann; spectrogram: synth lines"),
]


# ----------------------------------------------------------------------------- selection
def excerpt_starts(dur: float) -> list[float]:
    """Starts of the 20-s excerpts of a file of ``dur`` seconds.

    None below :data:`MIN_FILE_S`. The first and last :data:`EDGE` of the file are skipped;
    the middle part is cut into ``n`` equal parts (``n`` = 2 when it holds two disjoint
    windows, i.e. 0.8 * dur >= 40 s, else 1) and each window is centred in its part.
    """
    if dur < MIN_FILE_S:
        return []
    lo, hi = EDGE * dur, (1 - EDGE) * dur
    n = max(1, min(PER_FILE, int((hi - lo) // CLIP_S)))
    part = (hi - lo) / n
    return [round(min(max(lo, lo + (i + 0.5) * part - CLIP_S / 2), hi - CLIP_S), 2)
            for i in range(n)]


def even_pick(n: int, k: int) -> list[int]:
    """``k`` indices of ``range(n)`` spread evenly (all of them when ``k >= n``)."""
    if k >= n:
        return list(range(n))
    return [int((i + 0.5) * n / k) for i in range(k)]


def pick_files(counts: list[int], cap: int = PER_PACKAGE) -> list[int]:
    """Indices of the files to use, given each file's excerpt count (files sorted by path).

    The most files, spread evenly across the list (:func:`even_pick`), whose excerpts add
    up to at most ``cap``; files with no excerpt are not counted.
    """
    usable = [i for i, c in enumerate(counts) if c > 0]
    for k in range(len(usable), 0, -1):
        chosen = [usable[j] for j in even_pick(len(usable), k)]
        if sum(counts[i] for i in chosen) <= cap:
            return chosen
    return []


# ----------------------------------------------------------------------------- fetching
def _link_deb(pkg: str, debs: Path, extra: list[Path]) -> None:
    """Link a ``.deb`` of ``pkg`` from a ``--debs`` folder into ``debs`` (none there yet)."""
    debs.mkdir(parents=True, exist_ok=True)
    if list(debs.glob(f"{pkg}_*.deb")):
        return
    for d in extra:
        found = sorted(Path(d).glob(f"{pkg}_*.deb"))
        if found:
            (debs / found[-1].name).symlink_to(found[-1].resolve())
            return


def fetch(src: dict, out: Path, extra_debs: list[Path], problems: list) -> tuple[Path, str] | None:
    """Download (unless present) ``src``'s package and unpack only the files it names.

    Returns (root, version), or None (and a problem) when that failed.
    """
    pkg = src["package"]
    try:
        _link_deb(pkg, out / "debs", extra_debs)
        deb, version = download(pkg, out / "debs")
    except subprocess.CalledProcessError as exc:
        problems.append(f"{pkg}: download failed: {exc.stderr}")
        return None
    root = out / "pkgs" / pkg
    pats = [src["archive"]] if "archive" in src else globs_of(src)
    pats = ["./" + p for p in pats] + [f"./usr/share/doc/{pkg}/copyright"]
    stamp = version + "\n" + "\n".join(pats)
    marker = root / ".extracted"
    if not marker.exists() or marker.read_text() != stamp:
        log(f"unpacking {deb.name} (music only) ...")
        root.mkdir(parents=True, exist_ok=True)
        dd = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
        tar = subprocess.run(["tar", "-x", "-C", str(root), "--wildcards", *pats], stdin=dd.stdout,
                             capture_output=True, text=True)
        dd.stdout.close()
        if dd.wait() != 0 or tar.returncode not in (0, 2):  # 2: a pattern matched nothing
            problems.append(f"{pkg}: unpacking failed: {tar.stderr.strip()}")
            return None
        for line in tar.stderr.splitlines():
            if "Not found in archive" in line:
                problems.append(f"{pkg}: {line.strip()}")
        marker.write_text(stamp)
    return root, version


def source_files(src: dict, root: Path, problems: list) -> list[Path]:
    """The audio files ``src`` names (sorted by path), zip members unpacked when needed."""
    base = root
    if "archive" in src:
        base = root / "_archive" / Path(src["archive"]).name
        marker = base / ".extracted"
        if not marker.exists():
            try:
                with zipfile.ZipFile(root / src["archive"]) as z:
                    members = [m for m in z.namelist()
                               if any(fnmatch.fnmatch(m, g) for g in globs_of(src))]
                    z.extractall(base, members)
                marker.write_text("ok")
                (root / src["archive"]).unlink()  # 0ad's public.zip is 3.3 GB; music is kept
            except (OSError, zipfile.BadZipFile) as exc:
                problems.append(f"{src['package']}: archive {src['archive']} unreadable: {exc}")
                return []
    return matching_files(src, base)


# ----------------------------------------------------------------------------- build
def build(out: Path, extra_debs: list[Path] = ()) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows, problems, versions, files_used = [], [], {}, {}
    for src in SOURCES:
        pkg = src["package"]
        got = fetch(src, out, list(extra_debs), problems)
        if got is None:
            continue
        root, version = got
        versions[pkg] = version
        files = source_files(src, root, problems)
        if not files:
            problems.append(f"{pkg}: no file matches {src['glob']}")
        info = []
        for f in files:
            try:
                i = sf.info(str(f))
            except RuntimeError as exc:
                problems.append(f"{f}: unreadable ({exc})")
                continue
            info.append((f, i.duration, i.channels))
        starts = [excerpt_starts(d) for _, d, _ in info]
        chosen = pick_files([len(s) for s in starts])
        files_used[pkg] = {"files": len(info), "long_enough": sum(1 for s in starts if s),
                           "used": len(chosen),
                           "channels": sorted({info[i][2] for i in chosen})}
        for i in chosen:
            f, dur, ch = info[i]
            kind = src.get("kind_by_stem", {}).get(f.stem, src["kind"])
            detail = (f"confidence={src['confidence']}; {src['evidence']}; "
                      f"file {dur:.1f} s, {ch} ch")
            for s in starts[i]:
                rows.append(dict(path=str(f.relative_to(out)), label=src["label"], kind=kind,
                                 source_package=pkg, version=version, author=src["author"],
                                 licence=src["licence"], group=pkg, start_s=s,
                                 duration_s=CLIP_S, detail=detail))
    write_set(out, rows, problems, packages=versions, files_per_package=files_used, left_out=LEFT_OUT)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.external_score",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder (downloads and unpacked music go here)")
    ap.add_argument("--debs", type=Path, action="append", default=[],
                    help="folder of already downloaded .deb files to link instead of "
                         "downloading (repeatable)")
    a = ap.parse_args(argv)
    rows = build(a.out, a.debs)
    print(json.dumps(json.loads((a.out / "summary.json").read_text()), indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
