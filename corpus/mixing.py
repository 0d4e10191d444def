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
    is padded or cut to the backing's length.
    """
    n = backing.size
    vocal = np.pad(vocal, (0, max(0, n - vocal.size)))[:n]
    active = np.pad(active, (0, max(0, n - active.size)))[:n]
    v_rms = rms(vocal[active]) if active.any() else rms(vocal)
    b_rms = rms(backing)
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
