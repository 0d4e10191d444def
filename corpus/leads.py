"""Instrument leads over the songs' backings: hard negatives for issue 11 (score).

    python -m corpus.leads CORPUS_DIR [--share 0.5] [--jobs 2] [--seed 7] [--force]

Issue 11 asks that "lead guitar and synth leads with vibrato" stay score. The corpus's score
side had none made on purpose: its score clips are whole game tracks, its partners are a
spoken line (``score_speech``) or wordless vocalise and choir. A model can then learn "a
melody with voice-like pitch over a backing is a song" from pitch statistics alone, and call
a real flute, violin or whistle solo song (the card lists solo strings as the most common
false songs).

This module adds a **fourth partner to a share of the corpus's song triplets**: the same
backing clip (``gen/backing/STEM.flac``, the song's own 20 s), the same level
(the song's ``var_db``), the same cell, with the voice replaced by a synthesised instrument
playing a melody whose pitch behaviour is the singing generators' own:

* the melody comes from the music21 tunes that Sinsy sings
  (:func:`corpus.sinsy_voice.plan_line`: the same phrase lengths, rests, held ends and
  note rates), in the backing's key and tempo (:func:`corpus.build._key_tempo`, as for
  the songs);
* every note's pitch contour is :func:`corpus.singing.note_contour_v2` (legato transitions
  with overshoot, scoops, fine fluctuation and drift, and vibrato with the rate and extent
  measured for real singing), with an instrument's own share of vibrato notes;
* the timbre is an additive synthesis with an instrument's fixed spectral envelope
  (:data:`INSTRUMENTS`: violin, cello, flute, whistle, clarinet, trumpet, saw and square
  synth leads, overdriven guitar), an attack/decay/release per note (plucked for the
  guitar), bow or breath noise where the instrument has it, and a light reverb.

The intended difference from a voice: no syllables (no consonant noise bursts, no formant
changes within a note or from note to note), the cue issue 11 wants the model to learn.
Others remain by construction and may be learnt too: pitch ranges no voice reaches
(whistle, flute), a fixed spectral envelope, plucked or overdriven guitar notes, bow and
breath noise, and the synthetic reverb. The clips are labelled ``score``, kind ``score_lead``; their
rows go to ``CORPUS_DIR/manifest.leads.csv`` (the columns of :data:`corpus.build.FIELDS`),
which ``python -m corpus.select ... --leads`` appends to a training manifest. The synthesis
and the melodies are ours (melodies: music21's corpus, see :mod:`corpus.sinsy_voice`); each
row carries its backing's package, version, author and licence.

``--share`` is the share of song triplets (of every generator, drawn per triplet with the
seed) that get a lead partner. A clip is kept when its sidecar
(``gen/lead/.meta/STEM.json``: instrument, seed, render version) matches its unit, else
rendered again (always with ``--force``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
import zlib
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from corpus import build, mixing, nomusic, singing, sinsy_voice

GEN_SR = build.GEN_SR
CLIP_S = build.CLIP_S
#: 1: harmonics counted from the line's highest note (lower notes stopped short of 9 kHz);
#: 2: every note keeps its harmonics up to 9 kHz.
RENDER_VERSION = 2
#: Highest harmonic frequency rendered (Hz).
HARMONIC_TOP_HZ = 9000.0

#: Instruments. ``range``: MIDI range the line's centre is drawn from; ``env``: spectral
#: envelope as (Hz, dB) points (interpolated on a log-frequency axis, flat outside);
#: ``slope``: extra dB per octave above the fundamental; ``odd``: dB added to even
#: harmonics (negative: a clarinet-like odd-harmonic spectrum); ``attack`` / ``release``
#: (s); ``pluck``: decay time constant (s) of a plucked note, else sustained; ``noise``:
#: level (dB, relative to the harmonic part) of the bow/breath noise and its band;
#: ``vibrato``: range of the share of notes with vibrato; ``drive``: tanh overdrive gain
#: (then a cabinet low-pass); ``detune``: cents of a second, detuned oscillator.
INSTRUMENTS: dict[str, dict] = {
    "violin": dict(range=(64, 81), env=[(200, -20), (290, 0), (450, -4), (1000, -2), (1800, -10),
                                       (2800, -3), (4500, -14), (9000, -40)],
                   slope=-1.0, odd=0.0, attack=(0.04, 0.12), release=(0.05, 0.15), pluck=None,
                   noise=(-30, -22, 2000, 8000), vibrato=(0.6, 0.95), drive=None, detune=None),
    "cello": dict(range=(45, 62), env=[(60, -18), (110, -2), (230, 0), (600, -6), (1200, -8),
                                      (2500, -18), (6000, -40)],
                  slope=-1.0, odd=0.0, attack=(0.05, 0.15), release=(0.08, 0.2), pluck=None,
                  noise=(-32, -24, 1000, 6000), vibrato=(0.6, 0.95), drive=None, detune=None),
    "flute": dict(range=(69, 86), env=[(250, 0), (1000, -4), (2000, -16), (4000, -30), (8000, -50)],
                  slope=-3.0, odd=0.0, attack=(0.03, 0.08), release=(0.04, 0.1), pluck=None,
                  noise=(-26, -18, 1500, 9000), vibrato=(0.3, 0.7), drive=None, detune=None),
    "whistle": dict(range=(74, 90), env=[(500, 0), (2000, -20), (5000, -45)],
                    slope=-6.0, odd=0.0, attack=(0.02, 0.05), release=(0.03, 0.08), pluck=None,
                    noise=(-30, -22, 2000, 10000), vibrato=(0.2, 0.6), drive=None, detune=None),
    "clarinet": dict(range=(57, 76), env=[(150, -6), (300, 0), (1500, -6), (3000, -20), (6000, -40)],
                     slope=-1.5, odd=-14.0, attack=(0.03, 0.08), release=(0.04, 0.1), pluck=None,
                     noise=(-34, -26, 1000, 6000), vibrato=(0.0, 0.2), drive=None, detune=None),
    "trumpet": dict(range=(62, 79), env=[(200, -10), (600, -2), (1200, 0), (2500, -4), (4000, -14),
                                         (8000, -36)],
                    slope=-0.5, odd=0.0, attack=(0.02, 0.06), release=(0.04, 0.1), pluck=None,
                    noise=(-36, -28, 1500, 6000), vibrato=(0.2, 0.5), drive=None, detune=None),
    "saw_lead": dict(range=(60, 79), env=[(100, 0), (20000, 0)], slope=0.0, odd=0.0,
                     attack=(0.005, 0.03), release=(0.03, 0.12), pluck=None, noise=None,
                     vibrato=(0.2, 0.8), drive=None, detune=(5, 15), lowpass=(1500, 5000), synth=True),
    "square_lead": dict(range=(60, 79), env=[(100, 0), (20000, 0)], slope=0.0, odd=-40.0,
                        attack=(0.005, 0.03), release=(0.03, 0.12), pluck=None, noise=None,
                        vibrato=(0.2, 0.8), drive=None, detune=(3, 10), lowpass=(1200, 4000), synth=True),
    "guitar_lead": dict(range=(59, 79), env=[(80, -6), (200, 0), (2000, -3), (4000, -20), (8000, -40)],
                        slope=0.0, odd=0.0, attack=(0.003, 0.01), release=(0.03, 0.08),
                        pluck=(0.6, 1.6), noise=None, vibrato=(0.3, 0.7), drive=(3.0, 12.0),
                        detune=None, lowpass=(3000, 5000)),
}


def _env_db(inst: dict, freqs: np.ndarray) -> np.ndarray:
    """The instrument's spectral envelope (dB) at ``freqs`` (Hz)."""
    pts = np.asarray(inst["env"], float)
    return np.interp(np.log2(np.maximum(freqs, 1.0)), np.log2(pts[:, 0]), pts[:, 1])


def line_f0(events: list, eighth_s: float, rng: np.random.Generator, *, vibrato_share: float,
            sr: int = GEN_SR) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Sample-rate F0 (Hz, 0 in rests) of a planned line, the note index of each sample
    (-1 in rests) and the notes' spans (samples).

    Each note's contour is :func:`corpus.singing.note_contour_v2` (the singing generators'
    contour), legato from the previous note when no rest comes between.
    """
    s16 = eighth_s / 2
    frames, spans, pos, prev = [], [], 0, None
    for m, n16, _lyric in events:
        n = max(1, int(round(n16 * s16 / singing.FRAME_S)))
        if m is None:
            frames.append(np.zeros(n))
            prev = None
        else:
            f = singing.note_contour_v2(n, float(m), prev, rng, vibrato=bool(rng.random() < vibrato_share))
            frames.append(f)
            spans.append((pos, pos + n))
            prev = float(m)
        pos += n
    f0_frames = np.concatenate(frames) if frames else np.zeros(1)
    hop = singing.FRAME_S * sr
    n_out = int(round(len(f0_frames) * hop))
    note_of = np.full(n_out, -1, int)
    sample_spans = []
    for i, (a, b) in enumerate(spans):
        sa, sb = int(round(a * hop)), min(n_out, int(round(b * hop)))
        note_of[sa:sb] = i
        sample_spans.append((sa, sb))
    # Interpolate over frames with the rests filled from the notes around them (no glide
    # to 0 Hz at a note's edge), then silence the rests exactly.
    voiced = f0_frames > 0
    if voiced.any():
        idx = np.arange(len(f0_frames))
        filled = np.interp(idx, idx[voiced], f0_frames[voiced])
    else:
        filled = np.zeros(len(f0_frames))
    f0 = np.interp(np.arange(n_out) / hop, np.arange(len(f0_frames)), filled)
    f0[note_of < 0] = 0.0
    return f0, note_of, sample_spans


def note_envelope(spans: list[tuple[int, int]], n: int, inst: dict, rng: np.random.Generator,
                  sr: int = GEN_SR) -> np.ndarray:
    """Amplitude envelope: per note an attack, then sustain (slightly decaying) or a pluck's
    exponential decay, and a release at the note's end; accents vary by a few dB."""
    env = np.zeros(n)
    for a, b in spans:
        L = b - a
        if L <= 0:
            continue
        t = np.arange(L) / sr
        att = max(1e-3, rng.uniform(*inst["attack"]))
        rel = max(1e-3, rng.uniform(*inst["release"]))
        e = np.minimum(1.0, t / att)
        if inst.get("pluck"):
            e = e * np.exp(-t / rng.uniform(*inst["pluck"]))
        else:
            e = e * (1.0 - 0.15 * t / max(t[-1], 1e-3))
        e = e * np.clip((t[-1] - t) / rel, 0.0, 1.0) ** 0.5
        env[a:b] = np.maximum(env[a:b], e * 10 ** (rng.uniform(-4, 0) / 20))
    return env


def synthesize(f0: np.ndarray, env: np.ndarray, inst: dict, rng: np.random.Generator,
               sr: int = GEN_SR) -> np.ndarray:
    """Additive synthesis of ``f0`` with the instrument's spectral envelope, ``env`` as the
    amplitude; every sample keeps its harmonics up to :data:`HARMONIC_TOP_HZ` (and below
    0.45 ``sr``), at most 60; vectorised over samples, one harmonic at a time."""
    n = f0.size
    voiced = f0 > 0
    fmin = float(f0[voiced].min()) if voiced.any() else 440.0
    top = min(HARMONIC_TOP_HZ, 0.45 * sr)
    K = int(max(1, min(60, top // max(fmin, 1.0))))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    y = np.zeros(n)
    slope = inst["slope"]
    detune = inst.get("detune")
    det = 2 ** (rng.uniform(*detune) / 1200) if detune else None
    for k in range(1, K + 1):
        fk = k * f0
        db = _env_db(inst, fk) + slope * np.log2(k) + (inst["odd"] if k % 2 == 0 else 0.0)
        if inst.get("synth"):  # an oscillator's 1/k (saw) spectrum
            db = db - 20 * np.log10(k)
        a = np.where(fk < top, 10 ** (db / 20), 0.0)
        y += a * np.sin(k * phase)
        if det is not None:
            y += a * np.sin(k * phase * det + 1.3 * k)
    y *= env
    if inst.get("drive"):
        g = rng.uniform(*inst["drive"])
        y = np.tanh(g * y / (np.max(np.abs(y)) + 1e-9))
    if inst.get("noise"):
        lo_db, hi_db, f_lo, f_hi = inst["noise"]
        noise = _bandpass(rng.normal(0, 1, n), f_lo, f_hi, sr) * env
        rms_h = np.sqrt(np.mean(y[voiced] ** 2)) if voiced.any() else 0.0
        rms_n = np.sqrt(np.mean(noise[voiced] ** 2)) if voiced.any() else 1.0
        y = y + noise * (rms_h / (rms_n + 1e-12)) * 10 ** (rng.uniform(lo_db, hi_db) / 20)
    if inst.get("lowpass"):
        y = _lowpass(y, rng.uniform(*inst["lowpass"]), sr)
    return y.astype(np.float32)


def _bandpass(x: np.ndarray, lo: float, hi: float, sr: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, [lo, min(hi, 0.45 * sr)], btype="band", fs=sr, output="sos"), x)


def _lowpass(x: np.ndarray, fc: float, sr: int) -> np.ndarray:
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(2, min(fc, 0.45 * sr), btype="low", fs=sr, output="sos"), x)


def render_lead(backing: np.ndarray, instrument: str, rng: np.random.Generator, tunes: list[dict],
                *, sr: int = GEN_SR) -> tuple[np.ndarray, np.ndarray, dict]:
    """A lead line for ``backing`` (mono, ``sr``): (signal, active mask, info).

    Key and tempo come from the backing (as for the songs); the line fills 15-19.5 s like a
    sung line, after a short lead-in.
    """
    inst = INSTRUMENTS[instrument]
    tonic, mode, tempo, _beats = build._key_tempo(backing)
    eighth = 30.0 / tempo
    centre = float(rng.uniform(*inst["range"]))
    notes = singing.scale_notes(tonic, mode, centre - 6, centre + 6)
    target = float(rng.uniform(15.0, 19.5))
    plan = sinsy_voice.plan_line(notes, eighth, target, rng, tunes)
    vib = float(rng.uniform(*inst["vibrato"]))
    f0, note_of, spans = line_f0(plan["events"], eighth, rng, vibrato_share=vib, sr=sr)
    env = note_envelope(spans, f0.size, inst, rng, sr)
    y = synthesize(f0, env, inst, rng, sr)
    y = nomusic._reverb(y, rng, wet=(0.05, 0.25))
    lead_in = int(rng.uniform(0.0, 1.5) * sr)
    n = int(CLIP_S * sr)
    y = np.concatenate([np.zeros(lead_in, np.float32), y])[:n]
    y = np.pad(y, (0, n - y.size))
    act = np.concatenate([np.zeros(lead_in, bool), note_of >= 0])[:n]
    act = np.pad(act, (0, n - act.size))
    info = dict(instrument=instrument, tempo=round(tempo, 1), key=f"{tonic}{mode[0]}",
                vibrato_share=round(vib, 2), tunes=plan["tunes"][:4],
                notes_per_s=plan["syllables_per_s"])
    return y, act, info


# ----------------------------------------------------------------------------- corpus
def plan(manifest: Path, *, share: float, seed: int) -> list[dict]:
    """The lead partners to render: one per drawn song triplet (a ``song_constructed`` row
    under ``gen/song/``), each with its instrument, seed and the row of its backing-alone
    clip (``gen/backing/STEM.flac``; None when the manifest lacks it)."""
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    backing_rows = {r["path"]: r for r in rows if r["path"].startswith("gen/backing/")}
    names = sorted(INSTRUMENTS)
    units = []
    for r in rows:
        if r["kind"] != "song_constructed" or not r["path"].startswith("gen/song/"):
            continue
        stem = Path(r["path"]).stem
        draw = np.random.default_rng([seed, zlib.crc32(stem.encode())])
        if draw.random() >= share:
            continue
        units.append(dict(song=r, stem=stem, instrument=names[int(draw.integers(len(names)))],
                          seed=int(draw.integers(2**31)),
                          backing_row=backing_rows.get(f"gen/backing/{stem}.flac")))
    return units


def lead_row(u: dict, detail: str) -> dict:
    """The manifest row of unit ``u``'s lead clip: the backing's package, version, author and
    licence from its backing-alone row (the song's own row joins voice and backing)."""
    r, b = u["song"], u.get("backing_row") or {}
    return build.row(path=f"gen/lead/{u['stem']}.flac", label="score", kind="score_lead",
                     source_package="generated+" + b.get("source_package", ""),
                     version=f"corpus.leads r{RENDER_VERSION}+" + b.get("version", ""),
                     author="corpus.leads (synthesised instrument) / " + b.get("author", ""),
                     licence=b.get("licence", ""), group=r["group"], start_s=0.0,
                     duration_s=CLIP_S, backing=r["backing"], var_db=r["var_db"],
                     density=r.get("density", ""), detail=detail)


def _meta_key(u: dict) -> dict:
    return {"instrument": u["instrument"], "seed": u["seed"], "render_version": RENDER_VERSION}


def render_units(units: list[dict], out_dir: str, force: bool) -> list[dict]:
    """Render ``units`` (a worker's batch): their manifest rows, or ``{"problem": ...}``.

    A clip whose sidecar matches its unit (:func:`_meta_key`) is kept, with the detail the
    sidecar recorded; any other is rendered and its sidecar written.
    """
    out = Path(out_dir)
    tunes = sinsy_voice.melodies()
    rows = []
    for u in units:
        r = u["song"]
        if u.get("backing_row") is None:
            rows.append({"problem": f"{r['path']}: no gen/backing row for its triplet"})
            continue
        clip = out / f"gen/lead/{u['stem']}.flac"
        meta = out / f"gen/lead/.meta/{u['stem']}.json"
        if not force and clip.exists() and meta.exists():
            try:
                m = json.loads(meta.read_text())
            except ValueError:
                m = {}
            if {k: m.get(k) for k in _meta_key(u)} == _meta_key(u) and m.get("detail"):
                rows.append(lead_row(u, m["detail"]))
                continue
        backing_rel = f"gen/backing/{u['stem']}.flac"
        try:
            bed, sr = sf.read(str(out / backing_rel), dtype="float32", always_2d=True)
        except (RuntimeError, OSError) as exc:
            rows.append({"problem": f"{backing_rel}: {exc}"})
            continue
        if sr != GEN_SR:
            rows.append({"problem": f"{backing_rel}: {sr} Hz, not {GEN_SR}"})
            continue
        mono = bed.mean(axis=1)
        rng = np.random.default_rng(u["seed"])
        y, act, info = render_lead(mono, u["instrument"], rng, tunes)
        if not act.any():
            rows.append({"problem": f"{clip}: empty line"})
            continue
        detail = (f"{info['instrument']} lead (synthesised): music21 melody, singing "
                  f"contours (vibrato on {info['vibrato_share']:.0%} of notes), "
                  f"{info['notes_per_s']} notes/s at {info['tempo']} bpm")
        mixed = mixing.mix(bed.T if bed.shape[1] == 2 else mono, y, act, float(r["var_db"]))
        clip.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(clip), mixed.T if mixed.ndim == 2 else mixed, GEN_SR, subtype="PCM_16")
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps(dict(_meta_key(u), detail=detail)))
        rows.append(lead_row(u, detail))
    return rows


def run(corpus: Path, *, share: float = 0.5, seed: int = 7, jobs: int = 2, force: bool = False) -> dict:
    t0 = time.time()
    units = plan(corpus / "manifest.csv", share=share, seed=seed)
    sinsy_voice.melodies()  # extract (once) before the workers start
    batches = [units[i::max(1, jobs * 4)] for i in range(max(1, jobs * 4))]
    rows, problems = [], []
    with ProcessPoolExecutor(max_workers=jobs) as ex:
        for res in ex.map(render_units, batches, [str(corpus)] * len(batches), [force] * len(batches)):
            for r in res:
                (problems.append(r["problem"]) if "problem" in r else rows.append(r))
    rows.sort(key=lambda r: r["path"])
    summary = dict(clips=len(rows), share=share, seed=seed, render_version=RENDER_VERSION,
                   instruments=dict(Counter(r["detail"].split(" ")[0] for r in rows)),
                   per_cell=dict(Counter(r["group"] for r in rows)), problems=problems,
                   seconds=round(time.time() - t0, 1))
    nomusic.write_outputs(corpus, rows, summary, "manifest.leads.csv", "summary.leads.json")
    for p in problems:
        print("problem: " + p, file=sys.stderr)
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m corpus.leads", description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--share", type=float, default=0.5, help="share of song triplets given a lead partner")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--force", action="store_true", help="render again clips already present")
    a = ap.parse_args(argv)
    s = run(a.corpus, share=a.share, seed=a.seed, jobs=a.jobs, force=a.force)
    print(json.dumps(s, indent=1))
    return 0 if s["clips"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
