"""An honest external test set: real recordings from Debian packages never used in training.

    python -m corpus.external OUT_DIR

Downloads each package below with ``apt-get download`` (no installation), unpacks it with
``dpkg-deb -x`` (GCompris' Qt ``.rcc`` resource bundles are unpacked too), and writes
``OUT_DIR/manifest.csv`` with one row per excerpt:
``path,label,kind,source_package,version,author,licence,group,start_s,duration_s,detail``.
``path`` is relative to OUT_DIR (an original file of a package, or for the Frets on Fire
stems a mix written under ``gen/``); ``start_s``/``duration_s`` mark a 20-s excerpt (a file
shorter than 20 s is one excerpt of its own length); ``group`` is the Debian package.
Downloads, extractions and mixes are reused when present. Audio is never committed.

None of these packages is a training source (see :mod:`corpus.sources`).

How the labels were decided (nobody listened; see each entry's comment): the package's
copyright file, README or credits, the files' own tags (Vorbis comments), published facts
about the artist, and a look at mid-channel and "centre-only" (|mid| - |side|) spectrograms,
where a lead voice shows as curved harmonic stacks with vibrato and syllable breaks that
the side channel lacks. Song tracks have instrumental intros, solos and outros, so for every
song the excerpt starts are given explicitly (``starts``): windows where that spectrogram
shows the voice. Files whose label stayed in doubt are left out (named in the comments).
``detail`` carries ``confidence=high|medium`` and the evidence.

Kinds: ``song_real`` (accompanied lead vocal), ``song_acappella_real`` (unaccompanied
singing; Scratch's clips are 1.7-3.5 s), ``score_real`` (instrumental recordings),
``score_rock_real`` (instrumental rock/metal).
"""

from __future__ import annotations

import argparse
import csv
import glob as globmod
import json
import re
import struct
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf

CLIP_S = 20.0
FIELDS = ["path", "label", "kind", "source_package", "version", "author", "licence", "group",
          "start_s", "duration_s", "detail"]

_MARS = "usr/share/games/marsshooter/audio/"
_GCW = "gcompris/src/activities/explore_world_music/resource/music/"
_SCRATCH = "usr/share/scratch/Media/Sounds/"

#: The sources. Keys: package, glob (relative to the unpacked package, or to the unpacked
#: ``rcc`` bundle when given), label, kind, licence (as the package's copyright file / README
#: states it), author, evidence, confidence; optional: starts ({file stem: [s, ...]}; required
#: for songs longer than 20 s), confidence_by_stem (overrides), exclude (regex on the path),
#: max_clips (evenly spaced excerpts when no starts, default 3), min_duration (s, default 5),
#: mix (stem files summed into one file).
SOURCES: list[dict] = [
    # ----------------------------------------------------------------- songs (real, accompanied)
    # M.A.R.S. ships Obsidian Shell's music (CC-BY-SA-3.0 per debian/copyright). Obsidian Shell
    # is a Hungarian symphonic/gothic metal band with a female lead singer (Alexandra Urban):
    # "Elysia" (2008) sung in Hungarian, "Angelic Asylum" (2010) in English, lyrics published.
    # The files keep the album tags (ALBUM=Elysia / Angelic Asylum, TRACKNUMBER, and
    # GENRE=Female Fronted Metal on the Elysia tracks), i.e. they are the album versions. The
    # centre-only spectrograms show vibrato-laden curved harmonic stacks (sung notes) in the
    # windows below; intros, outros and solo/keyboard passages were avoided.
    # Left out: menu.ogg ("Megtort Alom", centre content mostly steady synth lines) and
    # 09_wings_of_cruelty.ogg (centre content looks like stepwise keyboard riffs): in doubt.
    dict(package="marsshooter-data", glob=[_MARS + "music/*.ogg", _MARS + "tutorial.ogg"],
         exclude=r"wings_of_cruelty", label="song", kind="song_real", licence="CC-BY-SA-3.0",
         author="Obsidian Shell (lead vocal: Alexandra Urban)", confidence="high",
         # a 10-min piece whose centre-only spectrogram is the least clear of the set
         confidence_by_stem={"12_-_Misanthropia": "medium"},
         evidence="album versions by a female-fronted metal band (tags, published lyrics); "
                  "sung notes visible in the centre-only spectrogram of each window",
         starts={"01_-_Ezer_Ev": [30, 60, 100, 140, 205, 240],
                 "06_-_Elveszett_Lelkek": [15, 35, 98, 185, 210],
                 "07_-_Vermocsar": [135, 157, 195, 215],
                 "12_-_Misanthropia": [185, 205],
                 "tutorial": [62, 85, 110, 150, 185, 245],  # "Farkaskonny" (Elysia, track 10)
                 "02_orphanage": [22, 40, 100, 195, 212],
                 "03_fear": [28, 82, 100, 158, 190, 215],
                 "06_starfall": [5, 25, 80, 100, 130, 180],
                 "08_second_birth": [60, 82, 185, 205, 228, 248],
                 "10_farewell": [55, 103, 120, 152]}),
    # Performous' menu music: tags say ARTIST=Tryad, TITLE=The Final Rewind, "vocals & lyrics
    # by \//\\/", "Performous menu music (cut of original)". Sung phrases visible 28-90 s; the
    # last 35 s are instrumental and not used.
    dict(package="performous", glob="usr/share/games/performous/themes/default/menu.ogg",
         label="song", kind="song_real", licence="GPL-2+ (debian/copyright, Files: *)",
         author="Tryad (The Final Rewind)", confidence="medium",
         evidence="file tags credit vocals & lyrics; sung phrases in centre-only spectrogram",
         starts={"menu": [28, 48, 68]}),
    # GCompris "Explore world music" (sources and licences in the bundle's music/README):
    # italy.ogg is Enrico Caruso singing Handel's "Ombra mai fu" (Serse), public domain; the
    # spectrogram shows an operatic tenor (strong vibrato) from 1 s to the end.
    dict(package="gcompris-qt-data", rcc="usr/share/gcompris-qt/rcc/explore_world_music.rcc",
         glob=_GCW + "italy.ogg", label="song", kind="song_real",
         licence="public domain (restoration by Adam Cuerden; README in the bundle)",
         author="Enrico Caruso (Handel, Ombra mai fu)", confidence="high",
         evidence="README names the sung aria; tenor with vibrato throughout",
         starts={"italy": [1, 20, 38.8]}),
    # middleeast.ogg: Safiye Ayla (a Turkish singer) singing "Katibim (Uskudar'a Gider Iken)",
    # public domain (archive.org, README + title tag); sung contours throughout the 28 s.
    dict(package="gcompris-qt-data", rcc="usr/share/gcompris-qt/rcc/explore_world_music.rcc",
         glob=_GCW + "middleeast.ogg", label="song", kind="song_real",
         licence="public domain (README in the bundle)",
         author="Safiye Ayla (Katibim)", confidence="high",
         evidence="README and title tag name a singer and a song; sung contours throughout",
         starts={"middleeast": [4]}),
    # ------------------------------------------------------------------ songs (a cappella, short)
    # Scratch 1.4's "Vocals" sound library: short unaccompanied sung phrases with words (the
    # file names are the lyrics); harmonic stacks with vibrato and syllables in the spectrogram.
    # Left out: Singer1/Singer2 (one wordless held note), Oooo-badada / Doy-doy-doy (scat, no
    # words), Hey-yay-hey (interjections), Join-us (not sung), BeatBox*/Ya (not singing).
    dict(package="scratch", glob=[_SCRATCH + "Vocals/Come-and-play.mp3",
                                  _SCRATCH + "Vocals/Got-inspiration.mp3",
                                  _SCRATCH + "Vocals/Sing-me-a-song.mp3"],
         label="song", kind="song_acappella_real", licence="CC-BY-SA-3.0 (Media/*)",
         author="MIT Scratch team", confidence="high", min_duration=1.0,
         evidence="Scratch 'Vocals' library, sung phrase with words; 1.7-3.5 s long"),
    # ------------------------------------------------------------------------ score (real)
    # Frets on Fire song pack by Sectoid (Carlos Viola Iborra), "Composed and performed by
    # Sectoid": instrumental guitar metal. song.ogg (everything but the lead guitar, where a
    # singer would be) shows no voice-like contours; summed with guitar.ogg into a full mix.
    dict(package="fretsonfire-songs-sectoid",
         glob="usr/share/games/fretsonfire/data/songs/sectoid/*/song.ogg",
         mix=["song.ogg", "guitar.ogg"], label="score", kind="score_rock_real",
         licence="Expat (MIT-style, debian/copyright)", author="Sectoid (Carlos Viola Iborra)",
         confidence="medium", max_clips=4,
         evidence="guitar-game instrumentals; no singer credited; no voice in the backing stem"),
    # FreeDink's free replacements (README-REPLACEMENTS): 1.ogg = John Michel, cello (Ave
    # Maria, CC-BY-SA-3.0); 106.ogg = Fulda Symphonic Orchestra, Mendelssohn violin concerto
    # (EFF Open Audio License 1). The other music files are FluidSynth renders (not real
    # recordings); denube.ogg (a 1934 dance-orchestra record) is left out: a vocal refrain
    # could not be ruled out.
    dict(package="freedink-data", glob=["usr/share/games/dink/dink/Sound/1.ogg",
                                        "usr/share/games/dink/dink/Sound/106.ogg"],
         label="score", kind="score_real",
         licence="CC-BY-SA-3.0 (1.ogg) / EFF Open Audio License 1 (106.ogg)",
         author="John Michel (cello); Fulda Symphonic Orchestra", confidence="high",
         evidence="README-REPLACEMENTS names instrumental performances"),
    # Ren'Py demo: "Sunflower Slow Drag" performed by the United States Marine Band (tags and
    # the demo's script say so): a band instrumental.
    dict(package="renpy-demo", glob="usr/share/games/renpy/demo/game/sunflower-slow-drag.ogg",
         label="score", kind="score_real",
         licence="Expat (debian/copyright, Files: *); US Marine Band recording",
         author="United States Marine Band (Joplin/Hayden)", confidence="high",
         evidence="tags + demo script: a military band ragtime", max_clips=5),
    # GCompris world music, instrumental pieces (README in the bundle). japan.ogg (taiko with
    # shouts), mexico.ogg (mariachi anthem) and america.ogg (rock'n'roll) are left out: voice
    # could not be ruled out.
    dict(package="gcompris-qt-data", rcc="usr/share/gcompris-qt/rcc/explore_world_music.rcc",
         glob=[_GCW + "beethoven.ogg", _GCW + "ireland.ogg", _GCW + "australia.ogg",
               _GCW + "africa.ogg"],
         label="score", kind="score_real",
         licence="CC0 (beethoven, africa) / CC-BY-3.0 (ireland) / public domain (australia)",
         author="Drummyfish; peakfiddler; J. Kooistra & R. Tol; Michi Henning",
         confidence="high",
         evidence="README: Beethoven 9th 2nd mvt, fiddle reel, didgeridoo, djembe"),
    # ASC's three mp3s by Michael Kievernagel (GPL-2+): electronic game music; no vocal credit,
    # steady synth lines in the spectrogram.
    dict(package="asc-music", glob="usr/share/games/asc/music/*.mp3", label="score",
         kind="score_real", licence="GPL-2+", author="Michael Kievernagel", confidence="medium",
         evidence="game soundtrack, no vocal credit, synth lines in spectrogram"),
    # CannonSmash demo song "Dans la tristesse" by Hideaki Tanabe (EFF Open Audio License).
    dict(package="csmash-demosong", glob="usr/share/games/csmash/*.ogg", label="score",
         kind="score_real", licence="EFF Open Audio License 1.0", author="Hideaki Tanabe",
         confidence="medium", evidence="game demo music, no vocal credit, synth lines"),
    # Extreme Tux Racer music (GPL-2+; tags name the composers): instrumental game music.
    dict(package="extremetuxracer-data", glob="usr/share/games/etr/music/*.ogg", label="score",
         kind="score_real", licence="GPL-2+", author="ETR composers (J. Toscano, K. Picon, ...)",
         confidence="medium", evidence="game soundtrack, no vocal credit; credits ballad "
                                       "spectrogram shows piano-like steady notes"),
    # X-Moto music by Jens Erler / Cubulo (GPL-2+): electronic instrumentals.
    dict(package="xmoto-data", glob="usr/share/games/xmoto/Textures/Musics/*.ogg", label="score",
         kind="score_real", licence="GPL-2+", author="Jens Erler; Cubulo", confidence="medium",
         evidence="game soundtrack, no vocal credit"),
    # OpenClonk music by K-Pone (authors.txt; CC-BY-3.0): rock, house, reggae, orchestral,
    # ambient instrumentals.
    dict(package="openclonk-data", glob="usr/share/games/openclonk/Music.ocg/*.ogg",
         label="score", kind="score_real", licence="CC-BY-3.0 (Music.ocg/authors.txt)",
         author="Martin Strohmeier (K-Pone)", confidence="medium",
         evidence="game soundtrack, genre tags, no vocal credit; reggae track checked"),
    # SuperTux music (GPL-2+ per debian/copyright): chip/orchestral/electronic instrumentals.
    # voc-* (unknown meaning of the prefix), christmas_theme and halloween are left out.
    dict(package="supertux-data", glob="usr/share/games/supertux2/music/*/*.ogg",
         exclude=r"/voc-|christmas|halloween", label="score", kind="score_real",
         licence="GPL-2+ (data/music/*)", author="SuperTux composers (Wansti, J. Lavallee, ...)",
         confidence="medium", max_clips=2, min_duration=15,
         evidence="game soundtrack, tags name composers, no vocal credit"),
    # Scratch 1.4 "Music Loops" (instrumental loops for children's projects), those >= 8 s.
    dict(package="scratch", glob=_SCRATCH + "Music Loops/*.mp3", exclude=r"HumanBeatbox",
         label="score", kind="score_real", licence="CC-BY-SA-3.0 (Media/*)",
         author="MIT Scratch team", confidence="high", min_duration=8.0,
         evidence="instrumental loops (guitar, xylophone, drums, synth); beatbox excluded"),
]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def download(pkg: str, debs: Path) -> tuple[Path, str]:
    """``apt-get download`` ``pkg`` into ``debs`` unless a ``.deb`` of it is there already.

    Returns
    -------
    deb : Path
        The package file (the newest present).
    version : str
        Its version, as ``dpkg-deb`` reads it.
    """
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{pkg}_*.deb"))
    if not found:
        log(f"downloading {pkg} ...")
        subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True, capture_output=True)
        found = sorted(debs.glob(f"{pkg}_*.deb"))
    deb = found[-1]
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return deb, version


def fetch(pkg: str, out: Path) -> tuple[Path, str]:
    """Download (unless present) and unpack ``pkg`` under ``out``; returns (root, version)."""
    deb, version = download(pkg, out / "debs")
    root = out / "pkgs" / pkg
    marker = root / ".extracted"
    if not marker.exists() or marker.read_text() != version:
        log(f"unpacking {deb.name} ...")
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, capture_output=True)
        marker.write_text(version)
    return root, version


def extract_rcc(path: Path, dest: Path) -> None:
    """Unpack a Qt resource bundle (``rcc`` binary format, versions 1-3, zlib compression)."""
    d = path.read_bytes()
    if d[:4] != b"qres":
        raise ValueError(f"{path}: not a Qt resource file")
    ver, tree, data, names = struct.unpack(">IIII", d[4:20])
    node = 22 if ver >= 2 else 14

    def name(off: int) -> str:
        n = struct.unpack(">H", d[names + off:names + off + 2])[0]
        return d[names + off + 6:names + off + 6 + 2 * n].decode("utf-16-be")

    def walk(i: int, prefix: Path) -> None:
        p = tree + i * node
        noff, flags = struct.unpack(">IH", d[p:p + 6])
        here = prefix / name(noff) if i else prefix
        if flags & 2:  # directory
            count, first = struct.unpack(">II", d[p + 6:p + 14])
            for c in range(first, first + count):
                walk(c, here)
            return
        off = struct.unpack(">I", d[p + 10:p + 14])[0]
        size = struct.unpack(">I", d[data + off:data + off + 4])[0]
        blob = d[data + off + 4:data + off + 4 + size]
        if flags & 1:  # zlib, with a 4-byte uncompressed-size prefix
            blob = zlib.decompress(blob[4:])
        elif flags & 4:
            raise ValueError(f"{path}: zstd-compressed entry {here} not supported")
        here.parent.mkdir(parents=True, exist_ok=True)
        here.write_bytes(blob)

    walk(0, dest)


def source_files(src: dict, root: Path) -> list[Path]:
    base = root
    if "rcc" in src:
        base = root / "_rcc" / Path(src["rcc"]).stem
        if not (base / ".extracted").exists():
            extract_rcc(root / src["rcc"], base)
            (base / ".extracted").write_text("ok")
    return matching_files(src, base)


def globs_of(src: dict) -> list[str]:
    """A source's ``glob``: one pattern or a list of them."""
    return src["glob"] if isinstance(src["glob"], list) else [src["glob"]]


def matching_files(src: dict, base: Path) -> list[Path]:
    """The files under ``base`` that ``src``'s globs match and its ``exclude`` does not,
    sorted by path; shared by :mod:`corpus.external_score`."""
    paths = {Path(p) for g in globs_of(src) for p in globmod.glob(str(base / g))}
    if src.get("exclude"):
        paths = {p for p in paths if not re.search(src["exclude"], str(p))}
    return sorted(paths)


def mixed(first: Path, names: list[str], out: Path, pkg: str) -> Path:
    """Sum the stems ``names`` next to ``first`` into one FLAC under ``out/gen`` (reused)."""
    dest = out / "gen" / pkg / (re.sub(r"[^A-Za-z0-9_-]+", "_", first.parent.name) + ".flac")
    if not dest.exists():
        ys = [sf.read(first.parent / n, always_2d=True) for n in names]
        sr = ys[0][1]
        if any(s != sr for _, s in ys):
            raise ValueError(f"{first.parent}: stems differ in sample rate")
        n = min(y.shape[0] for y, _ in ys)
        y = sum(y[:n] for y, _ in ys)
        y *= 0.9 / max(1e-9, float(np.max(np.abs(y))))
        dest.parent.mkdir(parents=True, exist_ok=True)
        sf.write(dest, y.astype(np.float32), sr, subtype="PCM_16")
    return dest


def excerpts(dur: float, starts: list[float] | None, max_clips: int) -> list[tuple[float, float]]:
    """(start, duration) of each excerpt: the given starts, else evenly spaced 20-s windows."""
    if dur <= CLIP_S:
        return [(0.0, round(dur, 2))]
    if starts is not None:
        return [(round(min(s, dur - CLIP_S), 2), CLIP_S) for s in starts if s < dur - 1]
    n = max(1, min(max_clips, int(dur // 30)))
    span = dur - CLIP_S
    return [(round((i + 0.5) * span / n, 2), CLIP_S) for i in range(n)]


def build(out: Path) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    rows, problems, versions = [], [], {}
    for src in SOURCES:
        pkg = src["package"]
        if pkg not in versions:
            versions[pkg] = fetch(pkg, out)
        root, version = versions[pkg]
        files = source_files(src, root)
        if not files:
            problems.append(f"{pkg}: no file matches {src['glob']}")
        for f in files:
            stem = f.parent.name if "mix" in src else f.stem
            if "mix" in src:
                f = mixed(f, src["mix"], out, pkg)
            try:
                dur = sf.info(str(f)).duration
            except RuntimeError as exc:
                problems.append(f"{f}: unreadable ({exc})")
                continue
            if dur < src.get("min_duration", 5.0):
                continue
            starts = src.get("starts", {}).get(stem) if "starts" in src else None
            if src["label"] == "song" and dur > CLIP_S and starts is None:
                problems.append(f"{f}: song without verified excerpt starts; skipped")
                continue
            conf = src.get("confidence_by_stem", {}).get(stem, src["confidence"])
            detail = f"confidence={conf}; {src['evidence']}"
            if dur < CLIP_S:
                detail += f"; short file ({dur:.1f} s)"
            for s, d in excerpts(dur, starts, src.get("max_clips", 3)):
                rows.append(dict(path=str(f.relative_to(out)), label=src["label"],
                                 kind=src["kind"], source_package=pkg, version=version,
                                 author=src["author"], licence=src["licence"], group=pkg,
                                 start_s=s, duration_s=d, detail=detail))
    tracks = {(r["label"], r["kind"], r["path"]) for r in rows}
    write_set(out, rows, problems, tracks=dict(Counter(f"{lab}/{k}" for lab, k, _ in tracks)),
              packages={p: v for p, (_, v) in versions.items()})
    return rows


def write_set(out: Path, rows: list[dict], problems: list[str], **fields) -> None:
    """Write a test set's ``manifest.csv`` and ``summary.json`` (clips per label/kind,
    ``fields``, clips per package, problems) and log its problems; shared by
    :mod:`corpus.external_score`."""
    with open(out / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    summary = {"clips": dict(Counter(f"{r['label']}/{r['kind']}" for r in rows)), **fields,
               "clips_per_package": dict(Counter(r["source_package"] for r in rows)),
               "problems": problems}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    for p in problems:
        log("problem: " + p)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.external", description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder (downloads and unpacked packages go here)")
    a = ap.parse_args(argv)
    rows = build(a.out)
    print(json.dumps(json.loads((a.out / "summary.json").read_text()), indent=1))
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
