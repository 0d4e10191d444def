"""Turn real speech into singing, and real sung phrases into a key, with the WORLD vocoder.

Speech is analysed into F0, spectral envelope and aperiodicity (pyworld: DIO + StoneMask,
CheapTrick, D4C). Its syllable nuclei (voiced stretches split at energy dips) become notes:
each is lengthened to a note length on the backing's beat grid (its onset and release keep
their natural speed, the vowel in between is stretched), and its pitch contour is replaced by
a note of a melody in the backing's key, with a scoop into the note, a delayed vibrato
(4.5-7 Hz, 20-80 cents), and a slow random drift. Consonants and the speaker's spectral
envelope are kept, so the voice stays the speaker's own.

The same analysis resynthesised with its own pitch and timing gives the spoken version
(``speak``), so vocoder artefacts are present in both classes and cannot be what the
classifier learns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyworld as pw

FRAME_MS = 5.0
FRAME_S = FRAME_MS / 1000.0

# Krumhansl-Kessler key profiles.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_SCALES = {"major": [0, 2, 4, 5, 7, 9, 11], "minor": [0, 2, 3, 5, 7, 8, 10]}


@dataclass
class World:
    """WORLD parameters of one utterance (5 ms frames)."""

    f0: np.ndarray   # (t,) Hz, 0 where unvoiced
    sp: np.ndarray   # (t, bins) spectral envelope
    ap: np.ndarray   # (t, bins) aperiodicity
    fs: int

    @property
    def n(self) -> int:
        return self.f0.size


def analyse(y: np.ndarray, fs: int) -> World:
    """WORLD analysis of a mono signal (DIO + StoneMask, CheapTrick, D4C)."""
    x = np.ascontiguousarray(y, dtype=np.float64)
    f0, t = pw.dio(x, fs, f0_floor=65.0, f0_ceil=900.0, frame_period=FRAME_MS)
    f0 = pw.stonemask(x, f0, t, fs)
    sp = pw.cheaptrick(x, f0, t, fs)
    ap = pw.d4c(x, f0, t, fs)
    return World(f0, sp, ap, fs)


def synthesize(w: World) -> np.ndarray:
    y = pw.synthesize(np.ascontiguousarray(w.f0), np.ascontiguousarray(w.sp),
                      np.ascontiguousarray(w.ap), w.fs, FRAME_MS)
    return y.astype(np.float32)


def estimate_key(chroma_mean: np.ndarray) -> tuple[int, str]:
    """Tonic pitch class and mode from a mean chroma vector (Krumhansl-Schmuckler)."""
    best = (-np.inf, 0, "major")
    for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
        for tonic in range(12):
            r = np.corrcoef(chroma_mean, np.roll(prof, tonic))[0, 1]
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2]


def scale_notes(tonic: int, mode: str, lo_midi: float, hi_midi: float) -> np.ndarray:
    """MIDI numbers of the scale between ``lo_midi`` and ``hi_midi``."""
    pcs = {(tonic + s) % 12 for s in _SCALES[mode]}
    return np.array([m for m in range(int(np.floor(lo_midi)), int(np.ceil(hi_midi)) + 1)
                     if m % 12 in pcs], dtype=float)


def _energy(w: World) -> np.ndarray:
    e = 10 * np.log10(w.sp.sum(axis=1) + 1e-12)
    k = 5
    return np.convolve(e, np.ones(k) / k, mode="same")


def syllables(w: World, *, min_frames: int = 8, split_frames: int = 50) -> list[tuple[int, int]]:
    """Syllable nuclei: voiced runs of at least ``min_frames``, long runs split at energy dips."""
    voiced = w.f0 > 0
    d = np.diff(np.concatenate([[0], voiced.astype(int), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    e = _energy(w)
    out = []
    for a, b in zip(starts, ends):
        if b - a < min_frames:
            continue
        cuts = [a]
        if b - a > split_frames:
            seg = e[a:b]
            # local minima at least 3 dB under the maxima on both sides
            for i in range(12, b - a - 12):
                if seg[i] == seg[i - 6:i + 7].min():
                    if seg[:i].max() - seg[i] > 3 and seg[i:].max() - seg[i] > 3 and i + a - cuts[-1] >= 16:
                        cuts.append(a + i)
        cuts.append(b)
        out.extend((cuts[i], cuts[i + 1]) for i in range(len(cuts) - 1) if cuts[i + 1] - cuts[i] >= min_frames)
    return out


def _rows(arr: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Rows of ``arr`` at fractional indices (linear interpolation)."""
    i0 = np.clip(np.floor(idx).astype(int), 0, arr.shape[0] - 1)
    i1 = np.minimum(i0 + 1, arr.shape[0] - 1)
    f = (idx - i0)[:, None]
    return arr[i0] * (1 - f) + arr[i1] * f


def note_contour(n: int, midi: float, prev_midi: float | None, rng: np.random.Generator) -> np.ndarray:
    """F0 (Hz) of a sung note: scoop or portamento in, delayed vibrato, slow drift."""
    t = np.arange(n) * FRAME_S
    if prev_midi is not None and abs(prev_midi - midi) < 7 and rng.random() < 0.6:
        start = (prev_midi - midi) * 100 * rng.uniform(0.5, 0.9)      # portamento
    else:
        start = -rng.uniform(30, 120) if rng.random() < 0.8 else rng.uniform(20, 60)
    tau = rng.uniform(0.03, 0.07)
    cents = start * np.exp(-t / tau)
    rate = rng.uniform(4.5, 7.0)
    depth = rng.uniform(20, 80)
    delay = rng.uniform(0.12, 0.35)
    env = np.clip((t - delay) / rng.uniform(0.15, 0.3), 0, 1)
    rate_t = rate + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t)
    phase = 2 * np.pi * np.cumsum(rate_t) * FRAME_S + rng.uniform(0, 2 * np.pi)
    cents += depth * env * np.sin(phase)
    drift = np.cumsum(rng.normal(0, 1.0, n))
    k = min(40, n)
    drift = np.convolve(drift - drift.mean(), np.ones(k) / k, mode="same")
    cents += np.clip(drift, -12, 12)
    return 440.0 * 2 ** ((midi - 69 + cents / 100) / 12)


def melody(n: int, notes: np.ndarray, rng: np.random.Generator, start: int | None = None) -> np.ndarray:
    """A stepwise random walk over ``notes`` (MIDI), mostly seconds and thirds, some repeats."""
    i = len(notes) // 2 if start is None else start
    out = []
    for _ in range(n):
        out.append(notes[i])
        step = rng.choice([-3, -2, -1, 0, 0, 1, 1, 2, 3, 4, -4], p=[.05, .12, .2, .1, .08, .2, .05, .12, .04, .02, .02])
        i = int(np.clip(i + step, 0, len(notes) - 1))
    return np.array(out)


def sing(w: World, notes: np.ndarray, eighth_s: float, rng: np.random.Generator) -> World:
    """Sing utterance ``w`` on a melody drawn from ``notes`` with beat-grid note lengths."""
    syl = syllables(w)
    if not syl:
        return World(np.zeros(0), np.zeros((0, w.sp.shape[1])), np.zeros((0, w.ap.shape[1])), w.fs)
    tune = melody(len(syl), notes, rng, start=int(rng.integers(len(notes))))
    lengths = rng.choice([1, 2, 2, 3, 4, 6], size=len(syl), p=[.2, .3, .15, .15, .12, .08])
    lengths[-1] = rng.choice([4, 6, 8])
    e = _energy(w)
    quiet = e < e.max() - 35
    idx_parts, f0_parts = [], []
    cursor = 0
    prev = None
    for (a, b), midi, k in zip(syl, tune, lengths):
        pre = np.arange(cursor, a)
        if pre.size:
            # Pauses inside the utterance shrink to at most 60 ms; consonants stay as spoken.
            q = quiet[pre]
            keep = ~q | (np.cumsum(q) <= 12)
            pre = pre[keep]
        target = int(round(k * eighth_s / FRAME_S))
        n_nuc = max(target - pre.size, 16)
        edge = min(6, (b - a) // 3)
        mid = np.linspace(a + edge, b - edge - 1, max(n_nuc - 2 * edge, 2))
        nuc = np.concatenate([np.arange(a, a + edge), mid, np.arange(b - edge, b)]).astype(float)
        contour = note_contour(nuc.size, midi, prev, rng)
        pre_f0 = np.where(w.f0[pre] > 0, contour[0], 0.0)
        idx_parts += [pre.astype(float), nuc]
        f0_parts += [pre_f0, contour]
        prev = midi
        cursor = b
    return _resung(w, idx_parts, f0_parts, cursor)


def _resung(w: World, idx_parts: list, f0_parts: list, cursor: int, *, formant: float = 1.0) -> World:
    """Assemble a sung utterance: the frames of ``w`` at the (fractional) indices gathered
    note by note, with their new F0, plus up to 150 ms of unvoiced tail after the last
    nucleus; the envelope's formants warped by ``formant``."""
    tail = np.arange(cursor, min(cursor + 30, w.n))
    idx = np.concatenate(idx_parts + [tail.astype(float)])
    f0 = np.concatenate(f0_parts + [np.zeros(tail.size)])
    sp = _rows(w.sp, idx)
    if formant != 1.0:
        sp = warp_formants(sp, formant)
    return World(f0, sp, _rows(w.ap, idx), w.fs)


def shift(w: World, semitones: float) -> World:
    """Transpose an utterance, keeping timing and spectral envelope."""
    return World(w.f0 * 2 ** (semitones / 12), w.sp, w.ap, w.fs)


def median_f0(ws: list[World]) -> float:
    v = np.concatenate([x.f0[x.f0 > 0] for x in ws] or [np.array([150.0])])
    return float(np.median(v)) if v.size else 150.0


def line(pieces: list[np.ndarray], fs: int, target_s: float, rng: np.random.Generator, *,
         gap: tuple[float, float], lead: tuple[float, float] = (0.3, 2.0)) -> tuple[np.ndarray, np.ndarray]:
    """Chain utterances with rests into one line of ``target_s`` seconds.

    Returns the signal and a boolean mask of where the voice is active.
    """
    n = int(target_s * fs)
    y = np.zeros(n, np.float32)
    active = np.zeros(n, bool)
    pos = int(rng.uniform(*lead) * fs)
    for p in pieces:
        if pos >= n:
            break
        m = min(p.size, n - pos)
        y[pos:pos + m] += p[:m]
        active[pos:pos + m] = True
        pos += m + int(rng.uniform(*gap) * fs)
    return y, active


# ----------------------------------------------------------------------------- generator v2
#: Pitch behaviour of the re-parameterised generator (``speech2sing_v2``), drawn from
#: measurements of real singing instead of the v1 habit of vibrato on every note:
#:
#: - vibrato rate 5.5-6.5 Hz with a mean near 6 Hz and extent of roughly +-50-100 cents in
#:   classically trained voices (Prame 1994, JASA 96(4); Prame 1997, JASA 102(1)); pop and
#:   rock singers use it on fewer, longer notes and more narrowly, so here it is drawn on
#:   ``VIBRATO_SHARE`` of the notes longer than 0.4 s, rate N(5.8, 0.5) Hz clipped to
#:   [4.5, 7], half-extent N(35, 12) cents clipped to [12, 80];
#: - note transitions follow the F0 control model of Saitou, Unoki & Akagi (2005, Speech
#:   Communication 46): a *preparation* (a small dip away from the next note just before the
#:   change), an *overshoot* past the target that decays as a damped oscillation over
#:   50-150 ms, and *fine fluctuation* (a few cents of low-pass noise) on straight tones;
#: - syllabic notes at pop rates (one eighth or sixteenth per syllable at 85-130 bpm: about
#:   3-6 syllables a second), with an occasional melisma (a syllable's vowel carried over
#:   two or three notes).
VIBRATO_SHARE = 0.3
VIBRATO_RATE_HZ = (5.8, 0.5)
VIBRATO_HALF_EXTENT_CENTS = (35.0, 12.0)


def note_contour_v2(n: int, midi: float, prev_midi: float | None, rng: np.random.Generator,
                    *, vibrato: bool) -> np.ndarray:
    """F0 (Hz) of a sung note, measured-real-singing style (see :data:`VIBRATO_SHARE`).

    Straight tone with fine fluctuation, an overshoot after a legato change of note
    (a damped oscillation), and vibrato only when ``vibrato`` (onset after 0.15-0.4 s).
    """
    t = np.arange(n) * FRAME_S
    cents = np.zeros(n)
    if prev_midi is not None and prev_midi != midi:
        # Legato: start from the previous note and overshoot the target (damped oscillation).
        d = (prev_midi - midi) * 100.0
        tau = rng.uniform(0.02, 0.05)
        freq = rng.uniform(3.0, 6.0)
        cents += d * np.exp(-t / tau) * np.cos(2 * np.pi * freq * t) * rng.uniform(0.6, 1.0)
    elif rng.random() < 0.5:
        cents += -rng.uniform(20, 80) * np.exp(-t / rng.uniform(0.02, 0.06))   # a small scoop
    if vibrato:
        rate = float(np.clip(rng.normal(*VIBRATO_RATE_HZ), 4.5, 7.0))
        depth = float(np.clip(rng.normal(*VIBRATO_HALF_EXTENT_CENTS), 12, 80))
        delay = rng.uniform(0.15, 0.4)
        env = np.clip((t - delay) / rng.uniform(0.2, 0.4), 0, 1)
        phase = 2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi)
        cents += depth * env * np.sin(phase)
    # Fine fluctuation: low-pass noise of a few cents.
    k = min(8, n)
    fine = np.convolve(rng.normal(0, 6.0, n), np.ones(k) / k, mode="same")
    cents += fine
    drift = np.cumsum(rng.normal(0, 0.6, n))
    k = min(60, n)
    cents += np.clip(np.convolve(drift - drift.mean(), np.ones(k) / k, mode="same"), -8, 8)
    # Preparation: a dip away from the next note in the last 40-80 ms is added by the caller.
    return 440.0 * 2 ** ((midi - 69 + cents / 100) / 12)


def sing_v2(w: World, notes: np.ndarray, eighth_s: float, rng: np.random.Generator, *,
            formant: float = 1.0) -> World:
    """Sing utterance ``w`` the way measured real singing behaves (generator ``speech2sing_v2``).

    Differs from :func:`sing`: syllabic notes of a sixteenth or an eighth mostly (pop rates),
    longer notes at phrase ends, vibrato on a minority of long notes, legato transitions with
    preparation and overshoot, occasional melisma, and a spectral-envelope (formant) warp
    ``formant`` for another voice identity. Consonants keep their spoken timing.
    """
    syl = syllables(w)
    if not syl:
        return World(np.zeros(0), np.zeros((0, w.sp.shape[1])), np.zeros((0, w.ap.shape[1])), w.fs)
    tune = melody(len(syl) + 8, notes, rng, start=int(rng.integers(len(notes))))
    # Eighth / sixteenth units; eighth_s is set from the backing's tempo.
    lengths = rng.choice([0.5, 1, 1, 1, 1.5, 2, 3], size=len(syl), p=[.2, .3, .15, .1, .1, .1, .05])
    lengths[-1] = rng.choice([3, 4, 6])
    e = _energy(w)
    quiet = e < e.max() - 35
    idx_parts, f0_parts = [], []
    cursor, prev, ti = 0, None, 0
    for (a, b), k in zip(syl, lengths):
        pre = np.arange(cursor, a)
        if pre.size:
            q = quiet[pre]
            pre = pre[~q | (np.cumsum(q) <= 10)]
        target = int(round(k * eighth_s / FRAME_S))
        n_nuc = max(target - pre.size, 12)
        # Melisma: 12% of the longer syllables carry two or three notes.
        n_notes = int(rng.choice([2, 3])) if (k >= 1.5 and rng.random() < 0.12) else 1
        edge = min(5, (b - a) // 3)
        mid = np.linspace(a + edge, b - edge - 1, max(n_nuc - 2 * edge, 2))
        nuc = np.concatenate([np.arange(a, a + edge), mid, np.arange(b - edge, b)]).astype(float)
        bounds = np.linspace(0, nuc.size, n_notes + 1).astype(int)
        contour = []
        for j in range(n_notes):
            midi = tune[ti % len(tune)]
            ti += 1
            m = bounds[j + 1] - bounds[j]
            long_note = m * FRAME_S >= 0.4
            contour.append(note_contour_v2(m, midi, prev, rng,
                                           vibrato=long_note and rng.random() < VIBRATO_SHARE))
            prev = midi
        contour = np.concatenate(contour)
        # Preparation: before the next note, a dip away from it in the last 40-80 ms.
        nxt = tune[ti % len(tune)]
        p = min(int(rng.uniform(0.04, 0.08) / FRAME_S), contour.size // 3)
        if p > 1 and nxt != prev:
            dip = -np.sign(nxt - prev) * rng.uniform(10, 35) * np.sin(np.linspace(0, np.pi, p))
            contour[-p:] *= 2 ** (dip / 1200)
        pre_f0 = np.where(w.f0[pre] > 0, contour[0], 0.0)
        idx_parts += [pre.astype(float), nuc]
        f0_parts += [pre_f0, contour]
        cursor = b
    return _resung(w, idx_parts, f0_parts, cursor, formant=formant)


def warp_formants(sp: np.ndarray, factor: float) -> np.ndarray:
    """Scale the frequency axis of a spectral envelope by ``factor`` (>1: formants up,
    a smaller vocal tract; <1: down), for another plausible voice identity."""
    bins = sp.shape[1]
    src = np.clip(np.arange(bins) / factor, 0, bins - 1)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, bins - 1)
    f = src - i0
    return sp[:, i0] * (1 - f) + sp[:, i1] * f


# ----------------------------------------------------------------------------- rap
def syllable_cuts(y: np.ndarray, fs: int, w: World) -> list[tuple[int, int]]:
    """Sample ranges of the syllables of a real spoken phrase: each voiced nucleus with
    the consonants before it (from the previous nucleus's end), so words stay whole."""
    hop = int(round(FRAME_S * fs))
    syl = syllables(w, min_frames=6, split_frames=36)
    out, prev_end = [], 0
    for a, b in syl:
        start = max(prev_end, a - 16)  # at most 80 ms of consonant before the vowel
        out.append((start * hop, min(b * hop + int(0.02 * fs), y.size)))
        prev_end = b
    return [(a, b) for a, b in out if b - a > int(0.05 * fs)]


def rap_line(phrases: list[tuple[np.ndarray, World]], fs: int, beat_times: np.ndarray,
             target_s: float, rng: np.random.Generator, *, return_onsets: bool = False):
    """Rhythmic speech: real spoken syllables placed densely on the backing's sixteenth grid.

    Each syllable (natural audio, not vocoded) starts on a sixteenth of the backing's beat
    grid; most sixteenths get one (about 4-7 syllables a second at 85-110 bpm), stressed
    ones land on beats, bars end with a short rest. Syllables longer than their slot are
    faded out at the next onset, so the flow keeps time.

    Returns ``(y, active)``, and the syllable onsets (s) too with ``return_onsets=True``.
    """
    n = int(target_s * fs)
    y = np.zeros(n, np.float32)
    active = np.zeros(n, bool)
    if beat_times.size < 2:
        beat_times = np.arange(0, target_s + 1, 0.6)
    period = float(np.median(np.diff(beat_times)))
    while period < 0.45:        # rap sits at 80-110 bpm in quarter notes
        period *= 2
    while period > 0.8:
        period /= 2
    grid = np.arange(beat_times[0] % period, target_s, period / 4)
    sylls = []
    for y_ph, w in phrases:
        sylls.extend(y_ph[a:b] for a, b in syllable_cuts(y_ph, fs, w))
    onsets: list[float] = []
    if not sylls:
        return (y, active, np.array(onsets)) if return_onsets else (y, active)
    density = rng.uniform(0.6, 0.9)
    lead = int(rng.integers(0, 8))
    k = 0
    i = lead
    while i < grid.size:
        pos = int(grid[i] * fs)
        bar_pos = i % 16
        if bar_pos >= 14 and rng.random() < 0.6:   # breath at the end of a bar
            i += 1
            continue
        if bar_pos % 4 != 0 and rng.random() > density:
            i += 1
            continue
        s = sylls[k % len(sylls)]
        k += 1
        slot = int(rng.choice([1, 1, 1, 2]))
        m = min(s.size, int(slot * period / 4 * fs * 1.15), n - pos)
        if m <= 0:
            break
        seg = s[:m].copy()
        f = min(int(0.015 * fs), m)
        seg[-f:] *= np.linspace(1, 0, f)
        gain = 1.0 if bar_pos % 4 == 0 else rng.uniform(0.7, 0.95)  # accents on the beats
        y[pos:pos + m] += seg * gain
        active[pos:pos + m] = True
        onsets.append(pos / fs)
        i += slot
    return (y, active, np.array(onsets)) if return_onsets else (y, active)
