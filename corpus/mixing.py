"""Vocal chains, mixing at a vocal-to-accompaniment ratio, choir pads (pedalboard)."""

from __future__ import annotations

import numpy as np
import pedalboard as pb


def vocal_chain(y: np.ndarray, sr: int, rng: np.random.Generator, *, style: str) -> np.ndarray:
    """A plausible vocal chain: high-pass, presence EQ, compression, and (for singing) reverb.

    ``style`` is ``"sung"`` (more reverb, sometimes a slap delay) or ``"speech"`` (dialogue:
    dry to lightly roomy).
    """
    fx = [pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(70, 140))),
          pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(2500, 4500)),
                        gain_db=float(rng.uniform(0, 5)), q=1.0),
          pb.Compressor(threshold_db=float(rng.uniform(-26, -16)), ratio=float(rng.uniform(2.5, 5)),
                        attack_ms=float(rng.uniform(3, 15)), release_ms=float(rng.uniform(60, 200)))]
    if style == "sung":
        if rng.random() < 0.3:
            fx.append(pb.Delay(delay_seconds=float(rng.uniform(0.09, 0.16)), feedback=0.15,
                               mix=float(rng.uniform(0.05, 0.15))))
        fx.append(pb.Reverb(room_size=float(rng.uniform(0.2, 0.7)), wet_level=float(rng.uniform(0.08, 0.3)),
                            dry_level=0.9, damping=0.5))
    elif rng.random() < 0.5:
        fx.append(pb.Reverb(room_size=float(rng.uniform(0.05, 0.3)), wet_level=float(rng.uniform(0.02, 0.12)),
                            dry_level=1.0))
    return pb.Pedalboard(fx)(y.astype(np.float32), sr)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def mix(backing: np.ndarray, vocal: np.ndarray, active: np.ndarray, var_db: float) -> np.ndarray:
    """Mix so that the vocal (over its active part) sits ``var_db`` dB above the backing.

    The result is scaled down only if it would clip, so levels stay natural. The vocal
    is padded or cut to the backing's length. A stereo backing ``(2, n)`` gets the (mono)
    vocal panned to the centre, the way a lead vocal or dialogue is mixed; the ratio is
    measured on the backing's mono downmix, so the downmix of the stereo mix is the mono mix.
    """
    n = backing.shape[-1]
    vocal = np.pad(vocal, (0, max(0, n - vocal.size)))[:n]
    active = np.pad(active, (0, max(0, n - active.size)))[:n]
    v_rms = rms(vocal[active]) if active.any() else rms(vocal)
    b_rms = rms(backing.mean(axis=0) if backing.ndim == 2 else backing)
    gain = (b_rms / v_rms) * 10 ** (var_db / 20)
    y = backing + gain * vocal
    peak = float(np.max(np.abs(y)))
    return (y / peak * 0.98).astype(np.float32) if peak > 0.98 else y.astype(np.float32)


def _transpose(x: np.ndarray, semitones: float) -> np.ndarray:
    """Resampling pitch shift (changes duration too, like a sampler)."""
    ratio = 2 ** (semitones / 12)
    n = int(len(x) / ratio)
    return np.interp(np.arange(n) * ratio, np.arange(len(x)), x).astype(np.float32)


def choir_pad(sample: np.ndarray, sr: int, chords: list[list[float]], base_midi: float,
              total_s: float, rng: np.random.Generator) -> np.ndarray:
    """A wordless choir pad: the sample transposed to each chord tone, overlapped and
    crossfaded to sustain, one chord every few seconds, with a slow swell."""
    n = int(total_s * sr)
    out = np.zeros(n, np.float32)
    chord_len = int(n / len(chords))
    for c, chord in enumerate(chords):
        for midi in chord:
            tone = _transpose(sample, midi - base_midi)
            if tone.size < 64:
                continue
            fade = np.hanning(tone.size).astype(np.float32)
            step = max(tone.size // 2, 1)
            start = c * chord_len + int(rng.uniform(0, 0.1) * sr)
            for pos in range(start, min((c + 1) * chord_len, n), step):
                m = min(tone.size, n - pos)
                out[pos:pos + m] += (tone * fade)[:m] * rng.uniform(0.7, 1.0)
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * np.arange(n) / n * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    out *= swell.astype(np.float32)
    return pb.Pedalboard([pb.Reverb(room_size=0.8, wet_level=0.4, dry_level=0.7)])(out, sr)


# ----------------------------------------------------------------------------- production
def de_ess(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Tame sibilance: the band above 5-7 kHz is compressed hard, the rest left alone."""
    cut = float(min(rng.uniform(5000, 7000), 0.45 * sr))
    hi = pb.Pedalboard([pb.HighpassFilter(cutoff_frequency_hz=cut)])(y, sr)
    lo = y - hi
    hi = pb.Pedalboard([pb.Compressor(threshold_db=float(rng.uniform(-34, -26)), ratio=6.0,
                                      attack_ms=1.0, release_ms=40.0)])(hi, sr)
    return (lo + hi).astype(np.float32)


def pop_vocal_chain(y: np.ndarray, sr: int, rng: np.random.Generator, *, eighth_s: float) -> np.ndarray:
    """A lead vocal chain as on pop records: high-pass, a low-mid cut and a presence lift,
    de-essing, firm compression, a plate-like reverb and a tempo-synced delay."""
    y = y.astype(np.float32)
    pre = pb.Pedalboard([
        pb.HighpassFilter(cutoff_frequency_hz=float(rng.uniform(80, 150))),
        pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(250, 450)), gain_db=float(rng.uniform(-4, -1)), q=1.0),
        pb.PeakFilter(cutoff_frequency_hz=float(rng.uniform(2500, 5000)), gain_db=float(rng.uniform(2, 6)), q=0.8),
        pb.HighShelfFilter(cutoff_frequency_hz=float(min(rng.uniform(8000, 10000), 0.45 * sr)),
                           gain_db=float(rng.uniform(0, 4))),
        pb.Compressor(threshold_db=float(rng.uniform(-30, -20)), ratio=float(rng.uniform(4, 8)),
                      attack_ms=float(rng.uniform(2, 8)), release_ms=float(rng.uniform(50, 150))),
    ])
    y = de_ess(pre(y, sr), sr, rng)
    post = []
    if rng.random() < 0.6:
        post.append(pb.Delay(delay_seconds=float(eighth_s * rng.choice([1, 2, 3])),
                             feedback=float(rng.uniform(0.15, 0.35)), mix=float(rng.uniform(0.06, 0.18))))
    # A plate: dense, bright, short pre-delay (low damping, mid-size room).
    post.append(pb.Reverb(room_size=float(rng.uniform(0.4, 0.8)), damping=float(rng.uniform(0.1, 0.35)),
                          wet_level=float(rng.uniform(0.12, 0.3)), dry_level=0.85, width=1.0))
    return pb.Pedalboard(post)(y, sr)


def _detune(x: np.ndarray, cents: float) -> np.ndarray:
    ratio = 2 ** (cents / 1200)
    n = int(len(x) / ratio)
    return np.interp(np.arange(n) * ratio, np.arange(len(x)), x).astype(np.float32)


def double_and_harmonise(v: np.ndarray, active: np.ndarray, sr: int, rng: np.random.Generator, *,
                         mode: str, harmony: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Production of a lead: ``"double"`` adds a second take (15-35 ms late, +-5-12 cents
    detuned, 3-8 dB down); ``"harmony"`` adds a harmony line ``harmony`` semitones away
    (a third or a fifth, pitch-shifted, 5-10 dB down), as backing vocals on records do."""
    n = v.size
    out = v.astype(np.float32).copy()
    if mode == "double":
        d = _detune(v, float(rng.uniform(5, 12) * rng.choice([-1, 1])))
        lag = int(rng.uniform(0.015, 0.035) * sr)
        d = np.pad(d, (lag, 0))[:n]
        d = np.pad(d, (0, max(0, n - d.size)))
        out += d * 10 ** (-rng.uniform(3, 8) / 20)
    elif mode == "harmony":
        h = pb.Pedalboard([pb.PitchShift(semitones=float(harmony))])(v.astype(np.float32), sr)[:n]
        out += h * 10 ** (-rng.uniform(5, 10) / 20)
    return out, active
