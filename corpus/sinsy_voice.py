"""Sung lines from a statistical singing synthesiser trained on a real singer (Sinsy).

How it works
------------
1. **Melodies** are real song melodies from music21's bundled corpus: the Essen folk-song
   collection (about 8,500 German, Chinese, Lorraine, Luxembourg, Irish, ... folk songs; each
   ABC line of a tune is one phrase of the original EsAC encoding) and the soprano lines of
   Bach chorales (phrases end at fermatas). They are extracted once, filtered (4-16 notes, a
   range of at most an octave) and cached as JSON (``~/.cache/scoresong-corpus/``, or
   ``$SCORESONG_CORPUS_CACHE``); later calls read the cache.
2. **Score**: consecutive phrases of one tune are chained (then another tune), transposed so
   their median lands on the centre of the backing's scale notes, snapped to that scale and
   re-timed to the backing's tempo: the tune's most common note value becomes 1/2-4 eighths,
   chosen so that the syllable rate is pop-like (over 400 lines: median 3.5 syllables/s of
   sung time, 5-95 % 2.7-4.6, held phrase ends included); phrase ends are sometimes held,
   phrase rests are 1-3 eighths. Each note gets one random Japanese CV syllable (kana); about
   one note in 14 is a melisma (the previous vowel carried onto a new pitch: the kana
   long-vowel mark, slurred), notes crossing a barline are tied. The part starts and ends
   with a rest. It is written as MusicXML by hand (4/4 measures, sixteenth grid, tempo).
3. **Render**: pysinsy (the Sinsy HMM singing synthesiser, HTS engine) with its bundled voice
   ``nitech_jp_song070_f001``, a statistical model of a real Japanese female singer. Output:
   48 kHz, float64 at int16 scale. One Sinsy instance per process.
4. **Unstable bursts**: the engine's MLSA synthesis filter is sometimes unstable for a few
   frames: the signal grows exponentially (|x| up to 1e11 and beyond; 1e24 seen) for
   30-100 ms and decays again, typically from the onset of an unvoiced plosive (k, t, p);
   rarer, one syllable comes out 20-30 dB too loud. Deterministic: the same score gives the
   same bursts. Measured on 64 lines of 15-19.5 s made by ``sung_line``: 6 renders had one
   burst each (30-166 ms including ramps), all repaired by WORLD interpolation, no re-render
   or drop needed; 1 of 12 four-second lines had one. (Hand-written test phrases of quarter
   notes around F4 burst far more often, at almost every k/t/p.) Every render is checked
   (non-finite samples, |x| > 1.5 * 32768, or a 1-ms peak more than 6x over the render's
   95th-percentile level, each only when 20 dB over the surrounding +-150 ms, so a loud vowel
   does not count); each burst is extended over its exponential ramps, silenced at
   48 kHz before resampling, and then **repaired with WORLD**: the render (resampled to
   ``sr``) is analysed (DIO + StoneMask, CheapTrick, D4C), F0 / spectral envelope /
   aperiodicity of the frames touched by the burst are interpolated across it from the clean
   frames on both sides, and the result is resynthesised and spliced in with short
   crossfades. If a burst is too long to interpolate (> 250 ms) the line is re-rendered at a
   slightly different tempo (up to twice); if that fails too, the phrase holding the burst is
   dropped (silenced, mask off). What happened is counted in the returned dict.
5. **Voice identities** (``voice_variants()``): one singer model, several voices. Each name
   encodes a register offset (semitones from the model's own register, MIDI ~65) and a
   formant factor: ``f001-12st_fw0.84`` sings an octave lower with the spectral envelope's
   frequency axis compressed by 0.84 (a male-like voice). Sinsy always renders in the model's
   own register (the score is transposed into it); the WORLD vocoder then moves F0 to the
   requested notes and warps the envelope. A voice at its own register with factor 1 (plain
   ``f001``) is Sinsy's output untouched (apart from burst repairs).
   ``voice_centre(voice)`` is the MIDI centre to build ``notes`` around.
6. Resampled to ``sr`` with soxr, placed with a 0.3-2 s lead-in, cut to ``target_s``, peak
   normalised to 0.5. The active mask covers each sung phrase from its first to its last
   audible sample (Sinsy starts each note's audio at its score onset).

Speed (one core, shared): a 15-19.5 s line takes 1.3-1.8 s in the model's own register
(Sinsy renders at ~0.1x real time) and 2.3-4 s when WORLD shifts pitch / warps formants.
The first call of a process adds ~0.5 s (Sinsy and the voice); the very first call on a
machine also extracts the melodies (~8-12 s, then cached).

Licences (record per clip)
--------------------------
- **pysinsy** (Python binding, Ryuichi Yamamoto): MIT ("MIT License, Copyright (c) 2020
  Ryuichi Yamamoto").
- **Sinsy** (bundled C++ sources, ``lib/sinsy/src/COPYING``): Modified BSD, "Copyright (c)
  2009-2015 Nagoya Institute of Technology, Department of Computer Science"; the bundled
  **hts_engine API**: Modified BSD, Nagoya Institute of Technology and Tokyo Institute of
  Technology.
- **HTS voice nitech_jp_song070_f001** (``pysinsy/htsvoice/COPYING``): "The Nitech Japanese
  Speech Database "NIT SONG070 F001" released by HTS Working Group, http://hts.sp.nitech.ac.jp/
  -- Copyright (c) 2004-2015 Nagoya Institute of Technology, Department of Computer Science.
  Some rights reserved. This work is licensed under the Creative Commons Attribution 3.0
  license." Attribution: "Nagoya Institute of Technology" (CC-BY-3.0). The generated audio
  is a work derived from this voice model.
- **music21 corpus**: music21 itself is BSD-3-Clause. Its ``corpus/license.txt``: the corpus
  is "distributed with the permission of the encoders (and, where needed, the composers or
  arrangers) and where permitted under United States copyright law. Some encodings included
  in the corpus may not be used for commercial uses or have other restrictions"; "to the
  best of our knowledge, each piece of music in the corpus is either out of copyright in the
  United States or is licensed for use". ``corpus/essenFolksong/license.txt``: "The legal
  status of the Essen folksong database is unclear, as the data has been input by many
  people"; Ewa Dahlig-Turek "has given permission for non-commercial distribution and use of
  these files in music21"; ABC encodings by Seymour Schlien. The melodies themselves are
  traditional folk songs (public domain); the Bach chorale melodies are public domain
  (J. S. Bach, d. 1750; encodings distributed with music21). Only pitch contours and
  relative rhythms of phrases are used (re-timed, transposed, snapped to another key), and
  no encoding is redistributed. ``MELODY_LICENCE`` holds a one-line summary per source.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

GEN_FS = 48000            # Sinsy's output rate
NATIVE_CENTRE = 65.0      # MIDI centre of the f001 model's comfortable register (F4)
MELODY_FORMAT = 1         # bump when the extraction changes (invalidates the JSON cache)
PEAK = 0.5

SINSY_LICENCE = ("pysinsy MIT; Sinsy and hts_engine Modified BSD (Nagoya Institute of "
                 "Technology); voice nitech_jp_song070_f001 CC-BY-3.0 (Nagoya Institute of "
                 "Technology)")
MELODY_LICENCE = {
    "essenFolksong": "traditional folk melody (public domain); Essen encoding via music21, "
                     "non-commercial permission (E. Dahlig-Turek, S. Schlien)",
    "bach": "J. S. Bach chorale melody (public domain); encoding via music21 corpus",
}

# Common CV kana (weights roughly like Japanese lyrics: more vowels/k/t/n/m/r than rare ones).
_KANA_GROUPS = (("あいうえお", 3.0), ("かきくけこさしすせそたちつてとなにぬねのはひふへほ"
                                     "まみむめもやゆよらりるれろわ", 2.0),
                ("がぎぐげござじずぜぞだでどばびぶべぼ", 0.7), ("ぱぴぷぺぽ", 0.3), ("ん", 0.8))
KANA = [k for ks, _ in _KANA_GROUPS for k in ks]
_KANA_W = np.array([w for ks, w in _KANA_GROUPS for _ in ks], float)
_KANA_W /= _KANA_W.sum()
MACRON = "ー"             # long-vowel mark: the previous vowel continues on this note

# (register offset in semitones from NATIVE_CENTRE, formant factor); stable order.
_VOICES: dict[str, tuple[int, float]] = {
    "f001": (0, 1.00),
    "f001+2st_fw1.08": (2, 1.08),
    "f001-3st_fw0.95": (-3, 0.95),
    "f001-5st_fw0.90": (-5, 0.90),
    "f001-9st_fw0.88": (-9, 0.88),
    "f001-12st_fw0.84": (-12, 0.84),
    "f001-12st_fw0.90": (-12, 0.90),
    "f001-14st_fw0.80": (-14, 0.80),
}
_VOICE_RE = re.compile(r"^f001(?:([+-]\d+)st)?(?:_fw(\d+(?:\.\d+)?))?$")


# ----------------------------------------------------------------------------- voices
def voice_variants() -> list[str]:
    """Names of the voice identities (stable order). Each encodes register and formant warp."""
    return list(_VOICES)


def voice_params(voice: str) -> tuple[int, float]:
    """(register offset in semitones, formant factor) of a voice name.

    Names of ``voice_variants()`` and any ``f001[+-N st][_fwF]`` name are accepted.
    """
    if voice in _VOICES:
        return _VOICES[voice]
    m = _VOICE_RE.match(voice)
    if not m:
        raise ValueError(f"unknown voice {voice!r}; use one of {voice_variants()}")
    off = int(m.group(1) or 0)
    fw = float(m.group(2) or 1.0)
    if not 0.7 <= fw <= 1.3 or abs(off) > 24:
        raise ValueError(f"voice {voice!r} out of range")
    return off, fw


def voice_centre(voice: str) -> float:
    """MIDI centre of a voice's register: build ``notes`` around it (e.g. centre +- 6)."""
    return NATIVE_CENTRE + voice_params(voice)[0]


# ----------------------------------------------------------------------------- pysinsy
_SINSY = None
_PYSINSY = None


def _import_pysinsy():
    """Import pysinsy (lazily; optional dependency).

    pysinsy 0.0.5's ``__init__`` uses ``pkg_resources`` only for ``resource_filename``; where
    setuptools no longer provides it, a stand-in is put in place for the import and removed.
    """
    global _PYSINSY
    if _PYSINSY is not None:
        return _PYSINSY
    shim = False
    if importlib.util.find_spec("pkg_resources") is None:
        spec = importlib.util.find_spec("pysinsy")
        if spec is None:
            raise ImportError("pysinsy is not installed (pip install pysinsy)")
        root = list(spec.submodule_search_locations)[0]
        mod = types.ModuleType("pkg_resources")
        mod.resource_filename = lambda _pkg, name: os.path.join(root, name)
        sys.modules["pkg_resources"] = mod
        shim = True
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pysinsy
            import pysinsy.sinsy  # noqa: F401
    finally:
        if shim:
            sys.modules.pop("pkg_resources", None)
    _PYSINSY = pysinsy
    return pysinsy


def available() -> bool:
    """Whether pysinsy and music21 can be imported."""
    try:
        _import_pysinsy()
    except Exception:
        return False
    return importlib.util.find_spec("music21") is not None


def _sinsy():
    global _SINSY
    if _SINSY is None:
        ps = _import_pysinsy()
        s = ps.sinsy.Sinsy()
        if not s.setLanguages("j", ps.get_default_dic_dir()):
            raise RuntimeError("Sinsy: cannot load the Japanese dictionary")
        if not s.loadVoices(ps.get_default_htsvoice()):
            raise RuntimeError("Sinsy: cannot load the HTS voice")
        _SINSY = s
    return _SINSY


@functools.lru_cache(maxsize=1)
def versions() -> dict:
    """Package versions for the manifest."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for p in ("pysinsy", "music21"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = ""
    return out


# ----------------------------------------------------------------------------- melodies
_MELODIES: list[dict] | None = None
_ABC_NOTE = re.compile(r"([_=^]*)([A-Ga-gz])([,']*)(\d*)(-?)")
_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "H": 5, "F#": 6, "C#": 7,
           "F": -1, "Bb": -2, "Eb": -3, "Es": -3, "Ab": -4, "As": -4, "Db": -5, "Des": -5,
           "Gb": -6}
_SHARP_ORDER, _FLAT_ORDER = "FCGDAEB", "BEADGCF"
_STEP = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _key_alters(k: str) -> dict[str, int]:
    k = k.strip()
    minor = k.endswith("m") and k not in _FIFTHS
    base = k[:-1] if minor else k
    fifths = _FIFTHS.get(base, 0) - (3 if minor else 0)
    if fifths >= 0:
        return {s: 1 for s in _SHARP_ORDER[:fifths]}
    return {s: -1 for s in _FLAT_ORDER[:-fifths]}


def parse_essen_abc(text: str) -> list[dict]:
    """Tunes of an Essen ABC file (the corpus's simple ABC subset): per tune a list of phrases
    (one per body line), each a list of [midi or None for a rest, duration in quarters].

    Parsed here rather than by music21's ABC reader: all 8,500 tunes take ~3 s instead of
    ~50 ms a tune, the line (= EsAC phrase) structure is kept, and accidentals carry to the
    end of the bar as ABC specifies (music21 10.5 drops that: 5 of 45 sampled tunes differed
    from this parser, each on such a note; everything else was identical).
    """
    tunes = []
    for block in re.split(r"\n(?=X:)", text):
        head, lines = {}, []
        for ln in block.splitlines():
            ln = ln.strip()
            if not ln or ln.startswith("%"):
                continue
            if re.match(r"^[A-Za-z]:", ln):
                head.setdefault(ln[0], ln[2:].strip())
            else:
                lines.append(ln)
        if "X" not in head or not lines:
            continue
        unit = 0.25
        if "L" in head and re.match(r"^\d+/\d+$", head["L"]):
            a, b = head["L"].split("/")
            unit = 4.0 * int(a) / int(b)
        key = _key_alters(head.get("K", "C"))
        phrases, tie = [], False
        for ln in lines:
            ph: list[list] = []
            bar_acc: dict[tuple[str, int], int] = {}
            pos = 0
            while pos < len(ln):
                c = ln[pos]
                if c == "|":
                    bar_acc = {}
                    pos += 1
                    continue
                m = _ABC_NOTE.match(ln, pos)
                if not m:
                    pos += 1
                    continue
                pos = m.end()
                acc, letter, octs, num, tie_next = m.groups()
                dur = unit * (int(num) if num else 1)
                if letter == "z":
                    ph.append([None, dur])
                    tie = False
                    continue
                up = letter.upper()
                octave = 4 if letter.isupper() else 5
                octave += octs.count("'") - octs.count(",")
                if acc:
                    alt = {"_": -1, "=": 0, "^": 1}[acc[-1]] * len(acc)
                    bar_acc[(up, octave)] = alt
                else:
                    alt = bar_acc.get((up, octave), key.get(up, 0))
                midi = 12 * (octave + 1) + _STEP[up] + alt
                if tie and ph and ph[-1][0] == midi:
                    ph[-1][1] += dur
                elif tie and not ph and phrases and phrases[-1] and phrases[-1][-1][0] == midi:
                    phrases[-1][-1][1] += dur            # tie across the line end
                else:
                    ph.append([midi, dur])
                tie = bool(tie_next)
            phrases.append(ph)
        tunes.append({"x": head["X"], "title": head.get("T", ""), "phrases": phrases})
    return tunes


def _clean_phrase(ph: list) -> list | None:
    """Strip leading/trailing rests, merge rests; keep phrases a singer could sing."""
    ph = [list(e) for e in ph]
    while ph and ph[0][0] is None:
        ph.pop(0)
    while ph and ph[-1][0] is None:
        ph.pop()
    out: list[list] = []
    for e in ph:
        if e[0] is None and out and out[-1][0] is None:
            out[-1][1] += e[1]
        elif e[1] > 0:
            out.append(e)
    p = [e[0] for e in out if e[0] is not None]
    if not 4 <= len(p) <= 16 or max(p) - min(p) > 12 or len(set(p)) < 3:
        return None
    if any(e[0] is None for e in out) and sum(e[0] is None for e in out) > 2:
        return None
    return out


def _essen_melodies(per_file: int, files: list[str] | None = None) -> list[dict]:
    from music21 import corpus

    out = []
    for path in sorted(corpus.getComposer("essenFolksong"), key=str):
        name = Path(path).name
        if name.startswith("test") or name.startswith("variant"):
            continue                                   # test files and variants duplicate
        if files is not None and name not in files:
            continue
        tunes = parse_essen_abc(Path(path).read_text(encoding="latin-1"))
        got = []
        for t in tunes:
            phs = [_clean_phrase(p) for p in t["phrases"]]
            phs = [p for p in phs if p]
            if len(phs) >= 2:
                got.append({"id": f"essenFolksong/{name}#X{t['x']}", "source": "essenFolksong",
                            "title": t["title"], "phrases": phs})
        if len(got) > per_file:                        # evenly spread over the file
            idx = np.linspace(0, len(got) - 1, per_file).round().astype(int)
            got = [got[i] for i in sorted(set(idx))]
        out += got
    return out


def _bach_melodies(n: int) -> list[dict]:
    from music21 import corpus, expressions

    paths = sorted((p for p in corpus.getComposer("bach") if Path(p).name.startswith("bwv")),
                   key=str)
    if len(paths) > n:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    out = []
    for p in paths:
        try:
            s = corpus.parse(p)
            part = s.parts[0]
            phrases, cur, tie_prev = [], [], False
            for el in part.flatten().notesAndRests:
                if el.isChord:
                    continue
                d = float(el.quarterLength)
                if el.isRest:
                    cur.append([None, d])
                    tie_prev = False
                    continue
                m = int(el.pitch.midi)
                if tie_prev and cur and cur[-1][0] == m:
                    cur[-1][1] += d
                else:
                    cur.append([m, d])
                tie_prev = el.tie is not None and el.tie.type in ("start", "continue")
                if any(isinstance(e, expressions.Fermata) for e in el.expressions) and not tie_prev:
                    phrases.append(cur)
                    cur = []
            if cur:
                phrases.append(cur)
        except Exception:                               # noqa: BLE001 - skip unreadable files
            continue
        phs = [c for c in (_clean_phrase(ph) for ph in phrases) if c]
        if len(phs) >= 2:
            out.append({"id": f"bach/{Path(p).name}", "source": "bach", "title": Path(p).stem,
                        "phrases": phs})
    return out


def extract_melodies(*, essen_per_file: int = 40, bach: int = 40,
                     essen_files: list[str] | None = None) -> list[dict]:
    """Tunes from music21's corpus: dicts with ``id``, ``source``, ``title`` and ``phrases``
    (each a list of [midi or None for a rest, duration in quarters]).

    ``essen_per_file`` tunes (spread evenly) from each Essen file (or only ``essen_files``),
    the soprano lines of ``bach`` chorales (spread evenly over the corpus's bwv files).
    """
    return (_essen_melodies(essen_per_file, essen_files)
            + (_bach_melodies(bach) if bach else []))


def _cache_dir(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("SCORESONG_CORPUS_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "scoresong-corpus"


def melodies(cache_dir: str | os.PathLike | None = None) -> list[dict]:
    """The melody tunes: in memory, else from the JSON cache, else extracted (once)."""
    global _MELODIES
    if _MELODIES is not None:
        return _MELODIES
    import music21

    path = _cache_dir(cache_dir) / f"melodies-v{MELODY_FORMAT}-music21-{music21.__version__}.json"
    if path.exists():
        try:
            _MELODIES = json.loads(path.read_text(encoding="utf-8"))
            return _MELODIES
        except (OSError, ValueError):
            pass
    mel = extract_melodies()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(mel, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass
    _MELODIES = mel
    return mel


# ----------------------------------------------------------------------------- score
def _snap(p: float, notes: np.ndarray) -> float:
    """Nearest note of the scale (extended by octaves), folded into the range of ``notes``."""
    ext = np.concatenate([notes - 12, notes, notes + 12])
    q = float(ext[np.argmin(np.abs(ext - p))])
    lo, hi = notes.min(), notes.max()
    while q > hi + 1e-6 and q - 12 >= lo - 1e-6:
        q -= 12
    while q < lo - 1e-6 and q + 12 <= hi + 1e-6:
        q += 12
    if q > hi or q < lo:
        q = float(notes[np.argmin(np.abs(notes - q))])
    return q


def _unit(tune: dict) -> float:
    """The tune's most common note value (quarters)."""
    d = [round(e[1], 3) for ph in tune["phrases"] for e in ph if e[0] is not None]
    vals, counts = np.unique(d, return_counts=True)
    return float(vals[np.argmax(counts)])


def plan_line(notes: np.ndarray, eighth_s: float, target_s: float, rng: np.random.Generator,
              tunes: list[dict]) -> dict:
    """The score of a line: events (midi|None, sixteenths, lyric) and phrase spans.

    Returns ``events`` (list of [midi or None, n16, lyric or None]), ``phrases`` (list of
    (first event, last event + 1, tune id)), ``tunes`` used, ``transpositions``, the
    syllable rate and the number of melismas.
    """
    notes = np.sort(np.asarray(notes, float))
    centre = float(np.median(notes))
    s16 = eighth_s / 2
    # The tune's common value becomes u eighths: the syllable rate near a pop-like target.
    rate = rng.uniform(3.5, 6.5)       # held phrase ends and rests bring the mean down
    # sixteenths per occurrence of the tune's most common value (no sixteenths at fast tempi)
    choices = np.array([1, 2, 3, 4, 6, 8]) if s16 >= 0.11 else np.array([2, 3, 4, 6, 8])
    events: list[list] = [[None, 2, None]]            # leading rest (an eighth)
    phrases: list[tuple[int, int, str]] = []
    used, transp = [], []
    n_mel = 0
    t16 = 2                                            # sixteenths so far
    limit16 = target_s / s16
    while t16 < limit16:
        tune = tunes[int(rng.integers(len(tunes)))]
        base = _unit(tune)
        qs = np.array([e[1] for ph in tune["phrases"] for e in ph if e[0] is not None])
        mean_s = qs.mean() / base * choices * s16        # mean note length for each choice
        rates = 1.0 / mean_s
        ok = (rates >= 2.8) & (rates <= 7.5)
        cost = np.abs(np.log(rates / rate)) + 10.0 * ~ok
        scale16 = choices[int(np.argmin(cost))] / base  # sixteenths per quarter of the tune
        pitches = [e[0] for ph in tune["phrases"] for e in ph if e[0] is not None]
        shift = round(centre - float(np.median(pitches)))
        used.append(tune["id"])
        transp.append(int(shift))
        start_ph = int(rng.integers(0, max(1, len(tune["phrases"]) - 1)))
        for ph in tune["phrases"][start_ph:]:
            if t16 >= limit16:
                break
            first = len(events)
            prev = None
            for k, (m, q) in enumerate(ph):
                n16 = max(1, int(round(q * scale16)))
                if m is None:
                    events.append([None, n16, None])
                    t16 += n16
                    prev = None
                    continue
                if s16 < 0.11:
                    n16 = max(2, n16)                   # no syllable shorter than ~0.2 s
                n16 = min(n16, 16)
                p = _snap(m + shift, notes)
                lyric = KANA[int(rng.choice(len(KANA), p=_KANA_W))]
                if (prev is not None and k < len(ph) - 1 and abs(p - prev) <= 3 and p != prev
                        and rng.random() < 0.18):
                    lyric = MACRON
                    n_mel += 1
                events.append([p, n16, lyric])
                t16 += n16
                prev = p
            if ph is tune["phrases"][-1] or rng.random() < 0.3:
                events[-1][1] = max(events[-1][1], int(rng.choice([4, 6, 8])))   # held end
            phrases.append((first, len(events), tune["id"]))
            rest = int(rng.integers(1, 4)) * 2          # 1-3 eighths
            events.append([None, rest, None])
            t16 += rest
    events[-1][1] = max(events[-1][1], 4)               # trailing rest
    n_syl = sum(1 for e in events if e[0] is not None and e[2] != MACRON)
    sung16 = sum(e[1] for e in events if e[0] is not None)
    return {"events": events, "phrases": phrases, "tunes": used, "transpositions": transp,
            "melismas": n_mel, "syllables": n_syl,
            "syllables_per_s": round(n_syl / max(sung16 * s16, 1e-6), 2)}


_STEPS = ["C", "C", "D", "D", "E", "F", "F", "G", "G", "A", "A", "B"]
_ALTER = [0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0]
_TYPES = {1: ("16th", 0), 2: ("eighth", 0), 3: ("eighth", 1), 4: ("quarter", 0),
          6: ("quarter", 1), 8: ("half", 0), 12: ("half", 1), 16: ("whole", 0)}


def _note_xml(midi, n16: int, lyric, tie_start: bool, tie_stop: bool,
              slur: tuple[str, ...] = ()) -> str:
    typ, dots = _TYPES.get(n16, (None, 0))
    tail = (f"<type>{typ}</type>" + "<dot/>" * dots) if typ else ""
    if midi is None:
        return f"<note><rest/><duration>{n16}</duration>{tail}</note>"
    m = int(round(midi))
    pc, octave = m % 12, m // 12 - 1
    alt = f"<alter>{_ALTER[pc]}</alter>" if _ALTER[pc] else ""
    ties = ("<tie type=\"stop\"/>" if tie_stop else "") + ("<tie type=\"start\"/>" if tie_start else "")
    tied = ("<tied type=\"stop\"/>" if tie_stop else "") + ("<tied type=\"start\"/>" if tie_start else "")
    tied += "".join(f"<slur number=\"1\" type=\"{t}\"/>" for t in slur)
    nota = f"<notations>{tied}</notations>" if tied else ""
    ly = f"<lyric><syllabic>single</syllabic><text>{lyric}</text></lyric>" if lyric else ""
    return (f"<note><pitch><step>{_STEPS[pc]}</step>{alt}<octave>{octave}</octave></pitch>"
            f"<duration>{n16}</duration>{ties}{tail}{nota}{ly}</note>")


def musicxml(events: list, bpm: float, shift: int = 0) -> str:
    """MusicXML (partwise, 4/4, divisions = 4 per quarter) of ``events``; pitches + ``shift``."""
    measures, cur, room = [], [], 16
    for i, (midi, n16, lyric) in enumerate(events):
        m = None if midi is None else midi + shift
        # a melisma (long-vowel mark) is slurred to the note before it
        nxt = events[i + 1][2] if i + 1 < len(events) else None
        slur = (("stop",) if lyric == MACRON else ()) + (("start",) if nxt == MACRON else ())
        first = True
        while n16 > 0:
            d = min(n16, room)
            n16 -= d
            cur.append(_note_xml(m, d, lyric if first else None,
                                 tie_start=m is not None and n16 > 0,
                                 tie_stop=m is not None and not first,
                                 slur=slur if first else ()))
            first = False
            room -= d
            if room == 0:
                measures.append(cur)
                cur, room = [], 16
    if cur:
        cur.append(_note_xml(None, room, None, False, False))
        measures.append(cur)
    body = []
    for i, ms in enumerate(measures):
        head = ""
        if i == 0:
            head = ("<attributes><divisions>4</divisions><key><fifths>0</fifths></key>"
                    "<time><beats>4</beats><beat-type>4</beat-type></time>"
                    "<clef><sign>G</sign><line>2</line></clef></attributes>"
                    "<direction placement=\"above\"><direction-type><metronome>"
                    f"<beat-unit>quarter</beat-unit><per-minute>{bpm:.3f}</per-minute>"
                    f"</metronome></direction-type><sound tempo=\"{bpm:.3f}\"/></direction>")
        body.append(f"<measure number=\"{i + 1}\">{head}{''.join(ms)}</measure>")
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<!DOCTYPE score-partwise PUBLIC \"-//Recordare//DTD MusicXML 3.0 Partwise//EN\" "
            "\"http://www.musicxml.org/dtds/partwise.dtd\">\n"
            "<score-partwise version=\"3.0\"><part-list><score-part id=\"P1\">"
            "<part-name>Voice</part-name></score-part></part-list>"
            f"<part id=\"P1\">{''.join(body)}</part></score-partwise>\n")


def render_musicxml(xml: str) -> np.ndarray:
    """Sinsy's rendering of a MusicXML string: float64 at int16 scale, GEN_FS."""
    s = _sinsy()
    fd, path = tempfile.mkstemp(suffix=".xml", prefix="sinsy_")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(xml)
        if not s.loadScoreFromMusicXML(path):
            raise RuntimeError("Sinsy could not read the score")
        try:
            wav, fs = s.synthesize()
        finally:
            s.clearScore()
    finally:
        os.unlink(path)
    if int(fs) != GEN_FS:
        raise RuntimeError(f"Sinsy rendered at {fs} Hz, expected {GEN_FS}")
    return np.asarray(wav, dtype=np.float64)


# ----------------------------------------------------------------------------- bursts
def find_bursts(x: np.ndarray, fs: int = GEN_FS, *, limit: float = 32768 * 1.5,
                jump: float = 0.8) -> list[tuple[int, int]]:
    """Unstable-filter bursts in an int16-scale render: (start, end) sample ranges.

    Works on the 1-ms peak level L (log10). A burst's core is where samples are non-finite or
    above ``10 * limit`` (always abnormal), or where the peak is above ``limit`` or more than
    ``10**jump`` times the render's 95th-percentile peak *and* at least 10x (20 dB) over the
    median level of the surrounding +-150 ms (so a loud but ordinary vowel is not a burst;
    Sinsy's abnormal syllables are 20-30 dB over their neighbours, its runaway bursts 60-160). The range is extended over the burst's ramps (while the level keeps falling
    away from the core, or stays 2x over that local level; at most 100 ms a side) plus 3 ms,
    and ranges closer than 10 ms are merged.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    hop = max(1, fs // 1000)
    nf = -(-n // hop)
    pad = np.zeros(nf * hop)
    a = np.abs(x)
    a[~np.isfinite(a)] = np.inf
    pad[:n] = a
    peak = pad.reshape(nf, hop).max(axis=1)
    L = np.log10(np.minimum(peak, 1e300) + 1.0)
    hard = ~np.isfinite(peak) | (peak > 10 * limit)
    ref = float(np.percentile(L[~hard], 95)) if (~hard).any() else 0.0
    cand = hard | (peak > limit) | (L > ref + jump)
    local = np.full(nf, np.inf)
    for i in np.flatnonzero(cand):                 # median level of the surrounding +-150 ms
        local[i] = np.median(L[max(0, i - 150):i + 151])
    core = hard | (cand & (L > local + 1.0))
    if not core.any():
        return []
    Ls = L.copy()
    if nf >= 3:                                    # 3-frame median against jitter
        Ls[1:-1] = np.median(np.stack([L[:-2], L[1:-1], L[2:]]), axis=0)
    d = np.diff(np.concatenate([[0], core.astype(int), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    out: list[list[int]] = []
    for s, e in zip(starts, ends):
        base = float(np.min(local[s:e]))
        if not np.isfinite(base):
            base = ref
        s0, e0 = s, e
        while s > 0 and s0 - s < 100 and Ls[s - 1] > ref - 3 and (
                Ls[s - 1] < Ls[s] - 0.02 or Ls[s - 1] > base + 0.3):
            s -= 1
        while e < nf and e - e0 < 100 and Ls[e] > ref - 3 and (
                Ls[e] < Ls[e - 1] - 0.02 or Ls[e] > base + 0.3):
            e += 1
        s, e = max(0, s - 3), min(nf, e + 3)
        if out and s - out[-1][1] < 10:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s * hop, min(n, e * hop)) for s, e in out]


def silence_bursts(x: np.ndarray, bursts: list[tuple[int, int]], fs: int = GEN_FS) -> np.ndarray:
    """Zero the burst ranges (2-ms fades at their edges); non-finite samples become 0."""
    y = np.nan_to_num(np.asarray(x, dtype=np.float64).copy(), nan=0.0, posinf=0.0, neginf=0.0)
    f = max(1, int(0.002 * fs))
    ramp = np.linspace(1, 0, f)
    for s, e in bursts:
        y[s:e] = 0.0
        a = max(0, s - f)
        y[a:s] *= ramp[f - (s - a):]
        b = min(y.size, e + f)
        y[e:b] *= ramp[::-1][:b - e]
    return y


def _interp_frames(w, bad: np.ndarray) -> int:
    """Interpolate WORLD frames marked ``bad`` from their clean neighbours (in place).

    F0: log-linear where both sides are voiced, else each half takes its side's value;
    spectral envelope: linear in log; aperiodicity: linear. Returns the number of runs.
    """
    n = bad.size
    d = np.diff(np.concatenate([[0], bad.astype(int), [0]]))
    runs = list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))
    good = np.flatnonzero(~bad)
    if good.size == 0:
        w.f0[:] = 0
        w.sp[:] = 1e-12
        w.ap[:] = 1.0
        return len(runs)
    for s, e in runs:
        left = s - 1 if s > 0 else None
        right = e if e < n else None
        li = left if left is not None else right
        ri = right if right is not None else left
        k = e - s
        t = (np.arange(1, k + 1) / (k + 1))[:, None]
        lsp = np.log(np.maximum(w.sp[[li, ri]], 1e-20))
        w.sp[s:e] = np.exp(lsp[0] * (1 - t) + lsp[1] * t)
        w.ap[s:e] = w.ap[li] * (1 - t) + w.ap[ri] * t
        fl, fr = w.f0[li], w.f0[ri]
        tt = t[:, 0]
        if fl > 0 and fr > 0:
            w.f0[s:e] = np.exp(np.log(fl) * (1 - tt) + np.log(fr) * tt)
        else:
            w.f0[s:e] = np.where(tt < 0.5, fl, fr)
    return len(runs)


def repair_bursts(y: np.ndarray, sr: int, bursts_s: list[tuple[float, float]], *,
                  margin_s: float = 0.025, context_s: float = 0.35,
                  f0_range: tuple[float, float] = (65.0, 1100.0)) -> np.ndarray:
    """Repair silenced bursts of ``y`` (at ``sr``) by WORLD interpolation across them.

    For each burst (start, end in seconds) a window with ``context_s`` of clean signal each
    side is analysed; frames within ``margin_s`` of the burst are interpolated from the clean
    frames around them; the resynthesis replaces the burst (plus margins) with 5-ms
    crossfades.
    """
    from . import singing

    y = np.asarray(y, dtype=np.float32).copy()
    n = y.size
    fr = singing.FRAME_S
    xf = max(1, int(0.005 * sr))
    for bs, be in bursts_s:
        a = max(0, int((bs - context_s) * sr))
        b = min(n, int((be + context_s) * sr))
        if b - a < int(0.05 * sr):
            continue
        seg = y[a:b].astype(np.float64)
        w = _analyse(seg, sr, f0_range)
        t = np.arange(w.n) * fr
        bad = (t >= bs - a / sr - margin_s) & (t <= be - a / sr + margin_s)
        _interp_frames(w, bad)
        z = singing.synthesize(w)
        if z.size < seg.size:
            z = np.pad(z, (0, seg.size - z.size))
        z = z[:seg.size]
        # splice [bs - margin, be + margin] with crossfades
        s0 = max(a, int((bs - margin_s) * sr))
        e0 = min(b, int((be + margin_s) * sr))
        g = np.zeros(b - a, np.float32)
        g[s0 - a:e0 - a] = 1.0
        ramp = np.linspace(0, 1, xf, dtype=np.float32)
        lo = max(0, s0 - a - xf)
        g[lo:s0 - a] = ramp[xf - (s0 - a - lo):]
        hi = min(b - a, e0 - a + xf)
        g[e0 - a:hi] = ramp[::-1][:hi - (e0 - a)]
        y[a:b] = (1 - g) * y[a:b] + g * z.astype(np.float32)
    return y


def _analyse(x: np.ndarray, fs: int, f0_range: tuple[float, float]):
    """WORLD analysis (as singing.analyse) with an F0 search range."""
    import pyworld as pw

    from . import singing

    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x, fs, f0_floor=f0_range[0], f0_ceil=f0_range[1],
                   frame_period=singing.FRAME_MS)
    f0 = pw.stonemask(x, f0, t, fs)
    sp = pw.cheaptrick(x, f0, t, fs)
    ap = pw.d4c(x, f0, t, fs)
    return singing.World(f0, sp, ap, fs)


def warp_envelope(sp: np.ndarray, factor: float) -> np.ndarray:
    """Formant warp: sp'(f) = sp(f / factor) (factor > 1 moves formants up)."""
    if abs(factor - 1.0) < 1e-6:
        return sp
    bins = sp.shape[1]
    src = np.arange(bins) / factor
    i0 = np.clip(np.floor(src).astype(int), 0, bins - 1)
    i1 = np.clip(i0 + 1, 0, bins - 1)
    f = np.clip(src - i0, 0, 1)
    ls = np.log(np.maximum(sp, 1e-20))
    out = ls[:, i0] * (1 - f) + ls[:, i1] * f
    out[:, src > bins - 1] = ls[:, -1:]                # beyond Nyquist: hold the top bin
    return np.exp(out)


# ----------------------------------------------------------------------------- the line
def _phrase_times(events: list, phrases: list, s16: float) -> list[tuple[float, float]]:
    starts = np.concatenate([[0], np.cumsum([e[1] for e in events])]) * s16
    return [(float(starts[a]), float(starts[b])) for a, b, _ in phrases]


def _active(y: np.ndarray, sr: int, spans: list[tuple[float, float]]) -> np.ndarray:
    """True from each phrase's first to its last audible sample (40 dB under the line's
    loudest 5-ms frame), searched within its score span +- 0.25 s (at most up to the middle
    of the rest to the neighbouring phrase)."""
    hop = max(1, int(0.005 * sr))
    nf = y.size // hop
    act = np.zeros(y.size, bool)
    if nf == 0:
        return act
    env = np.sqrt((y[:nf * hop].reshape(nf, hop).astype(np.float64) ** 2).mean(axis=1) + 1e-12)
    db = 20 * np.log10(env)
    thr = db.max() - 40
    spans = sorted(spans)
    for i, (s, e) in enumerate(spans):
        lo = s - 0.25 if i == 0 else max(s - 0.25, (spans[i - 1][1] + s) / 2)
        hi = e + 0.25 if i == len(spans) - 1 else min(e + 0.25, (e + spans[i + 1][0]) / 2)
        a, b = max(0, int(lo * sr / hop)), min(nf, int(hi * sr / hop))
        on = np.flatnonzero(db[a:b] > thr)
        if on.size:
            act[(a + on[0]) * hop:(a + on[-1] + 1) * hop] = True
    return act


def sung_line(notes: np.ndarray, eighth_s: float, target_s: float, rng: np.random.Generator, *,
              sr: int = 22050, voice: str = "f001") -> tuple[np.ndarray, np.ndarray, dict]:
    """A ``target_s``-second sung line by Sinsy's f001 singer on real folk/chorale melodies.

    ``notes``: MIDI numbers of the backing's scale in the singer's range (e.g.
    ``singing.scale_notes(tonic, mode, c - 6, c + 6)`` with ``c = voice_centre(voice)``);
    ``eighth_s``: the backing's eighth-note length. Returns float32 mono at ``sr`` (peak 0.5),
    a bool mask of where the voice is active (same length), and a dict of what was done.
    """
    import soxr

    from . import singing

    t_start = time.time()
    notes = np.sort(np.asarray(notes, dtype=float))
    if notes.size == 0:
        raise ValueError("notes is empty")
    offset, formant = voice_params(voice)
    tunes = melodies()
    lead_s = float(rng.uniform(0.3, 2.0))
    plan = plan_line(notes, eighth_s, max(1.0, target_s - lead_s + eighth_s), rng, tunes)
    # Render in the model's own register; WORLD moves the pitch back to the notes.
    sung = [e[0] for e in plan["events"] if e[0] is not None]
    med = float(np.median(sung)) if sung else NATIVE_CENTRE
    shift = int(round(NATIVE_CENTRE - med))
    if abs(shift) <= 2:
        shift = 0
    info: dict = {
        "generator": "sinsy_f001", "voice": voice, "register_offset_st": offset,
        "formant_factor": formant, "render_shift_st": shift,
        "tempo_bpm": round(60.0 / (2 * eighth_s), 3), "tunes": plan["tunes"],
        "transpositions": plan["transpositions"], "melismas": plan["melismas"],
        "syllables": plan["syllables"], "syllables_per_s": plan["syllables_per_s"],
        "n_phrases": len(plan["phrases"]), "bursts": 0, "burst_ms": 0.0,
        "bursts_world_repaired": 0, "rerenders": 0, "dropped_phrases": 0,
        "licence": SINSY_LICENCE,
        "melody_licence": sorted({MELODY_LICENCE[t.split("/")[0]] for t in plan["tunes"]}),
        **{f"{k}_version": v for k, v in versions().items()},
    }
    tempo_scale = 1.0
    drop: list[int] = []
    per_render = []
    for attempt in range(3):
        s16 = eighth_s / 2 * tempo_scale
        x = render_musicxml(musicxml(plan["events"], 60.0 / (4 * s16), shift))
        bursts = find_bursts(x)
        per_render.append(len(bursts))
        long = [(s, e) for s, e in bursts if (e - s) / GEN_FS > 0.25]
        if not long or attempt == 2:
            break
        info["rerenders"] += 1
        tempo_scale *= float(rng.choice([0.97, 1.03]))
    info["bursts"] = len(bursts)
    info["bursts_per_render"] = per_render
    info["burst_ms"] = round(float(sum(e - s for s, e in bursts)) / GEN_FS * 1000, 1)
    spans = _phrase_times(plan["events"], plan["phrases"], s16)
    if long:                                            # last resort: drop those phrases
        for i, (ps, pe) in enumerate(spans):
            if any(s / GEN_FS < pe + 0.2 and e / GEN_FS > ps - 0.2 for s, e in long):
                drop.append(i)
        for i in drop:
            a, b = int(max(0, spans[i][0] - 0.2) * GEN_FS), int((spans[i][1] + 0.2) * GEN_FS)
            bursts.append((a, min(x.size, b)))
        info["dropped_phrases"] = len(drop)
    x = silence_bursts(x, bursts)
    y = soxr.resample(x / 32768.0, GEN_FS, sr).astype(np.float32)
    f_lo = 440.0 * 2 ** ((notes.min() - 69 - 5) / 12)
    f_hi = 440.0 * 2 ** ((notes.max() - 69 + 5) / 12)
    repair = [(s / GEN_FS, e / GEN_FS) for s, e in bursts
              if (e - s) / GEN_FS <= 0.25 and not any(
                  spans[i][0] - 0.2 <= s / GEN_FS <= spans[i][1] + 0.2 for i in drop)]
    r_lo, r_hi = f_lo * 2 ** (shift / 12), f_hi * 2 ** (shift / 12)   # the render's range
    if shift != 0 or abs(formant - 1.0) > 1e-6:
        w = _analyse(y, sr, (max(50.0, r_lo), min(1500.0, r_hi)))
        t = np.arange(w.n) * singing.FRAME_S
        bad = np.zeros(w.n, bool)
        for s, e in repair:
            bad |= (t >= s - 0.025) & (t <= e + 0.025)
        if bad.any():
            _interp_frames(w, bad)
        info["bursts_world_repaired"] = len(repair)
        w.f0 = w.f0 * 2 ** (-shift / 12)
        w.sp = warp_envelope(w.sp, formant)
        z = singing.synthesize(w)
        y = np.pad(z, (0, max(0, y.size - z.size)))[:y.size]
    elif repair:
        y = repair_bursts(y, sr, repair, f0_range=(max(50.0, r_lo), min(1500.0, r_hi)))
        info["bursts_world_repaired"] = len(repair)
    for i in drop:
        a, b = int(max(0, spans[i][0] - 0.2) * sr), int((spans[i][1] + 0.2) * sr)
        y[a:b] = 0.0
    # Safety net: nothing burst-like may survive the repair (never seen; counted if it does).
    pk = float(np.max(np.abs(y))) if y.size else 0.0
    left = find_bursts(y * (10000.0 / pk), sr) if pk > 0 else []
    if left:
        y = silence_bursts(y, left, sr).astype(np.float32)
    info["post_silenced"] = len(left)
    info["post_silenced_at_s"] = [round(float(a) / sr, 3) for a, _ in left]
    keep = [sp for i, sp in enumerate(spans) if i not in drop]
    act = _active(y, sr, keep)
    # Place: lead-in of 0.3-2 s (the score's own leading rest is an eighth), cut at target_s.
    n = int(round(target_s * sr))
    lead = int(max(0.0, lead_s - 2 * s16) * sr)
    out = np.zeros(n, np.float32)
    mask = np.zeros(n, bool)
    m = max(0, min(y.size, n - lead))
    out[lead:lead + m] = y[:m]
    mask[lead:lead + m] = act[:m]
    fade = min(int(0.02 * sr), m)
    if lead + m == n and fade:
        out[n - fade:] *= np.linspace(1, 0, fade, dtype=np.float32)
    info["burst_at_s"] = [round(float(lead / sr + bs / GEN_FS), 3)
                          for bs, _ in bursts[:info["bursts"]] if lead / sr + bs / GEN_FS < target_s]
    pk = float(np.max(np.abs(out))) if out.size else 0.0
    if pk > 0:
        out *= PEAK / pk
    out = out.astype(np.float32)
    assert np.all(np.isfinite(out)) and float(np.max(np.abs(out), initial=0.0)) <= 1.0
    info["lead_s"] = round(lead / sr, 3)
    info["active_s"] = round(float(mask.sum()) / sr, 2)
    info["seconds"] = round(time.time() - t_start, 2)
    return out, mask, info
