"""A held-out singing generator for testing only: Festival's singing mode (issue 11).

    python -m corpus.festival_eval OUT_DIR [--external EXT_DIR]

Every song of the training corpus has its lead vocal made by one of five generators (WORLD
speech-to-singing v1 and v2, Sinsy, cut-up rap, the hedgewars ``Singer``; see
``corpus/README.md``). A model can learn those generators' habits instead of "a voice
singing words", and the leave-one-generator-out table only rotates among the five. This
module makes a sixth generator that was **never used for training nor for any choice** (no
feature, threshold or hyper-parameter was picked by looking at it), so it is a test set only:
nothing here may be fed back into ``corpus.build``, the feature set or the threshold.

The generator is the singing mode of the Festival speech synthesiser (Debian ``festival``,
``lib/singing-mode.scm``, Mazzoni 2001 / Zamazal 2006): an XML score gives every word its
note(s) and beats; Festival's own front end (lexicon, letter-to-sound) finds the syllables,
stretches the vowels to the note lengths and sets the F0 targets of its diphone voices to the
notes. That is a different kind of synthesis (diphone concatenation with residual-excited LPC)
from every training generator.

Voices (Debian bookworm): ``kal_diphone`` (``festvox-kallpc16k``, male, US English),
``ked_diphone`` (``festvox-kdlpc16k``, male, US English) and ``lp_diphone``
(``festvox-italp16k``, female, Italian, singing Italian lyrics). The HTS voice
``festvox-us-slt-hts`` (female US English) was tried and left out: it ignores singing mode's
durations and F0 targets (Daisy Bell came out in 12.4 s instead of 19.2 s, with pitches no
closer to the notes than chance), so it speaks rather than sings. ``festvox-rablpc16k`` is
not in bookworm.

What is written (labels by the project's policy; see ``corpus/README.md``):

- ``song_festival`` (song): a sung line (8-18 s of lyrics on a melody) over a 20-s excerpt of
  a real instrumental backing, at a vocal-to-accompaniment ratio drawn from
  {-6, -3, 0, +3, +6} dB;
- ``song_festival_acappella`` (song): sung lines alone;
- ``score_speech_festival`` (score): the same voice *speaking* the same lyrics
  (Festival's ordinary text-to-speech) over the same backing excerpt at the same ratio;
- ``score_real_backing`` (score): that backing excerpt alone.

Melodies: the airs of Aird's *Selection of Scottish, English, Irish and Foreign Airs*
(1782-1797, book 1, in music21's corpus; no training generator uses them), one syllable per
note, transposed into the voice's range, at 2.5-5 syllables a second. Lyrics: lines of
public-domain songs and poems (``LYRICS``). Backings: the score rows (``score_real``,
``score_rock_real``) of the external test set (``corpus.external``; its packages train
nothing). Production is deliberately simple and independent of ``corpus.mixing``: high-pass,
light compression, a short plate-like reverb (numpy/scipy only).

Festival and its voices are unpacked from Debian packages with ``apt-get download`` and
``dpkg-deb -x`` (no root, no installation), with the shared libraries the binary links
against. Fixed seed; a second run reuses downloads and melodies and rewrites identical audio.
Renders that fail, are empty, not finite or clipped are skipped and counted.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from scipy import signal

from corpus.mixing import rms

SEED = 20110011
SR = 22050
CLIP_S = 20.0
VAR_DB = (-6.0, -3.0, 0.0, 3.0, 6.0)
N_SONG, N_SPEECH, N_BACKING, N_ACAPPELLA = 120, 60, 60, 20
#: Default folder of the external set built by ``python -m corpus.external`` (``--external``).
EXTERNAL = Path("/work/external")
FIELDS = ["path", "label", "kind", "source_package", "version", "author", "licence", "group",
          "start_s", "duration_s", "detail", "var_db", "voice"]

#: Festival, its lexicons and voices. ``licence`` is as each package's copyright file states
#: it; ``must_contain`` is checked in that file at build time so a changed licence is noticed.
PACKAGES = {
    "festival": dict(licence="X11-style (CSTR/Edinburgh, free use and distribution)",
                     author="Alan W Black, Paul Taylor, Richard Caley (CSTR)",
                     must_contain="Permission is hereby granted"),
    "festlex-cmu": dict(licence="X11-style (CSTR); CMU dictionary", author="CSTR / CMU",
                        must_contain="Permission is hereby granted"),
    "festlex-poslex": dict(licence="X11-style (CSTR)", author="CSTR",
                           must_contain="Permission is hereby granted"),
    "festlex-ifd": dict(licence="GPL-2+", author="IFM Development Team (ISTC-SPFD CNR, ITC-irst)",
                        must_contain="GNU General Public License"),
    "festvox-kallpc16k": dict(licence="X11-style (free use and distribution, keep notice)",
                              author="Alan W Black, Kevin Lenzo",
                              must_contain="Permission is hereby granted"),
    "festvox-kdlpc16k": dict(licence="X11-style (free use and distribution, keep notice)",
                             author="CSTR, University of Edinburgh",
                             must_contain="Permission is hereby granted"),
    "festvox-italp16k": dict(licence="GPL-2+", author="IFM Development Team (Piero Cosi et al.)",
                             must_contain="GNU General Public License"),
}

#: Shared libraries the festival binary links against that a bare machine may lack
#: (unpacked next to it and put on LD_LIBRARY_PATH of the festival process only).
RUNTIME_LIBS = ["libestools2.5", "libpulse0", "libsndfile1", "libasyncns0", "libflac12",
                "libmp3lame0", "libmpg123-0", "libogg0", "libopus0", "libvorbis0a",
                "libvorbisenc2"]

#: Voices: Festival name -> package, lyrics language, melody centre (MIDI), description.
VOICES = {
    "kal_diphone": dict(package="festvox-kallpc16k", language="en", centre=51,
                        desc="male, US English, diphone"),
    "ked_diphone": dict(package="festvox-kdlpc16k", language="en", centre=53,
                        desc="male, US English, diphone"),
    "lp_diphone": dict(package="festvox-italp16k", language="it", centre=64,
                       desc="female, Italian, diphone"),
}

#: Public-domain lyric lines (lower case, no punctuation: one token per word).
LYRICS = {
    "en": [
        "drink to me only with thine eyes",            # Ben Jonson, 1616
        "and i will pledge with mine",
        "or leave a kiss but in the cup",
        "and i will not look for wine",
        "my love is like a red red rose",              # Robert Burns, 1794
        "that is newly sprung in june",
        "early one morning just as the sun was rising",  # traditional
        "i heard a maid sing in the valley below",
        "oh shenandoah i long to see you",             # traditional
        "away you rolling river",
        "the water is wide i cannot get over",         # traditional
        "and neither have i wings to fly",
        "give me a boat that can carry two",
        "and both shall row my love and i",
        "twinkle twinkle little star",                 # Jane Taylor, 1806
        "how i wonder what you are",
        "up above the world so high",
        "like a diamond in the sky",
        "should old acquaintance be forgot",           # Robert Burns, 1788
        "and never brought to mind",
        "mid pleasures and palaces though we may roam",  # J. H. Payne, 1823
        "be it ever so humble there is no place like home",
        "i dream of jeanie with the light brown hair",  # Stephen Foster, 1854
        "borne like a vapor on the summer air",
        "amazing grace how sweet the sound",           # John Newton, 1779
        "i once was lost but now am found",
        "alas my love you do me wrong",                # Greensleeves, 16th century
        "to cast me off so cruelly",
        "beautiful dreamer wake unto me",              # Stephen Foster, 1864
        "starlight and dewdrops are waiting for thee",
        "way down upon the river far far away",        # Stephen Foster, 1851
        "oh susanna oh do not cry for me",             # Stephen Foster, 1848
        "i come from alabama with a banjo on my knee",
        "sweet and low sweet and low",                 # Alfred Tennyson, 1850
        "wind of the western sea",
        "row row row your boat gently down the stream",  # 1852
        "merrily merrily merrily merrily life is but a dream",
        "the summer time is coming",                   # Robert Tannahill, c. 1800
        "and the trees are sweetly blooming",
        "will you go lassie go",
    ],
    "it": [
        "nel mezzo del cammin di nostra vita",         # Dante, Inferno I
        "mi ritrovai per una selva oscura",
        "che la diritta via era smarrita",
        "tanto gentile e tanto onesta pare",           # Dante, Vita nuova
        "la donna mia quando altrui saluta",
        "chiare fresche e dolci acque",                # Petrarca, Canzoniere 126
        "ove le belle membra pose colei",
        "che sola a me par donna",
        "sul mare luccica",                            # Santa Lucia, Cottrau 1849
        "santa lucia santa lucia",
        "la donna mobile qual piuma al vento",         # Piave, 1851
        "muta di accento e di pensiero",
        "amor che move il sole e le altre stelle",     # Dante, Paradiso XXXIII
        "che bella cosa una giornata di sole",         # after Capurro, 1898
        "funiculi funicula",                           # Turco, 1880
        "la notte bella e il cielo sereno",
        "vieni sul mare vieni a vogar",                # traditional
        "dolce la sera sulla laguna",
    ],
}


def log(msg: str) -> None:
    """Print a progress message on stderr."""
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- packages

def unpack(pkg: str, work: Path) -> str:
    """Download ``pkg`` (unless present) and unpack it into ``work/root``.

    Parameters
    ----------
    pkg : str
        Debian package name.
    work : Path
        Work folder; ``.deb`` files go to ``work/debs``, contents to ``work/root``.

    Returns
    -------
    str
        The package's version.
    """
    from corpus.external import download

    deb, version = download(pkg, work / "debs")
    marker = work / "root" / ".unpacked" / pkg
    if not marker.exists() or marker.read_text() != version:
        (work / "root").mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "root")], check=True,
                       capture_output=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(version)
    return version


def fetch_all(work: Path) -> dict[str, dict]:
    """Unpack Festival, its voices and runtime libraries; check each licence.

    Returns
    -------
    dict
        ``{package: {version, licence, author}}`` for the packages in ``PACKAGES``.

    Raises
    ------
    RuntimeError
        If a copyright file is missing or no longer states the recorded licence.
    """
    for lib in RUNTIME_LIBS:
        unpack(lib, work)
    info = {}
    for pkg, meta in PACKAGES.items():
        version = unpack(pkg, work)
        cfile = work / "root" / "usr/share/doc" / pkg / "copyright"
        text = cfile.read_text(errors="replace") if cfile.exists() else ""
        if meta["must_contain"] not in text:
            raise RuntimeError(f"{pkg}: copyright file lacks {meta['must_contain']!r}; "
                               "check its licence before using it")
        info[pkg] = dict(version=version, licence=meta["licence"], author=meta["author"])
    return info


class Festival:
    """The unpacked festival binary, run as one batch process per render.

    Parameters
    ----------
    root : Path
        Where the packages were unpacked (``work/root``).
    """

    def __init__(self, root: Path):
        self.root = root
        self.lib = root / "usr/share/festival"
        self.dtd = root / "usr/share/sgml/festival"
        libdir = root / "usr/lib/x86_64-linux-gnu"
        self.env = dict(os.environ, LD_LIBRARY_PATH=f"{libdir}:{libdir / 'pulseaudio'}")

    def run(self, scheme: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a Scheme program in batch mode; returns the completed process."""
        with tempfile.NamedTemporaryFile("w", suffix=".scm", delete=False) as f:
            f.write(scheme)
        try:
            return subprocess.run([str(self.root / "usr/bin/festival"), "--libdir", str(self.lib),
                                   "--datadir", str(self.lib), "-b", f.name], env=self.env,
                                  capture_output=True, text=True, timeout=timeout)
        finally:
            os.unlink(f.name)

    def prelude(self, voice: str) -> str:
        """Scheme that registers the singing DTDs (the binary looks under /usr) and a voice."""
        return (f'(gc-status nil)\n(require (quote singing-mode))\n'
                f'(xml_register_id "-//SINGING//DTD SINGING mark up//EN" "{self.dtd}/Singing.v0_1.dtd")\n'
                f'(xml_register_id "-//SINGING//ENTITIES Added Latin 1 for SINGING//EN" '
                f'"{self.dtd}/sable-latin.ent")\n(voice_{voice})\n')

    def syllables(self, voice: str, words: list[str]) -> dict[str, int]:
        """Syllable count of each word as the voice's lexicon (or letter-to-sound) has it."""
        lst = " ".join(f'"{w}"' for w in words)
        p = self.run(self.prelude(voice) +
                     f'(mapcar (lambda (w) (format t "SYL %s %d\\n" w '
                     f'(length (car (cddr (lex.lookup w nil)))))) (list {lst}))\n')
        out = {}
        for line in p.stdout.splitlines():
            if line.startswith("SYL "):
                _, w, n = line.split()
                out[w] = int(n)
        return out

    def render(self, voice: str, src: Path, mode: str, parts: Path) -> tuple[np.ndarray, int]:
        """Synthesise ``src`` (singing XML with ``mode="singing"``, else plain text).

        Every utterance is saved as ``parts/NNN.wav`` and the parts are joined.

        Returns
        -------
        (ndarray, int)
            The waveform (float64, mono) and its sample rate; an empty array if festival
            wrote nothing or failed (the Italian voice sometimes crashes with SIGSEGV).
        """
        parts.mkdir(parents=True, exist_ok=True)
        for old in parts.glob("*.wav"):
            old.unlink()
        tmode = "'singing" if mode == "singing" else "nil"
        p = self.run(self.prelude(voice) +
                     '(defvar fest_n 0)\n(define (fest_save utt)\n'
                     f'  (utt.save.wave utt (format nil "{parts}/%03d.wav" fest_n) (quote riff))\n'
                     '  (set! fest_n (+ fest_n 1)))\n(set! tts_hooks (list utt.synth fest_save))\n'
                     f'(tts_file "{src}" {tmode})\n')
        got = [sf.read(w, dtype="float64") for w in sorted(parts.glob("*.wav"))]
        if p.returncode != 0 or "SIOD ERROR" in p.stderr + p.stdout or not got:
            log(f"festival failed on {src} (exit {p.returncode}): {p.stderr.strip()[-200:]}")
            return np.zeros(0), 16000
        return np.concatenate([y if y.ndim == 1 else y.mean(axis=1) for y, _ in got]), got[0][1]


# --------------------------------------------------------------------------- melodies

def air_melodies(cache: Path, min_notes: int = 24) -> list[dict]:
    """Melodies of Aird's airs (music21 corpus, ``airdsAirs/book1.abc``), cached as JSON.

    Returns
    -------
    list of dict
        ``{"title", "notes"}`` with notes as ``[midi or None (rest), quarters]``; ties are
        merged, grace notes and chords dropped.
    """
    if cache.exists():
        return json.loads(cache.read_text())
    from music21 import corpus

    tunes = []
    for score in corpus.parse("airdsAirs/book1.abc").scores:
        notes = []
        for el in score.flatten().notesAndRests:
            q = float(el.quarterLength)
            if q <= 0 or el.isChord:
                continue
            m = None if el.isRest else int(el.pitch.midi)
            if notes and m is not None and notes[-1][0] == m and notes[-1][2]:
                notes[-1][1] += q
            else:
                notes.append([m, q, False])
            notes[-1][2] = (not el.isRest and el.tie is not None
                            and el.tie.type in ("start", "continue"))
        notes = [[m, q] for m, q, _ in notes]
        pitched = [m for m, _ in notes if m is not None]
        if len(pitched) >= min_notes and max(pitched) - min(pitched) <= 19:
            tunes.append({"title": str(score.metadata.title or "").strip(" ."), "notes": notes})
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(tunes))
    return tunes


def note_name(midi: int) -> str:
    """Festival's note name: octave = midi // 12 (its "A5" is 440 Hz, MIDI 69)."""
    return ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"][midi % 12] + str(midi // 12)


@dataclass
class Song:
    """A planned sung line: words with their notes, and rests.

    ``events`` holds ``(word, [[(midi, quarters), ...] per syllable])`` or
    ``(None, quarters)`` for a rest; ``quarter_s`` is the real length of a quarter note.
    """

    events: list
    quarter_s: float
    lines: list[str]
    tune: str
    transpose: int
    syl_rate: float = 0.0
    info: dict = field(default_factory=dict)

    def seconds(self) -> float:
        """Length of the line as written (rests included)."""
        q = 0.0
        for word, notes in self.events:
            q += notes if word is None else sum(d for syl in notes for _, d in syl)
        return q * self.quarter_s


def plan_song(rng: np.random.Generator, tune: dict, lyrics: list[str], counts: dict[str, int],
              centre: int, max_s: float = 18.5) -> Song:
    """Put lyric lines on a tune, one syllable per note, at a pop-like syllable rate.

    Lines follow each other from a random lyric line until 8-18 s are filled. A rest of the
    tune stays a rest; each line ends on a lengthened note (a quarter at least), 25% of the
    time a two-note melisma; a line is followed by a rest of 1-2 quarters.

    Parameters
    ----------
    rng : numpy.random.Generator
    tune : dict
        From :func:`air_melodies`.
    lyrics : list of str
        Lyric lines of the voice's language.
    counts : dict
        Syllables per word (from :meth:`Festival.syllables`).
    centre : int
        MIDI note the melody's median is moved to (±2 semitones drawn).
    max_s : float
        A line that would take the song past this length is left out (the first one stays).
    """
    notes = tune["notes"]
    pitched = [m for m, _ in notes if m is not None]
    mean_q = float(np.mean([q for m, q in notes if m is not None]))
    rate = float(rng.uniform(2.5, 5.0))
    quarter_s = float(np.clip(1.0 / (rate * mean_q), 0.3, 1.0))
    shift = int(round(centre - np.median(pitched))) + int(rng.integers(-2, 3))
    target = float(rng.uniform(8.0, 18.0))
    song = Song([], quarter_s, [], tune["title"], shift)
    k = int(rng.integers(len(notes)))
    li = int(rng.integers(len(lyrics)))
    while song.seconds() < target:
        line = lyrics[li % len(lyrics)]
        li += 1
        before = (len(song.events), k)
        words = line.split()
        for wi, word in enumerate(words):
            syls = []
            for si in range(counts[word]):
                while notes[k % len(notes)][0] is None:       # the tune's rests stay rests
                    song.events.append((None, notes[k % len(notes)][1]))
                    k += 1
                m, q = notes[k % len(notes)]
                k += 1
                syl = [(m + shift, q)]
                last = wi == len(words) - 1 and si == counts[word] - 1
                if last:
                    if rng.random() < 0.25 and notes[k % len(notes)][0] is not None:
                        syl.append((notes[k % len(notes)][0] + shift, max(1.0, notes[k % len(notes)][1])))
                        k += 1
                    else:
                        syl[0] = (syl[0][0], max(q, 1.0 + 0.5 * int(rng.integers(0, 3))))
                syls.append(syl)
            song.events.append((word, syls))
        song.events.append((None, float(rng.choice([1.0, 1.5, 2.0]))))
        if song.seconds() > max_s and song.lines:      # too long: end before this line
            del song.events[before[0]:]
            break
        song.lines.append(line)
    n_syl = sum(len(s) for w, s in song.events if w is not None)
    sung_s = song.seconds() - sum(q for w, q in song.events if w is None) * quarter_s
    song.syl_rate = n_syl / max(sung_s, 1e-6)
    return song


def song_xml(song: Song) -> str:
    """Festival singing-mode XML for ``song``.

    Singing mode turns beats into seconds with ``bpm / 50`` beats a second (not 60;
    ``singing-mode.scm``), so BPM is written as ``50 / quarter_s`` for quarter-note beats.
    """
    out = ['<?xml version="1.0"?>',
           '<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>',
           f'<SINGING BPM="{50.0 / song.quarter_s:.3f}">']
    for word, notes in song.events:
        if word is None:
            out.append(f'<REST BEATS="{notes:.3f}"></REST>')
            continue
        beats = ",".join("+".join(f"{d:.3f}" for _, d in syl) for syl in notes)
        pitch = ",".join("+".join(note_name(m) for m, _ in syl) for syl in notes)
        out.append(f'<DURATION BEATS="{beats}"><PITCH NOTE="{pitch}">{word}</PITCH></DURATION>')
    out.append("</SINGING>")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- audio

def render_problem(y: np.ndarray, sr: int) -> str | None:
    """Why a render is unusable (empty, not finite, silent, clipped), or None if it is fine."""
    if y.size < 0.5 * sr:
        return "empty (festival failed)"
    if not np.all(np.isfinite(y)):
        return "not finite"
    peak = float(np.max(np.abs(y)))
    if peak < 1e-3:
        return "silent"
    if np.mean(np.abs(y) >= 0.999) > 1e-4:
        return "clipped"
    return None


def to_sr(y: np.ndarray, sr: int) -> np.ndarray:
    """Resample to the clip rate ``SR`` (soxr, high quality)."""
    return y if sr == SR else soxr.resample(y, sr, SR, quality="HQ")


def active_mask(y: np.ndarray, floor_db: float = 35.0, hop: int = 512) -> np.ndarray:
    """Samples whose 512-sample frame is within ``floor_db`` of the loudest frame."""
    n = int(np.ceil(y.size / hop))
    frames = np.pad(y, (0, n * hop - y.size)).reshape(n, hop)
    db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    return np.repeat(db > db.max() - floor_db, hop)[:y.size]


def compress(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Light compression: 2-3:1 above a threshold 8-14 dB under the loudest (30-ms RMS detector)."""
    a = np.exp(-1 / (0.030 * SR))
    env = np.sqrt(np.maximum(signal.lfilter([1 - a], [1, -a], y ** 2), 0.0))
    db = 20 * np.log10(env + 1e-9)
    thr = db.max() - float(rng.uniform(8, 14))
    ratio = float(rng.uniform(2.0, 3.0))
    gain_db = np.where(db > thr, (thr - db) * (1 - 1 / ratio), 0.0)
    return y * 10 ** (gain_db / 20)


def plate_ir(rng: np.random.Generator) -> np.ndarray:
    """A short plate-like impulse response: dense decaying noise, bright, RT60 0.6-1.3 s."""
    rt60 = float(rng.uniform(0.6, 1.3))
    n = int(rt60 * SR)
    t = np.arange(n) / SR
    noise = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    b, a = signal.butter(1, [300 / (SR / 2), 9000 / (SR / 2)], btype="band")
    ir = signal.lfilter(b, a, noise)
    pre = int(rng.uniform(0.005, 0.02) * SR)
    return np.concatenate([np.zeros(pre), ir / np.sqrt(np.sum(ir ** 2))])


def produce(y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Simple vocal production: 90 Hz high-pass, light compression, plate reverb 12-20 dB down."""
    b, a = signal.butter(2, 90 / (SR / 2), btype="high")
    dry = compress(signal.lfilter(b, a, y), rng)
    wet = signal.fftconvolve(dry, plate_ir(rng))[:dry.size]
    wet *= np.sqrt(np.mean(dry ** 2)) / (np.sqrt(np.mean(wet ** 2)) + 1e-12)
    return dry + wet * 10 ** (-float(rng.uniform(12, 20)) / 20)


def place(y: np.ndarray, n: int, offset: int) -> np.ndarray:
    """``y`` placed at sample ``offset`` in ``n`` samples of silence (cut at the end)."""
    out = np.zeros(n)
    seg = y[:max(0, n - offset)]
    out[offset:offset + seg.size] = seg
    return out


def mix_at(backing: np.ndarray, vocal: np.ndarray, var_db: float) -> np.ndarray:
    """Vocal over backing, its RMS over its active part ``var_db`` dB above the backing's RMS.

    The same definition as the training corpus (:func:`corpus.mixing.mix`, whose ``rms`` it
    uses). Scaled down only when the sum would clip. Unlike ``mix`` it stays in float64
    until :func:`write_clip` writes 16 bits, so the published set is rebuilt bit for bit
    (``mix``'s float32 result moved 61 of its 260 files by one least significant bit).
    """
    act = active_mask(vocal)
    gain = rms(backing) / rms(vocal[act]) * 10 ** (var_db / 20)
    y = backing + gain * vocal
    peak = float(np.max(np.abs(y)))
    return y / peak * 0.98 if peak > 0.98 else y


def load_excerpt(path: Path, start: float, dur: float) -> np.ndarray:
    """A mono excerpt at ``SR``, padded with silence to ``dur`` seconds."""
    with sf.SoundFile(path) as f:
        f.seek(min(int(start * f.samplerate), max(0, f.frames - 1)))
        y = f.read(int(dur * f.samplerate), dtype="float64", always_2d=True).mean(axis=1)
        sr = f.samplerate
    y = to_sr(y, sr)
    n = int(round(dur * SR))
    return np.pad(y, (0, max(0, n - y.size)))[:n]


def write_clip(out: Path, rel: str, y: np.ndarray) -> None:
    """Write a 16-bit FLAC at ``SR`` under ``out`` (peak-normalised to 0.98 if it would clip)."""
    peak = float(np.max(np.abs(y)))
    if peak > 0.98:
        y = y / peak * 0.98
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    sf.write(out / rel, y.astype(np.float32), SR, subtype="PCM_16")


# --------------------------------------------------------------------------- build

def backing_rows(rng: np.random.Generator, n: int, external: Path = EXTERNAL) -> list[dict]:
    """``n`` 20-s score excerpts of the external set, spread over its packages in turn."""
    rows = [r for r in csv.DictReader(open(external / "manifest.csv"))
            if r["kind"] in ("score_real", "score_rock_real") and float(r["duration_s"]) >= CLIP_S]
    by_pkg: dict[str, list] = {}
    for r in rows:
        by_pkg.setdefault(r["source_package"], []).append(r)
    queues = []
    for pkg in sorted(by_pkg):
        q = by_pkg[pkg]
        queues.append([q[i] for i in rng.permutation(len(q))])
    out = []
    while len(out) < n and any(queues):
        for q in queues:
            if q and len(out) < n:
                out.append(q.pop())
    return out


@dataclass
class Ctx:
    """What every item needs: output folder, festival, package info, counts of problems."""

    out: Path
    fest: Festival
    pkgs: dict
    counts: dict
    problems: Counter = field(default_factory=Counter)
    external: Path = EXTERNAL


def vocal_meta(ctx: Ctx, voice: str) -> tuple[str, str, str, str]:
    """(packages, versions, authors, licences) of a voice: festival + lexicon + voice."""
    lex = "festlex-ifd" if VOICES[voice]["language"] == "it" else "festlex-cmu"
    names = ["festival", lex, VOICES[voice]["package"]]
    p = [ctx.pkgs[n] for n in names]
    return (" ".join(names), " ".join(x["version"] for x in p),
            "; ".join(x["author"] for x in p[1:]), "; ".join(x["licence"] for x in p))


def render_pair(ctx: Ctx, i: int, voice: str, song: Song) -> tuple | None:
    """Sing ``song`` and speak its lyrics with ``voice``; None (counted) if either fails."""
    work = ctx.out / "work" / f"{i:03d}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "song.xml").write_text(song_xml(song))
    (work / "speech.txt").write_text(". ".join(song.lines) + ".\n")
    sung, sr1 = ctx.fest.render(voice, work / "song.xml", "singing", work / "sung")
    spoken, sr2 = ctx.fest.render(voice, work / "speech.txt", "text", work / "spoken")
    for what, y, sr in (("sung", sung, sr1), ("spoken", spoken, sr2)):
        why = render_problem(y, sr)
        if why:
            ctx.problems[f"{what} render {why}"] += 1
            log(f"item {i}: {what} render {why}; skipped")
            return None
    return to_sr(sung, sr1), to_sr(spoken, sr2)


def build(out: Path, external: Path = EXTERNAL) -> list[dict]:
    """Render, mix and write every clip over ``external``'s instrumentals; returns the rows."""
    rng = np.random.default_rng(SEED)
    work = out / "work"
    ctx = Ctx(out, Festival(work / "root"), fetch_all(work), {}, external=external)
    for voice, v in VOICES.items():
        words = sorted({w for line in LYRICS[v["language"]] for w in line.split()})
        ctx.counts[voice] = ctx.fest.syllables(voice, words)
        missing = [w for w in words if w not in ctx.counts[voice]]
        if missing:
            raise RuntimeError(f"{voice}: no syllable count for {missing}")
    tunes = air_melodies(work / "airs_book1.json")
    backings = backing_rows(rng, N_SONG + 20, external)
    voices = list(VOICES)
    rows, n_song, n_speech, n_back, n_acap = [], 0, 0, 0, 0
    for i, brow in enumerate(backings):
        if n_song >= N_SONG:
            break
        irng = np.random.default_rng([SEED, i])
        voice = voices[i % len(voices)]
        v = VOICES[voice]
        song = plan_song(irng, tunes[int(irng.integers(len(tunes)))], LYRICS[v["language"]],
                         ctx.counts[voice], v["centre"])
        got = render_pair(ctx, i, voice, song)
        if got is None:
            continue
        sung, spoken = got
        rows += write_item(ctx, i, irng, voice, song, brow, sung, spoken,
                           speech=n_speech < N_SPEECH, backing=n_back < N_BACKING,
                           acappella=n_acap < N_ACAPPELLA and n_song % 6 == 0)
        n_song += 1
        n_speech, n_back, n_acap = (sum(r["kind"] == k for r in rows) for k in (
            "score_speech_festival", "score_real_backing", "song_festival_acappella"))
    if n_song < N_SONG:
        ctx.problems["songs short of target"] = N_SONG - n_song
    (out / "problems.json").write_text(json.dumps(dict(ctx.problems), indent=1) + "\n")
    return rows


def write_item(ctx: Ctx, i: int, rng: np.random.Generator, voice: str, song: Song, brow: dict,
               sung: np.ndarray, spoken: np.ndarray, *, speech: bool, backing: bool,
               acappella: bool) -> list[dict]:
    """Write one item's clips (song mix; optionally speech mix, backing alone, a cappella)."""
    n = int(CLIP_S * SR)
    back = load_excerpt(ctx.external / brow["path"], float(brow["start_s"]), CLIP_S)
    var_db = float(rng.choice(VAR_DB))
    offset = int(rng.uniform(0.3, max(0.4, CLIP_S - sung.size / SR - 0.3)) * SR)
    vp, vv, va, vl = vocal_meta(ctx, voice)
    bpkg = brow["source_package"]
    melody = (f"{song.tune!r} (Aird's airs book 1) {song.transpose:+d} st, "
              f"{60 / song.quarter_s:.0f} bpm, {song.syl_rate:.1f} syl/s")
    lyrics = " / ".join(song.lines)
    base = dict(author=f"{va} + {brow['author']}", group=bpkg, start_s=0, duration_s=CLIP_S,
                voice=voice)
    src = f"{bpkg} {brow['path']} @ {float(brow['start_s']):.2f} s"
    rows = []

    def row(kind, label, y, detail, mixed=True, db=""):
        rel = f"gen/{kind}/{i:03d}_{voice}.flac"
        write_clip(ctx.out, rel, y)
        pk = f"{vp} + {bpkg}" if mixed else vp
        ver = f"{vv} + {brow['version']}" if mixed else vv
        lic = f"{vl} + {brow['licence']}" if mixed else vl
        r = dict(base, path=rel, label=label, kind=kind, source_package=pk, version=ver,
                 licence=lic, detail=detail, var_db=db)
        if not mixed:
            r.update(author=va, group=VOICES[voice]["package"])
        if kind == "score_real_backing":
            r.update(source_package=bpkg, version=brow["version"], licence=brow["licence"],
                     author=brow["author"], voice="")
        rows.append(r)

    vocal = produce(place(sung, n, offset), rng)
    row("song_festival", "song", mix_at(back, vocal, var_db),
        f"Festival singing mode, {voice} ({VOICES[voice]['desc']}), melody {melody}; "
        f"lyrics: {lyrics}; over {src}; VAR {var_db:+.0f} dB; high-pass, compression, plate",
        db=var_db)
    if speech:
        talk = produce(place(spoken, n, offset), rng)
        row("score_speech_festival", "score", mix_at(back, talk, var_db),
            f"Festival text-to-speech, {voice}, the same lyrics spoken: {lyrics}; over {src}; "
            f"VAR {var_db:+.0f} dB; same chain", db=var_db)
    if backing:
        row("score_real_backing", "score", back, f"the backing alone: {src}")
    if acappella:
        solo = produce(sung, rng)
        row("song_festival_acappella", "song", solo,
            f"Festival singing mode, {voice}, melody {melody}; lyrics: {lyrics}; a cappella, "
            "same chain", mixed=False)
        rows[-1]["duration_s"] = round(solo.size / SR, 2)
    return rows


def write_manifest(out: Path, rows: list[dict]) -> None:
    """Write ``out/manifest.csv`` (the external set's columns plus ``var_db``, ``voice``)."""
    with open(out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)


def main(argv=None) -> int:
    """Command line: ``python -m corpus.festival_eval OUT_DIR [--external EXT_DIR]``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="output folder (audio under OUT/gen, never committed)")
    ap.add_argument("--external", type=Path, default=EXTERNAL,
                    help="folder of the external set (python -m corpus.external), whose "
                         "instrumentals are the backings (default: %(default)s)")
    args = ap.parse_args(argv)
    if not (args.external / "manifest.csv").is_file():
        ap.error(f"{args.external / 'manifest.csv'}: not found; build it with "
                 "python -m corpus.external DIR and pass --external DIR")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = build(args.out, args.external)
    write_manifest(args.out, rows)
    log(f"{len(rows)} clips: {dict(Counter(r['kind'] for r in rows))}")
    log(f"problems: {json.loads((args.out / 'problems.json').read_text())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
